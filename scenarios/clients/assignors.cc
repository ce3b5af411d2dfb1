#include "scenarios/clients/assignors.h"

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <set>

namespace sluice::scenarios::clients {

namespace {

// Java's MemberInfo order: static members (by instance id) before dynamic ones (by member id).
bool member_before(const MemberSubscription& left, const MemberSubscription& right) {
  if (left.group_instance_id.has_value() != right.group_instance_id.has_value()) {
    return left.group_instance_id.has_value();
  }
  if (left.group_instance_id.has_value() && *left.group_instance_id != *right.group_instance_id) {
    return *left.group_instance_id < *right.group_instance_id;
  }
  return left.member_id < right.member_id;
}

// Indexes into `members`, in member order.
std::vector<std::size_t> member_order(std::span<const MemberSubscription> members) {
  std::vector<std::size_t> order(members.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t left, std::size_t right) {
    return member_before(members[left], members[right]);
  });
  return order;
}

bool subscribes(const MemberSubscription& member, std::string_view topic) {
  return std::find(member.topics.begin(), member.topics.end(), topic) != member.topics.end();
}

// An entry for every member; asserts member ids are unique.
GroupAssignment empty_assignment(std::span<const MemberSubscription> members) {
  GroupAssignment assignment;
  for (const auto& member : members) {
    const bool inserted = assignment.emplace(member.member_id, TopicPartitions{}).second;
    assert(inserted && "member ids must be unique");
    (void)inserted;
  }
  return assignment;
}

void sort_each(GroupAssignment& assignment) {
  for (auto& [member, partitions] : assignment) std::sort(partitions.begin(), partitions.end());
}

// Every partition of a topic some member subscribes to, sorted.
TopicPartitions subscribed_partitions(const TopicPartitionCounts& topics,
                                      std::span<const MemberSubscription> members) {
  TopicPartitions partitions;
  for (const auto& [topic, count] : topics) {
    const bool wanted = std::any_of(members.begin(), members.end(),
                                    [&](const auto& member) { return subscribes(member, topic); });
    if (!wanted) continue;
    for (std::int32_t partition = 0; partition < count; ++partition) {
      partitions.push_back({topic, partition});
    }
  }
  return partitions;
}

// The sticky assignor's working state: who holds what, by member index.
class StickyPlan {
 public:
  StickyPlan(const TopicPartitionCounts& topics, std::span<const MemberSubscription> members)
      : topics_(topics),
        members_(members),
        order_(member_order(members)),
        held_(members.size()),
        kept_(members.size()) {}

  GroupAssignment run() {
    keep_valid_owned();
    hand_out_unassigned();
    balance();
    GroupAssignment assignment = empty_assignment(members_);
    for (std::size_t member = 0; member < members_.size(); ++member) {
      auto& partitions = assignment[members_[member].member_id];
      partitions.assign(held_[member].begin(), held_[member].end());
    }
    return assignment;
  }

 private:
  bool eligible(std::size_t member, const TopicPartition& partition) const {
    return subscribes(members_[member], partition.topic);
  }

  bool exists(const TopicPartition& partition) const {
    auto topic = topics_.find(partition.topic);
    return topic != topics_.end() && partition.partition >= 0 &&
           partition.partition < topic->second;
  }

  // A claim stays when the partition exists, the member still subscribes to its topic, and no
  // other member claims it in a higher generation (ties: the first member in member order).
  void keep_valid_owned() {
    std::map<TopicPartition, std::size_t> winner;
    for (std::size_t member : order_) {
      for (const auto& partition : members_[member].owned_partitions) {
        if (!exists(partition) || !eligible(member, partition)) continue;
        auto [claim, inserted] = winner.try_emplace(partition, member);
        if (!inserted && members_[member].generation > members_[claim->second].generation) {
          claim->second = member;
        }
      }
    }
    for (const auto& [partition, member] : winner) {
      held_[member].insert(partition);
      kept_[member].insert(partition);
    }
  }

  // The member with the fewest partitions among those eligible (first in member order on ties).
  std::optional<std::size_t> emptiest_eligible(const TopicPartition& partition) const {
    std::optional<std::size_t> best;
    for (std::size_t member : order_) {
      if (!eligible(member, partition)) continue;
      if (!best || held_[member].size() < held_[*best].size()) best = member;
    }
    return best;
  }

  void hand_out_unassigned() {
    std::set<TopicPartition> taken;
    for (const auto& held : held_) taken.insert(held.begin(), held.end());
    for (const auto& partition : subscribed_partitions(topics_, members_)) {
      if (taken.contains(partition)) continue;
      const auto member = emptiest_eligible(partition);
      assert(member.has_value() && "a subscribed partition has a subscriber");
      held_[*member].insert(partition);
    }
  }

  // One move from the fullest member possible to an eligible member with at least two fewer.
  // Partitions the giver did not own before go first, so owned ones stay where possible.
  bool move_one() {
    std::vector<std::size_t> givers = order_;
    std::stable_sort(givers.begin(), givers.end(), [&](std::size_t left, std::size_t right) {
      return held_[left].size() > held_[right].size();
    });
    for (std::size_t giver : givers) {
      for (const bool owned_pass : {false, true}) {
        for (auto it = held_[giver].rbegin(); it != held_[giver].rend(); ++it) {
          if (kept_[giver].contains(*it) != owned_pass) continue;
          const auto taker = emptiest_eligible(*it);
          if (!taker || held_[*taker].size() + 2 > held_[giver].size()) continue;
          const TopicPartition partition = *it;
          held_[giver].erase(partition);
          held_[*taker].insert(partition);
          return true;
        }
      }
    }
    return false;
  }

