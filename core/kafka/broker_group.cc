// The consumer-group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
// OffsetCommit, OffsetFetch, DescribeGroups, ListGroups, DeleteGroups, OffsetDelete. Each
// handler translates between the wire form and GroupCoordinator (group_coordinator.h).
#include <cassert>
#include <map>

#include "core/kafka/broker.h"
#include "core/kafka/group_coordinator.h"
#include "core/protocol/messages.h"

namespace sluice::kafka {

using protocol::StructValue;
using protocol::Value;

namespace {

constexpr std::int8_t kGroupKeyType = 0;

StructValue new_response(const protocol::MessageSchema& schema) {
  return StructValue::with_defaults(schema.response);
}

Value int_field(std::int64_t value) {
  return Value(value);
}

Value nullable_string(const std::optional<std::string>& text) {
  return text ? Value(*text) : Value(protocol::Null{});
}

std::string to_string(const Bytes& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

Value to_bytes(std::string_view text) {
  const auto* data = reinterpret_cast<const std::byte*>(text.data());
  return Value(Bytes(data, data + text.size()));
}

// The partition entries of an offsets request, flattened: (topic, partition struct).
std::vector<OffsetCommitEntry> partitions_of(const StructValue& request,
                                             std::string_view partitions_field) {
  std::vector<OffsetCommitEntry> entries;
  for (const StructValue& topic : request.get_structs("topics")) {
    for (const StructValue& partition : topic.get_structs(partitions_field)) {
      OffsetCommitEntry entry;
      entry.topic = topic.get_string("name");
      entry.partition = static_cast<std::int32_t>(partition.get_int("partition_index"));
      entries.push_back(std::move(entry));
    }
  }
  return entries;
}

// Writes per-partition errors back in the request's topic order: topics[name, partitions[
// partition_index, error_code]].
void add_partition_errors(const std::vector<OffsetCommitEntry>& entries,
                          std::string_view topics_field, std::string_view partitions_field,
                          StructValue& response) {
  StructValue* topic = nullptr;
  for (const OffsetCommitEntry& entry : entries) {
    if (topic == nullptr || topic->get_string("name") != entry.topic) {
      topic = &response.add(topics_field);
      topic->set("name", Value(entry.topic));
    }
    StructValue& partition = topic->add(partitions_field);
    partition.set("partition_index", int_field(entry.partition));
    partition.set("error_code", int_field(entry.error));
  }
}

}  // namespace

StructValue Broker::handle_find_coordinator(std::int16_t version, const StructValue& request) {
  StructValue response = new_response(protocol::kFindCoordinatorSchema);
  const std::int64_t key_type = version >= 1 ? request.get_int("key_type") : kGroupKeyType;
  if (key_type != kGroupKeyType) {
    // Transactions (key type 1) are not implemented yet: no transaction coordinator exists.
    response.set("error_code", int_field(error::kCoordinatorNotAvailable));
    response.set("error_message", Value(std::string("Sluice has no transaction coordinator yet")));
    response.set("node_id", int_field(-1));
    response.set("host", Value(std::string()));
    response.set("port", int_field(-1));
    return response;
  }
  // Every group is coordinated here until __consumer_offsets is replicated across nodes.
  response.set("error_code", int_field(error::kNone));
  response.set("error_message", Value(protocol::Null{}));
  response.set("node_id", int_field(config_.node_id));
  response.set("host", Value(config_.advertised.host));
  response.set("port", int_field(config_.advertised.port));
  return response;
}

StructValue Broker::handle_join_group(std::int16_t version, const StructValue& request,
                                      const RequestContext& context) {
  StructValue response = new_response(protocol::kJoinGroupSchema);
  const std::string& group_id = request.get_string("group_id");
  group::JoinResponse joined;
  if (group_id.empty()) {
    joined.error = error::kInvalidGroupId;
    joined.member_id = request.get_string("member_id");
  } else {
    group::JoinRequest join;
    join.version = version;
    join.member_id = request.get_string("member_id");
    join.group_instance_id = request.get_nullable_string("group_instance_id");
    join.client_id = context.client_id;
    join.client_host = context.client_host;
    join.session_timeout_ms = static_cast<std::int32_t>(request.get_int("session_timeout_ms"));
    join.rebalance_timeout_ms = static_cast<std::int32_t>(request.get_int("rebalance_timeout_ms"));
    join.protocol_type = request.get_string("protocol_type");
    for (const StructValue& protocol : request.get_structs("protocols")) {
      join.protocols.push_back(
          {protocol.get_string("name"), to_string(protocol["metadata"].as_bytes())});
    }
    joined = groups_->join(group_id, std::move(join));
  }
  response.set("error_code", int_field(joined.error));
  response.set("generation_id", int_field(joined.generation));
  response.set("protocol_name", Value(joined.protocol_name));
  response.set("leader", Value(joined.leader));
  response.set("member_id", Value(joined.member_id));
  for (const group::JoinResponseMember& member : joined.members) {
    StructValue& out = response.add("members");
    out.set("member_id", Value(member.member_id));
    out.set("group_instance_id", nullable_string(member.group_instance_id));
    out.set("metadata", to_bytes(member.metadata));
  }
  return response;
}

StructValue Broker::handle_sync_group(std::int16_t /*version*/, const StructValue& request) {
  StructValue response = new_response(protocol::kSyncGroupSchema);
  group::SyncRequest sync;
  sync.generation = static_cast<std::int32_t>(request.get_int("generation_id"));
  sync.member_id = request.get_string("member_id");
  sync.group_instance_id = request.get_nullable_string("group_instance_id");
  for (const StructValue& assignment : request.get_structs("assignments")) {
    sync.assignments.emplace_back(assignment.get_string("member_id"),
                                  to_string(assignment["assignment"].as_bytes()));
  }
  const std::string& group_id = request.get_string("group_id");
  group::SyncResponse synced;
  if (group_id.empty()) {
    synced.error = error::kInvalidGroupId;
  } else {
    synced = groups_->sync(group_id, std::move(sync));
  }
  response.set("error_code", int_field(synced.error));
  response.set("assignment", to_bytes(synced.assignment));
  return response;
}

StructValue Broker::handle_heartbeat(std::int16_t /*version*/, const StructValue& request) {
  StructValue response = new_response(protocol::kHeartbeatSchema);
  group::HeartbeatRequest heartbeat;
  heartbeat.generation = static_cast<std::int32_t>(request.get_int("generation_id"));
  heartbeat.member_id = request.get_string("member_id");
  heartbeat.group_instance_id = request.get_nullable_string("group_instance_id");
  const std::string& group_id = request.get_string("group_id");
  const std::int16_t error = group_id.empty()
                                 ? error::kInvalidGroupId
                                 : groups_->heartbeat(group_id, std::move(heartbeat)).error;
  response.set("error_code", int_field(error));
  return response;
}

StructValue Broker::handle_leave_group(std::int16_t version, const StructValue& request) {
  StructValue response = new_response(protocol::kLeaveGroupSchema);
  group::LeaveRequest leave;
  if (version < 3) {
    leave.members.push_back({request.get_string("member_id"), std::nullopt});
  } else {
    for (const StructValue& member : request.get_structs("members")) {
      leave.members.push_back(
          {member.get_string("member_id"), member.get_nullable_string("group_instance_id")});
    }
  }
  const std::string& group_id = request.get_string("group_id");
  if (group_id.empty()) {
    response.set("error_code", int_field(error::kInvalidGroupId));
    return response;
  }
  const group::LeaveResponse left = groups_->leave(group_id, std::move(leave));
  // v0-2 report the one member's error at the top level (Kafka's LeaveGroupResponse does too).
  std::int16_t error = left.error;
  if (version < 3 && error == error::kNone && !left.members.empty())
    error = left.members.front().error;
  response.set("error_code", int_field(error));
  for (const group::LeaveMemberResult& member : left.members) {
    StructValue& out = response.add("members");
    out.set("member_id", Value(member.member_id));
    out.set("group_instance_id", nullable_string(member.group_instance_id));
    out.set("error_code", int_field(member.error));
  }
  return response;
}

StructValue Broker::handle_offset_commit(std::int16_t /*version*/, const StructValue& request) {
  StructValue response = new_response(protocol::kOffsetCommitSchema);
  std::vector<OffsetCommitEntry> entries = partitions_of(request, "partitions");
  std::size_t index = 0;
  for (const StructValue& topic : request.get_structs("topics")) {
    for (const StructValue& partition : topic.get_structs("partitions")) {
      OffsetCommitEntry& entry = entries[index++];
      entry.offset = partition.get_int("committed_offset");
      entry.leader_epoch = static_cast<std::int32_t>(partition.get_int("committed_leader_epoch"));
      entry.metadata = partition.get_nullable_string("committed_metadata");
    }
  }
  const std::string& group_id = request.get_string("group_id");
  if (group_id.empty()) {
    for (OffsetCommitEntry& entry : entries) entry.error = error::kInvalidGroupId;
  } else if (!entries.empty()) {
    groups_->commit_offsets(
        group_id, static_cast<std::int32_t>(request.get_int("generation_id_or_member_epoch")),
        request.get_string("member_id"), request.get_nullable_string("group_instance_id"), entries);
  }
  add_partition_errors(entries, "topics", "partitions", response);
  return response;
}

StructValue Broker::handle_offset_fetch(std::int16_t version, const StructValue& request) {
  StructValue response = new_response(protocol::kOffsetFetchSchema);
  const std::string& group_id = request.get_string("group_id");
  std::optional<std::vector<TopicPartitionKey>> wanted;
  const Value& topics = request["topics"];
  if (!topics.is_null()) {
    wanted.emplace();
    for (const StructValue& topic : topics.as_structs()) {
      for (const Value& partition : topic["partition_indexes"].as_array()) {
        wanted->emplace_back(topic.get_string("name"),
                             static_cast<std::int32_t>(partition.as_int()));
      }
    }
  }
  if (group_id.empty() && version >= 2) {
    response.set("error_code", int_field(error::kInvalidGroupId));
    return response;
  }
  StructValue* topic = nullptr;
  for (const auto& [key, committed] : groups_->fetch_offsets(group_id, wanted)) {
    if (topic == nullptr || topic->get_string("name") != key.first) {
      topic = &response.add("topics");
      topic->set("name", Value(key.first));
    }
    StructValue& partition = topic->add("partitions");
    partition.set("partition_index", int_field(key.second));
    partition.set("committed_offset", int_field(committed.offset));
    partition.set("committed_leader_epoch", int_field(committed.leader_epoch));
    partition.set("metadata",
                  committed.offset < 0 ? Value(std::string()) : Value(committed.metadata));
    partition.set("error_code", int_field(committed.error));
  }
  response.set("error_code", int_field(error::kNone));
  return response;
}

StructValue Broker::handle_describe_groups(std::int16_t /*version*/, const StructValue& request) {
  StructValue response = new_response(protocol::kDescribeGroupsSchema);
  for (const Value& requested : request["groups"].as_array()) {
    const std::string& group_id = requested.as_string();
    StructValue& out = response.add("groups");
    out.set("group_id", Value(group_id));
    const std::optional<group::GroupDescription> described = groups_->describe(group_id);
    if (!described) {
      // Kafka (before DescribeGroups v6) answers an unknown group as Dead, without an error.
      out.set("error_code", int_field(group_id.empty() ? error::kInvalidGroupId : error::kNone));
      out.set("group_state", Value(std::string(group::to_string(group::GroupState::dead))));
      out.set("protocol_type", Value(std::string()));
      out.set("protocol_data", Value(std::string()));
      continue;
    }
    out.set("error_code", int_field(error::kNone));
    out.set("group_state", Value(described->state));
    out.set("protocol_type", Value(described->protocol_type));
    out.set("protocol_data", Value(described->protocol));
    for (const group::DescribedMember& member : described->members) {
      StructValue& described_member = out.add("members");
      described_member.set("member_id", Value(member.member_id));
      described_member.set("group_instance_id", nullable_string(member.group_instance_id));
      described_member.set("client_id", Value(member.client_id));
      described_member.set("client_host", Value(member.client_host));
      described_member.set("member_metadata", to_bytes(member.metadata));
      described_member.set("member_assignment", to_bytes(member.assignment));
    }
  }
  return response;
}

StructValue Broker::handle_list_groups(std::int16_t /*version*/, const StructValue& /*request*/) {
  StructValue response = new_response(protocol::kListGroupsSchema);
  response.set("error_code", int_field(error::kNone));
  for (const ListedGroup& listed : groups_->list()) {
    StructValue& out = response.add("groups");
    out.set("group_id", Value(listed.group_id));
    out.set("protocol_type", Value(listed.protocol_type));
  }
  return response;
}

StructValue Broker::handle_delete_groups(std::int16_t /*version*/, const StructValue& request) {
  StructValue response = new_response(protocol::kDeleteGroupsSchema);
  for (const Value& requested : request["groups_names"].as_array()) {
    const std::string& group_id = requested.as_string();
    StructValue& result = response.add("results");
    result.set("group_id", Value(group_id));
    result.set("error_code", int_field(group_id.empty() ? error::kInvalidGroupId
                                                        : groups_->delete_group(group_id)));
  }
  return response;
}

StructValue Broker::handle_offset_delete(std::int16_t /*version*/, const StructValue& request) {
  StructValue response = new_response(protocol::kOffsetDeleteSchema);
  const std::string& group_id = request.get_string("group_id");
  std::vector<OffsetCommitEntry> entries = partitions_of(request, "partitions");
  const std::int16_t error =
      group_id.empty() ? error::kInvalidGroupId : groups_->delete_offsets(group_id, entries);
  response.set("error_code", int_field(error));
  if (error == error::kNone) add_partition_errors(entries, "topics", "partitions", response);
  return response;
}

}  // namespace sluice::kafka
