#include "core/group/offsets_records.h"

#include <algorithm>
#include <cassert>
#include <limits>

#include "core/protocol/codec.h"
#include "core/protocol/schema.h"
#include "core/protocol/value.h"
#include "core/util/bytes.h"

namespace sluice::group {

namespace {

using protocol::between;
using protocol::DecodeError;
using protocol::Field;
using protocol::Fields;
using protocol::fields_of;
using protocol::FieldType;
using protocol::kAllVersions;
using protocol::Null;
using protocol::since;
using protocol::StructValue;
using protocol::Value;

// ---- __consumer_offsets schemas (group-coordinator OffsetCommitKey/Value, GroupMetadataKey/Value)

// Key versions 0 and 1 share one layout; the version only tells commits from groups.
constexpr Field kOffsetCommitKey[] = {
    {.name = "group", .type = FieldType::string},
    {.name = "topic", .type = FieldType::string},
    {.name = "partition", .type = FieldType::int32},
};

constexpr Field kGroupMetadataKey[] = {
    {.name = "group", .type = FieldType::string},
};

constexpr Field kOffsetCommitValue[] = {
    {.name = "offset", .type = FieldType::int64},
    {.name = "leader_epoch", .type = FieldType::int32, .versions = since(3), .default_int = -1},
    {.name = "metadata", .type = FieldType::string},
    {.name = "commit_timestamp", .type = FieldType::int64},
    {.name = "expire_timestamp",
     .type = FieldType::int64,
     .versions = between(1, 1),
     .default_int = -1},
};

constexpr Field kMemberMetadata[] = {
    {.name = "member_id", .type = FieldType::string},
    {.name = "group_instance_id",
     .type = FieldType::string,
     .versions = since(3),
     .nullable = since(3)},
    {.name = "client_id", .type = FieldType::string},
    {.name = "client_host", .type = FieldType::string},
    {.name = "rebalance_timeout", .type = FieldType::int32, .versions = since(1)},
    {.name = "session_timeout", .type = FieldType::int32},
    {.name = "subscription", .type = FieldType::bytes},
    {.name = "assignment", .type = FieldType::bytes},
};

constexpr Field kGroupMetadataValue[] = {
    {.name = "protocol_type", .type = FieldType::string},
    {.name = "generation", .type = FieldType::int32},
    {.name = "protocol", .type = FieldType::string, .nullable = kAllVersions},
    {.name = "leader", .type = FieldType::string, .nullable = kAllVersions},
    {.name = "current_state_timestamp",
     .type = FieldType::int64,
     .versions = since(2),
     .default_int = -1},
    {.name = "members", .type = FieldType::array, .fields = fields_of(kMemberMetadata)},
};

constexpr std::int16_t kOffsetCommitKeyVersionWritten = 1;
constexpr std::int16_t kGroupMetadataKeyVersion = 2;
constexpr std::int16_t kOffsetCommitValueVersionWritten = 3;
constexpr std::int16_t kGroupMetadataValueVersionWritten = 3;
constexpr std::int16_t kValueVersionMax = 4;
constexpr std::int16_t kValueFlexibleFrom = 4;

// ---- Consumer protocol (clients' ConsumerProtocolSubscription / ConsumerProtocolAssignment)

// Readers decode only the leading fields they need (Fields{table, n}): every later field, and every
// later version's additions, are ignored, as the header promises. The subscription table goes up
// to v3 so that the simulator's cooperative clients can write owned partitions and generations.
constexpr Field kConsumerTopicPartition[] = {
    {.name = "topic", .type = FieldType::string},
    {.name = "partitions", .type = FieldType::array, .element = FieldType::int32},
};

constexpr Field kConsumerSubscription[] = {
    {.name = "topics", .type = FieldType::array, .element = FieldType::string},
    {.name = "user_data", .type = FieldType::bytes, .nullable = kAllVersions},
    {.name = "owned_partitions",
     .type = FieldType::array,
     .versions = since(1),
     .fields = fields_of(kConsumerTopicPartition)},
    {.name = "generation", .type = FieldType::int32, .versions = since(2), .default_int = -1},
    {.name = "rack_id", .type = FieldType::string, .versions = since(3), .nullable = since(3)},
};

constexpr Field kConsumerAssignment[] = {
    {.name = "assigned_partitions",
     .type = FieldType::array,
     .fields = fields_of(kConsumerTopicPartition)},
    {.name = "user_data", .type = FieldType::bytes, .nullable = kAllVersions},
};

constexpr std::int16_t kConsumerAssignmentVersionWritten = 0;

// ---- Helpers

sluice::Bytes to_protocol_bytes(std::string_view text) {
  const auto span = sluice::as_bytes(text);
  return sluice::Bytes(span.begin(), span.end());
}

std::string to_text(const sluice::Bytes& bytes) {
  return std::string(sluice::as_text(bytes));
}

// Non-flexible strings carry an int16 length; Kafka refuses to write longer ones.
Value string_value(std::string_view text) {
  assert(text.size() <= static_cast<std::size_t>(std::numeric_limits<std::int16_t>::max()));
  return Value(std::string(text));
}

Value nullable_string_value(const std::optional<std::string>& text) {
  if (!text.has_value()) return Value(Null{});
  return string_value(*text);
}

std::optional<std::string> nullable_string(const Value& value) {
  if (value.is_null()) return std::nullopt;
  return value.as_string();
}

std::int32_t to_int32(const Value& value) {
  return static_cast<std::int32_t>(value.as_int());
}

// An int16 schema version followed by `body` encoded in that version.
std::string encode_versioned(Fields fields, std::int16_t version, bool flexible,
                             const StructValue& body) {
  sluice::Bytes out;
  ByteWriter(out).u16(static_cast<std::uint16_t>(version));
  protocol::encode_struct(fields, version, flexible, body, out);
  assert(out.size() >= sizeof(std::int16_t));
  return to_text(out);
}

// Splits the leading int16 schema version off a key, a value or consumer protocol bytes.
std::optional<std::int16_t> read_version(std::string_view bytes, std::string_view& body) {
  if (bytes.size() < sizeof(std::int16_t)) return std::nullopt;
  ByteReader reader(sluice::as_bytes(bytes));
  const auto version = static_cast<std::int16_t>(reader.u16());
  body = bytes.substr(sizeof(std::int16_t));
  return version;
}

// The consumer protocol's [topic, [partition]] lists.
ConsumerTopicPartitions read_topic_partitions(const std::vector<StructValue>& topics) {
  ConsumerTopicPartitions result;
  result.reserve(topics.size());
  for (const auto& topic : topics) {
    std::vector<std::int32_t> partitions;
    for (const auto& partition : topic["partitions"].as_array())
      partitions.push_back(to_int32(partition));
    result.emplace_back(topic.get_string("topic"), std::move(partitions));
  }
  return result;
}

void write_topic_partitions(const ConsumerTopicPartitions& topics, StructValue& body,
                            std::string_view field) {
  for (const auto& [topic, partitions] : topics) {
    StructValue& entry = body.add(field);
    Value::Array numbers;
    numbers.reserve(partitions.size());
    for (std::int32_t partition : partitions) numbers.push_back(protocol::int_value(partition));
    entry.set("topic", string_value(topic)).set("partitions", Value(std::move(numbers)));
  }
}

OffsetsRecordError to_records_error(DecodeError error) {
  return error == DecodeError::unsupported_version ? OffsetsRecordError::unsupported_version
                                                   : OffsetsRecordError::malformed;
}

// A whole key or value body: every byte must belong to the struct.
std::expected<StructValue, OffsetsRecordError> decode_body(Fields fields, std::int16_t version,
                                                           bool flexible, std::string_view body) {
  auto decoded = protocol::decode_message(fields, version, flexible, sluice::as_bytes(body));
  if (!decoded) return std::unexpected(to_records_error(decoded.error()));
  return std::move(*decoded);
}

// Splits off a value's version, checks it against 0..4 and decodes the body in it.
std::expected<StructValue, OffsetsRecordError> decode_value_struct(Fields fields,
                                                                   std::string_view value,
                                                                   std::int16_t& version) {
  std::string_view body;
  const auto read = read_version(value, body);
  if (!read.has_value()) return std::unexpected(OffsetsRecordError::malformed);
  version = *read;
  if (version < 0 || version > kValueVersionMax) {
    return std::unexpected(OffsetsRecordError::unsupported_version);
  }
  return decode_body(fields, version, version >= kValueFlexibleFrom, body);
}

// ---- Struct <-> record types

OffsetCommitValue offset_commit_value_from(const StructValue& body) {
  OffsetCommitValue value;
  value.offset = body.get_int("offset");
  value.leader_epoch = static_cast<std::int32_t>(body.get_int("leader_epoch"));
  value.metadata = body.get_string("metadata");
  value.commit_timestamp_ms = body.get_int("commit_timestamp");
  value.expire_timestamp_ms = body.get_int("expire_timestamp");
  return value;
}

StructValue member_struct(const MemberSnapshot& member) {
  StructValue body = StructValue::with_defaults(fields_of(kMemberMetadata));
  body.set("member_id", string_value(member.member_id))
      .set("group_instance_id", nullable_string_value(member.group_instance_id))
      .set("client_id", string_value(member.client_id))
      .set("client_host", string_value(member.client_host))
      .set("rebalance_timeout", protocol::int_value(member.rebalance_timeout_ms))
      .set("session_timeout", protocol::int_value(member.session_timeout_ms))
      .set("subscription", Value(to_protocol_bytes(member.subscription)))
      .set("assignment", Value(to_protocol_bytes(member.assignment)));
  return body;
}

MemberSnapshot member_from(const StructValue& body, std::int16_t version) {
  MemberSnapshot member;
  member.member_id = body.get_string("member_id");
  // Absent before v3: the decoder leaves an empty string there, which is not an instance id.
  if (version >= 3) member.group_instance_id = nullable_string(body["group_instance_id"]);
  member.client_id = body.get_string("client_id");
  member.client_host = body.get_string("client_host");
  member.session_timeout_ms = to_int32(body["session_timeout"]);
  // v0 predates rebalance timeouts: Kafka (GroupMetadataManager.readGroupMessageValue) takes the
  // session timeout, as JoinGroup v0 does.
  member.rebalance_timeout_ms =
      version >= 1 ? to_int32(body["rebalance_timeout"]) : member.session_timeout_ms;
  member.subscription = to_text(body["subscription"].as_bytes());
  member.assignment = to_text(body["assignment"].as_bytes());
  return member;
}

GroupSnapshot group_snapshot_from(const StructValue& body, std::int16_t version) {
  GroupSnapshot snapshot;
  snapshot.protocol_type = body.get_string("protocol_type");
  snapshot.generation = to_int32(body["generation"]);
  snapshot.protocol_name = nullable_string(body["protocol"]);
  snapshot.leader = nullable_string(body["leader"]);
  snapshot.current_state_timestamp_ms = body.get_int("current_state_timestamp");
  const auto& members = body.get_structs("members");
  snapshot.members.reserve(members.size());
  for (const auto& member : members) snapshot.members.push_back(member_from(member, version));
  return snapshot;
}

std::expected<OffsetsRecord, OffsetsRecordError> decode_offset_commit_record(
    std::string_view key_body, std::int16_t key_version, std::optional<std::string_view> value) {
  auto key = decode_body(fields_of(kOffsetCommitKey), key_version, false, key_body);
  if (!key) return std::unexpected(key.error());
  OffsetCommitRecord record;
  record.key.group = key->get_string("group");
  record.key.topic = key->get_string("topic");
  record.key.partition = to_int32((*key)["partition"]);
  if (!value.has_value()) return record;  // a tombstone
  std::int16_t version = 0;
  auto body = decode_value_struct(fields_of(kOffsetCommitValue), *value, version);
  if (!body) return std::unexpected(body.error());
  record.value = offset_commit_value_from(*body);
  return record;
}

std::expected<OffsetsRecord, OffsetsRecordError> decode_group_metadata_record(
    std::string_view key_body, std::optional<std::string_view> value) {
  auto key = decode_body(fields_of(kGroupMetadataKey), kGroupMetadataKeyVersion, false, key_body);
  if (!key) return std::unexpected(key.error());
  GroupMetadataRecord record;
  record.key.group = key->get_string("group");
  if (!value.has_value()) return record;  // a tombstone
  std::int16_t version = 0;
  auto body = decode_value_struct(fields_of(kGroupMetadataValue), *value, version);
  if (!body) return std::unexpected(body.error());
  record.value = group_snapshot_from(*body, version);
  return record;
}

// ---- Java's UTF-8 decoding (String(byte[], UTF_8) with replacement)

constexpr std::uint16_t kReplacement = 0xfffd;

bool is_continuation(std::uint8_t byte) {
  return (byte & 0xc0) == 0x80;
}

// A UTF-8 decoder that yields UTF-16 code units exactly as Java's replacing decoder does: one
// U+FFFD per malformed subsequence (Java's malformed3/malformed4 lengths), one for an encoded
// surrogate, one for a sequence cut off by the end of the input.
class JavaUtf16Units {
 public:
  explicit JavaUtf16Units(std::string_view text) : text_(text) {}

