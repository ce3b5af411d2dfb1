#pragma once
// The one logging header of core/: a thin facade over spdlog that prefixes every line with the
// node and, when given a clock (the simulator's), its virtual time. Formatting happens only when the
// level is enabled.

#include <fmt/core.h>

#include <string>
#include <string_view>
#include <utility>

namespace sluice {

class Clock;

enum class LogLevel : int { trace = 0, debug, info, warn, error, off };

// Parses "trace|debug|info|warn|error|off"; false on anything else.
bool parse_log_level(std::string_view text, LogLevel& level);
void set_log_level(LogLevel level);
LogLevel log_level();

// How a line looks. text: `[time] [level] [node] [component] message`. json: one object per line,
// {"time" (UTC), "level", "node", "component", "message", then every `key=value` word of the
// message as a field of its own}, for log shippers. Messages name their key facts `key=value`.
enum class LogFormat : int { text, json };
// Parses "text|json"; false on anything else.
bool parse_log_format(std::string_view text, LogFormat& format);
// Sets the format for every line from now on (the process's spdlog pattern).
void set_log_format(LogFormat format);
LogFormat log_format();

class Log {
 public:
  Log(std::string node, const Clock* clock, std::string component = "")
      : node_(std::move(node)), clock_(clock), component_(std::move(component)) {}

  Log with_component(std::string component) const { return Log(node_, clock_, std::move(component)); }

  static bool enabled(LogLevel level) { return level >= log_level(); }

  template <typename... Args>
  void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) const {
    if (!enabled(level)) return;
    write(level, fmt::format(format, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void trace(fmt::format_string<Args...> format, Args&&... args) const {
    log(LogLevel::trace, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void debug(fmt::format_string<Args...> format, Args&&... args) const {
    log(LogLevel::debug, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void info(fmt::format_string<Args...> format, Args&&... args) const {
    log(LogLevel::info, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void warn(fmt::format_string<Args...> format, Args&&... args) const {
    log(LogLevel::warn, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void error(fmt::format_string<Args...> format, Args&&... args) const {
    log(LogLevel::error, format, std::forward<Args>(args)...);
  }

  void write(LogLevel level, std::string_view message) const;

 private:
  std::string node_;
  const Clock* clock_;
  std::string component_;
};

}  // namespace sluice
