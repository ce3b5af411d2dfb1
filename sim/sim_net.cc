#include "sim/sim_net.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <deque>

namespace sluice::sim {

namespace {
// Waiter lists hold at most one reader, one writer or a few acceptors/connectors each; this bound
// only catches leaks.
constexpr std::size_t kWaitersMax = 4096;
constexpr std::uint16_t kEphemeralPortFirst = 32768;
constexpr std::uint16_t kEphemeralPortLast = 60999;

bool is_local_alias(const std::string& host) {
  return host == "127.0.0.1" || host == "0.0.0.0" || host == "localhost" || host == "::1";
}
}  // namespace

// Fibers blocked on one condition. Woken with Scheduler::wake directly (not WaitQueue) so that
// faults injected from outside Scheduler::run() — a test calling crash_host() between runs — can
// wake them too.
struct SimNetwork::Waiters {
  std::vector<WaitTicket> tickets;

  void wake_all(Scheduler& scheduler) {
    std::vector<WaitTicket> woken;
    woken.swap(tickets);
    for (const WaitTicket& ticket : woken) scheduler.wake(ticket);
  }
  void remove(WaitTicket ticket) {
    auto it = std::find_if(tickets.begin(), tickets.end(), [&](const WaitTicket& t) {
      return t.fiber_id == ticket.fiber_id && t.wait_id == ticket.wait_id;
    });
    if (it != tickets.end()) tickets.erase(it);
  }
};

struct Segment {
  Instant deliver_at;
  std::vector<std::byte> bytes;
  bool fin = false;
};

// Bytes flowing from one end of a connection (the sender, whose index is the direction's index)
// to the other.
struct SimNetwork::Direction {
  std::string from_host;
  std::string to_host;
  std::deque<Segment> in_flight;
  std::deque<std::byte> readable;
  std::size_t buffered_bytes = 0;  // in flight + readable: what the send buffer bound limits
  bool fin_delivered = false;
  Instant last_deliver_at{};  // delivery times never go backwards: bytes stay in order
  Instant link_free_at{};     // serialisation under a bandwidth limit
  TimerId timer = 0;
  Waiters readers;
  Waiters writers;
};

struct SimNetwork::Connection {
  std::uint64_t id = 0;
  Address addresses[2];  // [0] the connecting end, [1] the accepting end
  Direction directions[2];
  bool closed[2] = {false, false};
  bool reset = false;
};

struct SimNetwork::ListenerState {
  std::string host;
  std::uint16_t port = 0;
  bool closed = false;
  std::deque<std::shared_ptr<Connection>> backlog;
  Waiters acceptors;
};

class SimStream final : public Stream {
 public:
  SimStream(SimNetwork& network, std::shared_ptr<SimNetwork::Connection> connection, int end)
      : network_(network), connection_(std::move(connection)), end_(end) {}
  ~SimStream() override { close(); }

  std::expected<std::size_t, NetError> read_some(std::span<std::byte> buffer,
                                                 Instant deadline) override {
    return network_.read(*connection_, end_, buffer, deadline);
  }
  std::expected<void, NetError> write_all(std::span<const std::byte> bytes,
                                          Instant deadline) override {
    return network_.write(*connection_, end_, bytes, deadline);
  }
  void close() override { network_.close_end(*connection_, end_); }
  Address local_address() const override { return connection_->addresses[end_]; }
  Address peer_address() const override { return connection_->addresses[1 - end_]; }

 private:
  SimNetwork& network_;
  std::shared_ptr<SimNetwork::Connection> connection_;
  int end_;
};

class SimListener final : public Listener {
 public:
  SimListener(SimNetwork& network, std::shared_ptr<SimNetwork::ListenerState> state)
      : network_(network), state_(std::move(state)) {}
  ~SimListener() override { close(); }

  std::expected<std::unique_ptr<Stream>, NetError> accept(Instant deadline) override {
    return network_.accept(*state_, deadline);
  }
  Address local_address() const override { return Address{state_->host, state_->port}; }
  void close() override { network_.close_listener(*state_); }

