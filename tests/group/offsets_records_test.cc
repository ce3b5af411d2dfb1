// The __consumer_offsets record codec: golden bytes for every encoder (computed by hand from the
// group-coordinator schemas), every older and the flexible value version, tombstones, truncation
// and random bytes; Kafka's partition-for-group hash (reference values from Java 17's
// String.hashCode); and the consumer protocol readers on hand-built client bytes.
#include "core/group/offsets_records.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "tests/testing/hex.h"

namespace sluice::group {
namespace {

std::string bytes_of(std::string_view hex_text) {
  const auto bytes = sluice::testing::from_hex(hex_text);
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::string hex_of(std::string_view text) {
  return sluice::testing::hex(
      std::span(reinterpret_cast<const std::byte*>(text.data()), text.size()));
}

OffsetCommitRecord commit_record(std::string_view key, std::optional<std::string_view> value) {
  auto decoded = decode_offsets_record(key, value);
  EXPECT_TRUE(decoded.has_value()) << (decoded ? "" : to_string(decoded.error()));
  if (!decoded || !std::holds_alternative<OffsetCommitRecord>(*decoded)) return {};
  return std::get<OffsetCommitRecord>(*decoded);
}

GroupMetadataRecord group_record(std::string_view key, std::optional<std::string_view> value) {
  auto decoded = decode_offsets_record(key, value);
  EXPECT_TRUE(decoded.has_value()) << (decoded ? "" : to_string(decoded.error()));
  if (!decoded || !std::holds_alternative<GroupMetadataRecord>(*decoded)) return {};
  return std::get<GroupMetadataRecord>(*decoded);
}

// A Stable "consumer" group with one member, and its value v3 bytes.
GroupSnapshot stable_group() {
  GroupSnapshot group;
  group.protocol_type = "consumer";
  group.generation = 1;
  group.protocol_name = "range";
  group.leader = "m1";
  group.current_state_timestamp_ms = 1000;
  MemberSnapshot member;
  member.member_id = "m1";
  member.client_id = "c";
  member.client_host = "/h";
  member.rebalance_timeout_ms = 300'000;
  member.session_timeout_ms = 10'000;
  member.subscription = "s";
  group.members.push_back(member);
  return group;
}

constexpr std::string_view kStableGroupValueV3 =
    "0003"                  // version
    "0008636f6e73756d6572"  // protocol_type "consumer"
    "00000001"              // generation
    "000572616e6765"        // protocol "range"
    "00026d31"              // leader "m1"
    "00000000000003e8"      // current_state_timestamp 1000
    "00000001"              // one member
    "00026d31"              // member_id "m1"
    "ffff"                  // group_instance_id null
    "000163"                // client_id "c"
    "00022f68"              // client_host "/h"
    "000493e0"              // rebalance_timeout 300000
    "00002710"              // session_timeout 10000
    "0000000173"            // subscription "s"
    "00000000";             // assignment ""

// ---- Golden encodings

TEST(OffsetsRecords, encodes_commit_key_v1) {
  EXPECT_EQ(hex_of(encode_offset_commit_key({.group = "g", .topic = "t", .partition = 3})),
            "000100016700017400000003");
}

TEST(OffsetsRecords, encodes_commit_value_v3) {
  const OffsetCommitValue value{
      .offset = 5, .leader_epoch = 2, .metadata = "m", .commit_timestamp_ms = 0x102};
  EXPECT_EQ(hex_of(encode_offset_commit_value(value)),
            "0003"
            "0000000000000005"
            "00000002"
            "00016d"
            "0000000000000102");
}

TEST(OffsetsRecords, commit_value_v3_drops_the_expire_timestamp) {
  OffsetCommitValue value{.offset = 1,
                          .leader_epoch = -1,
                          .metadata = "",
                          .commit_timestamp_ms = 2,
                          .expire_timestamp_ms = 99};
  const auto decoded =
      commit_record(encode_offset_commit_key({"g", "t", 0}), encode_offset_commit_value(value));
  ASSERT_TRUE(decoded.value.has_value());
  EXPECT_EQ(decoded.value->expire_timestamp_ms, -1);
}

TEST(OffsetsRecords, encodes_group_key_v2) {
  EXPECT_EQ(hex_of(encode_group_metadata_key({.group = "g"})), "0002000167");
}

TEST(OffsetsRecords, encodes_group_value_v3) {
  EXPECT_EQ(hex_of(encode_group_metadata_value(stable_group())), kStableGroupValueV3);
}

TEST(OffsetsRecords, encodes_an_empty_group_with_null_protocol_and_leader) {
  GroupSnapshot group;
  group.generation = 4;
  group.current_state_timestamp_ms = -1;
  EXPECT_EQ(hex_of(encode_group_metadata_value(group)),
            "0003"
            "0000"              // protocol_type ""
            "00000004"          // generation
            "ffff"              // protocol null
            "ffff"              // leader null
            "ffffffffffffffff"  // current_state_timestamp -1
            "00000000");        // no members
}

TEST(OffsetsRecords, encodes_consumer_protocol_v0) {
  EXPECT_EQ(hex_of(encode_consumer_subscription({.topics = {"t", "ab"}})),
            "0000"
            "00000002"
            "000174"
            "00026162"
            "ffffffff");  // user_data null
  EXPECT_EQ(hex_of(encode_consumer_assignment({.partitions = {{"t", {0, 1}}}})),
            "0000"
            "00000001"
            "000174"
            "00000002"
            "00000000"
            "00000001"
            "ffffffff");  // user_data null
}

// ---- Decoding every version

TEST(OffsetsRecords, decodes_commit_key_v0_and_v1) {
  for (std::string_view version : {"0000", "0001"}) {
    const auto record =
        commit_record(bytes_of(std::string(version) + "00016700017400000003"), std::nullopt);
    EXPECT_EQ(record.key, (OffsetCommitKey{.group = "g", .topic = "t", .partition = 3}));
  }
}

TEST(OffsetsRecords, decodes_commit_values_v0_v1_v2) {
  const std::string key = encode_offset_commit_key({"g", "t", 0});
  const OffsetCommitValue expected_v0{.offset = 7, .metadata = "md", .commit_timestamp_ms = 9};
  // v0 and v2 share a layout: offset, metadata, commit timestamp.
  for (std::string_view version : {"0000", "0002"}) {
    const auto record = commit_record(
        key, bytes_of(std::string(version) + "0000000000000007" + "00026d64" + "0000000000000009"));
    EXPECT_EQ(record.value, expected_v0);
  }
  const auto v1 = commit_record(key, bytes_of("0001"
                                              "0000000000000007"
                                              "0000"
                                              "0000000000000009"
                                              "0000000000000014"));
  EXPECT_EQ(v1.value, (OffsetCommitValue{.offset = 7,
                                         .leader_epoch = -1,
                                         .metadata = "",
                                         .commit_timestamp_ms = 9,
                                         .expire_timestamp_ms = 20}));
}

TEST(OffsetsRecords, decodes_flexible_commit_value_v4) {
  const std::string key = encode_offset_commit_key({"g", "t", 0});
  const OffsetCommitValue expected{
      .offset = 7, .leader_epoch = 3, .metadata = "md", .commit_timestamp_ms = 9};
  const std::string body =
      "0000000000000007"
      "00000003"
      "036d64"  // compact string "md"
      "0000000000000009";
  EXPECT_EQ(commit_record(key, bytes_of("0004" + body + "00")).value, expected);
  // An unknown tagged field (tag 5, two bytes) is skipped.
  EXPECT_EQ(commit_record(key, bytes_of("0004" + body + "010502abcd")).value, expected);
}

TEST(OffsetsRecords, decodes_group_values_v0_v1_v2) {
  const std::string key = encode_group_metadata_key({"g"});
  const std::string head =
      "0008636f6e73756d6572"
      "00000002"
      "000572616e6765"
      "00026d31";
  const std::string member_ids =
      "00026d31"
      "000163"
      "00022f68";
  const std::string member_tail =
      "00002710"
      "0000000173"
      "0000000161";
  GroupSnapshot expected;
  expected.protocol_type = "consumer";
  expected.generation = 2;
  expected.protocol_name = "range";
  expected.leader = "m1";
  expected.current_state_timestamp_ms = -1;
  expected.members.push_back({.member_id = "m1",
                              .group_instance_id = std::nullopt,
                              .client_id = "c",
                              .client_host = "/h",
                              .rebalance_timeout_ms = 10'000,  // v0: the session timeout
                              .session_timeout_ms = 10'000,
                              .subscription = "s",
                              .assignment = "a"});
  const auto v0 =
      group_record(key, bytes_of("0000" + head + "00000001" + member_ids + member_tail));
  EXPECT_EQ(v0.value, expected);

  expected.members[0].rebalance_timeout_ms = 300'000;
  const auto v1 = group_record(
      key, bytes_of("0001" + head + "00000001" + member_ids + "000493e0" + member_tail));
  EXPECT_EQ(v1.value, expected);

  expected.current_state_timestamp_ms = 1000;
  const auto v2 = group_record(key, bytes_of("0002" + head + "00000000000003e8" + "00000001" +
                                             member_ids + "000493e0" + member_tail));
  EXPECT_EQ(v2.value, expected);
}

TEST(OffsetsRecords, decodes_group_value_v3) {
  const auto record = group_record(encode_group_metadata_key({"g"}), bytes_of(kStableGroupValueV3));
  EXPECT_EQ(record.key.group, "g");
  EXPECT_EQ(record.value, stable_group());
}

TEST(OffsetsRecords, decodes_flexible_group_value_v4) {
  const std::string value =
      "0004"
      "09636f6e73756d6572"  // compact "consumer"
      "00000002"
      "0672616e6765"      // compact nullable "range"
      "00"                // leader null
      "00000000000003e8"  // current_state_timestamp
      "03"                // compact array: two members
      "036d31"            // member_id "m1"
      "036931"            // group_instance_id "i1"
      "0263"              // client_id "c"
      "032f68"            // client_host "/h"
      "000493e0"
      "00002710"
      "0273"  // subscription "s"
      "01"    // assignment ""
      "00"    // member tagged fields
      "036d32"
      "00"  // group_instance_id null
      "0263"
      "032f68"
      "00000064"
      "000000c8"
      "01"
      "0261"
      "010102ffff"  // an unknown tagged field
      "00";         // value tagged fields
  GroupSnapshot expected;
  expected.protocol_type = "consumer";
  expected.generation = 2;
  expected.protocol_name = "range";
  expected.current_state_timestamp_ms = 1000;
  expected.members.push_back({.member_id = "m1",
                              .group_instance_id = "i1",
                              .client_id = "c",
                              .client_host = "/h",
                              .rebalance_timeout_ms = 300'000,
                              .session_timeout_ms = 10'000,
                              .subscription = "s",
                              .assignment = ""});
  expected.members.push_back({.member_id = "m2",
                              .group_instance_id = std::nullopt,
                              .client_id = "c",
                              .client_host = "/h",
                              .rebalance_timeout_ms = 100,
                              .session_timeout_ms = 200,
                              .subscription = "",
                              .assignment = "a"});
  EXPECT_EQ(group_record(encode_group_metadata_key({"g"}), bytes_of(value)).value, expected);
}

TEST(OffsetsRecords, null_values_are_tombstones) {
  const auto commit = commit_record(encode_offset_commit_key({"g", "t", 1}), std::nullopt);
  EXPECT_EQ(commit.key, (OffsetCommitKey{"g", "t", 1}));
  EXPECT_FALSE(commit.value.has_value());
  const auto group = group_record(encode_group_metadata_key({"g"}), std::nullopt);
  EXPECT_EQ(group.key.group, "g");
  EXPECT_FALSE(group.value.has_value());
}

// ---- Errors

TEST(OffsetsRecords, unknown_versions_are_unsupported) {
  const std::string commit_key = encode_offset_commit_key({"g", "t", 1});
  const std::string group_key = encode_group_metadata_key({"g"});
  for (std::string_view key : {"0003000167", "ffff000167", "7fff"}) {
    auto decoded = decode_offsets_record(bytes_of(key), std::nullopt);
    ASSERT_FALSE(decoded.has_value());
    EXPECT_EQ(decoded.error(), OffsetsRecordError::unsupported_version);
  }
  for (std::string_view value : {"0005", "ffff", "8000"}) {
    for (const auto& key : {commit_key, group_key}) {
      auto decoded = decode_offsets_record(key, bytes_of(value));
      ASSERT_FALSE(decoded.has_value());
      EXPECT_EQ(decoded.error(), OffsetsRecordError::unsupported_version);
    }
  }
}

TEST(OffsetsRecords, every_truncation_and_any_trailing_byte_is_malformed) {
  const std::string commit_key = encode_offset_commit_key({"group", "topic", 7});
  const std::string commit_value =
      encode_offset_commit_value({.offset = 1, .metadata = "meta", .commit_timestamp_ms = 2});
  const std::string group_key = encode_group_metadata_key({"group"});
  const std::string group_value = bytes_of(kStableGroupValueV3);
  const std::pair<std::string, std::string> records[] = {{commit_key, commit_value},
                                                         {group_key, group_value}};
  for (const auto& [key, value] : records) {
    ASSERT_TRUE(decode_offsets_record(key, value).has_value());
    for (std::size_t length = 0; length < key.size(); ++length) {
      auto decoded = decode_offsets_record(key.substr(0, length), value);
      ASSERT_FALSE(decoded.has_value()) << "key length " << length;
      EXPECT_EQ(decoded.error(), OffsetsRecordError::malformed);
    }
    for (std::size_t length = 0; length < value.size(); ++length) {
      auto decoded = decode_offsets_record(key, std::string_view(value).substr(0, length));
      ASSERT_FALSE(decoded.has_value()) << "value length " << length;
      EXPECT_EQ(decoded.error(), OffsetsRecordError::malformed);
    }
    EXPECT_EQ(decode_offsets_record(key + '\0', value).error(), OffsetsRecordError::malformed);
    EXPECT_EQ(decode_offsets_record(key, value + '\0').error(), OffsetsRecordError::malformed);
  }
}

TEST(OffsetsRecords, rejects_nulls_and_lengths_the_schema_forbids) {
  const std::string commit_key = encode_offset_commit_key({"g", "t", 0});
  // metadata is not nullable.
  EXPECT_FALSE(decode_offsets_record(commit_key,
                                     bytes_of("00030000000000000001ffffffffffff0000000000000002"))
                   .has_value());
  // A member count far beyond the bytes present.
  EXPECT_FALSE(decode_offsets_record(encode_group_metadata_key({"g"}), bytes_of("0003"
                                                                                "0000"
                                                                                "00000000"
                                                                                "ffff"
                                                                                "ffff"
                                                                                "ffffffffffffffff"
                                                                                "7fffffff"))
                   .has_value());
}

// ---- Properties

std::string small_string() {
  return *rc::gen::container<std::string>(*rc::gen::inRange<std::size_t>(0, 40),
                                          rc::gen::arbitrary<char>());
}

std::optional<std::string> small_nullable_string() {
  if (*rc::gen::arbitrary<bool>()) return std::nullopt;
  return small_string();
}

GroupSnapshot random_snapshot() {
  GroupSnapshot snapshot;
  snapshot.protocol_type = small_string();
  snapshot.generation = *rc::gen::arbitrary<std::int32_t>();
  snapshot.protocol_name = small_nullable_string();
  snapshot.leader = small_nullable_string();
  snapshot.current_state_timestamp_ms = *rc::gen::arbitrary<std::int64_t>();
  const auto member_count = *rc::gen::inRange(0, 5);
  for (int i = 0; i < member_count; ++i) {
    snapshot.members.push_back({.member_id = small_string(),
                                .group_instance_id = small_nullable_string(),
                                .client_id = small_string(),
                                .client_host = small_string(),
                                .rebalance_timeout_ms = *rc::gen::arbitrary<std::int32_t>(),
                                .session_timeout_ms = *rc::gen::arbitrary<std::int32_t>(),
                                .subscription = small_string(),
                                .assignment = small_string()});
  }
  return snapshot;
}

RC_GTEST_PROP(OffsetsRecordsProperty, offset_commits_round_trip, ()) {
  const OffsetCommitKey key{small_string(), small_string(), *rc::gen::arbitrary<std::int32_t>()};
  OffsetCommitValue value;
  value.offset = *rc::gen::arbitrary<std::int64_t>();
  value.leader_epoch = *rc::gen::arbitrary<std::int32_t>();
  value.metadata = small_string();
  value.commit_timestamp_ms = *rc::gen::arbitrary<std::int64_t>();
  const auto decoded =
      decode_offsets_record(encode_offset_commit_key(key), encode_offset_commit_value(value));
  RC_ASSERT(decoded.has_value());
  const auto* record = std::get_if<OffsetCommitRecord>(&*decoded);
  RC_ASSERT(record != nullptr);
  RC_ASSERT(record->key == key);
  RC_ASSERT(record->value == value);
}

RC_GTEST_PROP(OffsetsRecordsProperty, group_snapshots_round_trip, ()) {
  const GroupMetadataKey key{small_string()};
  const GroupSnapshot snapshot = random_snapshot();
  const auto decoded =
      decode_offsets_record(encode_group_metadata_key(key), encode_group_metadata_value(snapshot));
  RC_ASSERT(decoded.has_value());
  const auto* record = std::get_if<GroupMetadataRecord>(&*decoded);
  RC_ASSERT(record != nullptr);
  RC_ASSERT(record->key == key);
  RC_ASSERT(record->value == snapshot);
}

std::string random_bytes() {
  return *rc::gen::container<std::string>(*rc::gen::inRange<std::size_t>(0, 64),
                                          rc::gen::arbitrary<char>());
}

// Random bodies behind every known key and value version: decoding returns, whatever it returns.
RC_GTEST_PROP(OffsetsRecordsProperty, random_bytes_never_crash_the_decoders, ()) {
  const auto key_version = *rc::gen::inRange<int>(-1, 4);
  const auto value_version = *rc::gen::inRange<int>(-1, 6);
  std::string key = bytes_of(key_version < 0 ? "ffff" : "000" + std::to_string(key_version));
  key += random_bytes();
  std::string value = bytes_of(value_version < 0 ? "ffff" : "000" + std::to_string(value_version));
  value += random_bytes();
  const auto decoded = decode_offsets_record(key, value);
  if (!decoded) RC_ASSERT(!to_string(decoded.error()).empty());
  (void)decode_offsets_record(random_bytes(), random_bytes());
  (void)decode_consumer_subscription(random_bytes());
  (void)decode_consumer_assignment(random_bytes());
}

// Valid records with bytes overwritten: lengths and counts turn into lies.
RC_GTEST_PROP(OffsetsRecordsProperty, corrupted_records_never_crash_the_decoders, ()) {
  std::string key = encode_group_metadata_key({small_string()});
  std::string value = encode_group_metadata_value(random_snapshot());
  if (*rc::gen::arbitrary<bool>()) {
    key = encode_offset_commit_key({small_string(), small_string(), 1});
    value = encode_offset_commit_value({.offset = 1, .metadata = small_string()});
  }
  std::string& target = *rc::gen::arbitrary<bool>() ? key : value;
  const auto flips = *rc::gen::inRange(1, 4);
  for (int i = 0; i < flips && !target.empty(); ++i) {
    const auto index = *rc::gen::inRange<std::size_t>(0, target.size());
    target[index] = *rc::gen::arbitrary<char>();
  }
  (void)decode_offsets_record(key, value);
}

// ---- Partition for group

TEST(OffsetsRecords, java_string_hash_matches_java_for_ascii) {
  EXPECT_EQ(java_string_hash(""), 0);
  EXPECT_EQ(java_string_hash("a"), 97);
  EXPECT_EQ(java_string_hash("hello"), 99162322);
  EXPECT_EQ(java_string_hash("group-1"), 293427299);
  EXPECT_EQ(java_string_hash("my-group"), -1906497762);
  EXPECT_EQ(java_string_hash("polygenelubricants"), std::numeric_limits<std::int32_t>::min());
}

TEST(OffsetsRecords, java_string_hash_counts_utf16_units) {
  // "grüße": ü and ß are single UTF-16 units (0xfc, 0xdf).
  EXPECT_EQ(java_string_hash("gr\xc3\xbc\xc3\x9f"
                             "e"),
            98768023);
  // "日本": U+65E5, U+672C -> 26085 * 31 + 26412.
  EXPECT_EQ(java_string_hash("\xe6\x97\xa5\xe6\x9c\xac"), 835047);
  // "g😀": U+1F600 is the surrogate pair D83D DE00 -> (103 * 31 + 55357) * 31 + 56832.
  EXPECT_EQ(java_string_hash("g\xf0\x9f\x98\x80"), 1871882);
}

TEST(OffsetsRecords, java_string_hash_replaces_invalid_utf8_like_java) {
  // Expected values from Java 17: new String(bytes, UTF_8).hashCode().
  EXPECT_EQ(java_string_hash("\xff"), 0xfffd);
  EXPECT_EQ(java_string_hash("\xc0\x80"), 2097056);  // FFFD FFFD
  EXPECT_EQ(java_string_hash("\xe2\x82"
                             "A"),
            2031588);                                           // FFFD 'A'
  EXPECT_EQ(java_string_hash("\xe0\x80\x80"), 65074269);        // FFFD x3 (overlong)
  EXPECT_EQ(java_string_hash("\xed\xa0\x80"), 0xfffd);          // one for a surrogate
  EXPECT_EQ(java_string_hash("\xf4\x90\x80\x80"), 2017367872);  // FFFD x4 (> U+10FFFF)
  EXPECT_EQ(java_string_hash("\xf0\x9f\x98"), 0xfffd);          // cut off by the end
  EXPECT_EQ(java_string_hash("\xf0\x9f"
                             "A"),
            2031588);                           // FFFD 'A'
  EXPECT_EQ(java_string_hash("A\xe2"), 67548);  // 'A' FFFD
}

TEST(OffsetsRecords, partition_for_group_matches_kafka) {
  EXPECT_EQ(partition_for_group("a", kOffsetsTopicPartitionsDefault), 47);
  EXPECT_EQ(partition_for_group("hello", 50), 22);
  EXPECT_EQ(partition_for_group("group-1", 50), 49);
  EXPECT_EQ(partition_for_group("my-group", 50), 12);
  EXPECT_EQ(partition_for_group("my-group", 7), 1);
  EXPECT_EQ(partition_for_group("my-group", 100), 62);
  EXPECT_EQ(partition_for_group("console-consumer-12345", 7), 6);
  EXPECT_EQ(partition_for_group("anything", 1), 0);
  // Utils.abs(Integer.MIN_VALUE) is 0, not a negative partition.
  EXPECT_EQ(partition_for_group("polygenelubricants", 50), 0);
  EXPECT_EQ(partition_for_group("polygenelubricants", 7), 0);
}

RC_GTEST_PROP(OffsetsRecordsProperty, partition_for_group_is_in_range, ()) {
  const auto partitions = *rc::gen::inRange<std::int32_t>(1, 1000);
  const auto partition = partition_for_group(random_bytes(), partitions);
  RC_ASSERT(partition >= 0);
  RC_ASSERT(partition < partitions);
}

// ---- Consumer protocol

TEST(ConsumerProtocol, reads_a_v1_subscription_with_owned_partitions) {
  // As cooperative clients send it: topics, user_data, owned partitions.
  const std::string subscription = bytes_of(
      "0001"
      "00000002"
      "00027431"  // "t1"
      "00027432"  // "t2"
      "00000000"  // user_data: empty, as kafka-python sends it
      "00000001"  // owned partitions: t1 [0, 3]
      "00027431"
      "00000002"
      "00000000"
      "00000003");
  const auto decoded = decode_consumer_subscription(subscription);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->topics, (std::vector<std::string>{"t1", "t2"}));
  EXPECT_EQ(decoded->owned_partitions, (ConsumerTopicPartitions{{"t1", {0, 3}}}));
  EXPECT_EQ(decoded->generation, -1);
}

TEST(ConsumerProtocol, encodes_cooperative_subscription_v1_and_v2) {
  const ConsumerSubscription subscription{
      .topics = {"t"}, .owned_partitions = {{"t", {2}}}, .generation = 7};
  const std::string v1 =
      "0001"
      "00000001"
      "000174"
      "ffffffff"  // user_data null
      "00000001"  // owned partitions: t [2]
      "000174"
      "00000001"
      "00000002";
  EXPECT_EQ(hex_of(encode_consumer_subscription(subscription, 1)), v1);
  EXPECT_EQ(hex_of(encode_consumer_subscription(subscription, 2)),
            "0002" + v1.substr(4) + "00000007");
  EXPECT_EQ(hex_of(encode_consumer_subscription(subscription, 3)),
            "0003" + v1.substr(4) + "00000007" + "ffff");  // rack null
  for (std::int16_t version = 1; version <= 3; ++version) {
    const auto decoded =
        decode_consumer_subscription(encode_consumer_subscription(subscription, version));
    ASSERT_TRUE(decoded.has_value()) << version;
    EXPECT_EQ(decoded->owned_partitions, subscription.owned_partitions) << version;
    EXPECT_EQ(decoded->generation, version >= 2 ? 7 : -1) << version;
  }
}

TEST(ConsumerProtocol, reads_topics_of_a_v1_subscription_whose_owned_partitions_are_cut_off) {
  std::string bytes = encode_consumer_subscription(
      {.topics = {"t"}, .owned_partitions = {{"t", {0, 1}}}, .generation = 3}, 2);
  bytes.resize(bytes.size() - 6);
  const auto decoded = decode_consumer_subscription(bytes);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->topics, std::vector<std::string>{"t"});
  EXPECT_TRUE(decoded->owned_partitions.empty());
  EXPECT_EQ(decoded->generation, -1);
}

TEST(ConsumerProtocol, reads_a_v3_subscription_with_generation_ignoring_rack) {
  const std::string subscription = bytes_of(
      "0003"
      "00000001"
      "000174"
      "ffffffff"        // user_data null
      "00000000"        // no owned partitions
      "00000005"        // generation
      "00047261636b");  // rack "rack"
  const auto decoded = decode_consumer_subscription(subscription);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->topics, (std::vector<std::string>{"t"}));
  EXPECT_TRUE(decoded->owned_partitions.empty());
  EXPECT_EQ(decoded->generation, 5);
}

