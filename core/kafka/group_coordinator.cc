#include "core/kafka/group_coordinator.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <set>

#include "core/kafka/kafka_errors.h"
#include "core/storage/record_batch.h"

namespace sluice::kafka {

namespace {

// One epoch until replication exists (as broker_data.cc).
constexpr std::int32_t kLeaderEpoch = 0;
constexpr std::size_t kLoadReadBytes = std::size_t{1} << 20;
constexpr std::string_view kConsumerProtocolType = "consumer";

group::RequestToken token_of(const group::Effect& effect) {
  return std::visit(
      [](const auto& value) -> group::RequestToken {
        if constexpr (std::is_same_v<std::decay_t<decltype(value)>, group::PersistGroup>) {
          return 0;
        } else {
          return value.token;
        }
      },
      effect);
}

// The offsets topic's configs (Kafka's offsets.topic.* defaults, except the cleanup policy: the
// log is not compacted yet, so nothing may expire by time or size).
ConfigMap offsets_topic_configs(const CoordinatorConfig& config) {
  return ConfigMap{{"retention.ms", "-1"},
                   {"retention.bytes", "-1"},
                   {"segment.bytes", std::to_string(config.offsets_segment_bytes)},
                   {"flush.messages", "1"},
                   {"max.message.bytes", "10485760"}};
}

}  // namespace

struct GroupCoordinator::GroupEntry {
  GroupEntry(std::string id, group::Group group)
      : group_id(std::move(id)), machine(std::move(group)), counted_generation(machine.generation()) {}
  std::string group_id;
  group::Group machine;
  std::map<TopicPartitionKey, group::OffsetCommitValue> offsets;
  Mutex mutex;  // held while the machine steps and its effects are persisted
  std::map<group::RequestToken, Promise<group::Effect>> waiting;
  // The metadata last written to (or loaded from) the log, wall-clock timestamps: what a
  // compaction re-appends.
  std::optional<group::GroupSnapshot> persisted;
  bool removed = false;  // deleted: a fiber that waited for the mutex must look the group up again
  // The generation last counted as a rebalance (metrics); a recovered group starts at its own.
  std::int32_t counted_generation;
};

GroupCoordinator::GroupCoordinator(Env& env, TopicManager& topics, CoordinatorConfig config)
    : env_(env),
      topics_(topics),
      config_(std::move(config)),
      log_(env.log().with_component("groups")) {
  assert(config_.offsets_topic_partitions > 0);
}

GroupCoordinator::~GroupCoordinator() = default;

std::int64_t GroupCoordinator::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             env_.clock().now().time_since_epoch())
      .count();
}

std::int64_t GroupCoordinator::wall_offset_ms() const {
  return env_.clock().wall_ms() - now_ms();
}

std::int32_t GroupCoordinator::partition_for(std::string_view group_id) const {
  return group::partition_for_group(group_id, offsets_partitions_);
}

// ---- lifecycle -------------------------------------------------------------------------------

