// The broker's metrics (Env::metrics(), core/kafka/broker_metrics.h) and its graceful stop, in a
// simulated node: what a workload does shows up in the Prometheus exposition with exact numbers,
// and stop() answers the requests in progress, closes idle connections, bounds a stuck request by
// drain_timeout and leaves logs that reopen without a recovery scan.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "core/env/sync.h"
#include "core/kafka/broker_metrics.h"
#include "core/storage/record_batch.h"
#include "tests/kafka/broker_sim_client.h"

namespace sluice::kafka {
namespace {

using namespace kafka::testing;
namespace api = protocol::api;

constexpr std::int16_t kNotCoordinator = 16;

// The exposition as "name{labels}" -> value, checking every line's shape on the way: comments are
// HELP or TYPE, samples are `name[{labels}] value`, and each family's TYPE comes before its samples.
std::map<std::string, double> parse_exposition(const std::string& text) {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream fields(line.substr(7));
      std::string name;
      std::string type;
      fields >> name >> type;
      EXPECT_TRUE(types.emplace(name, type).second) << "family declared twice: " << name;
      continue;
    }
    const std::size_t space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    if (space == std::string::npos) continue;
    const std::string series = line.substr(0, space);
    const std::string name = series.substr(0, series.find('{'));
    std::string family = name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s(suffix);
      if (!types.contains(family) && family.size() > s.size() &&
          family.compare(family.size() - s.size(), s.size(), s) == 0) {
        family = family.substr(0, family.size() - s.size());
      }
    }
    EXPECT_TRUE(types.contains(family)) << "sample before its TYPE: " << line;
    EXPECT_TRUE(samples.emplace(series, std::stod(line.substr(space + 1))).second)
        << "duplicate series: " << series;
  }
  return samples;
}

double metric(const std::map<std::string, double>& samples, const std::string& series) {
  auto found = samples.find(series);
  EXPECT_NE(found, samples.end()) << "no series " << series;
  return found == samples.end() ? -1 : found->second;
}

Bytes batch_of(int records) {
  storage::BatchSpec spec;
  for (int i = 0; i < records; ++i) {
    storage::RecordSpec record;
    record.value = "value-" + std::to_string(i);
    spec.records.push_back(record);
  }
  return storage::build_batch(spec);
}

// A simple (groupless) offset commit, as an assign()-style consumer sends it.
StructValue simple_commit(std::string_view group, std::string_view topic, std::int64_t offset) {
  StructValue request = request_of(api::kOffsetCommit);
  request.set("group_id", Value(std::string(group)));
  request.set("generation_id_or_member_epoch", Value(std::int64_t{-1}));
  request.set("member_id", Value(std::string()));
  StructValue& commit_topic = request.add("topics");
  commit_topic.set("name", Value(std::string(topic)));
  StructValue& partition = commit_topic.add("partitions");
  partition.set("partition_index", Value(std::int64_t{0}));
  partition.set("committed_offset", Value(offset));
  return request;
}

std::int16_t produce_error(const StructValue& response) {
  return static_cast<std::int16_t>(
      response.get_structs("responses")[0].get_structs("partition_responses")[0].get_int("error_code"));
}

