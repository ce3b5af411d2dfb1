#pragma once
// ClusterConnections: a client's connections to the brokers of one Kafka cluster. It starts from
// bootstrap addresses, learns the brokers and partition leaders from Metadata, and keeps at most
// one KafkaConnection per broker address, replacing a broken one with a fresh connection on the
// next request for it (so a reset or a broker restart costs one failed call, then a reconnect).
//
// Lifecycle: owned by one client (a simulated producer, consumer or admin); connections close
// when the last holder lets go. Concurrency: one scheduler; several fibers may share it (say a
// consumer's heartbeat fiber and its main fiber): a connection handed out is shared, so replacing
// it here never pulls it from under a fiber still calling it.
// Determinism: addresses are tried in a fixed order (open connections, then the bootstrap list,
// then brokers by node id); nothing depends on hashing or pointer values.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/client/kafka_connection.h"

namespace sluice::client {

struct PartitionMetadata {
  std::int16_t error_code = 0;
  std::int32_t leader_id = -1;  // -1: no leader
};

struct TopicMetadata {
  std::int16_t error_code = 0;
  std::vector<PartitionMetadata> partitions;  // indexed by partition id
};

// What one Metadata response says about the cluster.
struct ClusterMetadata {
  std::map<std::int32_t, Address> brokers;  // node id -> address
  std::map<std::string, TopicMetadata> topics;

  static ClusterMetadata from_response(const protocol::StructValue& response);
  // The leader's address; nullopt when the topic, the partition or its leader is unknown.
  std::optional<Address> leader_address(const std::string& topic, std::int32_t partition) const;
};

class ClusterConnections {
 public:
  template <typename T>
  using Result = KafkaConnection::Result<T>;

  // `bootstrap` must not be empty; `options` serve every connection.
  ClusterConnections(Env& env, std::vector<Address> bootstrap, ConnectionOptions options);
  ClusterConnections(const ClusterConnections&) = delete;
  ClusterConnections& operator=(const ClusterConnections&) = delete;

  // A connection to `address`: the open one, or a new one in place of a broken one.
  Result<std::shared_ptr<KafkaConnection>> to(const Address& address);
  // A connection to broker `node_id` as the latest metadata names it.
  Result<std::shared_ptr<KafkaConnection>> to_node(std::int32_t node_id);
  // A connection to any broker: an open one, else the first of the bootstrap addresses and then
  // the known brokers that accepts a connection.
  Result<std::shared_ptr<KafkaConnection>> any();
  // Metadata for `topics` (every topic when nullopt) from any broker; its brokers become known.
  // Never asks the broker to create topics.
  Result<ClusterMetadata> fetch_metadata(const std::optional<std::vector<std::string>>& topics);
  // The brokers the latest metadata named.
  const std::map<std::int32_t, Address>& brokers() const { return brokers_; }
  void close_all();
  Env& env() const { return env_; }
  const ConnectionOptions& options() const { return options_; }

 private:
  Env& env_;
  std::vector<Address> bootstrap_;
  ConnectionOptions options_;
  std::map<std::int32_t, Address> brokers_;
  std::map<Address, std::shared_ptr<KafkaConnection>> connections_;
};

}  // namespace sluice::client
