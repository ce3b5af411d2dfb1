// Group coordination APIs: OffsetCommit (key 8), OffsetFetch (9), FindCoordinator (10),
// JoinGroup (11), Heartbeat (12), LeaveGroup (13), SyncGroup (14), DescribeGroups (15),
// ListGroups (16), DeleteGroups (42) and OffsetDelete (47). None is flexible within the
// implemented ranges.
#include "core/protocol/messages.h"

namespace sluice::protocol {

namespace {

// ---- OffsetCommit: v2-7 advertised (flexible from 8) ----
// The tables also describe v0-1 (no generation/member before v1, CommitTimestamp only in v1), so
// widening `valid` to 0-7 needs no table change.

constexpr Field kOffsetCommitRequestPartition[] = {
    {.name = "partition_index", .type = FieldType::int32},
    {.name = "committed_offset", .type = FieldType::int64},
    {.name = "committed_leader_epoch", .type = FieldType::int32, .versions = since(6), .default_int = -1},
    {.name = "commit_timestamp", .type = FieldType::int64, .versions = between(1, 1), .default_int = -1},
    {.name = "committed_metadata", .type = FieldType::string, .nullable = kAllVersions},
};

constexpr Field kOffsetCommitRequestTopic[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "partitions", .type = FieldType::array, .fields = fields_of(kOffsetCommitRequestPartition)},
};

constexpr Field kOffsetCommitRequest[] = {
    {.name = "group_id", .type = FieldType::string},
    {.name = "generation_id_or_member_epoch", .type = FieldType::int32, .versions = since(1), .default_int = -1},
    {.name = "member_id", .type = FieldType::string, .versions = since(1)},
    {.name = "group_instance_id", .type = FieldType::string, .versions = since(7), .nullable = since(7)},
    {.name = "retention_time_ms", .type = FieldType::int64, .versions = between(2, 4), .default_int = -1},
    {.name = "topics", .type = FieldType::array, .fields = fields_of(kOffsetCommitRequestTopic)},
};

constexpr Field kOffsetCommitResponsePartition[] = {
    {.name = "partition_index", .type = FieldType::int32},
    {.name = "error_code", .type = FieldType::int16},
};

constexpr Field kOffsetCommitResponseTopic[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "partitions", .type = FieldType::array, .fields = fields_of(kOffsetCommitResponsePartition)},
};

constexpr Field kOffsetCommitResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32, .versions = since(3)},
    {.name = "topics", .type = FieldType::array, .fields = fields_of(kOffsetCommitResponseTopic)},
};

// ---- OffsetFetch: v1-5 (flexible from 6) ----
// v7's RequireStable and v8's per-group batching are outside this range.

constexpr Field kOffsetFetchRequestTopic[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "partition_indexes", .type = FieldType::array, .element = FieldType::int32},
};

constexpr Field kOffsetFetchRequest[] = {
    {.name = "group_id", .type = FieldType::string},
    // v2+: null means every partition the group has committed.
    {.name = "topics", .type = FieldType::array, .nullable = since(2), .fields = fields_of(kOffsetFetchRequestTopic)},
};

constexpr Field kOffsetFetchResponsePartition[] = {
    {.name = "partition_index", .type = FieldType::int32},
    {.name = "committed_offset", .type = FieldType::int64},
    {.name = "committed_leader_epoch", .type = FieldType::int32, .versions = since(5), .default_int = -1},
    {.name = "metadata", .type = FieldType::string, .nullable = kAllVersions},
    {.name = "error_code", .type = FieldType::int16},
};

constexpr Field kOffsetFetchResponseTopic[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "partitions", .type = FieldType::array, .fields = fields_of(kOffsetFetchResponsePartition)},
};

constexpr Field kOffsetFetchResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32, .versions = since(3)},
    {.name = "topics", .type = FieldType::array, .fields = fields_of(kOffsetFetchResponseTopic)},
    {.name = "error_code", .type = FieldType::int16, .versions = since(2)},
};

// ---- FindCoordinator: v0-2 (flexible from 3) ----

