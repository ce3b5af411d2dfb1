#pragma once
// The records of the internal `__consumer_offsets` topic, in Kafka's own key/value formats (the
// group-coordinator message schemas OffsetCommitKey/Value and GroupMetadataKey/Value), so tools
// that read that topic (kafka-console-consumer's formatters, kcat -s) understand Sluice's too.
// Pure: no IO. Also the two helpers every coordinator needs: Kafka's partition-for-group
// (abs(Java String.hashCode) % partitions) and a reader of the consumer protocol's subscription
// and assignment bytes (which topics a "consumer" group subscribes to / was assigned).
//
// Every key and value starts with an int16 schema version. Key versions 0 and 1 are an offset
// commit ({group, topic, partition}); key version 2 is group metadata ({group}). A record whose
// value is null is a tombstone: the commit or the group is deleted.
// Written versions: key 1 / value 3 for commits, key 2 / value 3 for groups (the newest
// non-flexible ones, which Kafka 2.3 - 3.9 read). Read: every version 0..4 (4 is flexible).

#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/group/group_state_machine.h"

namespace sluice::group {

inline constexpr std::string_view kOffsetsTopic = "__consumer_offsets";
// Kafka's offsets.topic.num.partitions default.
inline constexpr std::int32_t kOffsetsTopicPartitionsDefault = 50;

// Java's String.hashCode over the UTF-16 code units of `text` (UTF-8 input; invalid UTF-8 bytes
// count as U+FFFD, as Java's decoder does).
std::int32_t java_string_hash(std::string_view text);
// GroupMetadataManager.partitionFor: abs(hash) % partitions, with abs(INT_MIN) taken as 0
// (Utils.abs). `partitions` > 0.
std::int32_t partition_for_group(std::string_view group_id, std::int32_t partitions);

struct OffsetCommitKey {
  std::string group;
  std::string topic;
  std::int32_t partition = 0;
  bool operator==(const OffsetCommitKey&) const = default;
};

struct OffsetCommitValue {
  std::int64_t offset = 0;
  std::int32_t leader_epoch = -1;  // -1: none
  std::string metadata;
  std::int64_t commit_timestamp_ms = 0;
  // Only value version 1 carries it; -1 otherwise. Sluice ignores it (offsets retention is
  // broker-side since Kafka 2.1, KIP-211).
  std::int64_t expire_timestamp_ms = -1;
  bool operator==(const OffsetCommitValue&) const = default;
};

struct GroupMetadataKey {
  std::string group;
  bool operator==(const GroupMetadataKey&) const = default;
};

// GroupMetadataValue is group::GroupSnapshot (group_state_machine.h): protocol type,
// generation, protocol, leader, current state timestamp, members with subscription/assignment.

using OffsetsRecordKey = std::variant<OffsetCommitKey, GroupMetadataKey>;

// One decoded record of __consumer_offsets. `value` empty: a tombstone.
struct OffsetCommitRecord {
  OffsetCommitKey key;
  std::optional<OffsetCommitValue> value;
};
struct GroupMetadataRecord {
  GroupMetadataKey key;
  std::optional<GroupSnapshot> value;
};
using OffsetsRecord = std::variant<OffsetCommitRecord, GroupMetadataRecord>;

enum class OffsetsRecordError : std::uint8_t {
  malformed,            // truncated, bad lengths, trailing bytes
  unsupported_version,  // a key or value schema version this code does not know
};
std::string_view to_string(OffsetsRecordError error);

// Encoders (the bytes are a record's key and value).
std::string encode_offset_commit_key(const OffsetCommitKey& key);
std::string encode_offset_commit_value(const OffsetCommitValue& value);
std::string encode_group_metadata_key(const GroupMetadataKey& key);
std::string encode_group_metadata_value(const GroupSnapshot& value);

// Decodes one record's key and (nullable) value. Never crashes on any input.
std::expected<OffsetsRecord, OffsetsRecordError> decode_offsets_record(std::string_view key,
                                                                       std::optional<std::string_view> value);

// The consumer protocol ("consumer" protocol type) carried opaquely by JoinGroup / SyncGroup:
// ConsumerProtocolSubscription {version i16, topics [string], user_data nullable bytes, owned
// partitions (v1+), generation (v2+), rack (v3+)} and ConsumerProtocolAssignment {version i16,
// assigned [topic string, partitions [i32]], user_data nullable bytes}. Readers accept any
// version >= 0 and ignore fields they do not need (newer versions only append fields).
using ConsumerTopicPartitions = std::vector<std::pair<std::string, std::vector<std::int32_t>>>;
struct ConsumerSubscription {
  std::vector<std::string> topics;
  // What a cooperative (KIP-429) member says it owns (v1+) and its generation (v2+; -1: none).
  // The reader fills them when present and well-formed, and leaves them empty / -1 otherwise,
  // so a member's subscription is never refused for them.
  ConsumerTopicPartitions owned_partitions = {};
  std::int32_t generation = -1;
};
struct ConsumerAssignment {
  ConsumerTopicPartitions partitions;  // topic, partitions
};
std::optional<ConsumerSubscription> decode_consumer_subscription(std::string_view bytes);
std::optional<ConsumerAssignment> decode_consumer_assignment(std::string_view bytes);
// For tests and the simulator's clients. Subscriptions: versions 0-3 (v1 writes the owned
// partitions, v2 the generation, v3 a null rack); assignments: version 0.
inline constexpr std::int16_t kConsumerSubscriptionVersionMax = 3;
std::string encode_consumer_subscription(const ConsumerSubscription& subscription,
                                         std::int16_t version = 0);
std::string encode_consumer_assignment(const ConsumerAssignment& assignment);

}  // namespace sluice::group
