#include "core/protocol/codec.h"

#include <gtest/gtest.h>

#include "tests/testing/hex.h"
#include <rapidcheck/gtest.h>

#include <string>

#include "core/protocol/messages.h"

namespace sluice::protocol {
namespace {

using sluice::testing::from_hex;
using sluice::testing::hex;

// Reference bytes in these tests come from kafka-python 2.0.2's protocol classes
// (Debian python3-kafka), an independent implementation of the same schemas.

TEST(Codec, decodes_metadata_requests_of_every_shape) {
  auto v0 = decode_message(kMetadataSchema.request, 0, false, from_hex("0000000200016100026263"));
  ASSERT_TRUE(v0.has_value());
  const auto& topics = v0->get_structs("topics");
  ASSERT_EQ(topics.size(), 2u);
  EXPECT_EQ(topics[0].get_string("name"), "a");
  EXPECT_EQ(topics[1].get_string("name"), "bc");

  auto all = decode_message(kMetadataSchema.request, 1, false, from_hex("ffffffff"));
  ASSERT_TRUE(all.has_value());
  EXPECT_TRUE((*all)["topics"].is_null());
  // Null topics is not legal in v0.
  EXPECT_FALSE(decode_message(kMetadataSchema.request, 0, false, from_hex("ffffffff")).has_value());

  auto v4 = decode_message(kMetadataSchema.request, 4, false, from_hex("0000000100017401"));
  ASSERT_TRUE(v4.has_value());
  EXPECT_TRUE(v4->get_bool("allow_auto_topic_creation"));
}

TEST(Codec, encodes_a_metadata_response_byte_for_byte) {
  auto response = StructValue::with_defaults(kMetadataSchema.response);
  auto& broker = response.add("brokers");
  broker.set("node_id", std::int64_t{1}).set("host", std::string("127.0.0.1")).set("port", std::int64_t{9092});
  broker.set("rack", Null{});
  response.set("cluster_id", std::string("c1")).set("controller_id", std::int64_t{1});
  auto& topic = response.add("topics");
  topic.set("name", std::string("t"));
  auto& partition = topic.add("partitions");
  partition.set("leader_id", std::int64_t{1});
  partition.set("replica_nodes", Value::Array{Value(std::int64_t{1})});
  partition.set("isr_nodes", Value::Array{Value(std::int64_t{1})});
  Bytes out;
  encode_struct(kMetadataSchema.response, 5, false, response, out);
  EXPECT_EQ(hex(out),
            "00000000000000010000000100093132372e302e302e3100002384ffff00026331000000010000000100000001"
            "740000000001000000000000000000010000000100000001000000010000000100000000");
}

TEST(Codec, encodes_api_versions_responses_v0_and_v1) {
  auto response = StructValue::with_defaults(kApiVersionsSchema.response);
  response.add("api_keys").set("api_key", std::int64_t{0}).set("min_version", std::int64_t{3}).set("max_version", std::int64_t{7});
  response.add("api_keys").set("api_key", std::int64_t{18}).set("min_version", std::int64_t{0}).set("max_version", std::int64_t{3});
  Bytes v0;
  encode_struct(kApiVersionsSchema.response, 0, false, response, v0);
  EXPECT_EQ(hex(v0), "000000000002000000030007001200000003");
  Bytes v1;
  encode_struct(kApiVersionsSchema.response, 1, false, response, v1);
  EXPECT_EQ(hex(v1), "00000000000200000003000700120000000300000000");
}

TEST(Codec, flexible_versions_use_compact_encodings_and_tagged_fields) {
  // ApiVersions v3 request as librdkafka sends it: compact strings and an empty tag section.
  auto value = StructValue::with_defaults(kApiVersionsSchema.request);
  value.set("client_software_name", std::string("librdkafka")).set("client_software_version", std::string("2.0.2"));
  Bytes encoded;
  encode_struct(kApiVersionsSchema.request, 3, true, value, encoded);
  EXPECT_EQ(hex(encoded), "0b6c696272646b61666b6106322e302e3200");  // len+1 = 0x0b, 0x06; tags: 0
  auto decoded = decode_message(kApiVersionsSchema.request, 3, true, encoded);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->get_string("client_software_name"), "librdkafka");

  // An unknown tagged field is skipped; a tagged field running past the input is refused.
  Bytes with_unknown_tag = from_hex("0b6c696272646b61666b6106322e302e3201050278ff");
  auto skipped = decode_message(kApiVersionsSchema.request, 3, true, with_unknown_tag);
  ASSERT_TRUE(skipped.has_value()) << to_string(skipped.error());
  Bytes overrun = from_hex("0b6c696272646b61666b6106322e302e32010509");
  EXPECT_FALSE(decode_message(kApiVersionsSchema.request, 3, true, overrun).has_value());
}

TEST(Codec, request_header_keeps_a_non_compact_client_id_in_flexible_versions) {
  RequestHeader header{18, 3, 7, std::string("rdkafka")};
  Bytes out;
  encode_request_header(header, true, out);
  // api key 18, version 3, correlation 7, int16 length 7 + "rdkafka", then an empty tag section.
  EXPECT_EQ(hex(out), "0012000300000007000772646b61666b6100");
}

TEST(Codec, refuses_lying_lengths_and_counts_before_allocating) {
  // An array count of 2^31-1 in a 4-byte body.
  EXPECT_EQ(decode_message(kMetadataSchema.request, 1, false, from_hex("7fffffff")).error(),
            DecodeError::too_many_elements);
  EXPECT_EQ(decode_message(kMetadataSchema.request, 1, false, from_hex("00000001fffe")).error(),
            DecodeError::negative_length);
  EXPECT_EQ(decode_message(kMetadataSchema.request, 1, false, from_hex("0000000100056162")).error(),
            DecodeError::truncated);
  EXPECT_EQ(decode_message(kMetadataSchema.request, 1, false, from_hex("0000000000")).error(),
            DecodeError::trailing_bytes);
}

// Every schema, every version: defaults survive an encode/decode round trip, and arbitrary bytes
// are decoded or refused without reading out of bounds (run under ASan in CI).
TEST(Codec, every_schema_round_trips_its_defaults_in_every_version) {
  for (const MessageSchema* schema : all_schemas()) {
    for (std::int16_t version = schema->valid.min; version <= schema->valid.max; ++version) {
      const bool flexible = schema->flexible(version);
      for (Fields fields : {schema->request, schema->response}) {
        auto value = StructValue::with_defaults(fields);
        Bytes encoded;
        encode_struct(fields, version, flexible, value, encoded);
        auto decoded = decode_message(fields, version, flexible, encoded);
        ASSERT_TRUE(decoded.has_value()) << schema->name << " v" << version << ": " << to_string(decoded.error());
        Bytes again;
        encode_struct(fields, version, flexible, *decoded, again);
        EXPECT_EQ(again, encoded) << schema->name << " v" << version;
      }
    }
  }
}

RC_GTEST_PROP(Codec, arbitrary_bytes_never_break_the_decoder, (const std::vector<std::uint8_t>& noise)) {
  Bytes bytes(noise.size());
  for (std::size_t i = 0; i < noise.size(); ++i) bytes[i] = static_cast<std::byte>(noise[i]);
  for (const MessageSchema* schema : all_schemas()) {
    for (std::int16_t version = schema->valid.min; version <= schema->valid.max; ++version) {
      (void)decode_message(schema->request, version, schema->flexible(version), bytes);
      (void)decode_message(schema->response, version, schema->flexible(version), bytes);
    }
  }
  ByteReader reader(bytes);
  (void)decode_request_header(reader);
}

}  // namespace
}  // namespace sluice::protocol
