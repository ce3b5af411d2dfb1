// sluice-sim: runs simulation scenarios from a seed (run), or many seeds in parallel (swarm).
// 2 = bad usage. Every run prints `seed=S trace=HEX` so a failure can be replayed bit for bit.

#include <CLI/CLI.hpp>

#include <unistd.h>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include "core/env/log.h"
#include "scenarios/scenario.h"
#include "scenarios/swarm.h"

namespace {

using namespace sluice;
using namespace sluice::scenarios;

int run_one(const ScenarioInfo& scenario, const ScenarioOptions& options) {
  ScenarioResult result = scenario.run(options);
  std::printf("scenario=%s seed=%" PRIu64 " trace=%016" PRIx64 " result=%s sim_s=%.1f %s\n",
              scenario.name, options.seed, result.trace_hash, result.ok() ? "ok" : "FAILED",
              result.simulated_seconds, result.summary.c_str());
  for (const auto& violation : result.violations)
    std::printf("  violation: %s\n", violation.c_str());
  if (!result.ok()) {
    std::string replay = "sluice-sim run --scenario " + std::string(scenario.name) + " --seed " +
                         std::to_string(options.seed);
    for (const auto& bug : options.bugs) replay += " --canary " + bug;
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
  run->add_option("--seed", options.seed, "seed: the whole run is a function of it")
      ->capture_default_str();
  run->add_option("--seeds", seed_count, "run this many consecutive seeds starting at --seed")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1000000}))
      ->capture_default_str();
  run->add_option("--canary,--bug", options.bugs,
                  "plant a canary bug (see `sluice-sim bugs`); repeatable");
  std::string trace_path;
  run->add_option("--trace", trace_path, "write every node's log (virtual-time stamped) to FILE");
  run->add_option(
      "--history", options.history_path,
      "Kafka scenarios: write the client history (JSON lines, see sluice-check) to FILE");
  run->add_option("--fault-seconds", fault_seconds,
                  "virtual seconds of faults before the quiet period")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  run->add_flag("--verbose", options.verbose, "print node logs");

  SwarmOptions swarm_options;
  std::string swarm_scenarios = "all";
  std::uint64_t swarm_seed_count = 100;
  std::uint64_t swarm_first_seed = 1;
  std::string seed_file;
  auto* swarm = app.add_subcommand(
      "swarm", "run many seeds over many scenarios, in parallel, with a summary");
  swarm->add_option("--scenarios", swarm_scenarios, "all, or a comma-separated list")
      ->capture_default_str();
  swarm->add_option("--seeds", swarm_seed_count, "seeds per scenario")
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{10000000}))
      ->capture_default_str();
  swarm->add_option("--first-seed", swarm_first_seed, "the first of the consecutive seeds")
      ->capture_default_str();
  swarm->add_option("--seed-file", seed_file,
                    "also run the seeds listed in FILE (one per line, # comments; e.g. "
                    "scenarios/regressions.txt)");
  swarm->add_option("--jobs", swarm_options.jobs, "worker processes")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  swarm->add_flag("--check-determinism", swarm_options.check_determinism,
                  "run every seed twice and compare trace hashes");
  swarm->add_flag("--json", swarm_options.json, "print the summary as JSON");
  swarm->add_option("--canary,--bug", swarm_options.bugs,
                    "plant a canary bug in every run; repeatable");
  swarm
      ->add_option("--fault-seconds", fault_seconds,
                   "virtual seconds of faults before the quiet period")
      ->check(CLI::Range(0.1, 3600.0));

  auto* list = app.add_subcommand("list", "list scenarios");
  auto* bugs = app.add_subcommand("bugs", "list the canary bugs that can be planted");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? 0 : 2;
  }

  if (list->parsed()) {
    for (const auto& scenario : all_scenarios())
      std::printf("%-20s %s\n", scenario.name, scenario.description);
    return 0;
  }
  if (bugs->parsed()) {
    for (const auto& bug : all_bugs())
      std::printf("%-28s %-16s %s\n", bug.name, bug.caught_by, bug.description);
    return 0;
  }

  for (const auto& bug : swarm->parsed() ? swarm_options.bugs : options.bugs) {
    bool known = false;
    for (const auto& info : all_bugs()) known = known || bug == info.name;
    if (!known) {
      std::fprintf(stderr, "sluice-sim: unknown canary '%s' (see `sluice-sim bugs`)\n",
                   bug.c_str());
      return 2;
    }
  }
  spdlog::set_pattern("%l %v");
  if (swarm->parsed()) {
    if (swarm_scenarios == "all") {
      for (const auto& info : all_scenarios()) swarm_options.scenarios.push_back(&info);
    } else {
      std::stringstream names(swarm_scenarios);
      for (std::string name; std::getline(names, name, ',');) {
        const ScenarioInfo* found = find_scenario(name);
        if (found == nullptr) {
          std::fprintf(stderr, "sluice-sim: unknown scenario '%s' (see `sluice-sim list`)\n",
                       name.c_str());
          return 2;
        }
        swarm_options.scenarios.push_back(found);
      }
    }
    for (std::uint64_t i = 0; i < swarm_seed_count; ++i)
      swarm_options.seeds.push_back(swarm_first_seed + i);
    if (!seed_file.empty()) {
      std::ifstream in(seed_file);
      if (!in) {
        std::fprintf(stderr, "sluice-sim: cannot read seed file '%s'\n", seed_file.c_str());
        return 2;
      }
      for (std::string line; std::getline(in, line);) {
        line = line.substr(0, line.find('#'));
        std::stringstream words(line);
        std::uint64_t seed = 0;
        if (words >> seed) swarm_options.seeds.push_back(seed);
      }
    }
    if (swarm_options.seeds.empty()) {
      std::fprintf(stderr, "sluice-sim: no seeds to run\n");
      return 2;
    }
    swarm_options.fault_duration = Duration(static_cast<std::int64_t>(fault_seconds * 1e9));
    swarm_options.progress = isatty(fileno(stderr)) != 0;
    set_log_level(LogLevel::off);
    return run_swarm(swarm_options) == 0 ? 0 : 1;
  }

  const ScenarioInfo* scenario = find_scenario(scenario_name);
  if (scenario == nullptr) {
    std::fprintf(stderr, "sluice-sim: unknown scenario '%s' (see `sluice-sim list`)\n",
                 scenario_name.c_str());
    return 2;
  }
  options.fault_duration = Duration(static_cast<std::int64_t>(fault_seconds * 1e9));
  // Node lines carry virtual time; the real wall-clock stamp would only be noise here.
  if (!trace_path.empty()) {
    try {
      spdlog::set_default_logger(spdlog::basic_logger_mt("trace", trace_path, true));
    } catch (const spdlog::spdlog_ex& error) {
      std::fprintf(stderr, "sluice-sim: cannot write trace file '%s': %s\n", trace_path.c_str(),
                   error.what());
      return 2;
    }
    spdlog::set_pattern("%l %v");
  }
  set_log_level(options.verbose || !trace_path.empty() ? LogLevel::info : LogLevel::off);
  if (!options.history_path.empty() && seed_count > 1) {
    std::fprintf(stderr, "sluice-sim: --history needs a single seed\n");
    return 2;
  }

  int failures = 0;
  const std::uint64_t first_seed = options.seed;
  for (std::uint64_t i = 0; i < seed_count; ++i) {
    options.seed = first_seed + i;
    failures += run_one(*scenario, options);
  }
  if (seed_count > 1) {
    std::printf("%" PRIu64 " seeds: %" PRIu64 " passed, %d failed\n", seed_count,
                seed_count - failures, failures);
  }
  return failures == 0 ? 0 : 1;
}
