// The admin APIs in a simulated broker: CreateTopics, DeleteTopics, CreatePartitions,
// DescribeConfigs, AlterConfigs, DeleteRecords (each error code they answer), topic configs
// surviving a crash, max.message.bytes enforced by Produce, the retention fiber, and the request
// memory budget's backpressure.

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "core/storage/record_batch.h"
#include "tests/kafka/broker_sim_client.h"

namespace sluice::kafka {
namespace {

using namespace kafka::testing;
using ConfigPairs = std::map<std::string, std::string>;

constexpr std::int16_t kCreateTopicsVersion = 4;
constexpr std::int64_t kResourceTopic = 2;
constexpr std::int64_t kResourceBroker = 4;

StructValue create_topics_request(std::string_view name, std::int64_t partitions,
                                  std::int64_t replication_factor, const ConfigPairs& configs = {},
                                  bool validate_only = false) {
  StructValue request = request_of(protocol::api::kCreateTopics);
  StructValue& topic = request.add("topics");
  topic.set("name", Value(std::string(name)));
  topic.set("num_partitions", Value(partitions));
  topic.set("replication_factor", Value(replication_factor));
  for (const auto& [key, value] : configs) {
    StructValue& config = topic.add("configs");
    config.set("name", Value(key));
    config.set("value", Value(value));
  }
  request.set("validate_only", Value(validate_only));
  return request;
}

// The single topic result of a CreateTopics v4 call.
StructValue create_topic(Stream& stream, std::string_view name, std::int64_t partitions,
                         std::int64_t replication_factor, const ConfigPairs& configs = {},
                         bool validate_only = false) {
  StructValue response =
      call(stream, protocol::api::kCreateTopics, kCreateTopicsVersion,
           create_topics_request(name, partitions, replication_factor, configs, validate_only));
  EXPECT_EQ(response.get_structs("topics").size(), 1u);
  return response.get_structs("topics").at(0);
}

StructValue describe_configs(Stream& stream, std::int16_t version, std::int64_t type,
                             std::string_view name, bool include_synonyms = false) {
  StructValue request = request_of(protocol::api::kDescribeConfigs);
  StructValue& resource = request.add("resources");
  resource.set("resource_type", Value(type));
  resource.set("resource_name", Value(std::string(name)));
  resource.set("configuration_keys", Value(protocol::Null{}));
  request.set("include_synonyms", Value(include_synonyms));
  StructValue response = call(stream, protocol::api::kDescribeConfigs, version, request);
  EXPECT_EQ(response.get_structs("results").size(), 1u);
  return response.get_structs("results").at(0);
}

const StructValue* config_entry(const StructValue& result, std::string_view name) {
  for (const StructValue& entry : result.get_structs("configs")) {
    if (entry.get_string("name") == name) return &entry;
  }
  return nullptr;
}

std::string config_value(Stream& stream, std::string_view topic, std::string_view key) {
  const StructValue result = describe_configs(stream, 1, kResourceTopic, topic);
  const StructValue* entry = config_entry(result, key);
  EXPECT_NE(entry, nullptr) << key;
  return entry ? entry->get_string("value") : "";
}

StructValue alter_configs(Stream& stream, std::string_view topic, const ConfigPairs& configs,
                          bool validate_only = false) {
  StructValue request = request_of(protocol::api::kAlterConfigs);
  StructValue& resource = request.add("resources");
  resource.set("resource_type", Value(kResourceTopic));
  resource.set("resource_name", Value(std::string(topic)));
  for (const auto& [key, value] : configs) {
    StructValue& config = resource.add("configs");
    config.set("name", Value(key));
    config.set("value", Value(value));
  }
  request.set("validate_only", Value(validate_only));
  StructValue response = call(stream, protocol::api::kAlterConfigs, 1, request);
  EXPECT_EQ(response.get_structs("responses").size(), 1u);
  return response.get_structs("responses").at(0);
}

std::int64_t delete_topic(Stream& stream, std::string_view name) {
  StructValue request = request_of(protocol::api::kDeleteTopics);
  request.set("topic_names", Value(Value::Array{Value(std::string(name))}));
  StructValue response = call(stream, protocol::api::kDeleteTopics, 3, request);
  return response.get_structs("responses").at(0).get_int("error_code");
}

StructValue create_partitions(Stream& stream, std::string_view name, std::int64_t count,
                              bool validate_only = false) {
  StructValue request = request_of(protocol::api::kCreatePartitions);
  StructValue& topic = request.add("topics");
  topic.set("name", Value(std::string(name)));
  topic.set("count", Value(count));
  topic.set("assignments", Value(protocol::Null{}));
  request.set("validate_only", Value(validate_only));
  StructValue response = call(stream, protocol::api::kCreatePartitions, 1, request);
  return response.get_structs("results").at(0);
}

// The partition result of a DeleteRecords v1 call for partition 0.
StructValue delete_records(Stream& stream, std::string_view topic, std::int64_t offset,
                           std::int64_t partition = 0) {
  StructValue request = request_of(protocol::api::kDeleteRecords);
  StructValue& wanted = request.add("topics");
  wanted.set("name", Value(std::string(topic)));
  StructValue& wanted_partition = wanted.add("partitions");
  wanted_partition.set("partition_index", Value(partition));
  wanted_partition.set("offset", Value(offset));
  StructValue response = call(stream, protocol::api::kDeleteRecords, 1, request);
  return response.get_structs("topics").at(0).get_structs("partitions").at(0);
}

Bytes batch_of_size(std::size_t value_bytes) {
  storage::BatchSpec spec;
  storage::RecordSpec record;
  record.value = std::string(value_bytes, 'v');
  spec.records.push_back(record);
  return storage::build_batch(spec);
}

// The partition response of an acks=all Produce v7 of one batch to partition 0.
StructValue produce(Stream& stream, std::string_view topic, Bytes batch) {
  StructValue response =
      call(stream, protocol::api::kProduce, 7, produce_request(topic, -1, std::move(batch)));
  return response.get_structs("responses").at(0).get_structs("partition_responses").at(0);
}

// ListOffsets v1 for partition 0: -2 earliest, -1 latest (the high watermark).
std::int64_t list_offset(Stream& stream, std::string_view topic, std::int64_t timestamp) {
  StructValue request = request_of(protocol::api::kListOffsets);
  request.set("replica_id", Value(std::int64_t{-1}));
  StructValue& wanted = request.add("topics");
  wanted.set("name", Value(std::string(topic)));
  StructValue& partition = wanted.add("partitions");
  partition.set("partition_index", Value(std::int64_t{0}));
  partition.set("timestamp", Value(timestamp));
  StructValue response = call(stream, protocol::api::kListOffsets, 1, request);
  return response.get_structs("topics").at(0).get_structs("partitions").at(0).get_int("offset");
}

std::int64_t earliest_offset(Stream& stream, std::string_view topic) {
  return list_offset(stream, topic, -2);
}

class BrokerAdminSimTest : public ::testing::Test {
 protected:
  BrokerWorld broker_;
};

TEST_F(BrokerAdminSimTest, create_topics_answers_each_kafka_error) {
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    EXPECT_EQ(create_topic(*stream, "orders", 3, 1).get_int("error_code"), error::kNone);
    EXPECT_EQ(create_topic(*stream, "defaults", -1, -1).get_int("error_code"), error::kNone);
    const StructValue exists = create_topic(*stream, "orders", 3, 1);
    EXPECT_EQ(exists.get_int("error_code"), error::kTopicAlreadyExists);
    EXPECT_TRUE(exists.get_nullable_string("error_message").has_value());
    EXPECT_EQ(create_topic(*stream, "bad/name", 1, 1).get_int("error_code"), error::kInvalidTopic);
    EXPECT_EQ(create_topic(*stream, "zero", 0, 1).get_int("error_code"), error::kInvalidPartitions);
    EXPECT_EQ(create_topic(*stream, "replicated", 1, 3).get_int("error_code"),
              error::kInvalidReplicationFactor);
    const StructValue unknown_key = create_topic(*stream, "c1", 1, 1, {{"no.such.key", "1"}});
    EXPECT_EQ(unknown_key.get_int("error_code"), error::kInvalidConfig);
    EXPECT_NE(unknown_key.get_nullable_string("error_message")->find("no.such.key"),
              std::string::npos);
    const StructValue bad_value = create_topic(*stream, "c2", 1, 1, {{"retention.ms", "soon"}});
    EXPECT_EQ(bad_value.get_int("error_code"), error::kInvalidConfig);
    EXPECT_NE(bad_value.get_nullable_string("error_message")->find("retention.ms"),
              std::string::npos);
    EXPECT_EQ(
        create_topic(*stream, "c3", 1, 1, {{"cleanup.policy", "compact"}}).get_int("error_code"),
        error::kInvalidConfig);
    EXPECT_EQ(
        create_topic(*stream, "c4", 1, 1, {{"min.insync.replicas", "0"}}).get_int("error_code"),
        error::kInvalidConfig);
    // validate_only: answered as if created, nothing created.
    EXPECT_EQ(create_topic(*stream, "dry", 2, 1, {}, true).get_int("error_code"), error::kNone);
    EXPECT_EQ(describe_configs(*stream, 1, kResourceTopic, "dry").get_int("error_code"),
              error::kUnknownTopicOrPartition);
    // The same name twice in one request.
    StructValue twice = create_topics_request("twice", 1, 1);
    twice.get_structs("topics").push_back(twice.get_structs("topics").at(0));
    StructValue response = call(*stream, protocol::api::kCreateTopics, 4, twice);
    for (const StructValue& result : response.get_structs("topics")) {
      EXPECT_EQ(result.get_int("error_code"), error::kInvalidRequest);
    }
  }));
}

