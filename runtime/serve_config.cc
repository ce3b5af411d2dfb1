#include "runtime/serve_config.h"

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>

namespace sluice::runtime {

namespace {

// One accepted key: how to apply its scalar, and what it accepts (for the error message).
struct Key {
  std::string accepts;
  std::function<bool(const YAML::Node&)> apply;  // false: the value is not acceptable
};

template <typename T>
bool read_scalar(const YAML::Node& node, T& out) {
  if (!node.IsScalar()) return false;
  try {
    out = node.as<T>();
    return true;
  } catch (const YAML::Exception&) {
    return false;
  }
}

template <typename T>
Key integer_key(T& target, std::int64_t minimum, std::int64_t maximum) {
  return Key{"an integer in [" + std::to_string(minimum) + ", " + std::to_string(maximum) + "]",
             [&target, minimum, maximum](const YAML::Node& node) {
               std::int64_t value = 0;
               if (!read_scalar(node, value) || value < minimum || value > maximum) return false;
               target = static_cast<T>(value);
               return true;
             }};
}

Key milliseconds_key(Duration& target) {
  return Key{"milliseconds, >= 1", [&target](const YAML::Node& node) {
               std::int64_t value = 0;
               if (!read_scalar(node, value) || value < 1) return false;
               target = milliseconds(value);
               return true;
             }};
}

Key minutes_key(Duration& target) {
  return Key{"minutes, >= 1", [&target](const YAML::Node& node) {
               std::int64_t value = 0;
               if (!read_scalar(node, value) || value < 1 || value > INT32_MAX) return false;
               target = std::chrono::minutes(value);
               return true;
             }};
}

Key string_key(std::string& target, std::string accepts,
               std::function<bool(const std::string&)> valid) {
  return Key{std::move(accepts), [&target, valid = std::move(valid)](const YAML::Node& node) {
               std::string value;
               if (!read_scalar(node, value) || !valid(value)) return false;
               target = value;
               return true;
             }};
}

Key bool_key(bool& target) {
  return Key{"true or false",
             [&target](const YAML::Node& node) { return read_scalar(node, target); }};
}

bool is_address(const std::string& text) {
  return Address::parse(text).has_value();
}

std::expected<void, std::string> apply_map(
    const std::string& where, const YAML::Node& node, const std::map<std::string, Key>& keys,
    const std::map<std::string, std::map<std::string, Key>>& sections) {
  if (!node.IsMap()) return std::unexpected(where + ": expected a mapping of keys to values");
  for (const auto& entry : node) {
    const std::string name = entry.first.as<std::string>();
    const std::string path = where.empty() ? name : where + "." + name;
    if (auto section = sections.find(name); section != sections.end()) {
      if (auto applied = apply_map(path, entry.second, section->second, {}); !applied)
        return applied;
      continue;
    }
    auto key = keys.find(name);
    if (key == keys.end()) {
      std::string known;
      for (const auto& [known_name, unused] : keys)
        known += (known.empty() ? "" : ", ") + known_name;
      for (const auto& [known_name, unused] : sections)
        known += (known.empty() ? "" : ", ") + known_name;
      return std::unexpected("unknown key '" + path + "' (accepted here: " + known + ")");
    }
    if (!key->second.apply(entry.second)) {
      return std::unexpected("invalid value for '" + path + "': expected " + key->second.accepts);
    }
  }
  return {};
}

}  // namespace

bool admin_disabled(const std::string& admin_listen) {
  return admin_listen.empty() || admin_listen == "off";
}

std::expected<void, std::string> load_serve_config(const std::string& path, ServeConfig& config) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return std::unexpected("cannot read config file '" + path + "'");
  } catch (const YAML::Exception& error) {
    return std::unexpected("config file '" + path + "' is not valid YAML: " + error.what());
  }
  if (root.IsNull()) return {};  // an empty file changes nothing

  kafka::BrokerConfig& broker = config.broker;
  storage::LogConfig& log = broker.log;
  constexpr std::int64_t kIntMax = INT32_MAX;
  constexpr std::int64_t kLongMax = INT64_MAX;
  const std::map<std::string, Key> top = {
      {"node_id", integer_key(config.node_id, 0, kIntMax)},
      {"data_directory", string_key(broker.data_dir, "a directory path",
                                    [](const std::string& value) { return !value.empty(); })},
      {"listen", string_key(config.listen, "HOST:PORT", is_address)},
      {"advertise",
       string_key(config.advertise, "HOST:PORT or \"\"",
                  [](const std::string& value) { return value.empty() || is_address(value); })},
      {"log_level", string_key(config.log_level, "trace, debug, info, warn or error",
                               [](const std::string& value) {
                                 LogLevel level;
                                 return parse_log_level(value, level) && value != "off";
                               })},
      {"log_format", string_key(config.log_format, "text or json",
                                [](const std::string& value) {
                                  LogFormat format;
                                  return parse_log_format(value, format);
                                })},
  };
  const std::map<std::string, Key> kafka = {
      {"auto_create_topics", bool_key(broker.auto_create_topics)},
      {"default_partitions", integer_key(broker.default_partitions, 1, 100000)},
      {"request_max_bytes", integer_key(broker.request_bytes_max, 1024, kIntMax)},
      {"request_memory_max_bytes", integer_key(broker.request_memory_bytes_max, 1 << 20, kLongMax)},
      {"idle_timeout_ms", milliseconds_key(broker.idle_timeout)},
      {"retention_check_interval_ms", milliseconds_key(broker.retention_check_interval)},
      {"drain_timeout_ms", milliseconds_key(broker.drain_timeout)},
  };
  const std::map<std::string, Key> topic_defaults = {
      {"retention_ms", integer_key(log.retention_ms, -1, kLongMax)},
      {"retention_bytes", integer_key(log.retention_bytes, -1, kLongMax)},
      {"segment_bytes", integer_key(log.segment_bytes, 14, kIntMax)},
      {"segment_ms", integer_key(log.segment_ms, 1, kLongMax)},
      {"flush_messages", integer_key(log.flush_messages, 1, kLongMax)},
      {"flush_ms", integer_key(log.flush_ms, -1, kLongMax)},
      {"max_message_bytes", integer_key(log.max_batch_bytes, 61, kIntMax)},
      {"min_insync_replicas", integer_key(broker.min_insync_replicas, 1, kIntMax)},
  };
  const std::map<std::string, Key> storage = {
      {"page_cache_window_bytes", integer_key(log.page_cache_window_bytes, 0, kLongMax)},
      {"lazy_sync_bytes", integer_key(log.lazy_sync_bytes, 0, kLongMax)},
  };
  group::GroupConfig& group = broker.group;
  const std::map<std::string, Key> groups = {
      {"initial_rebalance_delay_ms", integer_key(group.initial_rebalance_delay_ms, 0, kIntMax)},
      {"min_session_timeout_ms", integer_key(group.session_timeout_ms_min, 1, kIntMax)},
      {"max_session_timeout_ms", integer_key(group.session_timeout_ms_max, 1, kIntMax)},
      {"max_size", integer_key(group.group_size_max, 1, kIntMax)},
      {"offsets_topic_partitions", integer_key(broker.offsets_topic_partitions, 1, 1000)},
      {"offsets_retention_minutes", minutes_key(broker.offsets_retention)},
      {"offsets_retention_check_interval_ms",
       milliseconds_key(broker.offsets_retention_check_interval)},
  };
  const std::map<std::string, Key> admin = {
      {"listen", string_key(config.admin_listen, "HOST:PORT, \"\" or off",
                            [](const std::string& value) {
                              return admin_disabled(value) || is_address(value);
                            })},
  };
  auto applied = apply_map(
      "", root, top,
      {{"kafka", kafka},
       {"topic_defaults", topic_defaults},
       {"storage", storage},
       {"groups", groups},
       {"admin", admin}});
  if (!applied) return std::unexpected("config file '" + path + "': " + applied.error());
  if (group.session_timeout_ms_min > group.session_timeout_ms_max) {
    return std::unexpected(
        "config file '" + path +
        "': groups.min_session_timeout_ms must not exceed groups.max_session_timeout_ms");
  }
  return {};
}

