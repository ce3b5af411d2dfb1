#include "scenarios/fault_driver.h"

namespace sluice::scenarios {

std::string FaultCounts::summary() const {
  return "crashes=" + std::to_string(crashes) + " pauses=" + std::to_string(pauses) +
         " partitions=" + std::to_string(partitions) + " clogs=" + std::to_string(clogs) +
         " clock_jumps=" + std::to_string(clock_jumps) + " bit_flips=" + std::to_string(bit_flips);
}

namespace {

enum class FaultKind : std::uint8_t { crash, pause, partition, clog, clock_jump, bit_flip };

std::vector<FaultKind> kinds_of(const sim::SwarmConfig& swarm, const FaultPlan& plan) {
  std::vector<FaultKind> kinds;
  if (plan.force_crashes || (plan.swarm_kinds && swarm.crashes)) kinds.push_back(FaultKind::crash);
  if (plan.swarm_kinds && swarm.pauses) kinds.push_back(FaultKind::pause);
  if (plan.force_partitions || (plan.swarm_kinds && swarm.partitions))
    kinds.push_back(FaultKind::partition);
  if (plan.swarm_kinds && swarm.clogs) kinds.push_back(FaultKind::clog);
  if (plan.force_clock_jumps || (plan.swarm_kinds && swarm.clock_skew))
    kinds.push_back(FaultKind::clock_jump);
  if (plan.bit_flips) kinds.push_back(FaultKind::bit_flip);
  return kinds;
}

}  // namespace

void run_faults(sim::SimWorld& world, const sim::SwarmConfig& swarm, const FaultPlan& plan,
                Instant stop_at, FaultCounts& counts) {
  Random random = world.random().fork(plan.random_stream);
  const sim::NodeId server = plan.server;
  const Log log("faults", &world.clock(server));
  const std::vector<FaultKind> kinds = kinds_of(swarm, plan);
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
    switch (kinds[random.uniform(kinds.size())]) {
      case FaultKind::crash:
        if (!world.is_up(server)) break;
        log.info("crash {}", plan.server_host);
        world.crash(server);
        counts.crashes++;
        this_fiber::sleep_for(pick_duration(1, 1500));
        log.info("restart {}", plan.server_host);
        world.restart(server);
        break;
      case FaultKind::pause:
        if (!world.is_up(server) || world.is_paused(server)) break;
        log.info("pause {}", plan.server_host);
        world.pause(server);
        counts.pauses++;
        this_fiber::sleep_for(pick_duration(1, 3000));
        log.info("resume {}", plan.server_host);
        world.resume(server);
        break;
      case FaultKind::partition:
        if (random.bernoulli(0.5)) {
          log.info("partition {} from {}", victim, plan.server_host);
          world.network().partition(victim, plan.server_host);
        } else {
          log.info("isolate {}", plan.server_host);
          world.network().isolate(plan.server_host);
        }
        counts.partitions++;
        this_fiber::sleep_for(pick_duration(1, 3000));
        log.info("heal network");
        world.network().heal_all();
        break;
      case FaultKind::clog: {
        const std::string host = random.bernoulli(0.5) ? victim : plan.server_host;
        const Duration duration = pick_duration(1, 2000);
        log.info("clog {} for {} ms", host, duration.count() / 1'000'000);
        world.network().clog(host, duration);
        counts.clogs++;
        break;
      }
      case FaultKind::clock_jump: {
        const std::int64_t jump_ms = random.range(-clock_jump_ms_max, clock_jump_ms_max);
        log.info("{} wall clock jumps {} ms", plan.server_host, jump_ms);
        world.clock(server).jump_ms(jump_ms);
        counts.clock_jumps++;
        break;
      }
      case FaultKind::bit_flip:
        if (auto flipped = world.disk(server).corrupt_bit(random)) {
          log.info("flipped a bit of {}", flipped->path);
          counts.bit_flips++;
        }
        break;
    }
  }
}

}  // namespace sluice::scenarios
