#pragma once
// GroupCoordinator: every consumer group this node coordinates (all of them, until replication
// spreads __consumer_offsets' partitions over nodes). It drives one pure group::Group state
// machine per group (core/group/group_state_machine.h) and owns what the machines do not: parked
// requests, timers, committed offsets, and persistence in the internal `__consumer_offsets`
// topic in Kafka's record formats (core/group/offsets_records.h), partition = partitionFor(group).
//
// Lifecycle: open() creates __consumer_offsets when missing and rebuilds every group (Kafka's
// loadGroupsAndOffsets: last record per key wins, tombstones delete) before the broker serves;
// start() spawns the timer fiber (session, join and sync deadlines) and the offsets-retention
// fiber; the broker's scope teardown stops them.
//
// Concurrency: one scheduler. Each group has a mutex held while its machine steps and while the
// step's PersistGroup effects are written, so "persist, then answer" holds and records reach the
// log in the machine's order. A request whose answer is not immediate (a parked JoinGroup or
// SyncGroup) waits on a promise outside the mutex; the effect that answers it is delivered by
// whichever fiber steps the machine then (another member's request or the timer fiber).
// Durability: a commit or a group record is acknowledged only after its append is durable.
//
// Compaction: the log itself is not compacted. Instead, once a partition of __consumer_offsets
// holds more than two segments and twice what its last checkpoint wrote, the coordinator
// re-appends the live state of that partition's groups (each group's last persisted metadata and
// its committed offsets, under the group's mutex so no in-flight commit is missed) and then
// deletes the records before that checkpoint (DeleteRecords). A crash in between leaves both
// copies; replay is last-write-wins, so the state is the same.
//
// Offsets retention (Kafka 2.1+, KIP-211): an Empty group's offsets expire `offsets_retention`
// after the group became Empty; offsets of a group that never used group management ("simple"
// commits) expire that long after each commit. A group that is Empty with no offsets left is
// removed (group tombstone).

#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/env/env.h"
#include "core/group/group_state_machine.h"
#include "core/group/offsets_records.h"
#include "core/kafka/topic_manager.h"

namespace sluice::kafka {

struct CoordinatorConfig {
  group::GroupConfig group;
  std::int32_t offsets_topic_partitions = group::kOffsetsTopicPartitionsDefault;
  Duration offsets_retention = milliseconds(7LL * 24 * 3600 * 1000);
  Duration offsets_retention_check_interval = milliseconds(600000);
  std::size_t offset_metadata_bytes_max = 4096;  // offset.metadata.max.bytes
  // __consumer_offsets' segment size, and how often its partitions are checked for compaction.
  std::uint64_t offsets_segment_bytes = 16 * 1024 * 1024;
  Duration offsets_compaction_check_interval = seconds(30);
};

// One partition of an OffsetCommit, with its result.
struct OffsetCommitEntry {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::int32_t leader_epoch = -1;
  std::optional<std::string> metadata;
  std::int16_t error = 0;  // out
};

struct CommittedOffset {
  std::int64_t offset = -1;  // -1: none committed
  std::int32_t leader_epoch = -1;
  std::string metadata;
  std::int16_t error = 0;
};

using TopicPartitionKey = std::pair<std::string, std::int32_t>;

struct ListedGroup {
  std::string group_id;
  std::string protocol_type;
  std::string state;
};

class GroupCoordinator {
 public:
  GroupCoordinator(Env& env, TopicManager& topics, CoordinatorConfig config);
  ~GroupCoordinator();
  GroupCoordinator(const GroupCoordinator&) = delete;
  GroupCoordinator& operator=(const GroupCoordinator&) = delete;

  std::expected<void, storage::LogError> open();
  // Spawns the timer and retention fibers in `scope` (they end with it).
  void start(Scope& scope);

  // The classic protocol. Each returns the request's response, waiting while it is parked.
  group::JoinResponse join(const std::string& group_id, group::JoinRequest request);
  group::SyncResponse sync(const std::string& group_id, group::SyncRequest request);
  group::HeartbeatResponse heartbeat(const std::string& group_id, group::HeartbeatRequest request);
  group::LeaveResponse leave(const std::string& group_id, group::LeaveRequest request);

  // OffsetCommit: fills each entry's error. `generation` -1 with an empty member id is a simple
  // commit (assign()-style consumers), accepted only while the group is Empty.
  void commit_offsets(const std::string& group_id, std::int32_t generation,
                      const std::string& member_id,
                      const std::optional<std::string>& group_instance_id,
                      std::vector<OffsetCommitEntry>& entries);
  // OffsetFetch: the committed offsets of `partitions`, or of every partition with one when
  // nullopt. Unknown groups have no offsets (offset -1, no error), as in Kafka.
  std::vector<std::pair<TopicPartitionKey, CommittedOffset>> fetch_offsets(
      const std::string& group_id, const std::optional<std::vector<TopicPartitionKey>>& partitions);

