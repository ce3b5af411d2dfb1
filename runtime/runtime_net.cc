#include "runtime/runtime_net.h"

#include <sys/sendfile.h>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "runtime/runtime_disk.h"

namespace sluice::runtime {

namespace {

struct ResolvedAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_UNSPEC;
};

// A malformed literal ("999.1.1.1", "::g") must fail at once, not wait on a DNS query.
bool looks_like_host_name(std::string_view host) {
  if (host.find(':') != std::string_view::npos) return false;
  for (char c : host) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  }
  return false;
}

std::expected<std::vector<ResolvedAddress>, NetError> resolve(const Address& address,
                                                              bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  const std::string service = std::to_string(address.port);
  addrinfo* results = nullptr;
  int status = ::getaddrinfo(address.host.c_str(), service.c_str(), &hints, &results);
  if (status == EAI_NONAME && looks_like_host_name(address.host)) {
    // Not a literal: resolve the name synchronously (blocks the reactor; see runtime_net.h).
    hints.ai_flags &= ~AI_NUMERICHOST;
    status = ::getaddrinfo(address.host.c_str(), service.c_str(), &hints, &results);
  }
  if (status != 0) return std::unexpected(NetError::invalid_address);
  std::vector<ResolvedAddress> resolved;
  for (const addrinfo* entry = results; entry != nullptr; entry = entry->ai_next) {
    if (entry->ai_addrlen > sizeof(sockaddr_storage)) continue;
    ResolvedAddress item;
    std::memcpy(&item.storage, entry->ai_addr, entry->ai_addrlen);
    item.length = entry->ai_addrlen;
    item.family = entry->ai_family;
    resolved.push_back(item);
  }
  ::freeaddrinfo(results);
  if (resolved.empty()) return std::unexpected(NetError::invalid_address);
  return resolved;
}

Address to_address(const sockaddr_storage& storage, socklen_t length) {
  char host[NI_MAXHOST] = {};
  char service[NI_MAXSERV] = {};
  if (::getnameinfo(reinterpret_cast<const sockaddr*>(&storage), length, host, sizeof(host),
                    service, sizeof(service), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return Address{};
  }
  return Address{host, static_cast<std::uint16_t>(std::stoul(service))};
}

Address local_address_of(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return Address{};
  return to_address(storage, length);
}

Address peer_address_of(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  // ENOTCONN when the peer already reset the connection: the address is then unknown.
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return Address{};
  return to_address(storage, length);
}

void set_no_delay(int fd) {
  // Kafka requests and responses are small and latency-bound: never wait for Nagle.
  const int enable = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &enable, sizeof(enable));
}

// What a fiber does after EAGAIN: wait for readiness and report why it stopped waiting.
std::expected<void, NetError> await(WakeReason reason) {
  switch (reason) {
    case WakeReason::notified:
      return {};
    case WakeReason::timed_out:
      return std::unexpected(NetError::timed_out);
    // Only while the fiber is already unwinding; its end of the connection is going away.
    case WakeReason::cancelled:
      return std::unexpected(NetError::closed);
  }
  return std::unexpected(NetError::io);
}

}  // namespace

NetError net_error_from_errno(int error_number) {
  switch (error_number) {
    case ECONNREFUSED:
      return NetError::refused;
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED:
      return NetError::reset;
    case ETIMEDOUT:
      return NetError::timed_out;
    case EADDRINUSE:
      return NetError::address_in_use;
    case EADDRNOTAVAIL:
    case EAFNOSUPPORT:
      return NetError::invalid_address;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
    case EHOSTDOWN:
      return NetError::unreachable;
    case EBADF:
      return NetError::closed;
    default:
      return NetError::io;
  }
}

// ---- RuntimeStream ----

RuntimeStream::RuntimeStream(EpollReactor& reactor, UniqueFd socket)
    : socket_(std::move(socket)), watch_(reactor, socket_.get()) {
  local_ = local_address_of(socket_.get());
  peer_ = peer_address_of(socket_.get());
}

std::expected<std::unique_ptr<RuntimeStream>, NetError> RuntimeStream::adopt(EpollReactor& reactor,
                                                                             UniqueFd socket) {
  assert(socket.valid());
  set_no_delay(socket.get());
  std::unique_ptr<RuntimeStream> stream(new RuntimeStream(reactor, std::move(socket)));
  if (stream->watch_.registration_error() != 0) {
    return std::unexpected(net_error_from_errno(stream->watch_.registration_error()));
  }
  return stream;
}

