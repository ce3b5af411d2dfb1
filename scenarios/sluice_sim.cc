// sluice-sim: runs simulation scenarios from a seed (run), or many seeds in parallel (swarm).
// 2 = bad usage. Every run prints `seed=S trace=HEX` so a failure can be replayed bit for bit.
// `run --minimize` shrinks a failing seed's fault schedule (delta debugging) to a 1-minimal one
// that still fails; `run --schedule FILE` replays a schedule.

#include <CLI/CLI.hpp>

#include <unistd.h>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
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

// The replay command for a failing run (`extra`: more flags, e.g. `--schedule FILE`).
std::string replay_command(const ScenarioInfo& scenario, const ScenarioOptions& options,
                           const std::string& extra) {
  std::string replay = "sluice-sim run --scenario " + std::string(scenario.name) + " --seed " +
                       std::to_string(options.seed);
  for (const auto& bug : options.bugs) replay += " --canary " + bug;
  return replay + extra;
}

void print_result(const ScenarioInfo& scenario, const ScenarioOptions& options,
                  const ScenarioResult& result) {
  std::printf("scenario=%s seed=%" PRIu64 " trace=%016" PRIx64 " result=%s sim_s=%.1f %s\n",
              scenario.name, options.seed, result.trace_hash, result.ok() ? "ok" : "FAILED",
              result.simulated_seconds, result.summary.c_str());
  for (const auto& violation : result.violations)
    std::printf("  violation: %s\n", violation.c_str());
}

int run_one(const ScenarioInfo& scenario, const ScenarioOptions& options,
            const std::string& replay_extra) {
  ScenarioResult result = scenario.run(options);
  print_result(scenario, options, result);
  if (!result.ok())
    std::printf("  replay: %s --verbose\n",
                replay_command(scenario, options, replay_extra).c_str());
  std::fflush(stdout);
  return result.ok() ? 0 : 1;
}

// "lost-write: offset 3 ..." -> "lost-write": what --same-anomaly compares.
std::string anomaly_type(const std::string& violation) {
  return violation.substr(0, violation.find(':'));
}

bool has_anomaly(const ScenarioResult& result, const std::string& type) {
  for (const auto& violation : result.violations)
    if (anomaly_type(violation) == type) return true;
  return false;
}

struct MinimizeSettings {
  bool same_anomaly = false;
  std::uint64_t max_runs = 10000;
  std::string out_path;  // empty: minimal-<scenario>-<seed>.schedule
};

