#pragma once
// SimProducer: a simulated Kafka producer speaking the real wire protocol (core/client over the
// env's Net): Metadata, InitProducerId, Produce with record batches v2 (storage::build_batch).
// It records every send in a checkers::History (see checkers/kafka_history.h for the contract).
//
// Model: records are queued per partition (explicit partition, or Kafka's murmur2 of the key)
// into batches of at most batch_records_max records. A batch is ready when full, when its first
// record has waited `linger`, or on flush(). One batch at a time is in flight — it is sent and
// retried until it completes, then the next ready batch (oldest first) goes — so the history
// holds at most one pending send per process, as the checkers assume (Kafka's
// max.in.flight.requests.per.connection=1, one partition per Produce request).
//
// A send op is one batch: invoke with its records when first sent, then
//   ok    acknowledged (acks 1 or -1), each record with its offset (-1 when the broker answered
//         DUPLICATE_SEQUENCE_NUMBER, which librdkafka takes as success with unknown offsets);
//   fail  given up and certainly not written: no attempt reached the broker, or every one that
//         did was answered with an error;
//   info  given up with the outcome unknown (an attempt timed out or met a reset after the
//         request was written), and every acks=0 send (nothing is acknowledged).
// Records that expire before their first send get an invoke and a fail.
//
// Retries (`retries`, `retry_backoff`, bounded by `delivery_timeout` from a record's produce())
// follow retriable Kafka errors and connection errors, reconnecting and refreshing metadata.
// Idempotence (acks must be -1): InitProducerId, per-partition sequence numbers assigned when a
// batch is first sent and kept by its retries. Like librdkafka: DUPLICATE_SEQUENCE_NUMBER is
// success; OUT_OF_ORDER_SEQUENCE_NUMBER on the batch the broker should take next is a sequence
// desynchronisation (librdkafka's fatal error: the batch ends info, and the producer starts over
// as a new producer id, as an application recreating it would); above it, a gap left by a failed
// batch (bump: new producer id, sequences from 0, retry). A batch that ends without success after
// being sequenced also bumps, so no later batch is refused for the gap it leaves; batches that
// may have been written under the old producer id end info rather than risk a duplicate.
//
// Lifecycle and concurrency: one fiber drives a producer (produce, poll, flush); every wait is
// bounded. Destroying it (or crashing its node) leaves its pending send pending: the checker
// reads that as info.

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "checkers/kafka_history.h"
#include "core/client/cluster_connections.h"
#include "core/env/env.h"

namespace sluice::scenarios::clients {

struct ProducerRecord {
  std::string topic;
  std::optional<std::int32_t> partition;  // nullopt: murmur2(key) % partitions, as Kafka does
  std::string key;
  std::string value;  // unique per run (the checkers identify records by value)
};

struct SimProducerConfig {
  std::string process = "producer";  // the history's process name, and the client id
  std::vector<Address> bootstrap;
  std::int16_t acks = -1;  // 0, 1 or -1 (all)
  bool idempotent = false;
  std::size_t batch_records_max = 16;
  Duration linger = milliseconds(5);
  std::int32_t retries = INT32_MAX;
  Duration retry_backoff = milliseconds(100);
  Duration request_timeout = seconds(30);
  Duration delivery_timeout = seconds(120);
  // produce() waits at most this long for the topic's partition count (Kafka's max.block.ms).
  Duration max_block = seconds(60);
  std::size_t queued_records_max = 100'000;  // produce() refuses more (Kafka's buffer.memory)
};

struct SimProducerStats {
  std::uint64_t records_ok = 0, records_fail = 0, records_info = 0;
  std::uint64_t batches_ok = 0, batches_fail = 0, batches_info = 0;
  std::uint64_t requests = 0, retries = 0, epoch_bumps = 0;
};

// Kafka's murmur2 (Utils.murmur2), and its partition for a key: toPositive(murmur2) % count.
std::int32_t kafka_murmur2(std::string_view bytes);
std::int32_t partition_for_key(std::string_view key, std::int32_t partition_count);

class SimProducer {
 public:
  SimProducer(Env& env, SimProducerConfig config, checkers::History& history);
  ~SimProducer();
  SimProducer(const SimProducer&) = delete;
  SimProducer& operator=(const SimProducer&) = delete;

  // Queues a record. Blocks (at most max_block) only to learn the topic's partition count. false:
  // not queued (no metadata in time, a bad explicit partition, or the queue is full); such a record
  // is not in the history.
  bool produce(ProducerRecord record);
  // Sends what is ready, retries what is due and handles responses until `until`. A request in
  // flight at `until` is finished first (bounded by request_timeout).
  void poll(Instant until);
  // Sends everything queued. true when every record completed before `deadline`.
  bool flush(Instant deadline);

  std::size_t queued_records() const { return queued_records_; }
  const SimProducerStats& stats() const { return stats_; }

 private:
  struct Batch;
  struct PartitionQueue;

  bool refresh_metadata(const std::string* extra_topic);
  bool ensure_partition_count(const std::string& topic, Instant deadline);
  void run(Instant until, bool flushing);
  Batch* pick_ready_batch(Instant now, bool flushing);
  std::optional<Instant> next_ready_time() const;
  std::optional<Instant> next_expiry() const;
  void expire(Instant now);
  bool ensure_producer_id();
  void invoke(Batch& batch);
  void seal(Batch& batch);
  void attempt(Batch& batch);
  void on_partition_response(Batch& batch, std::int16_t error_code, std::int64_t base_offset);
  void on_failed_attempt(Batch& batch, std::string_view why);
  void retry_later(Batch& batch, std::string_view why);
  void give_up(Batch& batch, std::string why);
  void bump_epoch(std::string_view why);
  // Records the batch's outcome and removes it (it must be its partition's front).
  void complete(Batch& batch, checkers::OpType outcome, std::string error,
                std::int64_t base_offset = -1);
  PartitionQueue& queue_of(const checkers::TopicPartition& tp);

  Env& env_;
  SimProducerConfig config_;
  checkers::History& history_;
  client::ClusterConnections cluster_;
  client::ClusterMetadata metadata_;
  bool metadata_stale_ = true;
  std::map<checkers::TopicPartition, std::unique_ptr<PartitionQueue>> queues_;
  Batch* in_flight_ = nullptr;  // the batch being sent and retried, invoked in the history
  std::size_t queued_records_ = 0;
  // Idempotence: the producer id and epoch of every sequenced batch; -1 before InitProducerId.
  std::int64_t producer_id_ = -1;
  std::int16_t producer_epoch_ = -1;
  SimProducerStats stats_;
};

}  // namespace sluice::scenarios::clients