 private:
  SimNetwork& network_;
  std::shared_ptr<SimNetwork::ListenerState> state_;
};

SimNetwork::SimNetwork(Scheduler& scheduler, Random random, SimNetworkOptions options)
    : scheduler_(scheduler),
      random_(random),
      options_(options),
      path_waiters_(std::make_unique<Waiters>()) {
  assert(options_.send_buffer_bytes > 0);
  assert(options_.segment_bytes_max > 0);
}

SimNetwork::~SimNetwork() {
  for (auto& [until, timer] : clog_end_timers_) scheduler_.cancel_timer(timer);
  // Pending delivery timers hold only weak references; cancel them so none fires into a dead
  // network if the scheduler keeps running.
  for (auto& [id, weak] : connections_) {
    if (auto connection = weak.lock()) {
      for (Direction& direction : connection->directions) {
        if (direction.timer != 0) scheduler_.cancel_timer(direction.timer);
        direction.timer = 0;
      }
    }
  }
}

SimNodeNet& SimNetwork::add_host(const std::string& host) {
  assert(!host.empty());
  assert(!is_local_alias(host));
  auto [it, inserted] = hosts_.emplace(host, nullptr);
  if (inserted) it->second = std::make_unique<SimNodeNet>(*this, host);
  return *it->second;
}

// ---- Faults ----

void SimNetwork::partition(const std::string& host_a, const std::string& host_b) {
  partition_one_way(host_a, host_b);
  partition_one_way(host_b, host_a);
}

void SimNetwork::partition_one_way(const std::string& from, const std::string& to) {
  partitions_.emplace(from, to);
  scheduler_.trace(hash64(from + ">" + to, 0x9a27));
}

void SimNetwork::isolate(const std::string& host) {
  isolated_.insert(host);
  scheduler_.trace(hash64(host, 0x150));
}

void SimNetwork::heal_all() {
  partitions_.clear();
  isolated_.clear();
  clogged_until_.clear();
  scheduler_.trace(0x4ea1);
  kick_all();
}

void SimNetwork::clog(const std::string& host, Duration duration) {
  assert(duration.count() >= 0);
  const Instant until = add_saturating(scheduler_.now(), duration);
  Instant& current = clogged_until_[host];
  current = std::max(current, until);
  scheduler_.trace(hash64(host, 0xc109) ^ static_cast<std::uint64_t>(duration.count()));
  // The held directions do not poll: one timer at the end of the clog releases them.
  if (until != kNever && clog_end_timers_.count(until) == 0) {
    clog_end_timers_[until] = scheduler_.schedule_at(until, [this, until] {
      clog_end_timers_.erase(until);
      kick_all();
    });
  }
}

bool SimNetwork::can_deliver(const std::string& from, const std::string& to) const {
  const Instant now = scheduler_.now();
  for (const std::string* host : {&from, &to}) {
    auto it = clogged_until_.find(*host);
    if (it != clogged_until_.end() && it->second > now) return false;
  }
  if (from == to) return true;
  if (isolated_.count(from) != 0 || isolated_.count(to) != 0) return false;
  return partitions_.count({from, to}) == 0;
}

void SimNetwork::crash_host(const std::string& host) {
  scheduler_.trace(hash64(host, 0xc4a5));
  for (auto it = connections_.begin(); it != connections_.end();) {
    std::shared_ptr<Connection> connection = it->second.lock();
    if (!connection) {
      it = connections_.erase(it);
      continue;
    }
    if (connection->addresses[0].host == host || connection->addresses[1].host == host) {
      reset_connection(*connection);
    }
    ++it;
  }
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    if (it->first.first != host) {
      ++it;
      continue;
    }
    if (auto listener = it->second.lock()) close_listener(*listener);
    it = listeners_.erase(it);
  }
}

void SimNetwork::kick_all() {
  // Connections in id order (creation order): deterministic.
  for (auto it = connections_.begin(); it != connections_.end();) {
    std::shared_ptr<Connection> connection = it->second.lock();
    if (!connection) {
      it = connections_.erase(it);
      continue;
    }
    pump(connection, 0);
    pump(connection, 1);
    ++it;
  }
  path_waiters_->wake_all(scheduler_);
}

// ---- Inspection ----

std::size_t SimNetwork::buffered_bytes_total() const {
  std::size_t total = 0;
  for (const auto& [id, weak] : connections_) {
    if (auto connection = weak.lock()) {
      total += connection->directions[0].buffered_bytes + connection->directions[1].buffered_bytes;
    }
  }
  return total;
}

std::size_t SimNetwork::live_connection_count() const {
  std::size_t count = 0;
  for (const auto& [id, weak] : connections_) {
    if (auto connection = weak.lock();
        connection && !connection->reset && !(connection->closed[0] && connection->closed[1])) {
      count++;
    }
  }
  return count;
}

// ---- Waiting ----