// Delta debugging (Zeller's ddmin) over the failing run's fault schedule: tries chunks and their
// complements, keeps any smaller schedule that still fails, refines the chunks until every event
// is its own chunk and removing any one makes the run pass (1-minimal).
int minimize(const ScenarioInfo& scenario, ScenarioOptions options,
             const MinimizeSettings& settings) {
  const ScenarioResult original = scenario.run(options);
  print_result(scenario, options, original);
  if (original.ok()) {
    std::printf("minimize: the seed passes; nothing to minimize\n");
    return 0;
  }
  const FaultSchedule full = original.fault_schedule;
  const std::string want = anomaly_type(original.violations.front());
  std::printf("minimize: %zu fault events; a candidate must fail%s\n", full.size(),
              settings.same_anomaly ? (" with " + want).c_str() : " (any anomaly)");

  std::uint64_t runs = 1;
  std::map<std::vector<std::size_t>, bool> tried;  // deterministic runs: cache by subset
  auto fails = [&](const std::vector<std::size_t>& subset) {
    if (auto it = tried.find(subset); it != tried.end()) return it->second;
    FaultSchedule schedule;
    for (std::size_t index : subset) schedule.push_back(full[index]);
    options.fault_schedule = std::move(schedule);
    const ScenarioResult result = scenario.run(options);
    ++runs;
    const bool failed = !result.ok() && (!settings.same_anomaly || has_anomaly(result, want));
    tried[subset] = failed;
    return failed;
  };

  std::vector<std::size_t> current(full.size());
  for (std::size_t i = 0; i < current.size(); ++i) current[i] = i;
  bool complete = true;
  if (!fails(current)) {
    std::printf(
        "minimize: replaying the recorded schedule passes, so the failure does not "
        "reproduce from the schedule alone; nothing to minimize\n");
    return 1;
  }
  if (fails({})) {
    current.clear();
  } else {
    std::size_t granularity = 2;
    while (current.size() >= 2) {
      if (runs >= settings.max_runs) {
        complete = false;
        break;
      }
      std::vector<std::vector<std::size_t>> chunks;
      for (std::size_t i = 0; i < granularity; ++i) {
        const std::size_t begin = current.size() * i / granularity;
        const std::size_t end = current.size() * (i + 1) / granularity;
        chunks.emplace_back(current.begin() + static_cast<std::ptrdiff_t>(begin),
                            current.begin() + static_cast<std::ptrdiff_t>(end));
      }
      bool reduced = false;
      for (const auto& chunk : chunks) {  // reduce to a chunk
        if (fails(chunk)) {
          current = chunk;
          granularity = 2;
          reduced = true;
          break;
        }
      }
      for (std::size_t i = 0; !reduced && i < chunks.size() && granularity > 2; ++i) {
        std::vector<std::size_t> complement;  // reduce to a complement
        for (std::size_t j = 0; j < chunks.size(); ++j) {
          if (j != i) complement.insert(complement.end(), chunks[j].begin(), chunks[j].end());
        }
        if (fails(complement)) {
          current = std::move(complement);
          granularity = std::max<std::size_t>(granularity - 1, 2);
          reduced = true;
        }
      }
      if (!reduced) {
        if (granularity >= current.size()) break;  // each event alone: 1-minimal
        granularity = std::min(current.size(), granularity * 2);
      }
      std::printf("minimize: runs=%" PRIu64 " events=%zu\n", runs, current.size());
      std::fflush(stdout);
    }
  }

  FaultSchedule minimal;
  for (std::size_t index : current) minimal.push_back(full[index]);
  std::printf("minimize: %zu of %zu fault events still fail (%" PRIu64 " runs%s)\n", minimal.size(),
              full.size(), runs,
              complete ? ", 1-minimal" : "; stopped at --max-runs, not yet 1-minimal");
  if (minimal.empty())
    std::printf("  (no fault is needed: the run fails without any injected fault)\n");
  for (const auto& event : minimal) std::printf("  %s\n", format_fault_event(event).c_str());

  const std::string path = settings.out_path.empty()
                               ? "minimal-" + std::string(scenario.name) + "-" +
                                     std::to_string(options.seed) + ".schedule"
                               : settings.out_path;
  std::string canaries;
  for (const auto& bug : options.bugs) canaries += " canary=" + bug;
  std::ofstream out(path);
  out << format_fault_schedule(
      minimal,
      {"sluice-sim fault schedule: scenario=" + std::string(scenario.name) +
           " seed=" + std::to_string(options.seed) + canaries,
       "minimized from " + std::to_string(full.size()) + " events in " + std::to_string(runs) +
           " runs; first violation: " + original.violations.front()});
  if (!out) {
    std::fprintf(stderr, "sluice-sim: cannot write schedule file '%s'\n", path.c_str());
    return 2;
  }
  std::printf("  wrote %s\n", path.c_str());
  std::printf("  replay: %s\n", replay_command(scenario, options, " --schedule " + path).c_str());
  std::fflush(stdout);
  return 1;
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
  std::string log_level_text = "info";
  run->add_option("--log-level", log_level_text,
                  "--verbose/--trace: the lowest level logged (trace, debug, info, warn, error)")
      ->check([](const std::string& text) {
        LogLevel level;
        return parse_log_level(text, level) ? std::string() : "not a log level: " + text;
      })
      ->capture_default_str();
  std::string schedule_path;
  run->add_option("--schedule", schedule_path,
                  "inject exactly the faults in FILE (a schedule, see docs/simulation.md) instead "
                  "of drawing them from the seed");
  bool minimize_flag = false;
  MinimizeSettings minimize_settings;
  run->add_flag("--minimize", minimize_flag,
                "on failure, shrink the fault schedule to a 1-minimal one that still fails, "
                "print it and write it to a file (exit 1; 0 if the seed passes)");
  run->add_option("--minimize-out", minimize_settings.out_path,
                  "--minimize: the schedule file (default minimal-<scenario>-<seed>.schedule)");
  run->add_flag("--same-anomaly", minimize_settings.same_anomaly,
                "--minimize: a candidate must fail with the original's first anomaly type");
  run->add_option("--max-runs", minimize_settings.max_runs,
                  "--minimize: stop after this many runs (the result may not be 1-minimal)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{100000000}))
      ->capture_default_str();

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
  LogLevel verbose_level = LogLevel::info;
  parse_log_level(log_level_text, verbose_level);
  set_log_level(options.verbose || !trace_path.empty() ? verbose_level : LogLevel::off);
  if (!options.history_path.empty() && seed_count > 1) {
    std::fprintf(stderr, "sluice-sim: --history needs a single seed\n");
    return 2;
  }

  std::string replay_extra;
  if (!schedule_path.empty()) {
    std::ifstream in(schedule_path);
    if (!in) {
      std::fprintf(stderr, "sluice-sim: cannot read schedule file '%s'\n", schedule_path.c_str());
      return 2;
    }
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::string error;
    options.fault_schedule = parse_fault_schedule(text, error);
    if (!options.fault_schedule) {
      std::fprintf(stderr, "sluice-sim: %s: %s\n", schedule_path.c_str(), error.c_str());
      return 2;
    }
    replay_extra = " --schedule " + schedule_path;
  }
  if (minimize_flag) {
    if (seed_count > 1 || !options.history_path.empty() || !trace_path.empty()) {
      std::fprintf(stderr, "sluice-sim: --minimize takes one seed, without --history or --trace\n");
      return 2;
    }
    set_log_level(LogLevel::off);
    return minimize(*scenario, options, minimize_settings);
  }

  int failures = 0;
  const std::uint64_t first_seed = options.seed;
  for (std::uint64_t i = 0; i < seed_count; ++i) {
    options.seed = first_seed + i;
    failures += run_one(*scenario, options, replay_extra);
  }
  if (seed_count > 1) {
    std::printf("%" PRIu64 " seeds: %" PRIu64 " passed, %d failed\n", seed_count,
                seed_count - failures, failures);
  }
  return failures == 0 ? 0 : 1;
}
