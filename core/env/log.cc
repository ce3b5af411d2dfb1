#include "core/env/log.h"

#include <spdlog/spdlog.h>

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

}  // namespace

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
