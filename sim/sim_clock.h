#pragma once
// A node's clocks in the simulator. Monotonic time is the scheduler's virtual time, shared by every
// node (so deadlines computed on one node mean the same instant everywhere). Wall time is a fixed
// epoch plus virtual time plus this node's skew and jumps, so it can disagree between nodes and
// step backwards, as NTP can, while monotonic time never does.

#include <cstdint>

#include "core/env/clock.h"
#include "core/env/scheduler.h"

namespace sluice::sim {

class SimClock final : public Clock {
 public:
  // 2023-11-14T22:13:20Z: a plausible present, so Kafka timestamps look real in logs.
  static constexpr std::int64_t kWallEpochMs = 1'700'000'000'000;

  explicit SimClock(const Scheduler& scheduler) : scheduler_(scheduler) {}

  Instant now() const override { return scheduler_.now(); }
  std::int64_t wall_ms() const override;

  // A steady offset of this node's wall clock from the true (virtual) time.
  void set_skew_ms(std::int64_t skew_ms) { skew_ms_ = skew_ms; }
  std::int64_t skew_ms() const { return skew_ms_; }
  // A one-off step of the wall clock (positive or negative), like an NTP step; accumulates.
  void jump_ms(std::int64_t delta_ms) { jumped_ms_ += delta_ms; }
  std::int64_t jumped_ms() const { return jumped_ms_; }

 private:
  const Scheduler& scheduler_;
  std::int64_t skew_ms_ = 0;
  std::int64_t jumped_ms_ = 0;
};

}  // namespace sluice::sim