  // DescribeGroups: nullopt for an unknown group (Kafka answers state "Dead").
  std::optional<group::GroupDescription> describe(const std::string& group_id) const;
  std::vector<ListedGroup> list() const;
  // DeleteGroups: 0, NON_EMPTY_GROUP (68), GROUP_ID_NOT_FOUND (69) or NOT_COORDINATOR (16) when
  // the tombstones could not be written.
  std::int16_t delete_group(const std::string& group_id);
  // OffsetDelete: top-level error (GROUP_ID_NOT_FOUND) or per-partition errors filled in
  // (GROUP_SUBSCRIBED_TO_TOPIC 86 while a Stable/rebalancing consumer group subscribes to it).
  std::int16_t delete_offsets(const std::string& group_id,
                              std::vector<OffsetCommitEntry>& partitions);
  // A topic was deleted: its committed offsets go too (tombstones), as Kafka does.
  void on_topic_deleted(const std::string& topic);

  // The broker stops: every parked JoinGroup/SyncGroup answers NOT_COORDINATOR now (the client
  // looks the coordinator up again) instead of waiting for its rebalance.
  void abandon_parked();

  // The group's state machine, read-only (status, metrics); nullptr when unknown. Valid until
  // the caller next suspends.
  const group::Group* find_machine(std::string_view group_id) const;

  // For tests and metrics.
  std::size_t group_count() const { return groups_.size(); }
  std::int32_t partition_for(std::string_view group_id) const;

 private:
  struct GroupEntry;
  using OffsetsRecordBytes = std::pair<std::string, std::optional<std::string>>;  // key, value

  // Monotonic milliseconds: what the group machines run on.
  std::int64_t now_ms() const;
  // Wall minus monotonic milliseconds now (stored timestamps are wall-clock, as in Kafka).
  std::int64_t wall_offset_ms() const;
  std::shared_ptr<GroupEntry> find(std::string_view group_id) const;
  std::shared_ptr<GroupEntry> find_or_create(const std::string& group_id);
  // A group found (or created) and locked for the scope of this object; empty when the group
  // does not exist. Holds the entry for as long as the lock (the entry owns the mutex).
  class LockedGroup {
   public:
    LockedGroup(GroupCoordinator& coordinator, const std::string& group_id, bool create);
    explicit operator bool() const { return entry_ != nullptr; }
    GroupEntry* operator->() const { return entry_.get(); }
    GroupEntry& operator*() const { return *entry_; }

   private:
    std::shared_ptr<GroupEntry> entry_;  // declared first: outlives lock_
    std::optional<LockGuard> lock_;
  };

  // Delivers a step's effects in order (caller holds the mutex): writes PersistGroup snapshots,
  // answers the waiting requests.
  void deliver(GroupEntry& entry, group::Effects effects);
  // Registers a waiter for `token`, steps the machine under the mutex, then waits for the answer.
  template <typename Response, typename Step>
  Response run_parked(const std::string& group_id, bool create, group::RequestToken token,
                      Step step);

  // Appends records to the group's __consumer_offsets partition and waits until durable.
  std::expected<void, storage::LogError> append_records(std::string_view group_id,
                                                        std::vector<OffsetsRecordBytes> records);
  std::expected<void, storage::LogError> persist_group(GroupEntry& entry,
                                                       const group::GroupSnapshot& snapshot);
  std::expected<void, storage::LogError> remove_offsets(GroupEntry& entry,
                                                        const std::vector<TopicPartitionKey>& keys);
  // Writes tombstones for the group and its offsets, answers parked requests and forgets it.
  std::expected<void, storage::LogError> remove_group(GroupEntry& entry);

  std::expected<void, storage::LogError> load_partition(
      storage::PartitionLog& log, const std::function<void(const group::OffsetsRecord&)>& apply);

  void compaction_loop();
  // Rewrites partition `index`'s live records and deletes what precedes them.
  std::expected<void, storage::LogError> compact_partition(std::int32_t index);

  void timer_loop();
  void retention_loop();
  void expire_offsets(GroupEntry& entry);

  Env& env_;
  TopicManager& topics_;
  CoordinatorConfig config_;
  Log log_;
  std::int32_t offsets_partitions_ = group::kOffsetsTopicPartitionsDefault;
  std::map<std::string, std::shared_ptr<GroupEntry>, std::less<>> groups_;
  group::RequestToken next_token_ = 1;
  // The timer fiber sleeps until timer_wake_ms_ (INT64_MIN while awake); deliver() wakes it when a
  // machine's next deadline is earlier.
  WaitQueue timers_changed_;
  std::int64_t timer_wake_ms_ = INT64_MIN;
  // Per offsets partition: bytes the last compaction wrote.
  std::map<std::int32_t, std::uint64_t> checkpoint_bytes_;
};

}  // namespace sluice::kafka
