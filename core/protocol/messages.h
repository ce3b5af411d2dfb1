#pragma once
// The Kafka APIs Sluice speaks: one MessageSchema per API (request and response field tables with
// version ranges), advertised in ApiVersions exactly as ../shared/PROTOCOL.md §1 recommends.
//
// Conventions for every schema (all files under core/protocol/messages_*.cc):
// * Field names are the Kafka JSON schema names in snake_case ("TopicData" -> "topic_data",
//   "PartitionIndex" -> "partition_index"), so handlers and schemas agree without a lookup table.
// * A field's `versions` is its validVersions range clipped to what Sluice implements; tagged
//   fields carry their tag; `nullable` lists the versions in which null is legal.
// * Nested struct arrays are declared before the fields that use them (constexpr order).

#include <cstdint>
#include <span>

#include "core/protocol/schema.h"

namespace sluice::protocol {

namespace api {
inline constexpr std::int16_t kProduce = 0;
inline constexpr std::int16_t kFetch = 1;
inline constexpr std::int16_t kListOffsets = 2;
inline constexpr std::int16_t kMetadata = 3;
inline constexpr std::int16_t kOffsetCommit = 8;
inline constexpr std::int16_t kOffsetFetch = 9;
inline constexpr std::int16_t kFindCoordinator = 10;
inline constexpr std::int16_t kJoinGroup = 11;
inline constexpr std::int16_t kHeartbeat = 12;
inline constexpr std::int16_t kLeaveGroup = 13;
inline constexpr std::int16_t kSyncGroup = 14;
inline constexpr std::int16_t kDescribeGroups = 15;
inline constexpr std::int16_t kListGroups = 16;
inline constexpr std::int16_t kApiVersions = 18;
inline constexpr std::int16_t kCreateTopics = 19;
inline constexpr std::int16_t kDeleteTopics = 20;
inline constexpr std::int16_t kDeleteRecords = 21;
inline constexpr std::int16_t kInitProducerId = 22;
inline constexpr std::int16_t kDescribeConfigs = 32;
inline constexpr std::int16_t kAlterConfigs = 33;
inline constexpr std::int16_t kCreatePartitions = 37;
inline constexpr std::int16_t kDeleteGroups = 42;
inline constexpr std::int16_t kOffsetDelete = 47;
}  // namespace api

extern const MessageSchema kApiVersionsSchema;
extern const MessageSchema kMetadataSchema;
extern const MessageSchema kProduceSchema;
extern const MessageSchema kFetchSchema;
extern const MessageSchema kListOffsetsSchema;
extern const MessageSchema kOffsetCommitSchema;
extern const MessageSchema kOffsetFetchSchema;
extern const MessageSchema kFindCoordinatorSchema;
extern const MessageSchema kJoinGroupSchema;
extern const MessageSchema kHeartbeatSchema;
extern const MessageSchema kLeaveGroupSchema;
extern const MessageSchema kSyncGroupSchema;
extern const MessageSchema kDescribeGroupsSchema;
extern const MessageSchema kListGroupsSchema;
extern const MessageSchema kCreateTopicsSchema;
extern const MessageSchema kDeleteTopicsSchema;
extern const MessageSchema kDeleteRecordsSchema;
extern const MessageSchema kInitProducerIdSchema;
extern const MessageSchema kDescribeConfigsSchema;
extern const MessageSchema kAlterConfigsSchema;
extern const MessageSchema kCreatePartitionsSchema;
extern const MessageSchema kDeleteGroupsSchema;
extern const MessageSchema kOffsetDeleteSchema;

// Every schema Sluice implements, by API key; nullptr when the key is not implemented.
const MessageSchema* find_schema(std::int16_t api_key);
// All implemented schemas in API-key order (what ApiVersions advertises).
std::span<const MessageSchema* const> all_schemas();

}  // namespace sluice::protocol
