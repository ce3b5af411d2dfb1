// A connection's pipelined Produce requests (connection.cc, Broker::produce_append /
// produce_complete), in a simulated node with a slow fsync: requests read ahead are appended in
// the order sent and answered in that order, share fsyncs, are bounded in number, interleave
// correctly with other APIs, keep an idempotent producer's sequence rules, survive a client that
// vanishes, and are all answered by a graceful stop.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/storage/record_batch.h"
#include "tests/kafka/broker_sim_client.h"

namespace sluice::kafka {
namespace {

using namespace kafka::testing;
namespace api = protocol::api;

constexpr std::int16_t kProduceVersion = 7;
constexpr Duration kSyncLatency = milliseconds(10);

// Every fsync takes exactly kSyncLatency (or `latency`): long enough for requests to pile up.
// BUGGIFY goes off too: an early segment roll (two more fsyncs inside an append) would make the
// timings these tests compare depend on where it fell.
void slow_syncs(LifecycleWorld& world, Duration latency = kSyncLatency) {
  world.world().buggify() = Buggify();
  sim::SimDiskFaults faults = world.disk().faults();
  faults.sync_latency_min = latency;
  faults.sync_latency_mean_extra = Duration(0);
  world.disk().set_faults(faults);
}

Bytes batch_of(const std::string& value, std::int64_t producer_id = storage::kNoProducerId,
               std::int32_t sequence = storage::kNoSequence) {
  storage::BatchSpec spec;
  spec.producer_id = producer_id;
  spec.producer_epoch = producer_id == storage::kNoProducerId ? storage::kNoProducerEpoch : 0;
  spec.base_sequence = sequence;
  storage::RecordSpec record;
  record.value = value;
  spec.records.push_back(std::move(record));
  return storage::build_batch(spec);
}

StructValue produce_to(std::string_view topic, std::int32_t partition, Bytes batch, std::int16_t acks = -1) {
  StructValue request = produce_request(topic, acks, std::move(batch));
  request.get_structs("topic_data")
      .at(0)
      .get_structs("partition_data")
      .at(0)
      .set("index", Value(std::int64_t{partition}));
  return request;
}

const StructValue& partition_answer(const StructValue& response) {
  return response.get_structs("responses").at(0).get_structs("partition_responses").at(0);
}

// The values stored in one partition, in offset order (each test batch holds one record).
std::vector<std::string> stored_values(Broker& broker, const std::string& topic, std::int32_t partition) {
  std::vector<std::string> values;
  const auto found = broker.topics().find(topic, partition);
  if (found == nullptr) return values;
  auto read = found->log->read(0, 64 << 20, found->log->high_watermark());
  EXPECT_TRUE(read.has_value());
  if (!read) return values;
  std::span<const std::byte> bytes(read->bytes);
  while (!bytes.empty()) {
    auto header = storage::parse_batch_header(bytes);
    EXPECT_TRUE(header.has_value());
    if (!header) break;
    const std::size_t size = header->size_bytes();
    auto records = storage::decode_records(bytes.first(size));
    EXPECT_TRUE(records.has_value());
    if (records) {
      for (const auto& record : *records) values.emplace_back(record.value.value_or(""));
    }
    bytes = bytes.subspan(size);
  }
  return values;
}

TEST(BrokerPipelineSimTest, pipelined_produces_are_appended_and_answered_in_request_order_and_share_fsyncs) {
  LifecycleWorld world([](BrokerConfig& config) { config.default_partitions = 2; });
  slow_syncs(world);
  ASSERT_TRUE(sim::testing::run_in_fiber(world.world(), [&] {
    auto stream = world.connect();
    send(*stream, api::kMetadata, 4, 1, metadata_request("piped"));
    ASSERT_TRUE(receive(*stream, api::kMetadata, 4, 1, false).has_value());
    const std::uint64_t syncs_before = world.broker().env().metrics().fsync_latency.count();
    constexpr int kRequests = 24;
    const Instant started = world.world().now();
    // Without waiting for answers: two partitions alternately, a Metadata request in the middle.
    for (int i = 0; i < kRequests; ++i) {
      send(*stream, api::kProduce, kProduceVersion, 100 + i,
           produce_to("piped", i % 2, batch_of("v" + std::to_string(i))));
      if (i == kRequests / 2 - 1) send(*stream, api::kMetadata, 4, 500, metadata_request("piped"));
    }
    std::vector<std::int64_t> next_offset(2, 0);
    for (int i = 0; i < kRequests; ++i) {
      auto produced = receive(*stream, api::kProduce, kProduceVersion, 100 + i, false);
      ASSERT_TRUE(produced.has_value());
      const StructValue& answer = partition_answer(*produced);
      EXPECT_EQ(answer.get_int("error_code"), 0) << "request " << i;
      EXPECT_EQ(answer.get_int("base_offset"), next_offset[i % 2]++) << "request " << i;
      if (i == kRequests / 2 - 1) {
        auto metadata = receive(*stream, api::kMetadata, 4, 500, false);
        ASSERT_TRUE(metadata.has_value());
      }
    }
    const Duration took = world.world().now() - started;
    const std::uint64_t syncs = world.broker().env().metrics().fsync_latency.count() - syncs_before;
    // One at a time these would cost kRequests fsyncs back to back (240 ms). Read ahead, eight
    // requests over two partitions are in flight: while one fsync runs per partition, the three
    // requests behind it append, and the next fsync covers them all. Measured: 12 fsyncs, 70 ms.
    EXPECT_LE(syncs, static_cast<std::uint64_t>(kRequests) / 2) << "fsyncs: " << syncs;
    EXPECT_LE(took, kSyncLatency * kRequests / 2) << "took " << took.count() << " ns";
    for (int partition = 0; partition < 2; ++partition) {
      std::vector<std::string> expected;
      for (int i = partition; i < kRequests; i += 2) expected.push_back("v" + std::to_string(i));
      EXPECT_EQ(stored_values(world.broker(), "piped", partition), expected);
    }
  }));
}

TEST(BrokerPipelineSimTest, the_connection_reads_at_most_eight_produce_requests_ahead) {
  LifecycleWorld world;
  slow_syncs(world, seconds(1));
  ASSERT_TRUE(sim::testing::run_in_fiber(world.world(), [&] {
    auto stream = world.connect();
    send(*stream, api::kMetadata, 4, 1, metadata_request("bounded"));
    ASSERT_TRUE(receive(*stream, api::kMetadata, 4, 1, false).has_value());
    for (int i = 0; i < 20; ++i) {
      send(*stream, api::kProduce, kProduceVersion, 100 + i, produce_to("bounded", 0, batch_of("x")));
    }
    this_fiber::sleep_for(milliseconds(500));  // the first fsync has not finished
    EXPECT_EQ(world.broker().topics().find("bounded", 0)->log->log_end_offset(), 8);
    for (int i = 0; i < 20; ++i) {
      auto produced = receive(*stream, api::kProduce, kProduceVersion, 100 + i, false);
      ASSERT_TRUE(produced.has_value());
      EXPECT_EQ(partition_answer(*produced).get_int("base_offset"), i);
    }
  }));
}

TEST(BrokerPipelineSimTest, an_idempotent_producer_keeps_its_sequence_rules_across_pipelined_requests) {
  LifecycleWorld world;
  slow_syncs(world);
  ASSERT_TRUE(sim::testing::run_in_fiber(world.world(), [&] {
    auto stream = world.connect();
    send(*stream, api::kMetadata, 4, 1, metadata_request("idem"));
    ASSERT_TRUE(receive(*stream, api::kMetadata, 4, 1, false).has_value());
    StructValue init = request_of(api::kInitProducerId);
    init.set("transactional_id", Value(protocol::Null{}));
    send(*stream, api::kInitProducerId, 1, 2, init);
    auto producer = receive(*stream, api::kInitProducerId, 1, 2, false);
    ASSERT_TRUE(producer.has_value());
    const std::int64_t id = producer->get_int("producer_id");
    // Sequences 0-4 read ahead; a retry of 2 while its original still awaits its fsync; then a
    // gap (7): the retry is answered with the original's offset, the gap refused (45).
    for (int sequence = 0; sequence < 5; ++sequence) {
      send(*stream, api::kProduce, kProduceVersion, 10 + sequence,
           produce_to("idem", 0, batch_of("s" + std::to_string(sequence), id, sequence)));
    }
    send(*stream, api::kProduce, kProduceVersion, 20, produce_to("idem", 0, batch_of("s2", id, 2)));
    send(*stream, api::kProduce, kProduceVersion, 21, produce_to("idem", 0, batch_of("s7", id, 7)));
    for (int sequence = 0; sequence < 5; ++sequence) {
      auto produced = receive(*stream, api::kProduce, kProduceVersion, 10 + sequence, false);
      ASSERT_TRUE(produced.has_value());
      EXPECT_EQ(partition_answer(*produced).get_int("error_code"), 0);
      EXPECT_EQ(partition_answer(*produced).get_int("base_offset"), sequence);
    }
    auto retry = receive(*stream, api::kProduce, kProduceVersion, 20, false);
    ASSERT_TRUE(retry.has_value());
    EXPECT_EQ(partition_answer(*retry).get_int("error_code"), 0);
    EXPECT_EQ(partition_answer(*retry).get_int("base_offset"), 2);
    auto gap = receive(*stream, api::kProduce, kProduceVersion, 21, false);
    ASSERT_TRUE(gap.has_value());
    EXPECT_EQ(partition_answer(*gap).get_int("error_code"), 45);
    EXPECT_EQ(stored_values(world.broker(), "idem", 0),
              (std::vector<std::string>{"s0", "s1", "s2", "s3", "s4"}));
  }));
}

TEST(BrokerPipelineSimTest, acks_zero_requests_in_the_pipeline_send_nothing_and_still_become_visible) {
  LifecycleWorld world;
  slow_syncs(world);
  ASSERT_TRUE(sim::testing::run_in_fiber(world.world(), [&] {
    auto stream = world.connect();
    send(*stream, api::kMetadata, 4, 1, metadata_request("quiet"));
    ASSERT_TRUE(receive(*stream, api::kMetadata, 4, 1, false).has_value());
    send(*stream, api::kProduce, kProduceVersion, 10, produce_to("quiet", 0, batch_of("a"), 0));
    send(*stream, api::kProduce, kProduceVersion, 11, produce_to("quiet", 0, batch_of("b"), -1));
    send(*stream, api::kProduce, kProduceVersion, 12, produce_to("quiet", 0, batch_of("c"), 0));
    send(*stream, api::kApiVersions, 0, 13, request_of(api::kApiVersions));
    // The next answers on the wire: 11, then 13.
    auto acked = receive(*stream, api::kProduce, kProduceVersion, 11, false);
    ASSERT_TRUE(acked.has_value());
    EXPECT_EQ(partition_answer(*acked).get_int("base_offset"), 1);
    ASSERT_TRUE(receive(*stream, api::kApiVersions, 0, 13, false).has_value());
    // The unacknowledged batches were flushed too (the high watermark covers them).
    EXPECT_EQ(stored_values(world.broker(), "quiet", 0), (std::vector<std::string>{"a", "b", "c"}));
  }));
}

TEST(BrokerPipelineSimTest, a_client_gone_mid_pipeline_leaves_no_connection_and_no_budget_behind) {
  LifecycleWorld world;
  slow_syncs(world, milliseconds(50));
  ASSERT_TRUE(sim::testing::run_in_fiber(world.world(), [&] {
    Broker& broker = world.broker();
    const std::size_t budget = broker.request_memory().available();
    {
      auto stream = world.connect();
      send(*stream, api::kMetadata, 4, 1, metadata_request("gone"));
      ASSERT_TRUE(receive(*stream, api::kMetadata, 4, 1, false).has_value());
      // Large enough (> 64 KiB) that each holds request memory until its answer is written.
      for (int i = 0; i < 6; ++i) {
        send(*stream, api::kProduce, kProduceVersion, 10 + i,
             produce_to("gone", 0, batch_of(std::string(100 * 1024, 'x'))));
      }
      this_fiber::sleep_for(milliseconds(5));
      EXPECT_LT(broker.request_memory().available(), budget);
      stream->close();
    }
    this_fiber::sleep_for(seconds(1));
    EXPECT_EQ(broker.connections_open(), 0u);
    EXPECT_EQ(broker.request_memory().available(), budget);
    auto again = world.connect();
    send(*again, api::kMetadata, 4, 2, metadata_request("gone"));
    EXPECT_TRUE(receive(*again, api::kMetadata, 4, 2, false).has_value());
  }));
}

// flush.messages > 1: a request that makes the policy's flush due is answered without waiting
// for it (nor are the requests behind it); the flush fiber runs the sync.
TEST(BrokerPipelineSimTest, a_flush_due_on_a_lazy_topic_runs_beside_the_answers_not_before_them) {
  LifecycleWorld world([](BrokerConfig& config) {
    config.log.flush_messages = 4;
    config.flush_check_interval = seconds(60);  // only the wake-up can start it soon
  });
  slow_syncs(world, milliseconds(100));
  ASSERT_TRUE(sim::testing::run_in_fiber(world.world(), [&] {
    auto stream = world.connect();
    send(*stream, api::kMetadata, 4, 1, metadata_request("lazy"));
    ASSERT_TRUE(receive(*stream, api::kMetadata, 4, 1, false).has_value());
    const storage::PartitionLog& log = *world.broker().topics().find("lazy", 0)->log;
    const Instant started = world.world().now();
    for (int i = 0; i < 8; ++i) {
      send(*stream, api::kProduce, kProduceVersion, 10 + i, produce_to("lazy", 0, batch_of("l"), 1));
      auto produced = receive(*stream, api::kProduce, kProduceVersion, 10 + i, false);
      ASSERT_TRUE(produced.has_value());
      EXPECT_EQ(partition_answer(*produced).get_int("base_offset"), i);
    }
    EXPECT_LT(world.world().now() - started, milliseconds(10));  // no 100 ms sync in the way
    EXPECT_EQ(log.durable_end_offset(), 0);
    this_fiber::sleep_for(milliseconds(500));
    EXPECT_GE(log.durable_end_offset(), 4);  // the fiber flushed once the count was reached
  }));
}

TEST(BrokerPipelineSimTest, a_graceful_stop_answers_every_pipelined_produce_before_closing) {
  LifecycleWorld world;
  slow_syncs(world, milliseconds(100));
  ASSERT_TRUE(sim::testing::run_in_fiber(world.world(), [&] {
    auto stream = world.connect();
    send(*stream, api::kMetadata, 4, 1, metadata_request("draining"));
    ASSERT_TRUE(receive(*stream, api::kMetadata, 4, 1, false).has_value());
    for (int i = 0; i < 8; ++i) {
      send(*stream, api::kProduce, kProduceVersion, 10 + i, produce_to("draining", 0, batch_of("d")));
    }
    this_fiber::sleep_for(milliseconds(20));  // read and appended, the first fsync running
    world.current().stop_requested.set();
    for (int i = 0; i < 8; ++i) {
      auto produced = receive(*stream, api::kProduce, kProduceVersion, 10 + i, false);
      ASSERT_TRUE(produced.has_value()) << "request " << i;
      EXPECT_EQ(partition_answer(*produced).get_int("error_code"), 0);
      EXPECT_EQ(partition_answer(*produced).get_int("base_offset"), i);
    }
    EXPECT_TRUE(closed_by_peer(*stream));
    this_fiber::sleep_for(seconds(30));  // closing 51 logs costs a few fsyncs each
    EXPECT_TRUE(world.current().stopped);
  }));
}

}  // namespace
}  // namespace sluice::kafka
