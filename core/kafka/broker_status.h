#pragma once
// The broker's state as plain values: this node, its topics and partitions, its consumer groups
// with their members, committed offsets and lag. The admin API (runtime/admin_server.h) renders
// them as JSON; the metrics (broker_metrics.h) export the consumer lag.
//
// Concurrency: call on the broker's scheduler thread (the runtime posts a closure to the reactor).
// Nothing here suspends or does IO: every value is read from memory, so a snapshot is consistent
// with itself (no fiber runs while it is taken).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/kafka/topic_config.h"

namespace sluice::kafka {

class Broker;

struct BrokerStatus {
  std::int32_t node_id = 0;
  std::string host;        // advertised (what Metadata tells clients)
  std::uint16_t port = 0;  // advertised
  std::string cluster_id;
  std::string data_directory;
  bool ready = false;  // Broker::ready(): listening and not stopping
  std::size_t connections = 0;
  bool request_logging = false;
};

struct PartitionStatus {
  std::int32_t partition = 0;
  std::int32_t leader = 0;  // node id (this node until replication)
  std::int64_t log_start_offset = 0;
  // The high watermark: what consumers can read and ListOffsets(latest) answers.
  std::int64_t log_end_offset = 0;
  std::uint64_t size_bytes = 0;
  std::size_t segment_count = 0;
};

struct TopicStatus {
  std::string name;
  bool internal = false;                    // is_internal_topic(name)
  std::vector<PartitionStatus> partitions;  // by partition index
  ConfigMap config_overrides;               // the keys set on the topic (Kafka names)
};

// A topic and its partitions, as the consumer protocol writes them.
using TopicPartitions = std::vector<std::pair<std::string, std::vector<std::int32_t>>>;

struct GroupMemberStatus {
  std::string member_id;
  std::optional<std::string> group_instance_id;  // static membership (KIP-345)
  std::string client_id;
  std::string client_host;
  // Decoded from the consumer protocol's bytes; nullopt when the group is not Stable (Kafka only
  // reports them then) or its protocol type is not "consumer" or the bytes do not decode.
  std::optional<std::vector<std::string>> subscribed_topics;
  std::optional<TopicPartitions> assignment;
};

// One partition a group has committed an offset for or has assigned to a member.
struct GroupOffsetStatus {
  std::string topic;
  std::int32_t partition = 0;
  std::optional<std::int64_t> committed_offset;  // nullopt: assigned, nothing committed
  std::optional<std::int64_t> log_end_offset;    // nullopt: no such partition (topic deleted)
  // log_end_offset - committed_offset (as Kafka's consumer-groups tool: may be negative after
  // DeleteRecords or a truncation); nullopt when either is unknown.
  std::optional<std::int64_t> lag;
  std::optional<std::string> member_id;  // the member it is assigned to, if any
};

struct GroupStatus {
  std::string group_id;
  std::string state;  // Kafka's names: Empty, PreparingRebalance, CompletingRebalance, Stable, Dead
  std::string protocol_type;
  std::string protocol;  // the chosen assignor; empty unless Stable (as DescribeGroups)
  // The group generation and leader member id; nullopt while the coordinator does not expose them.
  std::optional<std::int32_t> generation;
  std::optional<std::string> leader;
  std::vector<GroupMemberStatus> members;
  std::vector<GroupOffsetStatus> offsets;  // by (topic, partition)
};

BrokerStatus broker_status(Broker& broker);
// Every topic, internal ones included, in name order.
std::vector<TopicStatus> topic_statuses(Broker& broker);
std::optional<TopicStatus> topic_status(Broker& broker, std::string_view name);
// Every group, in group id order.
std::vector<GroupStatus> group_statuses(Broker& broker);
std::optional<GroupStatus> group_status(Broker& broker, std::string_view group_id);

}  // namespace sluice::kafka
