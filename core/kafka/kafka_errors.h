#pragma once
// The Kafka error codes the broker answers (Kafka's Errors.java numbering), in one place for the
// handlers and the group coordinator. The group state machine keeps its own few
// (core/group/group_state_machine.h) so that core/group stays free of core/kafka.

#include <cstdint>

namespace sluice::kafka {

// Kafka error codes the handlers use.
namespace error {
inline constexpr std::int16_t kNone = 0;
inline constexpr std::int16_t kOffsetOutOfRange = 1;
inline constexpr std::int16_t kCorruptMessage = 2;
inline constexpr std::int16_t kUnknownTopicOrPartition = 3;
inline constexpr std::int16_t kMessageTooLarge = 10;
inline constexpr std::int16_t kOffsetMetadataTooLarge = 12;
inline constexpr std::int16_t kCoordinatorNotAvailable = 15;
inline constexpr std::int16_t kNotCoordinator = 16;
inline constexpr std::int16_t kInvalidTopic = 17;
inline constexpr std::int16_t kInvalidRequiredAcks = 21;
inline constexpr std::int16_t kIllegalGeneration = 22;
inline constexpr std::int16_t kInvalidGroupId = 24;
inline constexpr std::int16_t kInvalidCommitOffsetSize = 28;
inline constexpr std::int16_t kUnsupportedVersion = 35;
inline constexpr std::int16_t kTopicAlreadyExists = 36;
inline constexpr std::int16_t kInvalidPartitions = 37;
inline constexpr std::int16_t kInvalidReplicationFactor = 38;
inline constexpr std::int16_t kInvalidReplicaAssignment = 39;
inline constexpr std::int16_t kInvalidConfig = 40;
inline constexpr std::int16_t kInvalidRequest = 42;
inline constexpr std::int16_t kKafkaStorageError = 56;
inline constexpr std::int16_t kNonEmptyGroup = 68;
inline constexpr std::int16_t kGroupIdNotFound = 69;
inline constexpr std::int16_t kGroupSubscribedToTopic = 86;
inline constexpr std::int16_t kInvalidRecord = 87;
}  // namespace error

}  // namespace sluice::kafka