namespace {

std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::int64_t as_ms(Duration duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

}  // namespace

std::string format_serve_config(const ServeConfig& config) {
  const kafka::BrokerConfig& broker = config.broker;
  const storage::LogConfig& log = broker.log;
  const group::GroupConfig& group = broker.group;
  std::string out;
  auto line = [&out](std::string_view indent, std::string_view key, const std::string& value) {
    out.append(indent).append(key).append(": ").append(value).append("\n");
  };
  auto number = [](auto value) { return std::to_string(value); };
  line("", "node_id", number(config.node_id));
  line("", "data_directory", quoted(broker.data_dir));
  line("", "listen", quoted(config.listen));
  line("", "advertise", quoted(config.advertise));
  line("", "log_level", config.log_level);
  line("", "log_format", config.log_format);
  out += "kafka:\n";
  line("  ", "auto_create_topics", broker.auto_create_topics ? "true" : "false");
  line("  ", "default_partitions", number(broker.default_partitions));
  line("  ", "request_max_bytes", number(broker.request_bytes_max));
  line("  ", "request_memory_max_bytes", number(broker.request_memory_bytes_max));
  line("  ", "idle_timeout_ms", number(as_ms(broker.idle_timeout)));
  line("  ", "retention_check_interval_ms", number(as_ms(broker.retention_check_interval)));
  line("  ", "drain_timeout_ms", number(as_ms(broker.drain_timeout)));
  out += "topic_defaults:\n";
  line("  ", "retention_ms", number(log.retention_ms));
  line("  ", "retention_bytes", number(log.retention_bytes));
  line("  ", "segment_bytes", number(log.segment_bytes));
  line("  ", "segment_ms", number(log.segment_ms));
  line("  ", "flush_messages", number(log.flush_messages));
  line("  ", "flush_ms", number(log.flush_ms));
  line("  ", "max_message_bytes", number(log.max_batch_bytes));
  line("  ", "min_insync_replicas", number(broker.min_insync_replicas));
  out += "storage:\n";
  line("  ", "page_cache_window_bytes", number(log.page_cache_window_bytes));
  line("  ", "lazy_sync_bytes", number(log.lazy_sync_bytes));
  out += "groups:\n";
  line("  ", "initial_rebalance_delay_ms", number(group.initial_rebalance_delay_ms));
  line("  ", "min_session_timeout_ms", number(group.session_timeout_ms_min));
  line("  ", "max_session_timeout_ms", number(group.session_timeout_ms_max));
  line("  ", "max_size", number(group.group_size_max));
  line("  ", "offsets_topic_partitions", number(broker.offsets_topic_partitions));
  line("  ", "offsets_retention_minutes",
       number(std::chrono::duration_cast<std::chrono::minutes>(broker.offsets_retention).count()));
  line("  ", "offsets_retention_check_interval_ms",
       number(as_ms(broker.offsets_retention_check_interval)));
  out += "admin:\n";
  line("  ", "listen", quoted(config.admin_listen));
  return out;
}

}  // namespace sluice::runtime
