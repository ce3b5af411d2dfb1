#include "core/kafka/topic_config.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <functional>
#include <limits>
#include <type_traits>

#include "core/storage/storage_files.h"
#include "core/util/bytes.h"

namespace sluice::kafka {

namespace {

// Bounds the storage layer accepts (storage::PartitionLog::open rejects others).
constexpr std::int64_t kDurationMsMax = std::int64_t{1} << 50;
constexpr std::int64_t kInt32Max = std::numeric_limits<std::int32_t>::max();
constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kBatchBytesMin = static_cast<std::int64_t>(storage::kBatchHeaderBytes);
constexpr std::int64_t kBatchBytesMax = std::int64_t{1} << 30;
// "sluice topic configs v1"
constexpr std::uint32_t kConfigImageMagic = 0x53544331;
constexpr std::size_t kConfigEntriesMax = 64;

// The field a key stores into: a LogConfig member or a TopicSettings member.
template <auto Member, typename Settings>
auto& field_of(Settings& settings) {
  if constexpr (std::is_invocable_v<decltype(Member), const storage::LogConfig&>) {
    return std::invoke(Member, settings.log);
  } else {
    return std::invoke(Member, settings);
  }
}

template <auto Member>
std::string read_integer(const TopicSettings& settings) {
  return std::to_string(field_of<Member>(settings));
}

std::string invalid_value(std::string_view key, std::string_view value, std::string_view why) {
  return "Invalid value " + std::string(value) + " for configuration " + std::string(key) + ": " +
         std::string(why);
}

template <auto Member, std::int64_t Min, std::int64_t Max>
std::optional<std::string> write_integer(std::string_view key, TopicSettings& settings,
                                         std::string_view value) {
  std::int64_t number = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (value.empty() || error != std::errc() || end != value.data() + value.size()) {
    return invalid_value(key, value, "not a number");
  }
  if (number < Min || number > Max) {
    return invalid_value(key, value,
                         "must be in [" + std::to_string(Min) + ", " + std::to_string(Max) + "]");
  }
  auto& field = field_of<Member>(settings);
  field = static_cast<std::remove_reference_t<decltype(field)>>(number);
  return std::nullopt;
}

std::string read_cleanup_policy(const TopicSettings& settings) {
  return settings.cleanup_policy;
}

std::optional<std::string> write_cleanup_policy(TopicSettings& settings, std::string_view value) {
  if (value != "delete") {
    return invalid_value("cleanup.policy", value, "only 'delete' is supported (no compaction yet)");
  }
  settings.cleanup_policy = std::string(value);
  return std::nullopt;
}

#define SLUICE_INTEGER_KEY(NAME, BROKER_NAME, MEMBER, MIN, MAX)          \
  ConfigKey {                                                            \
    NAME, BROKER_NAME, &read_integer<MEMBER>,                            \
        [](TopicSettings& settings, std::string_view value) {            \
          return write_integer<MEMBER, MIN, MAX>(NAME, settings, value); \
        }                                                                \
  }

// Kafka's ranges, narrowed where storage needs it (segment.bytes > 0, durations below 2^50 ms,
// a batch at least one header long).
const ConfigKey kKeys[] = {
    {"cleanup.policy", "log.cleanup.policy", &read_cleanup_policy, &write_cleanup_policy},
    SLUICE_INTEGER_KEY("flush.messages", "log.flush.interval.messages",
                       &storage::LogConfig::flush_messages, 1, kInt64Max),
    SLUICE_INTEGER_KEY("flush.ms", "log.flush.interval.ms", &storage::LogConfig::flush_ms, 0,
                       kDurationMsMax),
    SLUICE_INTEGER_KEY("max.message.bytes", "message.max.bytes",
                       &storage::LogConfig::max_batch_bytes, kBatchBytesMin, kBatchBytesMax),
    SLUICE_INTEGER_KEY("min.insync.replicas", "min.insync.replicas",
                       &TopicSettings::min_insync_replicas, 1, kInt32Max),
    SLUICE_INTEGER_KEY("retention.bytes", "log.retention.bytes",
                       &storage::LogConfig::retention_bytes, -1, kInt64Max),
    SLUICE_INTEGER_KEY("retention.ms", "log.retention.ms", &storage::LogConfig::retention_ms, -1,
                       kDurationMsMax),
    SLUICE_INTEGER_KEY("segment.bytes", "log.segment.bytes", &storage::LogConfig::segment_bytes, 14,
                       kInt32Max),
    SLUICE_INTEGER_KEY("segment.ms", "log.roll.ms", &storage::LogConfig::segment_ms, 1,
                       kDurationMsMax),
};

#undef SLUICE_INTEGER_KEY

}  // namespace

std::span<const ConfigKey> topic_config_keys() {
  return kKeys;
}

const ConfigKey* find_topic_config_key(std::string_view name) {
  for (const ConfigKey& key : kKeys) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

std::expected<TopicSettings, std::string> resolve_topic_settings(const TopicSettings& defaults,
                                                                 const ConfigMap& overrides) {
  TopicSettings settings = defaults;
  for (const auto& [name, value] : overrides) {
    const ConfigKey* key = find_topic_config_key(name);
    if (key == nullptr) return std::unexpected("Unknown topic config name: " + name);
    if (auto error = key->write(settings, value)) return std::unexpected(std::move(*error));
  }
  return settings;
}

std::vector<std::byte> encode_topic_configs(const ConfigMap& overrides) {
  assert(overrides.size() <= kConfigEntriesMax);
  Bytes body;
  ByteWriter writer(body);
  writer.u32(kConfigImageMagic);
  writer.u32(static_cast<std::uint32_t>(overrides.size()));
  for (const auto& [name, value] : overrides) {
    for (const std::string* text : {&name, &value}) {
      writer.u32(static_cast<std::uint32_t>(text->size()));
      writer.bytes(std::as_bytes(std::span(*text)));
    }
  }
  return storage::seal(std::move(body));
}

std::optional<ConfigMap> decode_topic_configs(std::span<const std::byte> image) {
  auto body = storage::unseal(image);
  if (!body) return std::nullopt;
  ByteReader reader(*body);
  if (reader.remaining() < 8 || reader.u32() != kConfigImageMagic) return std::nullopt;
  const std::uint32_t count = reader.u32();
  if (count > kConfigEntriesMax) return std::nullopt;
  ConfigMap overrides;
  for (std::uint32_t entry = 0; entry < count; ++entry) {
    std::string texts[2];
    for (std::string& text : texts) {
      if (reader.remaining() < 4) return std::nullopt;
      const std::uint32_t size = reader.u32();
      if (reader.remaining() < size) return std::nullopt;
      const auto bytes = reader.bytes(size);
      text.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }
    overrides.emplace(std::move(texts[0]), std::move(texts[1]));
  }
  if (reader.remaining() != 0) return std::nullopt;
  return overrides;
}

}  // namespace sluice::kafka
