// Byte-level checks of the Produce/Fetch/ListOffsets/InitProducerId, admin and group schemas.
// Every reference vector was produced by kafka-python 2.0.2 (Debian python3-kafka), an independent
// implementation: `<Name>Request[v].SCHEMA.encode(values).hex()`. For the APIs kafka-python does
// not define (DeleteRecords, InitProducerId, OffsetDelete) the vectors come from kafka-python's
// primitive types (`kafka.protocol.types.Schema(...)`) laid out from the Kafka message schemas.
// Requests are decoded from kafka-python's bytes and checked field by field; responses are built as
// a broker would build them and compared byte for byte with kafka-python's encoding.
#include <gtest/gtest.h>

#include "tests/testing/hex.h"

#include <string>

#include "core/protocol/codec.h"
#include "core/protocol/messages.h"

namespace sluice::protocol {
namespace {

using sluice::testing::from_hex;
using sluice::testing::hex;

Value i(std::int64_t number) { return Value(number); }
Value s(const char* text) { return Value(std::string(text)); }
Value b(std::string_view hex_text) { return Value(from_hex(hex_text)); }

StructValue decode_request(const MessageSchema& schema, std::int16_t version, std::string_view hex_text) {
  auto decoded = decode_message(schema.request, version, schema.flexible(version), from_hex(hex_text));
  EXPECT_TRUE(decoded.has_value()) << schema.name << " v" << version << ": "
                                   << (decoded ? "" : to_string(decoded.error()));
  if (!decoded) return StructValue::with_defaults(schema.request);
  // Re-encoding what was decoded gives the same bytes back.
  Bytes again;
  encode_struct(schema.request, version, schema.flexible(version), *decoded, again);
  EXPECT_EQ(hex(again), hex_text) << schema.name << " v" << version;
  return std::move(*decoded);
}

std::string encode_response(const MessageSchema& schema, std::int16_t version, const StructValue& value) {
  Bytes out;
  encode_struct(schema.response, version, schema.flexible(version), value, out);
  // And it decodes back to the same bytes.
  auto decoded = decode_message(schema.response, version, schema.flexible(version), out);
  EXPECT_TRUE(decoded.has_value()) << schema.name << " v" << version;
  if (decoded) {
    Bytes again;
    encode_struct(schema.response, version, schema.flexible(version), *decoded, again);
    EXPECT_EQ(again, out) << schema.name << " v" << version;
  }
  return hex(out);
}

std::string hex_of(const Value& value) { return hex(value.as_bytes()); }

TEST(Messages, registry_lists_every_api_once_in_key_order_with_the_recommended_ranges) {
  struct Expected {
    std::int16_t key;
    std::int16_t min;
    std::int16_t max;
  };
  // PROTOCOL.md section 1, column "Rec.".
  const Expected expected[] = {{0, 3, 7},   {1, 4, 11},  {2, 1, 3},  {3, 0, 6},  {8, 2, 7},   {9, 1, 5},
                               {10, 0, 2},  {11, 0, 5},  {12, 0, 3}, {13, 0, 3}, {14, 0, 3},  {15, 0, 4},
                               {16, 0, 2},  {18, 0, 3},  {19, 0, 4}, {20, 0, 3}, {21, 0, 1},  {22, 0, 1},
                               {32, 0, 2},  {33, 0, 1},  {37, 0, 1}, {42, 0, 1}, {47, 0, 0}};
  std::int16_t previous = -1;
  for (const MessageSchema* schema : all_schemas()) {
    EXPECT_GT(schema->api_key, previous) << schema->name;
    previous = schema->api_key;
    // Only ApiVersions v3 is flexible within the advertised ranges.
    for (std::int16_t version = schema->valid.min; version <= schema->valid.max; ++version) {
      EXPECT_EQ(schema->flexible(version), schema->api_key == api::kApiVersions && version >= 3)
          << schema->name << " v" << version;
    }
  }
  for (const Expected& api : expected) {
    const MessageSchema* schema = find_schema(api.key);
    if (schema == nullptr) {
      ADD_FAILURE() << "api key " << api.key << " not registered";
      continue;
    }
    EXPECT_EQ(schema->valid.min, api.min) << schema->name;
    EXPECT_EQ(schema->valid.max, api.max) << schema->name;
  }
  EXPECT_EQ(all_schemas().size(), std::size(expected));
}

// ---------------------------------------------------------------------------------------------
// Produce (0)

TEST(Messages, produce_request_v3_with_a_transactional_id_and_a_null_records_field) {
  auto request = decode_request(kProduceSchema, 3,
                                "00027478ffff000005dc0000000100017400000002000000000000000301020300000001ffffffff");
  EXPECT_EQ(request.get_nullable_string("transactional_id"), "tx");
  EXPECT_EQ(request.get_int("acks"), -1);
  EXPECT_EQ(request.get_int("timeout_ms"), 1500);
  const auto& topics = request.get_structs("topic_data");
  ASSERT_EQ(topics.size(), 1u);
  EXPECT_EQ(topics[0].get_string("name"), "t");
  const auto& partitions = topics[0].get_structs("partition_data");
  ASSERT_EQ(partitions.size(), 2u);
  EXPECT_EQ(partitions[0].get_int("index"), 0);
  EXPECT_EQ(hex_of(partitions[0]["records"]), "010203");
  EXPECT_EQ(partitions[1].get_int("index"), 1);
  EXPECT_TRUE(partitions[1]["records"].is_null());
}

TEST(Messages, produce_request_v7_without_a_transactional_id) {
  auto request =
      decode_request(kProduceSchema, 7, "ffff000100007530000000020005746f706963000000010000000200000001aa00017500000000");
  EXPECT_FALSE(request.get_nullable_string("transactional_id").has_value());
  EXPECT_EQ(request.get_int("acks"), 1);
  EXPECT_EQ(request.get_int("timeout_ms"), 30000);
  const auto& topics = request.get_structs("topic_data");
  ASSERT_EQ(topics.size(), 2u);
  EXPECT_EQ(topics[0].get_string("name"), "topic");
  ASSERT_EQ(topics[0].get_structs("partition_data").size(), 1u);
  EXPECT_EQ(topics[0].get_structs("partition_data")[0].get_int("index"), 2);
  EXPECT_EQ(hex_of(topics[0].get_structs("partition_data")[0]["records"]), "aa");
  EXPECT_EQ(topics[1].get_string("name"), "u");
  EXPECT_TRUE(topics[1].get_structs("partition_data").empty());
}

TEST(Messages, produce_responses_v3_and_v7) {
  auto response = StructValue::with_defaults(kProduceSchema.response);
  auto& topic = response.add("responses");
  topic.set("name", s("t"));
  auto& p0 = topic.add("partition_responses");
  p0.set("index", i(0)).set("base_offset", i(42));
  EXPECT_EQ(p0.get_int("log_append_time_ms"), -1);  // defaults
  EXPECT_EQ(p0.get_int("log_start_offset"), -1);
  response.set("throttle_time_ms", i(5));
  EXPECT_EQ(encode_response(kProduceSchema, 3, response),
            "0000000100017400000001000000000000000000000000002affffffffffffffff00000005");

  p0.set("log_append_time_ms", i(1700000000000)).set("log_start_offset", i(7));
  auto& p1 = topic.add("partition_responses");
  p1.set("index", i(1)).set("error_code", i(6)).set("base_offset", i(-1));
  response.set("throttle_time_ms", i(0));
  EXPECT_EQ(encode_response(kProduceSchema, 7, response),
            "0000000100017400000002000000000000000000000000002a0000018bcfe568000000000000000007000000010006ffffffffff"
            "ffffffffffffffffffffffffffffffffffffff00000000");
}

// ---------------------------------------------------------------------------------------------
// Fetch (1)

TEST(Messages, fetch_request_v4) {
  auto request =
      decode_request(kFetchSchema, 4, "ffffffff000001f4000000010320000001000000010001740000000100000000000000000000006400100000");
  EXPECT_EQ(request.get_int("replica_id"), -1);
  EXPECT_EQ(request.get_int("max_wait_ms"), 500);
  EXPECT_EQ(request.get_int("min_bytes"), 1);
  EXPECT_EQ(request.get_int("max_bytes"), 52428800);
  EXPECT_EQ(request.get_int("isolation_level"), 1);
  EXPECT_EQ(request.get_int("session_id"), 0);     // absent before v7: defaults
  EXPECT_EQ(request.get_int("session_epoch"), -1);
  const auto& topics = request.get_structs("topics");
  ASSERT_EQ(topics.size(), 1u);
  EXPECT_EQ(topics[0].get_string("topic"), "t");
  const auto& partitions = topics[0].get_structs("partitions");
  ASSERT_EQ(partitions.size(), 1u);
  EXPECT_EQ(partitions[0].get_int("partition"), 0);
  EXPECT_EQ(partitions[0].get_int("current_leader_epoch"), -1);
  EXPECT_EQ(partitions[0].get_int("fetch_offset"), 100);
  EXPECT_EQ(partitions[0].get_int("log_start_offset"), -1);
  EXPECT_EQ(partitions[0].get_int("partition_max_bytes"), 1048576);
}

TEST(Messages, fetch_request_v11) {
  auto request = decode_request(kFetchSchema, 11,
                                "ffffffff000001f40000000103200000000000000c000000030000000100017400000001000000000000000500"
                                "000000000000640000000000000000001000000000000000067261636b2d61");
  EXPECT_EQ(request.get_int("isolation_level"), 0);
  EXPECT_EQ(request.get_int("session_id"), 12);
  EXPECT_EQ(request.get_int("session_epoch"), 3);
  const auto& partition = request.get_structs("topics")[0].get_structs("partitions")[0];
  EXPECT_EQ(partition.get_int("current_leader_epoch"), 5);
  EXPECT_EQ(partition.get_int("fetch_offset"), 100);
  EXPECT_EQ(partition.get_int("log_start_offset"), 0);
  EXPECT_EQ(partition.get_int("partition_max_bytes"), 1048576);
  EXPECT_TRUE(request.get_structs("forgotten_topics_data").empty());
  EXPECT_EQ(request.get_string("rack_id"), "rack-a");
}

TEST(Messages, fetch_request_v7_forgotten_topics) {
  // kafka-python 2.0.2 cannot encode a non-empty forgotten_topics_data (its schema declares the
  // topic as the String class, not an instance); these bytes come from kafka-python's primitive
  // types laid out from the Kafka schema:
  // replica -1, wait 0, min 0, max 0, isolation 0, session 1, epoch 2, no topics,
  // forgotten [("t", [0, 3])].
  auto request = decode_request(kFetchSchema, 7,
                                "ffffffff00000000000000000000000000000000010000000200000000000000010001740000000200000000"
                                "00000003");
  const auto& forgotten = request.get_structs("forgotten_topics_data");
  ASSERT_EQ(forgotten.size(), 1u);
  EXPECT_EQ(forgotten[0].get_string("topic"), "t");
  const auto& partitions = forgotten[0]["partitions"].as_array();
  ASSERT_EQ(partitions.size(), 2u);
  EXPECT_EQ(partitions[1].as_int(), 3);
}

TEST(Messages, fetch_responses_v4_and_v11) {
  auto v4 = StructValue::with_defaults(kFetchSchema.response);
  auto& topic = v4.add("responses");
  topic.set("topic", s("t"));
  auto& partition = topic.add("partitions");
  partition.set("high_watermark", i(10)).set("last_stable_offset", i(10));
  auto& aborted = partition.add("aborted_transactions");
  aborted.set("producer_id", i(7)).set("first_offset", i(3));
  partition.set("records", b("0001"));
  EXPECT_EQ(encode_response(kFetchSchema, 4, v4),
            "000000000000000100017400000001000000000000000000000000000a000000000000000a0000000100000000000000070000000000"
            "000003000000020001");

  auto v11 = StructValue::with_defaults(kFetchSchema.response);
  v11.set("throttle_time_ms", i(1)).set("session_id", i(12));
  auto& t = v11.add("responses");
  t.set("topic", s("t"));
  auto& p0 = t.add("partitions");
  p0.set("high_watermark", i(10)).set("last_stable_offset", i(9)).set("log_start_offset", i(2));
  p0.set("aborted_transactions", Null{}).set("records", b("ff"));
  EXPECT_EQ(p0.get_int("preferred_read_replica"), -1);
  auto& p1 = t.add("partitions");
  p1.set("partition_index", i(1)).set("error_code", i(1)).set("high_watermark", i(-1));
  EXPECT_TRUE(p1["records"].is_null());  // records default to null
  EXPECT_EQ(encode_response(kFetchSchema, 11, v11),
            "0000000100000000000c0000000100017400000002000000000000000000000000000a00000000000000090000000000000002ffff"
            "ffffffffffff00000001ff000000010001ffffffffffffffffffffffffffffffffffffffffffffffff00000000ffffffffffffffff");
}

// ---------------------------------------------------------------------------------------------
// ListOffsets (2)

TEST(Messages, list_offsets_requests_v1_and_v3) {
  auto v1 = decode_request(kListOffsetsSchema, 1,
                           "ffffffff000000010001740000000200000000ffffffffffffffff00000001fffffffffffffffe");
  EXPECT_EQ(v1.get_int("replica_id"), -1);
  const auto& partitions = v1.get_structs("topics")[0].get_structs("partitions");
  ASSERT_EQ(partitions.size(), 2u);
  EXPECT_EQ(partitions[0].get_int("timestamp"), -1);
  EXPECT_EQ(partitions[1].get_int("partition_index"), 1);
  EXPECT_EQ(partitions[1].get_int("timestamp"), -2);

  auto v3 = decode_request(kListOffsetsSchema, 3, "ffffffff010000000100017400000001000000000000011f71fb04cb");
  EXPECT_EQ(v3.get_int("isolation_level"), 1);
  EXPECT_EQ(v3.get_structs("topics")[0].get_string("name"), "t");
  EXPECT_EQ(v3.get_structs("topics")[0].get_structs("partitions")[0].get_int("timestamp"), 1234567890123);
}

TEST(Messages, list_offsets_responses_v1_and_v3) {
  auto response = StructValue::with_defaults(kListOffsetsSchema.response);
  auto& topic = response.add("topics");
  topic.set("name", s("t"));
  auto& p0 = topic.add("partitions");
  EXPECT_EQ(p0.get_int("timestamp"), -1);
  p0.set("offset", i(42));
  EXPECT_EQ(encode_response(kListOffsetsSchema, 1, response),
            "0000000100017400000001000000000000ffffffffffffffff000000000000002a");

  response.set("throttle_time_ms", i(3));
  p0.set("timestamp", i(1234567890123)).set("offset", i(7));
  topic.add("partitions").set("partition_index", i(1)).set("error_code", i(3));
  EXPECT_EQ(encode_response(kListOffsetsSchema, 3, response),
            "0000000300000001000174000000020000000000000000011f71fb04cb0000000000000007000000010003ffffffffffffffffff"
            "ffffffffffffff");
}

// ---------------------------------------------------------------------------------------------
// InitProducerId (22)

TEST(Messages, init_producer_id_v0_and_v1) {
  auto idempotent = decode_request(kInitProducerIdSchema, 0, "ffff0000ea60");
  EXPECT_FALSE(idempotent.get_nullable_string("transactional_id").has_value());
  EXPECT_EQ(idempotent.get_int("transaction_timeout_ms"), 60000);
  auto transactional = decode_request(kInitProducerIdSchema, 1, "000574786e2d31000dbba0");
  EXPECT_EQ(transactional.get_nullable_string("transactional_id"), "txn-1");
  EXPECT_EQ(transactional.get_int("transaction_timeout_ms"), 900000);

  auto response = StructValue::with_defaults(kInitProducerIdSchema.response);
  EXPECT_EQ(response.get_int("producer_id"), -1);
  response.set("producer_id", i(4000));
  EXPECT_EQ(encode_response(kInitProducerIdSchema, 0, response), "0000000000000000000000000fa00000");
  response.set("throttle_time_ms", i(10)).set("error_code", i(15)).set("producer_id", i(-1)).set("producer_epoch", i(-1));
  EXPECT_EQ(encode_response(kInitProducerIdSchema, 1, response), "0000000a000fffffffffffffffffffff");
}

// ---------------------------------------------------------------------------------------------
// CreateTopics (19)

TEST(Messages, create_topics_requests_v0_and_v3) {
  auto v0 = decode_request(kCreateTopicsSchema, 0,
                           "000000010001740000000300010000000000000001000e636c65616e75702e706f6c6963790007636f6d70616374"
                           "00001388");
  EXPECT_EQ(v0.get_int("timeout_ms"), 5000);
  EXPECT_FALSE(v0.get_bool("validate_only"));
  const auto& topic = v0.get_structs("topics").at(0);
  EXPECT_EQ(topic.get_string("name"), "t");
  EXPECT_EQ(topic.get_int("num_partitions"), 3);
  EXPECT_EQ(topic.get_int("replication_factor"), 1);
  EXPECT_TRUE(topic.get_structs("assignments").empty());
  ASSERT_EQ(topic.get_structs("configs").size(), 1u);
  EXPECT_EQ(topic.get_structs("configs")[0].get_string("name"), "cleanup.policy");
  EXPECT_EQ(topic.get_structs("configs")[0].get_nullable_string("value"), "compact");

  auto v3 = decode_request(kCreateTopicsSchema, 3,
                           "00000001000174ffffffffffff000000010000000000000002000000010000000200000001000c726574656e7469"
                           "6f6e2e6d73ffff0000753001");
  EXPECT_EQ(v3.get_int("timeout_ms"), 30000);
  EXPECT_TRUE(v3.get_bool("validate_only"));
  const auto& t3 = v3.get_structs("topics").at(0);
  EXPECT_EQ(t3.get_int("num_partitions"), -1);
  EXPECT_EQ(t3.get_int("replication_factor"), -1);
  const auto& assignment = t3.get_structs("assignments").at(0);
  EXPECT_EQ(assignment.get_int("partition_index"), 0);
  ASSERT_EQ(assignment["broker_ids"].as_array().size(), 2u);
  EXPECT_EQ(assignment["broker_ids"].as_array()[1].as_int(), 2);
  EXPECT_FALSE(t3.get_structs("configs").at(0).get_nullable_string("value").has_value());
}

TEST(Messages, create_topics_responses_v0_and_v3) {
  auto response = StructValue::with_defaults(kCreateTopicsSchema.response);
  response.add("topics").set("name", s("t"));
  EXPECT_EQ(encode_response(kCreateTopicsSchema, 0, response), "000000010001740000");
  response.set("throttle_time_ms", i(7));
  response.get_structs("topics")[0].set("error_code", i(36)).set("error_message", s("Topic already exists."));
  response.add("topics").set("name", s("u")).set("error_message", Null{});
  EXPECT_EQ(encode_response(kCreateTopicsSchema, 3, response),
            "000000070000000200017400240015546f70696320616c7265616479206578697374732e0001750000ffff");
}

// ---------------------------------------------------------------------------------------------
// DeleteTopics (20)

TEST(Messages, delete_topics_v0_and_v3) {
  auto v0 = decode_request(kDeleteTopicsSchema, 0, "0000000200016100026263000003e8");
  ASSERT_EQ(v0["topic_names"].as_array().size(), 2u);
  EXPECT_EQ(v0["topic_names"].as_array()[1].as_string(), "bc");
  EXPECT_EQ(v0.get_int("timeout_ms"), 1000);
  auto v3 = decode_request(kDeleteTopicsSchema, 3, "0000000100017400007530");
  EXPECT_EQ(v3["topic_names"].as_array()[0].as_string(), "t");
  EXPECT_EQ(v3.get_int("timeout_ms"), 30000);

  auto response = StructValue::with_defaults(kDeleteTopicsSchema.response);
  response.add("responses").set("name", s("a"));
  response.add("responses").set("name", s("bc")).set("error_code", i(3));
  EXPECT_EQ(encode_response(kDeleteTopicsSchema, 0, response), "000000020001610000000262630003");
  auto v3_response = StructValue::with_defaults(kDeleteTopicsSchema.response);
  v3_response.set("throttle_time_ms", i(2)).add("responses").set("name", s("t"));
  EXPECT_EQ(encode_response(kDeleteTopicsSchema, 3, v3_response), "00000002000000010001740000");
}

// ---------------------------------------------------------------------------------------------
// DeleteRecords (21): not in kafka-python's API classes; vectors from its primitive types.

TEST(Messages, delete_records_v0_and_v1) {
  for (std::int16_t version : {0, 1}) {
    auto request = decode_request(kDeleteRecordsSchema, version,
                                  "000000010001740000000200000000000000000000000500000001ffffffffffffffff000007d0");
    EXPECT_EQ(request.get_int("timeout_ms"), 2000);
    const auto& topic = request.get_structs("topics").at(0);
    EXPECT_EQ(topic.get_string("name"), "t");
    ASSERT_EQ(topic.get_structs("partitions").size(), 2u);
    EXPECT_EQ(topic.get_structs("partitions")[0].get_int("offset"), 5);
    EXPECT_EQ(topic.get_structs("partitions")[1].get_int("partition_index"), 1);
    EXPECT_EQ(topic.get_structs("partitions")[1].get_int("offset"), -1);

    auto response = StructValue::with_defaults(kDeleteRecordsSchema.response);
    auto& result = response.add("topics");
    result.set("name", s("t"));
    result.add("partitions").set("low_watermark", i(5));
    result.add("partitions").set("partition_index", i(1)).set("low_watermark", i(-1)).set("error_code", i(1));
    EXPECT_EQ(encode_response(kDeleteRecordsSchema, version, response),
              "000000000000000100017400000002000000000000000000000005000000000001ffffffffffffffff0001");
  }
}

// ---------------------------------------------------------------------------------------------
// DescribeConfigs (32)

TEST(Messages, describe_configs_requests_v0_and_v2) {
  auto v0 = decode_request(kDescribeConfigsSchema, 0, "0000000202000174ffffffff040001310000000100086c6f672e64697273");
  const auto& resources = v0.get_structs("resources");
  ASSERT_EQ(resources.size(), 2u);
  EXPECT_EQ(resources[0].get_int("resource_type"), 2);
  EXPECT_EQ(resources[0].get_string("resource_name"), "t");
  EXPECT_TRUE(resources[0]["configuration_keys"].is_null());
  EXPECT_EQ(resources[1].get_int("resource_type"), 4);
  EXPECT_EQ(resources[1]["configuration_keys"].as_array().at(0).as_string(), "log.dirs");

  auto v2 = decode_request(kDescribeConfigsSchema, 2, "000000010200017400000001000c726574656e74696f6e2e6d7301");
  EXPECT_TRUE(v2.get_bool("include_synonyms"));
  EXPECT_EQ(v2.get_structs("resources").at(0)["configuration_keys"].as_array().at(0).as_string(), "retention.ms");
}

TEST(Messages, describe_configs_responses_v0_and_v2) {
  auto v0 = StructValue::with_defaults(kDescribeConfigsSchema.response);
  auto& result = v0.add("results");
  result.set("error_message", Null{}).set("resource_type", i(2)).set("resource_name", s("t"));
  result.add("configs").set("name", s("retention.ms")).set("value", s("1000")).set("is_default", true);
  result.add("configs").set("name", s("secret")).set("value", Null{}).set("read_only", true).set("is_sensitive", true);
  EXPECT_EQ(encode_response(kDescribeConfigsSchema, 0, v0),
            "00000000000000010000ffff0200017400000002000c726574656e74696f6e2e6d730004313030300001000006736563726574ff"
            "ff010001");

  auto v2 = StructValue::with_defaults(kDescribeConfigsSchema.response);
  v2.set("throttle_time_ms", i(1));
  auto& r2 = v2.add("results");
  r2.set("error_message", Null{}).set("resource_type", i(2)).set("resource_name", s("t"));
  auto& config = r2.add("configs");
  EXPECT_EQ(config.get_int("config_source"), -1);
  config.set("name", s("retention.ms")).set("value", s("1000")).set("config_source", i(1));
  config.add("synonyms").set("name", s("retention.ms")).set("value", s("1000")).set("source", i(1));
  config.add("synonyms").set("name", s("retention.ms")).set("value", Null{}).set("source", i(5));
  EXPECT_EQ(encode_response(kDescribeConfigsSchema, 2, v2),
            "00000001000000010000ffff0200017400000001000c726574656e74696f6e2e6d7300043130303000010000000002000c726574"
            "656e74696f6e2e6d7300043130303001000c726574656e74696f6e2e6d73ffff05");
}

// ---------------------------------------------------------------------------------------------
// AlterConfigs (33)

TEST(Messages, alter_configs_v0_and_v1) {
  auto v0 = decode_request(kAlterConfigsSchema, 0,
                           "000000010200017400000002000c726574656e74696f6e2e6d73000431303030000178ffff00");
  EXPECT_FALSE(v0.get_bool("validate_only"));
  const auto& resource = v0.get_structs("resources").at(0);
  EXPECT_EQ(resource.get_int("resource_type"), 2);
  ASSERT_EQ(resource.get_structs("configs").size(), 2u);
  EXPECT_EQ(resource.get_structs("configs")[0].get_nullable_string("value"), "1000");
  EXPECT_EQ(resource.get_structs("configs")[1].get_string("name"), "x");
  EXPECT_FALSE(resource.get_structs("configs")[1].get_nullable_string("value").has_value());
  auto v1 = decode_request(kAlterConfigsSchema, 1, "00000001020001740000000001");
  EXPECT_TRUE(v1.get_bool("validate_only"));

  auto response = StructValue::with_defaults(kAlterConfigsSchema.response);
  response.add("responses").set("error_message", Null{}).set("resource_type", i(2)).set("resource_name", s("t"));
  EXPECT_EQ(encode_response(kAlterConfigsSchema, 0, response), "00000000000000010000ffff02000174");
  // kafka-python lists the request class at AlterConfigsResponse[1]; v1's body is v0's.
  response.set("throttle_time_ms", i(3));
  response.get_structs("responses")[0].set("error_code", i(40)).set("error_message", s("bad"));
  EXPECT_EQ(encode_response(kAlterConfigsSchema, 1, response), "00000003000000010028000362616402000174");
}

// ---------------------------------------------------------------------------------------------
// CreatePartitions (37)

TEST(Messages, create_partitions_v0_and_v1) {
  auto v0 = decode_request(kCreatePartitionsSchema, 0, "0000000100017400000004ffffffff000003e800");
  const auto& topic = v0.get_structs("topics").at(0);
  EXPECT_EQ(topic.get_string("name"), "t");
  EXPECT_EQ(topic.get_int("count"), 4);
  EXPECT_TRUE(topic["assignments"].is_null());
  EXPECT_EQ(v0.get_int("timeout_ms"), 1000);
  EXPECT_FALSE(v0.get_bool("validate_only"));
  auto v1 = decode_request(kCreatePartitionsSchema, 1,
                           "0000000100017400000003000000020000000200000001000000020000000100000002000003e801");
  const auto& assignments = v1.get_structs("topics").at(0).get_structs("assignments");
  ASSERT_EQ(assignments.size(), 2u);
  EXPECT_EQ(assignments[0]["broker_ids"].as_array().size(), 2u);
  EXPECT_EQ(assignments[1]["broker_ids"].as_array().at(0).as_int(), 2);
  EXPECT_TRUE(v1.get_bool("validate_only"));

  auto response = StructValue::with_defaults(kCreatePartitionsSchema.response);
  response.add("results").set("name", s("t")).set("error_message", Null{});
  EXPECT_EQ(encode_response(kCreatePartitionsSchema, 0, response), "00000000000000010001740000ffff");
  response.set("throttle_time_ms", i(5));
  response.get_structs("results")[0].set("error_code", i(37)).set("error_message", s("too few"));
  EXPECT_EQ(encode_response(kCreatePartitionsSchema, 1, response), "000000050000000100017400250007746f6f20666577");
}

// ---------------------------------------------------------------------------------------------
// OffsetCommit (8)

TEST(Messages, offset_commit_requests_v2_v3_and_v7) {
  auto v2 = decode_request(kOffsetCommitSchema, 2,
                           "0001670000000300036d2d31ffffffffffffffff000000010001740000000200000000000000000000002a00000000"
                           "00010000000000000007ffff");
  EXPECT_EQ(v2.get_string("group_id"), "g");
  EXPECT_EQ(v2.get_int("generation_id_or_member_epoch"), 3);
  EXPECT_EQ(v2.get_string("member_id"), "m-1");
  EXPECT_EQ(v2.get_int("retention_time_ms"), -1);
  const auto& partitions = v2.get_structs("topics").at(0).get_structs("partitions");
  ASSERT_EQ(partitions.size(), 2u);
  EXPECT_EQ(partitions[0].get_int("committed_offset"), 42);
  EXPECT_EQ(partitions[0].get_nullable_string("committed_metadata"), "");
  EXPECT_EQ(partitions[0].get_int("committed_leader_epoch"), -1);
  EXPECT_FALSE(partitions[1].get_nullable_string("committed_metadata").has_value());

  auto v3 = decode_request(kOffsetCommitSchema, 3,
                           "0001670000000300036d2d310000000005265c00000000010001740000000100000000000000000000002a00046d6"
                           "57461");
  EXPECT_EQ(v3.get_int("retention_time_ms"), 86400000);
  EXPECT_EQ(v3.get_structs("topics")[0].get_structs("partitions")[0].get_nullable_string("committed_metadata"), "meta");

  // v7 (kafka-python stops at v3; primitive types): group instance id, leader epoch, no retention.
  auto v7 = decode_request(kOffsetCommitSchema, 7,
                           "0001670000000500036d2d310004696e7374000000010001740000000100000000000000000000002a00000003ffff");
  EXPECT_EQ(v7.get_int("generation_id_or_member_epoch"), 5);
  EXPECT_EQ(v7.get_nullable_string("group_instance_id"), "inst");
  EXPECT_EQ(v7.get_int("retention_time_ms"), -1);
  const auto& p7 = v7.get_structs("topics")[0].get_structs("partitions")[0];
  EXPECT_EQ(p7.get_int("committed_leader_epoch"), 3);
  EXPECT_FALSE(p7.get_nullable_string("committed_metadata").has_value());
}

TEST(Messages, offset_commit_responses_v2_and_v3) {
  auto response = StructValue::with_defaults(kOffsetCommitSchema.response);
  auto& topic = response.add("topics");
  topic.set("name", s("t"));
  topic.add("partitions");
  topic.add("partitions").set("partition_index", i(1)).set("error_code", i(22));
  EXPECT_EQ(encode_response(kOffsetCommitSchema, 2, response), "0000000100017400000002000000000000000000010016");
  auto v3 = StructValue::with_defaults(kOffsetCommitSchema.response);
  v3.set("throttle_time_ms", i(4));
  auto& t3 = v3.add("topics");
  t3.set("name", s("t"));
  t3.add("partitions");
  EXPECT_EQ(encode_response(kOffsetCommitSchema, 3, v3), "000000040000000100017400000001000000000000");
}

// ---------------------------------------------------------------------------------------------
// OffsetFetch (9)

TEST(Messages, offset_fetch_v1_v3_and_v5) {
  auto v1 = decode_request(kOffsetFetchSchema, 1, "00016700000001000174000000020000000000000001");
  EXPECT_EQ(v1.get_string("group_id"), "g");
  const auto& topic = v1.get_structs("topics").at(0);
  EXPECT_EQ(topic.get_string("name"), "t");
  EXPECT_EQ(topic["partition_indexes"].as_array().at(1).as_int(), 1);
  auto v3 = decode_request(kOffsetFetchSchema, 3, "000167ffffffff");
  EXPECT_TRUE(v3["topics"].is_null());
  EXPECT_FALSE(decode_message(kOffsetFetchSchema.request, 1, false, from_hex("000167ffffffff")).has_value());

  auto response = StructValue::with_defaults(kOffsetFetchSchema.response);
  auto& t = response.add("topics");
  t.set("name", s("t"));
  t.add("partitions").set("committed_offset", i(42)).set("metadata", s(""));
  t.add("partitions").set("partition_index", i(1)).set("committed_offset", i(-1)).set("metadata", Null{});
  EXPECT_EQ(encode_response(kOffsetFetchSchema, 1, response),
            "000000010001740000000200000000000000000000002a0000000000000001ffffffffffffffffffff0000");
  // v5 (kafka-python stops at v3; primitive types): leader epoch per partition.
  t.get_structs("partitions")[0].set("committed_leader_epoch", i(3));
  EXPECT_EQ(encode_response(kOffsetFetchSchema, 5, response),
            "00000000000000010001740000000200000000000000000000002a000000030000000000000001ffffffffffffffffffffffffff"
            "ff00000000");

  auto v3_response = StructValue::with_defaults(kOffsetFetchSchema.response);
  v3_response.set("throttle_time_ms", i(2));
  auto& t3 = v3_response.add("topics");
  t3.set("name", s("t"));
  t3.add("partitions").set("committed_offset", i(42)).set("metadata", s("meta"));
  EXPECT_EQ(encode_response(kOffsetFetchSchema, 3, v3_response),
            "00000002000000010001740000000100000000000000000000002a00046d65746100000000");
}

// ---------------------------------------------------------------------------------------------
// FindCoordinator (10)

TEST(Messages, find_coordinator_v0_and_v1) {
  auto v0 = decode_request(kFindCoordinatorSchema, 0, "000167");
  EXPECT_EQ(v0.get_string("key"), "g");
  EXPECT_EQ(v0.get_int("key_type"), 0);
  auto v1 = decode_request(kFindCoordinatorSchema, 1, "000374786e01");
  EXPECT_EQ(v1.get_string("key"), "txn");
  EXPECT_EQ(v1.get_int("key_type"), 1);

  auto response = StructValue::with_defaults(kFindCoordinatorSchema.response);
  response.set("node_id", i(1)).set("host", s("localhost")).set("port", i(9092));
  EXPECT_EQ(encode_response(kFindCoordinatorSchema, 0, response), "00000000000100096c6f63616c686f737400002384");
  auto v1_response = StructValue::with_defaults(kFindCoordinatorSchema.response);
  v1_response.set("error_code", i(15)).set("error_message", Null{}).set("node_id", i(-1)).set("port", i(-1));
  // kafka-python's GroupCoordinatorResponse_v1 ("000fffffffffffff0000ffffffff") omits the leading
  // ThrottleTimeMs that Kafka's schema has from v1; the expected bytes are kafka-python's with it.
  v1_response.set("throttle_time_ms", i(0));
  EXPECT_EQ(encode_response(kFindCoordinatorSchema, 1, v1_response), "00000000000fffffffffffff0000ffffffff");
  // v2 has v1's layout.
  v1_response.set("throttle_time_ms", i(9));
  EXPECT_EQ(encode_response(kFindCoordinatorSchema, 2, v1_response), "00000009000fffffffffffff0000ffffffff");
}

// ---------------------------------------------------------------------------------------------
// JoinGroup (11)

TEST(Messages, join_group_requests_v0_v2_and_v5) {
  auto v0 = decode_request(kJoinGroupSchema, 0, "0001670000271000000008636f6e73756d657200000001000572616e6765000000020001");
  EXPECT_EQ(v0.get_string("group_id"), "g");
  EXPECT_EQ(v0.get_int("session_timeout_ms"), 10000);
  EXPECT_EQ(v0.get_int("rebalance_timeout_ms"), -1);
  EXPECT_EQ(v0.get_string("member_id"), "");
  EXPECT_EQ(v0.get_string("protocol_type"), "consumer");
  EXPECT_EQ(v0.get_structs("protocols").at(0).get_string("name"), "range");
  EXPECT_EQ(hex_of(v0.get_structs("protocols")[0]["metadata"]), "0001");
  auto v2 = decode_request(kJoinGroupSchema, 2,
                           "00016700002710000493e000036d2d310008636f6e73756d657200000002000572616e6765000000020001000a72"
                           "6f756e64726f62696e00000000");
  EXPECT_EQ(v2.get_int("rebalance_timeout_ms"), 300000);
  EXPECT_EQ(v2.get_string("member_id"), "m-1");
  ASSERT_EQ(v2.get_structs("protocols").size(), 2u);
  EXPECT_EQ(v2.get_structs("protocols")[1].get_string("name"), "roundrobin");
  // v5 (kafka-python stops at v2; primitive types): null group instance id.
  auto v5 = decode_request(kJoinGroupSchema, 5,
                           "0001670000afc8000493e00000ffff0008636f6e73756d6572000000010012636f6f70657261746976652d737469"
                           "636b790000000100");
  EXPECT_FALSE(v5.get_nullable_string("group_instance_id").has_value());
  EXPECT_EQ(v5.get_structs("protocols").at(0).get_string("name"), "cooperative-sticky");
}

TEST(Messages, join_group_responses_v0_v2_and_v5) {
  auto response = StructValue::with_defaults(kJoinGroupSchema.response);
  response.set("generation_id", i(1)).set("protocol_name", s("range")).set("leader", s("m-1")).set("member_id", s("m-1"));
  response.add("members").set("member_id", s("m-1")).set("metadata", b("0001"));
  EXPECT_EQ(encode_response(kJoinGroupSchema, 0, response),
            "000000000001000572616e676500036d2d3100036d2d310000000100036d2d31000000020001");
  auto v2 = StructValue::with_defaults(kJoinGroupSchema.response);
  v2.set("error_code", i(79)).set("generation_id", i(2)).set("protocol_name", s("range"));
  v2.set("leader", s("m-1")).set("member_id", s("m-2"));
  EXPECT_EQ(encode_response(kJoinGroupSchema, 2, v2), "00000000004f00000002000572616e676500036d2d3100036d2d3200000000");

  response.get_structs("members")[0].set("group_instance_id", Null{}).set("metadata", b("00"));
  response.add("members").set("member_id", s("m-2")).set("group_instance_id", s("i2"));
  EXPECT_EQ(encode_response(kJoinGroupSchema, 5, response),
            "00000000000000000001000572616e676500036d2d3100036d2d310000000200036d2d31ffff000000010000036d2d32000269320000"
            "0000");
}

// ---------------------------------------------------------------------------------------------
// Heartbeat (12), SyncGroup (14), LeaveGroup (13)

TEST(Messages, heartbeat_v0_and_v1) {
  auto v0 = decode_request(kHeartbeatSchema, 0, "0001670000000100036d2d31");
  EXPECT_EQ(v0.get_string("group_id"), "g");
  EXPECT_EQ(v0.get_int("generation_id"), 1);
  EXPECT_EQ(v0.get_string("member_id"), "m-1");
  auto v1 = decode_request(kHeartbeatSchema, 1, "0001670000000200036d2d32");
  EXPECT_EQ(v1.get_int("generation_id"), 2);
  auto response = StructValue::with_defaults(kHeartbeatSchema.response);
  EXPECT_EQ(encode_response(kHeartbeatSchema, 0, response), "0000");
  response.set("throttle_time_ms", i(1)).set("error_code", i(27));
  EXPECT_EQ(encode_response(kHeartbeatSchema, 1, response), "00000001001b");
  // v3 adds a nullable group instance id.
  auto v3 = decode_request(kHeartbeatSchema, 3, "0001670000000200036d2d32ffff");
  EXPECT_FALSE(v3.get_nullable_string("group_instance_id").has_value());
}

TEST(Messages, sync_group_v0_and_v1) {
  auto v0 = decode_request(kSyncGroupSchema, 0, "0001670000000100036d2d310000000100036d2d3100000001ab");
  EXPECT_EQ(v0.get_int("generation_id"), 1);
  const auto& assignment = v0.get_structs("assignments").at(0);
  EXPECT_EQ(assignment.get_string("member_id"), "m-1");
  EXPECT_EQ(hex_of(assignment["assignment"]), "ab");
  auto v1 = decode_request(kSyncGroupSchema, 1, "0001670000000200036d2d3200000000");
  EXPECT_TRUE(v1.get_structs("assignments").empty());
  auto response = StructValue::with_defaults(kSyncGroupSchema.response);
  response.set("assignment", b("abcd"));
  EXPECT_EQ(encode_response(kSyncGroupSchema, 0, response), "000000000002abcd");
  response.set("throttle_time_ms", i(3)).set("error_code", i(27)).set("assignment", b(""));
  EXPECT_EQ(encode_response(kSyncGroupSchema, 1, response), "00000003001b00000000");
}

TEST(Messages, leave_group_v0_v1_and_v3) {
  auto v0 = decode_request(kLeaveGroupSchema, 0, "00016700036d2d31");
  EXPECT_EQ(v0.get_string("member_id"), "m-1");
  auto v1 = decode_request(kLeaveGroupSchema, 1, "00016700036d2d32");
  EXPECT_EQ(v1.get_string("member_id"), "m-2");
  auto response = StructValue::with_defaults(kLeaveGroupSchema.response);
  EXPECT_EQ(encode_response(kLeaveGroupSchema, 0, response), "0000");
  response.set("throttle_time_ms", i(2)).set("error_code", i(25));
  EXPECT_EQ(encode_response(kLeaveGroupSchema, 1, response), "000000020019");

  // v3 (kafka-python stops at v1; primitive types): a batch of members.
  auto v3 = decode_request(kLeaveGroupSchema, 3, "0001670000000200036d2d31ffff00000006696e73742d32");
  const auto& members = v3.get_structs("members");
  ASSERT_EQ(members.size(), 2u);
  EXPECT_EQ(members[0].get_string("member_id"), "m-1");
  EXPECT_FALSE(members[0].get_nullable_string("group_instance_id").has_value());
  EXPECT_EQ(members[1].get_nullable_string("group_instance_id"), "inst-2");
  auto v3_response = StructValue::with_defaults(kLeaveGroupSchema.response);
  v3_response.add("members").set("member_id", s("m-1")).set("group_instance_id", Null{});
  v3_response.add("members").set("member_id", s("m-2")).set("group_instance_id", s("inst-2")).set("error_code", i(25));
  EXPECT_EQ(encode_response(kLeaveGroupSchema, 3, v3_response),
            "0000000000000000000200036d2d31ffff000000036d2d320006696e73742d320019");
}

// ---------------------------------------------------------------------------------------------
// DescribeGroups (15), ListGroups (16), DeleteGroups (42), OffsetDelete (47)

TEST(Messages, describe_groups_v0_v2_v3_and_v4) {
  auto v0 = decode_request(kDescribeGroupsSchema, 0, "00000002000167000168");
  ASSERT_EQ(v0["groups"].as_array().size(), 2u);
  EXPECT_EQ(v0["groups"].as_array()[1].as_string(), "h");
  auto v3 = decode_request(kDescribeGroupsSchema, 3, "0000000100016701");
  EXPECT_TRUE(v3.get_bool("include_authorized_operations"));

  auto response = StructValue::with_defaults(kDescribeGroupsSchema.response);
  auto& group = response.add("groups");
  group.set("group_id", s("g")).set("group_state", s("Stable")).set("protocol_type", s("consumer"));
  group.set("protocol_data", s("range"));
  auto& member = group.add("members");
  member.set("member_id", s("m-1")).set("client_id", s("c")).set("client_host", s("/127.0.0.1"));
  member.set("member_metadata", b("01")).set("member_assignment", b("02"));
  EXPECT_EQ(encode_response(kDescribeGroupsSchema, 0, response),
            "0000000100000001670006537461626c650008636f6e73756d6572000572616e67650000000100036d2d31000163000a2f313237"
            "2e302e302e3100000001010000000102");
  auto v2 = StructValue::with_defaults(kDescribeGroupsSchema.response);
  v2.set("throttle_time_ms", i(5));
  v2.add("groups").set("error_code", i(16)).set("group_id", s("h")).set("group_state", s("Dead"));
  EXPECT_EQ(encode_response(kDescribeGroupsSchema, 2, v2), "000000050000000100100001680004446561640000000000000000");

  // v4 (kafka-python's v3 class lacks AuthorizedOperations; primitive types).
  member.set("group_instance_id", s("inst")).set("client_host", s("/h")).set("member_assignment", b(""));
  EXPECT_EQ(group.get_int("authorized_operations"), INT32_MIN);
  EXPECT_EQ(encode_response(kDescribeGroupsSchema, 4, response),
            "000000000000000100000001670006537461626c650008636f6e73756d6572000572616e67650000000100036d2d310004696e7374"
            "00016300022f6800000001010000000080000000");
}

TEST(Messages, list_groups_v0_and_v2) {
  for (std::int16_t version : {0, 1, 2}) {
    auto request = decode_request(kListGroupsSchema, version, "");
    EXPECT_TRUE(request.values.empty());
  }
  auto response = StructValue::with_defaults(kListGroupsSchema.response);
  response.add("groups").set("group_id", s("g")).set("protocol_type", s("consumer"));
  EXPECT_EQ(encode_response(kListGroupsSchema, 0, response), "0000000000010001670008636f6e73756d6572");
  response.set("throttle_time_ms", i(1));
  response.add("groups").set("group_id", s("h"));
  EXPECT_EQ(encode_response(kListGroupsSchema, 2, response), "000000010000000000020001670008636f6e73756d65720001680000");
}

TEST(Messages, delete_groups_v0_and_v1) {
  auto v0 = decode_request(kDeleteGroupsSchema, 0, "00000002000167000168");
  ASSERT_EQ(v0["groups_names"].as_array().size(), 2u);
  EXPECT_EQ(v0["groups_names"].as_array()[0].as_string(), "g");
  auto v1 = decode_request(kDeleteGroupsSchema, 1, "00000001000167");
  EXPECT_EQ(v1["groups_names"].as_array().size(), 1u);
  auto response = StructValue::with_defaults(kDeleteGroupsSchema.response);
  response.add("results").set("group_id", s("g"));
  response.add("results").set("group_id", s("h")).set("error_code", i(69));
  EXPECT_EQ(encode_response(kDeleteGroupsSchema, 0, response), "000000000000000200016700000001680045");
  auto v1_response = StructValue::with_defaults(kDeleteGroupsSchema.response);
  v1_response.set("throttle_time_ms", i(3)).add("results").set("group_id", s("g"));
  EXPECT_EQ(encode_response(kDeleteGroupsSchema, 1, v1_response), "00000003000000010001670000");
}

TEST(Messages, offset_delete_v0) {
  // Not in kafka-python's API classes; vectors from its primitive types.
  auto request = decode_request(kOffsetDeleteSchema, 0, "00016700000001000174000000020000000000000002");
  EXPECT_EQ(request.get_string("group_id"), "g");
  const auto& partitions = request.get_structs("topics").at(0).get_structs("partitions");
  ASSERT_EQ(partitions.size(), 2u);
  EXPECT_EQ(partitions[1].get_int("partition_index"), 2);
  auto response = StructValue::with_defaults(kOffsetDeleteSchema.response);
  auto& topic = response.add("topics");
  topic.set("name", s("t"));
  topic.add("partitions");
  topic.add("partitions").set("partition_index", i(2)).set("error_code", i(86));
  EXPECT_EQ(encode_response(kOffsetDeleteSchema, 0, response),
            "0000000000000000000100017400000002000000000000000000020056");
}

}  // namespace
}  // namespace sluice::protocol
