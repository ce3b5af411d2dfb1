#include "core/demo/echo_service.h"

#include <algorithm>
#include <cassert>
#include <utility>
#include <vector>

namespace sluice::demo {

EchoService::EchoService(Env& env, EchoOptions options)
    : env_(env), options_(options), log_(env.log().with_component("echo")) {
  assert(options_.buffer_size_bytes > 0);
}

EchoService::~EchoService() {
  stop();
}

std::expected<Address, NetError> EchoService::start(const Address& listen) {
  assert(listener_ == nullptr && "EchoService started twice");
  auto listener = env_.net().listen(listen);
  if (!listener) return std::unexpected(listener.error());
  listener_ = std::move(*listener);
  scope_ = std::make_unique<Scope>(env_.scheduler(), "echo");
  connection_scope_ = std::make_unique<Scope>(*scope_, "connections");
  scope_->spawn("echo-accept", [this] { accept_loop(); });
  const Address bound = listener_->local_address();
  log_.info("listening on {}", bound.to_string());
  return bound;
}

void EchoService::stop() {
  if (listener_ == nullptr) return;
  // Closing first wakes the accept fiber with `closed`; destroying the scopes then unwinds
  // every connection fiber (children first) while the listener object is still alive.
  listener_->close();
  connection_scope_.reset();
  scope_.reset();
  listener_.reset();
  assert(connections_open_ == 0);
}

void EchoService::accept_loop() {
  for (;;) {
    auto stream = listener_->accept(kNever);
    if (!stream) {
      if (stream.error() == NetError::closed) return;
      log_.warn("accept failed: {}; retrying", to_string(stream.error()));
      this_fiber::sleep_for(options_.accept_retry_delay);
      continue;
    }
    connections_accepted_++;
    connection_scope_->spawn("echo-connection", [this, stream = std::move(*stream)]() mutable {
      serve(std::move(stream));
    });
  }
}

void EchoService::serve(std::unique_ptr<Stream> stream) {
  connections_open_++;
  connections_open_peak_ = std::max(connections_open_peak_, connections_open_);
  // Counted down on every way out, including cancellation unwinding through here.
  struct Leave {
    std::size_t& open;
    ~Leave() { open--; }
  } leave{connections_open_};
  std::vector<std::byte> buffer(options_.buffer_size_bytes);
  for (;;) {
    auto received = stream->read_some(buffer, env_.deadline_after(options_.idle_timeout));
    if (!received) {
      if (received.error() == NetError::timed_out) {
        log_.debug("closing idle connection from {}", stream->peer_address().to_string());
      }
      break;
    }
    assert(*received > 0 && *received <= buffer.size());
    const std::span<const std::byte> echo(buffer.data(), *received);
    if (!stream->write_all(echo, env_.deadline_after(options_.idle_timeout))) break;
    bytes_echoed_ += *received;
  }
  stream->close();
}

}  // namespace sluice::demo
