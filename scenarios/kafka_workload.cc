// The Kafka workload: broker node, producer nodes, fault period, quiet period, final read, checks.

#include "scenarios/kafka_workload.h"

#include <algorithm>
#include <fstream>
#include <memory>
#include <set>
#include <vector>

#include <fmt/core.h>

#include "checkers/kafka_history.h"
#include "core/util/crc32c.h"
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

// Where a broker start found a partition of the topic's log to end (corruption_expected only).
struct RecoveredEnd {
  std::int64_t time_ns = 0;
  std::int32_t partition = 0;
  std::int64_t end_offset = 0;
};

std::string value_checksum(std::string_view text) {
  return fmt::format("{:08x}", crc32c(std::as_bytes(std::span(text.data(), text.size()))));
}

// "<process>-<seq>-<crc32c hex of '<process>-<seq>'>".
std::string checksummed_value(const std::string& base) {
  return base + "-" + value_checksum(base);
}

bool value_checks(std::string_view value) {
  const std::size_t dash = value.rfind('-');
  return dash != std::string_view::npos &&
         value.substr(dash + 1) == value_checksum(value.substr(0, dash));
}

// Graceful stops of the broker node (FaultKind::stop) and what the start after one found.
struct BrokerControl {
  bool stop_requested = false;      // the fault driver asks the running broker to stop
  bool stopped = false;             // the running incarnation has returned from Broker::stop()
  bool stopped_gracefully = false;  // the last incarnation ended in Broker::stop()
  WaitQueue changed;
  std::vector<std::string> violations;
};

// The fault driver's graceful_stop hook: asks, then waits (bounded) until the broker has stopped.
bool request_graceful_stop(BrokerControl& control, const sim::SimWorld& world) {
  control.stop_requested = true;
  control.changed.notify_all();
  const Instant deadline = add_saturating(world.now(), seconds(60));
  while (!control.stopped && world.now() < deadline) control.changed.wait(deadline);
  return control.stopped;
}

// After a graceful stop every partition log must reopen from its clean-shutdown marker: a scan
// means the stop left something unsynced or unclosed.
void check_clean_after_graceful_stop(Env& env, kafka::Broker& broker, BrokerControl& control) {
  std::size_t partitions = 0;
  std::size_t scanned = 0;
  for (const auto& [name, topic] : broker.topics().topics()) {
    for (const auto& partition : topic->partitions) {
      partitions++;
      if (!partition->log->stats().recovered_from_clean_shutdown) scanned++;
    }
  }
  if (scanned > 0) {
    control.violations.push_back(fmt::format(
        "unclean-after-graceful-stop: {} of {} partition logs were recovered by a scan after a "
        "graceful stop (t={:.3f} s)",
        scanned, partitions, std::chrono::duration<double>(env.now().time_since_epoch()).count()));
  }
}

