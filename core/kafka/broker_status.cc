#include "core/kafka/broker_status.h"

#include <cassert>
#include <map>
#include <memory>

#include "core/group/offsets_records.h"
#include "core/kafka/broker.h"
#include "core/kafka/group_coordinator.h"

namespace sluice::kafka {

namespace {

// Group members' assignments and subscriptions are the consumer protocol's bytes only for this
// protocol type (Kafka Connect and others write their own formats).
constexpr std::string_view kConsumerProtocolType = "consumer";

PartitionStatus partition_status(const Broker& broker, const Partition& partition) {
  PartitionStatus status;
  status.partition = partition.index;
  status.leader = broker.config().node_id;
  if (const storage::PartitionLog* log = partition.log.get(); log != nullptr) {
    status.log_start_offset = log->log_start_offset();
    status.log_end_offset = log->high_watermark();
    status.size_bytes = log->size_bytes();
    status.segment_count = log->segment_count();
  }
  assert(status.log_start_offset <= status.log_end_offset);
  return status;
}

TopicStatus make_topic_status(const Broker& broker, const Topic& topic) {
  TopicStatus status;
  status.name = topic.name;
  status.internal = is_internal_topic(topic.name);
  status.config_overrides = topic.config_overrides;
  status.partitions.reserve(topic.partitions.size());
  for (const std::shared_ptr<Partition>& partition : topic.partitions) {
    status.partitions.push_back(partition_status(broker, *partition));
  }
  return status;
}

GroupMemberStatus member_status(const group::DescribedMember& member, bool consumer_protocol) {
  GroupMemberStatus status{.member_id = member.member_id,
                           .group_instance_id = member.group_instance_id,
                           .client_id = member.client_id,
                           .client_host = member.client_host,
                           .subscribed_topics = std::nullopt,
                           .assignment = std::nullopt};
  // DescribeGroups' view leaves both empty unless the group is Stable.
  if (!consumer_protocol || (member.metadata.empty() && member.assignment.empty())) return status;
  if (auto subscription = group::decode_consumer_subscription(member.metadata)) {
    status.subscribed_topics = std::move(subscription->topics);
  }
  if (auto assignment = group::decode_consumer_assignment(member.assignment)) {
    status.assignment = std::move(assignment->partitions);
  }
  return status;
}

// The committed partitions and the assigned ones, with their log end offsets and lag.
std::vector<GroupOffsetStatus> group_offsets(Broker& broker, const std::string& group_id,
                                             const std::vector<GroupMemberStatus>& members) {
  std::map<TopicPartitionKey, GroupOffsetStatus> offsets;
  auto entry = [&offsets](const std::string& topic, std::int32_t partition) -> GroupOffsetStatus& {
    GroupOffsetStatus& status = offsets[{topic, partition}];
    status.topic = topic;
    status.partition = partition;
    return status;
  };
  for (const auto& [key, committed] : broker.groups().fetch_offsets(group_id, std::nullopt)) {
    if (committed.offset >= 0) entry(key.first, key.second).committed_offset = committed.offset;
  }
  for (const GroupMemberStatus& member : members) {
    if (!member.assignment) continue;
    for (const auto& [topic, partitions] : *member.assignment) {
      for (const std::int32_t partition : partitions) {
        entry(topic, partition).member_id = member.member_id;
      }
    }
  }
  std::vector<GroupOffsetStatus> result;
  result.reserve(offsets.size());
  for (auto& [key, status] : offsets) {
    if (const std::shared_ptr<Partition> partition = broker.topics().find(key.first, key.second);
        partition != nullptr && partition->log != nullptr) {
      status.log_end_offset = partition->log->high_watermark();
    }
    if (status.committed_offset && status.log_end_offset) {
      status.lag = *status.log_end_offset - *status.committed_offset;
    }
    result.push_back(std::move(status));
  }
  return result;
}

GroupStatus make_group_status(Broker& broker, const std::string& group_id,
                              group::GroupDescription description) {
  GroupStatus status{.group_id = group_id,
                     .state = std::move(description.state),
                     .protocol_type = std::move(description.protocol_type),
                     .protocol = std::move(description.protocol),
                     .generation = std::nullopt,
                     .leader = std::nullopt,
                     .members = {},
                     .offsets = {}};
  if (const group::Group* machine = broker.groups().find_machine(group_id)) {
    status.generation = machine->generation();
    if (!machine->leader().empty()) status.leader = machine->leader();
  }
  const bool consumer_protocol = status.protocol_type == kConsumerProtocolType;
  status.members.reserve(description.members.size());
  for (const group::DescribedMember& member : description.members) {
    status.members.push_back(member_status(member, consumer_protocol));
  }
  status.offsets = group_offsets(broker, group_id, status.members);
  return status;
}

}  // namespace

BrokerStatus broker_status(Broker& broker) {
  const BrokerConfig& config = broker.config();
  return BrokerStatus{.node_id = config.node_id,
                      .host = config.advertised.host,
                      .port = config.advertised.port,
                      .cluster_id = config.cluster_id,
                      .data_directory = config.data_dir,
                      .ready = broker.ready(),
                      .connections = broker.connections_open(),
                      .request_logging = broker.request_logging()};
}

std::vector<TopicStatus> topic_statuses(Broker& broker) {
  std::vector<TopicStatus> statuses;
  statuses.reserve(broker.topics().topics().size());
  for (const auto& [name, topic] : broker.topics().topics()) {
    statuses.push_back(make_topic_status(broker, *topic));
  }
  return statuses;
}

std::optional<TopicStatus> topic_status(Broker& broker, std::string_view name) {
  const Topic* topic = broker.topics().find(name);
  if (topic == nullptr) return std::nullopt;
  return make_topic_status(broker, *topic);
}

std::vector<GroupStatus> group_statuses(Broker& broker) {
  std::vector<GroupStatus> statuses;
  for (const ListedGroup& listed : broker.groups().list()) {
    if (auto status = group_status(broker, listed.group_id)) statuses.push_back(std::move(*status));
  }
  return statuses;
}

std::optional<GroupStatus> group_status(Broker& broker, std::string_view group_id) {
  const std::string id(group_id);
  std::optional<group::GroupDescription> description = broker.groups().describe(id);
  if (!description) return std::nullopt;
  return make_group_status(broker, id, std::move(*description));
}

}  // namespace sluice::kafka