TEST_F(BrokerAdminSimTest, create_topics_accepts_manual_assignments_only_to_this_node) {
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    const auto assigned = [&](std::string_view name, std::int64_t node) {
      StructValue request = create_topics_request(name, -1, -1);
      for (std::int64_t index = 0; index < 2; ++index) {
        StructValue& assignment = request.get_structs("topics").at(0).add("assignments");
        assignment.set("partition_index", Value(index));
        assignment.set("broker_ids", Value(Value::Array{Value(node)}));
      }
      return call(*stream, protocol::api::kCreateTopics, 3, request)
          .get_structs("topics")
          .at(0)
          .get_int("error_code");
    };
    EXPECT_EQ(assigned("on-node-0", 0), error::kNone);
    EXPECT_EQ(assigned("on-node-5", 5), error::kInvalidReplicaAssignment);
    // v0 (no validate_only, no error_message) still creates.
    StructValue v0 = call(*stream, protocol::api::kCreateTopics, 0,
                          create_topics_request("created-by-v0", 1, 1));
    EXPECT_EQ(v0.get_structs("topics").at(0).get_int("error_code"), error::kNone);
  }));
}

TEST_F(BrokerAdminSimTest, delete_topics_removes_partitions_durably) {
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    ASSERT_EQ(
        create_topic(*stream, "doomed", 2, 1, {{"retention.ms", "1000"}}).get_int("error_code"),
        error::kNone);
    ASSERT_EQ(produce(*stream, "doomed", batch_of_size(10)).get_int("error_code"), error::kNone);
    EXPECT_EQ(delete_topic(*stream, "doomed"), error::kNone);
    EXPECT_EQ(delete_topic(*stream, "doomed"), error::kUnknownTopicOrPartition);
    EXPECT_EQ(produce(*stream, "doomed", batch_of_size(10)).get_int("error_code"),
              error::kUnknownTopicOrPartition);
  }));
  broker_.crash_and_restart();
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    EXPECT_EQ(describe_configs(*stream, 1, kResourceTopic, "doomed").get_int("error_code"),
              error::kUnknownTopicOrPartition);
    // A new topic of the same name starts empty and without the old configs.
    ASSERT_EQ(create_topic(*stream, "doomed", 1, 1).get_int("error_code"), error::kNone);
    EXPECT_EQ(produce(*stream, "doomed", batch_of_size(10)).get_int("base_offset"), 0);
    EXPECT_EQ(config_value(*stream, "doomed", "retention.ms"),
              std::to_string(7LL * 24 * 3600 * 1000));
  }));
}