  // Calls `emit(unit)` for every UTF-16 code unit, in order.
  template <typename Emit>
  void for_each(Emit&& emit) {
    while (position_ < text_.size()) {
      const std::size_t position_before = position_;
      const std::uint8_t lead = byte_at(position_);
      if (lead < 0x80) {
        emit(static_cast<std::uint16_t>(lead));
        position_ += 1;
      } else if (lead >= 0xc2 && lead <= 0xdf) {
        two_byte(lead, emit);
      } else if (lead >= 0xe0 && lead <= 0xef) {
        three_byte(lead, emit);
      } else if (lead >= 0xf0 && lead <= 0xf7) {
        four_byte(lead, emit);
      } else {  // a stray continuation byte, C0, C1 or F8..FF
        emit(kReplacement);
        position_ += 1;
      }
      assert(position_ > position_before);  // the loop is bounded by the input size
    }
  }

 private:
  std::uint8_t byte_at(std::size_t index) const { return static_cast<std::uint8_t>(text_[index]); }
  std::size_t remaining() const { return text_.size() - position_; }

  template <typename Emit>
  void two_byte(std::uint8_t lead, Emit& emit) {
    if (remaining() >= 2 && is_continuation(byte_at(position_ + 1))) {
      emit(static_cast<std::uint16_t>(((lead & 0x1f) << 6) | (byte_at(position_ + 1) & 0x3f)));
      position_ += 2;
      return;
    }
    emit(kReplacement);
    position_ += 1;
  }