constexpr Field kFindCoordinatorRequest[] = {
    {.name = "key", .type = FieldType::string},
    {.name = "key_type", .type = FieldType::int8, .versions = since(1)},  // 0 group, 1 transaction
};

constexpr Field kFindCoordinatorResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32, .versions = since(1)},
    {.name = "error_code", .type = FieldType::int16},
    {.name = "error_message", .type = FieldType::string, .versions = since(1), .nullable = since(1)},
    {.name = "node_id", .type = FieldType::int32},
    {.name = "host", .type = FieldType::string},
    {.name = "port", .type = FieldType::int32},
};

// ---- JoinGroup: v0-5 (flexible from 6) ----

constexpr Field kJoinGroupRequestProtocol[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "metadata", .type = FieldType::bytes},
};

constexpr Field kJoinGroupRequest[] = {
    {.name = "group_id", .type = FieldType::string},
    {.name = "session_timeout_ms", .type = FieldType::int32},
    {.name = "rebalance_timeout_ms", .type = FieldType::int32, .versions = since(1), .default_int = -1},
    {.name = "member_id", .type = FieldType::string},
    {.name = "group_instance_id", .type = FieldType::string, .versions = since(5), .nullable = since(5)},
    {.name = "protocol_type", .type = FieldType::string},
    {.name = "protocols", .type = FieldType::array, .fields = fields_of(kJoinGroupRequestProtocol)},
};

constexpr Field kJoinGroupResponseMember[] = {
    {.name = "member_id", .type = FieldType::string},
    {.name = "group_instance_id", .type = FieldType::string, .versions = since(5), .nullable = since(5)},
    {.name = "metadata", .type = FieldType::bytes},
};

constexpr Field kJoinGroupResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32, .versions = since(2)},
    {.name = "error_code", .type = FieldType::int16},
    {.name = "generation_id", .type = FieldType::int32, .default_int = -1},
    {.name = "protocol_name", .type = FieldType::string},  // nullable only from v7
    {.name = "leader", .type = FieldType::string},
    {.name = "member_id", .type = FieldType::string},
    {.name = "members", .type = FieldType::array, .fields = fields_of(kJoinGroupResponseMember)},
};

// ---- Heartbeat: v0-3 (flexible from 4) ----

constexpr Field kHeartbeatRequest[] = {
    {.name = "group_id", .type = FieldType::string},
    {.name = "generation_id", .type = FieldType::int32},
    {.name = "member_id", .type = FieldType::string},
    {.name = "group_instance_id", .type = FieldType::string, .versions = since(3), .nullable = since(3)},
};

constexpr Field kHeartbeatResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32, .versions = since(1)},
    {.name = "error_code", .type = FieldType::int16},
};

// ---- LeaveGroup: v0-3 (flexible from 4) ----
// v0-2 leave one member (member_id); v3 leaves a batch (members).

constexpr Field kLeaveGroupMemberIdentity[] = {
    {.name = "member_id", .type = FieldType::string},
    {.name = "group_instance_id", .type = FieldType::string, .nullable = kAllVersions},
};

constexpr Field kLeaveGroupRequest[] = {
    {.name = "group_id", .type = FieldType::string},
    {.name = "member_id", .type = FieldType::string, .versions = until(2)},
    {.name = "members", .type = FieldType::array, .versions = since(3), .fields = fields_of(kLeaveGroupMemberIdentity)},
};

constexpr Field kLeaveGroupMemberResponse[] = {
    {.name = "member_id", .type = FieldType::string},
    {.name = "group_instance_id", .type = FieldType::string, .nullable = kAllVersions},
    {.name = "error_code", .type = FieldType::int16},
};

constexpr Field kLeaveGroupResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32, .versions = since(1)},
    {.name = "error_code", .type = FieldType::int16},
    {.name = "members", .type = FieldType::array, .versions = since(3), .fields = fields_of(kLeaveGroupMemberResponse)},
};

// ---- SyncGroup: v0-3 (flexible from 4) ----