TEST_F(BrokerAdminSimTest, create_partitions_only_grows_a_topic) {
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    ASSERT_EQ(create_topic(*stream, "growing", 1, 1).get_int("error_code"), error::kNone);
    EXPECT_EQ(create_partitions(*stream, "growing", 4, true).get_int("error_code"), error::kNone);
    EXPECT_EQ(create_partitions(*stream, "growing", 3).get_int("error_code"), error::kNone);
    EXPECT_EQ(create_partitions(*stream, "growing", 3).get_int("error_code"),
              error::kInvalidPartitions);
    EXPECT_EQ(create_partitions(*stream, "growing", 2).get_int("error_code"),
              error::kInvalidPartitions);
    EXPECT_EQ(create_partitions(*stream, "missing", 2).get_int("error_code"),
              error::kUnknownTopicOrPartition);
    // Partition 2 exists now (and partition 3 does not: validate_only created nothing).
    EXPECT_EQ(delete_records(*stream, "growing", -1, 2).get_int("error_code"), error::kNone);
    EXPECT_EQ(delete_records(*stream, "growing", -1, 3).get_int("error_code"),
              error::kUnknownTopicOrPartition);
  }));
}

TEST_F(BrokerAdminSimTest, describe_configs_reports_sources_and_synonyms) {
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    ASSERT_EQ(
        create_topic(*stream, "described", 1, 1, {{"retention.ms", "60000"}}).get_int("error_code"),
        error::kNone);
    const StructValue v1 = describe_configs(*stream, 1, kResourceTopic, "described", true);
    EXPECT_EQ(v1.get_int("error_code"), error::kNone);
    EXPECT_EQ(v1.get_structs("configs").size(), topic_config_keys().size());
    const StructValue* retention = config_entry(v1, "retention.ms");
    ASSERT_NE(retention, nullptr);
    EXPECT_EQ(retention->get_string("value"), "60000");
    EXPECT_EQ(retention->get_int("config_source"), 1);  // DYNAMIC_TOPIC_CONFIG
    EXPECT_FALSE(retention->get_bool("read_only"));
    ASSERT_EQ(retention->get_structs("synonyms").size(), 2u);
    EXPECT_EQ(retention->get_structs("synonyms").at(1).get_string("name"), "log.retention.ms");
    EXPECT_EQ(retention->get_structs("synonyms").at(1).get_int("source"), 5);
    const StructValue* segment = config_entry(v1, "segment.bytes");
    ASSERT_NE(segment, nullptr);
    EXPECT_EQ(segment->get_int("config_source"), 5);  // DEFAULT_CONFIG
    EXPECT_EQ(segment->get_string("value"), std::to_string(std::uint64_t{1} << 30));
    EXPECT_EQ(config_entry(v1, "cleanup.policy")->get_string("value"), "delete");
    // v0: is_default instead of config_source.
    const StructValue v0 = describe_configs(*stream, 0, kResourceTopic, "described");
    EXPECT_FALSE(config_entry(v0, "retention.ms")->get_bool("is_default"));
    EXPECT_TRUE(config_entry(v0, "segment.bytes")->get_bool("is_default"));
    // The broker resource lists the defaults under their broker names.
    const StructValue broker = describe_configs(*stream, 2, kResourceBroker, "0");
    EXPECT_EQ(broker.get_int("error_code"), error::kNone);
    ASSERT_NE(config_entry(broker, "log.retention.ms"), nullptr);
    EXPECT_EQ(describe_configs(*stream, 1, kResourceTopic, "missing").get_int("error_code"),
              error::kUnknownTopicOrPartition);
  }));
}

