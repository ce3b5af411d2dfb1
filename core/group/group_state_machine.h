#pragma once
// One consumer group under the classic protocol (JoinGroup / SyncGroup / Heartbeat / LeaveGroup /
// OffsetCommit checks): a pure state machine, no IO, no clock, no randomness (DESIGN.md rule 4).
// Kafka's reference: GroupCoordinator, GroupMetadata and MemberMetadata (3.9); the rules are
// ../shared/PROTOCOL.md §4.
//
// Shape (etcd/raft): every input is a method call carrying the current time `now_ms`; every output
// is an Effect value. A request carries a caller-chosen RequestToken; its response is an Effect
// addressed by that token, returned either by the same call (errors, MEMBER_ID_REQUIRED, Stable
// syncs) or by a later call (a parked JoinGroup answered when the join phase completes, a parked
// SyncGroup answered when the leader's assignment arrives). Every token is answered exactly once.
// Effects come in order: a PersistGroup precedes the responses that depend on it, so a caller that
// writes the snapshot before sending the following responses gets Kafka's "persist, then answer".
// The caller calls tick(now_ms) at next_deadline_ms() (or later: time jumps are fine).
// Single-threaded, like everything in core/.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sluice::group {

// Opaque subscription / assignment bytes (cooperative-sticky lives entirely inside them).
using Bytes = std::string;
using RequestToken = std::uint64_t;

// Kafka error codes this machine answers.
namespace error_code {
inline constexpr std::int16_t none = 0;
inline constexpr std::int16_t not_coordinator = 16;
inline constexpr std::int16_t illegal_generation = 22;
inline constexpr std::int16_t inconsistent_group_protocol = 23;
inline constexpr std::int16_t unknown_member_id = 25;
inline constexpr std::int16_t invalid_session_timeout = 26;
inline constexpr std::int16_t rebalance_in_progress = 27;
inline constexpr std::int16_t member_id_required = 79;
inline constexpr std::int16_t group_max_size_reached = 81;
inline constexpr std::int16_t fenced_instance_id = 82;
}  // namespace error_code

inline constexpr std::int32_t kNoGeneration = -1;

struct GroupConfig {
  // group.min.session.timeout.ms / group.max.session.timeout.ms.
  std::int32_t session_timeout_ms_min = 6'000;
  std::int32_t session_timeout_ms_max = 1'800'000;
  // group.initial.rebalance.delay.ms.
  std::int32_t initial_rebalance_delay_ms = 3'000;
  // GroupCoordinator.NewMemberJoinTimeoutMs: a brand-new member parked in a join is dropped after
  // this long, so clients that disconnect mid-rebalance do not pile up as defunct members.
  std::int32_t new_member_join_timeout_ms = 300'000;
  // group.max.size.
  std::int32_t group_size_max = 0x7fff'ffff;
};

enum class GroupState : std::uint8_t { empty, preparing_rebalance, completing_rebalance, stable, dead };
// Kafka's names, as DescribeGroups and ListGroups report them.
std::string_view to_string(GroupState state);

struct Protocol {
  std::string name;
  Bytes metadata;
  bool operator==(const Protocol&) const = default;
};

struct JoinRequest {
  RequestToken token = 0;
  std::int16_t version = 0;
  std::string member_id;  // empty: a new member
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  std::int32_t session_timeout_ms = 0;
  std::int32_t rebalance_timeout_ms = -1;  // v0 sends none: the session timeout is used
  std::string protocol_type;
  std::vector<Protocol> protocols;  // the member's preference order
};

struct JoinResponseMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  Bytes metadata;
  bool operator==(const JoinResponseMember&) const = default;
};

struct JoinResponse {
  RequestToken token = 0;
  std::int16_t error = error_code::none;
  std::int32_t generation = kNoGeneration;
  std::string protocol_type;
  std::string protocol_name;
  std::string leader;
  bool skip_assignment = false;  // v9+ (KIP-814): a static leader rejoined a Stable group
  std::string member_id;
  std::vector<JoinResponseMember> members;  // the leader's only
};

struct SyncRequest {
  RequestToken token = 0;
  std::int32_t generation = kNoGeneration;
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::optional<std::string> protocol_type;  // v5+
  std::optional<std::string> protocol_name;  // v5+
  std::vector<std::pair<std::string, Bytes>> assignments;  // the leader's only
};

