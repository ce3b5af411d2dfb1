#pragma once
// TopicManager: the broker's topics, each a set of partitions, each partition a durable
// storage::PartitionLog under <data_dir>/<topic>-<partition>/ plus its idempotent-producer state.
//
// Files in the data directory:
//   <topic>-<partition>/   one partition log
//   <topic>.config         the topic's config overrides (topic_config.h), written tmp + datasync +
//                          rename + directory sync BEFORE the partitions of a new topic exist, so a
//                          topic is never visible without its configs; absent = no overrides
//   <topic>.deleting       deletion marker, written durably before any file of the topic is
//                          removed; recover() finishes an interrupted deletion
//
// Lifecycle: recover() lists the data directory and opens every partition found there (rebuilding
// producer state from the log) with the topic's configs; create_topic(), add_partitions(),
// alter_configs() and delete_topic() change topics; close_all() closes every log cleanly
// (clean-shutdown markers, so the next start skips the full scan).
// Concurrency: one scheduler. Opening logs suspends, so every topic change is serialised by one
// mutex and a topic becomes visible only once all its partitions are open. Partitions and their
// logs are shared_ptrs: a handler suspended in an append keeps what it uses alive while a topic
// is deleted or reconfigured (it then sees LogError::closed). A config change reopens the
// partition logs (close writes a clean-shutdown marker, so reopening skips the scan): appends
// racing the swap fail with KAFKA_STORAGE_ERROR, which clients retry.
// Produce handlers wait on `idempotent_append_mutex` per partition so check_append → append →
// on_appended is atomic for producers with ids. Every successful append wakes
// `appended_waiters()` (Fetch long polls).

#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/env/env.h"
#include "core/env/sync.h"
#include "core/kafka/topic_config.h"
#include "core/storage/partition_log.h"
#include "core/storage/producer_state.h"

namespace sluice::kafka {

// Kafka's topic name rule: 1..249 characters of [a-zA-Z0-9._-], and not "." or "..".
bool valid_topic_name(std::string_view name);

// A partition's traffic since the broker started (metrics): record batches appended by Produce
// and sent by Fetch (whole batches, so records before a fetch offset in its first batch count).
struct PartitionTraffic {
  std::uint64_t bytes_in = 0;
  std::uint64_t records_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t records_out = 0;
};

struct Partition {
  std::int32_t index = 0;
  PartitionTraffic traffic;
  std::shared_ptr<storage::PartitionLog> log;
  storage::ProducerState producers;
  Mutex idempotent_append_mutex;
};

struct Topic {
  std::string name;
  std::vector<std::shared_ptr<Partition>> partitions;  // by index, 0..n-1
  ConfigMap config_overrides;                          // keys set on the topic
  TopicSettings settings;                              // broker defaults + overrides
};

enum class TopicError : std::uint8_t {
  invalid_name,  // Kafka INVALID_TOPIC_EXCEPTION (17)
  invalid_partitions,
  already_exists,
  not_found,       // Kafka UNKNOWN_TOPIC_OR_PARTITION (3)
  invalid_config,  // Kafka INVALID_CONFIG (40)
  storage,         // a partition log failed to open (Kafka KAFKA_STORAGE_ERROR 56)
};

class TopicManager {
 public:
  TopicManager(Env& env, std::string data_dir, TopicSettings defaults);
  ~TopicManager();
  TopicManager(const TopicManager&) = delete;
  TopicManager& operator=(const TopicManager&) = delete;

  // Opens every <topic>-<partition> directory under the data directory.
  std::expected<void, storage::LogError> recover();
  // `overrides` must resolve (resolve_topic_settings) or the result is invalid_config.
  std::expected<Topic*, TopicError> create_topic(const std::string& name,
                                                 std::int32_t partition_count,
                                                 const ConfigMap& overrides = {});
  // Grows a topic to `partition_count` partitions (more than it has).
  std::expected<void, TopicError> add_partitions(const std::string& name,
                                                 std::int32_t partition_count);
  // Replaces the topic's overrides (Kafka's non-incremental AlterConfigs) and reopens its logs.
  std::expected<void, TopicError> alter_configs(const std::string& name,
                                                const ConfigMap& overrides);
  // Closes the topic's logs and removes its files durably.
  std::expected<void, TopicError> delete_topic(const std::string& name);
  void close_all();

  Topic* find(std::string_view name);
  std::shared_ptr<Partition> find(std::string_view name, std::int32_t partition_index);
  // Every partition of every topic (for housekeeping that suspends between partitions).
  std::vector<std::shared_ptr<Partition>> all_partitions() const;
  const TopicSettings& defaults() const { return defaults_; }
  // New broker defaults (a config reload): every topic is re-resolved from them and its own
  // overrides and its logs reopened, as AlterConfigs does. Returns how many topics failed.
  std::size_t replace_defaults(TopicSettings defaults);
  static constexpr std::int32_t kPartitionsPerTopicMax = 10'000;
  // In name order (deterministic).
  const std::map<std::string, std::unique_ptr<Topic>, std::less<>>& topics() const {
    return topics_;
  }

  // Woken (notify_all) after every append; Fetch long polls wait here.
  WaitQueue& appended_waiters() { return appended_waiters_; }
  void notify_appended() { appended_waiters_.notify_all(); }

 private:
  std::expected<std::shared_ptr<Partition>, storage::LogError> open_partition(
      const std::string& topic, std::int32_t index, const storage::LogConfig& config);
  // Opens partitions [topic.partitions.size(), count) into `topic`; closes them again on failure.
  std::expected<void, TopicError> open_partitions(Topic& topic, std::int32_t count);
  std::string partition_directory(std::string_view topic, std::int32_t index) const;
  std::string topic_file(std::string_view topic, std::string_view suffix) const;
  // Writes (or, when empty, removes) <topic>.config durably.
  std::expected<void, storage::LogError> persist_configs(const std::string& topic,
                                                         const ConfigMap& overrides);
  std::expected<ConfigMap, storage::LogError> load_configs(const std::string& topic);
  // Removes partition directories [0, partition_count), <topic>.config and the marker, durably.
  std::expected<void, storage::LogError> remove_topic_files(const std::string& topic,
                                                            std::int32_t partition_count);

  Env& env_;
  std::string data_dir_;
  TopicSettings defaults_;
  Log log_;
  Mutex change_mutex_;  // serialises create / add partitions / alter / delete
  std::map<std::string, std::unique_ptr<Topic>, std::less<>> topics_;
  WaitQueue appended_waiters_;
};

}  // namespace sluice::kafka