TEST(ConsumerProtocol, reads_a_v1_assignment) {
  const auto decoded =
      decode_consumer_assignment(bytes_of("0001"
                                          "00000002"
                                          "00027431"
                                          "00000002"
                                          "00000000"
                                          "00000001"
                                          "00027432"
                                          "00000000"
                                          "00000003abcdef"));  // user_data
  ASSERT_TRUE(decoded.has_value());
  using Partitions = std::vector<std::pair<std::string, std::vector<std::int32_t>>>;
  EXPECT_EQ(decoded->partitions, (Partitions{{"t1", {0, 1}}, {"t2", {}}}));
}

TEST(ConsumerProtocol, rejects_malformed_and_negative_versions) {
  EXPECT_FALSE(decode_consumer_subscription("").has_value());
  EXPECT_FALSE(decode_consumer_subscription(bytes_of("00")).has_value());
  EXPECT_FALSE(decode_consumer_subscription(bytes_of("ffff00000000")).has_value());
  EXPECT_FALSE(decode_consumer_subscription(bytes_of("000000000001")).has_value());    // cut off
  EXPECT_FALSE(decode_consumer_subscription(bytes_of("0000ffffffff")).has_value());    // null list
  EXPECT_FALSE(decode_consumer_subscription(bytes_of("00007fffffff00")).has_value());  // count lie
  EXPECT_FALSE(decode_consumer_assignment(bytes_of("ffff00000000")).has_value());
  EXPECT_FALSE(decode_consumer_assignment(bytes_of("00000000000100017400000002")).has_value());
  const std::string assignment = encode_consumer_assignment({.partitions = {{"topic", {1, 2}}}});
  // Every cut inside the partition list fails; the user_data after it is not read.
  for (std::size_t length = 0; length + 4 < assignment.size(); ++length) {
    EXPECT_FALSE(decode_consumer_assignment(assignment.substr(0, length)).has_value()) << length;
  }
}

