// The admin APIs: CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs, AlterConfigs,
// DeleteRecords. One node: every replica is this node, replication factor 1.
#include <cassert>
#include <set>

#include "core/kafka/broker.h"
#include "core/kafka/group_coordinator.h"
#include "core/protocol/messages.h"

namespace sluice::kafka {

using protocol::StructValue;
using protocol::int_value;
using protocol::Value;

namespace {

// DescribeConfigs / AlterConfigs resource types and config sources (KIP-226).
constexpr std::int64_t kResourceTopic = 2;
constexpr std::int64_t kResourceBroker = 4;
constexpr std::int64_t kSourceDynamicTopic = 1;
constexpr std::int64_t kSourceDefault = 5;
constexpr std::int64_t kUseDefault = -1;  // num_partitions / replication_factor (CreateTopics v4+)

Value text_or_null(std::optional<std::string> text) {
  if (!text) return Value(protocol::Null{});
  return Value(std::move(*text));
}

std::int16_t topic_error_code(TopicError error) {
  switch (error) {
    case TopicError::invalid_name:
      return error::kInvalidTopic;
    case TopicError::invalid_partitions:
      return error::kInvalidPartitions;
    case TopicError::already_exists:
      return error::kTopicAlreadyExists;
    case TopicError::not_found:
      return error::kUnknownTopicOrPartition;
    case TopicError::invalid_config:
      return error::kInvalidConfig;
    case TopicError::storage:
      break;
  }
  return error::kKafkaStorageError;
}

// An error code with the message Kafka would give (null message on success).
struct Outcome {
  std::int16_t code = error::kNone;
  std::optional<std::string> message;

