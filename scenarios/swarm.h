#pragma once
// `sluice-sim swarm`: many seeds over many scenarios, in parallel worker processes (a seed's run
// is a pure function of the seed, so where it runs does not matter), with a progress line, a
// summary table (or JSON), and optionally every seed run twice to compare trace hashes.

#include <cstdint>
#include <string>
#include <vector>

#include "scenarios/scenario.h"

namespace sluice::scenarios {

struct SwarmOptions {
  std::vector<const ScenarioInfo*> scenarios;
  std::vector<std::uint64_t> seeds;  // every scenario runs every seed
  std::vector<std::string> bugs;
  Duration fault_duration = seconds(20);
  int jobs = 1;
  bool check_determinism = false;
  bool json = false;
  bool progress = true;  // a progress line on stderr
};

// Runs the swarm; prints failures as they come (with replay commands) and the summary at the end.
// Returns the number of failed runs (anomalies or nondeterminism).
int run_swarm(const SwarmOptions& options);

}  // namespace sluice::scenarios
