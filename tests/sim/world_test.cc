#include "sim/world.h"

#include <gtest/gtest.h>

#include "tests/sim/sim_test_util.h"

namespace sluice::sim {
namespace {

using testing::bytes_of;
using testing::text_of;

// A small workload touching every component: each node listens, pings its neighbour with
// random-sized messages, echoes what it receives, and logs to disk.
void ping_node(Env& env, std::string neighbour) {
  auto listener = env.net().listen(Address{"0.0.0.0", 9000}).value();
  Scope& scope = env.scheduler().current_scope();
  scope.spawn("echo", [&env, &listener] {
    for (;;) {
      auto stream = listener->accept(kNever);
      if (!stream) return;
      std::vector<std::byte> buffer(4096);
      for (;;) {
        auto got = (*stream)->read_some(buffer, env.deadline_after(seconds(1)));
        if (!got) break;
        if (!(*stream)->write_all(std::span(buffer).first(*got), env.deadline_after(seconds(1))))
          break;
      }
    }
  });
  (void)env.disk().create_directories("data");
  auto file = env.disk().open("data/log", OpenMode::create).value();
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto stream =
        env.net().connect(Address{neighbour, 9000}, env.deadline_after(milliseconds(200)));
    if (!stream) {
      this_fiber::sleep_for(milliseconds(50));
      continue;
    }
    for (int message = 0; message < 20; ++message) {
      std::vector<std::byte> ping(env.random().range(1, 2000), std::byte{1});
      if (!(*stream)->write_all(ping, env.deadline_after(seconds(1)))) break;
      if (!(*stream)->read_exact(ping, env.deadline_after(seconds(1)))) break;
      (void)file->append(ping);
      (void)file->datasync();
    }
  }
}

std::uint64_t run_workload(std::uint64_t seed) {
  SimWorldOptions options;
  options.network_faults.latency_mean_extra = milliseconds(2);
  options.network_faults.reset_probability_per_write = 0.01;
  SimWorld world(seed, options);
  const std::vector<std::string> hosts{"n1", "n2", "n3"};
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    std::string neighbour = hosts[(i + 1) % hosts.size()];
    world.add_node(hosts[i], [neighbour](Env& env) { ping_node(env, neighbour); });
  }
  world.run_for(seconds(2));
  world.network().partition("n1", "n2");
  world.run_for(seconds(1));
  world.network().heal_all();
  world.crash(1);
  world.run_for(milliseconds(500));
  world.restart(1);
  world.run_for(seconds(2));
  // The workload did real work: pings went round and were logged.
  EXPECT_GT(world.disk(0).live_contents("data/log").value_or(std::vector<std::byte>{}).size(),
            1000u);
  return world.trace_hash();
}

TEST(sim_world, same_seed_same_trace_and_different_seed_different_trace) {
  const std::uint64_t first = run_workload(1);
  EXPECT_EQ(first, run_workload(1));
  EXPECT_NE(first, run_workload(2));
  EXPECT_NE(run_workload(2), run_workload(3));
}

struct Guard {
  int* destroyed;
  ~Guard() { (*destroyed)++; }
};

TEST(sim_world, crash_unwinds_fibers_and_restart_runs_main_on_durable_image) {
  SimWorld world(9);
  int starts = 0;
  int guards_destroyed = 0;
  std::string seen_on_restart;
  const NodeId node = world.add_node("broker", [&](Env& env) {
    starts++;
    if (starts == 1) {
      auto file = env.disk().open("state", OpenMode::create).value();
      (void)file->append(bytes_of("epoch-1"));
      (void)file->datasync();
      (void)env.disk().sync_directory(".");
      (void)file->append(bytes_of("-unsynced"));
    } else {
      auto file = env.disk().open("state", OpenMode::read_only).value();
      std::vector<std::byte> buffer(file->size().value());
      (void)file->read_at(0, buffer);
      seen_on_restart = text_of(buffer);
    }
    env.scheduler().current_scope().spawn("helper", [&guards_destroyed] {
      Guard guard{&guards_destroyed};
      this_fiber::sleep_for(seconds(1'000'000));
    });
    Guard guard{&guards_destroyed};
    this_fiber::sleep_for(seconds(1'000'000));
  });
  world.run_for(seconds(1));
  EXPECT_TRUE(world.is_up(node));
  EXPECT_EQ(starts, 1);
  world.crash(node);
  EXPECT_FALSE(world.is_up(node));
  EXPECT_EQ(guards_destroyed, 2);
  world.run_for(seconds(1));
  world.restart(node);
  world.run_for(seconds(1));
  EXPECT_EQ(starts, 2);
  EXPECT_EQ(seen_on_restart.substr(0, 7), "epoch-1");
  EXPECT_TRUE(seen_on_restart.size() == 7 || seen_on_restart.size() <= 16);
}

TEST(sim_world, pause_stops_fibers_while_time_advances) {
  SimWorld world(3);
  int ticks = 0;
  const NodeId node = world.add_node("slow", [&ticks](Env&) {
    for (;;) {
      ticks++;
      this_fiber::sleep_for(milliseconds(10));
    }
  });
  world.run_for(seconds(1));
  const int before = ticks;
  EXPECT_GE(before, 99);
  world.pause(node);
  EXPECT_TRUE(world.is_paused(node));
  const Instant paused_at = world.now();
  world.run_for(seconds(1));
  EXPECT_EQ(ticks, before);
  EXPECT_EQ(world.now() - paused_at, seconds(1));
  world.resume(node);
  world.run_for(seconds(1));
  EXPECT_GT(ticks, before + 50);
}

TEST(sim_world, clocks_skew_and_jump_but_monotonic_time_does_not) {
  SimWorld world(4);
  const NodeId a = world.add_node("a", [](Env&) {});
  const NodeId b = world.add_node("b", [](Env&) {});
  world.run_for(seconds(2));
  EXPECT_EQ(world.clock(a).wall_ms(), SimClock::kWallEpochMs + 2000);
  world.clock(b).set_skew_ms(-300);
  world.clock(a).jump_ms(-5000);
  EXPECT_EQ(world.clock(b).wall_ms(), SimClock::kWallEpochMs + 1700);
  EXPECT_EQ(world.clock(a).wall_ms(), SimClock::kWallEpochMs - 3000);
  EXPECT_EQ(world.clock(a).now(), world.now());
  EXPECT_EQ(world.clock(b).now(), world.now());
}

TEST(sim_world, swarm_config_is_a_function_of_the_seed) {
  int partitions_on = 0;
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    const SwarmConfig config = SwarmConfig::from_seed(seed);
    const SwarmConfig again = SwarmConfig::from_seed(seed);
    EXPECT_EQ(config.partitions, again.partitions);
    EXPECT_EQ(config.clock_skew_ms_max, again.clock_skew_ms_max);
    partitions_on += config.partitions ? 1 : 0;
  }
  EXPECT_GT(partitions_on, 8);
  EXPECT_LT(partitions_on, 56);
}

}  // namespace
}  // namespace sluice::sim