  static Outcome ok() { return {}; }
  static Outcome fail(std::int16_t code, std::string message) { return {code, std::move(message)}; }
  void write_to(StructValue& result) const {
    result.set("error_code", int_value(code));
    result.set("error_message", text_or_null(message));
  }
};

Outcome outcome_of(TopicError error, std::string_view topic) {
  return Outcome::fail(topic_error_code(error),
                       "Operation on topic '" + std::string(topic) + "' failed");
}

// `configs` ({name, value} structs, as CreateTopics and AlterConfigs carry them) as an override
// map, validated against the broker defaults.
std::expected<ConfigMap, Outcome> overrides_of(const std::vector<StructValue>& configs,
                                               const TopicSettings& defaults) {
  ConfigMap overrides;
  for (const StructValue& config : configs) {
    const std::string& name = config.get_string("name");
    auto value = config.get_nullable_string("value");
    if (!value) {
      return std::unexpected(Outcome::fail(error::kInvalidConfig,
                                           "Null value not supported for topic config " + name));
    }
    overrides[name] = std::move(*value);
  }
  if (auto resolved = resolve_topic_settings(defaults, overrides); !resolved) {
    return std::unexpected(Outcome::fail(error::kInvalidConfig, resolved.error()));
  }
  return overrides;
}

// Manual replica assignments are acceptable only when every replica list is exactly this node.
bool assigned_only_to(const Value::Array& broker_ids, std::int32_t node_id) {
  return broker_ids.size() == 1 && broker_ids.front().as_int() == node_id;
}

// The names that occur more than once in `items` (Kafka rejects such entries with
// INVALID_REQUEST).
template <typename NameOf>
std::set<std::string> duplicate_names(const std::vector<StructValue>& items, NameOf name_of) {
  std::set<std::string> seen;
  std::set<std::string> duplicates;
  for (const StructValue& item : items) {
    if (!seen.insert(name_of(item)).second) duplicates.insert(name_of(item));
  }
  return duplicates;
}

Outcome duplicate_outcome(std::string_view name) {
  return Outcome::fail(error::kInvalidRequest,
                       "The request has more than one entry for '" + std::string(name) + "'");
}

}  // namespace

// ---- CreateTopics ----

StructValue Broker::handle_create_topics(std::int16_t /*version*/, const StructValue& request) {
  StructValue response = StructValue::with_defaults(protocol::kCreateTopicsSchema.response);
  const bool validate_only = request.get_bool("validate_only");
  const auto& topics = request.get_structs("topics");
  const auto duplicates =
      duplicate_names(topics, [](const StructValue& topic) { return topic.get_string("name"); });
  for (const StructValue& wanted : topics) {
    StructValue& result = response.add("topics");
    result.set("name", wanted["name"]);
    if (duplicates.contains(wanted.get_string("name"))) {
      duplicate_outcome(wanted.get_string("name")).write_to(result);
      continue;
    }
    create_one_topic(wanted, validate_only, result);
  }
  return response;
}

void Broker::create_one_topic(const StructValue& wanted, bool validate_only, StructValue& result) {
  const std::string& name = wanted.get_string("name");
  const auto finish = [&](Outcome outcome) { outcome.write_to(result); };
  if (!valid_topic_name(name)) {
    return finish(Outcome::fail(
        error::kInvalidTopic, "Topic name '" + name + "' is illegal: 1 to 249 of [a-zA-Z0-9._-]"));
  }
  if (topics_.find(name) != nullptr) {
    return finish(
        Outcome::fail(error::kTopicAlreadyExists, "Topic '" + name + "' already exists."));
  }
  std::int64_t partitions = wanted.get_int("num_partitions");
  const std::int64_t replication_factor = wanted.get_int("replication_factor");
  const auto& assignments = wanted.get_structs("assignments");
  if (!assignments.empty()) {
    if (partitions != kUseDefault || replication_factor != kUseDefault) {
      return finish(Outcome::fail(error::kInvalidRequest,
                                  "Both num_partitions or replication_factor and manual "
                                  "assignments were set; use either, not both"));
    }
    for (std::size_t index = 0; index < assignments.size(); ++index) {
      const StructValue& assignment = assignments[index];
      if (assignment.get_int("partition_index") != static_cast<std::int64_t>(index) ||
          !assigned_only_to(assignment["broker_ids"].as_array(), config_.node_id)) {
        return finish(
            Outcome::fail(error::kInvalidReplicaAssignment,
                          "Manual assignments must list partitions 0..n-1, each on node " +
                              std::to_string(config_.node_id) + " only (single-node broker)"));
      }
    }
    partitions = static_cast<std::int64_t>(assignments.size());
  }
  if (partitions == kUseDefault) partitions = config_.default_partitions;
  if (partitions <= 0 || partitions > TopicManager::kPartitionsPerTopicMax) {
    return finish(Outcome::fail(error::kInvalidPartitions,
                                "Number of partitions must be in [1, " +
                                    std::to_string(TopicManager::kPartitionsPerTopicMax) + "]"));
  }
  if (replication_factor != kUseDefault && replication_factor != 1) {
    return finish(
        Outcome::fail(error::kInvalidReplicationFactor,
                      "Replication factor " + std::to_string(replication_factor) +
                          " is not possible: this cluster has 1 broker, so it must be 1 (or -1)"));
  }
  auto overrides = overrides_of(wanted.get_structs("configs"), topics_.defaults());
  if (!overrides) return finish(overrides.error());
  if (validate_only) return finish(Outcome::ok());
  auto created = topics_.create_topic(name, static_cast<std::int32_t>(partitions), *overrides);
  if (!created) return finish(outcome_of(created.error(), name));
  finish(Outcome::ok());
}

// ---- DeleteTopics ----

StructValue Broker::handle_delete_topics(std::int16_t /*version*/, const StructValue& request) {
  StructValue response = StructValue::with_defaults(protocol::kDeleteTopicsSchema.response);
  for (const Value& name_value : request["topic_names"].as_array()) {
    const std::string& name = name_value.as_string();
    StructValue& result = response.add("responses");
    result.set("name", Value(name));
    if (is_internal_topic(name)) {
      // The groups' committed offsets live there.
      result.set("error_code", int_value(error::kInvalidTopic));
      continue;
    }
    auto deleted = topics_.delete_topic(name);
    result.set("error_code", int_value(deleted ? error::kNone : topic_error_code(deleted.error())));
    if (deleted) groups_->on_topic_deleted(name);
  }
  return response;
}

// ---- CreatePartitions ----

StructValue Broker::handle_create_partitions(std::int16_t /*version*/, const StructValue& request) {
  StructValue response = StructValue::with_defaults(protocol::kCreatePartitionsSchema.response);
  const bool validate_only = request.get_bool("validate_only");
  const auto& topics = request.get_structs("topics");
  const auto duplicates =
      duplicate_names(topics, [](const StructValue& topic) { return topic.get_string("name"); });
  for (const StructValue& wanted : topics) {
    const std::string& name = wanted.get_string("name");
    StructValue& result = response.add("results");
    result.set("name", Value(name));
    const auto outcome = [&]() -> Outcome {
      if (duplicates.contains(name)) return duplicate_outcome(name);
      Topic* topic = topics_.find(name);
      if (topic == nullptr) {
        return Outcome::fail(error::kUnknownTopicOrPartition,
                             "Topic '" + name + "' does not exist");
      }
      if (is_internal_topic(name)) {
        return Outcome::fail(error::kInvalidTopic, "Topic '" + name +
                                                       "' is internal: groups are placed by its partition count");
      }
      const auto current = static_cast<std::int64_t>(topic->partitions.size());
      const std::int64_t count = wanted.get_int("count");
      if (count <= current || count > TopicManager::kPartitionsPerTopicMax) {
        return Outcome::fail(error::kInvalidPartitions,
                             "Topic '" + name + "' has " + std::to_string(current) +
                                 " partition(s); the new count must be larger (and at most " +
                                 std::to_string(TopicManager::kPartitionsPerTopicMax) + ")");
      }
      const Value& assignments = wanted["assignments"];
      if (!assignments.is_null()) {
        const auto& lists = assignments.as_structs();
        bool trivial = static_cast<std::int64_t>(lists.size()) == count - current;
        for (const StructValue& list : lists) {
          trivial = trivial && assigned_only_to(list["broker_ids"].as_array(), config_.node_id);
        }
        if (!trivial) {
          return Outcome::fail(error::kInvalidReplicaAssignment,
                               "Assignments must give each new partition node " +
                                   std::to_string(config_.node_id) + " only");
        }
      }
      if (validate_only) return Outcome::ok();
      auto added = topics_.add_partitions(name, static_cast<std::int32_t>(count));
      return added ? Outcome::ok() : outcome_of(added.error(), name);
    }();
    outcome.write_to(result);
  }
  return response;
}

// ---- DescribeConfigs ----

namespace {

void add_synonym(StructValue& entry, std::string_view name, std::string value,
                 std::int64_t source) {
  StructValue& synonym = entry.add("synonyms");
  synonym.set("name", Value(std::string(name)));
  synonym.set("value", Value(std::move(value)));
  synonym.set("source", int_value(source));
}

// One config entry. `topic_overrides` is null for the broker resource.
void describe_key(const ConfigKey& key, const TopicSettings& defaults, const Topic* topic,
                  bool include_synonyms, StructValue& out) {
  const bool is_topic = topic != nullptr;
  const bool overridden = is_topic && topic->config_overrides.contains(key.name);
  StructValue& entry = out.add("configs");
  entry.set("name", Value(std::string(is_topic ? key.name : key.broker_name)));
  entry.set("value", Value(key.read(is_topic ? topic->settings : defaults)));
  // Broker defaults come from the static configuration: not alterable through the protocol.
  entry.set("read_only", Value(!is_topic));
  entry.set("is_default", Value(!overridden));
  entry.set("config_source", int_value(overridden ? kSourceDynamicTopic : kSourceDefault));
  entry.set("is_sensitive", Value(false));
  if (!include_synonyms) return;
  if (overridden) add_synonym(entry, key.name, key.read(topic->settings), kSourceDynamicTopic);
  add_synonym(entry, key.broker_name, key.read(defaults), kSourceDefault);
}

bool key_requested(const Value& requested_keys, const ConfigKey& key, bool is_topic) {
  if (requested_keys.is_null()) return true;
  const std::string_view name = is_topic ? key.name : key.broker_name;
  for (const Value& wanted : requested_keys.as_array()) {
    if (wanted.as_string() == name) return true;
  }
  return false;
}

}  // namespace

StructValue Broker::handle_describe_configs(std::int16_t version, const StructValue& request) {
  StructValue response = StructValue::with_defaults(protocol::kDescribeConfigsSchema.response);
  const bool include_synonyms = version >= 1 && request.get_bool("include_synonyms");
  for (const StructValue& resource : request.get_structs("resources")) {
    StructValue& result = response.add("results");
    const std::int64_t type = resource.get_int("resource_type");
    const std::string& name = resource.get_string("resource_name");
    result.set("resource_type", int_value(type));
    result.set("resource_name", Value(name));
    const Topic* topic = nullptr;
    if (type == kResourceTopic) {
      topic = topics_.find(name);
      if (topic == nullptr) {
        Outcome::fail(error::kUnknownTopicOrPartition, "Topic '" + name + "' does not exist")
            .write_to(result);
        continue;
      }
    } else if (type != kResourceBroker ||
               !(name.empty() || name == std::to_string(config_.node_id))) {
      Outcome::fail(
          error::kInvalidRequest,
          "Only topics and this broker (" + std::to_string(config_.node_id) + ") can be described")
          .write_to(result);
      continue;
    }
    Outcome::ok().write_to(result);
    for (const ConfigKey& key : topic_config_keys()) {
      if (!key_requested(resource["configuration_keys"], key, topic != nullptr)) continue;
      describe_key(key, topics_.defaults(), topic, include_synonyms, result);
    }
  }
  return response;
}

// ---- AlterConfigs ----

StructValue Broker::handle_alter_configs(std::int16_t /*version*/, const StructValue& request) {
  StructValue response = StructValue::with_defaults(protocol::kAlterConfigsSchema.response);
  const bool validate_only = request.get_bool("validate_only");
  for (const StructValue& resource : request.get_structs("resources")) {
    StructValue& result = response.add("responses");
    const std::int64_t type = resource.get_int("resource_type");
    const std::string& name = resource.get_string("resource_name");
    result.set("resource_type", int_value(type));
    result.set("resource_name", Value(name));
    const auto outcome = [&]() -> Outcome {
      if (type == kResourceBroker) {
        return Outcome::fail(error::kInvalidConfig,
                             "Broker configs are static: set them in the broker's configuration");
      }
      if (type != kResourceTopic) {
        return Outcome::fail(error::kInvalidRequest, "Only topic configs can be altered");
      }
      if (topics_.find(name) == nullptr) {
        return Outcome::fail(error::kUnknownTopicOrPartition,
                             "Topic '" + name + "' does not exist");
      }
      auto overrides = overrides_of(resource.get_structs("configs"), topics_.defaults());
      if (!overrides) return overrides.error();
      if (validate_only) return Outcome::ok();
      auto altered = topics_.alter_configs(name, *overrides);
      return altered ? Outcome::ok() : outcome_of(altered.error(), name);
    }();
    outcome.write_to(result);
  }
  return response;
}

// ---- DeleteRecords ----

StructValue Broker::handle_delete_records(std::int16_t /*version*/, const StructValue& request) {
  StructValue response = StructValue::with_defaults(protocol::kDeleteRecordsSchema.response);
  for (const StructValue& topic : request.get_structs("topics")) {
    const std::string& name = topic.get_string("name");
    StructValue& topic_result = response.add("topics");
    topic_result.set("name", Value(name));
    for (const StructValue& wanted : topic.get_structs("partitions")) {
      StructValue& out = topic_result.add("partitions");
      const auto index = static_cast<std::int32_t>(wanted.get_int("partition_index"));
      out.set("partition_index", int_value(index));
      out.set("low_watermark", int_value(-1));
      const std::shared_ptr<Partition> partition = topics_.find(name, index);
      if (partition == nullptr) {
        out.set("error_code", int_value(error::kUnknownTopicOrPartition));
        continue;
      }
      if (is_internal_topic(name)) {
        out.set("error_code", int_value(error::kInvalidTopic));
        continue;
      }
      const std::shared_ptr<storage::PartitionLog> log = partition->log;
      const std::int64_t high_watermark = log->high_watermark();
      std::int64_t offset = wanted.get_int("offset");
      if (offset == -1) offset = high_watermark;
      if (offset < 0 || offset > high_watermark) {
        out.set("error_code", int_value(error::kOffsetOutOfRange));
        continue;
      }
      // Below the current start: nothing to delete; the answer is the current low watermark.
      if (offset > log->log_start_offset()) {
        if (auto deleted = log->delete_records_before(offset); !deleted) {
          out.set("error_code", int_value(error::kKafkaStorageError));
          continue;
        }
      }
      out.set("error_code", int_value(error::kNone));
      out.set("low_watermark", int_value(log->log_start_offset()));
    }
  }
  return response;
}

}  // namespace sluice::kafka