std::expected<void, storage::LogError> GroupCoordinator::open() {
  Topic* topic = topics_.find(group::kOffsetsTopic);
  if (topic == nullptr) {
    auto created =
        topics_.create_topic(std::string(group::kOffsetsTopic), config_.offsets_topic_partitions,
                             offsets_topic_configs(config_));
    if (!created) {
      log_.error("cannot create {}", group::kOffsetsTopic);
      return std::unexpected(storage::LogError::io);
    }
    topic = *created;
  } else if (topic->settings.log.retention_ms >= 0 || topic->settings.log.retention_bytes >= 0) {
    // Retention would delete groups' only records (e.g. after its config file was lost to
    // corruption and the topic fell back to broker defaults): switch it off again.
    ConfigMap overrides = topic->config_overrides;
    overrides["retention.ms"] = "-1";
    overrides["retention.bytes"] = "-1";
    log_.warn("{} had retention enabled; switching it off (it holds the groups' only records)",
              group::kOffsetsTopic);
    if (auto altered = topics_.alter_configs(std::string(group::kOffsetsTopic), overrides);
        !altered) {
      return std::unexpected(storage::LogError::io);
    }
    topic = topics_.find(group::kOffsetsTopic);
    assert(topic != nullptr);
  }
  offsets_partitions_ = static_cast<std::int32_t>(topic->partitions.size());
  if (offsets_partitions_ != config_.offsets_topic_partitions) {
    log_.warn("{} has {} partitions (configured: {}); keeping {}, since groups are placed by it",
              group::kOffsetsTopic, offsets_partitions_, config_.offsets_topic_partitions,
              offsets_partitions_);
  }
  std::map<std::string, group::GroupSnapshot, std::less<>> snapshots;
  std::map<std::string, std::map<TopicPartitionKey, group::OffsetCommitValue>, std::less<>> offsets;
  std::size_t records = 0;
  for (const std::shared_ptr<Partition>& partition : topic->partitions) {
    const std::shared_ptr<storage::PartitionLog> log = partition->log;
    auto loaded = load_partition(*log, [&](const group::OffsetsRecord& record) {
      records++;
      if (const auto* commit = std::get_if<group::OffsetCommitRecord>(&record)) {
        auto& group_offsets = offsets[commit->key.group];
        const TopicPartitionKey key{commit->key.topic, commit->key.partition};
        if (commit->value) {
          group_offsets[key] = *commit->value;
        } else {
          group_offsets.erase(key);
        }
        return;
      }
      const auto& metadata = std::get<group::GroupMetadataRecord>(record);
      if (metadata.value) {
        snapshots[metadata.key.group] = *metadata.value;
      } else {
        snapshots.erase(metadata.key.group);
      }
    });
    if (!loaded) return loaded;
  }
  const std::int64_t now = now_ms();
  const std::int64_t wall_offset = wall_offset_ms();
  std::set<std::string> group_ids;
  for (const auto& [id, unused] : snapshots) group_ids.insert(id);
  for (const auto& [id, group_offsets] : offsets) {
    if (!group_offsets.empty()) group_ids.insert(id);
  }
  for (const std::string& id : group_ids) {
    auto snapshot = snapshots.find(id);
    std::optional<group::Group> machine;
    if (snapshot != snapshots.end()) {
      group::GroupSnapshot restored = snapshot->second;
      // Stored on the wall clock (as Kafka); the machine runs on the monotonic one.
      if (restored.current_state_timestamp_ms >= 0)
        restored.current_state_timestamp_ms -= wall_offset;
      machine.emplace(
          group::Group::restore(id, config_.group, env_.random().next_u64(), restored, now));
    } else {
      machine.emplace(id, config_.group, env_.random().next_u64());
    }
    auto entry = std::make_shared<GroupEntry>(id, std::move(*machine));
    if (snapshot != snapshots.end()) entry->persisted = snapshot->second;
    if (auto found = offsets.find(id); found != offsets.end())
      entry->offsets = std::move(found->second);
    groups_.emplace(id, std::move(entry));
  }
  log_.info("loaded {} group(s) from {} record(s) of {}", groups_.size(), records,
            group::kOffsetsTopic);
  return {};
}

std::expected<void, storage::LogError> GroupCoordinator::load_partition(
    storage::PartitionLog& log, const std::function<void(const group::OffsetsRecord&)>& apply) {
  const std::int64_t end = log.high_watermark();
  std::int64_t offset = log.log_start_offset();
  while (offset < end) {
    auto read = log.read(offset, kLoadReadBytes, end);
    if (!read && read.error() == storage::LogError::corrupt) {
      // A corrupt batch (detected, never served) must not keep the broker from starting: skip
      // the unreadable rest of its segment; later segments hold the newer records anyway.
      std::int64_t next = end;
      for (const auto& segment : log.segments()) {
        if (segment->base_offset() > offset) {
          next = segment->base_offset();
          break;
        }
      }
      log_.error("{}: skipping unreadable offsets [{}, {})", log.directory(), offset, next);
      offset = next;
      continue;
    }
    if (!read) return std::unexpected(read.error());
    if (read->batch_count == 0) break;
    std::span<const std::byte> bytes = read->bytes;
    while (!bytes.empty()) {
      auto header = storage::parse_batch_header(bytes);
      if (!header) return std::unexpected(storage::LogError::corrupt);
      const std::span<const std::byte> batch = bytes.first(header->size_bytes());
      bytes = bytes.subspan(header->size_bytes());
      if (header->control()) continue;
      auto records = storage::decode_records(batch);
      if (!records) {
        log_.warn("{}: skipping an undecodable batch at offset {}", log.directory(),
                  header->base_offset);
        continue;
      }
      for (const storage::RecordView& record : *records) {
        if (record.offset < offset || !record.key) continue;
        auto decoded = group::decode_offsets_record(*record.key, record.value);
        if (!decoded) {
          log_.warn("{}: skipping record {}: {}", log.directory(), record.offset,
                    group::to_string(decoded.error()));
          continue;
        }
        apply(*decoded);
      }
    }
    assert(read->next_offset > offset);
    offset = read->next_offset;
  }
  return {};
}

