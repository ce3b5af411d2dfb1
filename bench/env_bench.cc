// Micro-benchmarks of the foundation (not pass/fail; numbers go to docs/performance.md):
// fiber switch and spawn cost, scheduler timer events per second, CRC32C throughput.
#include <benchmark/benchmark.h>

#include <vector>

#include "core/env/sync.h"
#include "core/util/crc32c.h"
#include "sim/sim_reactor.h"

namespace sluice {
namespace {

// Two fibers yielding to each other: each iteration is one switch into a fiber and one out.
void BM_FiberYieldSwitch(benchmark::State& state) {
  sim::SimReactor reactor;
  Scheduler scheduler(reactor);
  Scope scope(scheduler, "bench");
  bool running = true;
  std::int64_t switches = 0;
  for (int i = 0; i < 2; ++i) {
    scope.spawn("yielder", [&] {
      while (running) {
        switches++;
        this_fiber::yield();
      }
    });
  }
  for (auto _ : state) {
    const std::int64_t target = switches + 1000;
    scheduler.run_until([&] { return switches >= target; });
  }
  running = false;
  scheduler.run();
  state.SetItemsProcessed(switches);
}
BENCHMARK(BM_FiberYieldSwitch);

void BM_FiberSpawnAndFinish(benchmark::State& state) {
  sim::SimReactor reactor;
  Scheduler scheduler(reactor);
  Scope scope(scheduler, "bench");
  std::int64_t ran = 0;
  for (auto _ : state) {
    scope.spawn("short", [&] { ran++; });
    scheduler.run();
  }
  state.SetItemsProcessed(ran);
}
BENCHMARK(BM_FiberSpawnAndFinish);

// Event handoff between two fibers through a Channel (a wake + switch per item).
void BM_ChannelPingPong(benchmark::State& state) {
  sim::SimReactor reactor;
  Scheduler scheduler(reactor);
  Scope scope(scheduler, "bench");
  Channel<int> ping(1);
  Channel<int> pong(1);
  scope.spawn("echo", [&] {
    int value = 0;
    while (ping.receive(value) == ChannelStatus::ok) pong.send(value);
  });
  std::int64_t round_trips = 0;
  for (auto _ : state) {
    bool done = false;
    scope.spawn("driver", [&] {
      for (int i = 0; i < 1000; ++i) {
        ping.send(i);
        int value = 0;
        pong.receive(value);
      }
      done = true;
    });
    scheduler.run_until([&] { return done; });
    round_trips += 1000;
  }
  ping.close();
  scheduler.run();
  state.SetItemsProcessed(round_trips);
}
BENCHMARK(BM_ChannelPingPong);

// Simulator event throughput: timers firing in virtual time, each waking a sleeping fiber.
void BM_SimTimerEvents(benchmark::State& state) {
  const int fibers = static_cast<int>(state.range(0));
  std::int64_t events = 0;
  for (auto _ : state) {
    sim::SimReactor reactor;
    Scheduler scheduler(reactor);
    {
      Scope scope(scheduler, "bench");
      for (int i = 0; i < fibers; ++i) {
        scope.spawn("sleeper", [&events, i] {
          for (int round = 0; round < 100; ++round) {
            this_fiber::sleep_for(microseconds(1 + (i * 7 + round * 13) % 1000));
            events++;
          }
        });
      }
      scheduler.run();
    }
  }
  state.SetItemsProcessed(events);
}
BENCHMARK(BM_SimTimerEvents)->Arg(10)->Arg(1000);

void BM_Crc32c(benchmark::State& state, bool hardware) {
  std::vector<unsigned char> data(static_cast<std::size_t>(state.range(0)));
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<unsigned char>(i * 31);
  std::uint32_t crc = 0;
  for (auto _ : state) {
    crc = hardware ? crc32c_extend_hardware(crc, data.data(), data.size())
                   : crc32c_extend_portable(crc, data.data(), data.size());
    benchmark::DoNotOptimize(crc);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK_CAPTURE(BM_Crc32c, hardware, true)->Arg(4096)->Arg(1 << 20);
BENCHMARK_CAPTURE(BM_Crc32c, portable, false)->Arg(4096)->Arg(1 << 20);

}  // namespace
}  // namespace sluice
