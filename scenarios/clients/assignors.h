#pragma once
// Client-side partition assignors of Kafka's classic consumer protocol, as the Java client and
// librdkafka implement them: the group leader runs one over every member's subscription (from
// its JoinGroup response) and hands each member its share in SyncGroup. The broker never looks
// inside; it only picks the protocol name every member offers.
//
//   range               per topic, members in order each take a contiguous run of partitions
//   roundrobin          every subscribed partition in (topic, partition) order, dealt in turn
//   cooperative-sticky  (KIP-429) balanced, moving as few owned partitions as possible; a
//                       partition that changes owner is only taken from its owner in this
//                       rebalance, and handed to its new owner in the next one, after the owner
//                       revoked it and rejoined
//
// Member order (range, roundrobin, ties everywhere): static members by group instance id first,
// then dynamic members by member id, like Java's MemberInfo, so a static member restarting with
// a new member id gets the same partitions back.
// Pure: no env, no IO, deterministic (ordered containers only).

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/group/offsets_records.h"

namespace sluice::scenarios::clients {

struct TopicPartition {
  std::string topic = {};
  std::int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};
using TopicPartitions = std::vector<TopicPartition>;

// The consumer protocol's grouped form ([topic, [partition]]) and back; both sorted.
TopicPartitions from_consumer_protocol(const group::ConsumerTopicPartitions& grouped);
group::ConsumerTopicPartitions to_consumer_protocol(const TopicPartitions& partitions);

// Partitions per topic, as Metadata reports them. Subscribed topics missing here are skipped.
using TopicPartitionCounts = std::map<std::string, std::int32_t>;

struct MemberSubscription {
  std::string member_id = {};
  std::optional<std::string> group_instance_id = {};
  std::vector<std::string> topics = {};
  // cooperative-sticky: what the member says it owns, and in which generation (-1: unknown).
  TopicPartitions owned_partitions = {};
  std::int32_t generation = -1;
};

// Member id -> its partitions, sorted; every member has an entry (possibly empty).
using GroupAssignment = std::map<std::string, TopicPartitions>;

enum class AssignmentStrategy : std::uint8_t { range, roundrobin, cooperative_sticky };

// The JoinGroup protocol names: "range", "roundrobin", "cooperative-sticky".
std::string_view protocol_name(AssignmentStrategy strategy);
std::optional<AssignmentStrategy> strategy_from_protocol_name(std::string_view name);
// Cooperative members keep their partitions through a rebalance and give up only those that
// move; eager members give up everything before they rejoin.
bool is_cooperative(AssignmentStrategy strategy);

GroupAssignment assign(AssignmentStrategy strategy, const TopicPartitionCounts& topics,
                       std::span<const MemberSubscription> members);

GroupAssignment assign_range(const TopicPartitionCounts& topics,
                             std::span<const MemberSubscription> members);
GroupAssignment assign_roundrobin(const TopicPartitionCounts& topics,
                                  std::span<const MemberSubscription> members);
// The eager sticky target: every owned partition that is still valid stays (a partition claimed
// twice stays with the claim of the highest generation), the rest go to the members with the
// fewest, then partitions move from the fullest members to eligible members holding at least two
// fewer until none can. For one topic subscribed by all, counts then differ by at most one.
GroupAssignment assign_sticky(const TopicPartitionCounts& topics,
                              std::span<const MemberSubscription> members);
// assign_sticky, minus every partition it would add to a member while another member still
// claims it: the claimant does not get it either, so it revokes it and rejoins, and the next
// rebalance hands it over.
GroupAssignment assign_cooperative_sticky(const TopicPartitionCounts& topics,
                                          std::span<const MemberSubscription> members);

}  // namespace sluice::scenarios::clients
