#include "scenarios/clients/sim_admin.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "core/protocol/messages.h"
#include "core/storage/record_batch.h"

namespace sluice::scenarios::clients {

namespace {

using checkers::OpType;
using checkers::RecordRef;
using checkers::TopicPartition;
using client::ClientError;
using client::KafkaConnection;
using protocol::int_value;
using protocol::StructValue;

constexpr std::int16_t kErrorTopicAlreadyExists = 36;
constexpr std::int16_t kGroupKeyType = 0;
// A final read of one partition takes at most this many Fetches (each makes progress or fails).
constexpr std::size_t kFetchesPerPartitionMax = 1'000'000;

std::int64_t time_ns(const Env& env) {
  return env.now().time_since_epoch().count();
}

std::optional<std::string> error_message_of(const StructValue& result) {
  for (const auto& field : result.schema.span()) {
    if (field.name == "error_message") return result.get_nullable_string("error_message");
  }
  return std::nullopt;
}

// The Kafka error in `result`'s error_code field, if any.
std::optional<ClientError> kafka_error_in(const StructValue& result, std::string_view context) {
  const auto error_code = static_cast<std::int16_t>(result.get_int("error_code"));
  if (error_code == 0) return std::nullopt;
  return ClientError::from_kafka(error_code, context, error_message_of(result));
}

ClientError protocol_error(std::string message) {
  return ClientError{.kind = ClientError::Kind::protocol, .message = std::move(message)};
}

bool worth_retrying(const ClientError& error) {
  return error.kind == ClientError::Kind::connection ||
         (error.kind == ClientError::Kind::kafka &&
          client::kafka_error_retriable(error.error_code));
}

}  // namespace

SimAdmin::SimAdmin(Env& env, SimAdminConfig config, checkers::History& history)
    : env_(env),
      config_(std::move(config)),
      history_(history),
      cluster_(env, config_.bootstrap,
               client::ConnectionOptions::with_timeout(config_.process, config_.request_timeout)) {
  assert(config_.fetch_bytes_max > 0);
}

template <typename T, typename Operation>
SimAdmin::Result<T> SimAdmin::with_retries(Instant deadline, Operation&& operation) {
  // Bounded by the deadline: every failed try sleeps retry_backoff (> 0) before the next.
  assert(config_.retry_backoff.count() > 0);
  for (;;) {
    Result<T> result = operation();
    if (result || !worth_retrying(result.error())) return result;
    if (add_saturating(env_.now(), config_.retry_backoff) >= deadline) return result;
    env_.log().debug("{}: retrying: {}", config_.process, result.error().message);
    this_fiber::sleep_for(config_.retry_backoff);
  }
}

SimAdmin::Result<void> SimAdmin::create_topic(const std::string& topic, std::int32_t partitions,
                                              const std::map<std::string, std::string>& configs,
                                              Instant deadline) {
  assert(partitions > 0);
  return with_retries<void>(deadline, [&]() -> Result<void> {
    auto connection = cluster_.any();
    if (!connection) return std::unexpected(connection.error());
    StructValue request = KafkaConnection::new_request(protocol::kCreateTopicsSchema);
    request.set("timeout_ms", int_value(config_.request_timeout.count() / 1'000'000));
    StructValue& wanted = request.add("topics");
    wanted.set("name", topic)
        .set("num_partitions", int_value(partitions))
        .set("replication_factor", int_value(1));
    for (const auto& [name, value] : configs) {
      wanted.add("configs").set("name", name).set("value", value);
    }
    auto response = (*connection)->call(protocol::kCreateTopicsSchema, request, deadline);
    if (!response) return std::unexpected(response.error());
    for (const StructValue& result : response->get_structs("topics")) {
      if (result.get_string("name") != topic) continue;
      if (result.get_int("error_code") == kErrorTopicAlreadyExists) return {};
      if (auto error = kafka_error_in(result, "create topic '" + topic + "'")) {
        return std::unexpected(*error);
      }
      return {};
    }
    return std::unexpected(protocol_error("CreateTopics did not answer for topic " + topic));
  });
}

SimAdmin::Result<std::int32_t> SimAdmin::partition_count(const std::string& topic,
                                                         Instant deadline) {
  return with_retries<std::int32_t>(deadline, [&]() -> Result<std::int32_t> {
    auto metadata = cluster_.fetch_metadata(std::vector<std::string>{topic});
    if (!metadata) return std::unexpected(metadata.error());
    const auto found = metadata->topics.find(topic);
    if (found == metadata->topics.end()) {
      return std::unexpected(protocol_error("Metadata did not answer for topic " + topic));
    }
    if (found->second.error_code != 0) {
      return std::unexpected(ClientError::from_kafka(
          found->second.error_code, "metadata of topic '" + topic + "'", std::nullopt));
    }
    return static_cast<std::int32_t>(found->second.partitions.size());
  });
}

SimAdmin::Result<std::shared_ptr<KafkaConnection>> SimAdmin::leader_of(const TopicPartition& tp) {
  auto metadata = cluster_.fetch_metadata(std::vector<std::string>{tp.topic});
  if (!metadata) return std::unexpected(metadata.error());
  const auto leader = metadata->leader_address(tp.topic, tp.partition);
  if (!leader) {
    constexpr std::int16_t kLeaderNotAvailable = 5;
    return std::unexpected(ClientError::from_kafka(
        kLeaderNotAvailable, tp.topic + "[" + std::to_string(tp.partition) + "]", std::nullopt));
  }
  return cluster_.to(*leader);
}

SimAdmin::Result<SimAdmin::PartitionOffsets> SimAdmin::list_offsets(
    const std::vector<TopicPartition>& partitions, std::int64_t timestamp, Instant deadline) {
  return with_retries<PartitionOffsets>(deadline, [&]() -> Result<PartitionOffsets> {
    PartitionOffsets offsets;
    // One request per partition keeps the routing simple; admin calls are few.
    for (const TopicPartition& tp : partitions) {
      auto connection = leader_of(tp);
      if (!connection) return std::unexpected(connection.error());
      StructValue request = KafkaConnection::new_request(protocol::kListOffsetsSchema);
      request.set("replica_id", int_value(-1));
      StructValue& topic = request.add("topics");
      topic.set("name", tp.topic);
      topic.add("partitions")
          .set("partition_index", int_value(tp.partition))
          .set("timestamp", int_value(timestamp));
      auto response = (*connection)->call(protocol::kListOffsetsSchema, request, deadline);
      if (!response) return std::unexpected(response.error());
      for (const StructValue& answered_topic : response->get_structs("topics")) {
        if (answered_topic.get_string("name") != tp.topic) continue;
        for (const StructValue& answer : answered_topic.get_structs("partitions")) {
          if (answer.get_int("partition_index") != tp.partition) continue;
          const std::string context =
              "list offsets of " + tp.topic + "[" + std::to_string(tp.partition) + "]";
          if (auto error = kafka_error_in(answer, context)) return std::unexpected(*error);
          offsets[tp] = answer.get_int("offset");
        }
      }
      if (!offsets.contains(tp)) {
        return std::unexpected(protocol_error("ListOffsets did not answer for " + tp.topic));
      }
    }
    assert(offsets.size() <= partitions.size());
    return offsets;
  });
}

SimAdmin::Result<std::shared_ptr<KafkaConnection>> SimAdmin::coordinator_of(
    const std::string& group) {
  auto connection = cluster_.any();
  if (!connection) return std::unexpected(connection.error());
  StructValue request = KafkaConnection::new_request(protocol::kFindCoordinatorSchema);
  request.set("key", group).set("key_type", int_value(kGroupKeyType));
  auto response = (*connection)->call(protocol::kFindCoordinatorSchema, request);
  if (!response) return std::unexpected(response.error());
  if (auto error = kafka_error_in(*response, "find the coordinator of group '" + group + "'")) {
    return std::unexpected(*error);
  }
  const std::int64_t port = response->get_int("port");
  if (port <= 0 || port > 65535) {
    return std::unexpected(protocol_error("FindCoordinator answered port " + std::to_string(port)));
  }
  return cluster_.to(Address{response->get_string("host"), static_cast<std::uint16_t>(port)});
}

SimAdmin::Result<GroupDescription> SimAdmin::describe_group(const std::string& group,
                                                            Instant deadline) {
  auto described = with_retries<GroupDescription>(deadline, [&]() -> Result<GroupDescription> {
    auto coordinator = coordinator_of(group);
    if (!coordinator) return std::unexpected(coordinator.error());
    StructValue request = KafkaConnection::new_request(protocol::kDescribeGroupsSchema);
    request.set("groups", protocol::Value::Array{protocol::Value(group)});
    auto response = (*coordinator)->call(protocol::kDescribeGroupsSchema, request, deadline);
    if (!response) return std::unexpected(response.error());
    for (const StructValue& answer : response->get_structs("groups")) {
      if (answer.get_string("group_id") != group) continue;
      if (auto error = kafka_error_in(answer, "describe group '" + group + "'")) {
        return std::unexpected(*error);
      }
      GroupDescription description{.group = group,
                                   .state = answer.get_string("group_state"),
                                   .protocol = answer.get_string("protocol_data"),
                                   .member_ids = {}};
      for (const StructValue& member : answer.get_structs("members")) {
        description.member_ids.push_back(member.get_string("member_id"));
      }
      return description;
    }
    return std::unexpected(protocol_error("DescribeGroups did not answer for group " + group));
  });
  if (!described) return described;
  checkers::Op op;
  op.process = config_.process;
  op.type = OpType::ok;
  op.f = "group-state";
  op.time_ns = time_ns(env_);
  op.group = group;
  op.group_state = described->state;
  history_.add(std::move(op));
  return described;
}

SimAdmin::Result<std::vector<RecordRef>> SimAdmin::fetch_once(const TopicPartition& tp,
                                                              std::int64_t offset,
                                                              std::int64_t& high_watermark,
                                                              Instant deadline,
                                                              bool verify_batch_crc) {
  auto connection = leader_of(tp);
  if (!connection) return std::unexpected(connection.error());
  StructValue request = KafkaConnection::new_request(protocol::kFetchSchema);
  request.set("replica_id", int_value(-1))
      .set("max_wait_ms", int_value(0))
      .set("min_bytes", int_value(0))
      .set("max_bytes", int_value(config_.fetch_bytes_max))
      .set("session_epoch", int_value(-1));
  StructValue& topic = request.add("topics");
  topic.set("topic", tp.topic);
  topic.add("partitions")
      .set("partition", int_value(tp.partition))
      .set("current_leader_epoch", int_value(-1))
      .set("fetch_offset", int_value(offset))
      .set("log_start_offset", int_value(-1))
      .set("partition_max_bytes", int_value(config_.fetch_bytes_max));
  auto response = (*connection)->call(protocol::kFetchSchema, request, deadline);
  if (!response) return std::unexpected(response.error());
  const std::string where = tp.topic + "[" + std::to_string(tp.partition) + "]";
  if (auto error = kafka_error_in(*response, "fetch " + where)) return std::unexpected(*error);
  for (const StructValue& answered_topic : response->get_structs("responses")) {
    if (answered_topic.get_string("topic") != tp.topic) continue;
    for (const StructValue& answer : answered_topic.get_structs("partitions")) {
      if (answer.get_int("partition_index") != tp.partition) continue;
      if (auto error = kafka_error_in(answer, "fetch " + where)) return std::unexpected(*error);
      high_watermark = answer.get_int("high_watermark");
      std::vector<RecordRef> records;
      const protocol::Value& bytes = answer["records"];
      std::span<const std::byte> batches;
      if (!bytes.is_null()) batches = bytes.as_bytes();
      while (!batches.empty()) {
        auto header = verify_batch_crc ? storage::validate_stored_batch(batches)
                                       : storage::parse_batch_header(batches, true);
        // A batch cut short by the size limit ends the response (Kafka clients drop it).
        if (!header && header.error() == storage::BatchError::truncated) break;
        if (!header) {
          return std::unexpected(
              protocol_error("fetch " + where + " at offset " + std::to_string(offset) +
                             ": bad batch: " + std::string(storage::to_string(header.error()))));
        }
        const auto batch = batches.first(header->size_bytes());
        batches = batches.subspan(header->size_bytes());
        if (header->control()) continue;
        auto decoded = storage::decode_records(batch);
        if (!decoded) {
          return std::unexpected(protocol_error("fetch " + where + ": undecodable batch: " +
                                                std::string(storage::to_string(decoded.error()))));
        }
        for (const storage::RecordView& record : *decoded) {
          if (record.offset < offset) continue;  // the batch may start before the fetch offset
          records.push_back(RecordRef{.tp = tp,
                                      .key = std::string(record.key.value_or("")),
                                      .value = std::string(record.value.value_or("")),
                                      .offset = record.offset});
        }
      }
      return records;
    }
  }
  return std::unexpected(protocol_error("Fetch did not answer for " + where));
}

namespace {
constexpr std::int16_t kOffsetOutOfRange = 1;
constexpr std::int16_t kCorruptMessage = 2;
constexpr std::int16_t kKafkaStorageError = 56;

bool is_corruption(const ClientError& error) {
  return error.kind == ClientError::Kind::kafka &&
         (error.error_code == kCorruptMessage || error.error_code == kKafkaStorageError);
}
}  // namespace

SimAdmin::Result<std::vector<RecordRef>> SimAdmin::read_partition(
    const TopicPartition& tp, Instant deadline, const FinalReadOptions& options,
    std::optional<FinalReadStop>& stop) {
  auto start = list_offsets({tp}, kEarliestTimestamp, deadline);
  if (!start) return std::unexpected(start.error());
  std::int64_t offset = start->at(tp);
  std::int64_t high_watermark = -1;
  std::int64_t target = -1;  // the high watermark when the read began: read up to there
  std::vector<RecordRef> records;
  for (std::size_t fetches = 0; fetches < kFetchesPerPartitionMax; ++fetches) {
    int corrupt_answers = 0;
    auto fetched = with_retries<std::vector<RecordRef>>(deadline, [&] {
      auto answer = fetch_once(tp, offset, high_watermark, deadline, options.verify_batch_crc);
      if (!answer && options.stop_at_corruption && is_corruption(answer.error()) &&
          ++corrupt_answers >= options.corruption_retries) {
        // The broker keeps reporting this offset corrupt: keep the prefix, note the stop.
        stop = FinalReadStop{.tp = tp, .offset = offset, .error = answer.error().message};
        return Result<std::vector<RecordRef>>(
            std::unexpected(protocol_error("stopped at corruption")));  // not retried
      }
      return answer;
    });
    if (stop) return records;
    if (!fetched && fetched.error().kind == client::ClientError::Kind::kafka &&
        fetched.error().error_code == kOffsetOutOfRange) {
      // Retention moved the log start past the read: start over from the new start (what lay
      // below it is gone, which the checkers allow only where retention may delete).
      auto restart = list_offsets({tp}, kEarliestTimestamp, deadline);
      if (!restart) return std::unexpected(restart.error());
      if (restart->at(tp) > offset) {
        offset = restart->at(tp);
        records.clear();
        target = -1;
        continue;
      }
    }
    if (!fetched) return std::unexpected(fetched.error());
    if (target < 0) target = high_watermark;
    for (RecordRef& record : *fetched) {
      if (record.offset >= target) break;
      offset = record.offset + 1;
      records.push_back(std::move(record));
    }
    if (offset >= target) return records;
    if (fetched->empty()) {
      return std::unexpected(
          protocol_error("fetch " + tp.topic + "[" + std::to_string(tp.partition) + "] at offset " +
                         std::to_string(offset) + " returned nothing below the high watermark " +
                         std::to_string(target)));
    }
  }
  return std::unexpected(protocol_error("final read of " + tp.topic + " made no progress"));
}

SimAdmin::Result<std::vector<RecordRef>> SimAdmin::final_read(
    const std::vector<std::string>& topics, Instant deadline, const FinalReadOptions& options,
    std::vector<FinalReadStop>* stops) {
  // Read everything first and record afterwards, so a failed read leaves no partial final read.
  std::vector<std::pair<TopicPartition, std::vector<RecordRef>>> reads;
  for (const std::string& topic : topics) {
    auto count = partition_count(topic, deadline);
    if (!count) return std::unexpected(count.error());
    for (std::int32_t partition = 0; partition < *count; ++partition) {
      const TopicPartition tp{topic, partition};
      std::optional<FinalReadStop> stop;
      auto records = read_partition(tp, deadline, options, stop);
      if (!records) return std::unexpected(records.error());
      if (stop) {
        env_.log().warn("{}: final read of {}[{}] stops at offset {}: {}", config_.process,
                        tp.topic, tp.partition, stop->offset, stop->error);
        if (stops != nullptr) stops->push_back(std::move(*stop));
      }
      reads.emplace_back(tp, std::move(*records));
    }
  }
  std::vector<RecordRef> all;
  for (const auto& [tp, records] : reads) {
    record_final_poll(tp, records);
    all.insert(all.end(), records.begin(), records.end());
  }
  return all;
}

void SimAdmin::record_final_poll(const TopicPartition& tp, const std::vector<RecordRef>& records) {
  checkers::Op invoke;
  invoke.process = std::string(checkers::kFinalReaderProcess);
  invoke.type = OpType::invoke;
  invoke.f = "poll";
  invoke.time_ns = time_ns(env_);
  checkers::Op ok = invoke;
  ok.type = OpType::ok;
  ok.records = records;
  history_.add(std::move(invoke));
  history_.add(std::move(ok));
  assert(std::all_of(records.begin(), records.end(),
                     [&](const RecordRef& record) { return record.tp == tp; }));
}

}  // namespace sluice::scenarios::clients
