#pragma once
// Time as broker code sees it: a monotonic Instant (nanoseconds since an arbitrary origin) and
// Durations. Nothing here reads a real clock; an Env's Clock supplies "now".

#include <chrono>
#include <cstdint>

namespace sluice {

using Duration = std::chrono::nanoseconds;

// A tag clock: only gives Instant its type. It has no now(); ask Env::clock() instead.
struct MonotonicClock {
  using duration = Duration;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<MonotonicClock, Duration>;
  static constexpr bool is_steady = true;
};

using Instant = MonotonicClock::time_point;

// A deadline that never expires.
inline constexpr Instant kNever = Instant::max();

inline constexpr Duration milliseconds(std::int64_t ms) { return std::chrono::milliseconds(ms); }
inline constexpr Duration microseconds(std::int64_t us) { return std::chrono::microseconds(us); }
inline constexpr Duration seconds(std::int64_t s) { return std::chrono::seconds(s); }

// Adds without overflowing past kNever (or below Instant::min() for negative deltas).
inline constexpr Instant add_saturating(Instant at, Duration delta) {
  const auto base = at.time_since_epoch().count();
  const auto step = delta.count();
  if (step >= 0 && base > Instant::max().time_since_epoch().count() - step) return kNever;
  if (step < 0 && base < Instant::min().time_since_epoch().count() - step) return Instant::min();
  return at + delta;
}

}  // namespace sluice
