#include <string>

#include "scenarios/scenario.h"

namespace sluice::scenarios {

const std::vector<ScenarioInfo>& all_scenarios() {
  static const std::vector<ScenarioInfo> scenarios = {
      {"append_log",
       "clients append checksummed records to a node's log and read them back, across node crashes "
       "(lost and torn unsynced writes), restarts, pauses, partitions, resets and slow disks",
       &run_append_log},
      {"partition_log",
       "clients produce record batches to one partition log (small segments) and fetch them back, "
       "under the same faults: acknowledged batches survive at their offsets, nothing corrupt is served",
       &run_partition_log},
  };
  return scenarios;
}

const ScenarioInfo* find_scenario(const std::string& name) {
  for (const auto& scenario : all_scenarios()) {
    if (name == scenario.name) return &scenario;
  }
  return nullptr;
}

const std::vector<BugInfo>& all_bugs() {
  static const std::vector<BugInfo> bugs = {
      {"demo_ack_before_sync", "append log acknowledges before fdatasync (flushes every 50 ms)",
       "append_log"},
      {"demo_skip_crc_on_recovery", "append log recovery accepts frames without checking their CRC",
       "append_log"},
      {"storage_ack_before_fsync", "the partition log acknowledges appends before fdatasync",
       "partition_log"},
      {"storage_skip_crc_on_recovery", "partition log recovery accepts batches without checking their CRC",
       "partition_log"},
  };
  return bugs;
}

}  // namespace sluice::scenarios
