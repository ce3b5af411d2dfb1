#include "sim/sim_clock.h"

#include <chrono>

namespace sluice::sim {

std::int64_t SimClock::wall_ms() const {
  const auto virtual_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now().time_since_epoch()).count();
  return kWallEpochMs + virtual_ms + skew_ms_ + jumped_ms_;
}

}  // namespace sluice::sim
