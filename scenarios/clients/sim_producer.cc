#include "scenarios/clients/sim_producer.h"

#include <algorithm>
#include <cassert>
#include <set>
#include <utility>

#include "core/protocol/messages.h"
#include "core/storage/record_batch.h"

namespace sluice::scenarios::clients {

namespace {

using checkers::OpType;
using checkers::TopicPartition;
using protocol::int_value;
using protocol::StructValue;

namespace kafka_error {
constexpr std::int16_t kNone = 0;
constexpr std::int16_t kUnknownServerError = -1;
constexpr std::int16_t kUnknownTopicOrPartition = 3;
constexpr std::int16_t kLeaderNotAvailable = 5;
constexpr std::int16_t kNotLeaderOrFollower = 6;
constexpr std::int16_t kRequestTimedOut = 7;
constexpr std::int16_t kNotEnoughReplicasAfterAppend = 20;
constexpr std::int16_t kOutOfOrderSequence = 45;
constexpr std::int16_t kDuplicateSequence = 46;
constexpr std::int16_t kInvalidProducerEpoch = 47;
constexpr std::int16_t kKafkaStorageError = 56;
constexpr std::int16_t kUnknownProducerId = 59;
constexpr std::int16_t kFencedLeaderEpoch = 74;
constexpr std::int16_t kUnknownLeaderEpoch = 75;
}  // namespace kafka_error

// Kafka's idempotent producers send the transaction timeout default even without transactions.
constexpr std::int64_t kTransactionTimeoutMs = 60000;

// Errors after which the batch may be in the log although the broker answered an error: a
// timeout or a replication shortfall after the leader appended, a storage failure mid-append.
bool may_have_appended(std::int16_t error_code) {
  using namespace kafka_error;
  return error_code == kRequestTimedOut || error_code == kNotEnoughReplicasAfterAppend ||
         error_code == kKafkaStorageError || error_code == kUnknownServerError;
}

// Errors that say the client's idea of the partition's leader is out of date.
bool stale_leader(std::int16_t error_code) {
  using namespace kafka_error;
  return error_code == kUnknownTopicOrPartition || error_code == kLeaderNotAvailable ||
         error_code == kNotLeaderOrFollower || error_code == kFencedLeaderEpoch ||
         error_code == kUnknownLeaderEpoch;
}

std::int64_t time_ns(const Env& env) {
  return env.now().time_since_epoch().count();
}

}  // namespace

std::int32_t kafka_murmur2(std::string_view bytes) {
  constexpr std::uint32_t kSeed = 0x9747b28c;
  constexpr std::uint32_t kMultiplier = 0x5bd1e995;
  constexpr int kShift = 24;
  const auto byte_at = [&](std::size_t index) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[index]));
  };
  const std::size_t length = bytes.size();
  std::uint32_t hash = kSeed ^ static_cast<std::uint32_t>(length);
  const std::size_t whole_words = length / 4;
  for (std::size_t word = 0; word < whole_words; ++word) {
    const std::size_t at = word * 4;
    std::uint32_t k =
        byte_at(at) | (byte_at(at + 1) << 8) | (byte_at(at + 2) << 16) | (byte_at(at + 3) << 24);
    k *= kMultiplier;
    k ^= k >> kShift;
    k *= kMultiplier;
    hash *= kMultiplier;
    hash ^= k;
  }
  const std::size_t tail = length & ~std::size_t{3};
  switch (length % 4) {
    case 3:
      hash ^= byte_at(tail + 2) << 16;
      [[fallthrough]];
    case 2:
      hash ^= byte_at(tail + 1) << 8;
      [[fallthrough]];
    case 1:
      hash ^= byte_at(tail);
      hash *= kMultiplier;
  }
  hash ^= hash >> 13;
  hash *= kMultiplier;
  hash ^= hash >> 15;
  return static_cast<std::int32_t>(hash);
}

std::int32_t partition_for_key(std::string_view key, std::int32_t partition_count) {
  assert(partition_count > 0);
  // Kafka's Utils.toPositive: clear the sign bit (not abs, which overflows on INT32_MIN).
  const std::int32_t positive = kafka_murmur2(key) & 0x7fffffff;
  const std::int32_t partition = positive % partition_count;
  assert(partition >= 0 && partition < partition_count);
  return partition;
}