WakeReason SimNetwork::wait_on(Waiters& waiters, Instant deadline) {
  assert(waiters.tickets.size() < kWaitersMax);
  const WaitTicket ticket = scheduler_.prepare_wait();
  waiters.tickets.push_back(ticket);
  // Leave the list on every way out, including FiberCancelled unwinding through here.
  struct Leave {
    Waiters& waiters;
    WaitTicket ticket;
    ~Leave() { waiters.remove(ticket); }
  } leave{waiters, ticket};
  return scheduler_.suspend(ticket, deadline);
}

bool SimNetwork::sleep_until(Instant at, Instant deadline) {
  const Instant target = std::min(at, deadline);
  while (scheduler_.now() < target) {
    const WaitTicket ticket = scheduler_.prepare_wait();
    if (scheduler_.suspend(ticket, target) == WakeReason::cancelled) return false;
  }
  return at <= deadline;
}

Duration SimNetwork::sample_latency() {
  double extra_ns = random_.exponential(static_cast<double>(faults_.latency_mean_extra.count()));
  if (random_.bernoulli(faults_.latency_spike_probability)) {
    extra_ns += random_.exponential(static_cast<double>(faults_.latency_spike_mean.count()));
  }
  // A minute bounds the tail so a pathological draw cannot stall a run.
  extra_ns = std::min(extra_ns, 60e9);
  return faults_.latency_min + Duration(static_cast<std::int64_t>(extra_ns));
}

// ---- Listen / connect / accept ----

std::string SimNetwork::resolve(const std::string& from_host, const std::string& host) const {
  return is_local_alias(host) ? from_host : host;
}

std::uint16_t SimNetwork::next_free_port(const std::string& host) {
  auto [it, inserted] = next_port_.emplace(host, kEphemeralPortFirst);
  for (int attempt = 0; attempt <= kEphemeralPortLast - kEphemeralPortFirst; ++attempt) {
    const std::uint16_t port = it->second;
    it->second =
        port == kEphemeralPortLast ? kEphemeralPortFirst : static_cast<std::uint16_t>(port + 1);
    auto listener = listeners_.find({host, port});
    if (listener == listeners_.end() || listener->second.expired()) return port;
  }
  return 0;
}

std::expected<std::unique_ptr<Listener>, NetError> SimNetwork::listen(const std::string& host,
                                                                      const Address& address) {
  assert(has_host(host));
  if (resolve(host, address.host) != host) return std::unexpected(NetError::invalid_address);
  std::uint16_t port = address.port;
  if (port == 0) {
    port = next_free_port(host);
    if (port == 0) return std::unexpected(NetError::address_in_use);
  }
  auto it = listeners_.find({host, port});
  if (it != listeners_.end()) {
    auto existing = it->second.lock();
    if (existing && !existing->closed) return std::unexpected(NetError::address_in_use);
  }
  auto state = std::make_shared<ListenerState>();
  state->host = host;
  state->port = port;
  listeners_[{host, port}] = state;
  scheduler_.trace(hash64(host, port));
  return std::make_unique<SimListener>(*this, std::move(state));
}

std::expected<std::unique_ptr<Stream>, NetError> SimNetwork::connect(const std::string& from_host,
                                                                     const Address& address,
                                                                     Instant deadline) {
  const std::string to_host = resolve(from_host, address.host);
  if (!has_host(to_host)) return std::unexpected(NetError::unreachable);
  // The handshake needs both directions; across a partition the SYN is retried until the deadline.
  while (!can_deliver(from_host, to_host) || !can_deliver(to_host, from_host)) {
    const WakeReason reason = wait_on(*path_waiters_, deadline);
    if (reason == WakeReason::cancelled) return std::unexpected(NetError::closed);
    if (reason == WakeReason::timed_out) return std::unexpected(NetError::timed_out);
  }
  if (!sleep_until(add_saturating(scheduler_.now(), sample_latency()), deadline)) {
    return std::unexpected(NetError::timed_out);
  }
  if (random_.bernoulli(faults_.refuse_probability_per_connect)) {
    scheduler_.trace(hash64(to_host, 0x4ef5));
    return std::unexpected(NetError::refused);
  }
  auto found = listeners_.find({to_host, address.port});
  std::shared_ptr<ListenerState> listener;
  if (found != listeners_.end()) listener = found->second.lock();
  if (!listener || listener->closed || listener->backlog.size() >= options_.accept_backlog_max) {
    return std::unexpected(NetError::refused);
  }
  if (connections_.size() >= options_.connections_max) kick_all();  // prunes dead entries
  assert(connections_.size() < options_.connections_max);

  auto connection = std::make_shared<Connection>();
  connection->id = next_connection_id_++;
  connection->addresses[0] = Address{from_host, next_free_port(from_host)};
  connection->addresses[1] = Address{to_host, address.port};
  connection->directions[0].from_host = from_host;
  connection->directions[0].to_host = to_host;
  connection->directions[1].from_host = to_host;
  connection->directions[1].to_host = from_host;
  connections_.emplace(connection->id, connection);
  listener->backlog.push_back(connection);
  listener->acceptors.wake_all(scheduler_);
  scheduler_.trace(mix64(connection->id) ^ hash64(to_host, address.port));

  // If the SYN-ACK arrives too late, this stream is dropped and the server sees end of stream.
  auto stream = std::make_unique<SimStream>(*this, connection, 0);
  if (!sleep_until(add_saturating(scheduler_.now(), sample_latency()), deadline)) {
    return std::unexpected(NetError::timed_out);
  }
  if (connection->reset) return std::unexpected(NetError::reset);
  return stream;
}

