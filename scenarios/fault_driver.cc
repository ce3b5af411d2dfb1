#include "scenarios/fault_driver.h"

#include <algorithm>
#include <charconv>
#include <sstream>

namespace sluice::scenarios {

std::string FaultCounts::summary() const {
  return "crashes=" + std::to_string(crashes) + " pauses=" + std::to_string(pauses) +
         " partitions=" + std::to_string(partitions) + " clogs=" + std::to_string(clogs) +
         " clock_jumps=" + std::to_string(clock_jumps) + " bit_flips=" + std::to_string(bit_flips) +
         (stops > 0 ? " stops=" + std::to_string(stops) : "");
}

// ---- The schedule file format (see fault_schedule.h) ----

const char* fault_kind_name(FaultKind kind) {
  switch (kind) {
    case FaultKind::crash:
      return "crash";
    case FaultKind::pause:
      return "pause";
    case FaultKind::partition:
      return "partition";
    case FaultKind::isolate:
      return "isolate";
    case FaultKind::clog:
      return "clog";
    case FaultKind::clock_jump:
      return "clock_jump";
    case FaultKind::bit_flip:
      return "bit_flip";
    case FaultKind::stop:
      return "stop";
  }
  return "?";
}

namespace {

bool has_duration(FaultKind kind) {
  return kind != FaultKind::clock_jump && kind != FaultKind::bit_flip;
}

// Exact nanoseconds as a decimal number of seconds with 9 fractional digits.
std::string format_seconds(Duration duration) {
  std::int64_t ns = duration.count();
  std::string sign;
  if (ns < 0) {
    sign = "-";
    ns = -ns;
  }
  char fraction[16];
  std::snprintf(fraction, sizeof fraction, "%09lld", static_cast<long long>(ns % 1'000'000'000));
  return sign + std::to_string(ns / 1'000'000'000) + "." + fraction;
}

std::optional<Duration> parse_seconds(std::string_view text) {
  if (text.empty() || text[0] == '-') return std::nullopt;
  const std::size_t dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? "" : text.substr(dot + 1);
  if (whole.empty() || fraction.size() > 9) return std::nullopt;
  std::int64_t seconds_part = 0;
  auto [end, error] = std::from_chars(whole.data(), whole.data() + whole.size(), seconds_part);
  if (error != std::errc{} || end != whole.data() + whole.size()) return std::nullopt;
  if (seconds_part > 9'000'000'000) return std::nullopt;
  std::int64_t nanos = 0;
  for (std::size_t i = 0; i < 9; ++i) {
    char digit = '0';
    if (i < fraction.size()) {
      digit = fraction[i];
      if (digit < '0' || digit > '9') return std::nullopt;
    }
    nanos = nanos * 10 + (digit - '0');
  }
  return Duration(seconds_part * 1'000'000'000 + nanos);
}

template <typename Int>
bool parse_int(std::string_view text, Int& value) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return !text.empty() && error == std::errc{} && end == text.data() + text.size();
}

}  // namespace

std::string format_fault_event(const FaultEvent& event) {
  std::string line =
      "t=" + format_seconds(event.at) + " " + fault_kind_name(event.kind) + " " + event.host;
  if (event.kind == FaultKind::partition) line += " from=" + event.peer;
  if (has_duration(event.kind)) line += " for=" + format_seconds(event.duration);
  if (event.kind == FaultKind::clock_jump) line += " ms=" + std::to_string(event.jump_ms);
  if (event.kind == FaultKind::bit_flip) {
    line += " path=" + event.path + " byte=" + std::to_string(event.byte_offset) +
            " bit=" + std::to_string(event.bit);
  }
  return line;
}

std::optional<FaultEvent> parse_fault_event(const std::string& line, std::string& error) {
  std::istringstream words(line.substr(0, line.find('#')));
  std::string time, kind;
  FaultEvent event;
  if (!(words >> time >> kind >> event.host)) {
    error = "expected `t=SECONDS KIND HOST ...`";
    return std::nullopt;
  }
  const auto at =
      time.starts_with("t=") ? parse_seconds(std::string_view(time).substr(2)) : std::nullopt;
  if (!at) {
    error = "bad time '" + time + "' (want t=SECONDS)";
    return std::nullopt;
  }
  event.at = *at;
  bool known = false;
  for (FaultKind candidate :
       {FaultKind::crash, FaultKind::pause, FaultKind::partition, FaultKind::isolate,
        FaultKind::clog, FaultKind::clock_jump, FaultKind::bit_flip, FaultKind::stop}) {
    if (kind == fault_kind_name(candidate)) {
      event.kind = candidate;
      known = true;
    }
  }
  if (!known) {
    error = "unknown fault kind '" + kind + "'";
    return std::nullopt;
  }
  bool have_for = false, have_from = false, have_ms = false, have_path = false, have_byte = false,
       have_bit = false;
  for (std::string word; words >> word;) {
    const std::size_t equals = word.find('=');
    const std::string key = word.substr(0, equals);
    const std::string value = equals == std::string::npos ? "" : word.substr(equals + 1);
    bool ok = equals != std::string::npos && !value.empty();
    if (ok && key == "for" && has_duration(event.kind)) {
      const auto duration = parse_seconds(value);
      ok = duration.has_value();
      if (ok) event.duration = *duration;
      have_for = true;
    } else if (ok && key == "from" && event.kind == FaultKind::partition) {
      event.peer = value;
      have_from = true;
    } else if (ok && key == "ms" && event.kind == FaultKind::clock_jump) {
      ok = parse_int(value, event.jump_ms);
      have_ms = true;
    } else if (ok && key == "path" && event.kind == FaultKind::bit_flip) {
      event.path = value;
      have_path = true;
    } else if (ok && key == "byte" && event.kind == FaultKind::bit_flip) {
      ok = parse_int(value, event.byte_offset);
      have_byte = true;
    } else if (ok && key == "bit" && event.kind == FaultKind::bit_flip) {
      ok = parse_int(value, event.bit) && event.bit >= 0 && event.bit < 8;
      have_bit = true;
    } else {
      ok = false;
    }
    if (!ok) {
      error = "bad field '" + word + "' for " + kind;
      return std::nullopt;
    }
  }
  const bool complete = (!has_duration(event.kind) || have_for) &&
                        (event.kind != FaultKind::partition || have_from) &&
                        (event.kind != FaultKind::clock_jump || have_ms) &&
                        (event.kind != FaultKind::bit_flip || (have_path && have_byte && have_bit));
  if (!complete) {
    error = "missing fields for " + kind;
    return std::nullopt;
  }
  return event;
}

std::string format_fault_schedule(const FaultSchedule& schedule,
                                  const std::vector<std::string>& header) {
  std::string text;
  for (std::string line : header) {
    std::replace(line.begin(), line.end(), '\n', ' ');  // one comment line each
    text += "# " + line + "\n";
  }
  for (const auto& event : schedule) text += format_fault_event(event) + "\n";
  return text;
}

std::optional<FaultSchedule> parse_fault_schedule(const std::string& text, std::string& error) {
  FaultSchedule schedule;
  std::istringstream lines(text);
  int number = 0;
  for (std::string line; std::getline(lines, line);) {
    ++number;
    const std::string content = line.substr(0, line.find('#'));
    if (content.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string line_error;
    auto event = parse_fault_event(content, line_error);
    if (!event) {
      error = "line " + std::to_string(number) + ": " + line_error;
      return std::nullopt;
    }
    schedule.push_back(std::move(*event));
  }
  return schedule;
}

// ---- The driver ----

namespace {

// What the driver draws from (a partition may become an isolation).
enum class Drawn : std::uint8_t { crash, pause, partition, clog, clock_jump, bit_flip, stop };

std::vector<Drawn> kinds_of(const sim::SwarmConfig& swarm, const FaultPlan& plan) {
  std::vector<Drawn> kinds;
  if (plan.force_crashes || (plan.swarm_kinds && swarm.crashes)) kinds.push_back(Drawn::crash);
  if (plan.swarm_kinds && swarm.pauses) kinds.push_back(Drawn::pause);
  if (plan.force_partitions || (plan.swarm_kinds && swarm.partitions))
    kinds.push_back(Drawn::partition);
  if (plan.swarm_kinds && swarm.clogs) kinds.push_back(Drawn::clog);
  if (plan.force_clock_jumps || (plan.swarm_kinds && swarm.clock_skew))
    kinds.push_back(Drawn::clock_jump);
  if (plan.bit_flips) kinds.push_back(Drawn::bit_flip);
  if (plan.graceful_stops && plan.graceful_stop) kinds.push_back(Drawn::stop);
  return kinds;
}

class Injector {
 public:
  Injector(sim::SimWorld& world, const FaultPlan& plan, FaultCounts& counts,
           FaultSchedule* injected)
      : world_(world),
        plan_(plan),
        counts_(counts),
        injected_(injected),
        log_("faults", &world.clock(plan.server)),
        start_(world.now()) {}

  Instant start() const { return start_; }
  const Log& log() const { return log_; }

  // Injects one event now (sleeping through its duration where it has one). False when it
  // could not take effect.
  bool inject(FaultEvent event) {
    const sim::NodeId server = plan_.server;
    const bool on_server = event.host == plan_.server_host;
    event.at = world_.now() - start_;
    switch (event.kind) {
      case FaultKind::crash:
        if (!on_server || !world_.is_up(server)) return false;
        log_.info("crash {}", plan_.server_host);
        world_.crash(server);
        counts_.crashes++;
        record(event);
        this_fiber::sleep_for(event.duration);
        log_.info("restart {}", plan_.server_host);
        world_.restart(server);
        return true;
      case FaultKind::stop:
        if (!on_server || !world_.is_up(server) || world_.is_paused(server) || !plan_.graceful_stop)
          return false;
        log_.info("stop {} gracefully", plan_.server_host);
        record(event);
        counts_.stops++;
        if (!plan_.graceful_stop()) log_.info("{} did not stop gracefully", plan_.server_host);
        // Down as a stopped process is: what the stop did not make durable is gone.
        world_.crash(server);
        this_fiber::sleep_for(event.duration);
        log_.info("restart {}", plan_.server_host);
        world_.restart(server);
        return true;
      case FaultKind::pause:
        if (!on_server || !world_.is_up(server) || world_.is_paused(server)) return false;
        log_.info("pause {}", plan_.server_host);
        world_.pause(server);
        counts_.pauses++;
        record(event);
        this_fiber::sleep_for(event.duration);
        log_.info("resume {}", plan_.server_host);
        world_.resume(server);
        return true;
      case FaultKind::partition:
      case FaultKind::isolate:
        if (event.kind == FaultKind::partition) {
          log_.info("partition {} from {}", event.host, event.peer);
          world_.network().partition(event.host, event.peer);
        } else {
          log_.info("isolate {}", event.host);
          world_.network().isolate(event.host);
        }
        counts_.partitions++;
        record(event);
        this_fiber::sleep_for(event.duration);
        log_.info("heal network");
        world_.network().heal_all();
        return true;
      case FaultKind::clog:
        log_.info("clog {} for {} ms", event.host, event.duration.count() / 1'000'000);
        world_.network().clog(event.host, event.duration);
        counts_.clogs++;
        record(event);
        return true;
      case FaultKind::clock_jump:
        if (!on_server) return false;
        log_.info("{} wall clock jumps {} ms", plan_.server_host, event.jump_ms);
        world_.clock(server).jump_ms(event.jump_ms);
        counts_.clock_jumps++;
        record(event);
        return true;
      case FaultKind::bit_flip:
        if (!on_server || !world_.disk(server).flip_bit(event.path, event.byte_offset, event.bit))
          return false;
        log_.info("flipped a bit of {}", event.path);
        counts_.bit_flips++;
        record(event);
        return true;
    }
    return false;
  }

  // A bit flip drawn from the seed (the disk picks the file and bit), already applied.
  void flipped(const sim::BitFlip& flip) {
    FaultEvent event;
    event.at = world_.now() - start_;
    event.kind = FaultKind::bit_flip;
    event.host = plan_.server_host;
    event.path = flip.path;
    event.byte_offset = flip.byte_offset;
    event.bit = flip.bit;
    log_.info("flipped a bit of {}", flip.path);
    counts_.bit_flips++;
    record(event);
  }

 private:
  void record(const FaultEvent& event) {
    if (injected_ != nullptr) injected_->push_back(event);
  }

  sim::SimWorld& world_;
  const FaultPlan& plan_;
  FaultCounts& counts_;
  FaultSchedule* injected_;
  const Log log_;
  const Instant start_;
};

void replay_faults(Injector& injector, const sim::SimWorld& world, FaultSchedule schedule,
                   Instant stop_at) {
  std::stable_sort(schedule.begin(), schedule.end(),
                   [](const FaultEvent& a, const FaultEvent& b) { return a.at < b.at; });
  for (const FaultEvent& event : schedule) {
    const Instant when = injector.start() + event.at;
    if (when >= stop_at) break;
    if (world.now() < when) this_fiber::sleep_until(when);
    if (world.now() >= stop_at) break;
    if (!injector.inject(event))
      injector.log().info("skipped {} (it cannot take effect now)", format_fault_event(event));
  }
}

}  // namespace

void run_faults(sim::SimWorld& world, const sim::SwarmConfig& swarm, const FaultPlan& plan,
                Instant stop_at, FaultCounts& counts, const std::optional<FaultSchedule>& replay,
                FaultSchedule* injected) {
  Injector injector(world, plan, counts, injected);
  if (replay) {
    replay_faults(injector, world, *replay, stop_at);
    return;
  }
  Random random = world.random().fork(plan.random_stream);
  const sim::NodeId server = plan.server;
  const std::vector<Drawn> kinds = kinds_of(swarm, plan);
  if (kinds.empty()) return;
  const double interval_mean_s = 0.2 + random.uniform_double() * 2.0;
  const std::int64_t clock_jump_ms_max = swarm.clock_skew ? swarm.clock_skew_ms_max : 60'000;
  auto pick_duration = [&random](std::int64_t ms_min, std::int64_t ms_max) {
    return milliseconds(random.range(ms_min, ms_max));
  };
  while (world.now() < stop_at) {
    this_fiber::sleep_for(
        Duration(static_cast<std::int64_t>(random.exponential(interval_mean_s) * 1e9)));
    if (world.now() >= stop_at) break;
    const std::string victim = plan.client_hosts.empty()
                                   ? plan.server_host
                                   : plan.client_hosts[random.uniform(plan.client_hosts.size())];
    // Each case draws exactly what the driver always drew, in the same order, so a seed's
    // faults do not depend on whether they are recorded.
    FaultEvent event;
    event.host = plan.server_host;
    switch (kinds[random.uniform(kinds.size())]) {
      case Drawn::crash:
        if (!world.is_up(server)) break;
        event.kind = FaultKind::crash;
        event.duration = pick_duration(1, 1500);
        injector.inject(event);
        break;
      case Drawn::pause:
        if (!world.is_up(server) || world.is_paused(server)) break;
        event.kind = FaultKind::pause;
        event.duration = pick_duration(1, 3000);
        injector.inject(event);
        break;
      case Drawn::partition:
        if (random.bernoulli(0.5)) {
          event.kind = FaultKind::partition;
          event.host = victim;
          event.peer = plan.server_host;
        } else {
          event.kind = FaultKind::isolate;
        }
        event.duration = pick_duration(1, 3000);
        injector.inject(event);
        break;
      case Drawn::clog:
        event.kind = FaultKind::clog;
        event.host = random.bernoulli(0.5) ? victim : plan.server_host;
        event.duration = pick_duration(1, 2000);
        injector.inject(event);
        break;
      case Drawn::clock_jump:
        event.kind = FaultKind::clock_jump;
        event.jump_ms = random.range(-clock_jump_ms_max, clock_jump_ms_max);
        injector.inject(event);
        break;
      case Drawn::bit_flip:
        if (auto flipped = world.disk(server).corrupt_bit(random)) injector.flipped(*flipped);
        break;
      case Drawn::stop:
        if (!world.is_up(server) || world.is_paused(server)) break;
        event.kind = FaultKind::stop;
        event.duration = pick_duration(1, 1500);
        injector.inject(event);
        break;
    }
  }
}

}  // namespace sluice::scenarios
