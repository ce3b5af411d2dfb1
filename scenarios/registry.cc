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
      {"crash_restart",
       "idempotent acks=all producers against the real broker while it crashes (losing and tearing "
       "unsynced writes) and restarts: every acknowledged record is read back once, at its offset",
       &run_crash_restart},
      {"client_network",
       "producers behind partitions, resets, clogs and refused connects between them and the broker: "
       "retries never duplicate (idempotence) nor lose acknowledged records",
       &run_client_network},
      {"slow_disk", "producers against a broker whose syncs and writes are slow: group commit under load",
       &run_slow_disk},
      {"clock_skew",
       "the broker's wall clock jumps back and forth while segments roll by time: timestamps and "
       "time-based retention never drop acknowledged records early",
       &run_clock_skew},
      {"retention_under_load",
       "small segments deleted by retention.bytes while producers write: retention removes whole old "
       "segments only, never records out of order or still-acknowledged tails",
       &run_retention_under_load},
      {"disk_corruption",
       "bit flips in the broker's durable files (segments, indexes, markers, checkpoints, topic "
       "configs) across crashes: every corruption is detected, no corrupt record is ever served, "
       "every partition is served up to its first corruption and the broker keeps running",
       &run_disk_corruption},
      {"rebalance_storm",
       "a consumer group (range, roundrobin or cooperative-sticky by seed) whose members crash, restart "
       "and pause past their session timeout while producers write and the broker faults: one owner per "
       "partition per generation, commits never regress, nothing acknowledged goes unread, Stable at the end",
       &run_rebalance_storm},
      {"graceful_restart",
       "the broker is stopped gracefully (as on SIGTERM: drain, close cleanly) and restarted while "
       "idempotent producers and a consumer group run, among the seed's other faults: nothing "
       "acknowledged is lost, and every log reopens from its clean-shutdown marker without a scan",
       &run_graceful_restart},
      {"static_membership",
       "two static members (group.instance.id) restarting within and beyond the session timeout: "
       "exclusivity, no lost or unread records, the group Stable at the end",
       &run_static_membership},
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
      {"storage_ack_before_fsync", "(the same bug, against the real broker and Kafka producers)", "crash_restart"},
      {"fetch_off_by_one", "Fetch reads from one past the requested offset (loses a record that ends its batch)",
       "crash_restart"},
      {"serve_corrupt_batch", "the partition log's read path skips the batch CRC check", "disk_corruption"},
      {"group_two_owners", "SyncGroup hands every member the leader's assignment (two owners per partition)",
       "rebalance_storm"},
      {"group_accept_stale_commit", "OffsetCommit from a zombie (an older generation or an expired member) is accepted", "rebalance_storm"},
      {"stop_skips_log_close", "a graceful stop drains but does not close the partition logs (no clean-shutdown markers)",
       "graceful_restart"},
  };
  return bugs;
}

}  // namespace sluice::scenarios