struct SyncResponse {
  RequestToken token = 0;
  std::int16_t error = error_code::none;
  std::string protocol_type;
  std::string protocol_name;
  Bytes assignment;
};

struct HeartbeatRequest {
  RequestToken token = 0;
  std::int32_t generation = kNoGeneration;
  std::string member_id;
  std::optional<std::string> group_instance_id;
};

struct HeartbeatResponse {
  RequestToken token = 0;
  std::int16_t error = error_code::none;
};

struct LeaveMember {
  std::string member_id;  // may be empty with an instance id (v3+)
  std::optional<std::string> group_instance_id;
};

struct LeaveRequest {
  RequestToken token = 0;
  std::vector<LeaveMember> members;  // v0-2: exactly one
};

struct LeaveMemberResult {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::int16_t error = error_code::none;
};

struct LeaveResponse {
  RequestToken token = 0;
  std::int16_t error = error_code::none;
  std::vector<LeaveMemberResult> members;
};

// What Kafka's GroupMetadataValue stores; written to __consumer_offsets by the caller.
struct MemberSnapshot {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  std::int32_t rebalance_timeout_ms = 0;
  std::int32_t session_timeout_ms = 0;
  Bytes subscription;  // metadata for the selected protocol
  Bytes assignment;
  bool operator==(const MemberSnapshot&) const = default;
};

struct GroupSnapshot {
  std::string protocol_type;
  std::int32_t generation = 0;
  std::optional<std::string> protocol_name;
  std::optional<std::string> leader;
  std::int64_t current_state_timestamp_ms = 0;
  std::vector<MemberSnapshot> members;
  bool operator==(const GroupSnapshot&) const = default;
};

struct PersistGroup {
  GroupSnapshot snapshot;
};

using Effect = std::variant<JoinResponse, SyncResponse, HeartbeatResponse, LeaveResponse, PersistGroup>;
using Effects = std::vector<Effect>;

// DescribeGroups' view (GroupMetadata.summary): protocol, metadata and assignment only when Stable.
struct DescribedMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  Bytes metadata;
  Bytes assignment;
};

struct GroupDescription {
  std::string state;
  std::string protocol_type;
  std::string protocol;
  std::vector<DescribedMember> members;
};

class Group {
 public:
  // member_id_seed makes generated member ids unique across restarts (pass Env::random()); the
  // ids are a deterministic function of it, so simulation replays them exactly.
  Group(std::string group_id, GroupConfig config, std::uint64_t member_id_seed);

  // Kafka's loadGroup: Stable when the snapshot has members, else Empty; each member's session
  // starts at now_ms.
  static Group restore(std::string group_id, GroupConfig config, std::uint64_t member_id_seed,
                       const GroupSnapshot& snapshot, std::int64_t now_ms);

  Effects join(const JoinRequest& request, std::int64_t now_ms);
  Effects sync(const SyncRequest& request, std::int64_t now_ms);
  Effects heartbeat(const HeartbeatRequest& request, std::int64_t now_ms);
  Effects leave(const LeaveRequest& request, std::int64_t now_ms);
  // Fires every timer due at or before now_ms, earliest first: pending-member and session
  // expiries, the join phase's (initial) rebalance delay, the sync phase's deadline.
  Effects tick(std::int64_t now_ms);
  // The group was deleted or its partition emigrated: parked requests get NOT_COORDINATOR.
  Effects mark_dead();

  // May an OffsetCommit with these fields be applied? 0 or a Kafka error code. An accepted commit
  // from a member counts as a heartbeat (hence now_ms).
  std::int16_t commit_check(std::int32_t generation, std::string_view member_id,
                            const std::optional<std::string>& group_instance_id, std::int64_t now_ms);

  // The earliest time tick() has something to do, if any.
  std::optional<std::int64_t> next_deadline_ms() const;

  GroupState state() const { return state_; }
  std::int32_t generation() const { return generation_; }
  const std::string& group_id() const { return group_id_; }
  const std::string& leader() const { return leader_; }
  const std::optional<std::string>& protocol_name() const { return protocol_name_; }
  std::size_t member_count() const { return members_.size(); }
  bool has_member(std::string_view member_id) const { return find_member(member_id) != nullptr; }
  // The member's current assignment; nullopt when it is not a member.
  std::optional<Bytes> assignment_of(std::string_view member_id) const;
  GroupDescription describe() const;
  GroupSnapshot snapshot() const;