TEST(BrokerMetricsSimTest, a_workload_moves_every_counter_by_exactly_what_it_did) {
  LifecycleWorld world;
  const Bytes first = batch_of(3);
  const Bytes second = batch_of(4);
  ASSERT_TRUE(sim::testing::run_in_fiber(world.world(), [&] {
    auto stream = world.connect();
    call(*stream, api::kMetadata, 5, metadata_request("orders"));
    EXPECT_EQ(produce_error(call(*stream, api::kProduce, 7, produce_request("orders", -1, first))), 0);
    EXPECT_EQ(produce_error(call(*stream, api::kProduce, 7, produce_request("orders", -1, second))), 0);
    StructValue bad = produce_request("orders", -1, batch_of(1));
    bad.get_structs("topic_data")[0].get_structs("partition_data")[0].set("index", Value(std::int64_t{5}));
    EXPECT_EQ(produce_error(call(*stream, api::kProduce, 7, bad)), error::kUnknownTopicOrPartition);
    call(*stream, api::kFetch, 11, fetch_request("orders", 0, 0));
    const StructValue committed = call(*stream, api::kOffsetCommit, 7, simple_commit("audit", "orders", 5));
    EXPECT_EQ(committed.get_structs("topics")[0].get_structs("partitions")[0].get_int("error_code"), 0);
  }));
  const auto samples = parse_exposition(render_prometheus(world.broker()));
  const std::string orders = "{topic=\"orders\",partition=\"0\"}";
  EXPECT_EQ(metric(samples, "sluice_kafka_requests_total{api=\"Produce\"}"), 3);
  EXPECT_EQ(metric(samples, "sluice_kafka_request_errors_total{api=\"Produce\"}"), 1);
  EXPECT_EQ(metric(samples, "sluice_kafka_requests_total{api=\"Fetch\"}"), 1);
  EXPECT_EQ(metric(samples, "sluice_kafka_request_errors_total{api=\"Fetch\"}"), 0);
  EXPECT_EQ(metric(samples, "sluice_kafka_requests_total{api=\"Metadata\"}"), 1);
  EXPECT_EQ(metric(samples, "sluice_kafka_requests_total{api=\"JoinGroup\"}"), 0);
  EXPECT_EQ(metric(samples, "sluice_kafka_request_latency_seconds_count{api=\"Produce\"}"), 3);
  EXPECT_EQ(metric(samples, "sluice_kafka_request_latency_seconds_bucket{api=\"Produce\",le=\"+Inf\"}"), 3);
  EXPECT_EQ(metric(samples, "sluice_partition_records_in_total" + orders), 7);
  EXPECT_EQ(metric(samples, "sluice_partition_bytes_in_total" + orders),
            static_cast<double>(first.size() + second.size()));
  EXPECT_EQ(metric(samples, "sluice_partition_records_out_total" + orders), 7);
  EXPECT_EQ(metric(samples, "sluice_partition_bytes_out_total" + orders),
            static_cast<double>(first.size() + second.size()));
  EXPECT_EQ(metric(samples, "sluice_partition_log_start_offset" + orders), 0);
  EXPECT_EQ(metric(samples, "sluice_partition_log_end_offset" + orders), 7);
  EXPECT_EQ(metric(samples, "sluice_partition_high_watermark" + orders), 7);
  EXPECT_GE(metric(samples, "sluice_storage_fsync_latency_seconds_count"), 2);  // acks=all, twice
  EXPECT_EQ(metric(samples, "sluice_storage_fsync_errors_total"), 0);
  EXPECT_EQ(metric(samples, "sluice_connections_accepted_total"), 1);
  EXPECT_EQ(metric(samples, "sluice_connections_open"), 1);
  EXPECT_EQ(metric(samples, "sluice_group_committed_offset{group=\"audit\",topic=\"orders\",partition=\"0\"}"), 5);
  EXPECT_EQ(metric(samples, "sluice_group_consumer_lag{group=\"audit\",topic=\"orders\",partition=\"0\"}"), 2);
  EXPECT_EQ(metric(samples, "sluice_request_memory_used_bytes"), 0);
  // A fresh data directory: every partition was created, not recovered by a scan.
  EXPECT_EQ(metric(samples, "sluice_partition_recovery_batches_scanned" + orders), 0);
}

TEST(BrokerMetricsSimTest, label_values_are_escaped) {
  LifecycleWorld world;
  ASSERT_TRUE(sim::testing::run_in_fiber(world.world(), [&] {
    auto stream = world.connect();
    call(*stream, api::kMetadata, 5, metadata_request("t"));
    call(*stream, api::kOffsetCommit, 7, simple_commit("a\"b\\c\nd", "t", 0));
  }));
  const std::string text = render_prometheus(world.broker());
  EXPECT_NE(text.find("group=\"a\\\"b\\\\c\\nd\""), std::string::npos) << text;
}

