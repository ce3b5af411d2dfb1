#include "scenarios/swarm.h"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <sstream>

namespace sluice::scenarios {

namespace {

struct Job {
  const ScenarioInfo* scenario = nullptr;
  std::uint64_t seed = 0;
};

// One finished run, as a worker reports it on its pipe: one line, tab-separated.
struct Outcome {
  std::size_t job = 0;
  bool ok = true;
  bool deterministic = true;
  std::uint64_t trace = 0;
  double simulated_seconds = 0;
  double wall_seconds = 0;
  std::string first_violation;
};

std::string escape_line(std::string text) {
  for (char& c : text) {
    if (c == '\t' || c == '\n') c = ' ';
  }
  return text;
}

Outcome run_job(const Job& job, std::size_t index, const SwarmOptions& options) {
  ScenarioOptions run;
  run.seed = job.seed;
  run.bugs = options.bugs;
  run.fault_duration = options.fault_duration;
  const auto started = std::chrono::steady_clock::now();
  const ScenarioResult result = job.scenario->run(run);
  Outcome outcome;
  outcome.job = index;
  outcome.ok = result.ok();
  outcome.trace = result.trace_hash;
  outcome.simulated_seconds = result.simulated_seconds;
  if (!result.ok()) outcome.first_violation = result.violations.front();
  if (options.check_determinism) {
    const ScenarioResult again = job.scenario->run(run);
    outcome.deterministic = again.trace_hash == result.trace_hash;
  }
  outcome.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return outcome;
}

std::string serialize(const Outcome& outcome) {
  char line[256];
  std::snprintf(line, sizeof line, "%zu\t%d\t%d\t%016" PRIx64 "\t%.3f\t%.3f\t", outcome.job,
                outcome.ok ? 1 : 0, outcome.deterministic ? 1 : 0, outcome.trace,
                outcome.simulated_seconds, outcome.wall_seconds);
  return line + escape_line(outcome.first_violation) + "\n";
}

bool parse(const std::string& line, Outcome& outcome) {
  std::istringstream in(line);
  std::string field;
  std::vector<std::string> fields;
  while (std::getline(in, field, '\t')) fields.push_back(field);
  if (fields.size() < 6) return false;
  outcome.job = std::stoull(fields[0]);
  outcome.ok = fields[1] == "1";
  outcome.deterministic = fields[2] == "1";
  outcome.trace = std::stoull(fields[3], nullptr, 16);
  outcome.simulated_seconds = std::stod(fields[4]);
  outcome.wall_seconds = std::stod(fields[5]);
  outcome.first_violation = fields.size() > 6 ? fields[6] : "";
  return true;
}

struct Totals {
  std::uint64_t runs = 0, failed = 0, nondeterministic = 0;
  double simulated_seconds = 0, wall_seconds = 0;
};

std::string replay_command(const Job& job, const SwarmOptions& options) {
  std::string command = "sluice-sim run --scenario " + std::string(job.scenario->name) +
                        " --seed " + std::to_string(job.seed);
  for (const auto& bug : options.bugs) command += " --canary " + bug;
  return command;
}

}  // namespace

int run_swarm(const SwarmOptions& options) {
  std::vector<Job> jobs;
  for (const ScenarioInfo* scenario : options.scenarios) {
    for (std::uint64_t seed : options.seeds) jobs.push_back({scenario, seed});
  }
  const int workers = std::max(1, std::min<int>(options.jobs, static_cast<int>(jobs.size())));
  std::vector<int> pipes;
  std::vector<pid_t> children;
  std::fflush(stdout);
  std::fflush(stderr);
  for (int worker = 0; worker < workers; ++worker) {
    int fds[2];
    if (pipe(fds) != 0) {
      std::perror("sluice-sim swarm: pipe");
      return static_cast<int>(jobs.size());
    }
    const pid_t child = fork();
    if (child < 0) {
      std::perror("sluice-sim swarm: fork");
      return static_cast<int>(jobs.size());
    }
    if (child == 0) {
      close(fds[0]);
      for (std::size_t index = static_cast<std::size_t>(worker); index < jobs.size();
           index += static_cast<std::size_t>(workers)) {
        const std::string line = serialize(run_job(jobs[index], index, options));
        if (write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(3);
      }
      _exit(0);
    }
    close(fds[1]);
    pipes.push_back(fds[0]);
    children.push_back(child);
  }

  const auto started = std::chrono::steady_clock::now();
  std::map<std::string, Totals> per_scenario;
  Totals all;
  std::vector<std::string> buffers(pipes.size());
  std::size_t open_pipes = pipes.size();
  std::vector<bool> reported(jobs.size(), false);
  auto report = [&](const Outcome& outcome) {
    const Job& job = jobs.at(outcome.job);
    reported.at(outcome.job) = true;
    Totals& totals = per_scenario[job.scenario->name];
    for (Totals* t : {&totals, &all}) {
      t->runs++;
      t->simulated_seconds += outcome.simulated_seconds;
      t->wall_seconds += outcome.wall_seconds;
      if (!outcome.ok) t->failed++;
      if (!outcome.deterministic) t->nondeterministic++;
    }
    if (!outcome.ok || !outcome.deterministic) {
      if (options.progress) std::fprintf(stderr, "\r\033[K");
      std::printf("FAILED scenario=%s seed=%" PRIu64 " trace=%016" PRIx64
                  ": %s\n  replay: %s --verbose\n",
                  job.scenario->name, job.seed, outcome.trace,
                  outcome.ok ? "not deterministic (the second run's trace differs)"
                             : outcome.first_violation.c_str(),
                  replay_command(job, options).c_str());
      std::fflush(stdout);
    }
    if (options.progress) {
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      std::fprintf(stderr, "\r[%" PRIu64 "/%zu] failed=%" PRIu64 " %.0fs", all.runs, jobs.size(),
                   all.failed + all.nondeterministic, elapsed);
    }
  };
  while (open_pipes > 0) {
    std::vector<pollfd> polled;
    for (int fd : pipes) polled.push_back({fd, POLLIN, 0});
    if (poll(polled.data(), polled.size(), -1) < 0) continue;
    for (std::size_t i = 0; i < polled.size(); ++i) {
      if (pipes[i] < 0 || (polled[i].revents & (POLLIN | POLLHUP)) == 0) continue;
      char chunk[4096];
      const ssize_t got = read(pipes[i], chunk, sizeof chunk);
      if (got <= 0) {
        close(pipes[i]);
        pipes[i] = -1;
        open_pipes--;
        continue;
      }
      buffers[i].append(chunk, static_cast<std::size_t>(got));
      for (std::size_t newline; (newline = buffers[i].find('\n')) != std::string::npos;) {
        Outcome outcome;
        if (parse(buffers[i].substr(0, newline), outcome)) report(outcome);
        buffers[i].erase(0, newline + 1);
      }
    }
  }
  int crashed_workers = 0;
  if (options.progress) std::fprintf(stderr, "\r\033[K");
  for (std::size_t worker = 0; worker < children.size(); ++worker) {
    int status = 0;
    waitpid(children[worker], &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
    crashed_workers++;
    // A worker runs its jobs in order, so the one that killed it is its first unreported job.
    for (std::size_t index = worker; index < jobs.size(); index += children.size()) {
      if (reported[index]) continue;
      const Job& job = jobs[index];
      const std::string how = WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                                  : "exit " + std::to_string(WEXITSTATUS(status));
      std::printf("CRASHED scenario=%s seed=%" PRIu64
                  ": the run aborted (%s; its worker's later seeds did not run)\n  replay: %s "
                  "--verbose\n",
                  job.scenario->name, job.seed, how.c_str(), replay_command(job, options).c_str());
      break;
    }
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const std::uint64_t missing = jobs.size() - all.runs;  // a worker crashed (an abort in a run)
  if (options.json) {
    std::printf("{\"runs\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"nondeterministic\":%" PRIu64
                ",\"missing\":%" PRIu64 ",\"wall_seconds\":%.3f,\"scenarios\":{",
                all.runs, all.failed, all.nondeterministic, missing, elapsed);
    bool first = true;
    for (const auto& [name, t] : per_scenario) {
      std::printf("%s\"%s\":{\"runs\":%" PRIu64 ",\"failed\":%" PRIu64
                  ",\"nondeterministic\":%" PRIu64
                  ",\"simulated_seconds\":%.1f,\"run_seconds\":%.3f}",
                  first ? "" : ",", name.c_str(), t.runs, t.failed, t.nondeterministic,
                  t.simulated_seconds, t.wall_seconds);
      first = false;
    }
    std::printf("}}\n");
  } else {
    std::printf("%-22s %6s %6s %8s %12s %14s\n", "SCENARIO", "RUNS", "FAILED", "NONDET",
                "SEEDS/MIN", "SIM_S/WALL_S");
    for (const auto& [name, t] : per_scenario) {
      const double wall = std::max(t.wall_seconds, 1e-9);
      std::printf("%-22s %6" PRIu64 " %6" PRIu64 " %8" PRIu64 " %12.0f %13.0fx\n", name.c_str(),
                  t.runs, t.failed, t.nondeterministic, static_cast<double>(t.runs) * 60.0 / wall,
                  t.simulated_seconds / wall);
    }
    std::printf(
        "%" PRIu64 " runs in %.1f s with %d job(s): %" PRIu64 " failed, %" PRIu64
        " nondeterministic%s\n",
        all.runs, elapsed, workers, all.failed, all.nondeterministic,
        missing > 0 ? (", " + std::to_string(missing) + " lost to a crashed worker").c_str() : "");
  }
  std::fflush(stdout);
  return static_cast<int>(all.failed + all.nondeterministic + missing) + crashed_workers;
}

}  // namespace sluice::scenarios
