#include "core/client/cluster_connections.h"

#include <cassert>
#include <utility>

namespace sluice::client {

namespace {

using protocol::StructValue;

// A cluster's brokers bound the connections of one client; more means a broken Metadata answer.
constexpr std::size_t kConnectionsMax = 1024;
constexpr std::size_t kPartitionsPerTopicMax = 1 << 20;
constexpr std::int16_t kErrorUnknownTopicOrPartition = 3;

}  // namespace

ClusterMetadata ClusterMetadata::from_response(const StructValue& response) {
  ClusterMetadata metadata;
  for (const StructValue& broker : response.get_structs("brokers")) {
    const std::int64_t port = broker.get_int("port");
    if (port <= 0 || port > 65535) continue;
    metadata.brokers[static_cast<std::int32_t>(broker.get_int("node_id"))] =
        Address{broker.get_string("host"), static_cast<std::uint16_t>(port)};
  }
  for (const StructValue& topic : response.get_structs("topics")) {
    TopicMetadata& known = metadata.topics[topic.get_string("name")];
    known.error_code = static_cast<std::int16_t>(topic.get_int("error_code"));
    for (const StructValue& partition : topic.get_structs("partitions")) {
      const std::int64_t index = partition.get_int("partition_index");
      if (index < 0 || index >= static_cast<std::int64_t>(kPartitionsPerTopicMax)) continue;
      if (static_cast<std::size_t>(index) >= known.partitions.size()) {
        // A partition the answer skips stays "unknown" rather than looking led.
        known.partitions.resize(static_cast<std::size_t>(index) + 1,
                                PartitionMetadata{.error_code = kErrorUnknownTopicOrPartition});
      }
      known.partitions[static_cast<std::size_t>(index)] = PartitionMetadata{
          .error_code = static_cast<std::int16_t>(partition.get_int("error_code")),
          .leader_id = static_cast<std::int32_t>(partition.get_int("leader_id"))};
    }
  }
  return metadata;
}

std::optional<Address> ClusterMetadata::leader_address(const std::string& topic,
                                                       std::int32_t partition) const {
  const auto found = topics.find(topic);
  if (found == topics.end() || found->second.error_code != 0 || partition < 0) return std::nullopt;
  const auto& partitions = found->second.partitions;
  if (static_cast<std::size_t>(partition) >= partitions.size()) return std::nullopt;
  const PartitionMetadata& led = partitions[static_cast<std::size_t>(partition)];
  if (led.error_code != 0 || led.leader_id < 0) return std::nullopt;
  const auto broker = brokers.find(led.leader_id);
  if (broker == brokers.end()) return std::nullopt;
  return broker->second;
}

ClusterConnections::ClusterConnections(Env& env, std::vector<Address> bootstrap,
                                       ConnectionOptions options)
    : env_(env), bootstrap_(std::move(bootstrap)), options_(std::move(options)) {
  assert(!bootstrap_.empty());
}

ClusterConnections::Result<std::shared_ptr<KafkaConnection>> ClusterConnections::to(
    const Address& address) {
  const auto found = connections_.find(address);
  if (found != connections_.end()) {
    if (!found->second->broken()) return found->second;
    connections_.erase(found);
  }
  if (connections_.size() >= kConnectionsMax) {
    return std::unexpected(ClientError{
        .kind = ClientError::Kind::protocol,
        .message = "too many brokers to connect to (" + std::to_string(connections_.size()) + ")"});
  }
  auto connection = KafkaConnection::connect(env_, address, options_);
  if (!connection) return std::unexpected(connection.error());
  std::shared_ptr<KafkaConnection> shared = std::move(*connection);
  connections_[address] = shared;
  assert(!shared->broken());
  return shared;
}

ClusterConnections::Result<std::shared_ptr<KafkaConnection>> ClusterConnections::to_node(
    std::int32_t node_id) {
  const auto broker = brokers_.find(node_id);
  if (broker == brokers_.end()) {
    return std::unexpected(ClientError{
        .kind = ClientError::Kind::connection,
        .message = "broker " + std::to_string(node_id) + " is not in the cluster's metadata"});
  }
  return to(broker->second);
}

ClusterConnections::Result<std::shared_ptr<KafkaConnection>> ClusterConnections::any() {
  for (const auto& [address, connection] : connections_) {
    if (!connection->broken()) return connection;
  }
  std::vector<Address> candidates = bootstrap_;
  for (const auto& [node_id, address] : brokers_) candidates.push_back(address);
  std::optional<ClientError> last_error;
  for (const Address& address : candidates) {
    auto connection = to(address);
    if (connection) return connection;
    last_error = connection.error();
  }
  assert(last_error.has_value());  // the bootstrap list is never empty
  return std::unexpected(*last_error);
}

ClusterConnections::Result<ClusterMetadata> ClusterConnections::fetch_metadata(
    const std::optional<std::vector<std::string>>& topics) {
  auto connection = any();
  if (!connection) return std::unexpected(connection.error());
  const protocol::MessageSchema& schema = protocol::kMetadataSchema;
  auto version = (*connection)->version_for(schema);
  if (!version) return std::unexpected(version.error());
  StructValue request = KafkaConnection::new_request(schema);
  // v0 has no null topic list: an empty one means every topic there.
  if (!topics && *version >= 1) {
    request.set("topics", protocol::Null{});
  } else if (topics) {
    for (const std::string& topic : *topics) request.add("topics").set("name", topic);
  }
  request.set("allow_auto_topic_creation", false);
  auto response =
      (*connection)
          ->call_version(schema, *version, request, env_.deadline_after(options_.request_timeout));
  if (!response) return std::unexpected(response.error());
  ClusterMetadata metadata = ClusterMetadata::from_response(*response);
  if (!metadata.brokers.empty()) brokers_ = metadata.brokers;
  return metadata;
}

void ClusterConnections::close_all() {
  for (auto& [address, connection] : connections_) connection->close();
  connections_.clear();
  assert(connections_.empty());
}

}  // namespace sluice::client
