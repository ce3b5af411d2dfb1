// The shared single-server log workload: clients, fault driver, quiet period, verifier, checks.

#include "scenarios/log_workload.h"

#include "scenarios/fault_driver.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/util/bytes.h"
#include "sim/world.h"

namespace sluice::scenarios {

namespace {

constexpr int kClients = 3;
constexpr Duration kQuietPeriod = seconds(30);

struct History {
  std::vector<checkers::AppendOperation> operations;
  FaultCounts faults;
};

// One client: append records one at a time until `stop_at`, reconnecting after any error.
void run_client(Env& env, const LogWorkload& workload, std::uint64_t client, Instant stop_at, History& history) {
  const Address server{"server", kLogServerPort};
  std::unique_ptr<LogClient> connection;
  std::uint64_t sequence = 0;
  while (env.now() < stop_at) {
    if (!connection) {
      auto connected = workload.connect(env, server, env.deadline_after(seconds(1)));
      if (!connected) {
        this_fiber::sleep_for(milliseconds(env.random().range(20, 200)));
        continue;
      }
      connection = std::move(*connected);
    }
    const auto size = static_cast<std::size_t>(env.random().range(1, 3000));
    Bytes data(size);
    for (auto& byte : data) byte = static_cast<std::byte>(env.random().next_u64());
    sequence++;
    const std::size_t slot = history.operations.size();
    history.operations.push_back({client, sequence, std::string(as_text(data)), checkers::AppendOutcome::unknown, 0});
    auto result = connection->append(client, sequence, data, env.deadline_after(seconds(2)));
    if (result) {
      history.operations[slot].outcome = checkers::AppendOutcome::acked;
      history.operations[slot].index = *result;
    } else {
      env.log().debug("append {} failed: {}", sequence, result.error());
      if (result.error().starts_with("server:")) history.operations[slot].outcome = checkers::AppendOutcome::failed;
      connection.reset();
      this_fiber::sleep_for(milliseconds(env.random().range(10, 100)));
    }
  }
}

// Reads the whole log, retrying until `deadline`; nullopt if it never succeeds (liveness).
std::optional<std::vector<checkers::LoggedRecord>> read_whole_log(Env& env, const LogWorkload& workload,
                                                                  Instant deadline, std::string& last_error) {
  while (env.now() < deadline) {
    auto connection = workload.connect(env, Address{"server", kLogServerPort}, env.deadline_after(seconds(1)));
    if (!connection) {
      last_error = "connect: " + connection.error();
      this_fiber::sleep_for(milliseconds(100));
      continue;
    }
    std::vector<checkers::LoggedRecord> records;
    bool complete = false;
    for (int page = 0; page < 100000; ++page) {
      auto batch = (*connection)->read(records.size(), env.deadline_after(seconds(2)));
      if (!batch) {
        last_error = "read: " + batch.error();
        break;
      }
      for (auto& record : *batch) records.push_back(std::move(record));
      if (batch->empty()) {
        complete = true;
        break;
      }
    }
    if (complete) return records;
    this_fiber::sleep_for(milliseconds(100));
  }
  return std::nullopt;
}

}  // namespace

ScenarioResult run_log_workload(const ScenarioOptions& options, const LogWorkload& workload) {
  History history;  // outlives the world: node fibers write into it until they are unwound
  ScenarioResult result;
  sim::SimWorld world(options.seed);
  for (const auto& bug : options.bugs) world.buggify().plant_bug(bug);

  const sim::SwarmConfig swarm = sim::SwarmConfig::from_seed(options.seed);
  sim::SimNetworkFaults network_faults;
  if (swarm.latency_spikes) {
    network_faults.latency_spike_probability = swarm.latency_spike_probability;
    network_faults.latency_spike_mean = swarm.latency_spike_mean;
  }
  if (swarm.resets) network_faults.reset_probability_per_write = swarm.reset_probability_per_write;
  if (swarm.refused_connects) network_faults.refuse_probability_per_connect = swarm.refuse_probability_per_connect;
  world.network().set_faults(network_faults);

  const sim::NodeId server = world.add_node("server", workload.server_main);
  sim::SimDiskFaults disk_faults;
  if (swarm.disk_latency) {
    disk_faults.write_latency_mean_extra = swarm.disk_latency_mean / 10;
    disk_faults.sync_latency_mean_extra = swarm.disk_latency_mean;
  }
  if (swarm.disk_read_errors) disk_faults.read_error_probability = swarm.disk_read_error_probability;
  world.disk(server).set_faults(disk_faults);

  const Instant faults_end = world.now() + options.fault_duration;
  for (int i = 1; i <= kClients; ++i) {
    world.add_node("client-" + std::to_string(i), [i, faults_end, &history, &workload](Env& env) {
      run_client(env, workload, static_cast<std::uint64_t>(i), faults_end, history);
    });
  }

  std::optional<std::vector<checkers::LoggedRecord>> final_log;
  std::string last_error;
  bool verified = false;
  {
    // The fault driver is not a node: it lives in its own scope, ended with the fault period so
    // it cannot undo the healing below.
    Scope faults(world.scheduler(), "faults");
    FaultPlan plan;
    plan.server = server;
    plan.random_stream = "log_workload/faults";
    for (int i = 1; i <= kClients; ++i) plan.client_hosts.push_back("client-" + std::to_string(i));
    faults.spawn("faults", [&] {
      run_faults(world, swarm, plan, faults_end, history.faults, options.fault_schedule,
                 &result.fault_schedule);
    });
    world.run_until(faults_end);
  }
  {

    // Quiet period: heal everything, bring the server back, stop injecting faults.
    world.network().heal_all();
    world.network().set_faults(sim::SimNetworkFaults{});
    world.disk(server).set_faults(sim::SimDiskFaults{});
    if (!world.is_up(server)) world.restart(server);
    world.resume(server);

    const sim::NodeId verifier = world.add_node("verifier", [&](Env& env) {
      this_fiber::sleep_for(seconds(3));  // let in-flight client requests finish
      final_log = read_whole_log(env, workload, env.deadline_after(kQuietPeriod), last_error);
      verified = true;
    });
    (void)verifier;
    world.run_until([&] { return verified; });
  }

  if (!final_log) {
    result.violations.push_back("liveness: the log was not readable within the quiet period (" +
                                last_error + ")");
  } else {
    auto checked = checkers::check_append_history(history.operations, *final_log);
    result.violations = checked.violations;
    result.summary = "appends=" + std::to_string(history.operations.size()) +
                     " acked=" + std::to_string(checked.acked) +
                     " log=" + std::to_string(final_log->size()) +
                     " unacked_in_log=" + std::to_string(checked.unknown_found) +
                     " " + history.faults.summary();
  }
  result.trace_hash = world.trace_hash();
  result.simulated_seconds = std::chrono::duration<double>(world.now().time_since_epoch()).count();
  return result;
}

}  // namespace sluice::scenarios
