// Load test of the runtime through EchoService: 1,000 clients connected at the same time in one
// RuntimeEnv move 1 GiB in total, each writing and reading its echo concurrently from two fibers,
// and every byte is checked against a deterministic pattern.

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/demo/echo_service.h"
#include "core/env/sync.h"
#include "tests/runtime/runtime_test_util.h"

namespace sluice::runtime {
namespace {

constexpr std::size_t kClients = 1000;
constexpr std::uint64_t kTotalBytes = std::uint64_t{1} << 30;
constexpr std::size_t kChunkBytes = 64 << 10;
// Two sockets per connection plus the listener and a few of the runtime's own.
constexpr rlim_t kFileDescriptorsNeeded = 2 * kClients + 100;
// The pattern repeats every 251 bytes (a prime): a lost, duplicated or reordered chunk of any
// size that is not a multiple of 251 shows up as a mismatch.
constexpr std::size_t kPatternPeriod = 251;

class Pattern {
 public:
  Pattern() : bytes_(kPatternPeriod + kChunkBytes) {
    for (std::size_t index = 0; index < bytes_.size(); ++index) {
      bytes_[index] = static_cast<std::byte>((index * 37 + 11) % kPatternPeriod);
    }
  }
  // The `length` bytes client `client` sends from stream offset `offset` on.
  std::span<const std::byte> at(std::size_t client, std::uint64_t offset,
                                std::size_t length) const {
    EXPECT_LE(length, kChunkBytes);
    const std::size_t start = (offset + client * 7) % kPatternPeriod;
    return std::span<const std::byte>(bytes_).subspan(start, length);
  }

 private:
  std::vector<std::byte> bytes_;
};

std::uint64_t share_of(std::size_t client) {
  return kTotalBytes / kClients + (client < kTotalBytes % kClients ? 1 : 0);
}

bool raise_file_descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < kFileDescriptorsNeeded) return false;
  limit.rlim_cur = limit.rlim_max;
  return ::setrlimit(RLIMIT_NOFILE, &limit) == 0;
}

struct LoadState {
  Pattern pattern;
  std::size_t connected = 0;
  Event all_connected;
  std::size_t open_at_barrier = 0;
  std::uint64_t bytes_verified = 0;
  std::size_t clients_finished = 0;
  std::size_t failures = 0;
};

// Reads the echo of `client`'s whole share and checks it byte for byte.
void read_echo(Env& env, Stream& stream, std::size_t client, std::uint64_t from, LoadState& state) {
  std::vector<std::byte> buffer(kChunkBytes);
  const std::uint64_t share = share_of(client);
  for (std::uint64_t offset = from; offset < share;) {
    const std::size_t wanted =
        static_cast<std::size_t>(std::min<std::uint64_t>(kChunkBytes, share - offset));
    auto got = stream.read_some(std::span(buffer).first(wanted), env.deadline_after(seconds(60)));
    if (!got) {
      ADD_FAILURE() << "client " << client << " read failed at " << offset << ": "
                    << to_string(got.error());
      state.failures++;
      return;
    }
    const auto expected = state.pattern.at(client, offset, *got);
    if (std::memcmp(buffer.data(), expected.data(), *got) != 0) {
      ADD_FAILURE() << "client " << client << " got wrong bytes at offset " << offset;
      state.failures++;
      return;
    }
    offset += *got;
    state.bytes_verified += *got;
  }
}

void run_client(Env& env, const Address& address, std::size_t client, demo::EchoService& service,
                LoadState& state) {
  auto stream = env.net().connect(address, env.deadline_after(seconds(30)));
  if (!stream) {
    ADD_FAILURE() << "client " << client << " connect: " << to_string(stream.error());
    state.failures++;
    return;
  }
  // One byte there and back proves the service accepted this connection and serves it; the
  // barrier then holds every client until all of them are connected and served at once.
  const std::uint64_t first = 1;
  std::vector<std::byte> handshake(first);
  if (!(*stream)->write_all(state.pattern.at(client, 0, first), env.deadline_after(seconds(30))) ||
      !(*stream)->read_exact(handshake, env.deadline_after(seconds(30))) ||
      handshake[0] != state.pattern.at(client, 0, first)[0]) {
    ADD_FAILURE() << "client " << client << " handshake failed";
    state.failures++;
    return;
  }
  state.bytes_verified += first;
  if (++state.connected == kClients) {
    state.open_at_barrier = service.connections_open();
    state.all_connected.set();
  }
  if (!state.all_connected.wait(env.deadline_after(seconds(60)))) {
    ADD_FAILURE() << "client " << client << " timed out waiting for the others to connect";
    state.failures++;
    return;
  }

  Scope scope(env.scheduler().current_scope(), "client");
  auto reader = scope.spawn("reader", [&] { read_echo(env, **stream, client, first, state); });
  const std::uint64_t share = share_of(client);
  for (std::uint64_t offset = first; offset < share;) {
    const std::size_t length =
        static_cast<std::size_t>(std::min<std::uint64_t>(kChunkBytes, share - offset));
    if (auto written = (*stream)->write_all(state.pattern.at(client, offset, length),
                                            env.deadline_after(seconds(60)));
        !written) {
      ADD_FAILURE() << "client " << client << " write failed: " << to_string(written.error());
      state.failures++;
      break;
    }
    offset += length;
  }
  if (!env.scheduler().join(*reader, env.deadline_after(seconds(120)))) {
    ADD_FAILURE() << "client " << client << " reader did not finish";
    state.failures++;
  }
  (*stream)->close();
  state.clients_finished++;
}

TEST(EchoLoad, thousand_concurrent_clients_echo_one_gibibyte_intact) {
  if (!raise_file_descriptor_limit()) {
    GTEST_SKIP() << "needs RLIMIT_NOFILE hard limit >= " << kFileDescriptorsNeeded;
  }
  RuntimeEnv runtime(testing::test_env_options());
  LoadState state;
  std::size_t peak_open = 0;
  std::uint64_t bytes_echoed = 0;
  const auto start = std::chrono::steady_clock::now();
  const bool finished = runtime.run_until_done([&](Env& env) {
    demo::EchoService service(env);
    auto address = service.start(Address{"127.0.0.1", 0});
    ASSERT_TRUE(address.has_value());
    Scope clients(env.scheduler().current_scope(), "clients");
    std::vector<std::shared_ptr<FiberDone>> done;
    done.reserve(kClients);
    for (std::size_t client = 0; client < kClients; ++client) {
      done.push_back(clients.spawn(
          "client", [&, client] { run_client(env, *address, client, service, state); }));
    }
    for (auto& fiber : done)
      EXPECT_TRUE(env.scheduler().join(*fiber, env.deadline_after(seconds(300))));
    peak_open = service.connections_open_peak();
    bytes_echoed = service.bytes_echoed();
    service.stop();
  });
  const double elapsed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  ASSERT_TRUE(finished);
  EXPECT_EQ(state.failures, 0u);
  EXPECT_EQ(state.clients_finished, kClients);
  EXPECT_EQ(state.bytes_verified, kTotalBytes);
  EXPECT_EQ(bytes_echoed, kTotalBytes);
  EXPECT_EQ(state.open_at_barrier, kClients);
  EXPECT_EQ(peak_open, kClients);
  const double mib = static_cast<double>(kTotalBytes) / (1 << 20);
  std::printf(
      "echo: %zu clients, %.0f MiB echoed (each byte written and read back) in %.2f s: "
      "%.0f MiB/s\n",
      kClients, mib, elapsed_s, mib / elapsed_s);
}

}  // namespace
}  // namespace sluice::runtime
