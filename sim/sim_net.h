#pragma once
// The simulated network: one SimNetwork per world owns every connection, listener and fault
// setting; each node sees it through its own SimNodeNet (a core/env Net bound to the node's host
// name).
//
// Streams are TCP-like: bytes arrive in order per direction, after a sampled latency (plus
// serialisation time under a bandwidth limit). Each direction has a bounded send buffer: bytes in
// flight plus bytes delivered but not yet read never exceed `send_buffer_bytes`, and a writer
// blocks until the reader drains (backpressure instead of unbounded memory).
//
// Faults:
// * partition / partition_one_way / isolate: a blocked direction holds its bytes (as TCP would
//   keep retransmitting) and delivers them after heal_all(). A connect needs both directions open:
//   it waits for the path and fails with NetError::timed_out at its deadline.
// * clog(host, duration): every direction touching the host is held until the clog ends.
// * reset_probability_per_write: a write_all resets the connection; both ends then get
//   NetError::reset (buffered bytes are discarded, like a TCP RST).
// * refuse_probability_per_connect: a connect fails with NetError::refused.
// * crash_host(host): the host's connections are reset for their peers and its listeners vanish
//   (later connects are refused).
//
// Lifecycle: streams and listeners must not outlive the SimNetwork; their destructors never block,
// so they may run on a fiber that is unwinding. Connections to a host name nobody registered fail
// with NetError::unreachable; to a registered host with no listener on the port, with refused.
// Writing to a connection whose peer has closed fails with NetError::reset.
//
// Concurrency: single-threaded, driven by the world's Scheduler; delivery happens in timers.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/env/net.h"
#include "core/env/random.h"
#include "core/env/scheduler.h"

namespace sluice::sim {

struct SimNetworkFaults {
  // One-way latency of a segment: latency_min + Exponential(latency_mean_extra).
  Duration latency_min = microseconds(50);
  Duration latency_mean_extra = microseconds(100);
  // With this probability per segment, Exponential(latency_spike_mean) is added on top.
  double latency_spike_probability = 0.0;
  Duration latency_spike_mean = milliseconds(50);
  // Per direction of each connection; 0 means unlimited.
  std::uint64_t bandwidth_bytes_per_second = 0;
  double reset_probability_per_write = 0.0;
  double refuse_probability_per_connect = 0.0;
};

struct SimNetworkOptions {
  std::size_t send_buffer_bytes = 1024 * 1024;
  std::size_t segment_bytes_max = 64 * 1024;
  std::size_t accept_backlog_max = 128;
  std::size_t connections_max = 100'000;
};

class SimNodeNet;
class SimStream;
class SimListener;

class SimNetwork {
 public:
  SimNetwork(Scheduler& scheduler, Random random, SimNetworkOptions options = {});
  ~SimNetwork();
  SimNetwork(const SimNetwork&) = delete;
  SimNetwork& operator=(const SimNetwork&) = delete;

  // Registers a host name; the returned Net stays valid for the network's lifetime.
  SimNodeNet& add_host(const std::string& host);
  bool has_host(const std::string& host) const { return hosts_.count(host) != 0; }

  void set_faults(const SimNetworkFaults& faults) { faults_ = faults; }
  const SimNetworkFaults& faults() const { return faults_; }

  void partition(const std::string& host_a, const std::string& host_b);
  void partition_one_way(const std::string& from, const std::string& to);
  void isolate(const std::string& host);
  // Removes every partition, isolation and clog; held bytes flow again.
  void heal_all();
  void clog(const std::string& host, Duration duration);
  // True when bytes sent now from `from` to `to` would not be held.
  bool can_deliver(const std::string& from, const std::string& to) const;

  // Resets every connection with an end on `host` and drops its listeners.
  void crash_host(const std::string& host);

  // ---- Inspection, for tests and checkers. ----
  // Bytes written but not yet read, over every live connection and direction.
  std::size_t buffered_bytes_total() const;
  std::size_t live_connection_count() const;
  std::size_t send_buffer_bytes() const { return options_.send_buffer_bytes; }

 private:
  friend class SimNodeNet;
  friend class SimStream;
  friend class SimListener;
  struct Waiters;
  struct Direction;
  struct Connection;
  struct ListenerState;

  std::expected<std::unique_ptr<Listener>, NetError> listen(const std::string& host,
                                                            const Address& address);
  std::expected<std::unique_ptr<Stream>, NetError> connect(const std::string& from_host,
                                                           const Address& address,
                                                           Instant deadline);
  std::expected<std::size_t, NetError> read(Connection& connection, int end,
                                            std::span<std::byte> buffer, Instant deadline);
  std::expected<void, NetError> write(Connection& connection, int end,
                                      std::span<const std::byte> bytes, Instant deadline);
  void close_end(Connection& connection, int end);
  void reset_connection(Connection& connection);
  std::expected<std::unique_ptr<Stream>, NetError> accept(ListenerState& listener,
                                                          Instant deadline);
  void close_listener(ListenerState& listener);

  void enqueue(Connection& connection, int end, std::span<const std::byte> bytes, bool fin);
  void pump(const std::shared_ptr<Connection>& connection, int direction);
  void kick_all();
  WakeReason wait_on(Waiters& waiters, Instant deadline);
  // Sleeps until `at`; false when `deadline` comes first or the fiber is being cancelled.
  bool sleep_until(Instant at, Instant deadline);
  Duration sample_latency();
  std::uint16_t next_free_port(const std::string& host);
  std::string resolve(const std::string& from_host, const std::string& host) const;

  Scheduler& scheduler_;
  Random random_;
  SimNetworkOptions options_;
  SimNetworkFaults faults_;
  std::map<std::string, std::unique_ptr<SimNodeNet>> hosts_;
  std::map<std::string, std::uint16_t> next_port_;
  std::map<std::pair<std::string, std::uint16_t>, std::weak_ptr<ListenerState>> listeners_;
  std::map<std::uint64_t, std::weak_ptr<Connection>> connections_;
  std::uint64_t next_connection_id_ = 1;
  std::set<std::pair<std::string, std::string>> partitions_;  // directed (from, to)
  std::set<std::string> isolated_;
  std::map<std::string, Instant> clogged_until_;
  std::map<Instant, TimerId>
      clog_end_timers_;                    // one per distinct clog end, cancelled on destruction
  std::unique_ptr<Waiters> path_waiters_;  // connects waiting for a partition to heal
};

// A node's view of the network: listens on and connects from its host name.
class SimNodeNet final : public Net {
 public:
  SimNodeNet(SimNetwork& network, std::string host) : network_(network), host_(std::move(host)) {}
  std::expected<std::unique_ptr<Listener>, NetError> listen(const Address& address) override {
    return network_.listen(host_, address);
  }
  std::expected<std::unique_ptr<Stream>, NetError> connect(const Address& address,
                                                           Instant deadline) override {
    return network_.connect(host_, address, deadline);
  }
  const std::string& host() const { return host_; }

 private:
  SimNetwork& network_;
  std::string host_;
};

}  // namespace sluice::sim
