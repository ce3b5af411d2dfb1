// sluice-sim: runs simulation scenarios from a seed. Exit 0 = invariants held, 1 = a check failed,
// 2 = bad usage. Every run prints `seed=S trace=HEX` so a failure can be replayed bit for bit.

#include <CLI/CLI.hpp>

#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "core/env/log.h"
#include "scenarios/scenario.h"

namespace {

using namespace sluice;
using namespace sluice::scenarios;

int run_one(const ScenarioInfo& scenario, const ScenarioOptions& options) {
  ScenarioResult result = scenario.run(options);
  std::printf("scenario=%s seed=%" PRIu64 " trace=%016" PRIx64 " result=%s sim_s=%.1f %s\n", scenario.name,
              options.seed, result.trace_hash, result.ok() ? "ok" : "FAILED", result.simulated_seconds,
              result.summary.c_str());
  for (const auto& violation : result.violations) std::printf("  violation: %s\n", violation.c_str());
  if (!result.ok()) {
    std::string replay = "sluice-sim run --scenario " + std::string(scenario.name) + " --seed " +
                         std::to_string(options.seed);
    for (const auto& bug : options.bugs) replay += " --bug " + bug;
    std::printf("  replay: %s --verbose\n", replay.c_str());
  }
  std::fflush(stdout);
  return result.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sluice-sim: deterministic simulation of Sluice nodes under injected faults"};
  app.require_subcommand(1);

  ScenarioOptions options;
  std::string scenario_name;
  std::uint64_t seed_count = 1;
  double fault_seconds = 20;

  auto* run = app.add_subcommand("run", "run a scenario from a seed (or a range of seeds)");
  run->add_option("--scenario", scenario_name, "scenario name (see `sluice-sim list`)")->required();
  run->add_option("--seed", options.seed, "seed: the whole run is a function of it")->capture_default_str();
  run->add_option("--seeds", seed_count, "run this many consecutive seeds starting at --seed")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1000000}))
      ->capture_default_str();
  run->add_option("--bug", options.bugs, "plant a canary bug (see `sluice-sim bugs`); repeatable");
  run->add_option("--fault-seconds", fault_seconds, "virtual seconds of faults before the quiet period")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  run->add_flag("--verbose", options.verbose, "print node logs");

  auto* list = app.add_subcommand("list", "list scenarios");
  auto* bugs = app.add_subcommand("bugs", "list the canary bugs that can be planted");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? 0 : 2;
  }

  if (list->parsed()) {
    for (const auto& scenario : all_scenarios()) std::printf("%-20s %s\n", scenario.name, scenario.description);
    return 0;
  }
  if (bugs->parsed()) {
    for (const auto& bug : all_bugs()) std::printf("%-28s %-16s %s\n", bug.name, bug.caught_by, bug.description);
    return 0;
  }

  const ScenarioInfo* scenario = find_scenario(scenario_name);
  if (scenario == nullptr) {
    std::fprintf(stderr, "sluice-sim: unknown scenario '%s' (see `sluice-sim list`)\n", scenario_name.c_str());
    return 2;
  }
  for (const auto& bug : options.bugs) {
    bool known = false;
    for (const auto& info : all_bugs()) known = known || bug == info.name;
    if (!known) {
      std::fprintf(stderr, "sluice-sim: unknown bug '%s' (see `sluice-sim bugs`)\n", bug.c_str());
      return 2;
    }
  }
  options.fault_duration = Duration(static_cast<std::int64_t>(fault_seconds * 1e9));
  // Node lines carry virtual time; the real wall-clock stamp would only be noise here.
  spdlog::set_pattern("%l %v");
  set_log_level(options.verbose ? LogLevel::info : LogLevel::off);

  int failures = 0;
  const std::uint64_t first_seed = options.seed;
  for (std::uint64_t i = 0; i < seed_count; ++i) {
    options.seed = first_seed + i;
    failures += run_one(*scenario, options);
  }
  if (seed_count > 1) {
    std::printf("%" PRIu64 " seeds: %" PRIu64 " passed, %d failed\n", seed_count, seed_count - failures, failures);
  }
  return failures == 0 ? 0 : 1;
}