TEST_F(BrokerAdminSimTest, alter_configs_replaces_the_overrides_and_survives_a_crash) {
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    ASSERT_EQ(
        create_topic(*stream, "altered", 1, 1, {{"retention.ms", "60000"}}).get_int("error_code"),
        error::kNone);
    EXPECT_EQ(
        alter_configs(*stream, "altered", {{"segment.bytes", "1048576"}}).get_int("error_code"),
        error::kNone);
    // Non-incremental: retention.ms is back to its default.
    EXPECT_EQ(config_value(*stream, "altered", "retention.ms"),
              std::to_string(7LL * 24 * 3600 * 1000));
    EXPECT_EQ(config_value(*stream, "altered", "segment.bytes"), "1048576");
    EXPECT_EQ(alter_configs(*stream, "altered", {{"flush.messages", "0"}}).get_int("error_code"),
              error::kInvalidConfig);
    EXPECT_EQ(alter_configs(*stream, "altered", {{"retention.bytes", "5000"}}, true)
                  .get_int("error_code"),
              error::kNone);
    EXPECT_EQ(config_value(*stream, "altered", "retention.bytes"), "-1");
    EXPECT_EQ(alter_configs(*stream, "missing", {}).get_int("error_code"),
              error::kUnknownTopicOrPartition);
    // The reopened log still takes writes.
    EXPECT_EQ(produce(*stream, "altered", batch_of_size(10)).get_int("error_code"), error::kNone);
  }));
  broker_.crash_and_restart();
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    EXPECT_EQ(config_value(*stream, "altered", "segment.bytes"), "1048576");
    const StructValue result = describe_configs(*stream, 1, kResourceTopic, "altered");
    EXPECT_EQ(config_entry(result, "segment.bytes")->get_int("config_source"), 1);
    EXPECT_EQ(produce(*stream, "altered", batch_of_size(10)).get_int("base_offset"), 1);
  }));
}

