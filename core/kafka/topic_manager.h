#pragma once
// TopicManager: the broker's topics, each a fixed set of partitions, each partition a durable
// storage::PartitionLog under <data_dir>/<topic>-<partition>/ plus its idempotent-producer state.
//
// Lifecycle: recover() lists the data directory and opens every partition found there (rebuilding
// producer state from the log); create_topic() adds one; close_all() closes every log cleanly
// (clean-shutdown markers, so the next start skips the full scan).
// Concurrency: one scheduler. Opening logs suspends, so topic creation is serialised by a mutex
// and a topic becomes visible only once all its partitions are open. Produce handlers wait on
// `idempotent_append_mutex` per partition so check_append → append → on_appended is atomic for
// producers with ids. Every successful append wakes `appended_waiters()` (Fetch long polls).

#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/env/env.h"
#include "core/env/sync.h"
#include "core/storage/partition_log.h"
#include "core/storage/producer_state.h"

namespace sluice::kafka {

// Kafka's topic name rule: 1..249 characters of [a-zA-Z0-9._-], and not "." or "..".
bool valid_topic_name(std::string_view name);

struct Partition {
  std::int32_t index = 0;
  std::unique_ptr<storage::PartitionLog> log;
  storage::ProducerState producers;
  Mutex idempotent_append_mutex;
};

struct Topic {
  std::string name;
  std::vector<std::unique_ptr<Partition>> partitions;  // by index, 0..n-1
};

enum class TopicError : std::uint8_t {
  invalid_name,  // Kafka INVALID_TOPIC_EXCEPTION (17)
  invalid_partitions,
  already_exists,
  storage,  // a partition log failed to open (Kafka KAFKA_STORAGE_ERROR 56)
};

class TopicManager {
 public:
  TopicManager(Env& env, std::string data_dir, storage::LogConfig log_config);
  ~TopicManager();
  TopicManager(const TopicManager&) = delete;
  TopicManager& operator=(const TopicManager&) = delete;

  // Opens every <topic>-<partition> directory under the data directory.
  std::expected<void, storage::LogError> recover();
  std::expected<Topic*, TopicError> create_topic(const std::string& name,
                                                 std::int32_t partition_count);
  void close_all();

  Topic* find(std::string_view name);
  Partition* find(std::string_view name, std::int32_t partition_index);
  // In name order (deterministic).
  const std::map<std::string, std::unique_ptr<Topic>, std::less<>>& topics() const {
    return topics_;
  }

  // Woken (notify_all) after every append; Fetch long polls wait here.
  WaitQueue& appended_waiters() { return appended_waiters_; }
  void notify_appended() { appended_waiters_.notify_all(); }

 private:
  std::expected<std::unique_ptr<Partition>, storage::LogError> open_partition(
      const std::string& topic, std::int32_t index);

  Env& env_;
  std::string data_dir_;
  storage::LogConfig log_config_;
  Log log_;
  Mutex create_mutex_;
  std::map<std::string, std::unique_ptr<Topic>, std::less<>> topics_;
  WaitQueue appended_waiters_;
};

}  // namespace sluice::kafka
