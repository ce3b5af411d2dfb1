// The idempotent-producer state machine against PROTOCOL.md §3: one test per rule with Kafka's
// error codes, then model-based properties driving simulated clients (new batches, retries,
// epoch bumps, zombies, gaps, expiry) against a reference model written independently here.
#include "core/storage/producer_state.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace sluice::storage {
namespace {

constexpr std::int32_t kSequenceMax = std::numeric_limits<std::int32_t>::max();
constexpr std::int16_t kOutOfOrderSequenceNumber = 45;
constexpr std::int16_t kInvalidProducerEpoch = 47;

// The test's own sequence arithmetic, independent of BatchHeader::last_sequence.
std::int32_t sequence_add(std::int32_t sequence, std::int64_t count) {
  return static_cast<std::int32_t>((static_cast<std::int64_t>(sequence) + count) %
                                   (std::int64_t{kSequenceMax} + 1));
}

BatchHeader client_batch(std::int64_t producer_id, std::int16_t epoch, std::int32_t base_sequence,
                         std::int32_t records = 1) {
  BatchHeader batch;
  batch.magic = kMagicV2;
  batch.producer_id = producer_id;
  batch.producer_epoch = epoch;
  batch.base_sequence = base_sequence;
  batch.records_count = records;
  batch.last_offset_delta = records - 1;
  return batch;
}

BatchHeader plain_batch(std::int32_t records = 1) {
  return client_batch(kNoProducerId, kNoProducerEpoch, kNoSequence, records);
}

// A partition log reduced to what the producer state sees: it assigns offsets to appended
// batches and remembers their stamped headers for replay.
struct Partition {
  ProducerState state;
  std::int64_t offset_end = 0;
  std::int64_t now_ms = 1'000;
  std::vector<std::pair<BatchHeader, std::int64_t>> appended;

  ProducerCheck produce(BatchHeader batch) {
    const ProducerCheck check = state.check_append(batch);
    if (check.verdict == ProducerVerdict::append) {
      batch.base_offset = offset_end;
      batch.base_timestamp = now_ms;
      batch.max_timestamp = now_ms + batch.last_offset_delta;
      offset_end = batch.last_offset() + 1;
      state.on_appended(batch, now_ms);
      appended.emplace_back(batch, now_ms);
    }
    return check;
  }
  // The original metadata of the appended batch at `index` in log order.
  ProducerBatch original(std::size_t index) const {
    const BatchHeader& batch = appended.at(index).first;
    return ProducerBatch{
        .sequence_first = batch.base_sequence,
        .sequence_last = sequence_add(batch.base_sequence, batch.last_offset_delta),
        .offset_base = batch.base_offset,
        .offset_last = batch.last_offset(),
        .timestamp_ms = batch.max_timestamp};
  }
};

ProducerCheck verdict_only(ProducerVerdict verdict) {
  ProducerCheck check;
  check.verdict = verdict;
  return check;
}

ProducerState replay(const std::vector<std::pair<BatchHeader, std::int64_t>>& appended) {
  ProducerState rebuilt;
  for (const auto& [batch, now_ms] : appended) rebuilt.on_appended(batch, now_ms);
  return rebuilt;
}

// --- One test per rule -------------------------------------------------------------------------

TEST(ProducerState, non_idempotent_batches_always_append) {
  Partition partition;
  for (int i = 0; i < 10; ++i) {
    const ProducerCheck check = partition.produce(plain_batch(3));
    EXPECT_EQ(check.verdict, ProducerVerdict::append);
    EXPECT_EQ(check.kafka_error_code(), 0);
  }
  EXPECT_TRUE(partition.state.producers().empty());
  EXPECT_EQ(partition.offset_end, 30);
}

TEST(ProducerState, unknown_producer_accepts_any_sequence) {
  // KIP-360 (Kafka >= 2.5): a producer the partition does not know, first write or expired, may
  // start anywhere, at any epoch.
  for (std::int32_t sequence : {0, 1, 42, kSequenceMax - 1, kSequenceMax}) {
    ProducerState state;
    const ProducerCheck check = state.check_append(client_batch(7, 3, sequence, 2));
    EXPECT_EQ(check.verdict, ProducerVerdict::append) << sequence;
    EXPECT_EQ(check.kafka_error_code(), 0);
  }
  Partition partition;
  ASSERT_EQ(partition.produce(client_batch(7, 3, 1000, 2)).verdict, ProducerVerdict::append);
  EXPECT_EQ(partition.produce(client_batch(7, 3, 1002)).verdict, ProducerVerdict::append);
  EXPECT_EQ(partition.produce(client_batch(8, 0, 555)).verdict, ProducerVerdict::append);
}

TEST(ProducerState, in_sequence_batches_append) {
  Partition partition;
  std::int32_t sequence = 0;
  for (std::int32_t records : {1, 5, 2, 7, 1, 1, 3}) {
    EXPECT_EQ(partition.produce(client_batch(1, 0, sequence, records)).verdict,
              ProducerVerdict::append);
    sequence += records;
  }
  const ProducerEntry* entry = partition.state.find(1);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->sequence_last(), sequence - 1);
  EXPECT_EQ(entry->batches.size(), kProducerBatchesRetained);
}

