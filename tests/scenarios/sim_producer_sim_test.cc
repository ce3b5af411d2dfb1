// The simulated producer and admin (scenarios/clients) against the real broker in the simulator:
// acknowledged offsets are distinct, gapless and match a Fetch read-back; retries after network
// resets write no duplicate with idempotence on and lose nothing acknowledged with it off; a
// broker crash keeps every acknowledged record; a seed gives the same history twice.

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>

#include "checkers/kafka_history.h"
#include "scenarios/clients/sim_admin.h"
#include "scenarios/clients/sim_producer.h"
#include "tests/kafka/broker_sim_client.h"

namespace sluice::scenarios::clients {
namespace {

using checkers::OpType;
using checkers::RecordRef;
using checkers::TopicPartition;
using kafka::testing::BrokerWorld;
using kafka::testing::kPort;

const Address kBroker{"broker", kPort};
const std::string kTopic = "events";
constexpr std::int32_t kPartitions = 4;
constexpr std::int32_t kKeys = 24;

struct Workload {
  std::size_t records = 400;
  SimProducerConfig producer;
  Duration pace = milliseconds(1);  // between two produce() calls
};

// What one run leaves behind, shared by the client nodes and the test.
struct ProducerRun {
  checkers::History history;
  SimProducerStats stats;
  std::uint64_t records_completed = 0;  // updated as the producer goes
  bool produced = false;
  std::vector<RecordRef> final_records;
  bool read = false;
};

SimProducerConfig producer_config(bool idempotent) {
  SimProducerConfig config;
  config.process = "producer-1";
  config.bootstrap = {kBroker};
  config.acks = -1;
  config.idempotent = idempotent;
  config.batch_records_max = 8;
  config.linger = milliseconds(3);
  config.request_timeout = seconds(2);
  config.retry_backoff = milliseconds(20);
  config.delivery_timeout = seconds(600);
  return config;
}

SimAdminConfig admin_config() {
  SimAdminConfig config;
  config.bootstrap = {kBroker};
  config.request_timeout = seconds(2);
  config.retry_backoff = milliseconds(20);
  return config;
}

std::string value_of(std::size_t index) {
  return "value-" + std::to_string(index);
}
std::string key_of(std::size_t index) {
  return "key-" + std::to_string(index % kKeys);
}

// A producer node: creates the topic, produces the workload's keyed records, flushes.
void start_producer(BrokerWorld& broker, const Workload& workload, ProducerRun& run) {
  broker.world().add_node("producer-host", [&workload, &run](Env& env) {
    SimAdmin admin(env, admin_config(), run.history);
    auto created = admin.create_topic(kTopic, kPartitions, {}, env.deadline_after(seconds(60)));
    ASSERT_TRUE(created.has_value()) << created.error().message;
    SimProducer producer(env, workload.producer, run.history);
    for (std::size_t i = 0; i < workload.records; ++i) {
      ASSERT_TRUE(producer.produce(ProducerRecord{kTopic, std::nullopt, key_of(i), value_of(i)}));
      producer.poll(env.deadline_after(workload.pace));
      run.records_completed = producer.stats().records_ok + producer.stats().records_fail +
                              producer.stats().records_info;
    }
    EXPECT_TRUE(producer.flush(env.deadline_after(seconds(900))));
    run.stats = producer.stats();
    run.produced = true;
  });
}

// Heals the network, then a reader node takes the final read.
void final_read(BrokerWorld& broker, ProducerRun& run) {
  broker.world().network().set_faults(sim::SimNetworkFaults{});
  broker.world().add_node("reader-host", [&run](Env& env) {
    SimAdmin admin(env, admin_config(), run.history);
    auto records = admin.final_read({kTopic}, env.deadline_after(seconds(60)));
    ASSERT_TRUE(records.has_value()) << records.error().message;
    run.final_records = std::move(*records);
    run.read = true;
  });
  ASSERT_TRUE(broker.world().run_until([&] { return run.read; }));
}

void run_workload(BrokerWorld& broker, const Workload& workload, ProducerRun& run) {
  start_producer(broker, workload, run);
  ASSERT_TRUE(broker.world().run_until([&] { return run.produced; }));
  final_read(broker, run);
}

// Every acknowledged record, by value, with its partition and offset.
std::map<std::string, RecordRef> acknowledged(const checkers::History& history) {
  std::map<std::string, RecordRef> records;
  for (const checkers::Op& op : history.ops()) {
    if (op.f != "send" || op.type != OpType::ok) continue;
    for (const RecordRef& record : op.records) records[record.value] = record;
  }
  return records;
}

// Each acknowledged record is in the final read at its offset.
void expect_acknowledged_in_final_read(const ProducerRun& run) {
  std::map<std::pair<TopicPartition, std::int64_t>, const RecordRef*> final_at;
  for (const RecordRef& record : run.final_records) final_at[{record.tp, record.offset}] = &record;
  for (const auto& [value, record] : acknowledged(run.history)) {
    ASSERT_GE(record.offset, 0) << value;
    const auto found = final_at.find({record.tp, record.offset});
    ASSERT_NE(found, final_at.end()) << value << " at offset " << record.offset << " is lost";
    EXPECT_EQ(found->second->value, value);
    EXPECT_EQ(found->second->key, record.key);
  }
}

std::size_t duplicates_in_final_read(const ProducerRun& run) {
  std::set<std::string> seen;
  std::size_t duplicates = 0;
  for (const RecordRef& record : run.final_records) {
    if (!seen.insert(record.value).second) ++duplicates;
  }
  return duplicates;
}

checkers::KafkaCheckResult check(const ProducerRun& run, bool idempotent) {
  checkers::KafkaCheckOptions options;
  options.idempotent_producers = idempotent;
  options.require_final_groups_stable = false;
  return checkers::check_kafka_history(run.history, options);
}

std::string anomalies(const checkers::KafkaCheckResult& result) {
  std::string text = result.summary();
  for (const auto& anomaly : result.anomalies)
    text += "\n" + anomaly.type + ": " + anomaly.description;
  return text;
}

TEST(SimProducer, murmur2_partitioner_matches_kafka) {
  // Kafka's UtilsTest.testMurmur2 vectors.
  EXPECT_EQ(kafka_murmur2("21"), -973932308);
  EXPECT_EQ(kafka_murmur2("foobar"), -790332482);
  EXPECT_EQ(kafka_murmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(kafka_murmur2("a-little-bit-longer-string"), -1486304829);
  EXPECT_EQ(kafka_murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
  EXPECT_EQ(kafka_murmur2("abc"), 479470107);
  for (int i = 0; i < 100; ++i) {
    const std::int32_t partition = partition_for_key("key-" + std::to_string(i), 7);
    EXPECT_TRUE(partition >= 0 && partition < 7);
  }
}

TEST(SimProducer, idempotent_acks_all_offsets_are_distinct_gapless_and_read_back) {
  BrokerWorld broker;
  Workload workload;
  workload.producer = producer_config(true);
  ProducerRun run;
  run_workload(broker, workload, run);

  EXPECT_EQ(run.stats.records_ok, workload.records);
  EXPECT_EQ(run.stats.records_fail + run.stats.records_info, 0u);
  const auto records = acknowledged(run.history);
  ASSERT_EQ(records.size(), workload.records);
  std::map<TopicPartition, std::set<std::int64_t>> offsets;
  for (const auto& [value, record] : records) {
    EXPECT_EQ(record.tp.partition, partition_for_key(record.key, kPartitions)) << value;
    EXPECT_TRUE(offsets[record.tp].insert(record.offset).second) << "offset given twice";
  }
  EXPECT_EQ(offsets.size(), static_cast<std::size_t>(kPartitions));
  for (const auto& [tp, taken] : offsets) {
    EXPECT_EQ(*taken.begin(), 0);
    EXPECT_EQ(*taken.rbegin(), static_cast<std::int64_t>(taken.size()) - 1) << "a gap";
  }
  ASSERT_EQ(run.final_records.size(), workload.records);
  expect_acknowledged_in_final_read(run);
  const auto result = check(run, true);
  EXPECT_TRUE(result.ok()) << anomalies(result);
  EXPECT_TRUE(result.final_read);
}

ProducerRun run_with_resets(bool idempotent) {
  BrokerWorld broker;
  sim::SimNetworkFaults faults;
  faults.reset_probability_per_write = 0.05;
  broker.world().network().set_faults(faults);
  Workload workload;
  workload.records = 300;
  workload.producer = producer_config(idempotent);
  ProducerRun run;
  run_workload(broker, workload, run);
  return run;
}

TEST(SimProducer, retries_after_network_resets_write_no_duplicates_with_idempotence) {
  const ProducerRun run = run_with_resets(true);
  EXPECT_GT(run.stats.retries, 0u) << "the resets did not bite";
  EXPECT_EQ(run.stats.records_ok, 300u);
  EXPECT_EQ(duplicates_in_final_read(run), 0u);
  expect_acknowledged_in_final_read(run);
  const auto result = check(run, true);
  EXPECT_TRUE(result.ok()) << anomalies(result);
}

TEST(SimProducer, retries_after_network_resets_keep_every_acknowledged_record_without_idempotence) {
  const ProducerRun run = run_with_resets(false);
  EXPECT_GT(run.stats.retries, 0u) << "the resets did not bite";
  EXPECT_EQ(run.stats.records_ok, 300u);
  // Duplicates are allowed here (a retry of a write whose answer was lost), losses are not. The
  // same faults as the idempotent run above do write some twice, so that run's zero is earned.
  EXPECT_GT(duplicates_in_final_read(run), 0u);
  expect_acknowledged_in_final_read(run);
  std::set<std::string> final_values;
  for (const RecordRef& record : run.final_records) final_values.insert(record.value);
  for (std::size_t i = 0; i < 300; ++i) EXPECT_TRUE(final_values.contains(value_of(i)));
  const auto result = check(run, false);
  EXPECT_TRUE(result.ok()) << anomalies(result);
  EXPECT_EQ(result.duplicates, duplicates_in_final_read(run));
}

TEST(SimProducer, acknowledged_records_survive_a_broker_crash_and_restart) {
  BrokerWorld broker;
  Workload workload;
  workload.records = 600;
  workload.producer = producer_config(true);
  ProducerRun run;
  start_producer(broker, workload, run);
  ASSERT_TRUE(broker.world().run_until([&] { return run.records_completed >= 200; }));
  broker.crash_and_restart();
  ASSERT_TRUE(broker.world().run_until([&] { return run.produced; }));
  final_read(broker, run);

  EXPECT_GT(run.stats.retries, 0u) << "the crash interrupted nothing";
  EXPECT_EQ(run.stats.records_ok, workload.records);
  expect_acknowledged_in_final_read(run);
  EXPECT_EQ(duplicates_in_final_read(run), 0u);
  const auto result = check(run, true);
  EXPECT_TRUE(result.ok()) << anomalies(result);
}

// Faults of several kinds and strengths, with delivery timeouts short enough that some batches
// are given up (fail or info) and the idempotent producer starts over under a new producer id:
// whatever happens, the history passes the checkers and nothing is written twice.
TEST(SimProducer, idempotent_producer_history_is_valid_under_mixed_faults) {
  struct Variant {
    double reset_probability;
    std::uint64_t crash_after_records;  // 0: no crash
    Duration partition_for;             // 0: no partition
    Duration delivery_timeout;
  };
  const std::vector<Variant> variants = {
      {0.02, 0, Duration{}, seconds(600)},       {0.2, 0, Duration{}, seconds(600)},
      {0.1, 150, Duration{}, seconds(600)},      {0.0, 0, seconds(5), seconds(600)},
      {0.0, 0, seconds(5), seconds(3)},          {0.3, 0, Duration{}, milliseconds(500)},
      {0.1, 100, seconds(3), milliseconds(800)},
  };
  std::uint64_t bumps = 0, batches_failed = 0, batches_unknown = 0;
  for (std::size_t index = 0; index < variants.size(); ++index) {
    SCOPED_TRACE("variant " + std::to_string(index));
    const Variant& variant = variants[index];
    BrokerWorld broker;
    sim::SimNetworkFaults faults;
    faults.reset_probability_per_write = variant.reset_probability;
    broker.world().network().set_faults(faults);
    Workload workload;
    workload.records = 400;
    workload.producer = producer_config(true);
    workload.producer.delivery_timeout = variant.delivery_timeout;
    ProducerRun run;
    start_producer(broker, workload, run);
    if (variant.partition_for.count() > 0) {
      ASSERT_TRUE(broker.world().run_until([&] { return run.records_completed >= 50; }));
      broker.world().network().partition("producer-host", "broker");
      broker.world().run_for(variant.partition_for);
      broker.world().network().heal_all();
    }
    if (variant.crash_after_records > 0) {
      ASSERT_TRUE(broker.world().run_until(
          [&] { return run.records_completed >= variant.crash_after_records; }));
      broker.crash_and_restart();
    }
    ASSERT_TRUE(broker.world().run_until([&] { return run.produced; }));
    final_read(broker, run);
    EXPECT_EQ(run.stats.records_ok + run.stats.records_info + run.stats.records_fail,
              workload.records);
    EXPECT_EQ(duplicates_in_final_read(run), 0u);
    expect_acknowledged_in_final_read(run);
    const auto result = check(run, true);
    EXPECT_TRUE(result.ok()) << anomalies(result);
    bumps += run.stats.epoch_bumps;
    batches_failed += run.stats.batches_fail;
    batches_unknown += run.stats.batches_info;
  }
  // The variants reach the rare paths: give-ups of both kinds, and new producer ids.
  EXPECT_GT(bumps, 0u);
  EXPECT_GT(batches_failed, 0u);
  EXPECT_GT(batches_unknown, 0u);
}

TEST(SimProducer, acks_zero_sends_complete_unknown_and_arrive) {
  BrokerWorld broker;
  Workload workload;
  workload.records = 100;
  workload.producer = producer_config(false);
  workload.producer.acks = 0;
  ProducerRun run;
  run_workload(broker, workload, run);
  EXPECT_EQ(run.stats.records_info, workload.records);  // nothing is acknowledged
  EXPECT_EQ(run.final_records.size(), workload.records);
  const auto result = check(run, false);
  EXPECT_TRUE(result.ok()) << anomalies(result);
}

TEST(SimProducer, same_seed_gives_the_same_history) {
  auto history_bytes = [] {
    const ProducerRun run = run_with_resets(true);
    std::ostringstream out;
    run.history.write_json_lines(out);
    return out.str();
  };
  const std::string first = history_bytes();
  const std::string second = history_bytes();
  EXPECT_FALSE(first.empty());
  EXPECT_EQ(first, second);
}

TEST(SimAdmin, lists_offsets_describes_groups_and_creates_topics_once) {
  BrokerWorld broker;
  Workload workload;
  workload.records = 80;
  workload.producer = producer_config(true);
  ProducerRun run;
  run_workload(broker, workload, run);
  bool done = false;
  broker.world().add_node("admin-host", [&](Env& env) {
    SimAdmin admin(env, admin_config(), run.history);
    const Instant deadline = env.deadline_after(seconds(30));
    EXPECT_TRUE(admin.create_topic(kTopic, kPartitions, {}, deadline).has_value());
    auto count = admin.partition_count(kTopic, deadline);
    ASSERT_TRUE(count.has_value());
    EXPECT_EQ(*count, kPartitions);
    std::vector<TopicPartition> partitions;
    for (std::int32_t p = 0; p < kPartitions; ++p) partitions.push_back({kTopic, p});
    auto latest = admin.list_offsets(partitions, kLatestTimestamp, deadline);
    ASSERT_TRUE(latest.has_value()) << latest.error().message;
    auto earliest = admin.list_offsets(partitions, kEarliestTimestamp, deadline);
    ASSERT_TRUE(earliest.has_value()) << earliest.error().message;
    std::int64_t total = 0;
    for (const TopicPartition& tp : partitions) {
      EXPECT_EQ(earliest->at(tp), 0);
      total += latest->at(tp);
    }
    EXPECT_EQ(total, static_cast<std::int64_t>(workload.records));
    auto group = admin.describe_group("nobody-joined", deadline);
    ASSERT_TRUE(group.has_value()) << group.error().message;
    EXPECT_EQ(group->state, "Dead");
    done = true;
  });
  ASSERT_TRUE(broker.world().run_until([&] { return done; }));
  const checkers::Op& last = run.history.ops().back();
  EXPECT_EQ(last.f, "group-state");
  EXPECT_EQ(last.group, "nobody-joined");
  EXPECT_EQ(last.group_state, "Dead");
}

}  // namespace
}  // namespace sluice::scenarios::clients
