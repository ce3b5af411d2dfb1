#pragma once
// The fault driver shared by the scenarios: a fiber that belongs to no node and, until `stop_at`,
// crashes (and restarts), pauses (and resumes), partitions and clogs a server node, jumps its
// wall clock, and (when asked) flips bits of its durable disk data. Which kinds it injects, and
// how often, comes from the seed's swarm configuration plus what the scenario forces on.
// Every fault it injects is recorded as a FaultEvent; given an explicit schedule instead, it
// injects exactly those events at those times and draws nothing from its Random.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "scenarios/fault_schedule.h"
#include "sim/world.h"

namespace sluice::scenarios {

struct FaultPlan {
  sim::NodeId server{};
  std::string server_host = "server";
  std::vector<std::string> client_hosts;  // victims of one-way partitions and clogs
  // Kinds on regardless of the swarm (a scenario's theme); the swarm may add the others.
  bool force_crashes = false;
  bool force_partitions = false;
  bool force_clock_jumps = false;
  bool bit_flips = false;                // never from the swarm: only scenarios that expect them
  // Graceful stops (FaultKind::stop), never from the swarm: `graceful_stop` asks the server to
  // drain and stop as on SIGTERM and returns once it has (false: it could not, e.g. never started).
  // The driver then takes the node down (losing whatever a clean stop failed to sync) and starts
  // it again after the event's duration.
  bool graceful_stops = false;
  std::function<bool()> graceful_stop;
  bool swarm_kinds = true;               // also inject what the seed's swarm enables
  std::string random_stream = "faults";  // the name its Random is forked under
};

struct FaultCounts {
  std::uint64_t crashes = 0;
  std::uint64_t pauses = 0;
  std::uint64_t partitions = 0;
  std::uint64_t clogs = 0;
  std::uint64_t clock_jumps = 0;
  std::uint64_t bit_flips = 0;
  std::uint64_t stops = 0;
  std::string summary() const;
};

// Runs in the calling fiber until `stop_at`; leaves the server up (restarts it if it crashed).
// `replay`: inject exactly these events (sorted by `at`; events at or past `stop_at` are dropped)
// instead of drawing faults from the seed. `injected`: when not null, receives every event that
// took effect (a crash of a node that is already down, or a bit flip of a file that no longer
// exists, does not), in the order injected.
void run_faults(sim::SimWorld& world, const sim::SwarmConfig& swarm, const FaultPlan& plan,
                Instant stop_at, FaultCounts& counts,
                const std::optional<FaultSchedule>& replay = std::nullopt,
                FaultSchedule* injected = nullptr);

}  // namespace sluice::scenarios
