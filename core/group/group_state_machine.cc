#include "core/group/group_state_machine.h"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <limits>
#include <utility>

namespace sluice::group {

std::string_view to_string(GroupState state) {
  switch (state) {
    case GroupState::empty: return "Empty";
    case GroupState::preparing_rebalance: return "PreparingRebalance";
    case GroupState::completing_rebalance: return "CompletingRebalance";
    case GroupState::stable: return "Stable";
    case GroupState::dead: return "Dead";
  }
  assert(false && "unhandled GroupState");
  return "Unknown";
}

namespace {

// splitmix64: spreads (seed, counter) over 64 bits so generated member ids do not collide across
// coordinator restarts that reset the counter.
std::uint64_t mix(std::uint64_t value) {
  value += 0x9e37'79b9'7f4a'7c15ULL;
  value = (value ^ (value >> 30U)) * 0xbf58'476d'1ce4'e5b9ULL;
  value = (value ^ (value >> 27U)) * 0x94d0'49bb'1331'11ebULL;
  return value ^ (value >> 31U);
}

std::string hex(std::uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text(16, '0');
  for (int index = 15; index >= 0; --index) {
    text[static_cast<std::size_t>(index)] = kDigits[value & 0xfU];
    value >>= 4U;
  }
  return text;
}

const Bytes* metadata_for(const std::vector<Protocol>& protocols, const std::string& name) {
  for (const auto& protocol : protocols) {
    if (protocol.name == name) return &protocol.metadata;
  }
  return nullptr;
}

}  // namespace

Group::Group(std::string group_id, GroupConfig config, std::uint64_t member_id_seed)
    : group_id_(std::move(group_id)), config_(config), member_id_seed_(member_id_seed) {
  assert(config_.session_timeout_ms_min <= config_.session_timeout_ms_max);
  assert(config_.initial_rebalance_delay_ms >= 0 && config_.group_size_max > 0);
}

Group Group::restore(std::string group_id, GroupConfig config, std::uint64_t member_id_seed,
                     const GroupSnapshot& snapshot, std::int64_t now_ms) {
  Group group(std::move(group_id), config, member_id_seed);
  group.generation_ = snapshot.generation;
  group.protocol_type_ = snapshot.protocol_type;
  group.protocol_name_ = snapshot.protocol_name;
  group.leader_ = snapshot.leader.value_or("");
  group.current_state_timestamp_ms_ = snapshot.current_state_timestamp_ms;
  for (const auto& stored : snapshot.members) {
    Member member;
    member.member_id = stored.member_id;
    member.group_instance_id = stored.group_instance_id;
    member.client_id = stored.client_id;
    member.client_host = stored.client_host;
    member.rebalance_timeout_ms = stored.rebalance_timeout_ms;
    member.session_timeout_ms = stored.session_timeout_ms;
    member.protocol_type = snapshot.protocol_type;
    member.protocols = {Protocol{snapshot.protocol_name.value_or(""), stored.subscription}};
    member.assignment = stored.assignment;
    group.schedule_heartbeat(member, now_ms, member.session_timeout_ms);
    if (member.group_instance_id) group.static_members_[*member.group_instance_id] = member.member_id;
    group.members_.push_back(std::move(member));
  }
  group.state_ = group.members_.empty() ? GroupState::empty : GroupState::stable;
  assert(group.members_.empty() || group.find_member(group.leader_) != nullptr);
  return group;
}

// ---- lookups ---------------------------------------------------------------------------------

Group::Member* Group::find_member(std::string_view member_id) {
  for (auto& member : members_) {
    if (member.member_id == member_id) return &member;
  }
  return nullptr;
}

const Group::Member* Group::find_member(std::string_view member_id) const {
  for (const auto& member : members_) {
    if (member.member_id == member_id) return &member;
  }
  return nullptr;
}

std::optional<std::string> Group::static_member_id(const std::optional<std::string>& instance_id) const {
  if (!instance_id) return std::nullopt;
  auto found = static_members_.find(*instance_id);
  if (found == static_members_.end()) return std::nullopt;
  return found->second;
}

bool Group::is_static_member_fenced(const std::optional<std::string>& instance_id,
                                    std::string_view member_id) const {
  auto current = static_member_id(instance_id);
  return current && *current != member_id;
}

bool Group::supports_protocols(const std::string& protocol_type, const std::vector<Protocol>& protocols) const {
  if (state_ == GroupState::empty) return !protocol_type.empty() && !protocols.empty();
  if (protocol_type != protocol_type_) return false;
  return std::ranges::any_of(protocols, [&](const Protocol& candidate) {
    return std::ranges::all_of(members_, [&](const Member& member) {
      return metadata_for(member.protocols, candidate.name) != nullptr;
    });
  });
}

// GroupMetadata.selectProtocol: candidates are supported by every member; each member votes for its
// first candidate; most votes wins. Kafka breaks ties by hash-map order; we break them by the
// leader's preference order, which is deterministic.
std::string Group::select_protocol() const {
  assert(!members_.empty());
  const Member* leader = find_member(leader_);
  assert(leader != nullptr);
  auto is_candidate = [&](const std::string& name) {
    return std::ranges::all_of(members_, [&](const Member& member) {
      return metadata_for(member.protocols, name) != nullptr;
    });
  };
  std::map<std::string, std::int32_t> votes;
  for (const auto& member : members_) {
    for (const auto& protocol : member.protocols) {
      if (is_candidate(protocol.name)) {
        ++votes[protocol.name];
        break;
      }
    }
  }
  std::string chosen;
  std::int32_t chosen_votes = 0;
  for (const auto& protocol : leader->protocols) {
    auto found = votes.find(protocol.name);
    if (found != votes.end() && found->second > chosen_votes) {
      chosen = protocol.name;
      chosen_votes = found->second;
    }
  }
  assert(chosen_votes > 0 && "join validation guarantees a common protocol");
  return chosen;
}

std::int32_t Group::rebalance_timeout_ms() const {
  std::int32_t timeout_ms = 0;
  for (const auto& member : members_) timeout_ms = std::max(timeout_ms, member.rebalance_timeout_ms);
  return timeout_ms;
}

std::string Group::generate_member_id(const std::string& prefix) {
  ++member_id_counter_;
  return prefix + "-" + hex(mix(member_id_seed_ ^ mix(member_id_counter_)));
}

// GroupMetadata.hasAllMembersJoined: pending (MEMBER_ID_REQUIRED) members hold the join phase too.
bool Group::all_members_joined() const {
  return pending_members_.empty() &&
         std::ranges::all_of(members_, [](const Member& member) { return member.awaiting_join.has_value(); });
}

std::optional<Bytes> Group::assignment_of(std::string_view member_id) const {
  const Member* member = find_member(member_id);
  if (member == nullptr) return std::nullopt;
  return member->assignment;
}

std::optional<std::int64_t> Group::next_deadline_ms() const {
  std::optional<std::int64_t> earliest;
  auto consider = [&](std::int64_t deadline_ms) {
    if (!earliest || deadline_ms < *earliest) earliest = deadline_ms;
  };
  for (const auto& [member_id, deadline_ms] : pending_members_) consider(deadline_ms);
  for (const auto& member : members_) {
    if (member.heartbeat_deadline_ms) consider(*member.heartbeat_deadline_ms);
  }
  if (join_timer_) consider(join_timer_->deadline_ms);
  if (sync_deadline_ms_) consider(*sync_deadline_ms_);
  return earliest;
}

// ---- responses -------------------------------------------------------------------------------

JoinResponse Group::join_error(const JoinRequest& request, std::int16_t error) const {
  JoinResponse response;
  response.token = request.token;
  response.error = error;
  response.member_id = request.member_id;
  return response;
}

std::vector<JoinResponseMember> Group::current_member_metadata() const {
  assert(protocol_name_.has_value());
  std::vector<JoinResponseMember> result;
  result.reserve(members_.size());
  for (const auto& member : members_) {
    const Bytes* metadata = metadata_for(member.protocols, *protocol_name_);
    result.push_back({member.member_id, member.group_instance_id, metadata ? *metadata : Bytes{}});
  }
  return result;
}

JoinResponse Group::current_generation_response(const Member& member, RequestToken token,
                                                bool with_members) const {
  JoinResponse response;
  response.token = token;
  response.generation = generation_;
  response.protocol_type = protocol_type_;
  response.protocol_name = protocol_name_.value_or("");
  response.leader = leader_;
  response.member_id = member.member_id;
  if (with_members) response.members = current_member_metadata();
  return response;
}

// ---- JoinGroup -------------------------------------------------------------------------------

Effects Group::join(const JoinRequest& request, std::int64_t now_ms) {
  Effects effects;
  const bool new_member = request.member_id.empty();
  if (request.session_timeout_ms < config_.session_timeout_ms_min ||
      request.session_timeout_ms > config_.session_timeout_ms_max) {
    effects.emplace_back(join_error(request, error_code::invalid_session_timeout));
  } else if (new_member && !static_member_id(request.group_instance_id) &&
             members_.size() + pending_members_.size() >= static_cast<std::size_t>(config_.group_size_max)) {
    effects.emplace_back(join_error(request, error_code::group_max_size_reached));
  } else if (state_ == GroupState::dead) {
    // Kafka answers COORDINATOR_NOT_AVAILABLE; PROTOCOL.md's table fixes UNKNOWN_MEMBER_ID.
    effects.emplace_back(join_error(request, error_code::unknown_member_id));
  } else if (!supports_protocols(request.protocol_type, request.protocols)) {
    effects.emplace_back(join_error(request, error_code::inconsistent_group_protocol));
  } else if (new_member) {
    join_new_member(request, now_ms, effects);
  } else {
    join_current_member(request, now_ms, effects);
  }
  // The join phase may now be complete (GroupCoordinator.handleJoinGroup's final checkAndComplete).
  if (state_ == GroupState::preparing_rebalance) try_complete_join(now_ms, effects);
  return effects;
}

void Group::join_new_member(const JoinRequest& request, std::int64_t now_ms, Effects& effects) {
  if (request.group_instance_id) {
    join_static_new_member(request, now_ms, effects);
    return;
  }
  std::string member_id = generate_member_id(request.client_id);
  if (request.version >= 4) {
    // KIP-394: hand out the id and wait for the client to come back with it.
    pending_members_[member_id] = now_ms + request.session_timeout_ms;
    JoinResponse response = join_error(request, error_code::member_id_required);
    response.member_id = std::move(member_id);
    effects.emplace_back(std::move(response));
    return;
  }
  add_member_and_rebalance(request, std::move(member_id), now_ms, effects);
}

void Group::join_static_new_member(const JoinRequest& request, std::int64_t now_ms, Effects& effects) {
  auto old_member_id = static_member_id(request.group_instance_id);
  std::string prefix = *request.group_instance_id;
  if (old_member_id) {
    replace_static_member(request, *old_member_id, now_ms, effects);
  } else {
    add_member_and_rebalance(request, generate_member_id(prefix), now_ms, effects);
  }
}

void Group::join_current_member(const JoinRequest& request, std::int64_t now_ms, Effects& effects) {
  if (pending_members_.contains(request.member_id)) {
    pending_members_.erase(request.member_id);
    add_member_and_rebalance(request, request.member_id, now_ms, effects);
    return;
  }
  const bool instance_unknown = request.group_instance_id && !static_member_id(request.group_instance_id);
  if (is_static_member_fenced(request.group_instance_id, request.member_id)) {
    effects.emplace_back(join_error(request, error_code::fenced_instance_id));
    return;
  }
  Member* member = find_member(request.member_id);
  if (member == nullptr || instance_unknown || state_ == GroupState::empty) {
    effects.emplace_back(join_error(request, error_code::unknown_member_id));
    return;
  }
  const bool unchanged = member->protocols == request.protocols;
  const bool is_leader = member->member_id == leader_;
  if (state_ == GroupState::completing_rebalance && unchanged) {
    // The member probably lost its JoinGroup response: answer the current generation again.
    effects.emplace_back(current_generation_response(*member, request.token, is_leader));
  } else if (state_ == GroupState::stable && unchanged && !is_leader) {
    effects.emplace_back(current_generation_response(*member, request.token, false));
  } else {
    // PreparingRebalance, changed metadata, or a Stable leader (whose rejoin asks for a rebalance,
    // e.g. after a topic metadata change the member metadata does not show).
    update_member_and_rebalance(*member, request, now_ms, effects);
  }
}

// KIP-345 replaceStaticMember / updateStaticMemberAndRebalance.
void Group::replace_static_member(const JoinRequest& request, const std::string& old_member_id,
                                  std::int64_t now_ms, Effects& effects) {
  Member* member = find_member(old_member_id);
  assert(member != nullptr && "the static map only names members");
  const std::string leader_before = leader_;
  // Fence the old incarnation at once if it is parked anywhere.
  if (member->awaiting_join) {
    JoinResponse fenced;
    fenced.token = *std::exchange(member->awaiting_join, std::nullopt);
    fenced.error = error_code::fenced_instance_id;
    fenced.member_id = old_member_id;
    effects.emplace_back(std::move(fenced));
  }
  if (member->awaiting_sync) {
    effects.emplace_back(SyncResponse{*std::exchange(member->awaiting_sync, std::nullopt),
                                      error_code::fenced_instance_id, {}, {}, {}});
  }
  std::string new_member_id = generate_member_id(*request.group_instance_id);
  member->member_id = new_member_id;
  static_members_[*request.group_instance_id] = new_member_id;
  if (leader_ == old_member_id) leader_ = new_member_id;
  if (pending_sync_members_.erase(old_member_id) > 0) pending_sync_members_.insert(new_member_id);
  schedule_heartbeat(*member, now_ms, request.session_timeout_ms);
  update_member(*member, request, effects);

  if (state_ == GroupState::stable && protocol_name_ == select_protocol()) {
    // No rebalance: persist the new member id, then answer with the current generation. A v9+
    // leader gets the member list with skip_assignment; an older leader is told the old leader id
    // so it does not compute (and lose) a new assignment.
    const bool is_leader = leader_ == new_member_id;
    const bool skip_assignment = is_leader && request.version >= 9;
    JoinResponse response = current_generation_response(*member, request.token, skip_assignment);
    response.skip_assignment = skip_assignment;
    response.leader = skip_assignment ? leader_ : leader_before;
    member->awaiting_join.reset();
    effects.emplace_back(PersistGroup{snapshot()});
    effects.emplace_back(std::move(response));
    return;
  }
  if (state_ == GroupState::completing_rebalance || state_ == GroupState::stable) {
    // The leader may have been given the old member id: the assignment would miss the new one.
    prepare_rebalance(now_ms, effects);
  }
}

void Group::add_member_and_rebalance(const JoinRequest& request, std::string member_id, std::int64_t now_ms,
                                     Effects& effects) {
  assert(find_member(member_id) == nullptr);
  Member member;
  member.member_id = std::move(member_id);
  member.group_instance_id = request.group_instance_id;
  member.client_id = request.client_id;
  member.client_host = request.client_host;
  member.is_new = true;
  if (members_.empty()) protocol_type_ = request.protocol_type;
  if (leader_.empty()) leader_ = member.member_id;
  if (member.group_instance_id) static_members_[*member.group_instance_id] = member.member_id;
  // Sockets are muted while a join is parked, so a new member's session cannot be observed:
  // NewMemberJoinTimeoutMs bounds how long a defunct new member can hold the rebalance.
  schedule_heartbeat(member, now_ms, config_.new_member_join_timeout_ms);
  members_.push_back(std::move(member));
  update_member(members_.back(), request, effects);
  if (state_ == GroupState::preparing_rebalance && generation_ == 0) new_member_added_ = true;
  maybe_prepare_rebalance(now_ms, effects);
}

void Group::update_member(Member& member, const JoinRequest& request, Effects& effects) {
  member.protocol_type = request.protocol_type;
  member.protocols = request.protocols;
  member.session_timeout_ms = request.session_timeout_ms;
  member.rebalance_timeout_ms =
      request.rebalance_timeout_ms >= 0 ? request.rebalance_timeout_ms : request.session_timeout_ms;
  member.join_version = request.version;
  if (member.awaiting_join) {
    // A newer JoinGroup supersedes a parked one; every token is answered exactly once.
    JoinResponse superseded;
    superseded.token = *member.awaiting_join;
    superseded.error = error_code::rebalance_in_progress;
    superseded.member_id = member.member_id;
    effects.emplace_back(std::move(superseded));
  }
  member.awaiting_join = request.token;
}

void Group::update_member_and_rebalance(Member& member, const JoinRequest& request, std::int64_t now_ms,
                                        Effects& effects) {
  update_member(member, request, effects);
  maybe_prepare_rebalance(now_ms, effects);
}

// ---- the join phase --------------------------------------------------------------------------

void Group::maybe_prepare_rebalance(std::int64_t now_ms, Effects& effects) {
  if (state_ == GroupState::stable || state_ == GroupState::completing_rebalance || state_ == GroupState::empty) {
    prepare_rebalance(now_ms, effects);
  }
}

void Group::prepare_rebalance(std::int64_t now_ms, Effects& effects) {
  assert(state_ != GroupState::dead && state_ != GroupState::preparing_rebalance);
  if (state_ == GroupState::completing_rebalance) {
    propagate_assignment(error_code::rebalance_in_progress, now_ms, effects);
  }
  sync_deadline_ms_.reset();
  pending_sync_members_.clear();
  const std::int64_t rebalance_ms = rebalance_timeout_ms();
  JoinTimer timer;
  if (state_ == GroupState::empty) {
    timer.initial = true;
    timer.deadline_ms = now_ms + config_.initial_rebalance_delay_ms;
    timer.initial_remaining_ms = std::max<std::int64_t>(rebalance_ms - config_.initial_rebalance_delay_ms, 0);
  } else {
    timer.deadline_ms = now_ms + rebalance_ms;
  }
  join_timer_ = timer;
  state_ = GroupState::preparing_rebalance;
  current_state_timestamp_ms_ = now_ms;
  // Kafka's tryCompleteElseWatch: e.g. a one-member group whose leader rejoined is done already.
  try_complete_join(now_ms, effects);
}

void Group::try_complete_join(std::int64_t now_ms, Effects& effects) {
  assert(state_ == GroupState::preparing_rebalance && join_timer_.has_value());
  // InitialDelayedJoin never completes early: it waits for more members to arrive.
  if (!join_timer_->initial && all_members_joined()) complete_join(now_ms, effects);
}

// GroupCoordinator.onCompleteJoin.
void Group::complete_join(std::int64_t now_ms, Effects& effects) {
  assert(state_ == GroupState::preparing_rebalance);
  join_timer_.reset();
  // Dynamic members that did not rejoin in time are dropped; static ones stay until their session
  // expires (a static member restarting slowly keeps its place).
  std::vector<std::string> dropped;
  for (const auto& member : members_) {
    if (!member.awaiting_join && !member.group_instance_id) dropped.push_back(member.member_id);
  }
  for (const auto& member_id : dropped) remove_member(member_id);

  if (!members_.empty() && !find_member(leader_)->awaiting_join) {
    auto joined = std::ranges::find_if(members_, [](const Member& member) { return member.awaiting_join.has_value(); });
    if (joined == members_.end()) {
      // Nobody rejoined: wait another rebalance timeout for session expiries to clear the group.
      join_timer_ = JoinTimer{now_ms + rebalance_timeout_ms(), false, 0};
      return;
    }
    leader_ = joined->member_id;
  }
  init_next_generation(now_ms);
  if (state_ == GroupState::empty) {
    effects.emplace_back(PersistGroup{snapshot()});
    return;
  }
  for (auto& member : members_) {
    if (member.awaiting_join) {
      JoinResponse response = current_generation_response(member, *member.awaiting_join, member.member_id == leader_);
      member.awaiting_join.reset();
      effects.emplace_back(std::move(response));
    }
    schedule_heartbeat(member, now_ms, member.session_timeout_ms);
    member.is_new = false;
    pending_sync_members_.insert(member.member_id);
  }
  sync_deadline_ms_ = now_ms + rebalance_timeout_ms();
}

void Group::init_next_generation(std::int64_t now_ms) {
  ++generation_;
  if (members_.empty()) {
    protocol_name_.reset();
    state_ = GroupState::empty;
  } else {
    protocol_name_ = select_protocol();
    state_ = GroupState::completing_rebalance;
  }
  for (auto& member : members_) member.assignment.clear();
  current_state_timestamp_ms_ = now_ms;
  pending_sync_members_.clear();
  new_member_added_ = false;
}

// setAndPropagateAssignment (error none) / resetAndPropagateAssignmentError.
void Group::propagate_assignment(std::int16_t error, std::int64_t now_ms, Effects& effects) {
  for (auto& member : members_) {
    if (error != error_code::none) member.assignment.clear();
    if (member.awaiting_sync) {
      SyncResponse response{*member.awaiting_sync, error, protocol_type_, protocol_name_.value_or(""),
                            error == error_code::none ? member.assignment : Bytes{}};
      member.awaiting_sync.reset();
      effects.emplace_back(std::move(response));
      schedule_heartbeat(member, now_ms, member.session_timeout_ms);
    }
  }
}

// ---- SyncGroup -------------------------------------------------------------------------------

std::int16_t Group::sync_error(const SyncRequest& request) const {
  if (state_ == GroupState::dead) return error_code::unknown_member_id;  // Kafka: COORDINATOR_NOT_AVAILABLE
  if (is_static_member_fenced(request.group_instance_id, request.member_id)) return error_code::fenced_instance_id;
  if (find_member(request.member_id) == nullptr) return error_code::unknown_member_id;
  if (request.generation != generation_) return error_code::illegal_generation;
  if ((request.protocol_type && *request.protocol_type != protocol_type_) ||
      (request.protocol_name && *request.protocol_name != protocol_name_.value_or(""))) {
    return error_code::inconsistent_group_protocol;
  }
  if (state_ == GroupState::empty) return error_code::unknown_member_id;
  if (state_ == GroupState::preparing_rebalance) return error_code::rebalance_in_progress;
  return error_code::none;
}

Effects Group::sync(const SyncRequest& request, std::int64_t now_ms) {
  Effects effects;
  if (auto error = sync_error(request); error != error_code::none) {
    effects.emplace_back(SyncResponse{request.token, error, {}, {}, {}});
    return effects;
  }
  Member* member = find_member(request.member_id);
  pending_sync_members_.erase(member->member_id);
  if (pending_sync_members_.empty()) sync_deadline_ms_.reset();
  if (state_ == GroupState::stable) {
    effects.emplace_back(SyncResponse{request.token, error_code::none, protocol_type_, protocol_name_.value_or(""),
                                      member->assignment});
    schedule_heartbeat(*member, now_ms, member->session_timeout_ms);
    return effects;
  }
  assert(state_ == GroupState::completing_rebalance);
  if (member->awaiting_sync) {
    effects.emplace_back(SyncResponse{*member->awaiting_sync, error_code::rebalance_in_progress, {}, {}, {}});
  }
  member->awaiting_sync = request.token;
  if (member->member_id != leader_) return effects;  // parked until the leader's assignment
  for (auto& each : members_) {
    each.assignment.clear();
    for (const auto& [member_id, assignment] : request.assignments) {
      if (member_id == each.member_id) each.assignment = assignment;
    }
  }
  state_ = GroupState::stable;
  current_state_timestamp_ms_ = now_ms;
  effects.emplace_back(PersistGroup{snapshot()});
  propagate_assignment(error_code::none, now_ms, effects);
  return effects;
}

// ---- Heartbeat, LeaveGroup, OffsetCommit -----------------------------------------------------

Effects Group::heartbeat(const HeartbeatRequest& request, std::int64_t now_ms) {
  std::int16_t error = error_code::none;
  Member* member = find_member(request.member_id);
  if (state_ == GroupState::dead) {
    error = error_code::unknown_member_id;
  } else if (is_static_member_fenced(request.group_instance_id, request.member_id)) {
    error = error_code::fenced_instance_id;
  } else if (member == nullptr) {
    error = error_code::unknown_member_id;
  } else if (request.generation != generation_) {
    error = error_code::illegal_generation;
  } else if (state_ == GroupState::empty) {
    error = error_code::unknown_member_id;
  } else {
    // CompletingRebalance: clients heartbeat between their JoinGroup and SyncGroup; that is fine.
    schedule_heartbeat(*member, now_ms, member->session_timeout_ms);
    if (state_ == GroupState::preparing_rebalance) error = error_code::rebalance_in_progress;
  }
  return {HeartbeatResponse{request.token, error}};
}

Effects Group::leave(const LeaveRequest& request, std::int64_t now_ms) {
  Effects effects;
  LeaveResponse response{request.token, error_code::none, {}};
  if (state_ == GroupState::dead) {
    response.error = error_code::unknown_member_id;
    effects.emplace_back(std::move(response));
    return effects;
  }
  for (const auto& leaving : request.members) {
    LeaveMemberResult result{leaving.member_id, leaving.group_instance_id, error_code::none};
    auto static_id = static_member_id(leaving.group_instance_id);
    if (!leaving.member_id.empty() && is_static_member_fenced(leaving.group_instance_id, leaving.member_id)) {
      result.error = error_code::fenced_instance_id;
    } else if (pending_members_.contains(leaving.member_id) && !leaving.group_instance_id) {
      remove_pending_member_and_update_group(leaving.member_id, now_ms, effects);
    } else if (find_member(leaving.member_id) == nullptr && !static_id) {
      result.error = error_code::unknown_member_id;
    } else {
      remove_member_and_update_group(static_id ? *static_id : leaving.member_id, now_ms, effects);
    }
    response.members.push_back(std::move(result));
  }
  // The LeaveGroup answer goes after the effects it caused (their persistence, parked answers).
  effects.emplace_back(std::move(response));
  return effects;
}

std::int16_t Group::commit_check(std::int32_t generation, std::string_view member_id,
                                 const std::optional<std::string>& group_instance_id, std::int64_t now_ms) {
  if (state_ == GroupState::dead) return error_code::unknown_member_id;
  Member* member = find_member(member_id);
  if (generation >= 0 || !member_id.empty() || group_instance_id) {
    if (is_static_member_fenced(group_instance_id, member_id)) return error_code::fenced_instance_id;
    if (member == nullptr) return error_code::unknown_member_id;
    if (generation != generation_) return error_code::illegal_generation;
  } else if (state_ != GroupState::empty) {
    return error_code::unknown_member_id;  // only members commit to an active group
  }
  if (state_ == GroupState::completing_rebalance) return error_code::rebalance_in_progress;
  if (member != nullptr) schedule_heartbeat(*member, now_ms, member->session_timeout_ms);
  return error_code::none;
}

// ---- removal and timers ----------------------------------------------------------------------

void Group::remove_member(std::string_view member_id) {
  auto found = std::ranges::find_if(members_, [&](const Member& member) { return member.member_id == member_id; });
  assert(found != members_.end());
  assert(!found->awaiting_join && !found->awaiting_sync && "answer parked requests first");
  if (found->group_instance_id) static_members_.erase(*found->group_instance_id);
  pending_sync_members_.erase(found->member_id);
  const bool was_leader = found->member_id == leader_;
  members_.erase(found);
  if (was_leader) leader_ = members_.empty() ? std::string{} : members_.front().member_id;
}

void Group::remove_member_and_update_group(std::string_view member_id, std::int64_t now_ms, Effects& effects) {
  Member* member = find_member(member_id);
  assert(member != nullptr);
  if (member->awaiting_join) {
    JoinResponse gone;
    gone.token = *std::exchange(member->awaiting_join, std::nullopt);
    gone.error = error_code::unknown_member_id;
    gone.member_id = member->member_id;
    effects.emplace_back(std::move(gone));
  }
  if (member->awaiting_sync) {
    effects.emplace_back(SyncResponse{*std::exchange(member->awaiting_sync, std::nullopt),
                                      error_code::unknown_member_id, {}, {}, {}});
  }
  remove_member(member_id);
  if (state_ == GroupState::stable || state_ == GroupState::completing_rebalance) {
    prepare_rebalance(now_ms, effects);
  } else if (state_ == GroupState::preparing_rebalance) {
    try_complete_join(now_ms, effects);
  }
}

void Group::remove_pending_member_and_update_group(std::string_view member_id, std::int64_t now_ms,
                                                   Effects& effects) {
  pending_members_.erase(std::string(member_id));
  if (state_ == GroupState::preparing_rebalance) try_complete_join(now_ms, effects);
}

void Group::schedule_heartbeat(Member& member, std::int64_t now_ms, std::int64_t timeout_ms) const {
  assert(timeout_ms >= 0);
  member.heartbeat_deadline_ms = now_ms + timeout_ms;
}

Effects Group::tick(std::int64_t now_ms) {
  Effects effects;
  // Each firing removes a member or a pending member, or advances/clears a timer; the bound is a
  // generous multiple of that, and reaching it would be a bug.
  const std::size_t firings_max = 4 * (members_.size() + pending_members_.size()) + 64;
  std::size_t firings = 0;
  while (fire_one_timer(now_ms, effects)) {
    ++firings;
    assert(firings < firings_max && "timers must make progress");
    if (firings >= firings_max) break;
  }
  return effects;
}

// Fires the earliest timer due at or before now_ms, at its own deadline. False when none is due.
bool Group::fire_one_timer(std::int64_t now_ms, Effects& effects) {
  if (state_ == GroupState::dead) return false;
  auto due = next_deadline_ms();
  if (!due || *due > now_ms) return false;
  const std::int64_t at_ms = *due;
  for (const auto& [member_id, deadline_ms] : pending_members_) {
    if (deadline_ms == at_ms) {
      remove_pending_member_and_update_group(std::string(member_id), at_ms, effects);
      return true;
    }
  }
  for (auto& member : members_) {
    if (member.heartbeat_deadline_ms != at_ms) continue;
    // MemberMetadata.hasSatisfiedHeartbeat: a member parked in a join or sync is alive, unless it
    // is new (then NewMemberJoinTimeoutMs applies); its session restarts when it is answered.
    if (!member.is_new && (member.awaiting_join || member.awaiting_sync)) {
      member.heartbeat_deadline_ms.reset();
    } else {
      remove_member_and_update_group(std::string(member.member_id), at_ms, effects);
    }
    return true;
  }
  if (join_timer_ && join_timer_->deadline_ms == at_ms) {
    assert(state_ == GroupState::preparing_rebalance);
    if (join_timer_->initial && new_member_added_ && join_timer_->initial_remaining_ms > 0) {
      // InitialDelayedJoin: someone joined during the delay, so wait once more (bounded by the
      // rebalance timeout) for the rest of a starting fleet.
      new_member_added_ = false;
      const std::int64_t delay_ms =
          std::min<std::int64_t>(config_.initial_rebalance_delay_ms, join_timer_->initial_remaining_ms);
      join_timer_->deadline_ms = at_ms + delay_ms;
      join_timer_->initial_remaining_ms = std::max<std::int64_t>(join_timer_->initial_remaining_ms - delay_ms, 0);
    } else {
      complete_join(at_ms, effects);
    }
    return true;
  }
  assert(sync_deadline_ms_ == at_ms);
  expire_pending_sync(at_ms, effects);
  return true;
}

// A member that got its JoinGroup answer but sent no SyncGroup within the rebalance timeout is
// removed, and the group rebalances without it (Kafka's DelayedSync, KAFKA-13395's fix).
void Group::expire_pending_sync(std::int64_t now_ms, Effects& effects) {
  sync_deadline_ms_.reset();
  if (state_ != GroupState::completing_rebalance && state_ != GroupState::stable) return;
  if (pending_sync_members_.empty()) return;
  const std::vector<std::string> expired(pending_sync_members_.begin(), pending_sync_members_.end());
  pending_sync_members_.clear();
  for (const auto& member_id : expired) {
    Member* member = find_member(member_id);
    assert(member != nullptr && !member->awaiting_sync);
    if (member->awaiting_join) {
      JoinResponse gone;
      gone.token = *std::exchange(member->awaiting_join, std::nullopt);
      gone.error = error_code::unknown_member_id;
      gone.member_id = member_id;
      effects.emplace_back(std::move(gone));
    }
    remove_member(member_id);
  }
  prepare_rebalance(now_ms, effects);
}

Effects Group::mark_dead() {
  Effects effects;
  for (auto& member : members_) {
    if (member.awaiting_join) {
      JoinResponse gone;
      gone.token = *std::exchange(member.awaiting_join, std::nullopt);
      gone.error = error_code::not_coordinator;
      gone.member_id = member.member_id;
      effects.emplace_back(std::move(gone));
    }
    if (member.awaiting_sync) {
      effects.emplace_back(SyncResponse{*std::exchange(member.awaiting_sync, std::nullopt),
                                        error_code::not_coordinator, {}, {}, {}});
    }
  }
  state_ = GroupState::dead;
  join_timer_.reset();
  sync_deadline_ms_.reset();
  return effects;
}

// ---- views -----------------------------------------------------------------------------------

GroupDescription Group::describe() const {
  GroupDescription description;
  description.state = std::string(to_string(state_));
  description.protocol_type = protocol_type_;
  const bool stable = state_ == GroupState::stable;
  if (stable) description.protocol = protocol_name_.value_or("");
  for (const auto& member : members_) {
    DescribedMember described{member.member_id, member.group_instance_id, member.client_id, member.client_host,
                              {}, {}};
    if (stable) {
      const Bytes* metadata = metadata_for(member.protocols, *protocol_name_);
      described.metadata = metadata ? *metadata : Bytes{};
      described.assignment = member.assignment;
    }
    description.members.push_back(std::move(described));
  }
  return description;
}

GroupSnapshot Group::snapshot() const {
  GroupSnapshot snapshot;
  snapshot.protocol_type = protocol_type_;
  snapshot.generation = generation_;
  snapshot.protocol_name = protocol_name_;
  if (!leader_.empty()) snapshot.leader = leader_;
  snapshot.current_state_timestamp_ms = current_state_timestamp_ms_;
  for (const auto& member : members_) {
    const Bytes* subscription = protocol_name_ ? metadata_for(member.protocols, *protocol_name_) : nullptr;
    snapshot.members.push_back({member.member_id, member.group_instance_id, member.client_id, member.client_host,
                                member.rebalance_timeout_ms, member.session_timeout_ms,
                                subscription ? *subscription : Bytes{}, member.assignment});
  }
  return snapshot;
}

}  // namespace sluice::group
