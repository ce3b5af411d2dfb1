#pragma once
// Env: everything a node's broker code may use from the world. Built by the simulator (one per
// simulated node) or by the runtime (one per process). core/ reaches the world only through it.

#include <string>

#include "core/env/buggify.h"
#include "core/env/clock.h"
#include "core/env/disk.h"
#include "core/env/log.h"
#include "core/env/metrics.h"
#include "core/env/net.h"
#include "core/env/random.h"
#include "core/env/scheduler.h"

namespace sluice {

class Env {
 public:
  Env(Scheduler& scheduler, Clock& clock, Net& net, Disk& disk, Random& random, Buggify& buggify,
      Log log)
      : scheduler_(scheduler), clock_(clock), net_(net), disk_(disk), random_(random),
        buggify_(buggify), log_(std::move(log)) {}

  Scheduler& scheduler() const { return scheduler_; }
  Clock& clock() const { return clock_; }
  Net& net() const { return net_; }
  Disk& disk() const { return disk_; }
  Random& random() const { return random_; }
  const Log& log() const { return log_; }
  // The node's counters (metrics.h); counted by core/, read by the admin API and tests.
  Metrics& metrics() const { return metrics_; }
  // Rare-path behaviour on demand in simulation; always false in the runtime.
  bool buggify(std::string_view site) const { return buggify_.fire(site); }
  // A planted canary bug (simulation only).
  bool bug(std::string_view name) const { return buggify_.bug(name); }

  Instant now() const { return clock_.now(); }
  Instant deadline_after(Duration duration) const { return add_saturating(clock_.now(), duration); }

 private:
  Scheduler& scheduler_;
  Clock& clock_;
  Net& net_;
  Disk& disk_;
  Random& random_;
  Buggify& buggify_;
  Log log_;
  mutable Metrics metrics_;
};

}  // namespace sluice