RuntimeStream::~RuntimeStream() {
  // A fiber blocked in this stream would resume into freed memory: close() it and let the
  // blocked fiber return before destroying the stream.
  assert(!watch_.has_waiters() && "RuntimeStream destroyed while a fiber is blocked in it");
  close();
}

std::expected<std::size_t, NetError> RuntimeStream::read_some(std::span<std::byte> buffer,
                                                              Instant deadline) {
  if (buffer.empty()) return 0;
  for (;;) {
    if (closed_) return std::unexpected(NetError::closed);
    const ssize_t received = ::recv(socket_.get(), buffer.data(), buffer.size(), 0);
    if (received > 0) return static_cast<std::size_t>(received);
    if (received == 0) return std::unexpected(NetError::closed);  // orderly end of stream
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return std::unexpected(net_error_from_errno(errno));
    }
    if (auto waited = await(watch_.wait_readable(deadline)); !waited) {
      return std::unexpected(closed_ ? NetError::closed : waited.error());
    }
  }
}

std::expected<void, NetError> RuntimeStream::write_all(std::span<const std::byte> bytes,
                                                       Instant deadline) {
  std::size_t written_bytes = 0;
  while (written_bytes < bytes.size()) {
    if (closed_) return std::unexpected(NetError::closed);
    const ssize_t sent = ::send(socket_.get(), bytes.data() + written_bytes,
                                bytes.size() - written_bytes, MSG_NOSIGNAL);
    if (sent >= 0) {
      written_bytes += static_cast<std::size_t>(sent);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return std::unexpected(net_error_from_errno(errno));
    }
    if (auto waited = await(watch_.wait_writable(deadline)); !waited) {
      return std::unexpected(closed_ ? NetError::closed : waited.error());
    }
  }
  assert(written_bytes == bytes.size());
  return {};
}

std::expected<void, NetError> RuntimeStream::send_file(File& file, std::uint64_t offset, std::size_t size_bytes,
                                                       Instant deadline) {
  auto* runtime_file = dynamic_cast<RuntimeFile*>(&file);
  if (runtime_file == nullptr || runtime_file->native_handle() < 0) {
    return Stream::send_file(file, offset, size_bytes, deadline);
  }
  auto file_offset = static_cast<off_t>(offset);
  std::size_t remaining = size_bytes;
  while (remaining > 0) {
    if (closed_) return std::unexpected(NetError::closed);
    const ssize_t sent = ::sendfile(socket_.get(), runtime_file->native_handle(), &file_offset, remaining);
    if (sent > 0) {
      remaining -= static_cast<std::size_t>(sent);
      continue;
    }
    if (sent == 0) return std::unexpected(NetError::io);  // the file ended before size_bytes
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return std::unexpected(net_error_from_errno(errno));
    if (auto waited = await(watch_.wait_writable(deadline)); !waited) {
      return std::unexpected(closed_ ? NetError::closed : waited.error());
    }
  }
  return {};
}

void RuntimeStream::close() {
  if (closed_) return;
  closed_ = true;
  // Deregister before closing: the fd number may be reused at once by another socket.
  watch_.detach_and_wake_all();
  socket_.reset();
}

// ---- RuntimeListener ----

RuntimeListener::RuntimeListener(EpollReactor& reactor, UniqueFd socket)
    : reactor_(reactor), socket_(std::move(socket)), watch_(reactor, socket_.get()) {
  local_ = local_address_of(socket_.get());
}

