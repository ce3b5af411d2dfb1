// The classic-protocol group state machine against PROTOCOL.md §4, one behaviour per test, with
// Kafka's error codes.
#include "core/group/group_state_machine.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/group/group_test_util.h"

namespace sluice::group {
namespace {

using testing::fast_config;
using testing::has_persist;
using testing::join_request;
using testing::response_for;

// Joins a v3 member (no MEMBER_ID_REQUIRED round trip) and returns its parked token's response
// after the join phase completes at now_ms.
struct TwoMemberGroup {
  Group group{"g", fast_config(), 7};
  std::string leader;
  std::string follower;
  std::int64_t now_ms = 0;

  // Brings a two-member group to Stable in generation 2; leader gets "p0", follower "p1".
  TwoMemberGroup() {
    auto effects = group.join(join_request(1, "", 3), now_ms);
    effects = group.tick(now_ms);
    leader = response_for<JoinResponse>(effects, 1)->member_id;
    effects = group.sync({2, 1, leader, {}, {}, {}, {{leader, "p0"}}}, now_ms);
    EXPECT_EQ(group.state(), GroupState::stable);
    effects = group.join(join_request(3, "", 3), now_ms);
    EXPECT_EQ(group.state(), GroupState::preparing_rebalance);
    effects = group.join(join_request(4, leader, 3), now_ms);
    follower = response_for<JoinResponse>(effects, 3)->member_id;
    EXPECT_EQ(group.generation(), 2);
    group.sync({5, 2, follower, {}, {}, {}, {}}, now_ms);
    effects = group.sync({6, 2, leader, {}, {}, {}, {{leader, "p0"}, {follower, "p1"}}}, now_ms);
    EXPECT_EQ(group.state(), GroupState::stable);
  }
};

TEST(GroupStateMachine, join_group_requires_member_id_v4) {
  Group group("g", fast_config(), 1);
  auto effects = group.join(join_request(1, "", 4), 0);
  auto response = response_for<JoinResponse>(effects, 1);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->error, error_code::member_id_required);
  EXPECT_TRUE(response->member_id.starts_with("client-"));
  EXPECT_EQ(group.state(), GroupState::empty);
  effects = group.join(join_request(2, response->member_id, 4), 10);
  EXPECT_TRUE(effects.empty()) << "parked until the (zero) initial delay fires";
  effects = group.tick(10);
  auto joined = response_for<JoinResponse>(effects, 2);
  ASSERT_TRUE(joined);
  EXPECT_EQ(joined->error, error_code::none);
  EXPECT_EQ(joined->generation, 1);
  EXPECT_EQ(joined->leader, response->member_id);
  EXPECT_EQ(joined->protocol_name, "range");
  ASSERT_EQ(joined->members.size(), 1U);
  EXPECT_EQ(joined->members[0].metadata, "sub");
}

TEST(GroupStateMachine, join_group_v3_gets_member_id_without_round_trip) {
  Group group("g", fast_config(), 1);
  auto effects = group.join(join_request(1, "", 3), 0);
  EXPECT_TRUE(effects.empty());
  effects = group.tick(0);
  ASSERT_TRUE(response_for<JoinResponse>(effects, 1));
  EXPECT_EQ(response_for<JoinResponse>(effects, 1)->error, error_code::none);
  EXPECT_EQ(group.state(), GroupState::completing_rebalance);
}

TEST(GroupStateMachine, pending_member_expires_after_session_timeout) {
  Group group("g", fast_config(), 1);
  auto member_id = response_for<JoinResponse>(group.join(join_request(1, "", 5), 0), 1)->member_id;
  group.tick(10'000);
  auto effects = group.join(join_request(2, member_id, 5), 10'000);
  EXPECT_EQ(response_for<JoinResponse>(effects, 2)->error, error_code::unknown_member_id);
}

TEST(GroupStateMachine, join_group_inconsistent_protocol_is_23) {
  TwoMemberGroup fixture;
  auto request = join_request(10, "", 3);
  request.protocol_type = "connect";
  EXPECT_EQ(response_for<JoinResponse>(fixture.group.join(request, 0), 10)->error,
            error_code::inconsistent_group_protocol);
  auto no_common = join_request(11, "", 3, std::nullopt, {{"roundrobin", ""}});
  EXPECT_EQ(response_for<JoinResponse>(fixture.group.join(no_common, 0), 11)->error,
            error_code::inconsistent_group_protocol);
  EXPECT_EQ(fixture.group.state(), GroupState::stable);
}

TEST(GroupStateMachine, join_group_session_timeout_bounds_are_26) {
  Group group("g", fast_config(), 1);
  auto below = join_request(1, "", 5, std::nullopt, {{"range", ""}}, 5'999);
  auto above = join_request(2, "", 5, std::nullopt, {{"range", ""}}, 1'800'001);
  EXPECT_EQ(response_for<JoinResponse>(group.join(below, 0), 1)->error, error_code::invalid_session_timeout);
  EXPECT_EQ(response_for<JoinResponse>(group.join(above, 0), 2)->error, error_code::invalid_session_timeout);
  GroupConfig relaxed = fast_config();
  relaxed.session_timeout_ms_min = 100;
  Group simulated("g", relaxed, 1);
  auto short_session = join_request(3, "", 5, std::nullopt, {{"range", ""}}, 100);
  EXPECT_EQ(response_for<JoinResponse>(simulated.join(short_session, 0), 3)->error, error_code::member_id_required);
}

TEST(GroupStateMachine, two_member_rebalance_reaches_stable) {
  TwoMemberGroup fixture;
  EXPECT_EQ(fixture.group.generation(), 2);
  EXPECT_EQ(fixture.group.leader(), fixture.leader);
  EXPECT_EQ(fixture.group.assignment_of(fixture.leader), "p0");
  EXPECT_EQ(fixture.group.assignment_of(fixture.follower), "p1");
  auto heartbeat = fixture.group.heartbeat({20, 2, fixture.follower, {}}, 1);
  EXPECT_EQ(response_for<HeartbeatResponse>(heartbeat, 20)->error, error_code::none);
}

TEST(GroupStateMachine, leader_gets_members_followers_get_none_and_follower_sync_is_parked) {
  Group group("g", fast_config(), 3);
  group.join(join_request(1, "", 3), 0);
  group.join(join_request(2, "", 3), 0);
  auto effects = group.tick(0);
  auto first = response_for<JoinResponse>(effects, 1);
  auto second = response_for<JoinResponse>(effects, 2);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->leader, first->member_id);
  EXPECT_EQ(first->members.size(), 2U);
  EXPECT_TRUE(second->members.empty());
  EXPECT_TRUE(group.sync({3, 1, second->member_id, {}, {}, {}, {}}, 0).empty());
  effects = group.sync({4, 1, first->member_id, {}, {}, {}, {{second->member_id, "b"}}}, 0);
  EXPECT_TRUE(has_persist(effects));
  EXPECT_EQ(response_for<SyncResponse>(effects, 3)->assignment, "b");
  EXPECT_EQ(response_for<SyncResponse>(effects, 4)->assignment, "") << "missing members get an empty assignment";
  EXPECT_EQ(group.state(), GroupState::stable);
}

TEST(GroupStateMachine, protocol_is_chosen_by_vote) {
  Group group("g", fast_config(), 3);
  group.join(join_request(1, "", 3, std::nullopt, {{"range", ""}, {"roundrobin", ""}}), 0);
  group.join(join_request(2, "", 3, std::nullopt, {{"roundrobin", ""}, {"range", ""}}), 0);
  group.join(join_request(3, "", 3, std::nullopt, {{"roundrobin", ""}, {"range", ""}, {"sticky", ""}}), 0);
  auto effects = group.tick(0);
  EXPECT_EQ(response_for<JoinResponse>(effects, 1)->protocol_name, "roundrobin");
}

TEST(GroupStateMachine, heartbeat_errors_25_22_27) {
  TwoMemberGroup fixture;
  auto& group = fixture.group;
  EXPECT_EQ(response_for<HeartbeatResponse>(group.heartbeat({1, 2, "nobody", {}}, 0), 1)->error,
            error_code::unknown_member_id);
  EXPECT_EQ(response_for<HeartbeatResponse>(group.heartbeat({2, 1, fixture.follower, {}}, 0), 2)->error,
            error_code::illegal_generation);
  group.join(join_request(3, fixture.leader, 3), 0);  // a Stable leader's rejoin rebalances
  EXPECT_EQ(group.state(), GroupState::preparing_rebalance);
  EXPECT_EQ(response_for<HeartbeatResponse>(group.heartbeat({4, 2, fixture.follower, {}}, 0), 4)->error,
            error_code::rebalance_in_progress);
  EXPECT_EQ(response_for<SyncResponse>(group.sync({5, 2, fixture.follower, {}, {}, {}, {}}, 0), 5)->error,
            error_code::rebalance_in_progress);
}

TEST(GroupStateMachine, leader_session_expiry_triggers_rebalance_and_new_leader) {
  TwoMemberGroup fixture;
  auto& group = fixture.group;
  group.heartbeat({1, 2, fixture.follower, {}}, 6'000);
  auto effects = group.tick(10'000);
  EXPECT_FALSE(group.has_member(fixture.leader));
  EXPECT_EQ(group.state(), GroupState::preparing_rebalance);
  effects = group.heartbeat({2, 2, fixture.follower, {}}, 10'001);
  EXPECT_EQ(response_for<HeartbeatResponse>(effects, 2)->error, error_code::rebalance_in_progress);
  effects = group.join(join_request(3, fixture.follower, 3), 10'002);
  auto response = response_for<JoinResponse>(effects, 3);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->generation, 3);
  EXPECT_EQ(response->leader, fixture.follower);
}

TEST(GroupStateMachine, members_not_rejoining_within_rebalance_timeout_are_removed) {
  TwoMemberGroup fixture;
  auto& group = fixture.group;
  auto changed = join_request(1, fixture.follower, 3, std::nullopt, {{"range", "new-topics"}}, 10'000, 8'000);
  group.join(changed, 0);
  EXPECT_EQ(group.state(), GroupState::preparing_rebalance);
  // The leader stays alive but does not rejoin.
  for (std::int64_t at_ms : {5'000, 12'000, 20'000, 29'000}) {
    EXPECT_TRUE(group.tick(at_ms).empty());
    group.heartbeat({2, 2, fixture.leader, {}}, at_ms);
  }
  auto effects = group.tick(29'999);
  EXPECT_FALSE(response_for<JoinResponse>(effects, 1)) << "rebalance timeout is the max over members (30 s)";
  effects = group.tick(30'000);
  auto response = response_for<JoinResponse>(effects, 1);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->generation, 3);
  EXPECT_FALSE(group.has_member(fixture.leader));
  EXPECT_EQ(group.leader(), fixture.follower);
}

TEST(GroupStateMachine, initial_rebalance_delay_waits_for_more_members) {
  GroupConfig config;  // default 3000 ms delay
  Group group("g", config, 9);
  group.join(join_request(1, "", 3), 0);
  EXPECT_TRUE(group.tick(2'999).empty());
  group.join(join_request(2, "", 3), 1'000);
  EXPECT_TRUE(group.tick(3'000).empty()) << "a member arrived during the delay: wait another delay";
  auto effects = group.tick(6'000);
  EXPECT_TRUE(response_for<JoinResponse>(effects, 1));
  EXPECT_TRUE(response_for<JoinResponse>(effects, 2));
  EXPECT_EQ(group.generation(), 1);
}

struct StaticGroup {
  Group group{"g", fast_config(), 11};
  std::string a;
  std::string b;
  StaticGroup() {
    group.join(join_request(1, "", 5, "instance-a"), 0);
    group.join(join_request(2, "", 5, "instance-b"), 0);
    auto effects = group.tick(0);
    a = response_for<JoinResponse>(effects, 1)->member_id;
    b = response_for<JoinResponse>(effects, 2)->member_id;
    group.sync({3, 1, b, std::string("instance-b"), {}, {}, {}}, 0);
    group.sync({4, 1, a, std::string("instance-a"), {}, {}, {{a, "pa"}, {b, "pb"}}}, 0);
    EXPECT_EQ(group.state(), GroupState::stable);
  }
};

TEST(GroupStateMachine, static_member_restart_gets_assignment_without_rebalance) {
  StaticGroup fixture;
  auto& group = fixture.group;
  auto effects = group.join(join_request(10, "", 5, "instance-b"), 5'000);
  auto response = response_for<JoinResponse>(effects, 10);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->error, error_code::none);
  EXPECT_NE(response->member_id, fixture.b);
  EXPECT_EQ(response->generation, 1);
  EXPECT_TRUE(has_persist(effects));
  EXPECT_EQ(group.state(), GroupState::stable);
  auto synced = group.sync({11, 1, response->member_id, std::string("instance-b"), {}, {}, {}}, 5'000);
  EXPECT_EQ(response_for<SyncResponse>(synced, 11)->assignment, "pb");
}

TEST(GroupStateMachine, old_static_member_id_is_fenced_82) {
  StaticGroup fixture;
  auto& group = fixture.group;
  group.join(join_request(10, "", 5, "instance-b"), 5'000);
  std::optional<std::string> instance = "instance-b";
  EXPECT_EQ(response_for<HeartbeatResponse>(group.heartbeat({11, 1, fixture.b, instance}, 5'000), 11)->error,
            error_code::fenced_instance_id);
  EXPECT_EQ(response_for<SyncResponse>(group.sync({12, 1, fixture.b, instance, {}, {}, {}}, 5'000), 12)->error,
            error_code::fenced_instance_id);
  EXPECT_EQ(group.commit_check(1, fixture.b, instance, 5'000), error_code::fenced_instance_id);
  EXPECT_EQ(response_for<JoinResponse>(group.join(join_request(13, fixture.b, 5, "instance-b"), 5'000), 13)->error,
            error_code::fenced_instance_id);
}

TEST(GroupStateMachine, static_leader_rejoin_before_v9_is_told_old_leader) {
  StaticGroup fixture;
  auto effects = fixture.group.join(join_request(10, "", 5, "instance-a"), 1);
  auto response = response_for<JoinResponse>(effects, 10);
  EXPECT_EQ(response->leader, fixture.a) << "so the client does not compute an assignment";
  EXPECT_FALSE(response->skip_assignment);
  EXPECT_TRUE(response->members.empty());
  EXPECT_EQ(fixture.group.leader(), response->member_id);
  auto v9 = fixture.group.join(join_request(11, "", 9, "instance-a"), 2);
  auto response_v9 = response_for<JoinResponse>(v9, 11);
  EXPECT_TRUE(response_v9->skip_assignment);
  EXPECT_EQ(response_v9->leader, response_v9->member_id);
  EXPECT_EQ(response_v9->members.size(), 2U);
  EXPECT_EQ(fixture.group.state(), GroupState::stable);
}

TEST(GroupStateMachine, static_member_leaves_by_session_expiry_or_leave_v3) {
  StaticGroup fixture;
  auto& group = fixture.group;
  group.heartbeat({1, 1, fixture.a, std::string("instance-a")}, 9'000);
  group.tick(10'000);
  EXPECT_FALSE(group.has_member(fixture.b));
  EXPECT_EQ(group.state(), GroupState::preparing_rebalance);

  StaticGroup second;
  auto effects = second.group.leave({5, {{"", std::string("instance-b")}, {"ghost", {}}, {"x", std::string("instance-a")}}}, 0);
  auto response = response_for<LeaveResponse>(effects, 5);
  ASSERT_EQ(response->members.size(), 3U);
  EXPECT_EQ(response->members[0].error, error_code::none);
  EXPECT_EQ(response->members[1].error, error_code::unknown_member_id);
  EXPECT_EQ(response->members[2].error, error_code::fenced_instance_id);
  EXPECT_FALSE(second.group.has_member(second.b));
  EXPECT_EQ(second.group.state(), GroupState::preparing_rebalance);
}

TEST(GroupStateMachine, commit_checks) {
  Group empty("g", fast_config(), 1);
  EXPECT_EQ(empty.commit_check(-1, "", std::nullopt, 0), error_code::none) << "simple commit (assign())";
  EXPECT_EQ(empty.commit_check(3, "someone", std::nullopt, 0), error_code::unknown_member_id);

  TwoMemberGroup fixture;
  auto& group = fixture.group;
  EXPECT_EQ(group.commit_check(2, fixture.follower, std::nullopt, 0), error_code::none);
  EXPECT_EQ(group.commit_check(1, fixture.follower, std::nullopt, 0), error_code::illegal_generation);
  EXPECT_EQ(group.commit_check(-1, "", std::nullopt, 0), error_code::unknown_member_id);
  group.join(join_request(1, fixture.leader, 3), 0);
  EXPECT_EQ(group.commit_check(2, fixture.follower, std::nullopt, 0), error_code::none)
      << "PreparingRebalance accepts the previous generation's commits";
  group.join(join_request(2, fixture.follower, 3), 0);
  EXPECT_EQ(group.state(), GroupState::completing_rebalance);
  EXPECT_EQ(group.commit_check(3, fixture.follower, std::nullopt, 0), error_code::rebalance_in_progress);
  EXPECT_EQ(group.commit_check(2, fixture.follower, std::nullopt, 0), error_code::illegal_generation);
}

TEST(GroupStateMachine, last_member_leaving_empties_the_group) {
  Group group("g", fast_config(), 1);
  group.join(join_request(1, "", 3), 0);
  auto member_id = response_for<JoinResponse>(group.tick(0), 1)->member_id;
  group.sync({2, 1, member_id, {}, {}, {}, {{member_id, "x"}}}, 0);
  auto effects = group.leave({3, {{member_id, {}}}}, 1);
  EXPECT_EQ(response_for<LeaveResponse>(effects, 3)->members[0].error, error_code::none);
  EXPECT_TRUE(has_persist(effects));
  EXPECT_EQ(group.state(), GroupState::empty);
  EXPECT_EQ(group.generation(), 2);
  EXPECT_EQ(response_for<SyncResponse>(group.sync({4, 2, member_id, {}, {}, {}, {}}, 2), 4)->error,
            error_code::unknown_member_id);
}

TEST(GroupStateMachine, describe_and_snapshot_round_trip) {
  TwoMemberGroup fixture;
  auto description = fixture.group.describe();
  EXPECT_EQ(description.state, "Stable");
  EXPECT_EQ(description.protocol_type, "consumer");
  EXPECT_EQ(description.protocol, "range");
  ASSERT_EQ(description.members.size(), 2U);
  EXPECT_EQ(description.members[0].assignment, "p0");
  EXPECT_EQ(description.members[0].metadata, "sub");
  auto snapshot = fixture.group.snapshot();
  Group restored = Group::restore("g", fast_config(), 99, snapshot, 100);
  EXPECT_EQ(restored.state(), GroupState::stable);
  EXPECT_EQ(restored.snapshot(), snapshot);
  auto synced = restored.sync({1, 2, fixture.follower, {}, {}, {}, {}}, 100);
  EXPECT_EQ(response_for<SyncResponse>(synced, 1)->assignment, "p1");
}

TEST(GroupStateMachine, dead_group_answers_unknown_member_and_parked_requests_not_coordinator) {
  Group group("g", fast_config(), 1);
  group.join(join_request(1, "", 3), 0);
  auto effects = group.mark_dead();
  EXPECT_EQ(response_for<JoinResponse>(effects, 1)->error, error_code::not_coordinator);
  EXPECT_EQ(group.describe().state, "Dead");
  EXPECT_EQ(response_for<JoinResponse>(group.join(join_request(2, "", 3), 0), 2)->error,
            error_code::unknown_member_id);
  EXPECT_EQ(group.commit_check(-1, "", std::nullopt, 0), error_code::unknown_member_id);
}

}  // namespace
}  // namespace sluice::group