void GroupCoordinator::start(Scope& scope) {
  scope.spawn("group-timers", [this] { timer_loop(); });
  scope.spawn("group-retention", [this] { retention_loop(); });
  scope.spawn("group-compaction", [this] { compaction_loop(); });
}

// ---- lookups ---------------------------------------------------------------------------------

std::shared_ptr<GroupCoordinator::GroupEntry> GroupCoordinator::find(
    std::string_view group_id) const {
  auto found = groups_.find(group_id);
  return found == groups_.end() ? nullptr : found->second;
}

std::shared_ptr<GroupCoordinator::GroupEntry> GroupCoordinator::find_or_create(
    const std::string& group_id) {
  if (auto found = find(group_id)) return found;
  auto entry = std::make_shared<GroupEntry>(
      group_id, group::Group(group_id, config_.group, env_.random().next_u64()));
  groups_.emplace(group_id, entry);
  return entry;
}

GroupCoordinator::LockedGroup::LockedGroup(GroupCoordinator& coordinator,
                                           const std::string& group_id, bool create) {
  // Bounded: a group is removed only by DeleteGroups or retention, each needing the mutex.
  for (int attempt = 0; attempt < 8; attempt++) {
    entry_ = create ? coordinator.find_or_create(group_id) : coordinator.find(group_id);
    if (entry_ == nullptr) return;
    lock_.emplace(entry_->mutex);
    if (!entry_->removed) return;
    lock_.reset();
  }
  entry_ = nullptr;
}

// ---- the classic protocol --------------------------------------------------------------------

void GroupCoordinator::deliver(GroupEntry& entry, group::Effects effects) {
  // A rebalance is counted when it completes: the machine's generation moves on.
  if (const std::int32_t generation = entry.machine.generation(); generation > entry.counted_generation) {
    env_.metrics().group_rebalances += static_cast<std::uint64_t>(generation - entry.counted_generation);
    entry.counted_generation = generation;
  }
  bool persist_failed = false;
  for (group::Effect& effect : effects) {
    if (const auto* persist = std::get_if<group::PersistGroup>(&effect)) {
      if (auto persisted = persist_group(entry, persist->snapshot); !persisted) {
        log_.warn("group {}: writing its metadata failed: {}", entry.group_id,
                  storage::to_string(persisted.error()));
        persist_failed = true;
      }
      continue;
    }
    if (persist_failed) {
      // The answer depends on a state the log does not hold: the member must rejoin (Kafka answers
      // the storage error the same way, making the client look the coordinator up again).
      if (auto* join = std::get_if<group::JoinResponse>(&effect))
        join->error = error::kCoordinatorNotAvailable;
      if (auto* sync = std::get_if<group::SyncResponse>(&effect))
        sync->error = error::kCoordinatorNotAvailable;
    }
    if (auto* sync = std::get_if<group::SyncResponse>(&effect);
        sync != nullptr && env_.bug("group_two_owners")) {
      // Canary (simulation only): every member gets the leader's assignment.
      if (auto leaders = entry.machine.assignment_of(entry.machine.leader()))
        sync->assignment = *leaders;
    }
    auto waiter = entry.waiting.find(token_of(effect));
    if (waiter == entry.waiting.end()) continue;  // its fiber was unwound (the broker stops)
    waiter->second.set_value(std::move(effect));
    entry.waiting.erase(waiter);
  }
  if (auto deadline = entry.machine.next_deadline_ms(); deadline && *deadline < timer_wake_ms_) {
    timers_changed_.notify_all();
  }
}