void broker_main(Env& env, const KafkaWorkloadSpec& spec, std::vector<RecoveredEnd>& recovered,
                 BrokerControl& control) {
  control.stop_requested = false;
  control.stopped = false;
  // Only the first start after a graceful stop is judged: one a crash cut short during its open
  // leaves the next start to recover what that open had begun.
  const bool after_graceful_stop = control.stopped_gracefully;
  control.stopped_gracefully = false;
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
  if (after_graceful_stop) check_clean_after_graceful_stop(env, broker, control);
  if (spec.corruption_expected) {
    if (const kafka::Topic* topic = broker.topics().find(kTopic)) {
      for (const auto& partition : topic->partitions) {
        recovered.push_back(RecoveredEnd{.time_ns = env.now().time_since_epoch().count(),
                                         .partition = partition->index,
                                         .end_offset = partition->log->log_end_offset()});
      }
    }
  }
  if (auto served = broker.serve(Address{"0.0.0.0", kBrokerPort}); !served) {
    env.log().error("broker serve failed: {}", to_string(served.error()));
    return;
  }
  while (!control.stop_requested) control.changed.wait(kNever);
  broker.stop();  // as on SIGTERM: drain, then close every log cleanly
  control.stopped = true;
  control.stopped_gracefully = true;
  control.changed.notify_all();
  Event never;  // down only when the fault driver takes the node down
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
// records with unique values until the fault period ends, then flushes. The creation may outlast
// the fault period (a seed can keep the broker down through all of it): the final read needs the
// topic, and the quiet period after the faults is when it must be possible.
void producer_main(Env& env, const KafkaWorkloadSpec& spec, int index, Instant stop_at,
                   checkers::History& history, bool& done) {
  const std::string process = "producer-" + std::to_string(index);
  clients::SimAdmin admin(env, admin_config(process), history);
  if (!admin.create_topic(std::string(kTopic), spec.partitions, spec.topic_configs,
                          stop_at + kFlushTimeout)) {
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
    std::string value = process + "-" + std::to_string(sequence);
    if (spec.corruption_expected) value = checksummed_value(value);
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
  config.session_check = !spec.java_like_consumers;
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

// corruption_expected: the history the checkers judge, without the acknowledged records lost to
// a detected corruption (see KafkaWorkloadSpec::corruption_expected); `excused` counts them.
checkers::History excuse_corruption_losses(const checkers::History& history,
                                           const std::vector<clients::FinalReadStop>& stops,
                                           const std::vector<RecoveredEnd>& recovered,
                                           std::uint64_t& excused) {
  std::set<std::string> lost;  // values
  for (const checkers::Op& op : history.ops()) {
    if (op.f != "send" || op.type != checkers::OpType::ok) continue;
    for (const checkers::RecordRef& record : op.records) {
      if (record.offset < 0) continue;
      const bool past_stop = std::any_of(stops.begin(), stops.end(), [&](const auto& stop) {
        return stop.tp == record.tp && record.offset >= stop.offset;
      });
      const bool cut =
          std::any_of(recovered.begin(), recovered.end(), [&](const RecoveredEnd& end) {
            return end.partition == record.tp.partition && op.time_ns < end.time_ns &&
                   record.offset >= end.end_offset;
          });
      if (past_stop || cut) lost.insert(record.value);
    }
  }
  excused = lost.size();
  checkers::History filtered;
  for (checkers::Op op : history.ops()) {
    if (op.f == "send") {
      std::erase_if(op.records, [&](const checkers::RecordRef& record) {
        return record.tp.topic == kTopic && lost.contains(record.value);
      });
    }
    filtered.add(std::move(op));
  }
  return filtered;
}

// Every polled value must carry its own checksum: a corrupt record was served otherwise.
void check_values_intact(const checkers::History& history, std::vector<std::string>& violations) {
  std::uint64_t corrupt = 0;
  for (const checkers::Op& op : history.ops()) {
    if (op.f != "poll" || op.type != checkers::OpType::ok) continue;
    for (const checkers::RecordRef& record : op.records) {
      if (value_checks(record.value)) continue;
      if (++corrupt <= checkers::KafkaCheckResult::kAnomaliesListedPerType) {
        violations.push_back(
            fmt::format("corrupt-record-served: {} polled {}[{}] offset {} value '{}' whose "
                        "checksum fails (op {})",
                        op.process, record.tp.topic, record.tp.partition, record.offset,
                        record.value, op.index));
      }
    }
  }
  if (corrupt > checkers::KafkaCheckResult::kAnomaliesListedPerType) {
    violations.push_back(fmt::format("corrupt-record-served: {} corrupt values in all", corrupt));
  }
}

}  // namespace

ScenarioResult run_kafka_workload(const ScenarioOptions& options, const KafkaWorkloadSpec& spec) {
  checkers::History history;  // outlives the world: node fibers write into it until unwound
  ScenarioResult result;
  BrokerControl control;  // outlives the world too: the broker node waits on it
  sim::SimWorld world(options.seed);
  for (const auto& bug : options.bugs) world.buggify().plant_bug(bug);
  const sim::SwarmConfig swarm = sim::SwarmConfig::from_seed(options.seed);

  std::vector<RecoveredEnd> recovered;
  const sim::NodeId broker = world.add_node("broker", [&spec, &recovered, &control](Env& env) {
    broker_main(env, spec, recovered, control);
  });
  apply_fault_settings(world, swarm, broker, spec);

  const Instant faults_end = world.now() + options.fault_duration;
  std::vector<char> producers_done(static_cast<std::size_t>(spec.producers), 0);
  FaultPlan plan = spec.faults;
  plan.server = broker;
  plan.server_host = "broker";
  plan.graceful_stop = [&control, &world] { return request_graceful_stop(control, world); };
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
    fault_scope.spawn("faults", [&] {
      run_faults(world, swarm, plan, faults_end, faults, options.fault_schedule,
                 &result.fault_schedule);
    });
    world.run_until(faults_end);
  }
  // Quiet period: heal everything; the producers flush; then the final read.
  world.network().heal_all();
  world.network().set_faults(sim::SimNetworkFaults{});
  world.disk(broker).set_faults(sim::SimDiskFaults{});
  if (!world.is_up(broker)) world.restart(broker);
  world.resume(broker);
  if (control.stop_requested) {
    // The fault period ended inside a graceful stop: let it finish, then start the broker again.
    for (int waited = 0; waited < 600 && !control.stopped; ++waited) world.run_for(milliseconds(100));
    world.crash(broker);
    world.restart(broker);
  }
  world.run_until([&] {
    for (char done : producers_done) {
      if (!done) return false;
    }
    return true;
  });

  bool read_done = false;
  std::string read_error;
  std::vector<clients::FinalReadStop> read_stops;
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
    clients::FinalReadOptions read_options;
    read_options.stop_at_corruption = spec.corruption_expected;
    read_options.verify_batch_crc = !spec.corruption_expected;  // the value checksums judge it
    auto records = admin.final_read({std::string(kTopic)}, env.deadline_after(kFinalReadTimeout),
                                    read_options, &read_stops);
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
  std::uint64_t excused = 0;
  const checkers::KafkaCheckResult checked = checkers::check_kafka_history(
      spec.corruption_expected ? excuse_corruption_losses(history, read_stops, recovered, excused)
                               : history,
      check_options);
  if (!options.history_path.empty()) {
    std::ofstream out(options.history_path);
    history.write_json_lines(out);
    if (!out) result.violations.push_back("cannot write the history to " + options.history_path);
  }
  if (!read_done) result.violations.push_back("liveness: the final read never finished");
  if (!read_error.empty()) {
    // With the client's CRC check off, a corrupt batch the broker served may not even decode.
    const bool served_garbage =
        spec.corruption_expected && (read_error.find("undecodable batch") != std::string::npos ||
                                     read_error.find("bad batch") != std::string::npos);
    result.violations.push_back((served_garbage ? "corrupt-record-served: the final read failed: "
                                                : "liveness: the final read failed: ") +
                                read_error);
  }
  for (const checkers::Anomaly& anomaly : checked.anomalies) {
    result.violations.push_back(anomaly.type + ": " + anomaly.description);
  }
  for (const std::string& violation : control.violations) result.violations.push_back(violation);
  result.summary = checked.summary() + " " + faults.summary();
  if (spec.corruption_expected) {
    check_values_intact(history, result.violations);
    result.summary +=
        fmt::format(" corrupt_stops={} lost_to_corruption={}", read_stops.size(), excused);
  }
  result.trace_hash = world.trace_hash();
  result.simulated_seconds = std::chrono::duration<double>(world.now().time_since_epoch()).count();
  return result;
}

}  // namespace sluice::scenarios
