#pragma once
// Idempotent-producer state of one partition: a pure state machine, no IO, no clock (DESIGN.md
// rule 4). It answers "may this client batch be appended?" (check_append) and learns from what the
// log appended (on_appended). Kafka's reference: ProducerStateEntry, ProducerAppendInfo and
// UnifiedLog.analyzeAndValidateProducerState; the rules are ../shared/PROTOCOL.md §3.
//
// Lifecycle: the partition log owns one ProducerState. On the produce path it calls check_append
// with the validated client batch; on `append` it stamps and writes the batch, then calls
// on_appended with the stamped header; on `duplicate` it answers success with the original
// offsets and writes nothing; otherwise it answers the Kafka error code. On recovery or leader
// change it builds a fresh ProducerState by calling on_appended for every batch header of the log
// in offset order: this yields the same state as the live path (same inputs, same code).
// Single-threaded, like everything in core/.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string_view>
#include <vector>

#include "core/storage/record_batch.h"

namespace sluice::storage {

// Kafka's ProducerStateManager.NUM_BATCHES_TO_RETAIN: clients keep at most 5 batches in flight
// with idempotence (librdkafka RD_KAFKA_IDEMP_MAX_INFLIGHT, Java max.in.flight), so any retry of
// an appended batch is among the producer's last 5.
inline constexpr std::size_t kProducerBatchesRetained = 5;
// Kafka's producer.id.expiration.ms default (1 day).
inline constexpr std::int64_t kProducerIdExpirationMsDefault = 86'400'000;

// Metadata of one appended batch, kept to answer retries.
struct ProducerBatch {
  std::int32_t sequence_first = 0;
  std::int32_t sequence_last = 0;
  std::int64_t offset_base = 0;
  std::int64_t offset_last = 0;
  // The stored batch's max timestamp (the append time for LogAppendTime topics); Kafka answers a
  // duplicate with it as the response's log_append_time.
  std::int64_t timestamp_ms = 0;

  bool operator==(const ProducerBatch&) const = default;
};

// What the partition knows about one producer id.
struct ProducerEntry {
  std::int16_t epoch = kNoProducerEpoch;
  std::vector<ProducerBatch> batches;  // oldest first, at most kProducerBatchesRetained
  std::int64_t last_seen_ms = 0;       // the latest now_ms given to on_appended, for expiry

  // kNoSequence when no batch is cached (a fresh epoch started by a control batch).
  std::int32_t sequence_last() const {
    return batches.empty() ? kNoSequence : batches.back().sequence_last;
  }
  bool operator==(const ProducerEntry&) const = default;
};

enum class ProducerVerdict : std::uint8_t {
  append,     // in sequence, new epoch at sequence 0, unknown producer, or no producer id
  duplicate,  // a retry of a cached batch: answer success with its offsets, append nothing
  invalid_producer_epoch,  // epoch below the producer's current epoch (Kafka 47)
  out_of_order_sequence,   // gap, old sequence outside the cache, or new epoch not at 0 (Kafka 45)
};

std::string_view to_string(ProducerVerdict verdict);

struct ProducerCheck {
  ProducerVerdict verdict = ProducerVerdict::append;
  ProducerBatch original;  // the cached batch when verdict == duplicate, otherwise zeros

  // The Produce response's error code: 0 for append and duplicate (Kafka no longer answers
  // DUPLICATE_SEQUENCE_NUMBER 46), 47 INVALID_PRODUCER_EPOCH, 45 OUT_OF_ORDER_SEQUENCE_NUMBER.
  std::int16_t kafka_error_code() const;
  bool operator==(const ProducerCheck&) const = default;
};

class ProducerState {
 public:
  // PROTOCOL.md §3's check order for a validated client batch (validate_client_batch: a producer
  // id implies epoch >= 0 and base sequence >= 0): non-idempotent ⇒ append; unknown producer ⇒
  // append with any sequence (KIP-360, Kafka >= 2.5); same epoch and (first, last) sequence equal
  // to a cached batch ⇒ duplicate; lower epoch ⇒ 47; higher epoch ⇒ base sequence 0 or 45; same
  // epoch ⇒ base sequence == last + 1 (0 after INT32_MAX) or 45.
  ProducerCheck check_append(const BatchHeader& batch) const;

  // Records a batch the log appended, with its broker-assigned offsets. Also the recovery path,
  // so it trusts the log: like Kafka's ProducerStateEntry.addBatch, any epoch change (even a
  // lower one, which a replicated log may hold) clears the cache and adopts the batch's epoch.
  // Control batches (transaction markers) set the epoch but cache nothing. Batches without a
  // producer id are ignored. now_ms is the broker's time; last_seen_ms never moves backwards.
  // On recovery pass the recovery time: an idle producer then outlives a restart by at most one
  // expiration period, instead of depending on client-set record timestamps.
  void on_appended(const BatchHeader& stamped_batch, std::int64_t now_ms);

  // Forgets producers idle for at least producer_id_expiration_ms (Kafka's isProducerExpired uses
  // >=). A forgotten producer is unknown again, so its next batch is accepted at any sequence.
  // Kafka keeps producers with an open transaction; transactions are not tracked here yet.
  // Returns how many producers were dropped.
  std::size_t expire(std::int64_t now_ms, std::int64_t producer_id_expiration_ms);

  // Log truncation to `offset_end` (the new log end: batches at or after it are gone). Drops the
  // cached batches ending at or after it, and forgets producers left with no cached batch. The
  // result is a weakening of the exact state, never a strengthening: each remaining producer has
  // the exact epoch and a suffix of the exact cache, and a forgotten producer accepts any
  // sequence rather than being wrongly fenced. The exact state is a rebuild: replay the retained
  // log's headers into a fresh ProducerState, as Kafka's truncateAndReload does; do that on
  // leader change and recovery.
  void truncate_to(std::int64_t offset_end);

  // nullptr when the producer id is unknown.
  const ProducerEntry* find(std::int64_t producer_id) const;
  // In producer id order: deterministic enumeration for snapshots, metrics and tests.
  const std::map<std::int64_t, ProducerEntry>& producers() const { return producers_; }

  bool operator==(const ProducerState&) const = default;

 private:
  std::map<std::int64_t, ProducerEntry> producers_;
};

}  // namespace sluice::storage
