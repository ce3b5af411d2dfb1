#pragma once
// TCP for the runtime: non-blocking sockets registered edge-triggered with the EpollReactor.
// A blocked read/write/accept/connect suspends its fiber, never the reactor thread.
//
// Name resolution: numeric IPv4/IPv6 literals never block. Any other host name (for example
// "localhost") is resolved with a synchronous getaddrinfo() on the reactor thread, which blocks
// every fiber while it runs; that is acceptable for the few names given on the command line at
// startup, and is the one blocking call here.
//
// Concurrency: reactor thread only. A stream supports one reader fiber and one writer fiber at a
// time; close() may be called by any fiber while the others are blocked (they get `closed`).

#include <cstdint>
#include <memory>

#include "core/env/net.h"
#include "runtime/epoll_reactor.h"
#include "runtime/unique_fd.h"

namespace sluice::runtime {

// Maps a socket errno to its NetError (ECONNREFUSED -> refused, ECONNRESET/EPIPE -> reset, ...).
NetError net_error_from_errno(int error_number);

class RuntimeStream final : public Stream {
 public:
  // Takes a connected, non-blocking socket.
  static std::expected<std::unique_ptr<RuntimeStream>, NetError> adopt(EpollReactor& reactor,
                                                                       UniqueFd socket);
  ~RuntimeStream() override;

  std::expected<std::size_t, NetError> read_some(std::span<std::byte> buffer,
                                                 Instant deadline) override;
  std::expected<void, NetError> write_all(std::span<const std::byte> bytes,
                                          Instant deadline) override;
  // sendfile(2) when `file` is a RuntimeFile: the bytes go from the page cache to the socket.
  std::expected<void, NetError> send_file(File& file, std::uint64_t offset, std::size_t size_bytes,
                                          Instant deadline) override;
  void close() override;
  Address local_address() const override { return local_; }
  Address peer_address() const override { return peer_; }

 private:
  RuntimeStream(EpollReactor& reactor, UniqueFd socket);

  UniqueFd socket_;
  FdWatch watch_;
  bool closed_ = false;
  Address local_;
  Address peer_;
};

class RuntimeListener final : public Listener {
 public:
  static std::expected<std::unique_ptr<RuntimeListener>, NetError> bind(EpollReactor& reactor,
                                                                        const Address& address);
  ~RuntimeListener() override;

  std::expected<std::unique_ptr<Stream>, NetError> accept(Instant deadline) override;
  Address local_address() const override { return local_; }
  void close() override;

 private:
  RuntimeListener(EpollReactor& reactor, UniqueFd socket);

  EpollReactor& reactor_;
  UniqueFd socket_;
  FdWatch watch_;
  bool closed_ = false;
  Address local_;
};

class RuntimeNet final : public Net {
 public:
  explicit RuntimeNet(EpollReactor& reactor) : reactor_(reactor) {}

  // SO_REUSEADDR, backlog SOMAXCONN. Port 0 picks a free port.
  std::expected<std::unique_ptr<Listener>, NetError> listen(const Address& address) override;
  // Tries each resolved address in turn (e.g. ::1 then 127.0.0.1 for "localhost").
  std::expected<std::unique_ptr<Stream>, NetError> connect(const Address& address,
                                                           Instant deadline) override;

 private:
  std::expected<std::unique_ptr<Stream>, NetError> connect_one(const void* socket_address,
                                                               std::uint32_t length, int family,
                                                               Instant deadline);

  EpollReactor& reactor_;
};

}  // namespace sluice::runtime