std::expected<std::unique_ptr<Stream>, NetError> SimNetwork::accept(ListenerState& listener,
                                                                    Instant deadline) {
  for (;;) {
    if (listener.closed) return std::unexpected(NetError::closed);
    if (!listener.backlog.empty()) {
      std::shared_ptr<Connection> connection = std::move(listener.backlog.front());
      listener.backlog.pop_front();
      return std::make_unique<SimStream>(*this, std::move(connection), 1);
    }
    const WakeReason reason = wait_on(listener.acceptors, deadline);
    if (reason == WakeReason::cancelled) return std::unexpected(NetError::closed);
    if (reason == WakeReason::timed_out && listener.backlog.empty() && !listener.closed) {
      return std::unexpected(NetError::timed_out);
    }
  }
}

void SimNetwork::close_listener(ListenerState& listener) {
  if (listener.closed) return;
  listener.closed = true;
  // Connections nobody accepted: their clients see a reset, as with a closed listening socket.
  for (auto& connection : listener.backlog) reset_connection(*connection);
  listener.backlog.clear();
  listener.acceptors.wake_all(scheduler_);
}

// ---- Streams ----

std::expected<std::size_t, NetError> SimNetwork::read(Connection& connection, int end,
                                                      std::span<std::byte> buffer,
                                                      Instant deadline) {
  assert(end == 0 || end == 1);
  Direction& incoming = connection.directions[1 - end];
  for (;;) {
    if (connection.closed[end]) return std::unexpected(NetError::closed);
    if (connection.reset) return std::unexpected(NetError::reset);
    if (buffer.empty()) return 0;
    if (!incoming.readable.empty()) {
      const std::size_t count = std::min(buffer.size(), incoming.readable.size());
      std::copy_n(incoming.readable.begin(), count, buffer.begin());
      incoming.readable.erase(incoming.readable.begin(),
                              incoming.readable.begin() + static_cast<std::ptrdiff_t>(count));
      assert(incoming.buffered_bytes >= count);
      incoming.buffered_bytes -= count;
      incoming.writers.wake_all(scheduler_);
      return count;
    }
    if (incoming.fin_delivered) return std::unexpected(NetError::closed);
    const WakeReason reason = wait_on(incoming.readers, deadline);
    if (reason == WakeReason::cancelled) return std::unexpected(NetError::closed);
    if (reason == WakeReason::timed_out && incoming.readable.empty() && !incoming.fin_delivered &&
        !connection.reset && !connection.closed[end]) {
      return std::unexpected(NetError::timed_out);
    }
  }
}

std::expected<void, NetError> SimNetwork::write(Connection& connection, int end,
                                                std::span<const std::byte> bytes,
                                                Instant deadline) {
  assert(end == 0 || end == 1);
  Direction& outgoing = connection.directions[end];
  if (!connection.closed[end] && !connection.reset && !bytes.empty() &&
      random_.bernoulli(faults_.reset_probability_per_write)) {
    scheduler_.trace(mix64(connection.id) ^ 0x4e5e7);
    reset_connection(connection);
  }
  std::size_t written = 0;
  while (written < bytes.size()) {
    if (connection.closed[end]) return std::unexpected(NetError::closed);
    if (connection.reset || connection.closed[1 - end]) return std::unexpected(NetError::reset);
    assert(outgoing.buffered_bytes <= options_.send_buffer_bytes);
    const std::size_t space = options_.send_buffer_bytes - outgoing.buffered_bytes;
    if (space == 0) {
      const WakeReason reason = wait_on(outgoing.writers, deadline);
      if (reason == WakeReason::cancelled) return std::unexpected(NetError::closed);
      if (reason == WakeReason::timed_out &&
          outgoing.buffered_bytes == options_.send_buffer_bytes) {
        return std::unexpected(NetError::timed_out);
      }
      continue;
    }
    const std::size_t count = std::min({space, bytes.size() - written, options_.segment_bytes_max});
    enqueue(connection, end, bytes.subspan(written, count), false);
    written += count;
  }
  if (connection.closed[end]) return std::unexpected(NetError::closed);
  if (connection.reset) return std::unexpected(NetError::reset);
  return {};
}

