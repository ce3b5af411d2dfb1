#pragma once
// SimWorld: one deterministic simulated cluster. It owns the virtual-time reactor, the one
// Scheduler, the root Random (split into named sub-streams per component), Buggify, the network
// and the nodes. A node is a host name, a `main` function and the state that outlives its process:
// its SimDisk and SimClock. Each incarnation of a node runs `main(env)` in a fresh root Scope;
// crash() destroys that scope (unwinding all its fibers synchronously), resets the host's
// connections and loses the disk's unsynced state.
//
// Determinism: everything random comes from Random(seed) forks; the same seed and the same
// calls give the same trace_hash().

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/env/buggify.h"
#include "core/env/env.h"
#include "core/env/random.h"
#include "core/env/scheduler.h"
#include "sim/sim_clock.h"
#include "sim/sim_disk.h"
#include "sim/sim_net.h"
#include "sim/sim_reactor.h"

namespace sluice::sim {

using NodeId = std::size_t;

struct SimWorldOptions {
  SimNetworkOptions network;
  SimNetworkFaults network_faults;
  SimDiskFaults disk_faults;
  std::size_t nodes_max = 64;
};

// Swarm testing: which fault kinds a seed turns on, and how hard. A data struct only; scenarios
// decide how to apply it.
struct SwarmConfig {
  bool latency_spikes = false;
  double latency_spike_probability = 0.0;
  Duration latency_spike_mean{};

  bool partitions = false;
  Duration partition_interval_mean{};  // time between partition events
  Duration partition_duration_mean{};

  bool resets = false;
  double reset_probability_per_write = 0.0;

  bool refused_connects = false;
  double refuse_probability_per_connect = 0.0;

  bool clogs = false;
  Duration clog_interval_mean{};
  Duration clog_duration_mean{};

  bool disk_read_errors = false;
  double disk_read_error_probability = 0.0;

  bool disk_latency = false;
  Duration disk_latency_mean{};

  bool crashes = false;
  Duration crash_interval_mean{};

  bool pauses = false;
  Duration pause_interval_mean{};
  Duration pause_duration_mean{};

  bool clock_skew = false;
  std::int64_t clock_skew_ms_max = 0;

  static SwarmConfig from_seed(std::uint64_t seed);
};

class SimWorld {
 public:
  explicit SimWorld(std::uint64_t seed, SimWorldOptions options = {});
  ~SimWorld();
  SimWorld(const SimWorld&) = delete;
  SimWorld& operator=(const SimWorld&) = delete;

  // Registers a node and starts its first incarnation: fiber "<host>/main" runs main(env).
  NodeId add_node(std::string host, std::function<void(Env&)> main);
  // Kills the node's process: unwinds its fibers, resets its connections, loses unsynced disk
  // state. Must not be called from one of the node's own fibers.
  void crash(NodeId node);
  // Starts a new incarnation from the durable disk image. The node must be down.
  void restart(NodeId node);
  // A stall (GC pause, SIGSTOP): the node's fibers do not run; timers and the network go on.
  void pause(NodeId node);
  void resume(NodeId node);
  bool is_up(NodeId node) const;
  bool is_paused(NodeId node) const;
  std::size_t node_count() const { return nodes_.size(); }
  const std::string& host(NodeId node) const;

  // A scope for fibers that belong to no node (test drivers, fault schedulers, checkers).
  Scope& control_scope() { return *control_scope_; }

  Scheduler& scheduler() { return scheduler_; }
  SimNetwork& network() { return *network_; }
  SimDisk& disk(NodeId node);
  SimClock& clock(NodeId node);
  // The current incarnation's Env; the node must be up.
  Env& env(NodeId node);
  Random& random() { return random_; }
  Buggify& buggify() { return buggify_; }
  Instant now() const { return reactor_.now(); }
  std::uint64_t seed() const { return seed_; }
  std::uint64_t trace_hash() const { return scheduler_.trace_hash(); }

  void run_until(Instant until) { scheduler_.run_until_time(until); }
  void run_for(Duration duration) { run_until(add_saturating(now(), duration)); }
  // Returns done(); false if the world went idle or stop() was called first.
  bool run_until(const std::function<bool()>& done) { return scheduler_.run_until(done); }

 private:
  struct Node;
  Node& node_at(NodeId node);
  const Node& node_at(NodeId node) const;
  void start_incarnation(Node& node);

  std::uint64_t seed_;
  SimWorldOptions options_;
  SimReactor reactor_;
  Scheduler scheduler_;
  Random random_;
  Random crash_random_;
  Buggify buggify_;
  std::unique_ptr<SimNetwork> network_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::unique_ptr<Scope> control_scope_;
};

}  // namespace sluice::sim
