// The simulated group consumer against the real broker in a SimWorld: three consumers share six
// partitions and consume every record (each assignor); a crashed member's partitions move after
// its session timeout and resume from the committed offsets (each commit mode); connection
// resets, latency spikes and a partition past the session timeout are ridden out; rebalance
// storms of crashes, stalls and restarts lose nothing; cooperative-sticky joins and leaves
// revoke only the partitions that move; a static member restarting within its session timeout
// gets its partitions back without a rebalance; a member paused past its session timeout loses
// its partitions and rejoins; a topic created later is picked up; the same seed gives the same
// history. Every history ends with a final read and passes the Kafka checkers (no lost write,
// one owner per partition per generation, no committed-offset regression, ...).
#include "scenarios/clients/sim_consumer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "checkers/kafka_history.h"
#include "core/client/kafka_connection.h"
#include "core/storage/record_batch.h"
#include "tests/kafka/broker_sim_client.h"

namespace sluice::scenarios::clients {
namespace {

using checkers::History;
using checkers::Op;
using checkers::OpType;
using protocol::StructValue;
using protocol::Value;

const std::string kTopic = "events";
constexpr std::int32_t kPartitions = 6;
const std::string kGroup = "workers";
const Address kBroker{"broker", kafka::testing::kPort};
constexpr Duration kSessionTimeout = seconds(6);

// A broker node, a "clients" node whose Env the simulated clients use, and their history.
class ConsumerWorld {
 public:
  ConsumerWorld()
      : broker_([](kafka::BrokerConfig& config) {
          config.group.initial_rebalance_delay_ms = 500;
          config.fetch_wait_max = milliseconds(200);
        }) {
    clients_ = world().add_node("clients", [](Env&) {
      Event never;
      never.wait();
    });
  }

  sim::SimWorld& world() { return broker_.world(); }
  Env& env() { return world().env(clients_); }
  History& history() { return history_; }
  bool run(std::function<void()> body) { return broker_.run(std::move(body)); }

  static SimConsumerConfig consumer_config(std::string process, AssignmentStrategy assignor) {
    return SimConsumerConfig{.process = std::move(process),
                             .bootstrap = kBroker,
                             .group_id = kGroup,
                             .topics = {kTopic},
                             .assignor = assignor,
                             .session_timeout = kSessionTimeout,
                             .rebalance_timeout = seconds(10),
                             .heartbeat_interval = seconds(1),
                             .fetch_wait_max = milliseconds(200)};
  }

  // Adds and starts `count` consumers "consumer-1".. with `assignor`, each config first adjusted
  // by `adjust(config, index)` when given.
  std::vector<SimConsumer*> start_consumers(
      int count, AssignmentStrategy assignor,
      const std::function<void(SimConsumerConfig&, int)>& adjust = {}) {
    std::vector<SimConsumer*> started;
    for (int i = 1; i <= count; ++i) {
      SimConsumerConfig config = consumer_config("consumer-" + std::to_string(i), assignor);
      if (adjust) adjust(config, i);
      started.push_back(&add_consumer(std::move(config)));
      started.back()->start();
    }
    return started;
  }

  SimConsumer& add_consumer(SimConsumerConfig config) {
    consumers_.push_back(
        std::make_unique<SimConsumer>(env(), world().control_scope(), history_, std::move(config)));
    return *consumers_.back();
  }

  // ---- In the test's fiber.

  void create_topic() {
    StructValue request = client::KafkaConnection::new_request(protocol::kCreateTopicsSchema);
    request.add("topics")
        .set("name", Value(kTopic))
        .set("num_partitions", protocol::int_value(kPartitions))
        .set("replication_factor", protocol::int_value(-1));
    auto response = connection().call(protocol::kCreateTopicsSchema, request);
    ASSERT_TRUE(response.has_value()) << response.error().message;
    ASSERT_EQ(response->get_structs("topics").at(0).get_int("error_code"), 0);
  }

  // `count` records to every partition, each send recorded in the history (acks=all).
  void produce(int count) {
    for (std::int32_t partition = 0; partition < kPartitions; ++partition) {
      produce_to(partition, count);
    }
  }

