// Broker lifecycle, request dispatch, and the cluster-level APIs: ApiVersions, Metadata,
// InitProducerId. Produce, Fetch and ListOffsets are in broker_data.cc.
#include "core/kafka/broker.h"

#include <cassert>
#include <utility>

#include "core/kafka/connection.h"
#include "core/kafka/group_coordinator.h"
#include "core/protocol/messages.h"

namespace sluice::kafka {

using protocol::StructValue;
using protocol::Value;

namespace {

// The APIs this broker answers. ApiVersions advertises exactly these (at their schema's range).
constexpr std::int16_t kHandledApis[] = {
    protocol::api::kProduce,
    protocol::api::kFetch,
    protocol::api::kListOffsets,
    protocol::api::kMetadata,
    protocol::api::kApiVersions,
    protocol::api::kInitProducerId,
    protocol::api::kCreateTopics,
    protocol::api::kDeleteTopics,
    protocol::api::kDeleteRecords,
    protocol::api::kDescribeConfigs,
    protocol::api::kAlterConfigs,
    protocol::api::kCreatePartitions,
    // Consumer groups: all or none, with every minimum version at 0 (PROTOCOL.md §1, trap 1).
    protocol::api::kFindCoordinator,
    protocol::api::kJoinGroup,
    protocol::api::kSyncGroup,
    protocol::api::kHeartbeat,
    protocol::api::kLeaveGroup,
    protocol::api::kOffsetCommit,
    protocol::api::kOffsetFetch,
    protocol::api::kDescribeGroups,
    protocol::api::kListGroups,
    protocol::api::kDeleteGroups,
    protocol::api::kOffsetDelete,
};

TopicSettings topic_defaults(const BrokerConfig& config) {
  return TopicSettings{.log = config.log,
                       .min_insync_replicas = config.min_insync_replicas,
                       .cleanup_policy = "delete"};
}

CoordinatorConfig coordinator_config(const BrokerConfig& config) {
  CoordinatorConfig coordinator;
  coordinator.group = config.group;
  coordinator.offsets_topic_partitions = config.offsets_topic_partitions;
  coordinator.offsets_retention = config.offsets_retention;
  coordinator.offsets_retention_check_interval = config.offsets_retention_check_interval;
  coordinator.offsets_segment_bytes = config.offsets_segment_bytes;
  coordinator.offsets_compaction_check_interval = config.offsets_compaction_check_interval;
  return coordinator;
}

}  // namespace

bool is_internal_topic(std::string_view name) {
  return name == group::kOffsetsTopic;
}

Broker::Broker(Env& env, BrokerConfig config)
    : env_(env),
      config_(std::move(config)),
      log_(env.log().with_component("broker")),
      topics_(env, config_.data_dir, topic_defaults(config_)),
      groups_(std::make_unique<GroupCoordinator>(env, topics_, coordinator_config(config_))),
      request_memory_(config_.request_memory_bytes_max) {
  assert(config_.default_partitions > 0);
  assert(config_.request_bytes_max > 0);
  assert(config_.request_memory_bytes_max > 0);
  assert(config_.retention_check_interval > Duration::zero());
  assert(config_.flush_check_interval > Duration::zero());
}

Broker::~Broker() {
  // Unwind connection fibers before the topics they use go away.
  if (listener_) listener_->close();
  connection_scope_.reset();
  scope_.reset();
}

std::expected<void, storage::LogError> Broker::open() {
  if (auto created = env_.disk().create_directories(config_.data_dir); !created) {
    return std::unexpected(storage::LogError::io);
  }
  next_producer_id_ = std::max<std::int64_t>(env_.clock().wall_ms(), 0) * 1000;
  if (auto recovered = topics_.recover(); !recovered) return recovered;
  return groups_->open();
}

std::expected<Address, NetError> Broker::serve(const Address& listen) {
  assert(listener_ == nullptr && "Broker::serve called twice");
  auto listener = env_.net().listen(listen);
  if (!listener) return std::unexpected(listener.error());
  listener_ = std::move(*listener);
  scope_ = std::make_unique<Scope>(env_.scheduler().current_scope(), "kafka");
  connection_scope_ = std::make_unique<Scope>(*scope_, "kafka-connections");
  scope_->spawn("kafka-accept", [this] { accept_loop(); });
  scope_->spawn("kafka-retention", [this] {
    housekeeping_loop("retention", config_.retention_check_interval,
                      [this](storage::PartitionLog& log) { return enforce_retention(log); });
  });
  scope_->spawn("kafka-flush", [this] {
    housekeeping_loop(
        "flush", config_.flush_check_interval,
        [](storage::PartitionLog& log) { return log.flush_if_due(); }, &flush_wanted_);
  });
  groups_->start(*scope_);
  return listener_->local_address();
}

void Broker::drain() {
  if (draining_ || listener_ == nullptr) return;
  draining_ = true;
  const Instant started = env_.now();
  listener_->close();
  // Nothing is read after the request in progress: idle connections end now (a request the
  // client sent but this end has not read yet was never answered, so the client retries it).
  std::vector<ConnectionState*> idle;
  for (const auto& [serial, state] : connections_) {
    if (!state->busy()) idle.push_back(state);
  }
  for (ConnectionState* state : idle) state->stream->close();
  // Long polls and parked group requests answer now instead of at their deadlines.
  topics_.notify_appended();
  groups_->abandon_parked();
  const std::size_t busy = connections_.size() - idle.size();
  log_.info("draining: listener closed; idle_closed={} in_progress={}", idle.size(), busy);
  const Instant deadline = env_.deadline_after(config_.drain_timeout);
  while (!connections_.empty() && env_.now() < deadline) connection_closed_.wait(deadline);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(env_.now() - started);
  if (!connections_.empty()) {
    log_.warn("drain timed out: cancelling connections={} still in a request; took_ms={}", connections_.size(),
              took.count());
  } else {
    log_.info("drained: every request in progress answered; took_ms={}", took.count());
  }
}

void Broker::stop() {
  if (stopped_) return;
  drain();
  stopped_ = true;
  if (listener_) listener_->close();
  connection_scope_.reset();
  scope_.reset();
  assert(connections_.empty());
  // Canary (simulation only): the logs stay open, so nothing marks them clean.
  if (env_.bug("stop_skips_log_close")) return;
  topics_.close_all();
  log_.info("stopped; partition logs closed");
}

void Broker::accept_loop() {
  for (;;) {
    auto stream = listener_->accept(kNever);
    if (!stream) {
      if (stream.error() == NetError::closed) return;
      log_.warn("accept failed: {}; retrying", to_string(stream.error()));
      this_fiber::sleep_for(milliseconds(50));
      continue;
    }
    connection_scope_->spawn("kafka-connection", [this, stream = std::move(*stream)]() mutable {
      ConnectionState state{.stream = stream.get()};
      const std::uint64_t serial = next_connection_serial_++;
      connections_.emplace(serial, &state);
      ++env_.metrics().connections_accepted;
      struct Leave {
        Broker& broker;
        std::uint64_t serial;
        ~Leave() {
          broker.connections_.erase(serial);
          ++broker.env_.metrics().connections_closed;
          broker.connection_closed_.notify_all();
        }
      } leave{*this, serial};
      serve_connection(*this, *stream, state);
    });
  }
}

void Broker::housekeeping_loop(std::string_view task, Duration interval, HousekeepingStep step,
                               Event* wake) {
  // Ends when scope_ is torn down (stop() or destruction) while sleeping or in a step.
  for (;;) {
    if (wake != nullptr) {
      wake->wait(env_.deadline_after(interval));
      wake->reset();
    } else {
      this_fiber::sleep_for(interval);
    }
    // A snapshot: topics may be created or deleted while a partition's IO suspends this fiber.
    for (const std::shared_ptr<Partition>& partition : topics_.all_partitions()) {
      // Held: a config change may swap the partition's log meanwhile.
      const std::shared_ptr<storage::PartitionLog> log = partition->log;
      auto done = step(*log);
      // `closed`: the topic was deleted or reconfigured meanwhile.
      if (!done && done.error() != storage::LogError::closed) {
        log_.warn("{} of {} failed: {}", task, log->directory(), storage::to_string(done.error()));
      }
    }
  }
}

std::expected<void, storage::LogError> Broker::enforce_retention(storage::PartitionLog& log) {
  auto deleted = log.enforce_retention();
  if (!deleted) return std::unexpected(deleted.error());
  if (*deleted > 0) log_.info("retention deleted {} segment(s) of {}", *deleted, log.directory());
  return {};
}

std::size_t Broker::reload_topic_defaults(const storage::LogConfig& log,
                                          std::int32_t min_insync_replicas) {
  config_.log = log;
  config_.min_insync_replicas = min_insync_replicas;
  return topics_.replace_defaults(topic_defaults(config_));
}

const protocol::MessageSchema* Broker::handled_schema(std::int16_t api_key) const {
  for (const std::int16_t handled : kHandledApis) {
    if (handled == api_key) return protocol::find_schema(api_key);
  }
  return nullptr;
}

std::optional<StructValue> Broker::handle(const protocol::RequestHeader& header,
                                          const protocol::MessageSchema& schema,
                                          StructValue& request, const RequestContext& context) {
  assert(schema.valid.contains(header.api_version));
  const std::int16_t version = header.api_version;
  switch (header.api_key) {
    case protocol::api::kApiVersions:
      return api_versions_response(error::kNone);
    case protocol::api::kMetadata:
      return handle_metadata(version, request);
    case protocol::api::kProduce:
      return handle_produce(version, request);
    case protocol::api::kFetch:
      return handle_fetch(version, request);
    case protocol::api::kListOffsets:
      return handle_list_offsets(version, request);
    case protocol::api::kInitProducerId:
      return handle_init_producer_id(version, request);
    case protocol::api::kCreateTopics:
      return handle_create_topics(version, request);
    case protocol::api::kDeleteTopics:
      return handle_delete_topics(version, request);
    case protocol::api::kCreatePartitions:
      return handle_create_partitions(version, request);
    case protocol::api::kDescribeConfigs:
      return handle_describe_configs(version, request);
    case protocol::api::kAlterConfigs:
      return handle_alter_configs(version, request);
    case protocol::api::kDeleteRecords:
      return handle_delete_records(version, request);
    case protocol::api::kFindCoordinator:
      return handle_find_coordinator(version, request);
    case protocol::api::kJoinGroup:
      return handle_join_group(version, request, context);
    case protocol::api::kSyncGroup:
      return handle_sync_group(version, request);
    case protocol::api::kHeartbeat:
      return handle_heartbeat(version, request);
    case protocol::api::kLeaveGroup:
      return handle_leave_group(version, request);
    case protocol::api::kOffsetCommit:
      return handle_offset_commit(version, request);
    case protocol::api::kOffsetFetch:
      return handle_offset_fetch(version, request);
    case protocol::api::kDescribeGroups:
      return handle_describe_groups(version, request);
    case protocol::api::kListGroups:
      return handle_list_groups(version, request);
    case protocol::api::kDeleteGroups:
      return handle_delete_groups(version, request);
    case protocol::api::kOffsetDelete:
      return handle_offset_delete(version, request);
    default:
      break;
  }
  assert(false && "handled_schema and handle disagree");
  return std::nullopt;
}

StructValue Broker::api_versions_response(std::int16_t error_code) const {
  StructValue response = StructValue::with_defaults(protocol::kApiVersionsSchema.response);
  response.set("error_code", Value(std::int64_t{error_code}));
  for (const protocol::MessageSchema* schema : protocol::all_schemas()) {
    if (handled_schema(schema->api_key) == nullptr) continue;
    StructValue& key = response.add("api_keys");
    key.set("api_key", Value(std::int64_t{schema->api_key}));
    key.set("min_version", Value(std::int64_t{schema->valid.min}));
    key.set("max_version", Value(std::int64_t{schema->valid.max}));
  }
  return response;
}

std::expected<Topic*, std::int16_t> Broker::find_or_create_topic(const std::string& name,
                                                                 bool allow_create) {
  if (Topic* topic = topics_.find(name)) return topic;
  if (!valid_topic_name(name)) return std::unexpected(error::kInvalidTopic);
  if (!allow_create || !config_.auto_create_topics)
    return std::unexpected(error::kUnknownTopicOrPartition);
  auto created = topics_.create_topic(name, config_.default_partitions);
  if (created) return *created;
  switch (created.error()) {
    case TopicError::already_exists:
      return topics_.find(name);
    case TopicError::invalid_name:
      return std::unexpected(error::kInvalidTopic);
    case TopicError::invalid_partitions:
    case TopicError::not_found:
    case TopicError::invalid_config:
    case TopicError::storage:
      break;
  }
  return std::unexpected(error::kKafkaStorageError);
}

namespace {

void describe_topic(const Topic& topic, std::int32_t node_id, StructValue& out) {
  out.set("error_code", Value(std::int64_t{error::kNone}));
  out.set("name", Value(topic.name));
  out.set("is_internal", Value(is_internal_topic(topic.name)));
  for (const auto& partition : topic.partitions) {
    StructValue& described = out.add("partitions");
    described.set("error_code", Value(std::int64_t{error::kNone}));
    described.set("partition_index", Value(std::int64_t{partition->index}));
    described.set("leader_id", Value(std::int64_t{node_id}));
    described.set("leader_epoch", Value(std::int64_t{0}));
    described.set("replica_nodes", Value(Value::Array{Value(std::int64_t{node_id})}));
    described.set("isr_nodes", Value(Value::Array{Value(std::int64_t{node_id})}));
  }
}

}  // namespace

StructValue Broker::handle_metadata(std::int16_t version, const StructValue& request) {
  StructValue response = StructValue::with_defaults(protocol::kMetadataSchema.response);
  StructValue& broker = response.add("brokers");
  broker.set("node_id", Value(std::int64_t{config_.node_id}));
  broker.set("host", Value(config_.advertised.host));
  broker.set("port", Value(std::int64_t{config_.advertised.port}));
  broker.set("rack", Value(protocol::Null{}));
  response.set("cluster_id", Value(config_.cluster_id));
  response.set("controller_id", Value(std::int64_t{config_.node_id}));

  const Value& requested = request["topics"];
  // v0: an empty list means every topic; v1+: null means every topic.
  const bool all_topics = requested.is_null() || (version == 0 && requested.as_structs().empty());
  if (all_topics) {
    for (const auto& [name, topic] : topics_.topics())
      describe_topic(*topic, config_.node_id, response.add("topics"));
    return response;
  }
  // Before v4 there is no flag: the broker's auto.create.topics.enable alone decides.
  const bool allow_create = version < 4 || request.get_bool("allow_auto_topic_creation");
  for (const StructValue& wanted : requested.as_structs()) {
    const std::string& name = wanted.get_string("name");
    auto topic = find_or_create_topic(name, allow_create);
    StructValue& out = response.add("topics");
    if (!topic) {
      out.set("error_code", Value(std::int64_t{topic.error()}));
      out.set("name", Value(name));
      continue;
    }
    describe_topic(**topic, config_.node_id, out);
  }
  return response;
}

StructValue Broker::handle_init_producer_id(std::int16_t /*version*/, const StructValue& request) {
  const protocol::MessageSchema* schema = protocol::find_schema(protocol::api::kInitProducerId);
  assert(schema != nullptr);
  StructValue response = StructValue::with_defaults(schema->response);
  if (request.get_nullable_string("transactional_id").has_value()) {
    // Transactions come later; Kafka answers a broker without them this way.
    response.set("error_code", Value(std::int64_t{error::kUnsupportedVersion}));
    response.set("producer_id", Value(std::int64_t{-1}));
    response.set("producer_epoch", Value(std::int64_t{-1}));
    return response;
  }
  response.set("error_code", Value(std::int64_t{error::kNone}));
  response.set("producer_id", Value(next_producer_id_++));
  response.set("producer_epoch", Value(std::int64_t{0}));
  return response;
}

}  // namespace sluice::kafka
