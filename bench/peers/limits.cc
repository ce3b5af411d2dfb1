// sluice-limits: the physical limits ci/bench.sh measures in the same run as the brokers, so a
// broker's numbers can be read against what this machine's disk and loopback allow at all.
//   disk: append --sync-bytes with pwrite and fdatasync each, in a fresh file under --dir, for
//         --duration-s (what an append-only log that syncs every batch of that size can reach).
//   tcp:  one connection over 127.0.0.1: a sender thread writes --chunk-bytes chunks, the main
//         thread reads them (bulk MB/s); then 100-byte ping-pongs (round-trip latency).
// Prints one JSON object.

#include "bench/peers/load_common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <thread>

namespace sluice::bench {
namespace {

using nlohmann::json;

int disk(const std::string& directory, std::size_t sync_bytes, double duration_s) {
  const std::string path = directory + "/sluice-limits-disk.data";
  const int fd = open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(("sluice-limits: open " + path).c_str());
    return kExitFailure;
  }
  const std::string buffer(sync_bytes, 'x');
  LatencyHistogram sync_latency;
  std::uint64_t syncs = 0;
  off_t offset = 0;
  const std::int64_t start = now_ns();
  const auto end = start + static_cast<std::int64_t>(duration_s * 1e9);
  std::int64_t now = start;
  while (now < end) {
    if (pwrite(fd, buffer.data(), buffer.size(), offset) != static_cast<ssize_t>(buffer.size()) || fdatasync(fd) != 0) {
      std::perror("sluice-limits: pwrite/fdatasync");
      close(fd);
      unlink(path.c_str());
      return kExitFailure;
    }
    offset += static_cast<off_t>(buffer.size());
    ++syncs;
    const std::int64_t after = now_ns();
    sync_latency.record(after - now);
    now = after;
  }
  close(fd);
  unlink(path.c_str());
  const double elapsed_s = static_cast<double>(now - start) / 1e9;
  const json out = {{"tool", "sluice-limits"},
                    {"mode", "disk"},
                    {"sync_bytes", sync_bytes},
                    {"syncs", syncs},
                    {"elapsed_s", elapsed_s},
                    {"syncs_per_s", static_cast<double>(syncs) / elapsed_s},
                    {"mb_per_s", static_cast<double>(offset) / elapsed_s / 1e6},
                    {"sync_p50_ms", sync_latency.quantile_ms(0.5)},
                    {"sync_p99_ms", sync_latency.quantile_ms(0.99)},
                    {"ok", true}};
  std::printf("%s\n", out.dump().c_str());
  return kExitOk;
}

// A connected loopback pair: {client, server}.
bool loopback_pair(int sockets[2]) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(listener, 1) != 0 || getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    std::perror("sluice-limits: listen");
    return false;
  }
  sockets[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(sockets[0], reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    std::perror("sluice-limits: connect");
    return false;
  }
  sockets[1] = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  close(listener);
  const int one = 1;
  setsockopt(sockets[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(sockets[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return sockets[1] >= 0;
}

bool read_exactly(int fd, char* data, std::size_t length) {
  while (length > 0) {
    const ssize_t got = read(fd, data, length);
    if (got <= 0) return false;
    data += got;
    length -= static_cast<std::size_t>(got);
  }
  return true;
}

int tcp(std::size_t chunk_bytes, double duration_s) {
  int sockets[2];
  if (!loopback_pair(sockets)) return kExitFailure;
  const auto end = now_ns() + static_cast<std::int64_t>(duration_s / 2 * 1e9);
  std::thread sender([&] {
    const std::string chunk(chunk_bytes, 'x');
    while (now_ns() < end) {
      if (write(sockets[0], chunk.data(), chunk.size()) <= 0) break;
    }
    shutdown(sockets[0], SHUT_WR);
  });
  std::string buffer(1 << 20, '\0');
  std::uint64_t received = 0;
  const std::int64_t start = now_ns();
  for (;;) {
    const ssize_t got = read(sockets[1], buffer.data(), buffer.size());
    if (got <= 0) break;
    received += static_cast<std::uint64_t>(got);
  }
  const double bulk_s = static_cast<double>(now_ns() - start) / 1e9;
  sender.join();

  close(sockets[0]);
  close(sockets[1]);

  // Ping-pong on a new connection (the first one is half closed): the echo thread answers each
  // 100-byte message; the main thread times round trips.
  if (!loopback_pair(sockets)) return kExitFailure;
  constexpr std::size_t kPingBytes = 100;
  std::thread echo([&] {
    char message[kPingBytes];
    while (read_exactly(sockets[0], message, sizeof message)) {
      if (write(sockets[0], message, sizeof message) != static_cast<ssize_t>(sizeof message)) break;
    }
  });
  LatencyHistogram round_trip;
  char message[kPingBytes] = {};
  const auto ping_end = now_ns() + static_cast<std::int64_t>(duration_s / 2 * 1e9);
  while (now_ns() < ping_end) {
    const std::int64_t sent = now_ns();
    if (write(sockets[1], message, sizeof message) != static_cast<ssize_t>(sizeof message) ||
        !read_exactly(sockets[1], message, sizeof message)) {
      break;
    }
    round_trip.record(now_ns() - sent);
  }
  shutdown(sockets[1], SHUT_RDWR);
  shutdown(sockets[0], SHUT_RDWR);
  echo.join();
  close(sockets[0]);
  close(sockets[1]);
  const json out = {{"tool", "sluice-limits"},
                    {"mode", "tcp"},
                    {"chunk_bytes", chunk_bytes},
                    {"mb_per_s", static_cast<double>(received) / bulk_s / 1e6},
                    {"round_trips", round_trip.count()},
                    {"rtt_p50_ms", round_trip.quantile_ms(0.5)},
                    {"rtt_p99_ms", round_trip.quantile_ms(0.99)},
                    {"rtt_p999_ms", round_trip.quantile_ms(0.999)},
                    {"ok", received > 0 && round_trip.count() > 0}};
  std::printf("%s\n", out.dump().c_str());
  return received > 0 ? kExitOk : kExitFailure;
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  using namespace sluice::bench;
  CLI::App app{"sluice-limits: raw disk-sync and loopback limits for ci/bench.sh", "sluice-limits"};
  std::string mode;
  std::string directory = "/tmp";
  std::size_t sync_bytes = 4096;
  std::size_t chunk_bytes = 65536;
  double duration_s = 2;
  app.add_option("mode", mode, "disk or tcp")->required()->check(CLI::IsMember({"disk", "tcp"}));
  app.add_option("--dir", directory, "Directory for the disk test (same filesystem as the brokers' data)")
      ->capture_default_str();
  app.add_option("--sync-bytes", sync_bytes, "Bytes written per fdatasync")
      ->check(CLI::Range(std::size_t{1}, std::size_t{64} << 20))
      ->capture_default_str();
  app.add_option("--chunk-bytes", chunk_bytes, "Bytes per write in the TCP bulk test")
      ->check(CLI::Range(std::size_t{1}, std::size_t{16} << 20))
      ->capture_default_str();
  app.add_option("--duration-s", duration_s, "Seconds")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? kExitOk : kExitUsage;
  }
  signal(SIGPIPE, SIG_IGN);  // a closed peer shows as a failed write, not a dead process
  return mode == "disk" ? disk(directory, sync_bytes, duration_s) : tcp(chunk_bytes, duration_s);
}