// Regression (disk_corruption): a flipped bit in a topic's config file made Broker::open fail,
// so one corrupt file kept every topic offline. The topic now opens with defaults, data intact.
TEST_F(BrokerAdminSimTest, corrupt_topic_config_file_opens_the_topic_with_defaults) {
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    ASSERT_EQ(
        create_topic(*stream, "flipped", 1, 1, {{"retention.ms", "60000"}}).get_int("error_code"),
        error::kNone);
    EXPECT_EQ(produce(*stream, "flipped", batch_of_size(10)).get_int("base_offset"), 0);
  }));
  ASSERT_TRUE(broker_.world().disk(sim::NodeId{0}).flip_bit("/data/flipped.config", 9, 3));
  broker_.crash_and_restart();
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    EXPECT_EQ(config_value(*stream, "flipped", "retention.ms"),
              std::to_string(7LL * 24 * 3600 * 1000));
    EXPECT_EQ(produce(*stream, "flipped", batch_of_size(10)).get_int("base_offset"), 1);
  }));
}

TEST_F(BrokerAdminSimTest, produce_enforces_max_message_bytes) {
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    ASSERT_EQ(
        create_topic(*stream, "small", 1, 1, {{"max.message.bytes", "200"}}).get_int("error_code"),
        error::kNone);
    EXPECT_EQ(produce(*stream, "small", batch_of_size(500)).get_int("error_code"),
              error::kMessageTooLarge);
    EXPECT_EQ(produce(*stream, "small", batch_of_size(50)).get_int("error_code"), error::kNone);
  }));
}

TEST_F(BrokerAdminSimTest, delete_records_moves_the_low_watermark) {
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    ASSERT_EQ(create_topic(*stream, "trimmed", 1, 1).get_int("error_code"), error::kNone);
    for (int batch = 0; batch < 4; ++batch) {
      ASSERT_EQ(produce(*stream, "trimmed", batch_of_size(10)).get_int("error_code"), error::kNone);
    }
    StructValue result = delete_records(*stream, "trimmed", 2);
    EXPECT_EQ(result.get_int("error_code"), error::kNone);
    EXPECT_EQ(result.get_int("low_watermark"), 2);
    EXPECT_EQ(earliest_offset(*stream, "trimmed"), 2);
    EXPECT_EQ(delete_records(*stream, "trimmed", 1).get_int("low_watermark"), 2);
    EXPECT_EQ(delete_records(*stream, "trimmed", 5).get_int("error_code"),
              error::kOffsetOutOfRange);
    result = delete_records(*stream, "trimmed", -1);
    EXPECT_EQ(result.get_int("error_code"), error::kNone);
    EXPECT_EQ(result.get_int("low_watermark"), 4);
    EXPECT_EQ(delete_records(*stream, "missing", 0).get_int("error_code"),
              error::kUnknownTopicOrPartition);
  }));
}

TEST(BrokerHousekeepingSimTest, retention_fiber_deletes_expired_segments) {
  BrokerWorld broker([](BrokerConfig& config) { config.retention_check_interval = seconds(1); });
  ASSERT_TRUE(broker.run([&] {
    auto stream = broker.connect();
    // Tiny segments (one batch each) whose records carry timestamp 0: long expired.
    ASSERT_EQ(create_topic(*stream, "expiring", 1, 1,
                           {{"segment.bytes", "100"}, {"retention.ms", "1000"}})
                  .get_int("error_code"),
              error::kNone);
    for (int batch = 0; batch < 4; ++batch) {
      ASSERT_EQ(produce(*stream, "expiring", batch_of_size(80)).get_int("error_code"),
                error::kNone);
    }
    EXPECT_EQ(earliest_offset(*stream, "expiring"), 0);
    this_fiber::sleep_for(seconds(3));
    // Every closed segment went; the active one stays.
    EXPECT_EQ(earliest_offset(*stream, "expiring"), 3);
  }));
}