TEST(ProducerState, sequence_gap_is_out_of_order_45) {
  Partition partition;
  ASSERT_EQ(partition.produce(client_batch(1, 0, 0, 3)).verdict, ProducerVerdict::append);
  for (std::int32_t sequence : {4, 5, 100, kSequenceMax, 1, 2}) {
    const ProducerCheck check = partition.produce(client_batch(1, 0, sequence));
    EXPECT_EQ(check.verdict, ProducerVerdict::out_of_order_sequence) << sequence;
    EXPECT_EQ(check.kafka_error_code(), kOutOfOrderSequenceNumber);
  }
  EXPECT_EQ(partition.produce(client_batch(1, 0, 3)).verdict, ProducerVerdict::append);
}

TEST(ProducerState, duplicate_returns_original_offsets_for_each_of_last_five_batches) {
  Partition partition;
  partition.produce(plain_batch(4));  // producer offsets do not start at 0
  std::int32_t sequence = 0;
  std::vector<BatchHeader> sent;
  for (std::int32_t records = 1; records <= 7; ++records) {
    sent.push_back(client_batch(9, 2, sequence, records));
    ASSERT_EQ(partition.produce(sent.back()).verdict, ProducerVerdict::append);
    partition.now_ms += 10;
    sequence += records;
  }
  const std::size_t first_cached = sent.size() - kProducerBatchesRetained;
  for (std::size_t i = first_cached; i < sent.size(); ++i) {
    const ProducerCheck check = partition.produce(sent[i]);
    EXPECT_EQ(check.verdict, ProducerVerdict::duplicate) << i;
    EXPECT_EQ(check.kafka_error_code(), 0);
    EXPECT_EQ(check.original, partition.original(i + 1)) << i;  // +1: the plain batch
  }
  EXPECT_EQ(partition.appended.size(), sent.size() + 1) << "a duplicate must not be appended";
}

TEST(ProducerState, retry_older_than_five_cached_batches_is_out_of_order_45) {
  // Kafka forgets batches beyond the last 5; a client with at most 5 in flight never retries them.
  Partition partition;
  std::vector<BatchHeader> sent;
  for (std::int32_t sequence = 0; sequence < 8; ++sequence) {
    sent.push_back(client_batch(9, 0, sequence));
    ASSERT_EQ(partition.produce(sent.back()).verdict, ProducerVerdict::append);
  }
  for (std::size_t i = 0; i < sent.size() - kProducerBatchesRetained; ++i) {
    const ProducerCheck check = partition.produce(sent[i]);
    EXPECT_EQ(check.verdict, ProducerVerdict::out_of_order_sequence) << i;
    EXPECT_EQ(check.kafka_error_code(), kOutOfOrderSequenceNumber);
  }
}