TEST(BrokerDrainSimTest, stop_answers_requests_in_progress_and_closes_idle_connections) {
  LifecycleWorld world;
  bool fetch_answered = false;
  std::int16_t join_error = -1;
  bool idle_closed = false;
  Instant fetch_answered_at{};
  std::unique_ptr<Stream> idle;
  std::unique_ptr<Stream> fetching;
  std::unique_ptr<Stream> joining;
  ASSERT_TRUE(sim::testing::run_in_fiber(world.world(), [&] {
    auto stream = world.connect();
    call(*stream, api::kMetadata, 5, metadata_request("orders"));
    EXPECT_EQ(produce_error(call(*stream, api::kProduce, 7, produce_request("orders", -1, batch_of(2)))), 0);
    idle = world.connect();
    fetching = world.connect();
    joining = world.connect();
  }));
  Scope clients(world.world().control_scope(), "clients");
  clients.spawn("fetch", [&] {
    // A long poll at the end of the log: nothing arrives for 20 s.
    const StructValue response = call(*fetching, api::kFetch, 11, fetch_request("orders", 2, 20000));
    fetch_answered = true;
    fetch_answered_at = world.world().now();
    EXPECT_EQ(response.get_structs("responses")[0].get_structs("partitions")[0].get_int("error_code"), 0);
  });
  clients.spawn("join", [&] {
    // The first member of a new group waits out the initial rebalance delay (3 s).
    StructValue request = request_of(api::kJoinGroup);
    request.set("group_id", Value(std::string("g")));
    request.set("session_timeout_ms", Value(std::int64_t{10000}));
    request.set("rebalance_timeout_ms", Value(std::int64_t{10000}));
    request.set("member_id", Value(std::string()));
    request.set("protocol_type", Value(std::string("consumer")));
    StructValue& protocol = request.add("protocols");
    protocol.set("name", Value(std::string("range")));
    protocol.set("metadata", Value(Bytes()));
    join_error = static_cast<std::int16_t>(call(*joining, api::kJoinGroup, 3, request).get_int("error_code"));
  });
  clients.spawn("idle", [&] { idle_closed = closed_by_peer(*idle); });
  world.world().run_for(milliseconds(500));
  ASSERT_FALSE(fetch_answered);
  ASSERT_EQ(join_error, -1);
  EXPECT_TRUE(world.broker().ready());
  world.current().stop_requested.set();
  ASSERT_TRUE(world.world().run_until([&] { return world.current().stopped; }));
  Incarnation& stopped = world.current();
  EXPECT_TRUE(fetch_answered);
  EXPECT_LT(fetch_answered_at - stopped.stop_started, milliseconds(100));
  EXPECT_EQ(join_error, kNotCoordinator);
  EXPECT_TRUE(idle_closed);
  EXPECT_LT(stopped.stop_finished - stopped.stop_started, seconds(1));

  // The logs were closed cleanly: the next start reads no batch to recover them.
  world.restart();
  const auto samples = parse_exposition(render_prometheus(world.broker()));
  EXPECT_EQ(metric(samples, "sluice_partition_recovered_clean{topic=\"orders\",partition=\"0\"}"), 1);
  EXPECT_EQ(metric(samples, "sluice_partition_recovery_batches_scanned{topic=\"orders\",partition=\"0\"}"), 0);
  EXPECT_EQ(metric(samples, "sluice_partition_log_end_offset{topic=\"orders\",partition=\"0\"}"), 2);
}

TEST(BrokerDrainSimTest, a_request_that_never_completes_is_cut_off_at_the_drain_timeout) {
  LifecycleWorld world([](BrokerConfig& config) { config.drain_timeout = seconds(2); });
  std::unique_ptr<Stream> stuck;
  ASSERT_TRUE(sim::testing::run_in_fiber(world.world(), [&] {
    stuck = world.connect();
    // A frame announcing 100 bytes, of which 10 arrive: the broker is inside this request.
    Bytes partial(14, std::byte{0});
    partial[3] = std::byte{100};
    ASSERT_TRUE(stuck->write_all(partial, kTestDeadline).has_value());
  }));
  world.world().run_for(milliseconds(100));
  world.current().stop_requested.set();
  world.world().run_for(milliseconds(500));
  // Draining: not ready (the admin API's readiness answers 503), the stuck request still held.
  ASSERT_FALSE(world.current().stopped);
  EXPECT_TRUE(world.broker().draining());
  EXPECT_FALSE(world.broker().ready());
  ASSERT_TRUE(world.world().run_until([&] { return world.current().stopped; }));
  const Duration took = world.current().stop_finished - world.current().stop_started;
  EXPECT_GE(took, seconds(2));
  EXPECT_LT(took, seconds(3));
}

}  // namespace
}  // namespace sluice::kafka