 private:
  struct Member {
    std::string member_id;
    std::optional<std::string> group_instance_id;
    std::string client_id;
    std::string client_host;
    std::int32_t rebalance_timeout_ms = 0;
    std::int32_t session_timeout_ms = 0;
    std::string protocol_type;
    std::vector<Protocol> protocols;
    Bytes assignment;
    std::optional<RequestToken> awaiting_join;
    std::optional<RequestToken> awaiting_sync;
    std::int16_t join_version = 0;
    bool is_new = false;
    std::optional<std::int64_t> heartbeat_deadline_ms;
  };
  // The join phase's timer: Kafka's DelayedJoin, or InitialDelayedJoin for a group that was Empty.
  struct JoinTimer {
    std::int64_t deadline_ms = 0;
    bool initial = false;
    std::int64_t initial_remaining_ms = 0;
  };

  Member* find_member(std::string_view member_id);
  const Member* find_member(std::string_view member_id) const;
  std::optional<std::string> static_member_id(const std::optional<std::string>& instance_id) const;
  bool is_static_member_fenced(const std::optional<std::string>& instance_id, std::string_view member_id) const;
  bool supports_protocols(const std::string& protocol_type, const std::vector<Protocol>& protocols) const;
  std::string select_protocol() const;
  std::int32_t rebalance_timeout_ms() const;
  std::string generate_member_id(const std::string& prefix);
  bool all_members_joined() const;

  JoinResponse join_error(const JoinRequest& request, std::int16_t error) const;
  JoinResponse current_generation_response(const Member& member, RequestToken token, bool with_members) const;
  std::vector<JoinResponseMember> current_member_metadata() const;

  void join_new_member(const JoinRequest& request, std::int64_t now_ms, Effects& effects);
  void join_static_new_member(const JoinRequest& request, std::int64_t now_ms, Effects& effects);
  void join_current_member(const JoinRequest& request, std::int64_t now_ms, Effects& effects);
  void replace_static_member(const JoinRequest& request, const std::string& old_member_id,
                             std::int64_t now_ms, Effects& effects);
  void add_member_and_rebalance(const JoinRequest& request, std::string member_id, std::int64_t now_ms,
                                Effects& effects);
  void update_member(Member& member, const JoinRequest& request, Effects& effects);
  void update_member_and_rebalance(Member& member, const JoinRequest& request, std::int64_t now_ms,
                                   Effects& effects);

  std::int16_t sync_error(const SyncRequest& request) const;
  void maybe_prepare_rebalance(std::int64_t now_ms, Effects& effects);
  void prepare_rebalance(std::int64_t now_ms, Effects& effects);
  void try_complete_join(std::int64_t now_ms, Effects& effects);
  void complete_join(std::int64_t now_ms, Effects& effects);
  void init_next_generation(std::int64_t now_ms);
  void propagate_assignment(std::int16_t error, std::int64_t now_ms, Effects& effects);

  void remove_member(std::string_view member_id);
  void remove_member_and_update_group(std::string_view member_id, std::int64_t now_ms, Effects& effects);
  void remove_pending_member_and_update_group(std::string_view member_id, std::int64_t now_ms, Effects& effects);
  void schedule_heartbeat(Member& member, std::int64_t now_ms, std::int64_t timeout_ms) const;
  bool fire_one_timer(std::int64_t now_ms, Effects& effects);
  void expire_pending_sync(std::int64_t now_ms, Effects& effects);

  std::string group_id_;
  GroupConfig config_;
  std::uint64_t member_id_seed_;
  std::uint64_t member_id_counter_ = 0;

  GroupState state_ = GroupState::empty;
  std::int32_t generation_ = 0;
  std::string protocol_type_;
  std::optional<std::string> protocol_name_;
  std::string leader_;  // empty: none
  std::int64_t current_state_timestamp_ms_ = 0;
  std::vector<Member> members_;  // join order: the leader is re-elected as the first remaining
  std::map<std::string, std::string> static_members_;          // instance id -> member id
  std::map<std::string, std::int64_t> pending_members_;       // member id -> expiry (KIP-394)
  std::optional<JoinTimer> join_timer_;
  bool new_member_added_ = false;
  std::set<std::string> pending_sync_members_;
  std::optional<std::int64_t> sync_deadline_ms_;
};

}  // namespace sluice::group