TEST(ProducerState, duplicate_requires_the_exact_sequence_range) {
  Partition partition;
  ASSERT_EQ(partition.produce(client_batch(1, 0, 0, 4)).verdict, ProducerVerdict::append);
  ASSERT_EQ(partition.produce(client_batch(1, 0, 4, 2)).verdict, ProducerVerdict::append);
  EXPECT_EQ(partition.produce(client_batch(1, 0, 0, 3)).verdict,
            ProducerVerdict::out_of_order_sequence);
  EXPECT_EQ(partition.produce(client_batch(1, 0, 1, 3)).verdict,
            ProducerVerdict::out_of_order_sequence);
  EXPECT_EQ(partition.produce(client_batch(1, 0, 0, 6)).verdict,
            ProducerVerdict::out_of_order_sequence);
  EXPECT_EQ(partition.produce(client_batch(1, 0, 4, 2)).verdict, ProducerVerdict::duplicate);
}

TEST(ProducerState, lower_epoch_is_invalid_producer_epoch_47) {
  Partition partition;
  const BatchHeader old_epoch_batch = client_batch(5, 3, 0, 2);
  ASSERT_EQ(partition.produce(old_epoch_batch).verdict, ProducerVerdict::append);
  ASSERT_EQ(partition.produce(client_batch(5, 4, 0)).verdict, ProducerVerdict::append);
  for (const BatchHeader& batch : {old_epoch_batch, client_batch(5, 3, 2), client_batch(5, 0, 0)}) {
    const ProducerCheck check = partition.produce(batch);
    EXPECT_EQ(check.verdict, ProducerVerdict::invalid_producer_epoch);
    EXPECT_EQ(check.kafka_error_code(), kInvalidProducerEpoch);
  }
}

TEST(ProducerState, new_epoch_requires_sequence_zero_45) {
  Partition partition;
  ASSERT_EQ(partition.produce(client_batch(5, 0, 0, 3)).verdict, ProducerVerdict::append);
  for (std::int32_t sequence : {3, 1, kSequenceMax}) {
    const ProducerCheck check = partition.produce(client_batch(5, 1, sequence));
    EXPECT_EQ(check.verdict, ProducerVerdict::out_of_order_sequence) << sequence;
    EXPECT_EQ(check.kafka_error_code(), kOutOfOrderSequenceNumber);
  }
  EXPECT_EQ(partition.produce(client_batch(5, 1, 0)).verdict, ProducerVerdict::append);
}

TEST(ProducerState, new_epoch_resets_sequence_and_cache) {
  Partition partition;
  for (std::int32_t sequence = 0; sequence < 3; ++sequence)
    partition.produce(client_batch(5, 0, sequence));
  ASSERT_EQ(partition.produce(client_batch(5, 1, 0, 2)).verdict, ProducerVerdict::append);
  const ProducerEntry* entry = partition.state.find(5);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->epoch, 1);
  ASSERT_EQ(entry->batches.size(), 1u);
  EXPECT_EQ(entry->batches.front(), partition.original(3));
  // Sequences continue from the new epoch's batch, and the old epoch's batches are fenced.
  EXPECT_EQ(partition.produce(client_batch(5, 1, 3)).verdict,
            ProducerVerdict::out_of_order_sequence);
  EXPECT_EQ(partition.produce(client_batch(5, 0, 2)).verdict,
            ProducerVerdict::invalid_producer_epoch);
  EXPECT_EQ(partition.produce(client_batch(5, 1, 0, 2)).verdict, ProducerVerdict::duplicate);
  EXPECT_EQ(partition.produce(client_batch(5, 1, 2)).verdict, ProducerVerdict::append);
}

