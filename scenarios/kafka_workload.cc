// The Kafka workload: broker node, producer nodes, fault period, quiet period, final read, checks.

#include "scenarios/kafka_workload.h"

#include <fstream>
#include <memory>
#include <vector>

#include "checkers/kafka_history.h"
#include "scenarios/clients/sim_admin.h"
#include "scenarios/clients/sim_consumer.h"
#include "scenarios/clients/sim_producer.h"
#include "sim/world.h"

namespace sluice::scenarios {

namespace {

constexpr std::uint16_t kBrokerPort = 9092;
constexpr std::string_view kTopic = "events";
constexpr Duration kFlushTimeout = seconds(90);
constexpr Duration kFinalReadTimeout = seconds(60);
constexpr Duration kConsumerCatchUp = seconds(30);  // quiet time for consumers and groups to settle
constexpr std::string_view kGroup = "workers";

const Address kBroker{"broker", kBrokerPort};

void broker_main(Env& env, const KafkaWorkloadSpec& spec) {
  kafka::BrokerConfig config;
  config.data_dir = "/data";
  config.advertised = kBroker;
  config.group.initial_rebalance_delay_ms = 0;
  config.offsets_topic_partitions = 4;
  config.retention_check_interval = seconds(5);
  if (spec.configure_broker != nullptr) spec.configure_broker(config);
  kafka::Broker broker(env, config);
  if (auto opened = broker.open(); !opened) {
    env.log().error("broker open failed: {}", storage::to_string(opened.error()));
    return;  // nothing listens: the clients' retries and the final read see it (liveness)
  }
  if (auto served = broker.serve(Address{"0.0.0.0", kBrokerPort}); !served) {
    env.log().error("broker serve failed: {}", to_string(served.error()));
    return;
  }
  Event never;
  never.wait();
}

clients::SimAdminConfig admin_config(std::string process) {
  clients::SimAdminConfig config;
  config.process = std::move(process);
  config.bootstrap = {kBroker};
  config.request_timeout = seconds(2);
  return config;
}

// One producer node: creates the topic (once per run is enough; all try), then produces keyed
// records with unique values until the fault period ends, then flushes.
void producer_main(Env& env, const KafkaWorkloadSpec& spec, int index, Instant stop_at,
                   checkers::History& history, bool& done) {
  const std::string process = "producer-" + std::to_string(index);
  clients::SimAdmin admin(env, admin_config(process), history);
  if (!admin.create_topic(std::string(kTopic), spec.partitions, spec.topic_configs, stop_at)) {
    done = true;
    return;
  }
  clients::SimProducerConfig config;
  config.process = process;
  config.bootstrap = {kBroker};
  config.acks = spec.acks;
  config.idempotent = spec.idempotent;
  config.request_timeout = seconds(5);
  config.delivery_timeout = seconds(60);
  config.max_block = seconds(5);
  clients::SimProducer producer(env, config, history);
  std::uint64_t sequence = 0;
  while (env.now() < stop_at) {
    sequence++;
    const std::string key = "k" + std::to_string(sequence % static_cast<std::uint64_t>(spec.keys));
    const std::string value = process + "-" + std::to_string(sequence);
    producer.produce(clients::ProducerRecord{std::string(kTopic), std::nullopt, key, value});
    producer.poll(env.deadline_after(spec.produce_interval));
  }
  producer.flush(env.deadline_after(kFlushTimeout));
  done = true;
}

// Shared between the consumer node and the driver: when to close the consumers, and when done.
struct ConsumerControl {
  bool stop_requested = false;
  bool stopped = false;
};

clients::SimConsumerConfig consumer_config(const KafkaWorkloadSpec& spec, int index,
                                           clients::AssignmentStrategy assignor) {
  clients::SimConsumerConfig config;
  config.process = "consumer-" + std::to_string(index);
  config.client_id = config.process;
  config.bootstrap = kBroker;
  config.group_id = std::string(kGroup);
  if (spec.static_members) config.group_instance_id = "member-" + std::to_string(index);
  config.topics = {std::string(kTopic)};
  config.assignor = assignor;
  config.session_timeout = spec.session_timeout;
  config.rebalance_timeout = seconds(10);
  config.heartbeat_interval = seconds(1);
  config.request_timeout = seconds(5);
  config.fetch_wait_max = milliseconds(200);
  return config;
}

// The consumer node: the group's members, and (when the spec asks) their crashes and pauses until
// the fault period ends; then they run until the driver asks them to close.
void consumers_main(Env& env, const KafkaWorkloadSpec& spec, Instant stop_faults_at,
                    checkers::History& history, ConsumerControl& control) {
  Random random = env.random().fork("consumer-faults");
  const auto assignor = static_cast<clients::AssignmentStrategy>(
      spec.assignor >= 0 ? spec.assignor : static_cast<int>(random.uniform(3)));
  Scope scope(env.scheduler().current_scope(), "consumers");
  std::vector<std::unique_ptr<clients::SimConsumer>> consumers;
  for (int i = 1; i <= spec.consumers; ++i) {
    consumers.push_back(std::make_unique<clients::SimConsumer>(env, scope, history,
                                                               consumer_config(spec, i, assignor)));
    consumers.back()->start();
  }
  const std::int64_t session_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(spec.session_timeout).count();
  while (spec.consumer_faults && env.now() < stop_faults_at) {
    this_fiber::sleep_for(Duration(static_cast<std::int64_t>(random.exponential(1.5) * 1e9)));
    if (env.now() >= stop_faults_at) break;
    clients::SimConsumer& victim = *consumers[random.uniform(consumers.size())];
    const Duration outage = milliseconds(random.range(100, 2 * session_ms));
    if (random.bernoulli(0.5)) {
      env.log().info("crash {} for {} ms", victim.config().process, outage.count() / 1'000'000);
      victim.crash();
      this_fiber::sleep_for(outage);
      victim.restart();
    } else {
      env.log().info("pause {} for {} ms", victim.config().process, outage.count() / 1'000'000);
      victim.pause();
      this_fiber::sleep_for(outage);
      victim.resume();
    }
  }
  while (!control.stop_requested) this_fiber::sleep_for(milliseconds(100));
  for (auto& consumer : consumers) {
    if (consumer->running()) consumer->close(env.deadline_after(seconds(10)));
  }
  control.stopped = true;
}

void apply_fault_settings(sim::SimWorld& world, const sim::SwarmConfig& swarm, sim::NodeId broker,
                          const KafkaWorkloadSpec& spec) {
  sim::SimNetworkFaults network;
  if (swarm.latency_spikes) {
    network.latency_spike_probability = swarm.latency_spike_probability;
    network.latency_spike_mean = swarm.latency_spike_mean;
  }
  if (swarm.resets) network.reset_probability_per_write = swarm.reset_probability_per_write;
  if (swarm.refused_connects)
    network.refuse_probability_per_connect = swarm.refuse_probability_per_connect;
  world.network().set_faults(network);
  sim::SimDiskFaults disk;
  if (swarm.disk_latency || spec.slow_disk) {
    const Duration mean = spec.slow_disk ? milliseconds(40) : swarm.disk_latency_mean;
    disk.write_latency_mean_extra = mean / 10;
    disk.sync_latency_mean_extra = mean;
  }
  world.disk(broker).set_faults(disk);
}

}  // namespace

ScenarioResult run_kafka_workload(const ScenarioOptions& options, const KafkaWorkloadSpec& spec) {
  checkers::History history;  // outlives the world: node fibers write into it until unwound
  ScenarioResult result;
  sim::SimWorld world(options.seed);
  for (const auto& bug : options.bugs) world.buggify().plant_bug(bug);
  const sim::SwarmConfig swarm = sim::SwarmConfig::from_seed(options.seed);

  const sim::NodeId broker =
      world.add_node("broker", [&spec](Env& env) { broker_main(env, spec); });
  apply_fault_settings(world, swarm, broker, spec);

  const Instant faults_end = world.now() + options.fault_duration;
  std::vector<char> producers_done(static_cast<std::size_t>(spec.producers), 0);
  FaultPlan plan = spec.faults;
  plan.server = broker;
  plan.server_host = "broker";
  for (int i = 1; i <= spec.producers; ++i) {
    const std::string host = "producer-host-" + std::to_string(i);
    plan.client_hosts.push_back(host);
    world.add_node(host, [&, i](Env& env) {
      bool done = false;
      producer_main(env, spec, i, faults_end, history, done);
      producers_done[static_cast<std::size_t>(i - 1)] = done ? 1 : 0;
    });
  }
  ConsumerControl consumer_control;
  if (spec.consumers > 0) {
    plan.client_hosts.push_back("consumer-host");
    world.add_node("consumer-host", [&](Env& env) {
      consumers_main(env, spec, faults_end, history, consumer_control);
    });
  }
  FaultCounts faults;
  {
    Scope fault_scope(world.scheduler(), "faults");
    fault_scope.spawn("faults", [&] { run_faults(world, swarm, plan, faults_end, faults); });
    world.run_until(faults_end);
  }
  // Quiet period: heal everything; the producers flush; then the final read.
  world.network().heal_all();
  world.network().set_faults(sim::SimNetworkFaults{});
  world.disk(broker).set_faults(sim::SimDiskFaults{});
  if (!world.is_up(broker)) world.restart(broker);
  world.resume(broker);
  world.run_until([&] {
    for (char done : producers_done) {
      if (!done) return false;
    }
    return true;
  });

  bool read_done = false;
  std::string read_error;
  world.add_node("reader-host", [&](Env& env) {
    clients::SimAdmin admin(env, admin_config("final-reader"), history);
    if (spec.consumers > 0) {
      this_fiber::sleep_for(kConsumerCatchUp);
      // Records the group's state for the liveness check (an error here is its own finding).
      if (auto described =
              admin.describe_group(std::string(kGroup), env.deadline_after(seconds(10)));
          !described) {
        read_error = "describe group: " + described.error().message;
      }
    }
    auto records = admin.final_read({std::string(kTopic)}, env.deadline_after(kFinalReadTimeout));
    if (!records) read_error = records.error().message;
    read_done = true;
  });
  world.run_until([&] { return read_done; });
  if (spec.consumers > 0) {
    consumer_control.stop_requested = true;
    world.run_until([&] { return consumer_control.stopped; });
  }

  checkers::KafkaCheckOptions check_options;
  check_options.idempotent_producers = spec.idempotent;
  check_options.require_final_groups_stable = spec.consumers > 0;
  check_options.retention_may_delete = spec.retention_may_delete;
  const checkers::KafkaCheckResult checked = checkers::check_kafka_history(history, check_options);
  if (!options.history_path.empty()) {
    std::ofstream out(options.history_path);
    history.write_json_lines(out);
    if (!out) result.violations.push_back("cannot write the history to " + options.history_path);
  }
  if (!read_done) result.violations.push_back("liveness: the final read never finished");
  if (!read_error.empty())
    result.violations.push_back("liveness: the final read failed: " + read_error);
  for (const checkers::Anomaly& anomaly : checked.anomalies) {
    result.violations.push_back(anomaly.type + ": " + anomaly.description);
  }
  result.summary = checked.summary() + " " + faults.summary();
  result.trace_hash = world.trace_hash();
  result.simulated_seconds = std::chrono::duration<double>(world.now().time_since_epoch()).count();
  return result;
}

}  // namespace sluice::scenarios
