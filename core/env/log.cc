#include "core/env/log.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/env/clock.h"

namespace sluice {

namespace {

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::trace: return spdlog::level::trace;
    case LogLevel::debug: return spdlog::level::debug;
    case LogLevel::info: return spdlog::level::info;
    case LogLevel::warn: return spdlog::level::warn;
    case LogLevel::error: return spdlog::level::err;
    case LogLevel::off: return spdlog::level::off;
  }
  return spdlog::level::info;
}

LogLevel g_level = LogLevel::info;
LogFormat g_format = LogFormat::text;

// The length of the valid UTF-8 sequence at text[i], or 0 when it is not one.
std::size_t utf8_sequence(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t at) { return static_cast<unsigned char>(text[at]); };
  const unsigned char lead = byte(i);
  std::size_t length = 0;
  unsigned min_second = 0x80;
  unsigned max_second = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) min_second = 0xA0;  // no overlong forms
    if (lead == 0xED) max_second = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) min_second = 0x90;
    if (lead == 0xF4) max_second = 0x8F;  // nothing past U+10FFFF
  } else {
    return 0;
  }
  if (i + length > text.size() || byte(i + 1) < min_second || byte(i + 1) > max_second) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

// Appends `text` as the inside of a JSON string; bytes that are not UTF-8 become U+FFFD (client
// ids and topic names arrive from the network).
void append_json_escaped(std::string& out, std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (static_cast<unsigned char>(c) >= 0x80) {
      const std::size_t length = utf8_sequence(text, i);
      if (length == 0) {
        out += "\\ufffd";
      } else {
        out.append(text.substr(i, length));
        i += length - 1;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out += c;
        }
    }
  }
}

bool is_key_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

// The JSON members after time and level: node, component, (virtual) t, message, key=value words.
std::string json_members(std::string_view node, std::string_view component, const double* seconds,
                         std::string_view message) {
  std::string out;
  out.reserve(message.size() + 64);
  out += "\"node\":\"";
  append_json_escaped(out, node);
  out += "\"";
  if (!component.empty()) {
    out += ",\"component\":\"";
    append_json_escaped(out, component);
    out += "\"";
  }
  if (seconds != nullptr) out += fmt::format(",\"t\":{:.6f}", *seconds);
  out += ",\"message\":\"";
  append_json_escaped(out, message);
  out += "\"";
  // `key=value` words (key: [a-z0-9_]+ starting with a letter; value up to the next space). A key
  // given twice keeps its first value: JSON objects must not repeat a name.
  std::vector<std::string_view> keys;
  std::size_t position = 0;
  while (position < message.size()) {
    const std::size_t end = std::min(message.find(' ', position), message.size());
    const std::string_view word = message.substr(position, end - position);
    const std::size_t equals = word.find('=');
    if (equals != std::string_view::npos && equals > 0 && equals + 1 < word.size() && word[0] >= 'a' &&
        word[0] <= 'z' && std::all_of(word.begin(), word.begin() + static_cast<std::ptrdiff_t>(equals), is_key_char)) {
      const std::string_view key = word.substr(0, equals);
      const bool reserved = key == "node" || key == "component" || key == "message" || key == "time" ||
                            key == "level" || key == "t";
      if (!reserved && std::find(keys.begin(), keys.end(), key) == keys.end()) {
        keys.push_back(key);
        out += ",\"";
        out += key;
        out += "\":\"";
        append_json_escaped(out, word.substr(equals + 1));
        out += "\"";
      }
    }
    position = end + 1;
  }
  return out;
}

}  // namespace

bool parse_log_format(std::string_view text, LogFormat& format) {
  if (text == "text") {
    format = LogFormat::text;
    return true;
  }
  if (text == "json") {
    format = LogFormat::json;
    return true;
  }
  return false;
}

void set_log_format(LogFormat format) {
  g_format = format;
  if (format == LogFormat::json) {
    spdlog::set_pattern("{\"time\":\"%Y-%m-%dT%H:%M:%S.%eZ\",\"level\":\"%l\",%v}",
                        spdlog::pattern_time_type::utc);
  } else {
    spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  }
}

LogFormat log_format() { return g_format; }

bool parse_log_level(std::string_view text, LogLevel& level) {
  static constexpr std::pair<std::string_view, LogLevel> kNames[] = {
      {"trace", LogLevel::trace}, {"debug", LogLevel::debug}, {"info", LogLevel::info},
      {"warn", LogLevel::warn},   {"error", LogLevel::error}, {"off", LogLevel::off}};
  for (const auto& [name, value] : kNames) {
    if (name == text) {
      level = value;
      return true;
    }
  }
  return false;
}

void set_log_level(LogLevel level) {
  g_level = level;
  spdlog::set_level(to_spdlog(level));
}

LogLevel log_level() { return g_level; }

void Log::write(LogLevel level, std::string_view message) const {
  if (g_format == LogFormat::json) {
    double seconds = 0;
    if (clock_ != nullptr) seconds = static_cast<double>(clock_->now().time_since_epoch().count()) / 1e9;
    spdlog::log(to_spdlog(level), "{}", json_members(node_, component_, clock_ != nullptr ? &seconds : nullptr, message));
    return;
  }
  // Simulated nodes pass their clock so lines carry virtual time; the runtime passes none.
  if (clock_ == nullptr) {
    if (component_.empty()) {
      spdlog::log(to_spdlog(level), "[{}] {}", node_, message);
    } else {
      spdlog::log(to_spdlog(level), "[{}] [{}] {}", node_, component_, message);
    }
    return;
  }
  const double seconds = static_cast<double>(clock_->now().time_since_epoch().count()) / 1e9;
  if (component_.empty()) {
    spdlog::log(to_spdlog(level), "[{} t={:.6f}] {}", node_, seconds, message);
  } else {
    spdlog::log(to_spdlog(level), "[{} t={:.6f}] [{}] {}", node_, seconds, component_, message);
  }
}

}  // namespace sluice