TEST(BrokerHousekeepingSimTest, flush_fiber_applies_flush_ms_between_appends) {
  LifecycleWorld broker([](BrokerConfig& config) { config.flush_check_interval = milliseconds(100); });
  ASSERT_TRUE(sim::testing::run_in_fiber(broker.world(), [&] {
    auto stream = broker.connect();
    ASSERT_EQ(create_topic(*stream, "lazy", 1, 1, {{"flush.messages", "1000"}, {"flush.ms", "50"}})
                  .get_int("error_code"),
              error::kNone);
    ASSERT_EQ(produce(*stream, "lazy", batch_of_size(10)).get_int("error_code"), error::kNone);
    const storage::PartitionLog& log = *broker.broker().topics().find("lazy", 0)->log;
    // Acknowledged and readable (flush.messages > 1), not yet durable: no append comes to flush
    // it, so the flush fiber must.
    EXPECT_EQ(list_offset(*stream, "lazy", -1), 1);
    EXPECT_EQ(log.durable_end_offset(), 0);
    this_fiber::sleep_for(milliseconds(500));
    EXPECT_EQ(log.durable_end_offset(), 1);
  }));
}

// Budget 1 MiB: while one 800 KiB request holds its share, a second one waits (unread), then
// proceeds once the first is answered; both succeed.
TEST(BrokerMemoryBudgetSimTest, large_requests_wait_for_the_budget) {
  BrokerWorld broker([](BrokerConfig& config) {
    config.request_memory_bytes_max = 1024 * 1024;
    config.request_bytes_max = 4 * 1024 * 1024;
  });
  ASSERT_TRUE(broker.run([&] {
    auto setup = broker.connect();
    ASSERT_EQ(create_topic(*setup, "big", 1, 1).get_int("error_code"), error::kNone);
    const Bytes first_request = encode_request(
        protocol::api::kProduce, 7, 1, produce_request("big", -1, batch_of_size(800 * 1024)));
    const Bytes second_request = encode_request(
        protocol::api::kProduce, 7, 2, produce_request("big", -1, batch_of_size(800 * 1024)));
    auto first = broker.connect();
    auto second = broker.connect();
    // The first request's size and most of its body: it holds 800 KiB of budget, unanswered.
    Bytes prefix;
    ByteWriter(prefix).u32(static_cast<std::uint32_t>(first_request.size()));
    ASSERT_TRUE(first->write_all(prefix, kTestDeadline));
    const std::size_t held_back = 1000;
    const auto body = std::span(first_request);
    ASSERT_TRUE(first->write_all(body.first(body.size() - held_back), kTestDeadline));
    this_fiber::sleep_for(milliseconds(100));
    ASSERT_TRUE(write_frame(*second, second_request, kTestDeadline));
    // The second waits for budget: no answer while the first is incomplete.
    auto early = read_frame(*second, 64 * 1024 * 1024, broker.world().now() + seconds(2));
    EXPECT_FALSE(early.has_value());
    ASSERT_TRUE(first->write_all(body.last(held_back), kTestDeadline));
    auto first_answer = receive(*first, protocol::api::kProduce, 7, 1, false);
    ASSERT_TRUE(first_answer.has_value());
    EXPECT_EQ(first_answer->get_structs("responses")
                  .at(0)
                  .get_structs("partition_responses")
                  .at(0)
                  .get_int("error_code"),
              error::kNone);
    auto second_answer = receive(*second, protocol::api::kProduce, 7, 2, false);
    ASSERT_TRUE(second_answer.has_value());
    EXPECT_EQ(second_answer->get_structs("responses")
                  .at(0)
                  .get_structs("partition_responses")
                  .at(0)
                  .get_int("base_offset"),
              1);
    // A frame larger than the whole budget is refused.
    auto oversized = broker.connect();
    Bytes announce;
    ByteWriter(announce).u32(2 * 1024 * 1024);
    ASSERT_TRUE(oversized->write_all(announce, kTestDeadline));
    EXPECT_TRUE(closed_by_peer(*oversized));
  }));
}

}  // namespace
}  // namespace sluice::kafka