void SimNetwork::close_end(Connection& connection, int end) {
  if (connection.closed[end]) return;
  connection.closed[end] = true;
  Direction& outgoing = connection.directions[end];
  Direction& incoming = connection.directions[1 - end];
  // Waiters on this end fail with `closed`; the peer's writers fail with `reset`.
  incoming.readers.wake_all(scheduler_);
  incoming.writers.wake_all(scheduler_);
  outgoing.writers.wake_all(scheduler_);
  if (!connection.reset) enqueue(connection, end, {}, true);
}

void SimNetwork::reset_connection(Connection& connection) {
  if (connection.reset) return;
  connection.reset = true;
  scheduler_.trace(mix64(connection.id) ^ 0x4e5e7);
  for (Direction& direction : connection.directions) {
    if (direction.timer != 0) scheduler_.cancel_timer(direction.timer);
    direction.timer = 0;
    direction.in_flight.clear();
    direction.readable.clear();
    direction.buffered_bytes = 0;
    direction.readers.wake_all(scheduler_);
    direction.writers.wake_all(scheduler_);
  }
}

void SimNetwork::enqueue(Connection& connection, int end, std::span<const std::byte> bytes,
                         bool fin) {
  Direction& direction = connection.directions[end];
  const Instant now = scheduler_.now();
  Instant sent_at = now;
  if (faults_.bandwidth_bytes_per_second > 0) {
    const auto transmit_ns =
        static_cast<std::int64_t>(static_cast<double>(bytes.size()) * 1e9 /
                                  static_cast<double>(faults_.bandwidth_bytes_per_second));
    direction.link_free_at = std::max(direction.link_free_at, now) + Duration(transmit_ns);
    sent_at = direction.link_free_at;
  }
  const Instant deliver_at = std::max(sent_at + sample_latency(), direction.last_deliver_at);
  direction.last_deliver_at = deliver_at;
  direction.in_flight.push_back(
      Segment{deliver_at, std::vector<std::byte>(bytes.begin(), bytes.end()), fin});
  direction.buffered_bytes += bytes.size();
  assert(direction.buffered_bytes <= options_.send_buffer_bytes);
  if (direction.timer == 0) {
    auto found = connections_.find(connection.id);
    assert(found != connections_.end());
    pump(found->second.lock(), end);
  }
}

void SimNetwork::pump(const std::shared_ptr<Connection>& connection, int index) {
  assert(connection);
  Direction& direction = connection->directions[index];
  if (direction.timer != 0) scheduler_.cancel_timer(direction.timer);
  direction.timer = 0;
  if (connection->reset || direction.in_flight.empty()) return;
  // Held directions deliver nothing; heal_all() or the clog's end timer pumps them again.
  if (!can_deliver(direction.from_host, direction.to_host)) return;

  const Instant now = scheduler_.now();
  bool delivered = false;
  while (!direction.in_flight.empty() && direction.in_flight.front().deliver_at <= now) {
    Segment& segment = direction.in_flight.front();
    direction.readable.insert(direction.readable.end(), segment.bytes.begin(), segment.bytes.end());
    if (segment.fin) direction.fin_delivered = true;
    scheduler_.trace(mix64(connection->id * 2 + static_cast<std::uint64_t>(index)) ^
                     segment.bytes.size());
    direction.in_flight.pop_front();
    delivered = true;
  }
  if (delivered) direction.readers.wake_all(scheduler_);
  if (direction.in_flight.empty()) return;
  std::weak_ptr<Connection> weak = connection;
  direction.timer =
      scheduler_.schedule_at(direction.in_flight.front().deliver_at, [this, weak, index] {
        if (auto live = weak.lock()) {
          live->directions[index].timer = 0;
          pump(live, index);
        }
      });
}

}  // namespace sluice::sim
