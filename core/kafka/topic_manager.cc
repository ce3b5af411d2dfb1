#include "core/kafka/topic_manager.h"

#include <cassert>
#include <charconv>
#include <utility>

#include "core/storage/producer_recovery.h"

namespace sluice::kafka {

namespace {

constexpr std::size_t kTopicNameBytesMax = 249;
// A bound on partitions per topic, so a bad request cannot ask for millions of directories.
constexpr std::int32_t kPartitionsPerTopicMax = 10'000;

// "<topic>-<partition>" ⇒ (topic, partition); the topic name may itself contain '-'.
std::optional<std::pair<std::string, std::int32_t>> parse_partition_directory(
    std::string_view name) {
  const auto dash = name.rfind('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == name.size()) return std::nullopt;
  const std::string_view digits = name.substr(dash + 1);
  std::int32_t index = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
  if (error != std::errc() || end != digits.data() + digits.size() || index < 0)
    return std::nullopt;
  std::string topic(name.substr(0, dash));
  if (!valid_topic_name(topic)) return std::nullopt;
  return std::pair{std::move(topic), index};
}

}  // namespace

bool valid_topic_name(std::string_view name) {
  if (name.empty() || name.size() > kTopicNameBytesMax || name == "." || name == "..") return false;
  for (const char c : name) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!allowed) return false;
  }
  return true;
}

TopicManager::TopicManager(Env& env, std::string data_dir, storage::LogConfig log_config)
    : env_(env),
      data_dir_(std::move(data_dir)),
      log_config_(log_config),
      log_(env.log().with_component("topics")) {}

// Dropping the logs without close() is a crash as far as storage is concerned: the next open scans.
TopicManager::~TopicManager() = default;

std::expected<std::unique_ptr<Partition>, storage::LogError> TopicManager::open_partition(
    const std::string& topic, std::int32_t index) {
  const std::string directory = join_path(data_dir_, topic + "-" + std::to_string(index));
  auto log = storage::PartitionLog::open(env_, directory, log_config_);
  if (!log) return std::unexpected(log.error());
  auto producers = storage::rebuild_producer_state(**log, env_.clock().wall_ms());
  if (!producers) return std::unexpected(producers.error());
  auto partition = std::make_unique<Partition>();
  partition->index = index;
  partition->log = std::move(*log);
  partition->producers = std::move(*producers);
  return partition;
}

std::expected<void, storage::LogError> TopicManager::recover() {
  auto names = env_.disk().list(data_dir_);
  if (!names) return std::unexpected(storage::LogError::io);
  // Partition counts per topic: a topic has partitions 0..max found.
  std::map<std::string, std::int32_t> partition_counts;
  for (const std::string& name : *names) {
    auto parsed = parse_partition_directory(name);
    if (!parsed) continue;
    auto& count = partition_counts[parsed->first];
    count = std::max(count, parsed->second + 1);
  }
  LockGuard guard(create_mutex_);
  for (const auto& [name, count] : partition_counts) {
    auto topic = std::make_unique<Topic>();
    topic->name = name;
    for (std::int32_t index = 0; index < count; ++index) {
      auto partition = open_partition(name, index);
      if (!partition) {
        log_.error("cannot open partition {}-{}: {}", name, index,
                   storage::to_string(partition.error()));
        return std::unexpected(partition.error());
      }
      topic->partitions.push_back(std::move(*partition));
    }
    log_.info("recovered topic '{}' with {} partition(s)", name, count);
    topics_.emplace(name, std::move(topic));
  }
  return {};
}

std::expected<Topic*, TopicError> TopicManager::create_topic(const std::string& name,
                                                             std::int32_t partition_count) {
  if (!valid_topic_name(name)) return std::unexpected(TopicError::invalid_name);
  if (partition_count <= 0 || partition_count > kPartitionsPerTopicMax) {
    return std::unexpected(TopicError::invalid_partitions);
  }
  LockGuard guard(create_mutex_);
  // Another fiber may have created it while this one waited for the mutex.
  if (find(name) != nullptr) return std::unexpected(TopicError::already_exists);
  auto topic = std::make_unique<Topic>();
  topic->name = name;
  for (std::int32_t index = 0; index < partition_count; ++index) {
    auto partition = open_partition(name, index);
    if (!partition) {
      log_.error("cannot create partition {}-{}: {}", name, index,
                 storage::to_string(partition.error()));
      for (auto& opened : topic->partitions) (void)opened->log->close();
      return std::unexpected(TopicError::storage);
    }
    topic->partitions.push_back(std::move(*partition));
  }
  log_.info("created topic '{}' with {} partition(s)", name, partition_count);
  Topic* created = topic.get();
  topics_.emplace(name, std::move(topic));
  return created;
}

void TopicManager::close_all() {
  for (auto& [name, topic] : topics_) {
    for (auto& partition : topic->partitions) {
      if (auto closed = partition->log->close();
          !closed && closed.error() != storage::LogError::closed) {
        log_.warn("closing partition {}-{}: {}", name, partition->index,
                  storage::to_string(closed.error()));
      }
    }
  }
  topics_.clear();
}

Topic* TopicManager::find(std::string_view name) {
  auto found = topics_.find(name);
  return found == topics_.end() ? nullptr : found->second.get();
}

Partition* TopicManager::find(std::string_view name, std::int32_t partition_index) {
  Topic* topic = find(name);
  if (topic == nullptr || partition_index < 0 ||
      static_cast<std::size_t>(partition_index) >= topic->partitions.size()) {
    return nullptr;
  }
  return topic->partitions[static_cast<std::size_t>(partition_index)].get();
}

}  // namespace sluice::kafka