TEST(ProducerState, sequence_wraps_at_int32_max) {
  Partition partition;
  const BatchHeader ending_at_max = client_batch(3, 0, kSequenceMax - 2, 3);
  ASSERT_EQ(partition.produce(ending_at_max).verdict, ProducerVerdict::append);
  EXPECT_EQ(partition.state.find(3)->sequence_last(), kSequenceMax);
  EXPECT_EQ(partition.produce(client_batch(3, 0, kSequenceMax)).verdict,
            ProducerVerdict::out_of_order_sequence);
  EXPECT_EQ(partition.produce(client_batch(3, 0, 1)).verdict,
            ProducerVerdict::out_of_order_sequence);
  ASSERT_EQ(partition.produce(client_batch(3, 0, 0, 2)).verdict, ProducerVerdict::append);

  // A batch spanning the wrap: base INT32_MAX - 1 with 4 records covers MAX-1, MAX, 0, 1.
  Partition spanning;
  const BatchHeader across = client_batch(4, 0, kSequenceMax - 1, 4);
  ASSERT_EQ(spanning.produce(across).verdict, ProducerVerdict::append);
  const ProducerEntry* entry = spanning.state.find(4);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->batches.front().sequence_first, kSequenceMax - 1);
  EXPECT_EQ(entry->batches.front().sequence_last, 1);
  const ProducerCheck retry = spanning.produce(across);
  EXPECT_EQ(retry.verdict, ProducerVerdict::duplicate);
  EXPECT_EQ(retry.original, spanning.original(0));
  EXPECT_EQ(spanning.produce(client_batch(4, 0, 0)).verdict,
            ProducerVerdict::out_of_order_sequence);
  EXPECT_EQ(spanning.produce(client_batch(4, 0, 2)).verdict, ProducerVerdict::append);
}

TEST(ProducerState, cache_keeps_the_last_five_batches_oldest_first) {
  Partition partition;
  for (std::int32_t sequence = 0; sequence < 9; ++sequence)
    partition.produce(client_batch(1, 0, sequence));
  const ProducerEntry* entry = partition.state.find(1);
  ASSERT_NE(entry, nullptr);
  ASSERT_EQ(entry->batches.size(), kProducerBatchesRetained);
  for (std::size_t i = 0; i < kProducerBatchesRetained; ++i)
    EXPECT_EQ(entry->batches[i], partition.original(4 + i));
}

