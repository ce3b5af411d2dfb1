#pragma once
// SimAdmin: a simulated Kafka admin client (core/client over the env's Net) for scenarios and
// tests: it creates topics, lists offsets, describes groups and takes the final read of the log.
// The two end-of-run checks write to the history (checkers/kafka_history.h):
//   describe_group  a `group-state` ok {group, state} by this admin's process;
//   final_read      for each partition, a `poll` invoke and ok by "final-reader" with every
//                   record from the log start to the high watermark.
//
// Every operation retries connection errors and retriable Kafka errors (client::
// kafka_error_retriable) with `retry_backoff` until its deadline; the result is the last error
// when the deadline passes, or the first one that is not worth retrying.
//
// Lifecycle and concurrency: one fiber uses an admin at a time; it owns its connections.

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "checkers/kafka_history.h"
#include "core/client/cluster_connections.h"
#include "core/env/env.h"

namespace sluice::scenarios::clients {

struct SimAdminConfig {
  std::string process = "admin";  // the history's process name (group-state), and the client id
  std::vector<Address> bootstrap;
  Duration request_timeout = seconds(10);
  Duration retry_backoff = milliseconds(100);
  std::int32_t fetch_bytes_max = 1024 * 1024;  // per partition and Fetch, in final_read
};

struct GroupDescription {
  std::string group;
  std::string state;  // "Stable", "Empty", "PreparingRebalance", ... or "Dead"
  std::string protocol;
  std::vector<std::string> member_ids;
};

// How final_read treats a partition the broker cannot serve in full.
struct FinalReadOptions {
  // Stop a partition's read at the first Fetch answered CORRUPT_MESSAGE or KAFKA_STORAGE_ERROR
  // (after `corruption_retries` tries) and keep the prefix read so far, noting where it stopped,
  // instead of failing the whole read.
  bool stop_at_corruption = false;
  int corruption_retries = 3;
  // Check each fetched batch's CRC in the client (as Kafka's check.crcs does). Off, a corrupt
  // batch the broker serves reaches the history, where the scenario's own checks judge it.
  bool verify_batch_crc = true;
};

// A partition whose final read stopped early (FinalReadOptions::stop_at_corruption).
struct FinalReadStop {
  checkers::TopicPartition tp;
  std::int64_t offset = -1;  // the first offset not read
  std::string error;
};

// ListOffsets' special timestamps.
inline constexpr std::int64_t kEarliestTimestamp = -2;
inline constexpr std::int64_t kLatestTimestamp = -1;

class SimAdmin {
 public:
  template <typename T>
  using Result = std::expected<T, client::ClientError>;
  using PartitionOffsets = std::map<checkers::TopicPartition, std::int64_t>;

  // `history` receives the group-state and final-read ops; it must outlive the admin.
  SimAdmin(Env& env, SimAdminConfig config, checkers::History& history);
  SimAdmin(const SimAdmin&) = delete;
  SimAdmin& operator=(const SimAdmin&) = delete;

  // Creates `topic` (replication factor 1) with `configs`. TOPIC_ALREADY_EXISTS counts as done:
  // a retried create may have gone through the first time.
  Result<void> create_topic(const std::string& topic, std::int32_t partitions,
                            const std::map<std::string, std::string>& configs, Instant deadline);
  // The number of partitions of `topic` (UNKNOWN_TOPIC_OR_PARTITION is retried: a new topic may
  // not be visible yet).
  Result<std::int32_t> partition_count(const std::string& topic, Instant deadline);
  // ListOffsets at `timestamp` (kEarliestTimestamp, kLatestTimestamp or ms since the epoch), each
  // partition asked of its leader. -1 for a partition with no record at or after `timestamp`.
  Result<PartitionOffsets> list_offsets(const std::vector<checkers::TopicPartition>& partitions,
                                        std::int64_t timestamp, Instant deadline);
  // DescribeGroups on the group's coordinator; records the group's state in the history.
  Result<GroupDescription> describe_group(const std::string& group, Instant deadline);
  // Reads every partition of `topics` from its log start to its high watermark and records each
  // partition's read as a final-reader poll. Returns the records in (topic, partition, offset)
  // order. With `options.stop_at_corruption`, a partition the broker reports corrupt at some
  // offset contributes the records below it, and `stops` (when not null) receives where it
  // stopped and why.
  Result<std::vector<checkers::RecordRef>> final_read(const std::vector<std::string>& topics,
                                                      Instant deadline,
                                                      const FinalReadOptions& options = {},
                                                      std::vector<FinalReadStop>* stops = nullptr);

 private:
  Result<std::vector<checkers::RecordRef>> read_partition(const checkers::TopicPartition& tp,
                                                          Instant deadline,
                                                          const FinalReadOptions& options,
                                                          std::optional<FinalReadStop>& stop);
  Result<std::vector<checkers::RecordRef>> fetch_once(const checkers::TopicPartition& tp,
                                                      std::int64_t offset,
                                                      std::int64_t& high_watermark,
                                                      Instant deadline, bool verify_batch_crc);
  Result<std::shared_ptr<client::KafkaConnection>> leader_of(const checkers::TopicPartition& tp);
  Result<std::shared_ptr<client::KafkaConnection>> coordinator_of(const std::string& group);
  // Runs `operation` until it succeeds, fails for good, or `deadline` passes.
  template <typename T, typename Operation>
  Result<T> with_retries(Instant deadline, Operation&& operation);
  void record_final_poll(const checkers::TopicPartition& tp,
                         const std::vector<checkers::RecordRef>& records);

  Env& env_;
  SimAdminConfig config_;
  checkers::History& history_;
  client::ClusterConnections cluster_;
};

}  // namespace sluice::scenarios::clients