struct SimProducer::Batch {
  TopicPartition tp;
  std::vector<std::pair<std::string, std::string>> records;  // key, value
  Instant created{};     // when its first record was produced: linger and delivery timeout
  bool invoked = false;  // its send op is in the history (it is the in-flight batch)
  // Sealed when sent: its bytes, producer id, epoch and sequences are kept by its retries.
  bool sealed = false;
  Bytes encoded;
  std::int32_t base_sequence = storage::kNoSequence;
  // Some attempt wrote the whole request and got no definite answer: it may be in the log.
  bool possibly_written = false;
  std::int32_t failed_attempts = 0;
  Instant retry_at{};
};

struct SimProducer::PartitionQueue {
  std::deque<Batch> batches;  // produce order; only the front is ever sent
  // Idempotence, for the current producer id: the next batch's base sequence, and the sequence
  // the broker expects next (just past the last acknowledged batch).
  std::int32_t next_sequence = 0;
  std::int32_t next_acknowledged_sequence = 0;
};

SimProducer::SimProducer(Env& env, SimProducerConfig config, checkers::History& history)
    : env_(env),
      config_(std::move(config)),
      history_(history),
      cluster_(env, config_.bootstrap,
               client::ConnectionOptions::with_timeout(config_.process, config_.request_timeout)) {
  assert(config_.acks == 0 || config_.acks == 1 || config_.acks == -1);
  // Kafka refuses enable.idempotence with acks other than all.
  assert(!config_.idempotent || config_.acks == -1);
  assert(config_.batch_records_max > 0 && config_.queued_records_max > 0);
}

SimProducer::~SimProducer() = default;

SimProducer::PartitionQueue& SimProducer::queue_of(const TopicPartition& tp) {
  auto& queue = queues_[tp];
  if (queue == nullptr) queue = std::make_unique<PartitionQueue>();
  return *queue;
}

bool SimProducer::refresh_metadata(const std::string* extra_topic) {
  std::set<std::string> topics;
  for (const auto& [tp, queue] : queues_) topics.insert(tp.topic);
  for (const auto& [topic, known] : metadata_.topics) topics.insert(topic);
  if (extra_topic != nullptr) topics.insert(*extra_topic);
  auto fetched = cluster_.fetch_metadata(std::vector<std::string>(topics.begin(), topics.end()));
  if (!fetched) {
    env_.log().debug("{}: metadata: {}", config_.process, fetched.error().message);
    return false;
  }
  metadata_ = std::move(*fetched);
  metadata_stale_ = false;
  return true;
}

bool SimProducer::ensure_partition_count(const std::string& topic, Instant deadline) {
  for (;;) {
    const auto known = metadata_.topics.find(topic);
    if (known != metadata_.topics.end() && known->second.error_code == 0 &&
        !known->second.partitions.empty()) {
      return true;
    }
    refresh_metadata(&topic);
    const auto fetched = metadata_.topics.find(topic);
    if (fetched != metadata_.topics.end() && fetched->second.error_code == 0 &&
        !fetched->second.partitions.empty()) {
      return true;
    }
    if (add_saturating(env_.now(), config_.retry_backoff) >= deadline) return false;
    this_fiber::sleep_for(config_.retry_backoff);
  }
}

bool SimProducer::produce(ProducerRecord record) {
  if (queued_records_ >= config_.queued_records_max) return false;
  if (!ensure_partition_count(record.topic, env_.deadline_after(config_.max_block))) return false;
  const auto partition_count =
      static_cast<std::int32_t>(metadata_.topics.at(record.topic).partitions.size());
  const std::int32_t partition =
      record.partition ? *record.partition : partition_for_key(record.key, partition_count);
  if (partition < 0 || partition >= partition_count) return false;
  PartitionQueue& queue = queue_of(TopicPartition{record.topic, partition});
  const bool open_batch = !queue.batches.empty() && !queue.batches.back().invoked &&
                          !queue.batches.back().sealed &&
                          queue.batches.back().records.size() < config_.batch_records_max;
  if (!open_batch) {
    Batch& batch = queue.batches.emplace_back();
    batch.tp = TopicPartition{record.topic, partition};
    batch.created = env_.now();
  }
  queue.batches.back().records.emplace_back(std::move(record.key), std::move(record.value));
  ++queued_records_;
  assert(queue.batches.back().records.size() <= config_.batch_records_max);
  return true;
}

void SimProducer::poll(Instant until) {
  run(until, false);
}