void GroupCoordinator::abandon_parked() {
  std::size_t abandoned = 0;
  for (const auto& [id, entry] : groups_) {
    // Not a response: run_parked answers NOT_COORDINATOR for it.
    for (auto& [token, waiter] : entry->waiting) {
      waiter.set_value(group::PersistGroup{});
      ++abandoned;
    }
    entry->waiting.clear();
  }
  if (abandoned > 0) log_.info("answered {} parked group request(s) NOT_COORDINATOR", abandoned);
}

template <typename Response, typename Step>
Response GroupCoordinator::run_parked(const std::string& group_id, bool create,
                                      group::RequestToken token, Step step) {
  Promise<group::Effect> answer;
  const Future<group::Effect> future = answer.get_future();
  {
    LockedGroup entry(*this, group_id, create);
    if (!entry) {
      Response unknown;
      unknown.token = token;
      unknown.error = group::error_code::unknown_member_id;
      return unknown;
    }
    entry->waiting.emplace(token, answer);
    deliver(*entry, step(entry->machine, now_ms()));
  }
  std::optional<group::Effect> effect = future.get();
  if (!effect || !std::holds_alternative<Response>(*effect)) {  // abandoned: the broker stops
    Response gone;
    gone.token = token;
    gone.error = error::kNotCoordinator;
    return gone;
  }
  return std::get<Response>(std::move(*effect));
}

group::JoinResponse GroupCoordinator::join(const std::string& group_id,
                                           group::JoinRequest request) {
  request.token = next_token_++;
  // Kafka creates the group for a join without a member id; a known member id needs the group.
  const bool create = request.member_id.empty();
  return run_parked<group::JoinResponse>(
      group_id, create, request.token,
      [&](group::Group& machine, std::int64_t now) { return machine.join(request, now); });
}

group::SyncResponse GroupCoordinator::sync(const std::string& group_id,
                                           group::SyncRequest request) {
  request.token = next_token_++;
  return run_parked<group::SyncResponse>(
      group_id, false, request.token,
      [&](group::Group& machine, std::int64_t now) { return machine.sync(request, now); });
}

group::HeartbeatResponse GroupCoordinator::heartbeat(const std::string& group_id,
                                                     group::HeartbeatRequest request) {
  request.token = next_token_++;
  return run_parked<group::HeartbeatResponse>(
      group_id, false, request.token,
      [&](group::Group& machine, std::int64_t now) { return machine.heartbeat(request, now); });
}

group::LeaveResponse GroupCoordinator::leave(const std::string& group_id,
                                             group::LeaveRequest request) {
  request.token = next_token_++;
  return run_parked<group::LeaveResponse>(
      group_id, false, request.token,
      [&](group::Group& machine, std::int64_t now) { return machine.leave(request, now); });
}

// ---- offsets ---------------------------------------------------------------------------------

