#pragma once
// A TCP echo server written only against core/env: the smallest service that drives the
// network path of a world (accept, one fiber per connection, read/write with deadlines, close)
// in both the runtime and the simulator. Used by the runtime's load test.
//
// Lifecycle: start() listens and spawns the accept fiber in the service's own scope; each
// connection gets a fiber in a child scope. stop() (or the destructor) closes the listener and
// cancels and unwinds every fiber of the service before returning; call it from outside the
// service's own fibers.
// Concurrency: one scheduler; all state is touched by its fibers only.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>

#include "core/env/env.h"

namespace sluice::demo {

struct EchoOptions {
  // A connection with no bytes moving for this long is closed.
  Duration idle_timeout = seconds(60);
  std::size_t buffer_size_bytes = 64 * 1024;
  // Pause after an accept failure such as EMFILE, so the accept loop does not spin.
  Duration accept_retry_delay = milliseconds(50);
};

class EchoService {
 public:
  explicit EchoService(Env& env, EchoOptions options = {});
  ~EchoService();
  EchoService(const EchoService&) = delete;
  EchoService& operator=(const EchoService&) = delete;

  // Listens on `listen` (port 0 picks one) and returns the address actually bound.
  std::expected<Address, NetError> start(const Address& listen);
  void stop();

  std::size_t connections_open() const { return connections_open_; }
  // The most connections that were open at the same moment.
  std::size_t connections_open_peak() const { return connections_open_peak_; }
  std::uint64_t connections_accepted() const { return connections_accepted_; }
  std::uint64_t bytes_echoed() const { return bytes_echoed_; }

 private:
  void accept_loop();
  void serve(std::unique_ptr<Stream> stream);

  Env& env_;
  EchoOptions options_;
  Log log_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Scope> scope_;             // the accept fiber
  std::unique_ptr<Scope> connection_scope_;  // child of scope_: one fiber per connection
  std::size_t connections_open_ = 0;
  std::size_t connections_open_peak_ = 0;
  std::uint64_t connections_accepted_ = 0;
  std::uint64_t bytes_echoed_ = 0;
};

}  // namespace sluice::demo