bool SimProducer::flush(Instant deadline) {
  run(deadline, true);
  return queued_records_ == 0;
}

// Terminates: every pass either completes a batch, makes an attempt (which takes time or
// schedules its retry in the future), or sleeps until the next thing due or `until`.
void SimProducer::run(Instant until, bool flushing) {
  for (;;) {
    const Instant now = env_.now();
    expire(now);
    if (flushing && queued_records_ == 0) return;
    if (in_flight_ == nullptr) in_flight_ = pick_ready_batch(now, flushing);
    if (in_flight_ != nullptr && in_flight_->retry_at <= now) {
      attempt(*in_flight_);
      continue;
    }
    if (now >= until) return;
    Instant wake = until;
    if (in_flight_ != nullptr) {
      wake = std::min(wake, in_flight_->retry_at);
    } else if (auto ready = next_ready_time(); ready && !flushing) {
      wake = std::min(wake, *ready);
    }
    if (auto expiry = next_expiry(); expiry) wake = std::min(wake, *expiry);
    assert(wake > now);
    this_fiber::sleep_until(wake);
  }
}

SimProducer::Batch* SimProducer::pick_ready_batch(Instant now, bool flushing) {
  Batch* oldest = nullptr;
  for (auto& [tp, queue] : queues_) {
    if (queue->batches.empty()) continue;
    Batch& head = queue->batches.front();
    const bool ready = flushing || head.records.size() >= config_.batch_records_max ||
                       add_saturating(head.created, config_.linger) <= now;
    if (ready && (oldest == nullptr || head.created < oldest->created)) oldest = &head;
  }
  assert(oldest == nullptr || !oldest->invoked);
  return oldest;
}

std::optional<Instant> SimProducer::next_ready_time() const {
  std::optional<Instant> earliest;
  for (const auto& [tp, queue] : queues_) {
    if (queue->batches.empty()) continue;
    const Instant ready = add_saturating(queue->batches.front().created, config_.linger);
    if (!earliest || ready < *earliest) earliest = ready;
  }
  return earliest;
}

std::optional<Instant> SimProducer::next_expiry() const {
  // While a send is pending only it can expire (see expire()).
  if (in_flight_ != nullptr && in_flight_->invoked) {
    return add_saturating(in_flight_->created, config_.delivery_timeout);
  }
  std::optional<Instant> earliest;
  for (const auto& [tp, queue] : queues_) {
    if (queue->batches.empty()) continue;
    const Instant expiry = add_saturating(queue->batches.front().created, config_.delivery_timeout);
    if (!earliest || expiry < *earliest) earliest = expiry;
  }
  return earliest;
}

// delivery_timeout: the in-flight batch is given up; batches never sent are failed, but only
// while no send is pending, so the history never holds two pending sends of this producer.
void SimProducer::expire(Instant now) {
  const auto expired = [&](const Batch& batch) {
    return add_saturating(batch.created, config_.delivery_timeout) <= now;
  };
  if (in_flight_ != nullptr && in_flight_->invoked && expired(*in_flight_)) {
    give_up(*in_flight_, "delivery timeout");
  }
  if (in_flight_ != nullptr && in_flight_->invoked) return;
  for (auto& [tp, queue] : queues_) {
    while (!queue->batches.empty() && expired(queue->batches.front())) {
      complete(queue->batches.front(), OpType::fail, "delivery timeout before the first send");
    }
  }
}

bool SimProducer::ensure_producer_id() {
  if (!config_.idempotent || producer_id_ >= 0) return true;
  auto connection = cluster_.any();
  if (!connection) return false;
  StructValue request = client::KafkaConnection::new_request(protocol::kInitProducerIdSchema);
  request.set("transactional_id", protocol::Null{});
  request.set("transaction_timeout_ms", int_value(kTransactionTimeoutMs));
  auto response = (*connection)->call(protocol::kInitProducerIdSchema, request);
  if (!response) return false;
  if (response->get_int("error_code") != kafka_error::kNone) return false;
  producer_id_ = response->get_int("producer_id");
  producer_epoch_ = static_cast<std::int16_t>(response->get_int("producer_epoch"));
  return producer_id_ >= 0;
}

void SimProducer::invoke(Batch& batch) {
  assert(!batch.invoked);
  checkers::Op op;
  op.process = config_.process;
  op.type = OpType::invoke;
  op.f = "send";
  op.time_ns = time_ns(env_);
  for (const auto& [key, value] : batch.records) {
    op.records.push_back(checkers::RecordRef{.tp = batch.tp, .key = key, .value = value});
  }
  history_.add(std::move(op));
  batch.invoked = true;
}

