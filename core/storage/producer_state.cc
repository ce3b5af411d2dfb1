#include "core/storage/producer_state.h"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <iterator>
#include <limits>

namespace sluice::storage {
namespace {

constexpr std::int16_t kNone = 0;
constexpr std::int16_t kOutOfOrderSequenceNumber = 45;
constexpr std::int16_t kInvalidProducerEpoch = 47;

// Kafka's ProducerAppendInfo.inSequence: sequences wrap from INT32_MAX to 0. With no cached batch
// (sequence_last == kNoSequence == -1) only 0 follows.
bool in_sequence(std::int32_t sequence_last, std::int32_t sequence_next) {
  if (sequence_last == std::numeric_limits<std::int32_t>::max()) return sequence_next == 0;
  return sequence_next == sequence_last + 1;
}

const ProducerBatch* find_cached(const ProducerEntry& entry, std::int32_t sequence_first,
                                 std::int32_t sequence_last) {
  // Oldest first, like Kafka's batchWithSequenceRange findFirst; within one epoch the ranges are
  // distinct anyway, since sequences advance contiguously.
  auto match =
      std::find_if(entry.batches.begin(), entry.batches.end(), [&](const ProducerBatch& cached) {
        return cached.sequence_first == sequence_first && cached.sequence_last == sequence_last;
      });
  return match == entry.batches.end() ? nullptr : &*match;
}

ProducerCheck verdict_only(ProducerVerdict verdict) {
  return ProducerCheck{.verdict = verdict, .original = {}};
}

}  // namespace

std::string_view to_string(ProducerVerdict verdict) {
  switch (verdict) {
    case ProducerVerdict::append:
      return "append";
    case ProducerVerdict::duplicate:
      return "duplicate";
    case ProducerVerdict::invalid_producer_epoch:
      return "invalid producer epoch";
    case ProducerVerdict::out_of_order_sequence:
      return "out of order sequence number";
  }
  return "unknown producer verdict";
}

std::int16_t ProducerCheck::kafka_error_code() const {
  switch (verdict) {
    case ProducerVerdict::append:
    case ProducerVerdict::duplicate:
      return kNone;
    case ProducerVerdict::invalid_producer_epoch:
      return kInvalidProducerEpoch;
    case ProducerVerdict::out_of_order_sequence:
      return kOutOfOrderSequenceNumber;
  }
  assert(false && "unhandled ProducerVerdict");
  return kOutOfOrderSequenceNumber;
}

ProducerCheck ProducerState::check_append(const BatchHeader& batch) const {
  if (!batch.has_producer()) return verdict_only(ProducerVerdict::append);
  assert(batch.producer_epoch >= 0 && batch.base_sequence >= 0 && "validate_client_batch first");
  assert(batch.last_offset_delta >= 0);

  const ProducerEntry* entry = find(batch.producer_id);
  if (entry == nullptr) return verdict_only(ProducerVerdict::append);  // KIP-360: any sequence

  if (batch.producer_epoch == entry->epoch) {
    if (const ProducerBatch* cached =
            find_cached(*entry, batch.base_sequence, batch.last_sequence())) {
      return ProducerCheck{.verdict = ProducerVerdict::duplicate, .original = *cached};
    }
  }
  if (batch.producer_epoch < entry->epoch) {
    return verdict_only(ProducerVerdict::invalid_producer_epoch);
  }
  if (batch.producer_epoch > entry->epoch) {
    return verdict_only(batch.base_sequence == 0 ? ProducerVerdict::append
                                                 : ProducerVerdict::out_of_order_sequence);
  }
  // Same epoch and not a cached batch: a gap, or a retry older than the cache (the client cannot
  // have it in flight, since it keeps at most kProducerBatchesRetained).
  return verdict_only(in_sequence(entry->sequence_last(), batch.base_sequence)
                          ? ProducerVerdict::append
                          : ProducerVerdict::out_of_order_sequence);
}

void ProducerState::on_appended(const BatchHeader& stamped_batch, std::int64_t now_ms) {
  if (!stamped_batch.has_producer()) return;
  assert(stamped_batch.last_offset_delta >= 0 && stamped_batch.base_offset >= 0);

  ProducerEntry& entry = producers_[stamped_batch.producer_id];
  if (entry.epoch != stamped_batch.producer_epoch) {
    entry.epoch = stamped_batch.producer_epoch;
    entry.batches.clear();  // sequences restart with the epoch, so old ranges mean nothing
  }
  entry.last_seen_ms = std::max(entry.last_seen_ms, now_ms);
  if (stamped_batch.control()) return;  // markers carry no sequence (base sequence -1)

  assert(stamped_batch.base_sequence >= 0 && "a data batch with a producer id has a sequence");
  if (entry.batches.size() == kProducerBatchesRetained) entry.batches.erase(entry.batches.begin());
  entry.batches.push_back(ProducerBatch{
      .sequence_first = stamped_batch.base_sequence,
      .sequence_last = stamped_batch.last_sequence(),
      .offset_base = stamped_batch.base_offset,
      .offset_last = stamped_batch.last_offset(),
      .timestamp_ms = stamped_batch.max_timestamp,
  });
  assert(entry.batches.size() <= kProducerBatchesRetained);
  assert(entry.batches.size() < 2 ||
         entry.batches[entry.batches.size() - 2].offset_last < stamped_batch.base_offset);
}

std::size_t ProducerState::expire(std::int64_t now_ms, std::int64_t producer_id_expiration_ms) {
  assert(producer_id_expiration_ms >= 0);
  return std::erase_if(producers_, [&](const auto& item) {
    return now_ms - item.second.last_seen_ms >= producer_id_expiration_ms;
  });
}

void ProducerState::truncate_to(std::int64_t offset_end) {
  assert(offset_end >= 0);
  for (auto item = producers_.begin(); item != producers_.end();) {
    std::vector<ProducerBatch>& batches = item->second.batches;
    std::erase_if(batches,
                  [&](const ProducerBatch& cached) { return cached.offset_last >= offset_end; });
    item = batches.empty() ? producers_.erase(item) : std::next(item);
  }
}

const ProducerEntry* ProducerState::find(std::int64_t producer_id) const {
  auto found = producers_.find(producer_id);
  return found == producers_.end() ? nullptr : &found->second;
}

}  // namespace sluice::storage