constexpr Field kSyncGroupRequestAssignment[] = {
    {.name = "member_id", .type = FieldType::string},
    {.name = "assignment", .type = FieldType::bytes},
};

constexpr Field kSyncGroupRequest[] = {
    {.name = "group_id", .type = FieldType::string},
    {.name = "generation_id", .type = FieldType::int32},
    {.name = "member_id", .type = FieldType::string},
    {.name = "group_instance_id", .type = FieldType::string, .versions = since(3), .nullable = since(3)},
    {.name = "assignments", .type = FieldType::array, .fields = fields_of(kSyncGroupRequestAssignment)},
};

constexpr Field kSyncGroupResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32, .versions = since(1)},
    {.name = "error_code", .type = FieldType::int16},
    {.name = "assignment", .type = FieldType::bytes},
};

// ---- DescribeGroups: v0-4 (flexible from 5) ----

constexpr Field kDescribeGroupsRequest[] = {
    {.name = "groups", .type = FieldType::array, .element = FieldType::string},
    {.name = "include_authorized_operations", .type = FieldType::boolean, .versions = since(3)},
};

constexpr Field kDescribedGroupMember[] = {
    {.name = "member_id", .type = FieldType::string},
    {.name = "group_instance_id", .type = FieldType::string, .versions = since(4), .nullable = since(4)},
    {.name = "client_id", .type = FieldType::string},
    {.name = "client_host", .type = FieldType::string},
    {.name = "member_metadata", .type = FieldType::bytes},
    {.name = "member_assignment", .type = FieldType::bytes},
};

constexpr Field kDescribedGroup[] = {
    {.name = "error_code", .type = FieldType::int16},
    {.name = "group_id", .type = FieldType::string},
    {.name = "group_state", .type = FieldType::string},
    {.name = "protocol_type", .type = FieldType::string},
    {.name = "protocol_data", .type = FieldType::string},
    {.name = "members", .type = FieldType::array, .fields = fields_of(kDescribedGroupMember)},
    {.name = "authorized_operations", .type = FieldType::int32, .versions = since(3), .default_int = INT32_MIN},
};

constexpr Field kDescribeGroupsResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32, .versions = since(1)},
    {.name = "groups", .type = FieldType::array, .fields = fields_of(kDescribedGroup)},
};

// ---- ListGroups: v0-2 (flexible from 3) ----
// The request body is empty below v4 (StatesFilter v4+, TypesFilter v5+).

constexpr Field kListedGroup[] = {
    {.name = "group_id", .type = FieldType::string},
    {.name = "protocol_type", .type = FieldType::string},
};

constexpr Field kListGroupsResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32, .versions = since(1)},
    {.name = "error_code", .type = FieldType::int16},
    {.name = "groups", .type = FieldType::array, .fields = fields_of(kListedGroup)},
};

// ---- DeleteGroups: v0-1 (flexible from 2) ----

constexpr Field kDeleteGroupsRequest[] = {
    {.name = "groups_names", .type = FieldType::array, .element = FieldType::string},
};

constexpr Field kDeletableGroupResult[] = {
    {.name = "group_id", .type = FieldType::string},
    {.name = "error_code", .type = FieldType::int16},
};

constexpr Field kDeleteGroupsResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32},
    {.name = "results", .type = FieldType::array, .fields = fields_of(kDeletableGroupResult)},
};

// ---- OffsetDelete: v0 (never flexible) ----

constexpr Field kOffsetDeleteRequestPartition[] = {
    {.name = "partition_index", .type = FieldType::int32},
};

constexpr Field kOffsetDeleteRequestTopic[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "partitions", .type = FieldType::array, .fields = fields_of(kOffsetDeleteRequestPartition)},
};

constexpr Field kOffsetDeleteRequest[] = {
    {.name = "group_id", .type = FieldType::string},
    {.name = "topics", .type = FieldType::array, .fields = fields_of(kOffsetDeleteRequestTopic)},
};

constexpr Field kOffsetDeleteResponsePartition[] = {
    {.name = "partition_index", .type = FieldType::int32},
    {.name = "error_code", .type = FieldType::int16},
};