void GroupCoordinator::commit_offsets(const std::string& group_id, std::int32_t generation,
                                      const std::string& member_id,
                                      const std::optional<std::string>& group_instance_id,
                                      std::vector<OffsetCommitEntry>& entries) {
  auto fail_all = [&](std::int16_t error) {
    for (OffsetCommitEntry& entry : entries) entry.error = error;
  };
  // Kafka: an unknown group is created only for a commit outside group management.
  const bool simple = generation < 0;
  LockedGroup group(*this, group_id, simple);
  if (!group) return fail_all(simple ? error::kCoordinatorNotAvailable : error::kIllegalGeneration);
  std::int16_t check =
      group->machine.commit_check(generation, member_id, group_instance_id, now_ms());
  // Canary (simulation only): a zombie's commit (an older generation, or a member id the group
  // already expired) is taken as current.
  const bool fenced = check == group::error_code::illegal_generation ||
                      check == group::error_code::unknown_member_id;
  if (fenced && generation >= 0 && env_.bug("group_accept_stale_commit")) check = 0;
  if (check != 0) return fail_all(check);
  const std::int64_t commit_timestamp_ms = env_.clock().wall_ms();
  std::vector<std::pair<std::string, std::optional<std::string>>> records;
  std::vector<OffsetCommitEntry*> accepted;
  for (OffsetCommitEntry& entry : entries) {
    if (topics_.find(entry.topic, entry.partition) == nullptr) {
      entry.error = error::kUnknownTopicOrPartition;
    } else if (entry.metadata && entry.metadata->size() > config_.offset_metadata_bytes_max) {
      entry.error = error::kOffsetMetadataTooLarge;
    } else {
      group::OffsetCommitValue value{.offset = entry.offset,
                                     .leader_epoch = entry.leader_epoch,
                                     .metadata = entry.metadata.value_or(""),
                                     .commit_timestamp_ms = commit_timestamp_ms};
      records.emplace_back(
          group::encode_offset_commit_key({group_id, entry.topic, entry.partition}),
          group::encode_offset_commit_value(value));
      accepted.push_back(&entry);
    }
  }
  if (accepted.empty()) return;
  if (auto appended = append_records(group_id, std::move(records)); !appended) {
    const std::int16_t error = appended.error() == storage::LogError::batch_too_large
                                   ? error::kInvalidCommitOffsetSize
                                   : error::kNotCoordinator;
    log_.warn("group {}: writing an offset commit failed: {}", group_id,
              storage::to_string(appended.error()));
    for (OffsetCommitEntry* entry : accepted) entry->error = error;
    return;
  }
  for (OffsetCommitEntry* entry : accepted) {
    entry->error = 0;
    group->offsets[{entry->topic, entry->partition}] =
        group::OffsetCommitValue{.offset = entry->offset,
                                 .leader_epoch = entry->leader_epoch,
                                 .metadata = entry->metadata.value_or(""),
                                 .commit_timestamp_ms = commit_timestamp_ms};
  }
}

std::vector<std::pair<TopicPartitionKey, CommittedOffset>> GroupCoordinator::fetch_offsets(
    const std::string& group_id, const std::optional<std::vector<TopicPartitionKey>>& partitions) {
  std::vector<std::pair<TopicPartitionKey, CommittedOffset>> result;
  const std::shared_ptr<GroupEntry> group = find(group_id);
  auto committed = [](const group::OffsetCommitValue& value) {
    return CommittedOffset{
        .offset = value.offset, .leader_epoch = value.leader_epoch, .metadata = value.metadata};
  };
  if (!partitions) {
    if (group == nullptr) return result;
    for (const auto& [key, value] : group->offsets) result.emplace_back(key, committed(value));
    return result;
  }
  for (const TopicPartitionKey& key : *partitions) {
    CommittedOffset offset;
    if (group != nullptr) {
      if (auto found = group->offsets.find(key); found != group->offsets.end())
        offset = committed(found->second);
    }
    result.emplace_back(key, std::move(offset));
  }
  return result;
}

// ---- admin -----------------------------------------------------------------------------------

std::optional<group::GroupDescription> GroupCoordinator::describe(
    const std::string& group_id) const {
  const std::shared_ptr<GroupEntry> group = find(group_id);
  if (group == nullptr) return std::nullopt;
  return group->machine.describe();
}

const group::Group* GroupCoordinator::find_machine(std::string_view group_id) const {
  const std::shared_ptr<GroupEntry> group = find(group_id);
  return group == nullptr ? nullptr : &group->machine;
}

std::vector<ListedGroup> GroupCoordinator::list() const {
  std::vector<ListedGroup> listed;
  for (const auto& [id, group] : groups_) {
    group::GroupDescription description = group->machine.describe();
    listed.push_back({id, std::move(description.protocol_type), std::move(description.state)});
  }
  return listed;
}

std::int16_t GroupCoordinator::delete_group(const std::string& group_id) {
  LockedGroup group(*this, group_id, false);
  if (!group) return error::kGroupIdNotFound;
  if (group->machine.state() != group::GroupState::empty) return error::kNonEmptyGroup;
  if (auto removed = remove_group(*group); !removed) {
    log_.warn("group {}: writing its tombstones failed: {}", group_id,
              storage::to_string(removed.error()));
    return error::kNotCoordinator;
  }
  return 0;
}

