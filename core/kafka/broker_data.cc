// The data-path APIs: Produce, Fetch (with long polling), ListOffsets.
#include <algorithm>
#include <cassert>

#include "core/kafka/broker.h"
#include "core/protocol/messages.h"
#include "core/storage/record_batch.h"

namespace sluice::kafka {

using protocol::StructValue;
using protocol::int_value;
using protocol::Value;

namespace {

// One epoch until replication exists: every batch is stamped with leader epoch 0.
constexpr std::int32_t kLeaderEpoch = 0;
constexpr std::int64_t kEarliestTimestamp = -2;
constexpr std::int64_t kLatestTimestamp = -1;

const protocol::MessageSchema& schema_of(std::int16_t api_key) {
  const protocol::MessageSchema* schema = protocol::find_schema(api_key);
  assert(schema != nullptr);
  return *schema;
}

std::int16_t kafka_error_code(storage::LogError error) {
  switch (error) {
    case storage::LogError::offset_out_of_range:
      return error::kOffsetOutOfRange;
    case storage::LogError::corrupt:
      return error::kCorruptMessage;
    case storage::LogError::batch_too_large:
      return error::kMessageTooLarge;
    case storage::LogError::invalid_argument:
      return error::kInvalidRecord;
    case storage::LogError::io:
    case storage::LogError::no_space:
    case storage::LogError::closed:
      break;
  }
  return error::kKafkaStorageError;
}

}  // namespace

// ---- Produce ----

std::optional<StructValue> Broker::handle_produce(std::int16_t /*version*/, StructValue& request) {
  ProduceInProgress produce = produce_append(request);
  return produce_complete(produce);
}

Broker::ProduceInProgress Broker::produce_append(StructValue& request) {
  ProduceInProgress produce;
  produce.response = StructValue::with_defaults(schema_of(protocol::api::kProduce).response);
  StructValue& response = produce.response;
  produce.acks = request.get_int("acks");
  const bool acks_valid = produce.acks == 0 || produce.acks == 1 || produce.acks == -1;
  for (StructValue& topic_data : request.get_structs("topic_data")) {
    const std::string& name = topic_data.get_string("name");
    StructValue& topic_response = response.add("responses");
    topic_response.set("name", Value(name));
    for (StructValue& partition_data : topic_data.get_structs("partition_data")) {
      StructValue& partition_response = topic_response.add("partition_responses");
      partition_response.set("index", partition_data["index"]);
      partition_response.set("base_offset", int_value(-1));
      partition_response.set("log_append_time_ms", int_value(-1));
      partition_response.set("log_start_offset", int_value(-1));
      if (!acks_valid) partition_response.set("error_code", int_value(error::kInvalidRequiredAcks));
    }
  }
  if (!acks_valid) return produce;
  // Partitions one after another: an append is a copy into the page cache (it waits only for a
  // segment roll), and this order is the order the connection read its requests in.
  auto& topics_in = request.get_structs("topic_data");
  auto& topics_out = response.get_structs("responses");
  for (std::size_t t = 0; t < topics_in.size(); ++t) {
    auto& partitions_in = topics_in[t].get_structs("partition_data");
    auto& partitions_out = topics_out[t].get_structs("partition_responses");
    for (std::size_t p = 0; p < partitions_in.size(); ++p) {
      if (auto log = append_to_partition(topics_in[t].get_string("name"), partitions_in[p], partitions_out[p])) {
        produce.unflushed.push_back({std::move(log->first), log->second, t, p});
      }
    }
  }
  return produce;
}

std::optional<StructValue> Broker::produce_complete(ProduceInProgress& produce) {
  StructValue& response = produce.response;
  const bool appended = !produce.unflushed.empty();
  // A topic not flushed per append (flush.messages > 1) acknowledges at once; a flush its policy
  // asks for runs on the flush fiber instead of holding this answer (and those behind it).
  std::erase_if(produce.unflushed, [this](const ProduceInProgress::Unflushed& item) {
    if (item.log->durable_per_append()) return false;
    if (item.log->flush_due()) flush_wanted_.set();
    return true;
  });
  const auto await_one = [&](ProduceInProgress::Unflushed& item) {
    auto flushed = item.log->await_flush_policy(item.last_offset);
    if (flushed) return;
    StructValue& out =
        response.get_structs("responses")[item.topic].get_structs("partition_responses")[item.partition];
    out.set("error_code", int_value(kafka_error_code(flushed.error())));
    out.set("base_offset", int_value(-1));
  };
  if (produce.unflushed.size() == 1) {
    await_one(produce.unflushed[0]);
  } else if (!produce.unflushed.empty()) {
    // Each partition's log syncs its own file: one fiber each lets those fsyncs overlap (the
    // runtime runs them on a pool of IO threads) instead of costing one round trip apiece.
    Scope waits(env_.scheduler().current_scope(), "produce-flushes");
    std::vector<std::shared_ptr<FiberDone>> done;
    done.reserve(produce.unflushed.size());
    for (ProduceInProgress::Unflushed& item : produce.unflushed) {
      done.push_back(waits.spawn("produce-flush", [&await_one, &item] { await_one(item); }));
    }
    for (const std::shared_ptr<FiberDone>& finished : done) env_.scheduler().join(*finished);
  }
  // Consumers see records up to the high watermark, which the appends (lazy logs) or the
  // flushes just moved: long polls wake now rather than at their deadlines.
  if (appended) topics_.notify_appended();
  // acks=0: the client expects no response at all (not even an error).
  if (produce.acks == 0) return std::nullopt;
  return std::move(response);
}

std::optional<std::pair<std::shared_ptr<storage::PartitionLog>, std::int64_t>> Broker::append_to_partition(
    const std::string& topic, StructValue& partition_data, StructValue& partition_response) {
  const auto set_error = [&](std::int16_t code) {
    partition_response.set("error_code", int_value(code));
    return std::nullopt;
  };
  const std::shared_ptr<Partition> partition =
      topics_.find(topic, static_cast<std::int32_t>(partition_data.get_int("index")));
  if (partition == nullptr) return set_error(error::kUnknownTopicOrPartition);
  // Only the group coordinator writes __consumer_offsets (Kafka answers the same).
  if (is_internal_topic(topic)) return set_error(error::kInvalidTopic);
  Value& records = partition_data["records"];
  if (records.is_null() || records.as_bytes().empty()) return set_error(error::kInvalidRecord);
  Bytes& batch = records.as_bytes();
  // Held until the flush is awaited: a config change may swap the partition's log meanwhile.
  std::shared_ptr<storage::PartitionLog> log_held = partition->log;
  storage::PartitionLog& log = *log_held;
  auto header = storage::validate_client_batch(batch, log.config().max_batch_bytes);
  if (!header) return set_error(storage::kafka_error_code(header.error()));

  // check_append → append → on_appended must not interleave with another batch of a producer.
  // Not held through the flush: the producer's next batches may append (and share the fsync)
  // meanwhile. A retry of a batch not yet durable is a duplicate here, and its answer waits for
  // the original's flush like the original's does (await_flush_policy of its last offset).
  std::optional<LockGuard> producer_guard;
  if (header->has_producer()) {
    producer_guard.emplace(partition->idempotent_append_mutex);
    const storage::ProducerCheck check = partition->producers.check_append(*header);
    if (check.verdict == storage::ProducerVerdict::duplicate) {
      partition_response.set("error_code", int_value(error::kNone));
      partition_response.set("base_offset", int_value(check.original.offset_base));
      partition_response.set("log_start_offset", int_value(log.log_start_offset()));
      return std::pair{std::move(log_held), check.original.offset_last};
    }
    if (check.verdict != storage::ProducerVerdict::append)
      return set_error(check.kafka_error_code());
  }
  auto appended = log.append_unflushed(batch, kLeaderEpoch);
  if (!appended) return set_error(kafka_error_code(appended.error()));
  if (header->has_producer()) {
    auto stamped = storage::parse_batch_header(batch);
    assert(stamped.has_value() && stamped->base_offset == appended->base_offset);
    partition->producers.on_appended(*stamped, env_.clock().wall_ms());
  }
  partition->traffic.bytes_in += batch.size();
  partition->traffic.records_in += static_cast<std::uint64_t>(std::max(header->records_count, 0));
  partition_response.set("error_code", int_value(error::kNone));
  partition_response.set("base_offset", int_value(appended->base_offset));
  partition_response.set("log_start_offset", int_value(log.log_start_offset()));
  return std::pair{std::move(log_held), appended->last_offset};
}

// ---- Fetch ----

std::size_t Broker::fetch_once(const StructValue& request, StructValue& response,
                              std::vector<PartitionRead>& reads) {
  // max_bytes bounds the whole response, but the first batch is always returned whole (KIP-74)
  // so a consumer can make progress past a batch larger than its limits.
  const auto response_bytes_max =
      static_cast<std::size_t>(std::max<std::int64_t>(request.get_int("max_bytes"), 0));
  std::size_t gathered = 0;
  response.get_structs("responses").clear();
  reads.clear();
  for (const StructValue& topic : request.get_structs("topics")) {
    const std::string& name = topic.get_string("topic");
    StructValue& topic_response = response.add("responses");
    topic_response.set("topic", Value(name));
    for (const StructValue& wanted : topic.get_structs("partitions")) {
      StructValue& out = topic_response.add("partitions");
      const auto index = static_cast<std::int32_t>(wanted.get_int("partition"));
      out.set("partition_index", int_value(index));
      out.set("high_watermark", int_value(-1));
      out.set("last_stable_offset", int_value(-1));
      out.set("log_start_offset", int_value(-1));
      out.set("preferred_read_replica", int_value(-1));
      out.set("records", Value(Bytes()));
      const std::shared_ptr<Partition> partition = topics_.find(name, index);
      if (partition == nullptr) {
        out.set("error_code", int_value(error::kUnknownTopicOrPartition));
        continue;
      }
      const std::shared_ptr<storage::PartitionLog> log_held = partition->log;
      storage::PartitionLog& log = *log_held;
      const std::int64_t high_watermark = log.high_watermark();
      out.set("high_watermark", int_value(high_watermark));
      // No transactions yet: the last stable offset is the high watermark.
      out.set("last_stable_offset", int_value(high_watermark));
      out.set("log_start_offset", int_value(log.log_start_offset()));
      const std::int64_t offset = wanted.get_int("fetch_offset");
      if (offset < log.log_start_offset() || offset > high_watermark) {
        out.set("error_code", int_value(error::kOffsetOutOfRange));
        continue;
      }
      const auto partition_bytes_max = static_cast<std::size_t>(
          std::max<std::int64_t>(wanted.get_int("partition_max_bytes"), 0));
      const std::size_t response_bytes_left =
          response_bytes_max - std::min(response_bytes_max, gathered);
      if (offset == high_watermark || (gathered > 0 && response_bytes_left == 0)) continue;
      // read() returns its first batch whole however small the limit.
      const std::size_t limit =
          std::max<std::size_t>(std::min(partition_bytes_max, response_bytes_left), 1);
      // Verified but not copied: the connection sends these ranges straight from the segment
      // files (each slice keeps its segment's file open until it is sent).
      // Canary (simulation only): reading from one past the requested offset loses the record at
      // it whenever that record ends its batch.
      const std::int64_t read_from =
          offset + 1 < high_watermark && env_.bug("fetch_off_by_one") ? offset + 1 : offset;
      auto read = log.read(read_from, limit, high_watermark, /*ranges_only=*/true);
      if (!read) {
        out.set("error_code", int_value(kafka_error_code(read.error())));
        continue;
      }
      if (read->batch_count == 0) continue;
      gathered += read->size_bytes;
      reads.push_back(PartitionRead{.partition = partition,
                                    .bytes = read->size_bytes,
                                    .records = static_cast<std::uint64_t>(read->next_offset - read->first_offset)});
      protocol::FileRecords records;
      for (const storage::FileRange& range : read->ranges) {
        records.slices.push_back(protocol::FileSlice{range.segment, &range.segment->file(), range.position,
                                                     range.size_bytes});
        records.size_bytes += range.size_bytes;
      }
      out.set("records", Value(std::move(records)));
    }
  }
  return gathered;
}

StructValue Broker::handle_fetch(std::int16_t /*version*/, const StructValue& request) {
  StructValue response = StructValue::with_defaults(schema_of(protocol::api::kFetch).response);
  response.set("error_code", int_value(error::kNone));
  response.set("session_id", int_value(0));  // no fetch sessions (KIP-227): always a full fetch
  const Duration wait =
      std::min<Duration>(milliseconds(std::max<std::int64_t>(request.get_int("max_wait_ms"), 0)),
                         config_.fetch_wait_max);
  const Instant deadline = env_.deadline_after(wait);
  const auto min_bytes =
      static_cast<std::size_t>(std::max<std::int64_t>(request.get_int("min_bytes"), 0));
  // Long poll: each pass either has enough bytes, or waits for the next append or the deadline.
  std::vector<PartitionRead> reads;
  for (;;) {
    const std::size_t gathered = fetch_once(request, response, reads);
    if (gathered >= min_bytes || env_.now() >= deadline || draining_) break;
    if (topics_.appended_waiters().wait(deadline) == WakeReason::timed_out) {
      fetch_once(request, response, reads);
      break;
    }
  }
  for (const PartitionRead& read : reads) {
    read.partition->traffic.bytes_out += read.bytes;
    read.partition->traffic.records_out += read.records;
  }
  return response;
}

// ---- ListOffsets ----

StructValue Broker::handle_list_offsets(std::int16_t /*version*/, const StructValue& request) {
  StructValue response =
      StructValue::with_defaults(schema_of(protocol::api::kListOffsets).response);
  for (const StructValue& topic : request.get_structs("topics")) {
    const std::string& name = topic.get_string("name");
    StructValue& topic_response = response.add("topics");
    topic_response.set("name", Value(name));
    for (const StructValue& wanted : topic.get_structs("partitions")) {
      StructValue& out = topic_response.add("partitions");
      const auto index = static_cast<std::int32_t>(wanted.get_int("partition_index"));
      out.set("partition_index", int_value(index));
      out.set("timestamp", int_value(-1));
      out.set("offset", int_value(-1));
      const std::shared_ptr<Partition> partition = topics_.find(name, index);
      if (partition == nullptr) {
        out.set("error_code", int_value(error::kUnknownTopicOrPartition));
        continue;
      }
      const std::shared_ptr<storage::PartitionLog> log_held = partition->log;
      storage::PartitionLog& log = *log_held;
      const std::int64_t timestamp = wanted.get_int("timestamp");
      out.set("error_code", int_value(error::kNone));
      if (timestamp == kEarliestTimestamp) {
        out.set("offset", int_value(log.log_start_offset()));
      } else if (timestamp == kLatestTimestamp) {
        out.set("offset", int_value(log.high_watermark()));
      } else {
        auto found = log.lookup_offset_by_timestamp(timestamp);
        if (!found) {
          out.set("error_code", int_value(kafka_error_code(found.error())));
        } else if (*found) {
          out.set("offset", int_value((*found)->offset));
          out.set("timestamp", int_value((*found)->timestamp_ms));
        }
      }
    }
  }
  return response;
}

}  // namespace sluice::kafka