constexpr Field kOffsetDeleteResponseTopic[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "partitions", .type = FieldType::array, .fields = fields_of(kOffsetDeleteResponsePartition)},
};

constexpr Field kOffsetDeleteResponse[] = {
    {.name = "error_code", .type = FieldType::int16},
    {.name = "throttle_time_ms", .type = FieldType::int32},
    {.name = "topics", .type = FieldType::array, .fields = fields_of(kOffsetDeleteResponseTopic)},
};

}  // namespace

const MessageSchema kOffsetCommitSchema{.api_key = api::kOffsetCommit,
                                        .name = "OffsetCommit",
                                        .valid = between(2, 7),
                                        .flexible_from = 8,
                                        .request = fields_of(kOffsetCommitRequest),
                                        .response = fields_of(kOffsetCommitResponse)};

const MessageSchema kOffsetFetchSchema{.api_key = api::kOffsetFetch,
                                       .name = "OffsetFetch",
                                       .valid = between(1, 5),
                                       .flexible_from = 6,
                                       .request = fields_of(kOffsetFetchRequest),
                                       .response = fields_of(kOffsetFetchResponse)};

const MessageSchema kFindCoordinatorSchema{.api_key = api::kFindCoordinator,
                                           .name = "FindCoordinator",
                                           .valid = between(0, 2),
                                           .flexible_from = 3,
                                           .request = fields_of(kFindCoordinatorRequest),
                                           .response = fields_of(kFindCoordinatorResponse)};

const MessageSchema kJoinGroupSchema{.api_key = api::kJoinGroup,
                                     .name = "JoinGroup",
                                     .valid = between(0, 5),
                                     .flexible_from = 6,
                                     .request = fields_of(kJoinGroupRequest),
                                     .response = fields_of(kJoinGroupResponse)};

const MessageSchema kHeartbeatSchema{.api_key = api::kHeartbeat,
                                     .name = "Heartbeat",
                                     .valid = between(0, 3),
                                     .flexible_from = 4,
                                     .request = fields_of(kHeartbeatRequest),
                                     .response = fields_of(kHeartbeatResponse)};

const MessageSchema kLeaveGroupSchema{.api_key = api::kLeaveGroup,
                                      .name = "LeaveGroup",
                                      .valid = between(0, 3),
                                      .flexible_from = 4,
                                      .request = fields_of(kLeaveGroupRequest),
                                      .response = fields_of(kLeaveGroupResponse)};

const MessageSchema kSyncGroupSchema{.api_key = api::kSyncGroup,
                                     .name = "SyncGroup",
                                     .valid = between(0, 3),
                                     .flexible_from = 4,
                                     .request = fields_of(kSyncGroupRequest),
                                     .response = fields_of(kSyncGroupResponse)};

const MessageSchema kDescribeGroupsSchema{.api_key = api::kDescribeGroups,
                                          .name = "DescribeGroups",
                                          .valid = between(0, 4),
                                          .flexible_from = 5,
                                          .request = fields_of(kDescribeGroupsRequest),
                                          .response = fields_of(kDescribeGroupsResponse)};

const MessageSchema kListGroupsSchema{.api_key = api::kListGroups,
                                      .name = "ListGroups",
                                      .valid = between(0, 2),
                                      .flexible_from = 3,
                                      .request = Fields{},
                                      .response = fields_of(kListGroupsResponse)};

const MessageSchema kDeleteGroupsSchema{.api_key = api::kDeleteGroups,
                                        .name = "DeleteGroups",
                                        .valid = between(0, 1),
                                        .flexible_from = 2,
                                        .request = fields_of(kDeleteGroupsRequest),
                                        .response = fields_of(kDeleteGroupsResponse)};

const MessageSchema kOffsetDeleteSchema{.api_key = api::kOffsetDelete,
                                        .name = "OffsetDelete",
                                        .valid = between(0, 0),
                                        .request = fields_of(kOffsetDeleteRequest),
                                        .response = fields_of(kOffsetDeleteResponse)};

}  // namespace sluice::protocol
