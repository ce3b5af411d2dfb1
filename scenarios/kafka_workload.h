#pragma once
// The Kafka scenarios' shared shape: one broker node running the real kafka::Broker, producer
// nodes running simulated Kafka producers (scenarios/clients) that record a Jepsen-style history,
// a fault driver (scenarios/fault_driver.h) for the fault period, then a quiet period: the world
// heals, the producers flush, a reader takes the final read, and checkers/kafka_history.h judges
// the history. A scenario chooses the workload, the broker's settings and the faults.

#include <cstdint>
#include <map>
#include <string>

#include "core/kafka/broker.h"
#include "scenarios/fault_driver.h"
#include "scenarios/scenario.h"

namespace sluice::scenarios {

struct KafkaWorkloadSpec {
  std::int32_t partitions = 4;
  int producers = 3;
  bool idempotent = true;
  std::int16_t acks = -1;
  std::int64_t keys = 16;                        // records' keys cycle through this many
  Duration produce_interval = milliseconds(20);  // per producer, between records
  std::map<std::string, std::string> topic_configs;
  FaultPlan faults;        // server and client hosts are filled in by the workload
  bool slow_disk = false;  // the broker's disk: slow syncs and writes throughout the fault period
  bool retention_may_delete = false;  // records may be gone from the final read by retention
  // Bit flips in the broker's durable files (disk_corruption). Record values carry their own
  // checksum ("<process>-<seq>-<crc32c hex of the rest>"), and every polled value must verify
  // (else `corrupt-record-served`). The final read keeps each partition's prefix below the first
  // offset the broker reports corrupt. Acknowledged records are excused from lost-write and
  // liveness only at or beyond a partition's detected corruption point: where its final read
  // stopped, or where a broker recovery cut the log below records acknowledged before it (a
  // flipped bit in the last segment reads as a torn tail); everything below is checked as usual.
  bool corruption_expected = false;
  void (*configure_broker)(kafka::BrokerConfig&) = nullptr;
  // Consumers: one group of simulated consumers (scenarios/clients/sim_consumer.h) on a
  // "consumer-host" node, consuming the topic from the start; 0 for none.
  int consumers = 0;
  int assignor = -1;            // an AssignmentStrategy, or -1: chosen by the seed
  bool static_members = false;  // group.instance.id "member-N"
  // During the fault period, consumers crash (and restart after up to twice the session
  // timeout) and pause (past the session timeout or not).
  bool consumer_faults = false;
  Duration session_timeout = seconds(6);
  // Consumers without librdkafka's client-side session check (SimConsumerConfig::session_check),
  // as the Java client: after a stall they commit under their old generation first.
  bool java_like_consumers = false;
};

ScenarioResult run_kafka_workload(const ScenarioOptions& options, const KafkaWorkloadSpec& spec);

}  // namespace sluice::scenarios