  // E0 needs A0..BF next (shorter forms are overlong).
  static bool malformed_second_of_three(std::uint8_t lead, std::uint8_t second) {
    return (lead == 0xe0 && (second & 0xe0) == 0x80) || !is_continuation(second);
  }

  template <typename Emit>
  void three_byte(std::uint8_t lead, Emit& emit) {
    if (remaining() < 3) {
      emit(kReplacement);
      const bool second_malformed =
          remaining() == 2 && malformed_second_of_three(lead, byte_at(position_ + 1));
      position_ = second_malformed ? position_ + 1 : text_.size();
      return;
    }
    const std::uint8_t second = byte_at(position_ + 1);
    const std::uint8_t third = byte_at(position_ + 2);
    if (malformed_second_of_three(lead, second)) {
      emit(kReplacement);
      position_ += 1;
    } else if (!is_continuation(third)) {
      emit(kReplacement);
      position_ += 2;
    } else {
      const auto unit = static_cast<std::uint16_t>(((lead & 0x0f) << 12) | ((second & 0x3f) << 6) |
                                                   (third & 0x3f));
      const bool surrogate = unit >= 0xd800 && unit <= 0xdfff;
      emit(surrogate ? kReplacement : unit);
      position_ += 3;
    }
  }

  // F0 needs 90..BF next, F4 needs 80..8F, F5..F7 never start a code point.
  static bool malformed_second_of_four(std::uint8_t lead, std::uint8_t second) {
    return lead > 0xf4 || (lead == 0xf0 && (second < 0x90 || second > 0xbf)) ||
           (lead == 0xf4 && (second & 0xf0) != 0x80) || !is_continuation(second);
  }