void SimProducer::seal(Batch& batch) {
  assert(!batch.sealed && in_flight_ == &batch);
  storage::BatchSpec spec;
  spec.base_timestamp_ms = env_.clock().wall_ms();
  if (config_.idempotent) {
    assert(producer_id_ >= 0);
    PartitionQueue& queue = queue_of(batch.tp);
    batch.base_sequence = queue.next_sequence;
    queue.next_sequence += static_cast<std::int32_t>(batch.records.size());
    spec.producer_id = producer_id_;
    spec.producer_epoch = producer_epoch_;
    spec.base_sequence = batch.base_sequence;
  }
  for (const auto& [key, value] : batch.records) {
    storage::RecordSpec& spec_record = spec.records.emplace_back();
    spec_record.key = key;
    spec_record.value = value;
  }
  batch.encoded = storage::build_batch(spec);
  batch.sealed = true;
  if (!batch.invoked) invoke(batch);
}

// One try at the in-flight batch: whatever is missing first (metadata, a producer id, a
// connection), then the Produce request itself.
void SimProducer::attempt(Batch& batch) {
  assert(in_flight_ == &batch);
  if (metadata_stale_ && !refresh_metadata(nullptr)) return retry_later(batch, "no metadata");
  const auto leader = metadata_.leader_address(batch.tp.topic, batch.tp.partition);
  if (!leader) {
    metadata_stale_ = true;
    return retry_later(batch, "no leader known");
  }
  if (!ensure_producer_id()) return retry_later(batch, "no producer id");
  auto connection = cluster_.to(*leader);
  if (!connection) {
    metadata_stale_ = true;
    return retry_later(batch, connection.error().message);
  }
  if (!batch.sealed) seal(batch);

  StructValue request = client::KafkaConnection::new_request(protocol::kProduceSchema);
  request.set("transactional_id", protocol::Null{});
  request.set("acks", int_value(config_.acks));
  request.set("timeout_ms", int_value(config_.request_timeout.count() / 1'000'000));
  StructValue& topic_data = request.add("topic_data");
  topic_data.set("name", batch.tp.topic);
  topic_data.add("partition_data")
      .set("index", int_value(batch.tp.partition))
      .set("records", batch.encoded);
  ++stats_.requests;
  if (config_.acks == 0) {
    auto sent =
        (*connection)
            ->send(protocol::kProduceSchema, request, env_.deadline_after(config_.request_timeout));
    if (!sent) return on_failed_attempt(batch, sent.error().message);
    return complete(batch, OpType::info, "acks=0: the broker does not acknowledge");
  }
  auto response = (*connection)->call(protocol::kProduceSchema, request);
  if (!response) {
    if (response.error().request_written) batch.possibly_written = true;
    metadata_stale_ = true;
    return on_failed_attempt(batch, response.error().message);
  }
  for (const StructValue& topic : response->get_structs("responses")) {
    if (topic.get_string("name") != batch.tp.topic) continue;
    for (const StructValue& partition : topic.get_structs("partition_responses")) {
      if (partition.get_int("index") != batch.tp.partition) continue;
      return on_partition_response(batch,
                                   static_cast<std::int16_t>(partition.get_int("error_code")),
                                   partition.get_int("base_offset"));
    }
  }
  // An answer without our partition: as undecidable as no answer.
  batch.possibly_written = true;
  on_failed_attempt(batch, "the Produce response does not answer the partition");
}

