// The client-side assignors: Java's documented examples for range and roundrobin, static members
// keeping their place, the cooperative two-phase hand-over, and rapidcheck properties (every
// subscribed partition owned exactly once, balance, stickiness, cooperative never handing out a
// partition another member still owns, cooperative rounds converging).
#include "scenarios/clients/assignors.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace sluice::scenarios::clients {
namespace {

MemberSubscription member(std::string id, std::vector<std::string> topics,
                          TopicPartitions owned = {}, std::int32_t generation = -1) {
  return {.member_id = std::move(id),
          .topics = std::move(topics),
          .owned_partitions = std::move(owned),
          .generation = generation};
}

TopicPartitions partitions_of(std::string_view topic, std::vector<std::int32_t> numbers) {
  TopicPartitions result;
  for (auto number : numbers) result.push_back({std::string(topic), number});
  return result;
}

TopicPartitions concat(TopicPartitions left, const TopicPartitions& right) {
  left.insert(left.end(), right.begin(), right.end());
  std::sort(left.begin(), left.end());
  return left;
}

// Who holds each partition; fails the test on a partition held twice.
std::map<TopicPartition, std::string> owners(const GroupAssignment& assignment) {
  std::map<TopicPartition, std::string> result;
  for (const auto& [member_id, partitions] : assignment) {
    for (const auto& partition : partitions) {
      const auto [it, inserted] = result.emplace(partition, member_id);
      EXPECT_TRUE(inserted) << partition.topic << "-" << partition.partition << " twice";
    }
  }
  return result;
}

TEST(Assignors, range_gives_each_member_a_contiguous_run_per_topic) {
  const TopicPartitionCounts topics{{"t0", 3}, {"t1", 3}};
  const std::vector members{member("c0", {"t0", "t1"}), member("c1", {"t0", "t1"})};
  const auto assignment = assign_range(topics, members);
  EXPECT_EQ(assignment.at("c0"), concat(partitions_of("t0", {0, 1}), partitions_of("t1", {0, 1})));
  EXPECT_EQ(assignment.at("c1"), concat(partitions_of("t0", {2}), partitions_of("t1", {2})));
}

TEST(Assignors, roundrobin_deals_partitions_in_turn) {
  const TopicPartitionCounts topics{{"t0", 3}, {"t1", 3}};
  const std::vector members{member("c0", {"t0", "t1"}), member("c1", {"t0", "t1"})};
  const auto assignment = assign_roundrobin(topics, members);
  EXPECT_EQ(assignment.at("c0"), concat(partitions_of("t0", {0, 2}), partitions_of("t1", {1})));
  EXPECT_EQ(assignment.at("c1"), concat(partitions_of("t0", {1}), partitions_of("t1", {0, 2})));
}

TEST(Assignors, roundrobin_skips_members_not_subscribed) {
  const TopicPartitionCounts topics{{"t0", 1}, {"t1", 2}, {"t2", 3}};
  const std::vector members{member("c0", {"t0"}), member("c1", {"t0", "t1"}),
                            member("c2", {"t0", "t1", "t2"})};
  const auto assignment = assign_roundrobin(topics, members);
  EXPECT_EQ(assignment.at("c0"), partitions_of("t0", {0}));
  EXPECT_EQ(assignment.at("c1"), partitions_of("t1", {0}));
  EXPECT_EQ(assignment.at("c2"), concat(partitions_of("t1", {1}), partitions_of("t2", {0, 1, 2})));
}

TEST(Assignors, static_members_keep_their_place_under_a_new_member_id) {
  const TopicPartitionCounts topics{{"t", 4}};
  auto first = member("z-old", {"t"});
  first.group_instance_id = "a";
  auto second = member("a-other", {"t"});
  second.group_instance_id = "b";
  const auto before = assign_range(topics, std::vector{first, second});
  first.member_id = "zz-new";  // the static member restarted
  const auto after = assign_range(topics, std::vector{first, second});
  EXPECT_EQ(before.at("z-old"), after.at("zz-new"));
  EXPECT_EQ(after.at("zz-new"), partitions_of("t", {0, 1}));
}

TEST(Assignors, cooperative_hands_a_moving_partition_over_in_two_rebalances) {
  const TopicPartitionCounts topics{{"t", 6}};
  std::vector members{member("a", {"t"}, partitions_of("t", {0, 1, 2}), 1),
                      member("b", {"t"}, partitions_of("t", {3, 4, 5}), 1), member("c", {"t"})};
  const auto first = assign_cooperative_sticky(topics, members);
  // a and b give one each up, c gets nothing yet: nobody is assigned a partition still owned.
  EXPECT_EQ(first.at("a").size(), 2u);
  EXPECT_EQ(first.at("b").size(), 2u);
  EXPECT_TRUE(first.at("c").empty());
  for (auto& subscription : members) {
    subscription.owned_partitions = first.at(subscription.member_id);
    subscription.generation = 2;
  }
  const auto second = assign_cooperative_sticky(topics, members);
  EXPECT_EQ(second.at("a"), first.at("a"));
  EXPECT_EQ(second.at("b"), first.at("b"));
  EXPECT_EQ(second.at("c").size(), 2u);
  EXPECT_EQ(owners(second).size(), 6u);
}

TEST(Assignors, sticky_prefers_the_claim_of_the_newest_generation) {
  const TopicPartitionCounts topics{{"t", 2}};
  const std::vector members{member("a", {"t"}, partitions_of("t", {0}), 3),
                            member("b", {"t"}, partitions_of("t", {0}), 5)};
  const auto assignment = assign_sticky(topics, members);
  EXPECT_EQ(assignment.at("b"), partitions_of("t", {0}));
  EXPECT_EQ(assignment.at("a"), partitions_of("t", {1}));
}

TEST(Assignors, protocol_names_round_trip) {
  for (auto strategy : {AssignmentStrategy::range, AssignmentStrategy::roundrobin,
                        AssignmentStrategy::cooperative_sticky}) {
    EXPECT_EQ(strategy_from_protocol_name(protocol_name(strategy)), strategy);
  }
  EXPECT_FALSE(strategy_from_protocol_name("sticky").has_value());
  EXPECT_EQ(to_consumer_protocol(concat(partitions_of("b", {1}), partitions_of("a", {2, 0}))),
            (group::ConsumerTopicPartitions{{"a", {0, 2}}, {"b", {1}}}));
  EXPECT_EQ(from_consumer_protocol({{"b", {1}}, {"a", {2, 0}}}),
            concat(partitions_of("a", {0, 2}), partitions_of("b", {1})));
}

// ---- Properties

struct Scenario {
  TopicPartitionCounts topics;
  std::vector<MemberSubscription> members;
};

const std::vector<std::string> kTopicNames{"alpha", "beta", "gamma"};

// Up to 3 topics of 0-12 partitions, 1-7 members each subscribed to a non-empty subset (or, when
// `single_topic`, to one topic all of them), no owned partitions.
Scenario generate_scenario(bool single_topic) {
  Scenario scenario;
  const auto topic_count = single_topic ? 1 : *rc::gen::inRange(1, 4);
  for (int i = 0; i < topic_count; ++i) {
    scenario.topics[kTopicNames[i]] = *rc::gen::inRange(0, 13);
  }
  const auto member_count = *rc::gen::inRange(1, 8);
  for (int i = 0; i < member_count; ++i) {
    MemberSubscription subscription{.member_id = "member-" + std::to_string(i)};
    for (const auto& [topic, count] : scenario.topics) {
      if (single_topic || *rc::gen::arbitrary<bool>()) subscription.topics.push_back(topic);
    }
    if (subscription.topics.empty()) subscription.topics.push_back(scenario.topics.begin()->first);
    if (*rc::gen::inRange(0, 3) == 0)
      subscription.group_instance_id = "instance-" + std::to_string(i);
    scenario.members.push_back(std::move(subscription));
  }
  return scenario;
}

AssignmentStrategy generate_strategy() {
  return *rc::gen::element(AssignmentStrategy::range, AssignmentStrategy::roundrobin,
                           AssignmentStrategy::cooperative_sticky);
}

// Every partition of a subscribed topic held by exactly one member, and only by a subscriber.
void check_complete_and_exclusive(const Scenario& scenario, const GroupAssignment& assignment) {
  std::map<TopicPartition, int> held;
  for (const auto& subscription : scenario.members) {
    for (const auto& partition : assignment.at(subscription.member_id)) {
      RC_ASSERT(std::find(subscription.topics.begin(), subscription.topics.end(),
                          partition.topic) != subscription.topics.end());
      ++held[partition];
    }
  }
  for (const auto& [topic, count] : scenario.topics) {
    const bool subscribed = std::any_of(
        scenario.members.begin(), scenario.members.end(), [&](const auto& subscription) {
          return std::find(subscription.topics.begin(), subscription.topics.end(), topic) !=
                 subscription.topics.end();
        });
    for (std::int32_t partition = 0; partition < count; ++partition) {
      const auto found = held.find({topic, partition});
      RC_ASSERT((found == held.end() ? 0 : found->second) == (subscribed ? 1 : 0));
    }
  }
  RC_ASSERT(assignment.size() == scenario.members.size());
}

void check_balanced(const GroupAssignment& assignment) {
  std::size_t fewest = SIZE_MAX, most = 0;
  for (const auto& [member_id, partitions] : assignment) {
    fewest = std::min(fewest, partitions.size());
    most = std::max(most, partitions.size());
  }
  RC_ASSERT(most - fewest <= 1);
}

// Each member now owns what `assignment` gave it, in `generation`.
void adopt(std::vector<MemberSubscription>& members, const GroupAssignment& assignment,
           std::int32_t generation) {
  for (auto& subscription : members) {
    subscription.owned_partitions = assignment.at(subscription.member_id);
    subscription.generation = generation;
  }
}

RC_GTEST_PROP(AssignorProperty, every_subscribed_partition_is_assigned_to_exactly_one_member, ()) {
  const auto scenario = generate_scenario(false);
  // With nothing owned yet, cooperative-sticky has nothing to withhold.
  check_complete_and_exclusive(scenario,
                               assign(generate_strategy(), scenario.topics, scenario.members));
}

RC_GTEST_PROP(AssignorProperty, one_topic_subscribed_by_all_is_balanced, ()) {
  auto scenario = generate_scenario(true);
  const auto strategy = generate_strategy();
  check_balanced(assign(strategy, scenario.topics, scenario.members));
  // Sticky also balances from any earlier owner: members leave, others join.
  const auto earlier = assign_sticky(scenario.topics, scenario.members);
  adopt(scenario.members, earlier, 1);
  const auto leaving = *rc::gen::inRange<std::size_t>(0, scenario.members.size());
  scenario.members.erase(scenario.members.begin(), scenario.members.begin() + leaving);
  scenario.members.push_back(member("newcomer", {scenario.topics.begin()->first}));
  const auto later = assign_sticky(scenario.topics, scenario.members);
  check_complete_and_exclusive(scenario, later);
  check_balanced(later);
}

RC_GTEST_PROP(AssignorProperty, sticky_keeps_owned_partitions_when_membership_is_unchanged, ()) {
  auto scenario = generate_scenario(false);
  const auto strategy =
      *rc::gen::element(AssignmentStrategy::cooperative_sticky, AssignmentStrategy::range);
  const auto first = strategy == AssignmentStrategy::range
                         ? assign_range(scenario.topics, scenario.members)  // any valid start
                         : assign_sticky(scenario.topics, scenario.members);
  adopt(scenario.members, first, 1);
  const auto second = assign_sticky(scenario.topics, scenario.members);
  adopt(scenario.members, second, 2);
  // A sticky assignment is a fixed point: the next rebalance moves nothing (from range's start,
  // after the one that balanced it).
  RC_ASSERT(assign_sticky(scenario.topics, scenario.members) == second);
  RC_ASSERT(assign_cooperative_sticky(scenario.topics, scenario.members) == second);
}

RC_GTEST_PROP(AssignorProperty, sticky_moves_only_the_partitions_of_a_member_that_left, ()) {
  auto scenario = generate_scenario(true);
  RC_PRE(scenario.members.size() >= 2u);
  const auto before = assign_sticky(scenario.topics, scenario.members);
  adopt(scenario.members, before, 1);
  const auto leaving = *rc::gen::inRange<std::size_t>(0, scenario.members.size());
  scenario.members.erase(scenario.members.begin() + static_cast<std::ptrdiff_t>(leaving));
  const auto after = assign_sticky(scenario.topics, scenario.members);
  for (const auto& subscription : scenario.members) {
    const auto& now = after.at(subscription.member_id);
    for (const auto& partition : subscription.owned_partitions) {
      RC_ASSERT(std::find(now.begin(), now.end(), partition) != now.end());
    }
  }
}

RC_GTEST_PROP(AssignorProperty, cooperative_never_assigns_a_partition_another_member_owns, ()) {
  auto scenario = generate_scenario(false);
  // Arbitrary claims: overlapping, stale, of unknown topics or partitions.
  for (auto& subscription : scenario.members) {
    const auto claims = *rc::gen::inRange(0, 6);
    for (int i = 0; i < claims; ++i) {
      subscription.owned_partitions.push_back(
          {*rc::gen::elementOf(kTopicNames), *rc::gen::inRange(0, 14)});
    }
    subscription.generation = *rc::gen::inRange(-1, 4);
  }
  const auto assignment = assign_cooperative_sticky(scenario.topics, scenario.members);
  owners(assignment);
  for (const auto& [member_id, partitions] : assignment) {
    for (const auto& partition : partitions) {
      for (const auto& other : scenario.members) {
        if (other.member_id == member_id) continue;
        const auto& claims = other.owned_partitions;
        const bool claimed_here =
            std::ranges::any_of(scenario.members, [&](const MemberSubscription& self) {
              return self.member_id == member_id &&
                     std::ranges::find(self.owned_partitions, partition) !=
                         self.owned_partitions.end();
            });
        RC_ASSERT(claimed_here || std::ranges::find(claims, partition) == claims.end());
      }
    }
  }
}

RC_GTEST_PROP(AssignorProperty, cooperative_rounds_converge_revoking_only_what_moves, ()) {
  auto scenario = generate_scenario(false);
  const auto start = assign_sticky(scenario.topics, scenario.members);
  adopt(scenario.members, start, 1);
  // Membership changes: some leave, one joins.
  const auto leaving = *rc::gen::inRange<std::size_t>(0, scenario.members.size());
  scenario.members.erase(scenario.members.begin(), scenario.members.begin() + leaving);
  scenario.members.push_back(member("newcomer", {scenario.topics.begin()->first}));
  const auto target = assign_sticky(scenario.topics, scenario.members);
  const auto first = assign_cooperative_sticky(scenario.topics, scenario.members);
  for (const auto& subscription : scenario.members) {
    // A member gives up exactly the owned partitions the target moves elsewhere.
    const auto& kept = first.at(subscription.member_id);
    const auto& wanted = target.at(subscription.member_id);
    for (const auto& partition : subscription.owned_partitions) {
      const bool stays = std::ranges::find(wanted, partition) != wanted.end();
      RC_ASSERT((std::ranges::find(kept, partition) != kept.end()) == stays);
    }
  }
  // Then the revoked partitions are handed over; rebalances settle on a complete assignment
  // that the next rebalance keeps (for one topic: in the second rebalance, and balanced).
  const bool single_topic = scenario.topics.size() == 1;
  GroupAssignment current = first;
  for (std::int32_t generation = 2; generation <= 8; ++generation) {
    adopt(scenario.members, current, generation);
    const auto next = assign_cooperative_sticky(scenario.topics, scenario.members);
    if (next == current) break;
    RC_ASSERT(!single_topic || generation == 2);
    current = next;
  }
  adopt(scenario.members, current, 9);
  RC_ASSERT(assign_cooperative_sticky(scenario.topics, scenario.members) == current);
  check_complete_and_exclusive(scenario, current);
  if (single_topic) check_balanced(current);
}

}  // namespace
}  // namespace sluice::scenarios::clients