  template <typename Emit>
  void four_byte(std::uint8_t lead, Emit& emit) {
    const std::size_t available = std::min<std::size_t>(remaining(), 4);
    const bool second_bad =
        lead > 0xf4 || (available >= 2 && malformed_second_of_four(lead, byte_at(position_ + 1)));
    if (second_bad) {
      emit(kReplacement);
      position_ += 1;
      return;
    }
    const bool third_bad = available >= 3 && !is_continuation(byte_at(position_ + 2));
    if (available < 4 || third_bad) {
      // Cut off by the end of the input (one replacement for the rest) or by a non-continuation.
      emit(kReplacement);
      position_ = third_bad ? position_ + 2 : text_.size();
      return;
    }
    if (!is_continuation(byte_at(position_ + 3))) {
      emit(kReplacement);
      position_ += 3;
      return;
    }
    const std::uint32_t code_point =
        ((lead & 0x07u) << 18) | ((byte_at(position_ + 1) & 0x3fu) << 12) |
        ((byte_at(position_ + 2) & 0x3fu) << 6) | (byte_at(position_ + 3) & 0x3fu);
    assert(code_point >= 0x10000 && code_point <= 0x10ffff);
    const std::uint32_t offset = code_point - 0x10000;
    emit(static_cast<std::uint16_t>(0xd800 + (offset >> 10)));
    emit(static_cast<std::uint16_t>(0xdc00 + (offset & 0x3ff)));
    position_ += 4;
  }