RC_GTEST_PROP(ConsumerProtocolProperty, encodings_round_trip, ()) {
  ConsumerSubscription subscription;
  ConsumerAssignment assignment;
  const auto topic_count = *rc::gen::inRange(0, 6);
  for (int i = 0; i < topic_count; ++i) {
    subscription.topics.push_back(small_string());
    assignment.partitions.emplace_back(small_string(),
                                       *rc::gen::arbitrary<std::vector<std::int32_t>>());
  }
  const auto version = *rc::gen::inRange<std::int16_t>(0, kConsumerSubscriptionVersionMax + 1);
  if (version >= 1) subscription.owned_partitions = assignment.partitions;
  if (version >= 2) subscription.generation = *rc::gen::arbitrary<std::int32_t>();
  const auto subscription_decoded =
      decode_consumer_subscription(encode_consumer_subscription(subscription, version));
  RC_ASSERT(subscription_decoded.has_value());
  RC_ASSERT(subscription_decoded->topics == subscription.topics);
  RC_ASSERT(subscription_decoded->owned_partitions == subscription.owned_partitions);
  RC_ASSERT(subscription_decoded->generation == subscription.generation);
  const auto assignment_decoded =
      decode_consumer_assignment(encode_consumer_assignment(assignment));
  RC_ASSERT(assignment_decoded.has_value());
  RC_ASSERT(assignment_decoded->partitions == assignment.partitions);
}

}  // namespace
}  // namespace sluice::group