std::int16_t GroupCoordinator::delete_offsets(const std::string& group_id,
                                              std::vector<OffsetCommitEntry>& partitions) {
  LockedGroup group(*this, group_id, false);
  if (!group) return error::kGroupIdNotFound;
  const group::GroupSnapshot snapshot = group->machine.snapshot();
  std::set<std::string, std::less<>> subscribed;
  if (group->machine.state() != group::GroupState::empty) {
    if (snapshot.protocol_type != kConsumerProtocolType) return error::kNonEmptyGroup;
    for (const group::MemberSnapshot& member : snapshot.members) {
      if (auto subscription = group::decode_consumer_subscription(member.subscription)) {
        subscribed.insert(subscription->topics.begin(), subscription->topics.end());
      }
    }
  }
  std::vector<TopicPartitionKey> removable;
  for (OffsetCommitEntry& entry : partitions) {
    if (subscribed.contains(entry.topic)) {
      entry.error = error::kGroupSubscribedToTopic;
    } else if (topics_.find(entry.topic, entry.partition) == nullptr) {
      entry.error = error::kUnknownTopicOrPartition;
    } else {
      entry.error = 0;
      removable.emplace_back(entry.topic, entry.partition);
    }
  }
  if (auto removed = remove_offsets(*group, removable); !removed) {
    for (OffsetCommitEntry& entry : partitions) {
      if (entry.error == 0) entry.error = error::kNotCoordinator;
    }
  }
  return 0;
}

void GroupCoordinator::on_topic_deleted(const std::string& topic) {
  std::vector<std::string> affected;
  for (const auto& [id, group] : groups_) {
    for (const auto& [key, unused] : group->offsets) {
      if (key.first == topic) {
        affected.push_back(id);
        break;
      }
    }
  }
  for (const std::string& id : affected) {
    LockedGroup group(*this, id, false);
    if (!group) continue;
    std::vector<TopicPartitionKey> keys;
    for (const auto& [key, unused] : group->offsets) {
      if (key.first == topic) keys.push_back(key);
    }
    if (auto removed = remove_offsets(*group, keys); !removed) {
      log_.warn("group {}: removing the offsets of deleted topic {} failed: {}", id, topic,
                storage::to_string(removed.error()));
    }
  }
}

// ---- persistence -----------------------------------------------------------------------------

std::expected<void, storage::LogError> GroupCoordinator::append_records(
    std::string_view group_id, std::vector<OffsetsRecordBytes> records) {
  assert(!records.empty());
  const std::shared_ptr<Partition> partition =
      topics_.find(group::kOffsetsTopic, partition_for(group_id));
  if (partition == nullptr) return std::unexpected(storage::LogError::closed);
  const std::shared_ptr<storage::PartitionLog> log = partition->log;
  storage::BatchSpec spec;
  spec.base_timestamp_ms = env_.clock().wall_ms();
  for (auto& [key, value] : records) {
    storage::RecordSpec& record = spec.records.emplace_back();
    record.key = std::move(key);
    record.value = std::move(value);
  }
  std::vector<std::byte> batch = storage::build_batch(spec);
  if (batch.size() > log->config().max_batch_bytes)
    return std::unexpected(storage::LogError::batch_too_large);
  assert(storage::validate_client_batch(batch, log->config().max_batch_bytes).has_value());
  auto appended = log->append(batch, kLeaderEpoch);
  if (!appended) return std::unexpected(appended.error());
  // Durable before acknowledged, whatever flush.messages the topic was given.
  if (auto flushed = log->flush_through(appended->last_offset); !flushed) return flushed;
  topics_.notify_appended();
  return {};
}

std::expected<void, storage::LogError> GroupCoordinator::persist_group(
    GroupEntry& entry, const group::GroupSnapshot& snapshot) {
  group::GroupSnapshot stored = snapshot;
  if (stored.current_state_timestamp_ms >= 0) stored.current_state_timestamp_ms += wall_offset_ms();
  std::vector<OffsetsRecordBytes> records;
  records.emplace_back(group::encode_group_metadata_key({entry.group_id}),
                       group::encode_group_metadata_value(stored));
  if (auto appended = append_records(entry.group_id, std::move(records)); !appended)
    return appended;
  entry.persisted = std::move(stored);
  return {};
}

