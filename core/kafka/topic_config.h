#pragma once
// Topic configuration: the keys a topic may set (Kafka names), their validation, how they map onto
// storage::LogConfig, and their durable encoding.
//
// A topic's *overrides* are the keys set on it (CreateTopics configs, AlterConfigs); every other
// key takes the broker default. The effective TopicSettings = broker defaults + overrides.
// DescribeConfigs reports a key as DYNAMIC_TOPIC_CONFIG when overridden, else DEFAULT_CONFIG,
// with the broker-level synonym (e.g. retention.ms ⇐ log.retention.ms).
//
// Supported keys: retention.ms, retention.bytes, segment.bytes, segment.ms, max.message.bytes,
// flush.messages, flush.ms (all onto LogConfig), cleanup.policy (only "delete" until compaction
// exists) and min.insync.replicas (stored and validated; enforced with replication later).

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/storage/partition_log.h"

namespace sluice::kafka {

using ConfigMap = std::map<std::string, std::string, std::less<>>;

struct TopicSettings {
  storage::LogConfig log;
  std::int32_t min_insync_replicas = 1;
  std::string cleanup_policy = "delete";
};

struct ConfigKey {
  std::string_view name;         // the topic-level key
  std::string_view broker_name;  // its broker-level synonym (the default's source)
  std::string (*read)(const TopicSettings& settings);
  // Parses and stores `value`; an error message (naming the key) when it is not acceptable.
  std::optional<std::string> (*write)(TopicSettings& settings, std::string_view value);
};

// Every supported key, in name order.
std::span<const ConfigKey> topic_config_keys();
const ConfigKey* find_topic_config_key(std::string_view name);

// Defaults + overrides, or an error message for Kafka's INVALID_CONFIG (40): unknown key, bad
// value.
std::expected<TopicSettings, std::string> resolve_topic_settings(const TopicSettings& defaults,
                                                                 const ConfigMap& overrides);

// The durable image of a topic's overrides (sealed with a CRC-32C), and back; nullopt when the
// image is torn or corrupt.
std::vector<std::byte> encode_topic_configs(const ConfigMap& overrides);
std::optional<ConfigMap> decode_topic_configs(std::span<const std::byte> image);

}  // namespace sluice::kafka
