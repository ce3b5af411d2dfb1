#pragma once
// The one seam between the shared fiber scheduler and a world. The simulator's reactor jumps
// virtual time to the next timer; the runtime's reactor sleeps in epoll_wait until IO or a timer.

#include <optional>

#include "core/env/time.h"

namespace sluice {

class Reactor {
 public:
  virtual ~Reactor() = default;

  // Monotonic now; never goes backwards.
  virtual Instant now() const = 0;

  // Called by the scheduler when no fiber is runnable. Waits (or, in the simulator, advances time)
  // until `next_timer` or until outside events have woken fibers, whichever comes first.
  // Returns false when nothing can ever happen again: no timer, and no outside source of events.
  virtual bool wait(std::optional<Instant> next_timer) = 0;
};

}  // namespace sluice
