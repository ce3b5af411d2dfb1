#pragma once
// A scenario = topology + workload + fault plan + checkers, run in the simulator from one seed.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/env/time.h"
#include "scenarios/fault_schedule.h"

namespace sluice::scenarios {

struct ScenarioOptions {
  std::uint64_t seed = 1;
  std::vector<std::string> bugs;          // canary bugs to plant (see `sluice-sim bugs`)
  Duration fault_duration = seconds(20);  // virtual time with faults, then a quiet period
  bool verbose = false;                   // broker logs at info instead of warn
  std::string history_path;               // Kafka scenarios: write the history here (JSON lines)
  // When set, the fault driver injects exactly these faults instead of drawing them from the seed
  // (everything else still comes from the seed): `sluice-sim run --schedule`, `--minimize`.
  std::optional<FaultSchedule> fault_schedule;
};

struct ScenarioResult {
  std::uint64_t trace_hash = 0;
  std::vector<std::string> violations;  // empty = every invariant held
  std::string summary;                  // one line of counts for humans
  double simulated_seconds = 0;         // virtual time the run covered
  FaultSchedule fault_schedule;         // the faults the fault driver injected, in order
  bool ok() const { return violations.empty(); }
};

struct ScenarioInfo {
  const char* name;
  const char* description;
  ScenarioResult (*run)(const ScenarioOptions&);
};

const std::vector<ScenarioInfo>& all_scenarios();
const ScenarioInfo* find_scenario(const std::string& name);

struct BugInfo {
  const char* name;
  const char* description;
  const char* caught_by;  // the scenario CI runs to prove the bug is caught
};
const std::vector<BugInfo>& all_bugs();

// Scenario entry points (one file each).
ScenarioResult run_append_log(const ScenarioOptions& options);
ScenarioResult run_partition_log(const ScenarioOptions& options);
// Kafka scenarios (kafka_scenarios.cc): the real broker and simulated Kafka clients.
ScenarioResult run_crash_restart(const ScenarioOptions& options);
ScenarioResult run_client_network(const ScenarioOptions& options);
ScenarioResult run_slow_disk(const ScenarioOptions& options);
ScenarioResult run_clock_skew(const ScenarioOptions& options);
ScenarioResult run_retention_under_load(const ScenarioOptions& options);
ScenarioResult run_disk_corruption(const ScenarioOptions& options);
ScenarioResult run_rebalance_storm(const ScenarioOptions& options);
ScenarioResult run_graceful_restart(const ScenarioOptions& options);
ScenarioResult run_static_membership(const ScenarioOptions& options);

}  // namespace sluice::scenarios