  std::string_view text_;
  std::size_t position_ = 0;
};

}  // namespace

std::int32_t java_string_hash(std::string_view text) {
  // Java's int arithmetic wraps; unsigned arithmetic gives the same bits without UB.
  std::uint32_t hash = 0;
  JavaUtf16Units(text).for_each([&hash](std::uint16_t unit) { hash = 31 * hash + unit; });
  return static_cast<std::int32_t>(hash);
}

std::int32_t partition_for_group(std::string_view group_id, std::int32_t partitions) {
  assert(partitions > 0);
  const std::int32_t hash = java_string_hash(group_id);
  const std::int32_t magnitude =
      hash == std::numeric_limits<std::int32_t>::min() ? 0 : (hash < 0 ? -hash : hash);
  const std::int32_t partition = magnitude % partitions;
  assert(partition >= 0 && partition < partitions);
  return partition;
}

std::string_view to_string(OffsetsRecordError error) {
  switch (error) {
    case OffsetsRecordError::malformed:
      return "malformed offsets record";
    case OffsetsRecordError::unsupported_version:
      return "unsupported offsets record version";
  }
  return "unknown offsets record error";
}

std::string encode_offset_commit_key(const OffsetCommitKey& key) {
  StructValue body = StructValue::with_defaults(fields_of(kOffsetCommitKey));
  body.set("group", string_value(key.group))
      .set("topic", string_value(key.topic))
      .set("partition", protocol::int_value(key.partition));
  return encode_versioned(fields_of(kOffsetCommitKey), kOffsetCommitKeyVersionWritten, false, body);
}

std::string encode_offset_commit_value(const OffsetCommitValue& value) {
  StructValue body = StructValue::with_defaults(fields_of(kOffsetCommitValue));
  body.set("offset", protocol::int_value(value.offset))
      .set("leader_epoch", protocol::int_value(value.leader_epoch))
      .set("metadata", string_value(value.metadata))
      .set("commit_timestamp", protocol::int_value(value.commit_timestamp_ms));
  // expire_timestamp_ms is not written: version 3 has no such field.
  return encode_versioned(fields_of(kOffsetCommitValue), kOffsetCommitValueVersionWritten, false,
                          body);
}

std::string encode_group_metadata_key(const GroupMetadataKey& key) {
  StructValue body = StructValue::with_defaults(fields_of(kGroupMetadataKey));
  body.set("group", string_value(key.group));
  return encode_versioned(fields_of(kGroupMetadataKey), kGroupMetadataKeyVersion, false, body);
}

std::string encode_group_metadata_value(const GroupSnapshot& value) {
  StructValue body = StructValue::with_defaults(fields_of(kGroupMetadataValue));
  body.set("protocol_type", string_value(value.protocol_type))
      .set("generation", protocol::int_value(value.generation))
      .set("protocol", nullable_string_value(value.protocol_name))
      .set("leader", nullable_string_value(value.leader))
      .set("current_state_timestamp", protocol::int_value(value.current_state_timestamp_ms));
  auto& members = body.get_structs("members");
  members.reserve(value.members.size());
  for (const auto& member : value.members) members.push_back(member_struct(member));
  return encode_versioned(fields_of(kGroupMetadataValue), kGroupMetadataValueVersionWritten, false,
                          body);
}

std::expected<OffsetsRecord, OffsetsRecordError> decode_offsets_record(
    std::string_view key, std::optional<std::string_view> value) {
  std::string_view key_body;
  const auto key_version = read_version(key, key_body);
  if (!key_version.has_value()) return std::unexpected(OffsetsRecordError::malformed);
  switch (*key_version) {
    case 0:
    case 1:
      return decode_offset_commit_record(key_body, *key_version, value);
    case kGroupMetadataKeyVersion:
      return decode_group_metadata_record(key_body, value);
    default:
      return std::unexpected(OffsetsRecordError::unsupported_version);
  }
}

std::optional<ConsumerSubscription> decode_consumer_subscription(std::string_view bytes) {
  std::string_view body;
  const auto version = read_version(bytes, body);
  if (!version.has_value() || *version < 0) return std::nullopt;
  ByteReader reader(sluice::as_bytes(body));
  auto decoded = protocol::decode_struct(Fields{kConsumerSubscription, 1}, *version, false, reader);
  if (!decoded) return std::nullopt;
  ConsumerSubscription subscription;
  const auto& topics = (*decoded)["topics"].as_array();
  subscription.topics.reserve(topics.size());
  for (const auto& topic : topics) subscription.topics.push_back(topic.as_string());
  // The cooperative fields, best effort: user_data, owned partitions (v1+), generation (v2+).
  // A later version only appends fields, so the newest table known reads any newer version.
  if (*version >= 1) {
    ByteReader rest(sluice::as_bytes(body));
    const auto version_read = std::min(*version, kConsumerSubscriptionVersionMax);
    auto full =
        protocol::decode_struct(Fields{kConsumerSubscription, 4}, version_read, false, rest);
    if (full) {
      subscription.owned_partitions = read_topic_partitions(full->get_structs("owned_partitions"));
      subscription.generation = to_int32((*full)["generation"]);
    }
  }
  return subscription;
}

std::optional<ConsumerAssignment> decode_consumer_assignment(std::string_view bytes) {
  std::string_view body;
  const auto version = read_version(bytes, body);
  if (!version.has_value() || *version < 0) return std::nullopt;
  ByteReader reader(sluice::as_bytes(body));
  auto decoded = protocol::decode_struct(Fields{kConsumerAssignment, 1}, *version, false, reader);
  if (!decoded) return std::nullopt;
  ConsumerAssignment assignment;
  assignment.partitions = read_topic_partitions(decoded->get_structs("assigned_partitions"));
  return assignment;
}

std::string encode_consumer_subscription(const ConsumerSubscription& subscription,
                                         std::int16_t version) {
  assert(version >= 0 && version <= kConsumerSubscriptionVersionMax);
  StructValue body = StructValue::with_defaults(fields_of(kConsumerSubscription));
  Value::Array topics;
  topics.reserve(subscription.topics.size());
  for (const auto& topic : subscription.topics) topics.push_back(string_value(topic));
  body.set("topics", Value(std::move(topics))).set("user_data", Value(Null{}));
  write_topic_partitions(subscription.owned_partitions, body, "owned_partitions");
  body.set("generation", protocol::int_value(subscription.generation))
      .set("rack_id", Value(Null{}));
  return encode_versioned(fields_of(kConsumerSubscription), version, false, body);
}

std::string encode_consumer_assignment(const ConsumerAssignment& assignment) {
  StructValue body = StructValue::with_defaults(fields_of(kConsumerAssignment));
  write_topic_partitions(assignment.partitions, body, "assigned_partitions");
  body.set("user_data", Value(Null{}));
  return encode_versioned(fields_of(kConsumerAssignment), kConsumerAssignmentVersionWritten, false,
                          body);
}

}  // namespace sluice::group
