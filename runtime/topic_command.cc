#include "runtime/topic_command.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/protocol/messages.h"
#include "runtime/admin_client.h"
#include "runtime/admin_command.h"

namespace sluice::runtime {

namespace {

using nlohmann::json;
using protocol::StructValue;
using protocol::Value;
template <typename T>
using Result = AdminResult<T>;

constexpr std::int8_t kResourceTypeTopic = 2;  // DescribeConfigs / AlterConfigs ConfigResource
constexpr std::int8_t kConfigSourceTopic = 1;  // DYNAMIC_TOPIC_CONFIG

struct ConfigEntry {
  std::string name;
  std::optional<std::string> value;
};

// "key=value" -> {key, value}. CLI11 has already checked the shape (config_validator).
ConfigEntry parse_config(std::string_view text) {
  const auto equals = text.find('=');
  assert(equals != std::string_view::npos && equals > 0);
  return {std::string(text.substr(0, equals)), std::string(text.substr(equals + 1))};
}

std::string config_validator(const std::string& text) {
  const auto equals = text.find('=');
  if (equals == std::string::npos || equals == 0) return "expected key=value, got '" + text + "'";
  return {};
}

std::string_view config_source_name(std::int64_t source) {
  switch (source) {
    case 1: return "topic";
    case 2: return "broker";
    case 3: return "broker-default";
    case 4: return "static-broker";
    case 5: return "default";
    case 6: return "broker-logger";
    default: return "unknown";
  }
}

std::string join_ints(const Value& array) {
  std::string text;
  for (const Value& item : array.as_array()) {
    if (!text.empty()) text += ",";
    text += std::to_string(item.as_int());
  }
  return text;
}

json ints_json(const Value& array) {
  json out = json::array();
  for (const Value& item : array.as_array()) out.push_back(item.as_int());
  return out;
}

// ---- Requests ----

// The topic's entry in a Metadata response, or its error.
Result<StructValue> describe_partitions(AdminClient& client, const std::string& topic) {
  auto metadata = fetch_metadata(client, std::vector<std::string>{topic});
  if (!metadata) return std::unexpected(metadata.error());
  for (const StructValue& entry : metadata->get_structs("topics")) {
    if (entry.get_string("name") != topic) continue;
    if (auto ok = check_error(entry, "describe topic '" + topic + "'"); !ok) {
      return std::unexpected(ok.error());
    }
    return entry;
  }
  return std::unexpected(AdminError::from_kafka(3, "describe topic '" + topic + "'", std::nullopt));
}

// Partition index -> offset for `timestamp` (-2 earliest, -1 latest) of every partition.
Result<std::vector<std::int64_t>> list_partition_offsets(AdminClient& client,
                                                         const std::string& topic,
                                                         std::size_t partition_count,
                                                         std::int64_t timestamp) {
  std::vector<TopicPartition> partitions;
  for (std::size_t index = 0; index < partition_count; ++index) {
    partitions.push_back({topic, static_cast<std::int32_t>(index)});
  }
  auto answered = list_offsets(client, partitions, timestamp);
  if (!answered) return std::unexpected(answered.error());
  std::vector<std::int64_t> offsets;
  for (const auto& [partition, answer] : *answered) {  // sorted by partition index
    if (answer.error_code != 0) {
      return std::unexpected(AdminError::from_kafka(
          answer.error_code, "list offsets of " + topic + "-" + std::to_string(partition.partition),
          std::nullopt));
    }
    offsets.push_back(answer.offset);
  }
  assert(offsets.size() == partition_count);
  return offsets;
}

struct TopicConfig {
  std::string name;
  std::optional<std::string> value;
  std::string source;
  bool read_only = false;
  bool sensitive = false;
};

Result<std::vector<TopicConfig>> describe_configs(AdminClient& client, const std::string& topic) {
  StructValue request = AdminClient::new_request(protocol::kDescribeConfigsSchema);
  request.add("resources")
      .set("resource_type", std::int64_t{kResourceTypeTopic})
      .set("resource_name", topic)
      .set("configuration_keys", protocol::Null{});  // every key
  auto response = client.call(protocol::kDescribeConfigsSchema, request);
  if (!response) return std::unexpected(response.error());
  const bool has_source = client.version_for(protocol::kDescribeConfigsSchema).value_or(0) >= 1;
  std::vector<TopicConfig> configs;
  for (const StructValue& result : response->get_structs("results")) {
    if (auto ok = check_error(result, "describe configs of '" + topic + "'"); !ok) {
      return std::unexpected(ok.error());
    }
    for (const StructValue& entry : result.get_structs("configs")) {
      const std::string source =
          has_source ? std::string(config_source_name(entry.get_int("config_source")))
                     : (entry.get_bool("is_default") ? "default" : "topic");
      configs.push_back({entry.get_string("name"), entry.get_nullable_string("value"), source,
                         entry.get_bool("read_only"), entry.get_bool("is_sensitive")});
    }
  }
  std::sort(configs.begin(), configs.end(),
            [](const TopicConfig& a, const TopicConfig& b) { return a.name < b.name; });
  return configs;
}

// ---- Actions: each prints its own output and returns an error for run() to report ----

Result<void> create_topic(AdminClient& client, const TopicCommandOptions& options) {
  auto version = client.version_for(protocol::kCreateTopicsSchema);
  if (!version) return std::unexpected(version.error());
  // Before v4 the broker has no "default" (-1): ask for one partition and one replica.
  const std::int64_t default_count = *version >= 4 ? -1 : 1;
  StructValue request = AdminClient::new_request(protocol::kCreateTopicsSchema);
  request.set("timeout_ms", options.timeout_ms);
  StructValue& topic = request.add("topics");
  topic.set("name", options.topic)
      .set("num_partitions", options.partitions > 0 ? options.partitions : default_count)
      .set("replication_factor",
           options.replication_factor > 0 ? options.replication_factor : default_count);
  for (const std::string& text : options.configs) {
    const ConfigEntry config = parse_config(text);
    topic.add("configs").set("name", config.name).set("value", *config.value);
  }
  auto response = client.call(protocol::kCreateTopicsSchema, request);
  if (!response) return std::unexpected(response.error());
  for (const StructValue& result : response->get_structs("topics")) {
    if (auto ok = check_error(result, "create topic '" + options.topic + "'"); !ok) return ok;
  }
  if (options.json) {
    std::printf("%s\n", json{{"topic", options.topic}, {"created", true}}.dump().c_str());
  } else {
    std::printf("Created topic '%s'.\n", options.topic.c_str());
  }
  return {};
}

Result<void> list_topics(AdminClient& client, const TopicCommandOptions& options) {
  auto metadata = fetch_metadata(client, std::nullopt);
  if (!metadata) return std::unexpected(metadata.error());
  std::vector<StructValue> topics = metadata->get_structs("topics");
  std::sort(topics.begin(), topics.end(), [](const StructValue& a, const StructValue& b) {
    return a.get_string("name") < b.get_string("name");
  });
  if (options.json) {
    json out = json::array();
    for (const StructValue& topic : topics) {
      out.push_back({{"name", topic.get_string("name")},
                     {"partitions", topic.get_structs("partitions").size()},
                     {"internal", topic.get_bool("is_internal")}});
    }
    std::printf("%s\n", json{{"topics", out}}.dump().c_str());
    return {};
  }
  std::vector<std::vector<std::string>> rows;
  for (const StructValue& topic : topics) {
    rows.push_back({topic.get_string("name"),
                    std::to_string(topic.get_structs("partitions").size())});
  }
  print_table({"TOPIC", "PARTITIONS"}, rows);
  return {};
}

void print_description(const TopicCommandOptions& options, const StructValue& topic,
                       const std::vector<std::int64_t>& log_start,
                       const std::vector<std::int64_t>& high_watermark,
                       const std::optional<std::vector<TopicConfig>>& configs) {
  const auto& partitions = topic.get_structs("partitions");
  if (options.json) {
    json out = {{"name", options.topic}, {"partitions", json::array()}};
    for (std::size_t row = 0; row < partitions.size(); ++row) {
      const StructValue& partition = partitions[row];
      out["partitions"].push_back({{"partition", partition.get_int("partition_index")},
                                   {"leader", partition.get_int("leader_id")},
                                   {"replicas", ints_json(partition["replica_nodes"])},
                                   {"isr", ints_json(partition["isr_nodes"])},
                                   {"log_start_offset", log_start[row]},
                                   {"high_watermark", high_watermark[row]}});
    }
    if (configs) {
      json config_json = json::object();
      for (const TopicConfig& config : *configs) {
        config_json[config.name] = {{"value", config.value ? json(*config.value) : json(nullptr)},
                                    {"source", config.source},
                                    {"read_only", config.read_only}};
      }
      out["configs"] = config_json;
    }
    std::printf("%s\n", out.dump().c_str());
    return;
  }
  std::printf("Topic: %s  Partitions: %zu\n\n", options.topic.c_str(), partitions.size());
  std::vector<std::vector<std::string>> rows;
  for (std::size_t row = 0; row < partitions.size(); ++row) {
    const StructValue& partition = partitions[row];
    rows.push_back({std::to_string(partition.get_int("partition_index")),
                    std::to_string(partition.get_int("leader_id")),
                    join_ints(partition["replica_nodes"]), join_ints(partition["isr_nodes"]),
                    std::to_string(log_start[row]), std::to_string(high_watermark[row])});
  }
  print_table({"PARTITION", "LEADER", "REPLICAS", "ISR", "LOG_START", "HIGH_WATERMARK"}, rows);
  if (!configs) return;
  std::printf("\n");
  rows.clear();
  for (const TopicConfig& config : *configs) {
    std::string value = config.sensitive ? "(sensitive)" : config.value.value_or("(null)");
    rows.push_back({config.name, value, config.source});
  }
  print_table({"CONFIG", "VALUE", "SOURCE"}, rows);
}

Result<void> describe_topic(AdminClient& client, const TopicCommandOptions& options) {
  auto topic = describe_partitions(client, options.topic);
  if (!topic) return std::unexpected(topic.error());
  // Metadata lists partitions in any order; offsets and output follow partition index.
  auto& partitions = topic->get_structs("partitions");
  std::sort(partitions.begin(), partitions.end(), [](const StructValue& a, const StructValue& b) {
    return a.get_int("partition_index") < b.get_int("partition_index");
  });
  auto log_start =
      list_partition_offsets(client, options.topic, partitions.size(), kTimestampEarliest);
  if (!log_start) return std::unexpected(log_start.error());
  auto high_watermark =
      list_partition_offsets(client, options.topic, partitions.size(), kTimestampLatest);
  if (!high_watermark) return std::unexpected(high_watermark.error());
  std::optional<std::vector<TopicConfig>> configs;
  auto described = describe_configs(client, options.topic);
  if (described) {
    configs = std::move(*described);
  } else if (described.error().kind == AdminError::Kind::unsupported_api) {
    // Partitions and offsets are still worth showing from a broker without DescribeConfigs.
    std::fprintf(stderr, "sluice: configs not shown: %s\n", described.error().message.c_str());
  } else {
    return std::unexpected(described.error());
  }
  print_description(options, *topic, *log_start, *high_watermark, configs);
  return {};
}

Result<void> delete_topic(AdminClient& client, const TopicCommandOptions& options) {
  StructValue request = AdminClient::new_request(protocol::kDeleteTopicsSchema);
  request.set("topic_names", Value::Array{Value(options.topic)});
  request.set("timeout_ms", options.timeout_ms);
  auto response = client.call(protocol::kDeleteTopicsSchema, request);
  if (!response) return std::unexpected(response.error());
  for (const StructValue& result : response->get_structs("responses")) {
    if (auto ok = check_error(result, "delete topic '" + options.topic + "'"); !ok) return ok;
  }
  if (options.json) {
    std::printf("%s\n", json{{"topic", options.topic}, {"deleted", true}}.dump().c_str());
  } else {
    std::printf("Deleted topic '%s'.\n", options.topic.c_str());
  }
  return {};
}

// AlterConfigs replaces a topic's whole set of overrides (Kafka resets any key it is not sent),
// so the current overrides are read first and the new values merged over them.
Result<void> alter_topic(AdminClient& client, const TopicCommandOptions& options) {
  auto current = describe_configs(client, options.topic);
  if (!current) return std::unexpected(current.error());
  std::vector<ConfigEntry> merged;
  for (const TopicConfig& config : *current) {
    if (config.source == config_source_name(kConfigSourceTopic)) {
      merged.push_back({config.name, config.value});
    }
  }
  for (const std::string& text : options.configs) {
    ConfigEntry update = parse_config(text);
    auto same = std::find_if(merged.begin(), merged.end(),
                             [&](const ConfigEntry& entry) { return entry.name == update.name; });
    if (same != merged.end()) {
      same->value = std::move(update.value);
    } else {
      merged.push_back(std::move(update));
    }
  }
  StructValue request = AdminClient::new_request(protocol::kAlterConfigsSchema);
  StructValue& resource = request.add("resources");
  resource.set("resource_type", std::int64_t{kResourceTypeTopic}).set("resource_name", options.topic);
  for (const ConfigEntry& entry : merged) {
    resource.add("configs")
        .set("name", entry.name)
        .set("value", entry.value ? Value(*entry.value) : Value(protocol::Null{}));
  }
  auto response = client.call(protocol::kAlterConfigsSchema, request);
  if (!response) return std::unexpected(response.error());
  for (const StructValue& result : response->get_structs("responses")) {
    if (auto ok = check_error(result, "alter configs of '" + options.topic + "'"); !ok) return ok;
  }
  if (options.json) {
    json changed = json::object();
    for (const std::string& text : options.configs) {
      const ConfigEntry entry = parse_config(text);
      changed[entry.name] = *entry.value;
    }
    std::printf("%s\n", json{{"topic", options.topic}, {"altered", changed}}.dump().c_str());
  } else {
    std::printf("Altered configs of topic '%s'.\n", options.topic.c_str());
  }
  return {};
}

}  // namespace

CLI::App* TopicCommand::add_topic_action(const char* name, const char* description,
                                         bool takes_topic, TopicAction action) {
  CLI::App* added = add_action(name, description, options_, [this, action] {
    return run_admin_action(
        options_, [&](AdminSession& session) { return action(session.bootstrap(), options_); });
  });
  if (takes_topic) added->add_option("topic", options_.topic, "Topic name")->required();
  return added;
}

TopicCommand::TopicCommand(CLI::App& app)
    : AdminCommand(
          app, "topic",
          "Administer topics on a Kafka-compatible broker (Sluice or Kafka) over the Kafka "
          "protocol") {
  CLI::App* create = add_topic_action("create", "Create a topic", true, create_topic);
  create->add_option("-p,--partitions", options_.partitions, "Partition count (default: broker's)")
      ->check(CLI::PositiveNumber);
  create
      ->add_option("-r,--replication-factor", options_.replication_factor,
                   "Replication factor (default: broker's)")
      ->check(CLI::PositiveNumber);
  create->add_option("-c,--config", options_.configs, "Topic config key=value (repeatable)")
      ->check(CLI::Validator(config_validator, "KEY=VALUE"));
  add_topic_action("list", "List topics with their partition counts", false, list_topics);
  add_topic_action("describe",
                   "Show a topic's partitions (leader, replicas, ISR, log start and high watermark "
                   "offsets) and configs",
                   true, describe_topic);
  add_topic_action("delete", "Delete a topic", true, delete_topic);
  CLI::App* alter = add_topic_action("alter", "Set topic configs, keeping the other overrides",
                                     true, alter_topic);
  alter->add_option("-c,--config", options_.configs, "Topic config key=value (repeatable)")
      ->check(CLI::Validator(config_validator, "KEY=VALUE"))
      ->required();
}

}  // namespace sluice::runtime
