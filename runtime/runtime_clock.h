#pragma once
// The real clocks: CLOCK_MONOTONIC for deadlines (the same clock the EpollReactor reads, so
// deadlines and timers agree) and the system clock for Kafka timestamps.

#include <chrono>
#include <cstdint>

#include "core/env/clock.h"
#include "runtime/epoll_reactor.h"

namespace sluice::runtime {

class RuntimeClock final : public Clock {
 public:
  Instant now() const override { return monotonic_now(); }
  std::int64_t wall_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace sluice::runtime