std::expected<std::unique_ptr<RuntimeListener>, NetError> RuntimeListener::bind(
    EpollReactor& reactor, const Address& address) {
  auto resolved = resolve(address, /*passive=*/true);
  if (!resolved) return std::unexpected(resolved.error());
  // The first resolved address only: a listener is one socket.
  const ResolvedAddress& target = resolved->front();
  UniqueFd socket(::socket(target.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!socket.valid()) return std::unexpected(net_error_from_errno(errno));
  // A restarted broker must rebind at once even while old connections sit in TIME_WAIT.
  const int enable = 1;
  ::setsockopt(socket.get(), SOL_SOCKET, SO_REUSEADDR, &enable, sizeof(enable));
  if (::bind(socket.get(), reinterpret_cast<const sockaddr*>(&target.storage), target.length) !=
      0) {
    return std::unexpected(net_error_from_errno(errno));
  }
  if (::listen(socket.get(), SOMAXCONN) != 0) return std::unexpected(net_error_from_errno(errno));
  std::unique_ptr<RuntimeListener> listener(new RuntimeListener(reactor, std::move(socket)));
  if (listener->watch_.registration_error() != 0) {
    return std::unexpected(net_error_from_errno(listener->watch_.registration_error()));
  }
  return listener;
}

RuntimeListener::~RuntimeListener() {
  assert(!watch_.has_waiters() && "RuntimeListener destroyed while a fiber is blocked in accept");
  close();
}

std::expected<std::unique_ptr<Stream>, NetError> RuntimeListener::accept(Instant deadline) {
  for (;;) {
    if (closed_) return std::unexpected(NetError::closed);
    UniqueFd socket(::accept4(socket_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (socket.valid()) {
      auto stream = RuntimeStream::adopt(reactor_, std::move(socket));
      if (!stream) return std::unexpected(stream.error());
      return std::unique_ptr<Stream>(std::move(*stream));
    }
    // A connection that died in the backlog is not the listener's failure: take the next one.
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      // EMFILE, ENFILE, ENOBUFS: the caller should back off and retry.
      return std::unexpected(net_error_from_errno(errno));
    }
    if (auto waited = await(watch_.wait_readable(deadline)); !waited) {
      return std::unexpected(closed_ ? NetError::closed : waited.error());
    }
  }
}

void RuntimeListener::close() {
  if (closed_) return;
  closed_ = true;
  watch_.detach_and_wake_all();
  socket_.reset();
}

// ---- RuntimeNet ----

std::expected<std::unique_ptr<Listener>, NetError> RuntimeNet::listen(const Address& address) {
  auto listener = RuntimeListener::bind(reactor_, address);
  if (!listener) return std::unexpected(listener.error());
  return std::unique_ptr<Listener>(std::move(*listener));
}

std::expected<std::unique_ptr<Stream>, NetError> RuntimeNet::connect(const Address& address,
                                                                     Instant deadline) {
  auto resolved = resolve(address, /*passive=*/false);
  if (!resolved) return std::unexpected(resolved.error());
  NetError last_error = NetError::unreachable;
  for (const ResolvedAddress& target : *resolved) {
    auto stream = connect_one(&target.storage, target.length, target.family, deadline);
    if (stream) return stream;
    last_error = stream.error();
    if (last_error == NetError::timed_out) break;  // the deadline covers all attempts
  }
  return std::unexpected(last_error);
}

std::expected<std::unique_ptr<Stream>, NetError> RuntimeNet::connect_one(const void* socket_address,
                                                                         std::uint32_t length,
                                                                         int family,
                                                                         Instant deadline) {
  UniqueFd socket(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!socket.valid()) return std::unexpected(net_error_from_errno(errno));
  const int status = ::connect(socket.get(), static_cast<const sockaddr*>(socket_address), length);
  // An interrupted non-blocking connect goes on in the background, like EINPROGRESS.
  const bool in_progress = status != 0 && (errno == EINPROGRESS || errno == EINTR);
  if (status != 0 && !in_progress) return std::unexpected(net_error_from_errno(errno));
  if (in_progress) {
    {
      FdWatch watch(reactor_, socket.get());
      if (watch.registration_error() != 0) {
        return std::unexpected(net_error_from_errno(watch.registration_error()));
      }
      // Writable (or error) once the handshake is over; the watch deregisters on every way out.
      if (auto waited = await(watch.wait_writable(deadline)); !waited) {
        return std::unexpected(waited.error());
      }
    }
    int connect_error = 0;
    socklen_t error_length = sizeof(connect_error);
    if (::getsockopt(socket.get(), SOL_SOCKET, SO_ERROR, &connect_error, &error_length) != 0) {
      return std::unexpected(net_error_from_errno(errno));
    }
    if (connect_error != 0) return std::unexpected(net_error_from_errno(connect_error));
  }
  auto stream = RuntimeStream::adopt(reactor_, std::move(socket));
  if (!stream) return std::unexpected(stream.error());
  return std::unique_ptr<Stream>(std::move(*stream));
}

}  // namespace sluice::runtime