std::expected<void, storage::LogError> GroupCoordinator::remove_offsets(
    GroupEntry& entry, const std::vector<TopicPartitionKey>& keys) {
  std::vector<OffsetsRecordBytes> records;
  for (const TopicPartitionKey& key : keys) {
    if (!entry.offsets.contains(key)) continue;
    records.emplace_back(group::encode_offset_commit_key({entry.group_id, key.first, key.second}),
                         std::nullopt);
  }
  if (records.empty()) return {};
  if (auto appended = append_records(entry.group_id, std::move(records)); !appended)
    return appended;
  for (const TopicPartitionKey& key : keys) entry.offsets.erase(key);
  return {};
}

std::expected<void, storage::LogError> GroupCoordinator::remove_group(GroupEntry& entry) {
  assert(!entry.removed);
  std::vector<OffsetsRecordBytes> records;
  for (const auto& [key, unused] : entry.offsets) {
    records.emplace_back(group::encode_offset_commit_key({entry.group_id, key.first, key.second}),
                         std::nullopt);
  }
  records.emplace_back(group::encode_group_metadata_key({entry.group_id}), std::nullopt);
  if (auto appended = append_records(entry.group_id, std::move(records)); !appended)
    return appended;
  entry.offsets.clear();
  deliver(entry, entry.machine.mark_dead());
  entry.removed = true;
  groups_.erase(entry.group_id);
  return {};
}

// ---- compaction ------------------------------------------------------------------------------

void GroupCoordinator::compaction_loop() {
  for (;;) {
    this_fiber::sleep_for(config_.offsets_compaction_check_interval);
    for (std::int32_t index = 0; index < offsets_partitions_; index++) {
      const std::shared_ptr<Partition> partition = topics_.find(group::kOffsetsTopic, index);
      if (partition == nullptr) continue;
      const std::uint64_t size_bytes = partition->log->size_bytes();
      const std::uint64_t segment_bytes = partition->log->config().segment_bytes;
      if (size_bytes <= 2 * segment_bytes || size_bytes <= 2 * checkpoint_bytes_[index]) continue;
      if (auto compacted = compact_partition(index); !compacted) {
        log_.warn("compacting {}-{} failed: {}", group::kOffsetsTopic, index,
                  storage::to_string(compacted.error()));
      }
    }
  }
}

std::expected<void, storage::LogError> GroupCoordinator::compact_partition(std::int32_t index) {
  const std::shared_ptr<Partition> partition = topics_.find(group::kOffsetsTopic, index);
  if (partition == nullptr) return std::unexpected(storage::LogError::closed);
  const std::shared_ptr<storage::PartitionLog> log = partition->log;
  const std::uint64_t size_before = log->size_bytes();
  const std::int64_t checkpoint_start = log->log_end_offset();
  std::vector<std::string> ids;
  for (const auto& [id, unused] : groups_) {
    if (partition_for(id) == index) ids.push_back(id);
  }
  std::uint64_t written_bytes = 0;
  // Records per batch: well under max.message.bytes even with large group metadata.
  constexpr std::size_t kRecordsPerBatch = 256;
  for (const std::string& id : ids) {
    LockedGroup group(*this, id, false);
    if (!group) continue;  // removed meanwhile: its tombstone lies after the start
    std::vector<OffsetsRecordBytes> records;
    if (group->persisted) {
      records.emplace_back(group::encode_group_metadata_key({id}),
                           group::encode_group_metadata_value(*group->persisted));
    }
    for (const auto& [key, value] : group->offsets) {
      records.emplace_back(group::encode_offset_commit_key({id, key.first, key.second}),
                           group::encode_offset_commit_value(value));
      if (records.size() < kRecordsPerBatch) continue;
      for (const auto& [record_key, record_value] : records)
        written_bytes += record_key.size() + record_value->size();
      if (auto appended = append_records(id, std::exchange(records, {})); !appended)
        return appended;
    }
    if (records.empty()) continue;
    for (const auto& [record_key, record_value] : records)
      written_bytes += record_key.size() + record_value->size();
    if (auto appended = append_records(id, std::move(records)); !appended) return appended;
  }
  // Everything before the checkpoint is now superseded by it (or by what followed it).
  if (auto deleted = log->delete_records_before(checkpoint_start); !deleted) return deleted;
  checkpoint_bytes_[index] = std::max<std::uint64_t>(written_bytes, 1);
  log_.info("compacted {}-{}: {} group(s) rewritten, {} -> {} bytes", group::kOffsetsTopic, index,
            ids.size(), size_before, log->size_bytes());
  return {};
}

