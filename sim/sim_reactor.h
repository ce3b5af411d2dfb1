#pragma once
// Virtual time for the simulator: when no fiber is runnable, time jumps to the next timer.

#include "core/env/reactor.h"

namespace sluice::sim {

class SimReactor final : public Reactor {
 public:
  Instant now() const override { return now_; }
  bool wait(std::optional<Instant> next_timer) override {
    if (!next_timer) return false;  // nothing can ever happen again
    if (*next_timer > now_) now_ = *next_timer;
    return true;
  }

 private:
  Instant now_{Duration(0)};
};

}  // namespace sluice::sim
