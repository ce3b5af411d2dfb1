// The broker in a simulated node, spoken to over SimNet with requests encoded by core/protocol:
// the connection rules of ../shared/PROTOCOL.md §1 (ApiVersions versions and KIP-511 fallback,
// kafka-python's pipelined probe, acks=0, closing on unknown or malformed input) and the
// produce → fetch round trip including a long poll woken by an append.

#include <gtest/gtest.h>

#include <map>

#include <optional>

#include "core/storage/record_batch.h"
#include "tests/kafka/broker_sim_client.h"

namespace sluice::kafka {
namespace {

using namespace kafka::testing;
using sim::testing::run_in_fiber;

// The broker world with the fixture name the tests use.
class BrokerSimTest : public ::testing::Test {
 protected:
  std::unique_ptr<Stream> connect() { return broker_.connect(); }

  BrokerWorld broker_;
  sim::SimWorld& world_ = broker_.world();
};

void expect_api_versions(const StructValue& response, std::int16_t error_code) {
  EXPECT_EQ(response.get_int("error_code"), error_code);
  bool has_api_versions = false;
  for (const StructValue& key : response.get_structs("api_keys")) {
    if (key.get_int("api_key") == protocol::api::kApiVersions) {
      has_api_versions = true;
      EXPECT_EQ(key.get_int("min_version"), 0);
      EXPECT_EQ(key.get_int("max_version"), 3);
    }
  }
  EXPECT_TRUE(has_api_versions);
}

storage::RecordSpec record_of(std::string value) {
  storage::RecordSpec record;
  record.value = std::move(value);
  return record;
}

Bytes batch_of(std::vector<std::string> values) {
  storage::BatchSpec spec;
  for (auto& value : values) spec.records.push_back(record_of(std::move(value)));
  return storage::build_batch(spec);
}

TEST_F(BrokerSimTest, api_versions_v0_and_v3_list_every_handled_api) {
  ASSERT_TRUE(run_in_fiber(world_, [&] {
    auto stream = connect();
    send(*stream, protocol::api::kApiVersions, 0, 1, request_of(protocol::api::kApiVersions));
    auto v0 = receive(*stream, protocol::api::kApiVersions, 0, 1, false);
    ASSERT_TRUE(v0.has_value());
    expect_api_versions(*v0, 0);
    // PROTOCOL.md §1's recommended ranges. The group APIs' minimums matter most: librdkafka turns
    // its balanced consumer off if any is above 0 (OffsetFetch: 1, OffsetCommit: 2).
    const std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> expected = {
        {0, {3, 7}},  {1, {4, 11}}, {2, {1, 3}},  {3, {0, 6}},  {8, {2, 7}},  {9, {1, 5}},
        {10, {0, 2}}, {11, {0, 5}}, {12, {0, 3}}, {13, {0, 3}}, {14, {0, 3}}, {15, {0, 4}},
        {16, {0, 2}}, {18, {0, 3}}, {19, {0, 4}}, {20, {0, 3}}, {21, {0, 1}}, {22, {0, 1}},
        {32, {0, 2}}, {33, {0, 1}}, {37, {0, 1}}, {42, {0, 1}}, {47, {0, 0}}};
    std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> advertised;
    for (const StructValue& key : v0->get_structs("api_keys")) {
      advertised[key.get_int("api_key")] = {key.get_int("min_version"), key.get_int("max_version")};
    }
    EXPECT_EQ(advertised, expected);
    // v3 is flexible, but its response header stays v0.
    StructValue v3_request = request_of(protocol::api::kApiVersions);
    v3_request.set("client_software_name", Value(std::string("sim")));
    v3_request.set("client_software_version", Value(std::string("1")));
    send(*stream, protocol::api::kApiVersions, 3, 2, v3_request);
    auto v3 = receive(*stream, protocol::api::kApiVersions, 3, 2, false);
    ASSERT_TRUE(v3.has_value());
    expect_api_versions(*v3, 0);
  }));
}

TEST_F(BrokerSimTest, api_versions_above_max_gets_kip511_v0_body_with_unsupported_version) {
  ASSERT_TRUE(run_in_fiber(world_, [&] {
    auto stream = connect();
    // A v4 request as a newer client sends it: header v2 and a body the broker need not parse.
    Bytes frame;
    protocol::encode_request_header({protocol::api::kApiVersions, 4, 7, "future"}, true, frame);
    frame.push_back(std::byte{0});  // empty header tags
    frame.push_back(std::byte{0x42});
    ASSERT_TRUE(write_frame(*stream, frame, kTestDeadline));
    auto response = receive(*stream, protocol::api::kApiVersions, 0, 7, false);
    ASSERT_TRUE(response.has_value());
    expect_api_versions(*response, error::kUnsupportedVersion);
  }));
}

TEST_F(BrokerSimTest, metadata_v0_pipelined_after_api_versions_v0_is_answered_in_order) {
  ASSERT_TRUE(run_in_fiber(world_, [&] {
    auto stream = connect();
    // kafka-python's probe: both requests written before either response is read.
    send(*stream, protocol::api::kApiVersions, 0, 10, request_of(protocol::api::kApiVersions));
    send(*stream, protocol::api::kMetadata, 0, 11, request_of(protocol::api::kMetadata));
    auto versions = receive(*stream, protocol::api::kApiVersions, 0, 10, false);
    ASSERT_TRUE(versions.has_value());
    auto metadata = receive(*stream, protocol::api::kMetadata, 0, 11, false);
    ASSERT_TRUE(metadata.has_value());
    ASSERT_EQ(metadata->get_structs("brokers").size(), 1u);
    EXPECT_EQ(metadata->get_structs("brokers")[0].get_string("host"), "broker");
    EXPECT_EQ(metadata->get_structs("brokers")[0].get_int("port"), kPort);
  }));
}

TEST_F(BrokerSimTest, metadata_auto_creates_topics_and_rejects_invalid_names) {
  ASSERT_TRUE(run_in_fiber(world_, [&] {
    auto stream = connect();
    send(*stream, protocol::api::kMetadata, 4, 1, metadata_request("orders"));
    auto created = receive(*stream, protocol::api::kMetadata, 4, 1, false);
    ASSERT_TRUE(created.has_value());
    const StructValue& topic = created->get_structs("topics").at(0);
    EXPECT_EQ(topic.get_int("error_code"), 0);
    EXPECT_EQ(topic.get_structs("partitions").size(), 1u);
    EXPECT_EQ(created->get_int("controller_id"), 0);

    send(*stream, protocol::api::kMetadata, 4, 2, metadata_request("bad/name"));
    auto invalid = receive(*stream, protocol::api::kMetadata, 4, 2, false);
    ASSERT_TRUE(invalid.has_value());
    EXPECT_EQ(invalid->get_structs("topics").at(0).get_int("error_code"), error::kInvalidTopic);

    StructValue no_create = metadata_request("absent");
    no_create.set("allow_auto_topic_creation", Value(false));
    send(*stream, protocol::api::kMetadata, 4, 3, no_create);
    auto unknown = receive(*stream, protocol::api::kMetadata, 4, 3, false);
    ASSERT_TRUE(unknown.has_value());
    EXPECT_EQ(unknown->get_structs("topics").at(0).get_int("error_code"),
              error::kUnknownTopicOrPartition);
  }));
}

TEST_F(BrokerSimTest, produce_then_fetch_round_trips_the_records) {
  ASSERT_TRUE(run_in_fiber(world_, [&] {
    auto stream = connect();
    send(*stream, protocol::api::kMetadata, 4, 1, metadata_request("events"));
    ASSERT_TRUE(receive(*stream, protocol::api::kMetadata, 4, 1, false).has_value());
    send(*stream, protocol::api::kProduce, 7, 2,
         produce_request("events", -1, batch_of({"a", "b", "c"})));
    auto produced = receive(*stream, protocol::api::kProduce, 7, 2, false);
    ASSERT_TRUE(produced.has_value());
    const StructValue& partition =
        produced->get_structs("responses").at(0).get_structs("partition_responses").at(0);
    EXPECT_EQ(partition.get_int("error_code"), 0);
    EXPECT_EQ(partition.get_int("base_offset"), 0);

    send(*stream, protocol::api::kFetch, 11, 3, fetch_request("events", 1, 0));
    auto fetched = receive(*stream, protocol::api::kFetch, 11, 3, false);
    ASSERT_TRUE(fetched.has_value());
    const StructValue& data =
        fetched->get_structs("responses").at(0).get_structs("partitions").at(0);
    EXPECT_EQ(data.get_int("error_code"), 0);
    EXPECT_EQ(data.get_int("high_watermark"), 3);
    EXPECT_EQ(data.get_int("last_stable_offset"), 3);
    auto records = storage::decode_records(data["records"].as_bytes());
    ASSERT_TRUE(records.has_value());
    ASSERT_EQ(records->size(), 3u);  // the whole batch holding offset 1
    EXPECT_EQ(records->at(2).value, "c");

    send(*stream, protocol::api::kFetch, 4, 4, fetch_request("events", 99, 0));
    auto out_of_range = receive(*stream, protocol::api::kFetch, 4, 4, false);
    ASSERT_TRUE(out_of_range.has_value());
    EXPECT_EQ(out_of_range->get_structs("responses")
                  .at(0)
                  .get_structs("partitions")
                  .at(0)
                  .get_int("error_code"),
              error::kOffsetOutOfRange);
  }));
}

TEST_F(BrokerSimTest, list_offsets_answers_earliest_latest_and_by_timestamp) {
  ASSERT_TRUE(run_in_fiber(world_, [&] {
    auto stream = connect();
    send(*stream, protocol::api::kMetadata, 4, 1, metadata_request("times"));
    ASSERT_TRUE(receive(*stream, protocol::api::kMetadata, 4, 1, false).has_value());
    // Two batches: offsets 0-2 at times 1000, 1010, 1020 and offsets 3-4 at 2000, 2010.
    for (std::int64_t base_timestamp : {1000, 2000}) {
      storage::BatchSpec spec;
      spec.base_timestamp_ms = base_timestamp;
      const int records = base_timestamp == 1000 ? 3 : 2;
      for (int i = 0; i < records; ++i) {
        auto record = record_of("v");
        record.timestamp_delta_ms = 10 * i;
        spec.records.push_back(record);
      }
      ASSERT_EQ(call(*stream, protocol::api::kProduce, 7, produce_request("times", -1, storage::build_batch(spec)))
                    .get_structs("responses").at(0).get_structs("partition_responses").at(0).get_int("error_code"),
                0);
    }
    auto list = [&](std::int64_t timestamp) {
      StructValue request = request_of(protocol::api::kListOffsets);
      request.set("replica_id", Value(std::int64_t{-1}));
      StructValue& topic = request.add("topics");
      topic.set("name", Value(std::string("times")));
      topic.add("partitions").set("partition_index", Value(std::int64_t{0})).set("timestamp", Value(timestamp));
      StructValue response = call(*stream, protocol::api::kListOffsets, 1, request);
      const StructValue& partition = response.get_structs("topics").at(0).get_structs("partitions").at(0);
      EXPECT_EQ(partition.get_int("error_code"), 0);
      return std::pair{partition.get_int("offset"), partition.get_int("timestamp")};
    };
    EXPECT_EQ(list(-2).first, 0);   // earliest
    EXPECT_EQ(list(-1).first, 5);   // latest: the high watermark
    EXPECT_EQ(list(1005), (std::pair<std::int64_t, std::int64_t>{1, 1010}));  // first record at or after
    EXPECT_EQ(list(1500), (std::pair<std::int64_t, std::int64_t>{3, 2000}));
    EXPECT_EQ(list(9999).first, -1);  // nothing that late
  }));
}

TEST_F(BrokerSimTest, fetch_long_poll_is_woken_by_an_append) {
  ASSERT_TRUE(run_in_fiber(world_, [&] {
    auto consumer = connect();
    auto producer = connect();
    send(*producer, protocol::api::kMetadata, 4, 1, metadata_request("waiting"));
    ASSERT_TRUE(receive(*producer, protocol::api::kMetadata, 4, 1, false).has_value());
    const Instant started = world_.now();
    send(*consumer, protocol::api::kFetch, 11, 2, fetch_request("waiting", 0, 10'000));
    this_fiber::sleep_for(milliseconds(500));
    send(*producer, protocol::api::kProduce, 7, 3,
         produce_request("waiting", 1, batch_of({"late"})));
    ASSERT_TRUE(receive(*producer, protocol::api::kProduce, 7, 3, false).has_value());
    auto fetched = receive(*consumer, protocol::api::kFetch, 11, 2, false);
    ASSERT_TRUE(fetched.has_value());
    EXPECT_LT(world_.now() - started, seconds(5));
    const StructValue& data =
        fetched->get_structs("responses").at(0).get_structs("partitions").at(0);
    EXPECT_FALSE(data["records"].as_bytes().empty());
  }));
}

// flush.messages > 1 opts out of per-append durability: what is acknowledged is readable at once
// (Kafka with one replica), not after the next flush.ms flush as it would be for a durable topic.
TEST(BrokerSimVisibilityTest, a_topic_not_flushed_per_append_serves_acknowledged_records_at_once) {
  BrokerWorld broker([](BrokerConfig& config) {
    config.log.flush_messages = 1'000'000;
    config.log.flush_ms = 60'000;
  });
  ASSERT_TRUE(broker.run([&] {
    auto consumer = broker.connect();
    auto producer = broker.connect();
    send(*producer, protocol::api::kMetadata, 4, 1, metadata_request("lazy"));
    ASSERT_TRUE(receive(*producer, protocol::api::kMetadata, 4, 1, false).has_value());
    const Instant started = broker.world().now();
    send(*consumer, protocol::api::kFetch, 11, 2, fetch_request("lazy", 0, 10'000));
    send(*producer, protocol::api::kProduce, 7, 3, produce_request("lazy", 1, batch_of({"now"})));
    ASSERT_TRUE(receive(*producer, protocol::api::kProduce, 7, 3, false).has_value());
    auto fetched = receive(*consumer, protocol::api::kFetch, 11, 2, false);
    ASSERT_TRUE(fetched.has_value());
    EXPECT_LT(broker.world().now() - started, milliseconds(100));
    const StructValue& data = fetched->get_structs("responses").at(0).get_structs("partitions").at(0);
    EXPECT_EQ(data.get_int("high_watermark"), 1);
    EXPECT_FALSE(data["records"].as_bytes().empty());
  }));
}

TEST_F(BrokerSimTest, produce_with_acks_zero_sends_no_response) {
  ASSERT_TRUE(run_in_fiber(world_, [&] {
    auto stream = connect();
    send(*stream, protocol::api::kMetadata, 4, 1, metadata_request("quiet"));
    ASSERT_TRUE(receive(*stream, protocol::api::kMetadata, 4, 1, false).has_value());
    send(*stream, protocol::api::kProduce, 7, 2, produce_request("quiet", 0, batch_of({"x"})));
    send(*stream, protocol::api::kApiVersions, 0, 3, request_of(protocol::api::kApiVersions));
    // The next response on the wire answers correlation id 3, not 2.
    ASSERT_TRUE(receive(*stream, protocol::api::kApiVersions, 0, 3, false).has_value());
  }));
}

TEST_F(BrokerSimTest, idempotent_retry_gets_the_original_offset) {
  ASSERT_TRUE(run_in_fiber(world_, [&] {
    auto stream = connect();
    send(*stream, protocol::api::kMetadata, 4, 1, metadata_request("idem"));
    ASSERT_TRUE(receive(*stream, protocol::api::kMetadata, 4, 1, false).has_value());
    StructValue init = request_of(protocol::api::kInitProducerId);
    init.set("transactional_id", Value(protocol::Null{}));
    send(*stream, protocol::api::kInitProducerId, 1, 2, init);
    auto producer = receive(*stream, protocol::api::kInitProducerId, 1, 2, false);
    ASSERT_TRUE(producer.has_value());
    EXPECT_EQ(producer->get_int("error_code"), 0);
    storage::BatchSpec spec;
    spec.producer_id = producer->get_int("producer_id");
    spec.producer_epoch = 0;
    spec.base_sequence = 0;
    spec.records.push_back(record_of("once"));
    for (std::int32_t attempt = 0; attempt < 2; ++attempt) {
      send(*stream, protocol::api::kProduce, 7, 10 + attempt,
           produce_request("idem", -1, storage::build_batch(spec)));
      auto produced = receive(*stream, protocol::api::kProduce, 7, 10 + attempt, false);
      ASSERT_TRUE(produced.has_value());
      const StructValue& partition =
          produced->get_structs("responses").at(0).get_structs("partition_responses").at(0);
      EXPECT_EQ(partition.get_int("error_code"), 0);
      EXPECT_EQ(partition.get_int("base_offset"), 0);
    }
    spec.base_sequence = 5;  // a gap
    send(*stream, protocol::api::kProduce, 7, 20,
         produce_request("idem", -1, storage::build_batch(spec)));
    auto gap = receive(*stream, protocol::api::kProduce, 7, 20, false);
    ASSERT_TRUE(gap.has_value());
    EXPECT_EQ(gap->get_structs("responses")
                  .at(0)
                  .get_structs("partition_responses")
                  .at(0)
                  .get_int("error_code"),
              45);
  }));
}

TEST_F(BrokerSimTest, unknown_api_key_closes_the_connection) {
  ASSERT_TRUE(run_in_fiber(world_, [&] {
    auto stream = connect();
    Bytes frame;
    protocol::encode_request_header({99, 0, 1, "x"}, false, frame);
    ASSERT_TRUE(write_frame(*stream, frame, kTestDeadline));
    EXPECT_TRUE(closed_by_peer(*stream));
  }));
}

TEST_F(BrokerSimTest, unsupported_produce_version_closes_the_connection) {
  ASSERT_TRUE(run_in_fiber(world_, [&] {
    auto stream = connect();
    Bytes frame;
    protocol::encode_request_header({protocol::api::kProduce, 2, 1, "x"}, false, frame);
    ASSERT_TRUE(write_frame(*stream, frame, kTestDeadline));
    EXPECT_TRUE(closed_by_peer(*stream));
  }));
}

TEST_F(BrokerSimTest, garbage_frames_close_the_connection_and_the_broker_stays_up) {
  ASSERT_TRUE(run_in_fiber(world_, [&] {
    for (std::uint32_t seed = 1; seed <= 20; ++seed) {
      auto stream = connect();
      Bytes garbage;
      for (std::uint32_t i = 0; i < 5 + seed * 3; ++i)
        garbage.push_back(static_cast<std::byte>((seed * 131 + i * 17) & 0xff));
      // A valid Metadata header with a truncated body, or pure noise.
      if (seed % 2 == 0) {
        garbage.clear();
        protocol::encode_request_header({protocol::api::kMetadata, 1, 1, "x"}, false, garbage);
        for (int i = 0; i < 4; ++i) garbage.push_back(std::byte{0x7f});  // array of 2^31 topics
      }
      ASSERT_TRUE(write_frame(*stream, garbage, kTestDeadline));
      EXPECT_TRUE(closed_by_peer(*stream)) << "seed " << seed;
    }
    auto healthy = connect();
    send(*healthy, protocol::api::kApiVersions, 0, 1, request_of(protocol::api::kApiVersions));
    EXPECT_TRUE(receive(*healthy, protocol::api::kApiVersions, 0, 1, false).has_value());
  }));
}

TEST_F(BrokerSimTest, oversized_frame_is_refused_before_its_body_arrives) {
  ASSERT_TRUE(run_in_fiber(world_, [&] {
    auto stream = connect();
    // Only the size prefix is sent (2 GiB): the broker must close without waiting for the body.
    Bytes prefix;
    ByteWriter(prefix).u32(0x7fffffff);
    ASSERT_TRUE(stream->write_all(prefix, kTestDeadline));
    EXPECT_TRUE(closed_by_peer(*stream));
  }));
}

}  // namespace
}  // namespace sluice::kafka