void SimProducer::on_partition_response(Batch& batch, std::int16_t error_code,
                                        std::int64_t base_offset) {
  using namespace kafka_error;
  const std::string error =
      std::string(client::kafka_error_name(error_code)) + " (" + std::to_string(error_code) + ")";
  if (error_code == kNone) return complete(batch, OpType::ok, "", base_offset);
  // librdkafka: this batch was appended before, but its retry is no longer in the broker's cache.
  if (error_code == kDuplicateSequence && config_.idempotent) {
    return complete(batch, OpType::ok, "");
  }
  if (config_.idempotent &&
      (error_code == kOutOfOrderSequence || error_code == kUnknownProducerId)) {
    const std::int32_t ahead = batch.base_sequence - queue_of(batch.tp).next_acknowledged_sequence;
    // A gap behind this batch (or a producer the broker forgot) and nothing of this batch in
    // the log: start a new producer id and send it again, not counted as a retry.
    if ((ahead > 0 || error_code == kUnknownProducerId) && !batch.possibly_written) {
      bump_epoch(error);
      return retry_later(batch, error);
    }
    // The broker expects another sequence for the very batch it should take next: the two sides
    // disagree (librdkafka's fatal error). Give it up and start over as a new producer.
    return give_up(batch, "sequence desynchronisation: " + error);
  }
  if (error_code == kInvalidProducerEpoch) return give_up(batch, "fenced: " + error);
  if (may_have_appended(error_code)) batch.possibly_written = true;
  if (stale_leader(error_code)) metadata_stale_ = true;
  if (!client::kafka_error_retriable(error_code)) return give_up(batch, error);
  on_failed_attempt(batch, error);
}

void SimProducer::on_failed_attempt(Batch& batch, std::string_view why) {
  ++batch.failed_attempts;
  if (batch.failed_attempts > config_.retries) {
    return give_up(batch, "retries exhausted: " + std::string(why));
  }
  retry_later(batch, why);
}

void SimProducer::retry_later(Batch& batch, std::string_view why) {
  assert(in_flight_ == &batch);
  ++stats_.retries;
  batch.retry_at = env_.deadline_after(config_.retry_backoff);
  env_.log().debug("{}: {}[{}]: retrying in {} ms: {}", config_.process, batch.tp.topic,
                   batch.tp.partition, config_.retry_backoff.count() / 1'000'000, why);
}

void SimProducer::give_up(Batch& batch, std::string why) {
  complete(batch, batch.possibly_written ? OpType::info : OpType::fail, std::move(why));
}

void SimProducer::bump_epoch(std::string_view why) {
  ++stats_.epoch_bumps;
  env_.log().debug("{}: new producer id after: {}", config_.process, why);
  producer_id_ = -1;
  producer_epoch_ = -1;
  for (auto& [tp, queue] : queues_) {
    queue->next_sequence = 0;
    queue->next_acknowledged_sequence = 0;
  }
  // The in-flight batch, if still going, was not written under the old id: it is sequenced
  // again under the new one at its next attempt.
  if (in_flight_ != nullptr) {
    assert(!in_flight_->possibly_written);
    in_flight_->sealed = false;
    in_flight_->encoded.clear();
    in_flight_->base_sequence = storage::kNoSequence;
  }
}

void SimProducer::complete(Batch& batch, OpType outcome, std::string error,
                           std::int64_t base_offset) {
  assert(outcome != OpType::invoke);
  if (!batch.invoked) invoke(batch);
  checkers::Op op;
  op.process = config_.process;
  op.type = outcome;
  op.f = "send";
  op.time_ns = time_ns(env_);
  op.error = std::move(error);
  std::int64_t offset = base_offset;
  for (const auto& [key, value] : batch.records) {
    op.records.push_back(checkers::RecordRef{
        .tp = batch.tp, .key = key, .value = value, .offset = outcome == OpType::ok ? offset : -1});
    if (offset >= 0) ++offset;
  }
  history_.add(std::move(op));
  const auto count = static_cast<std::uint64_t>(batch.records.size());
  if (outcome == OpType::ok) {
    stats_.records_ok += count;
    ++stats_.batches_ok;
  } else if (outcome == OpType::fail) {
    stats_.records_fail += count;
    ++stats_.batches_fail;
  } else {
    stats_.records_info += count;
    ++stats_.batches_info;
  }
  assert(queued_records_ >= count);
  queued_records_ -= count;

  PartitionQueue& queue = queue_of(batch.tp);
  assert(!queue.batches.empty() && &queue.batches.front() == &batch);
  const bool sequenced = config_.idempotent && batch.sealed;
  if (sequenced && outcome == OpType::ok) {
    queue.next_acknowledged_sequence =
        batch.base_sequence + static_cast<std::int32_t>(batch.records.size());
  }
  if (in_flight_ == &batch) in_flight_ = nullptr;
  queue.batches.pop_front();  // `batch` is gone from here on
  // A sequenced batch that did not make it leaves a gap the broker would refuse to skip.
  if (sequenced && outcome != OpType::ok) bump_epoch("a sequenced batch failed");
}

}  // namespace sluice::scenarios::clients
