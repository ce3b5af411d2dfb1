#include "core/kafka/topic_manager.h"

#include <cassert>
#include <charconv>
#include <utility>

#include "core/storage/producer_recovery.h"
#include "core/storage/storage_files.h"

namespace sluice::kafka {

namespace {

constexpr std::size_t kTopicNameBytesMax = 249;
constexpr std::string_view kConfigSuffix = ".config";
constexpr std::string_view kDeletingSuffix = ".deleting";

// "<topic><suffix>" ⇒ topic, when the name ends with `suffix` and the rest is a valid topic name.
std::optional<std::string> topic_of_file(std::string_view name, std::string_view suffix) {
  if (!name.ends_with(suffix)) return std::nullopt;
  std::string topic(name.substr(0, name.size() - suffix.size()));
  if (!valid_topic_name(topic)) return std::nullopt;
  return topic;
}

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

TopicManager::TopicManager(Env& env, std::string data_dir, TopicSettings defaults)
    : env_(env),
      data_dir_(std::move(data_dir)),
      defaults_(std::move(defaults)),
      log_(env.log().with_component("topics")) {}

// Dropping the logs without close() is a crash as far as storage is concerned: the next open scans.
TopicManager::~TopicManager() = default;

std::string TopicManager::partition_directory(std::string_view topic, std::int32_t index) const {
  return join_path(data_dir_, std::string(topic) + "-" + std::to_string(index));
}

std::string TopicManager::topic_file(std::string_view topic, std::string_view suffix) const {
  return join_path(data_dir_, std::string(topic) + std::string(suffix));
}

std::expected<std::shared_ptr<Partition>, storage::LogError> TopicManager::open_partition(
    const std::string& topic, std::int32_t index, const storage::LogConfig& config) {
  auto log = storage::PartitionLog::open(env_, partition_directory(topic, index), config);
  if (!log) return std::unexpected(log.error());
  auto producers = storage::rebuild_producer_state(**log, env_.clock().wall_ms());
  if (!producers) return std::unexpected(producers.error());
  auto partition = std::make_shared<Partition>();
  partition->index = index;
  partition->log = std::move(*log);
  partition->producers = std::move(*producers);
  return partition;
}

std::expected<void, TopicError> TopicManager::open_partitions(Topic& topic, std::int32_t count) {
  const std::size_t first_new = topic.partitions.size();
  for (auto index = static_cast<std::int32_t>(first_new); index < count; ++index) {
    auto partition = open_partition(topic.name, index, topic.settings.log);
    if (!partition) {
      log_.error("cannot open partition {}-{}: {}", topic.name, index,
                 storage::to_string(partition.error()));
      for (std::size_t opened = first_new; opened < topic.partitions.size(); ++opened) {
        (void)topic.partitions[opened]->log->close();
      }
      topic.partitions.resize(first_new);
      return std::unexpected(TopicError::storage);
    }
    topic.partitions.push_back(std::move(*partition));
  }
  return {};
}

std::expected<void, storage::LogError> TopicManager::persist_configs(const std::string& topic,
                                                                     const ConfigMap& overrides) {
  const std::string path = topic_file(topic, kConfigSuffix);
  if (overrides.empty()) {
    if (!storage::remove_if_present(env_.disk(), path) || !env_.disk().sync_directory(data_dir_)) {
      return std::unexpected(storage::LogError::io);
    }
    return {};
  }
  if (!storage::replace_file_durably(env_.disk(), path, encode_topic_configs(overrides))) {
    return std::unexpected(storage::LogError::io);
  }
  return {};
}

std::expected<ConfigMap, storage::LogError> TopicManager::load_configs(const std::string& topic) {
  const std::string path = topic_file(topic, kConfigSuffix);
  auto exists = env_.disk().exists(path);
  if (!exists) return std::unexpected(storage::LogError::io);
  if (!*exists) return ConfigMap{};
  auto image = storage::read_whole_file(env_.disk(), path);
  if (!image) return std::unexpected(storage::LogError::io);
  // replace_file_durably never leaves a torn file at `path`: a bad image is corruption.
  auto overrides = decode_topic_configs(*image);
  if (!overrides) return std::unexpected(storage::LogError::corrupt);
  return std::move(*overrides);
}

std::expected<void, storage::LogError> TopicManager::remove_topic_files(
    const std::string& topic, std::int32_t partition_count) {
  Disk& disk = env_.disk();
  for (std::int32_t index = 0; index < partition_count; ++index) {
    const std::string directory = partition_directory(topic, index);
    auto exists = disk.exists(directory);
    if (!exists) return std::unexpected(storage::LogError::io);
    if (!*exists) continue;
    auto names = disk.list(directory);
    if (!names) return std::unexpected(storage::LogError::io);
    for (const std::string& name : *names) {
      if (!disk.remove(join_path(directory, name))) return std::unexpected(storage::LogError::io);
    }
    if (!disk.sync_directory(directory) || !disk.remove(directory)) {
      return std::unexpected(storage::LogError::io);
    }
  }
  if (!storage::remove_if_present(disk, topic_file(topic, kConfigSuffix)) ||
      !disk.sync_directory(data_dir_)) {
    return std::unexpected(storage::LogError::io);
  }
  // The marker goes last, once everything it stands for is durably gone.
  if (!storage::remove_if_present(disk, topic_file(topic, kDeletingSuffix)) ||
      !disk.sync_directory(data_dir_)) {
    return std::unexpected(storage::LogError::io);
  }
  return {};
}

std::expected<void, storage::LogError> TopicManager::recover() {
  auto names = env_.disk().list(data_dir_);
  if (!names) return std::unexpected(storage::LogError::io);
  // Partition counts per topic: a topic has partitions 0..max found.
  std::map<std::string, std::int32_t> partition_counts;
  std::vector<std::string> deleting;
  std::vector<std::string> configured;
  for (const std::string& name : *names) {
    if (auto topic = topic_of_file(name, kDeletingSuffix)) deleting.push_back(std::move(*topic));
    if (auto topic = topic_of_file(name, kConfigSuffix)) configured.push_back(std::move(*topic));
    auto parsed = parse_partition_directory(name);
    if (!parsed) continue;
    auto& count = partition_counts[parsed->first];
    count = std::max(count, parsed->second + 1);
  }
  LockGuard guard(change_mutex_);
  for (const std::string& name : deleting) {
    log_.info("finishing the interrupted deletion of topic '{}'", name);
    if (auto removed = remove_topic_files(name, partition_counts[name]); !removed) return removed;
    partition_counts.erase(name);
  }
  // A config file without partitions: a creation that crashed before its first partition.
  for (const std::string& name : configured) {
    if (partition_counts.contains(name)) continue;
    if (auto removed = remove_topic_files(name, 0); !removed) return removed;
  }
  for (const auto& [name, count] : partition_counts) {
    auto topic = std::make_unique<Topic>();
    topic->name = name;
    auto overrides = load_configs(name);
    if (!overrides && overrides.error() == storage::LogError::corrupt) {
      // A flipped bit in the (CRC-sealed) config file must not keep the broker, and every other
      // topic, from starting: keep the topic's data, with broker defaults, as for rejected keys.
      log_.error("topic '{}' has a corrupt config file; using defaults", name);
      overrides = ConfigMap{};
    }
    if (!overrides) return std::unexpected(overrides.error());
    auto settings = resolve_topic_settings(defaults_, *overrides);
    if (!settings) {
      // Keys this version no longer accepts: keep the topic, with broker defaults.
      log_.error("topic '{}' has configs this broker rejects ({}); using defaults", name,
                 settings.error());
      settings = defaults_;
    }
    topic->config_overrides = std::move(*overrides);
    topic->settings = std::move(*settings);
    if (!open_partitions(*topic, count)) return std::unexpected(storage::LogError::io);
    log_.info("recovered topic '{}' with {} partition(s)", name, count);
    topics_.emplace(name, std::move(topic));
  }
  return {};
}

std::expected<Topic*, TopicError> TopicManager::create_topic(const std::string& name,
                                                             std::int32_t partition_count,
                                                             const ConfigMap& overrides) {
  if (!valid_topic_name(name)) return std::unexpected(TopicError::invalid_name);
  if (partition_count <= 0 || partition_count > kPartitionsPerTopicMax) {
    return std::unexpected(TopicError::invalid_partitions);
  }
  auto settings = resolve_topic_settings(defaults_, overrides);
  if (!settings) return std::unexpected(TopicError::invalid_config);
  LockGuard guard(change_mutex_);
  // Another fiber may have created it while this one waited for the mutex.
  if (find(name) != nullptr) return std::unexpected(TopicError::already_exists);
  // Configs first: a crash before the first partition leaves only a config file, removed by
  // recover(); a stale file from such a crash is replaced (or removed) here.
  if (!persist_configs(name, overrides)) return std::unexpected(TopicError::storage);
  auto topic = std::make_unique<Topic>();
  topic->name = name;
  topic->config_overrides = overrides;
  topic->settings = std::move(*settings);
  if (auto opened = open_partitions(*topic, partition_count); !opened) {
    return std::unexpected(opened.error());
  }
  log_.info("created topic '{}' with {} partition(s)", name, partition_count);
  Topic* created = topic.get();
  topics_.emplace(name, std::move(topic));
  return created;
}

std::expected<void, TopicError> TopicManager::add_partitions(const std::string& name,
                                                             std::int32_t partition_count) {
  LockGuard guard(change_mutex_);
  Topic* topic = find(name);
  if (topic == nullptr) return std::unexpected(TopicError::not_found);
  if (partition_count <= static_cast<std::int32_t>(topic->partitions.size()) ||
      partition_count > kPartitionsPerTopicMax) {
    return std::unexpected(TopicError::invalid_partitions);
  }
  const std::size_t before = topic->partitions.size();
  if (auto opened = open_partitions(*topic, partition_count); !opened) return opened;
  log_.info("topic '{}' grown from {} to {} partition(s)", name, before, partition_count);
  return {};
}

std::expected<void, TopicError> TopicManager::alter_configs(const std::string& name,
                                                            const ConfigMap& overrides) {
  auto settings = resolve_topic_settings(defaults_, overrides);
  if (!settings) return std::unexpected(TopicError::invalid_config);
  LockGuard guard(change_mutex_);
  Topic* topic = find(name);
  if (topic == nullptr) return std::unexpected(TopicError::not_found);
  if (!persist_configs(name, overrides)) return std::unexpected(TopicError::storage);
  topic->config_overrides = overrides;
  topic->settings = std::move(*settings);
  bool reopened_all = true;
  for (auto& partition : topic->partitions) {
    (void)partition->log->close();
    auto reopened = storage::PartitionLog::open(env_, partition_directory(name, partition->index),
                                                topic->settings.log);
    if (!reopened) {
      // The closed log stays in place and answers `closed` until the next start.
      log_.error("cannot reopen partition {}-{} with new configs: {}", name, partition->index,
                 storage::to_string(reopened.error()));
      reopened_all = false;
      continue;
    }
    partition->log = std::move(*reopened);
  }
  log_.info("topic '{}' configs replaced ({} override(s))", name, overrides.size());
  if (!reopened_all) return std::unexpected(TopicError::storage);
  return {};
}

std::size_t TopicManager::replace_defaults(TopicSettings defaults) {
  defaults_ = std::move(defaults);
  std::vector<std::pair<std::string, ConfigMap>> topics;
  for (const auto& [name, topic] : topics_) topics.emplace_back(name, topic->config_overrides);
  std::size_t failed = 0;
  for (const auto& [name, overrides] : topics) {
    auto altered = alter_configs(name, overrides);
    // not_found: deleted meanwhile.
    if (!altered && altered.error() != TopicError::not_found) failed++;
  }
  return failed;
}

std::expected<void, TopicError> TopicManager::delete_topic(const std::string& name) {
  LockGuard guard(change_mutex_);
  auto found = topics_.find(name);
  if (found == topics_.end()) return std::unexpected(TopicError::not_found);
  if (!storage::replace_file_durably(env_.disk(), topic_file(name, kDeletingSuffix), {})) {
    return std::unexpected(TopicError::storage);
  }
  const std::unique_ptr<Topic> topic = std::move(found->second);
  topics_.erase(found);
  for (auto& partition : topic->partitions) (void)partition->log->close();
  if (!remove_topic_files(name, static_cast<std::int32_t>(topic->partitions.size()))) {
    // The marker stays: the next start finishes the removal.
    log_.error("deleting topic '{}': removing its files failed; finished at next start", name);
    return std::unexpected(TopicError::storage);
  }
  log_.info("deleted topic '{}'", name);
  return {};
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

std::shared_ptr<Partition> TopicManager::find(std::string_view name, std::int32_t partition_index) {
  Topic* topic = find(name);
  if (topic == nullptr || partition_index < 0 ||
      static_cast<std::size_t>(partition_index) >= topic->partitions.size()) {
    return nullptr;
  }
  return topic->partitions[static_cast<std::size_t>(partition_index)];
}

std::vector<std::shared_ptr<Partition>> TopicManager::all_partitions() const {
  std::vector<std::shared_ptr<Partition>> partitions;
  for (const auto& [name, topic] : topics_) {
    partitions.insert(partitions.end(), topic->partitions.begin(), topic->partitions.end());
  }
  return partitions;
}

}  // namespace sluice::kafka