  void produce_to(std::int32_t partition, int count) {
    Op invoke;
    invoke.process = "producer";
    invoke.f = "send";
    invoke.time_ns = now_ns();
    storage::BatchSpec batch;
    for (int i = 0; i < count; ++i) {
      const std::string value = "v" + std::to_string(partition) + "-" + std::to_string(sent_++);
      const std::string key = "k" + std::to_string(partition);
      storage::RecordSpec record;
      record.key = key;
      record.value = value;
      batch.records.push_back(std::move(record));
      invoke.records.push_back({.tp = {kTopic, partition}, .key = key, .value = value});
    }
    StructValue request = client::KafkaConnection::new_request(protocol::kProduceSchema);
    request.set("transactional_id", Value(protocol::Null{}))
        .set("acks", protocol::int_value(-1))
        .set("timeout_ms", protocol::int_value(10'000));
    request.add("topic_data")
        .set("name", Value(kTopic))
        .add("partition_data")
        .set("index", protocol::int_value(partition))
        .set("records", Value(storage::build_batch(batch)));
    Op ok = invoke;
    history_.add(std::move(invoke));
    auto response = connection().call(protocol::kProduceSchema, request);
    ASSERT_TRUE(response.has_value()) << response.error().message;
    const StructValue& result =
        response->get_structs("responses").at(0).get_structs("partition_responses").at(0);
    ASSERT_EQ(result.get_int("error_code"), 0);
    ok.type = OpType::ok;
    ok.time_ns = now_ns();
    for (std::size_t i = 0; i < ok.records.size(); ++i) {
      ok.records[i].offset = result.get_int("base_offset") + static_cast<std::int64_t>(i);
      produced_.insert(ok.records[i].value);
    }
    history_.add(std::move(ok));
  }

  // Waits in simulated time (50 ms steps) until `done`, at most `timeout`.
  bool wait_until(const std::function<bool()>& done, Duration timeout = seconds(60)) {
    const Instant deadline = env().deadline_after(timeout);
    while (!done()) {
      if (env().now() >= deadline) return false;
      this_fiber::sleep_for(milliseconds(50));
    }
    return true;
  }

  // Values polled by the group's consumers (not the final reader).
  std::set<std::string> values_polled() const {
    std::set<std::string> values;
    for (const Op& op : history_.ops()) {
      if (op.f != "poll" || op.type != OpType::ok || op.group != kGroup) continue;
      for (const auto& record : op.records) values.insert(record.value);
    }
    return values;
  }
  bool group_polled_everything() const { return values_polled() == produced_; }

  // Every consumer given is in one generation, and together they own every partition.
  static bool settled(const std::vector<SimConsumer*>& consumers) {
    std::set<TopicPartition> owned;
    std::size_t count = 0;
    const std::int32_t generation = consumers.front()->generation();
    for (const SimConsumer* consumer : consumers) {
      if (consumer->generation() != generation || generation < 0) return false;
      const auto partitions = consumer->assigned_partitions();
      owned.insert(partitions.begin(), partitions.end());
      count += partitions.size();
    }
    return owned.size() == static_cast<std::size_t>(kPartitions) && count == owned.size();
  }

  // The final read: a consumer of its own group reads every partition from the log start.
  void final_read() {
    auto config =
        consumer_config(std::string(checkers::kFinalReaderProcess), AssignmentStrategy::range);
    config.group_id = "final-reader-group";
    SimConsumer& reader = add_consumer(std::move(config));
    reader.start();
    ASSERT_TRUE(wait_until([&] { return reader.records_polled() >= produced_.size(); }));
    reader.close(env().deadline_after(seconds(10)));
  }

  void expect_history_valid() {
    // SIM_CONSUMER_TEST_DUMP=1 prints each history (JSON lines) to read a failure.
    if (std::getenv("SIM_CONSUMER_TEST_DUMP")) history_.write_json_lines(std::cerr);
    const auto result =
        checkers::check_kafka_history(history_, {.require_final_groups_stable = false});
    EXPECT_TRUE(result.final_read);
    for (const auto& anomaly : result.anomalies) {
      ADD_FAILURE() << anomaly.type << ": " << anomaly.description;
    }
  }

  std::size_t produced_count() const { return produced_.size(); }

 private:
  client::KafkaConnection& connection() {
    if (!producer_ || producer_->broken()) {
      auto connected = client::KafkaConnection::connect(env(), kBroker, {});
      EXPECT_TRUE(connected.has_value());
      producer_ = std::move(*connected);
    }
    return *producer_;
  }
  std::int64_t now_ns() { return env().now().time_since_epoch().count(); }

  kafka::testing::BrokerWorld broker_;
  sim::NodeId clients_{};
  History history_;
  std::unique_ptr<client::KafkaConnection> producer_;
  std::set<std::string> produced_;
  int sent_ = 0;
  std::vector<std::unique_ptr<SimConsumer>> consumers_;
};

std::vector<const Op*> ops_of(const History& history, std::string_view f,
                              std::string_view process = {}) {
  std::vector<const Op*> ops;
  for (const Op& op : history.ops()) {
    if (op.f == f && (process.empty() || op.process == process)) ops.push_back(&op);
  }
  return ops;
}

// ---- Three consumers, six partitions, each assignor.

class EveryAssignor : public ::testing::TestWithParam<AssignmentStrategy> {};

TEST_P(EveryAssignor, three_consumers_share_six_partitions_and_consume_every_record) {
  ConsumerWorld world;
  ASSERT_TRUE(world.run([&] {
    world.create_topic();
    world.produce(20);
    const std::vector<SimConsumer*> consumers = world.start_consumers(3, GetParam());
    ASSERT_TRUE(world.wait_until([&] { return ConsumerWorld::settled(consumers); }));
    for (const SimConsumer* consumer : consumers) {
      EXPECT_EQ(consumer->assigned_partitions().size(), 2u) << consumer->config().process;
    }
    world.produce(20);
    ASSERT_TRUE(world.wait_until([&] { return world.group_polled_everything(); }));
    for (SimConsumer* consumer : consumers) {
      EXPECT_FALSE(consumer->fatal_error().has_value()) << *consumer->fatal_error();
      consumer->close(world.env().deadline_after(seconds(10)));
    }
    world.final_read();
  }));
  EXPECT_FALSE(ops_of(world.history(), "commit").empty());
  world.expect_history_valid();
}

INSTANTIATE_TEST_SUITE_P(SimConsumer, EveryAssignor,
                         ::testing::Values(AssignmentStrategy::range,
                                           AssignmentStrategy::roundrobin,
                                           AssignmentStrategy::cooperative_sticky),
                         [](const auto& info) {
                           std::string name(protocol_name(info.param));
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// ---- Crash: the partitions move after the session timeout, from the committed offsets.

class EveryCommitMode : public ::testing::TestWithParam<CommitMode> {};

TEST_P(EveryCommitMode,
       crashed_member_partitions_move_after_session_timeout_from_committed_offsets) {
  ConsumerWorld world;
  ASSERT_TRUE(world.run([&] {
    world.create_topic();
    world.produce(10);
    const CommitMode commit_mode = GetParam();
    const std::vector<SimConsumer*> consumers = world.start_consumers(
        3, AssignmentStrategy::range, [commit_mode](SimConsumerConfig& config, int) {
          config.commit_mode = commit_mode;
          config.commit_interval = seconds(2);
        });
    ASSERT_TRUE(world.wait_until(
        [&] { return ConsumerWorld::settled(consumers) && world.group_polled_everything(); }));
    // Periodic commits: some polled records are not committed when the member crashes.
    world.wait_until([] { return false; }, seconds(3));
    world.produce(3);
    world.wait_until([&] { return world.group_polled_everything(); });
    const std::int32_t generation = consumers[0]->generation();
    const TopicPartitions moving = consumers[0]->assigned_partitions();
    const Instant crashed_at = world.env().now();
    consumers[0]->crash();
    world.produce(10);
    const std::vector<SimConsumer*> survivors{consumers[1], consumers[2]};
    ASSERT_TRUE(world.wait_until([&] { return ConsumerWorld::settled(survivors); }));
    // No LeaveGroup: only the session timeout tells the coordinator.
    EXPECT_GE(world.env().now() - crashed_at, kSessionTimeout - seconds(1));
    EXPECT_GT(survivors[0]->generation(), generation);
    EXPECT_EQ(survivors[0]->assigned_partitions().size(), 3u);
    ASSERT_TRUE(world.wait_until([&] { return world.group_polled_everything(); }));
    // The new owners start where the crashed member's commits left off: at its last
    // acknowledged commit, or at one still in flight when it crashed (stored or not).
    std::map<checkers::TopicPartition, std::int64_t> acknowledged, invoked;
    for (const Op* op : ops_of(world.history(), "commit", "consumer-1")) {
      auto& last = op->type == OpType::ok ? acknowledged : invoked;
      for (const auto& offset : op->offsets) last[offset.tp] = offset.offset;
    }
    for (const auto& partition : moving) {
      const checkers::TopicPartition tp{partition.topic, partition.partition};
      std::optional<std::int64_t> first_after_crash;
      for (const Op* op : ops_of(world.history(), "poll")) {
        if (op->process == "consumer-1" || op->time_ns < crashed_at.time_since_epoch().count())
          continue;
        for (const auto& record : op->records) {
          if (record.tp == tp && !first_after_crash) first_after_crash = record.offset;
        }
      }
      ASSERT_TRUE(acknowledged.contains(tp) && first_after_crash.has_value());
      EXPECT_GE(*first_after_crash, acknowledged[tp]) << tp.topic << "-" << tp.partition;
      EXPECT_LE(*first_after_crash, std::max(acknowledged[tp], invoked[tp]))
          << tp.topic << "-" << tp.partition;
    }
    for (SimConsumer* consumer : survivors)
      consumer->close(world.env().deadline_after(seconds(10)));
    world.final_read();
  }));
  world.expect_history_valid();
}

INSTANTIATE_TEST_SUITE_P(SimConsumer, EveryCommitMode,
                         ::testing::Values(CommitMode::after_each_poll, CommitMode::periodic),
                         [](const auto& info) {
                           return info.param == CommitMode::periodic ? "periodic"
                                                                     : "after_each_poll";
                         });

// ---- Network faults: resets, latency spikes, a partition past the session timeout.

TEST_P(EveryAssignor, consumers_ride_out_connection_resets_and_a_partition_from_the_broker) {
  ConsumerWorld world;
  ASSERT_TRUE(world.run([&] {
    world.create_topic();
    // A backlog of many small batches, consumed in small fetches while the faults are on.
    for (int batch = 0; batch < 30; ++batch) world.produce(4);
    std::vector<SimConsumer*> consumers;
    for (int i = 1; i <= 3; ++i) {
      auto config = ConsumerWorld::consumer_config("consumer-" + std::to_string(i), GetParam());
      config.partition_fetch_bytes_max = 256;
      consumers.push_back(&world.add_consumer(std::move(config)));
    }
    sim::SimNetworkFaults faults = world.world().network().faults();
    const sim::SimNetworkFaults calm = faults;
    faults.reset_probability_per_write = 0.03;
    faults.latency_spike_probability = 0.05;
    faults.latency_spike_mean = milliseconds(300);
    world.world().network().set_faults(faults);
    for (SimConsumer* consumer : consumers) consumer->start();
    world.wait_until([] { return false; }, seconds(15));
    world.world().network().set_faults(calm);
    ASSERT_TRUE(world.wait_until([&] { return ConsumerWorld::settled(consumers); }));
    world.produce(10);
    // Cut off past the session timeout: every member is evicted, then all rejoin.
    world.world().network().partition("clients", "broker");
    world.wait_until([] { return false; }, kSessionTimeout * 2);
    world.world().network().heal_all();
    world.produce(10);
    ASSERT_TRUE(world.wait_until(
        [&] { return ConsumerWorld::settled(consumers) && world.group_polled_everything(); }));
    for (SimConsumer* consumer : consumers) {
      EXPECT_FALSE(consumer->fatal_error().has_value()) << *consumer->fatal_error();
      consumer->close(world.env().deadline_after(seconds(10)));
    }
    world.final_read();
  }));
  world.expect_history_valid();
}

// ---- A rebalance storm: members crash, stall, leave and come back; nothing is lost.

// (assignor, seed of the storm's choices). Storm 47 closes the static member of a cooperative
// group between its revoking a partition and its rejoining; its next instance replaces it
// without a rebalance, and only the audit (sim_consumer.cc) hands the partition over.
class Storm : public ::testing::TestWithParam<std::tuple<AssignmentStrategy, std::uint64_t>> {};

TEST_P(Storm, rebalance_storm_of_crashes_pauses_and_restarts_loses_nothing) {
  const auto [assignor, storm_seed] = GetParam();
  ConsumerWorld world;
  ASSERT_TRUE(world.run([&] {
    world.create_topic();
    const std::vector<SimConsumer*> consumers =
        world.start_consumers(4, assignor, [](SimConsumerConfig& config, int index) {
          if (index == 4) config.group_instance_id = "static-4";
        });
    Random random(storm_seed);
    auto sleep_up_to = [&](std::int64_t ms) {
      this_fiber::sleep_for(milliseconds(random.range(0, ms)));
    };
    for (int round = 0; round < 16; ++round) {
      world.produce(2);
      SimConsumer& victim = *consumers[random.uniform(consumers.size())];
      switch (random.uniform(4)) {
        case 0:
          victim.crash();
          sleep_up_to(8'000);
          victim.restart();
          break;
        case 1:
          victim.pause();  // sometimes past its session timeout
          sleep_up_to(10'000);
          victim.resume();
          break;
        case 2:
          victim.close(world.env().deadline_after(seconds(5)));
          sleep_up_to(3'000);
          victim.start();
          break;
        default:
          sleep_up_to(3'000);
      }
    }
    // The quiet period: the group settles and catches up.
    ASSERT_TRUE(world.wait_until(
        [&] { return ConsumerWorld::settled(consumers) && world.group_polled_everything(); },
        seconds(120)));
    for (SimConsumer* consumer : consumers) {
      EXPECT_FALSE(consumer->fatal_error().has_value()) << *consumer->fatal_error();
      consumer->close(world.env().deadline_after(seconds(10)));
    }
    world.final_read();
  }));
  world.expect_history_valid();
}

INSTANTIATE_TEST_SUITE_P(
    SimConsumer, Storm,
    ::testing::Combine(::testing::Values(AssignmentStrategy::range, AssignmentStrategy::roundrobin,
                                         AssignmentStrategy::cooperative_sticky),
                       ::testing::Values(std::uint64_t{1}, std::uint64_t{47})),
    [](const auto& info) {
      std::string name(protocol_name(std::get<0>(info.param)));
      std::replace(name.begin(), name.end(), '-', '_');
      return name + "_storm_" + std::to_string(std::get<1>(info.param));
    });

// ---- Cooperative-sticky: joins and leaves one by one move only what must move.

// Checks that every partition a member of kGroup revokes, except in the second after one of
// `closes`, is next assigned to another member; returns how many were revoked so.
std::size_t expect_revoked_partitions_move(const History& history,
                                           const std::vector<Instant>& closes) {
  const auto& ops = history.ops();
  std::size_t revoked = 0;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    if (op.f != "revoke" || op.group != kGroup) continue;
    const bool at_close = std::ranges::any_of(closes, [&](Instant at) {
      return op.time_ns >= at.time_since_epoch().count() &&
             op.time_ns <= (at + seconds(1)).time_since_epoch().count();
    });
    if (at_close) continue;
    for (const auto& partition : op.partitions) {
      ++revoked;
      for (std::size_t j = i + 1; j < ops.size(); ++j) {
        if (ops[j].f != "assign" || ops[j].group != kGroup) continue;
        const auto& assigned = ops[j].partitions;
        if (std::ranges::find(assigned, partition) == assigned.end()) continue;
        EXPECT_NE(ops[j].process, op.process)
            << op.process << " revoked " << partition.topic << "-" << partition.partition
            << " in generation " << op.generation << " but got it back";
        break;
      }
    }
  }
  return revoked;
}

TEST(SimConsumer, cooperative_sticky_join_and_leave_revoke_only_partitions_that_move) {
  ConsumerWorld world;
  std::vector<Instant> closes;
  ASSERT_TRUE(world.run([&] {
    world.create_topic();
    world.produce(5);
    std::vector<SimConsumer*> consumers;
    auto expect_balanced = [&](std::size_t members) {
      const std::vector<SimConsumer*> live(consumers.begin(), consumers.begin() + members);
      ASSERT_TRUE(world.wait_until([&] { return ConsumerWorld::settled(live); }));
      // Settled after the second, cooperative, rebalance: nobody waits on a revocation.
      world.wait_until([] { return false; }, seconds(3));
      ASSERT_TRUE(ConsumerWorld::settled(live));
      for (const SimConsumer* consumer : live) {
        EXPECT_EQ(consumer->assigned_partitions().size(),
                  static_cast<std::size_t>(kPartitions) / members);
      }
    };
    for (int i = 1; i <= 3; ++i) {
      consumers.push_back(&world.add_consumer(ConsumerWorld::consumer_config(
          "consumer-" + std::to_string(i), AssignmentStrategy::cooperative_sticky)));
      consumers.back()->start();
      expect_balanced(consumers.size());
      world.produce(5);
    }
    for (std::size_t members = 3; members >= 2; --members) {
      closes.push_back(world.env().now());
      consumers[members - 1]->close(world.env().deadline_after(seconds(10)));
      expect_balanced(members - 1);
      world.produce(5);
    }
    ASSERT_TRUE(world.wait_until([&] { return world.group_polled_everything(); }));
    closes.push_back(world.env().now());
    consumers[0]->close(world.env().deadline_after(seconds(10)));
    world.final_read();
  }));
  // Outside the closes, a revoked partition goes to another member next: nothing that stays is
  // revoked. And the eager pattern (revoke everything at each rebalance) never shows.
  const std::size_t revoked = expect_revoked_partitions_move(world.history(), closes);
  // Joins: 3 partitions move to the second member, then one from each to the third.
  EXPECT_EQ(revoked, 5u);
  world.expect_history_valid();
}

// ---- Static membership: a restart within the session timeout is no rebalance.

TEST(SimConsumer, static_member_restarting_within_session_timeout_keeps_generation_and_partitions) {
  ConsumerWorld world;
  ASSERT_TRUE(world.run([&] {
    world.create_topic();
    world.produce(10);
    const std::vector<SimConsumer*> consumers = world.start_consumers(
        3, AssignmentStrategy::range, [](SimConsumerConfig& config, int index) {
          config.group_instance_id = "instance-" + std::to_string(index);
        });
    ASSERT_TRUE(world.wait_until(
        [&] { return ConsumerWorld::settled(consumers) && world.group_polled_everything(); }));
    const std::int32_t generation = consumers[0]->generation();
    const TopicPartitions partitions = consumers[1]->assigned_partitions();
    const std::string member_id = consumers[1]->member_id();
    const std::uint64_t joined_by_others =
        consumers[0]->generations_joined() + consumers[2]->generations_joined();
    consumers[1]->crash();
    world.wait_until([] { return false; }, seconds(2));
    consumers[1]->restart();
    ASSERT_TRUE(world.wait_until([&] { return consumers[1]->generation() >= 0; }));
    EXPECT_EQ(consumers[1]->generation(), generation);
    EXPECT_EQ(consumers[1]->assigned_partitions(), partitions);
    EXPECT_NE(consumers[1]->member_id(), member_id);
    world.produce(10);
    ASSERT_TRUE(world.wait_until([&] { return world.group_polled_everything(); }));
    // Past the old session timeout too, the group never rebalanced.
    world.wait_until([] { return false; }, kSessionTimeout);
    for (const SimConsumer* consumer : consumers) EXPECT_EQ(consumer->generation(), generation);
    EXPECT_EQ(consumers[0]->generations_joined() + consumers[2]->generations_joined(),
              joined_by_others);
    for (SimConsumer* consumer : consumers)
      consumer->close(world.env().deadline_after(seconds(10)));
    world.final_read();
  }));
  world.expect_history_valid();
}

// ---- A member paused past its session timeout is fenced out and rejoins.

TEST(SimConsumer, member_paused_past_session_timeout_loses_partitions_and_rejoins) {
  ConsumerWorld world;
  ASSERT_TRUE(world.run([&] {
    world.create_topic();
    world.produce(10);
    const std::vector<SimConsumer*> consumers =
        world.start_consumers(3, AssignmentStrategy::roundrobin);
    ASSERT_TRUE(world.wait_until([&] { return ConsumerWorld::settled(consumers); }));
    const std::int32_t generation = consumers[0]->generation();
    consumers[2]->pause();
    world.wait_until([] { return false; }, kSessionTimeout * 2);
    world.produce(10);
    consumers[2]->resume();
    ASSERT_TRUE(world.wait_until([&] {
      return ConsumerWorld::settled(consumers) && consumers[2]->generation() > generation + 1 &&
             world.group_polled_everything();
    }));
    EXPECT_FALSE(consumers[2]->fatal_error().has_value());
    for (SimConsumer* consumer : consumers)
      consumer->close(world.env().deadline_after(seconds(10)));
    world.final_read();
  }));
  // The paused member lost its partitions (a revoke without a commit of its own first).
  EXPECT_GE(ops_of(world.history(), "revoke", "consumer-3").size(), 2u);
  world.expect_history_valid();
}

// ---- A topic created after its consumers joined.

TEST(SimConsumer, leader_reassigns_when_the_subscribed_topic_appears) {
  ConsumerWorld world;
  ASSERT_TRUE(world.run([&] {
    const std::vector<SimConsumer*> consumers =
        world.start_consumers(2, AssignmentStrategy::roundrobin);
    ASSERT_TRUE(world.wait_until(
        [&] { return consumers[0]->generation() >= 0 && consumers[1]->generation() >= 0; }));
    EXPECT_TRUE(consumers[0]->assigned_partitions().empty());
    EXPECT_TRUE(consumers[1]->assigned_partitions().empty());
    world.create_topic();
    world.produce(5);
    ASSERT_TRUE(world.wait_until(
        [&] { return ConsumerWorld::settled(consumers) && world.group_polled_everything(); }));
    for (SimConsumer* consumer : consumers) {
      EXPECT_EQ(consumer->assigned_partitions().size(), 3u);
      consumer->close(world.env().deadline_after(seconds(10)));
    }
    world.final_read();
  }));
  world.expect_history_valid();
}

// ---- Determinism.

std::string run_crash_scenario() {
  ConsumerWorld world;
  EXPECT_TRUE(world.run([&] {
    world.create_topic();
    world.produce(5);
    const std::vector<SimConsumer*> consumers =
        world.start_consumers(3, AssignmentStrategy::cooperative_sticky);
    world.wait_until([&] { return world.group_polled_everything(); });
    consumers[1]->crash();
    world.produce(5);
    world.wait_until([&] { return world.group_polled_everything(); });
    consumers[1]->restart();
    world.wait_until([] { return false; }, seconds(10));
  }));
  std::ostringstream out;
  world.history().write_json_lines(out);
  out << "trace=" << world.world().trace_hash();
  return out.str();
}

TEST(SimConsumer, same_seed_gives_the_same_history) {
  const std::string first = run_crash_scenario();
  const std::string second = run_crash_scenario();
  EXPECT_GT(first.size(), 1000u);
  EXPECT_EQ(first, second);
}

}  // namespace
}  // namespace sluice::scenarios::clients
