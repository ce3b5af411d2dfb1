// End-to-end costs of the two worlds (not pass/fail; numbers go to docs/performance.md):
// an echo round trip over loopback through the epoll runtime, and simulated network events
// per second through SimNetwork.
#include <benchmark/benchmark.h>

#include <vector>

#include "core/demo/echo_service.h"
#include "runtime/runtime_env.h"
#include "sim/world.h"

namespace sluice {
namespace {

// Echo round trips through the same fiber/Env code in either world; items = round trips.
void echo_round_trips(benchmark::State& state, Env& env, const Address& listen_on,
                      std::size_t message_bytes) {
  demo::EchoService service(env);
  auto address = service.start(listen_on);
  if (!address) {
    state.SkipWithError("echo service could not listen");
    return;
  }
  auto stream = env.net().connect(*address, env.deadline_after(seconds(5)));
  if (!stream) {
    state.SkipWithError("connect failed");
    return;
  }
  std::vector<std::byte> message(message_bytes, std::byte{0x5a});
  std::vector<std::byte> back(message_bytes);
  std::int64_t round_trips = 0;
  for (auto _ : state) {
    if (!(*stream)->write_all(message, env.deadline_after(seconds(5))) ||
        !(*stream)->read_exact(back, env.deadline_after(seconds(5)))) {
      state.SkipWithError("round trip failed");
      break;
    }
    round_trips++;
  }
  (*stream)->close();
  service.stop();
  state.SetItemsProcessed(round_trips);
  state.SetBytesProcessed(round_trips * static_cast<std::int64_t>(message_bytes) * 2);
}

void BM_RuntimeEchoRoundTrip(benchmark::State& state) {
  runtime::RuntimeEnvOptions options;
  options.handle_signals = false;
  runtime::RuntimeEnv runtime(options);
  runtime.run_until_done([&](Env& env) {
    echo_round_trips(state, env, Address{"127.0.0.1", 0}, static_cast<std::size_t>(state.range(0)));
  });
}
BENCHMARK(BM_RuntimeEchoRoundTrip)->Arg(64)->Arg(64 * 1024)->UseRealTime();

// In the simulator each round trip is several simulated network events (segments, wake-ups);
// this measures how much simulated traffic one real second buys.
void BM_SimEchoRoundTrip(benchmark::State& state) {
  sim::SimWorld world(7);
  bool done = false;
  world.add_node("node", [&](Env& env) {
    echo_round_trips(state, env, Address{"127.0.0.1", 0}, static_cast<std::size_t>(state.range(0)));
    done = true;
  });
  world.run_until([&] { return done; });
}
BENCHMARK(BM_SimEchoRoundTrip)->Arg(64)->Arg(64 * 1024)->UseRealTime();

}  // namespace
}  // namespace sluice
