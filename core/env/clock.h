#pragma once

#include <cstdint>

#include "core/env/time.h"

namespace sluice {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic: never goes backwards; the same clock the scheduler's deadlines use.
  virtual Instant now() const = 0;
  // Wall-clock milliseconds since the Unix epoch, for Kafka timestamps and retention.
  // May jump (NTP steps; skew and jumps injected by the simulator).
  virtual std::int64_t wall_ms() const = 0;
};

}  // namespace sluice