// ---- timers and retention --------------------------------------------------------------------

void GroupCoordinator::timer_loop() {
  for (;;) {
    const std::int64_t now = now_ms();
    std::int64_t earliest = INT64_MAX;
    std::vector<std::shared_ptr<GroupEntry>> due;
    for (const auto& [id, group] : groups_) {
      const std::optional<std::int64_t> deadline = group->machine.next_deadline_ms();
      if (!deadline) continue;
      if (*deadline <= now) {
        due.push_back(group);
      } else {
        earliest = std::min(earliest, *deadline);
      }
    }
    if (!due.empty()) {
      for (const std::shared_ptr<GroupEntry>& group : due) {
        LockGuard lock(group->mutex);
        if (!group->removed) deliver(*group, group->machine.tick(now_ms()));
      }
      continue;
    }
    timer_wake_ms_ = earliest;
    const Instant wake =
        earliest == INT64_MAX ? kNever : Instant(std::chrono::milliseconds(earliest));
    timers_changed_.wait(wake);
    timer_wake_ms_ = INT64_MIN;  // awake: deliver() need not wake it
  }
}

void GroupCoordinator::retention_loop() {
  for (;;) {
    this_fiber::sleep_for(config_.offsets_retention_check_interval);
    std::vector<std::string> ids;
    for (const auto& [id, unused] : groups_) ids.push_back(id);
    std::size_t expired_groups = 0;
    for (const std::string& id : ids) {
      LockedGroup group(*this, id, false);
      if (!group) continue;
      expire_offsets(*group);
      if (group->machine.state() != group::GroupState::empty || !group->offsets.empty()) continue;
      if (auto removed = remove_group(*group); !removed) {
        log_.warn("group {}: removing the expired group failed: {}", id,
                  storage::to_string(removed.error()));
        continue;
      }
      expired_groups++;
    }
    if (expired_groups > 0) log_.info("removed {} empty group(s) without offsets", expired_groups);
  }
}

void GroupCoordinator::expire_offsets(GroupEntry& entry) {
  if (entry.machine.state() != group::GroupState::empty || entry.offsets.empty()) return;
  const std::int64_t now_wall_ms = env_.clock().wall_ms();
  const std::int64_t retention_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.offsets_retention).count();
  const group::GroupSnapshot snapshot = entry.machine.snapshot();
  // A group that used group management expires as a whole, counted from when it became Empty;
  // offsets committed without it (simple commits) expire one by one from their commit time.
  const bool managed = !snapshot.protocol_type.empty() && snapshot.current_state_timestamp_ms >= 0;
  const std::int64_t empty_since_wall_ms = snapshot.current_state_timestamp_ms + wall_offset_ms();
  std::vector<TopicPartitionKey> expired;
  for (const auto& [key, value] : entry.offsets) {
    const std::int64_t since_ms = managed ? empty_since_wall_ms : value.commit_timestamp_ms;
    if (now_wall_ms - since_ms >= retention_ms) expired.push_back(key);
  }
  if (expired.empty()) return;
  if (auto removed = remove_offsets(entry, expired); !removed) {
    log_.warn("group {}: expiring offsets failed: {}", entry.group_id,
              storage::to_string(removed.error()));
    return;
  }
  log_.info("group {}: expired {} committed offset(s) after offsets retention", entry.group_id,
            expired.size());
}

}  // namespace sluice::kafka