TEST(ProducerState, expire_drops_producers_idle_for_the_expiration) {
  Partition partition;
  partition.now_ms = 0;
  partition.produce(client_batch(1, 0, 0));
  partition.now_ms = 500;
  partition.produce(client_batch(2, 0, 0));
  partition.now_ms = 999;
  EXPECT_EQ(partition.state.expire(partition.now_ms, 1'000), 0u);
  EXPECT_EQ(partition.state.expire(1'000, 1'000), 1u)
      << "Kafka expires at now - last seen >= expiration";
  EXPECT_EQ(partition.state.find(1), nullptr);
  EXPECT_NE(partition.state.find(2), nullptr);
  // Expired means unknown again: any sequence and any epoch is accepted.
  EXPECT_EQ(partition.state.check_append(client_batch(1, 0, 77)).verdict, ProducerVerdict::append);
  EXPECT_EQ(partition.state.expire(1'500, kProducerIdExpirationMsDefault), 0u);
  EXPECT_EQ(
      partition.state.expire(500 + kProducerIdExpirationMsDefault, kProducerIdExpirationMsDefault),
      1u);
  EXPECT_TRUE(partition.state.producers().empty());
}

TEST(ProducerState, last_seen_never_moves_backwards) {
  ProducerState state;
  BatchHeader batch = client_batch(1, 0, 0);
  state.on_appended(batch, 5'000);
  batch.base_sequence = 1;
  batch.base_offset = 1;
  state.on_appended(batch, 4'000);  // a wall clock that stepped back
  EXPECT_EQ(state.find(1)->last_seen_ms, 5'000);
}

TEST(ProducerState, control_batch_sets_the_epoch_without_caching) {
  Partition partition;
  partition.produce(client_batch(1, 0, 0, 2));
  BatchHeader marker = client_batch(1, 1, kNoSequence);
  marker.attributes = 0x30;  // transactional control batch
  marker.base_offset = partition.offset_end;
  partition.state.on_appended(marker, partition.now_ms);
  const ProducerEntry* entry = partition.state.find(1);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->epoch, 1);
  EXPECT_TRUE(entry->batches.empty());
  EXPECT_EQ(entry->sequence_last(), kNoSequence);
  EXPECT_EQ(partition.state.check_append(client_batch(1, 1, 1)).verdict,
            ProducerVerdict::out_of_order_sequence);
  EXPECT_EQ(partition.state.check_append(client_batch(1, 1, 0)).verdict, ProducerVerdict::append);
}

TEST(ProducerState, replay_of_appended_headers_rebuilds_identical_state) {
  Partition partition;
  for (std::int32_t sequence = 0; sequence < 7; ++sequence) {
    partition.produce(client_batch(1, 0, sequence));
    partition.produce(plain_batch(2));
    partition.produce(client_batch(2, 4, sequence * 2, 2));
    partition.now_ms += 3;
  }
  partition.produce(client_batch(1, 1, 0));
  EXPECT_EQ(replay(partition.appended), partition.state);
}

TEST(ProducerState, truncate_drops_batches_at_or_after_the_offset) {
  Partition partition;
  for (std::int32_t sequence = 0; sequence < 4; ++sequence)
    partition.produce(client_batch(1, 0, sequence));  // 0..3
  partition.produce(client_batch(2, 0, 0, 2));        // 4..5
  partition.produce(client_batch(1, 0, 4));           // 6
  partition.state.truncate_to(5);  // the log now ends inside producer 2's only batch
  EXPECT_EQ(partition.state.find(2), nullptr) << "a producer without a retained batch is forgotten";
  const ProducerEntry* entry = partition.state.find(1);
  ASSERT_NE(entry, nullptr);
  ASSERT_EQ(entry->batches.size(), 4u);
  EXPECT_EQ(entry->sequence_last(), 3);
  EXPECT_EQ(partition.state.check_append(client_batch(1, 0, 4)).verdict, ProducerVerdict::append);
  // Exactness comes from a rebuild; here the trimmed cache equals the replay of offsets < 5.
  partition.appended.resize(4);
  EXPECT_EQ(replay(partition.appended), partition.state);
}

TEST(ProducerState, producers_enumerate_in_id_order) {
  Partition partition;
  for (std::int64_t producer_id : {42, 7, 1'000'000, 0, 13})
    partition.produce(client_batch(producer_id, 0, 0));
  std::vector<std::int64_t> ids;
  for (const auto& [producer_id, entry] : partition.state.producers()) ids.push_back(producer_id);
  EXPECT_EQ(ids, (std::vector<std::int64_t>{0, 7, 13, 42, 1'000'000}));
}

TEST(ProducerState, verdict_names_and_codes) {
  EXPECT_EQ(to_string(ProducerVerdict::duplicate), "duplicate");
  EXPECT_EQ(verdict_only(ProducerVerdict::append).kafka_error_code(), 0);
  EXPECT_EQ(verdict_only(ProducerVerdict::duplicate).kafka_error_code(), 0);
  EXPECT_EQ(verdict_only(ProducerVerdict::invalid_producer_epoch).kafka_error_code(), 47);
  EXPECT_EQ(verdict_only(ProducerVerdict::out_of_order_sequence).kafka_error_code(), 45);
}

TEST(ProducerState, works_on_real_batches_built_validated_and_stamped) {
  BatchSpec spec;
  spec.base_timestamp_ms = 1'700'000'000'000;
  spec.producer_id = 77;
  spec.producer_epoch = 2;
  spec.base_sequence = kSequenceMax;
  spec.records.push_back({std::string("k"), std::string("a"), {}, 0});
  spec.records.push_back({std::string("k"), std::string("b"), {}, 1});
  std::vector<std::byte> bytes = build_batch(spec);
  auto header = validate_client_batch(bytes, 1 << 20);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->last_sequence(), 0);

  ProducerState state;
  ASSERT_EQ(state.check_append(*header).verdict, ProducerVerdict::append);
  stamp_batch(bytes, 100, 1);
  auto stored = validate_stored_batch(bytes);
  ASSERT_TRUE(stored.has_value());
  state.on_appended(*stored, 5);

  const ProducerCheck retry = state.check_append(*header);
  EXPECT_EQ(retry.verdict, ProducerVerdict::duplicate);
  EXPECT_EQ(retry.original.offset_base, 100);
  EXPECT_EQ(retry.original.offset_last, 101);
  EXPECT_EQ(retry.original.timestamp_ms, stored->max_timestamp);
}

// --- Model-based properties --------------------------------------------------------------------

// The reference: every batch of the current epoch kept, the cache being its last 5.
class Model {
 public:
  ProducerCheck check(const BatchHeader& batch) const {
    if (batch.producer_id < 0) return {};
    auto found = producers_.find(batch.producer_id);
    if (found == producers_.end()) return {};
    const Producer& producer = found->second;
    const std::int32_t sequence_last = sequence_add(batch.base_sequence, batch.last_offset_delta);
    if (batch.producer_epoch == producer.epoch) {
      const std::size_t begin = producer.batches.size() > 5 ? producer.batches.size() - 5 : 0;
      for (std::size_t i = begin; i < producer.batches.size(); ++i) {
        const ProducerBatch& cached = producer.batches[i];
        if (cached.sequence_first == batch.base_sequence && cached.sequence_last == sequence_last) {
          return {.verdict = ProducerVerdict::duplicate, .original = cached};
        }
      }
    }
    if (batch.producer_epoch < producer.epoch)
      return verdict_only(ProducerVerdict::invalid_producer_epoch);
    std::int32_t expected = 0;
    if (batch.producer_epoch == producer.epoch && !producer.batches.empty()) {
      expected = sequence_add(producer.batches.back().sequence_last, 1);
    }
    return verdict_only(batch.base_sequence == expected ? ProducerVerdict::append
                                                        : ProducerVerdict::out_of_order_sequence);
  }

  void appended(const BatchHeader& batch, std::int64_t now_ms) {
    Producer& producer =
        producers_
            .try_emplace(batch.producer_id,
                         Producer{.epoch = batch.producer_epoch, .batches = {}, .last_seen_ms = 0})
            .first->second;
    if (producer.epoch != batch.producer_epoch) {
      producer.epoch = batch.producer_epoch;
      producer.batches.clear();
    }
    producer.batches.push_back(
        {.sequence_first = batch.base_sequence,
         .sequence_last = sequence_add(batch.base_sequence, batch.last_offset_delta),
         .offset_base = batch.base_offset,
         .offset_last = batch.base_offset + batch.last_offset_delta,
         .timestamp_ms = batch.max_timestamp});
    producer.last_seen_ms = std::max(producer.last_seen_ms, now_ms);
  }

  std::vector<std::int64_t> expire(std::int64_t now_ms, std::int64_t expiration_ms) {
    std::vector<std::int64_t> expired;
    for (auto it = producers_.begin(); it != producers_.end();) {
      if (now_ms - it->second.last_seen_ms >= expiration_ms) {
        expired.push_back(it->first);
        it = producers_.erase(it);
      } else {
        ++it;
      }
    }
    return expired;
  }

  // The state the machine must hold: same ids, epochs, last seen, and the last 5 batches.
  void assert_matches(const ProducerState& state) const {
    RC_ASSERT(state.producers().size() == producers_.size());
    for (const auto& [producer_id, producer] : producers_) {
      const ProducerEntry* entry = state.find(producer_id);
      RC_ASSERT(entry != nullptr);
      RC_ASSERT(entry->epoch == producer.epoch);
      RC_ASSERT(entry->last_seen_ms == producer.last_seen_ms);
      const std::size_t begin = producer.batches.size() > 5 ? producer.batches.size() - 5 : 0;
      RC_ASSERT(entry->batches == std::vector<ProducerBatch>(producer.batches.begin() + begin,
                                                             producer.batches.end()));
    }
  }

 private:
  struct Producer {
    std::int16_t epoch = 0;
    std::vector<ProducerBatch> batches;
    std::int64_t last_seen_ms = 0;
  };
  std::map<std::int64_t, Producer> producers_;
};

// A well-behaved idempotent client: sequences advance, responses may be lost (so it retries one
// of its last 5 sent batches), it may bump its epoch; its appended batches are remembered with
// the offsets the broker gave them.
struct Client {
  std::int64_t producer_id = 0;
  std::int16_t epoch = 0;
  std::int32_t sequence_next = 0;
  std::vector<std::pair<BatchHeader, ProducerBatch>> sent;  // this epoch, appended, oldest first
};

struct ExpireEvent {
  std::int64_t now_ms = 0;
  std::int64_t expiration_ms = 0;
};
using Event = std::variant<std::pair<BatchHeader, std::int64_t>, ExpireEvent>;

struct Run {
  Partition partition;
  Model model;
  std::vector<Event> events;  // appends and expiries, in order
  bool expired_any = false;
};

constexpr std::int64_t kExpirationMs = 1'000;

ProducerState replay_events(const std::vector<Event>& events, std::size_t count) {
  ProducerState rebuilt;
  for (std::size_t i = 0; i < count; ++i) {
    if (const auto* append = std::get_if<std::pair<BatchHeader, std::int64_t>>(&events[i])) {
      rebuilt.on_appended(append->first, append->second);
    } else {
      const auto& expire = std::get<ExpireEvent>(events[i]);
      rebuilt.expire(expire.now_ms, expire.expiration_ms);
    }
  }
  return rebuilt;
}

// Sends `batch`, checks the verdict against the model, and appends it only when `appendable`
// (probes from zombies and buggy clients are checked, never written).
ProducerCheck send(Run& run, const BatchHeader& batch, bool appendable) {
  const ProducerCheck expected = run.model.check(batch);
  const ProducerCheck actual = run.partition.state.check_append(batch);
  RC_ASSERT(actual == expected);
  if (appendable && actual.verdict == ProducerVerdict::append) {
    run.partition.produce(batch);
    const auto& [stamped, now_ms] = run.partition.appended.back();
    run.model.appended(stamped, now_ms);
    run.events.emplace_back(run.partition.appended.back());
  }
  return actual;
}

Run run_workload() {
  Run run;
  std::vector<Client> clients(*rc::gen::inRange<std::size_t>(1, 4));
  for (std::size_t i = 0; i < clients.size(); ++i) {
    clients[i].producer_id = static_cast<std::int64_t>(1000 + i);
    clients[i].epoch = *rc::gen::inRange<std::int16_t>(0, 3);
    clients[i].sequence_next =
        *rc::gen::element<std::int32_t>(0, 17, kSequenceMax - 6, kSequenceMax - 1, kSequenceMax);
  }
  const int steps = *rc::gen::inRange(1, 120);
  for (int step = 0; step < steps; ++step) {
    Client& client = clients[*rc::gen::inRange<std::size_t>(0, clients.size())];
    run.partition.now_ms += *rc::gen::inRange(0, 20);
    const int action = *rc::gen::inRange(0, 100);
    if (action < 45) {  // a new batch: a well-behaved client is never refused
      const auto records = *rc::gen::inRange<std::int32_t>(1, 5);
      const BatchHeader batch =
          client_batch(client.producer_id, client.epoch, client.sequence_next, records);
      RC_ASSERT(send(run, batch, true).verdict == ProducerVerdict::append);
      client.sent.emplace_back(batch, run.partition.original(run.partition.appended.size() - 1));
      if (client.sent.size() > 8) client.sent.erase(client.sent.begin());
      client.sequence_next = sequence_add(client.sequence_next, records);
    } else if (action < 70) {  // a retry after a lost response
      if (client.sent.empty()) continue;
      const std::size_t index = *rc::gen::inRange<std::size_t>(0, client.sent.size());
      const auto& [batch, original] = client.sent[index];
      const ProducerCheck check = send(run, batch, true);
      if (client.sent.size() - index <= kProducerBatchesRetained) {
        // The rdk "rewound sequence" trap: a retry of an appended, cached batch is a duplicate.
        RC_ASSERT(check.verdict == ProducerVerdict::duplicate);
        RC_ASSERT(check.original == original);
      } else {
        RC_ASSERT(check.verdict == ProducerVerdict::out_of_order_sequence);
      }
    } else if (action < 78) {  // epoch bump (e.g. after an unresolved error): sequences restart
      client.epoch = static_cast<std::int16_t>(client.epoch + 1);
      client.sequence_next = 0;
      client.sent.clear();
    } else if (action < 84) {  // a zombie with an older epoch
      const auto epoch_back = *rc::gen::inRange<std::int16_t>(1, 3);
      if (client.epoch < epoch_back) continue;
      const auto sequence = *rc::gen::element<std::int32_t>(0, client.sequence_next, kSequenceMax);
      send(run,
           client_batch(client.producer_id, static_cast<std::int16_t>(client.epoch - epoch_back),
                        sequence),
           false);
    } else if (action < 92) {  // a buggy client: gap, rewind or new epoch off zero
      const auto skew = *rc::gen::inRange<std::int32_t>(-6, 7);
      const auto epoch_ahead = *rc::gen::inRange<std::int16_t>(0, 2);
      const std::int32_t sequence = sequence_add(
          client.sequence_next, skew < 0 ? std::int64_t{kSequenceMax} + 1 + skew : skew);
      send(run,
           client_batch(client.producer_id, static_cast<std::int16_t>(client.epoch + epoch_ahead),
                        sequence, *rc::gen::inRange<std::int32_t>(1, 4)),
           false);
    } else {  // time passes; idle producers expire and are unknown again
      run.partition.now_ms += *rc::gen::inRange<std::int64_t>(0, 2 * kExpirationMs);
      const std::size_t dropped = run.partition.state.expire(run.partition.now_ms, kExpirationMs);
      const std::vector<std::int64_t> expired =
          run.model.expire(run.partition.now_ms, kExpirationMs);
      RC_ASSERT(dropped == expired.size());
      run.events.emplace_back(ExpireEvent{run.partition.now_ms, kExpirationMs});
      run.expired_any = run.expired_any || dropped > 0;
      for (Client& each : clients) {
        // The broker forgot these batches; a retry would now be appended again (as in Kafka).
        if (std::find(expired.begin(), expired.end(), each.producer_id) != expired.end())
          each.sent.clear();
      }
    }
    run.model.assert_matches(run.partition.state);
  }
  return run;
}

RC_GTEST_PROP(ProducerStateProperty, verdicts_match_the_reference_model_and_retries_hit_the_cache,
              ()) {
  const Run run = run_workload();
  run.model.assert_matches(run.partition.state);
}

RC_GTEST_PROP(ProducerStateProperty, replaying_the_log_rebuilds_identical_state, ()) {
  const Run run = run_workload();
  RC_ASSERT(replay_events(run.events, run.events.size()) == run.partition.state);
  if (!run.expired_any) {
    // Recovery replays headers only, at one recovery time: identical but for last seen.
    ProducerState recovered;
    const std::int64_t recovery_ms = run.partition.now_ms + 1;
    for (const auto& [batch, now_ms] : run.partition.appended)
      recovered.on_appended(batch, recovery_ms);
    RC_ASSERT(recovered.producers().size() == run.partition.state.producers().size());
    for (const auto& [producer_id, entry] : run.partition.state.producers()) {
      const ProducerEntry* rebuilt = recovered.find(producer_id);
      RC_ASSERT(rebuilt != nullptr);
      RC_ASSERT(rebuilt->epoch == entry.epoch);
      RC_ASSERT(rebuilt->batches == entry.batches);
      RC_ASSERT(rebuilt->last_seen_ms == recovery_ms);
    }
  }
}

RC_GTEST_PROP(ProducerStateProperty, truncation_weakens_but_never_contradicts_a_rebuild, ()) {
  Run run = run_workload();
  const std::int64_t offset_end = *rc::gen::inRange<std::int64_t>(0, run.partition.offset_end + 1);
  // The exact state: replay every event up to the first batch at or after the cut.
  std::size_t kept = 0;
  while (kept < run.events.size()) {
    const auto* append = std::get_if<std::pair<BatchHeader, std::int64_t>>(&run.events[kept]);
    if (append != nullptr && append->first.last_offset() >= offset_end) break;
    ++kept;
  }
  const ProducerState exact = replay_events(run.events, kept);
  ProducerState trimmed = run.partition.state;
  trimmed.truncate_to(offset_end);
  for (const auto& [producer_id, entry] : trimmed.producers()) {
    const ProducerEntry* truth = exact.find(producer_id);
    RC_ASSERT(truth != nullptr);
    RC_ASSERT(entry.epoch == truth->epoch);
    RC_ASSERT(!entry.batches.empty());
    RC_ASSERT(entry.batches.size() <= truth->batches.size());
    RC_ASSERT(std::equal(entry.batches.begin(), entry.batches.end(),
                         truth->batches.end() - static_cast<std::ptrdiff_t>(entry.batches.size())));
  }
}

}  // namespace
}  // namespace sluice::storage