  // Each move lowers the sum of squared counts by at least 2, which starts below P^2.
  void balance() {
    std::size_t total = 0;
    for (const auto& held : held_) total += held.size();
    const std::size_t moves_max = total * total + 1;
    std::size_t moves = 0;
    while (move_one()) {
      ++moves;
      assert(moves <= moves_max && "sticky balancing must converge");
      if (moves > moves_max) break;
    }
  }

  const TopicPartitionCounts& topics_;
  std::span<const MemberSubscription> members_;
  std::vector<std::size_t> order_;
  std::vector<std::set<TopicPartition>> held_;
  std::vector<std::set<TopicPartition>> kept_;  // valid owned partitions still held
};

}  // namespace

TopicPartitions from_consumer_protocol(const group::ConsumerTopicPartitions& grouped) {
  TopicPartitions partitions;
  for (const auto& [topic, numbers] : grouped) {
    for (std::int32_t partition : numbers) partitions.push_back({topic, partition});
  }
  std::sort(partitions.begin(), partitions.end());
  return partitions;
}

group::ConsumerTopicPartitions to_consumer_protocol(const TopicPartitions& partitions) {
  TopicPartitions sorted = partitions;
  std::sort(sorted.begin(), sorted.end());
  group::ConsumerTopicPartitions grouped;
  for (const auto& [topic, partition] : sorted) {
    if (grouped.empty() || grouped.back().first != topic)
      grouped.emplace_back(topic, std::vector<std::int32_t>{});
    grouped.back().second.push_back(partition);
  }
  return grouped;
}

std::string_view protocol_name(AssignmentStrategy strategy) {
  switch (strategy) {
    case AssignmentStrategy::range:
      return "range";
    case AssignmentStrategy::roundrobin:
      return "roundrobin";
    case AssignmentStrategy::cooperative_sticky:
      return "cooperative-sticky";
  }
  return "unknown";
}

std::optional<AssignmentStrategy> strategy_from_protocol_name(std::string_view name) {
  for (auto strategy : {AssignmentStrategy::range, AssignmentStrategy::roundrobin,
                        AssignmentStrategy::cooperative_sticky}) {
    if (protocol_name(strategy) == name) return strategy;
  }
  return std::nullopt;
}

bool is_cooperative(AssignmentStrategy strategy) {
  return strategy == AssignmentStrategy::cooperative_sticky;
}

GroupAssignment assign(AssignmentStrategy strategy, const TopicPartitionCounts& topics,
                       std::span<const MemberSubscription> members) {
  switch (strategy) {
    case AssignmentStrategy::range:
      return assign_range(topics, members);
    case AssignmentStrategy::roundrobin:
      return assign_roundrobin(topics, members);
    case AssignmentStrategy::cooperative_sticky:
      return assign_cooperative_sticky(topics, members);
  }
  assert(false && "unknown assignment strategy");
  return empty_assignment(members);
}

GroupAssignment assign_range(const TopicPartitionCounts& topics,
                             std::span<const MemberSubscription> members) {
  GroupAssignment assignment = empty_assignment(members);
  const auto order = member_order(members);
  for (const auto& [topic, count] : topics) {
    std::vector<std::size_t> subscribers;
    for (std::size_t member : order) {
      if (subscribes(members[member], topic)) subscribers.push_back(member);
    }
    if (subscribers.empty()) continue;
    const auto consumers = static_cast<std::int32_t>(subscribers.size());
    const std::int32_t each = count / consumers;
    const std::int32_t extra = count % consumers;
    for (std::int32_t i = 0; i < consumers; ++i) {
      const std::int32_t start = each * i + std::min(i, extra);
      const std::int32_t length = each + (i < extra ? 1 : 0);
      auto& partitions = assignment[members[subscribers[i]].member_id];
      for (std::int32_t partition = start; partition < start + length; ++partition) {
        partitions.push_back({topic, partition});
      }
    }
  }
  sort_each(assignment);
  return assignment;
}

GroupAssignment assign_roundrobin(const TopicPartitionCounts& topics,
                                  std::span<const MemberSubscription> members) {
  GroupAssignment assignment = empty_assignment(members);
  const auto order = member_order(members);
  std::size_t cursor = 0;
  for (const auto& partition : subscribed_partitions(topics, members)) {
    // At most one full turn: some member subscribes to every partition listed.
    for (std::size_t step = 0; step < order.size(); ++step) {
      const std::size_t member = order[cursor];
      cursor = (cursor + 1) % order.size();
      if (!subscribes(members[member], partition.topic)) continue;
      assignment[members[member].member_id].push_back(partition);
      break;
    }
  }
  sort_each(assignment);
  return assignment;
}

GroupAssignment assign_sticky(const TopicPartitionCounts& topics,
                              std::span<const MemberSubscription> members) {
  return StickyPlan(topics, members).run();
}

GroupAssignment assign_cooperative_sticky(const TopicPartitionCounts& topics,
                                          std::span<const MemberSubscription> members) {
  GroupAssignment assignment = assign_sticky(topics, members);
  std::map<TopicPartition, std::vector<std::string_view>> claimants;
  for (const auto& member : members) {
    for (const auto& partition : member.owned_partitions) {
      claimants[partition].push_back(member.member_id);
    }
  }
  for (auto& [member_id, partitions] : assignment) {
    std::erase_if(partitions, [&](const TopicPartition& partition) {
      auto claim = claimants.find(partition);
      if (claim == claimants.end()) return false;
      const auto& owners = claim->second;
      const bool owned_here = std::find(owners.begin(), owners.end(), member_id) != owners.end();
      return !owned_here;  // added here while another member still claims it
    });
  }
  return assignment;
}

}  // namespace sluice::scenarios::clients
