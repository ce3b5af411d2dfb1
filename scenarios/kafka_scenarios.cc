// The Kafka scenarios built on kafka_workload.h: each is a workload, broker settings and a fault
// theme. (The consumer-group scenarios join them once the simulated group consumer lands.)

#include "scenarios/kafka_workload.h"

namespace sluice::scenarios {

ScenarioResult run_crash_restart(const ScenarioOptions& options) {
  KafkaWorkloadSpec spec;
  spec.faults.force_crashes = true;  // lost and torn unsynced writes on every crash
  return run_kafka_workload(options, spec);
}

ScenarioResult run_client_network(const ScenarioOptions& options) {
  KafkaWorkloadSpec spec;
  spec.faults.force_partitions = true;
  spec.producers = 4;
  return run_kafka_workload(options, spec);
}

ScenarioResult run_slow_disk(const ScenarioOptions& options) {
  KafkaWorkloadSpec spec;
  spec.slow_disk = true;
  spec.produce_interval = milliseconds(5);
  return run_kafka_workload(options, spec);
}

ScenarioResult run_clock_skew(const ScenarioOptions& options) {
  KafkaWorkloadSpec spec;
  spec.faults.force_clock_jumps = true;
  // Time-based retention and rolls under wall-clock jumps: nothing acknowledged may vanish
  // before its time (retention.ms is far longer than the run, whatever the clock does).
  spec.topic_configs = {
      {"segment.ms", "2000"}, {"retention.ms", "86400000"}, {"segment.bytes", "65536"}};
  return run_kafka_workload(options, spec);
}

ScenarioResult run_retention_under_load(const ScenarioOptions& options) {
  KafkaWorkloadSpec spec;
  spec.produce_interval = milliseconds(2);
  spec.topic_configs = {{"segment.bytes", "8192"}, {"retention.bytes", "32768"}};
  spec.retention_may_delete = true;
  spec.configure_broker = [](kafka::BrokerConfig& config) {
    config.retention_check_interval = milliseconds(500);
  };
  return run_kafka_workload(options, spec);
}

ScenarioResult run_disk_corruption(const ScenarioOptions& options) {
  KafkaWorkloadSpec spec;
  spec.faults.bit_flips = true;      // segments, indexes, markers, checkpoints, topic configs
  spec.faults.force_crashes = true;  // so recovery reads the flipped files too
  spec.corruption_expected = true;
  // Small segments: flips land in sealed segments (served up to the corrupt batch) as well as in
  // the active one (recovery cuts it there), and rolls write index files and markers to flip.
  spec.topic_configs = {{"segment.bytes", "16384"}};
  // A segment unreadable from its first batch has no known timestamp, so time retention (7 days)
  // deletes it at once and the log start moves past the corruption: only that can delete here.
  spec.retention_may_delete = true;
  return run_kafka_workload(options, spec);
}

ScenarioResult run_graceful_restart(const ScenarioOptions& options) {
  KafkaWorkloadSpec spec;
  spec.partitions = 6;
  spec.producers = 3;
  spec.consumers = 2;
  spec.produce_interval = milliseconds(5);
  spec.faults.graceful_stops = true;  // drains under load; the seed's swarm adds crashes and more
  return run_kafka_workload(options, spec);
}

ScenarioResult run_rebalance_storm(const ScenarioOptions& options) {
  KafkaWorkloadSpec spec;
  spec.partitions = 6;
  spec.producers = 2;
  spec.consumers = 4;
  spec.consumer_faults = true;  // crashes and pauses past the session timeout; the swarm clogs
  // Dynamic members back from a stall send stale commits (the Java client's way): the
  // coordinator must fence them. (A static member may stay in a group across a rebalance it
  // missed, so static_membership keeps librdkafka's session check: see sim_consumer.h.)
  spec.java_like_consumers = true;
  return run_kafka_workload(options, spec);
}

ScenarioResult run_static_membership(const ScenarioOptions& options) {
  KafkaWorkloadSpec spec;
  spec.partitions = 8;
  spec.producers = 2;
  spec.consumers = 2;
  spec.static_members = true;   // the orchestrator's replicas: restarts within the session timeout
  spec.consumer_faults = true;  // keep their partitions; longer outages hand them over
  spec.session_timeout = seconds(10);
  spec.faults.swarm_kinds = false;  // the broker stays up: this is about the group
  return run_kafka_workload(options, spec);
}

}  // namespace sluice::scenarios
