#pragma once
// Byte-stream networking as broker code sees it. Errors are values; every blocking call has a
// deadline. A Stream is used by one reader fiber and one writer fiber at a time at most.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/env/time.h"

namespace sluice {

class File;

enum class NetError : std::uint8_t {
  refused,          // nobody listens there (or the simulator refused the connect)
  reset,            // the peer or the network reset the connection
  timed_out,        // the deadline passed
  closed,           // orderly end of stream from the peer, or this end was closed
  address_in_use,   // listen: the address is taken
  invalid_address,  // could not parse or resolve the address
  unreachable,      // no route (partitioned, host unknown)
  io,               // any other system error
};

std::string_view to_string(NetError error);

struct Address {
  std::string host;
  std::uint16_t port = 0;

  // Parses "host:port" (IPv6 as "[::1]:9092").
  static std::expected<Address, NetError> parse(std::string_view text);
  std::string to_string() const;
  bool operator==(const Address&) const = default;
  auto operator<=>(const Address&) const = default;
};

class Stream {
 public:
  virtual ~Stream() = default;
  // Reads at least one byte (up to buffer.size()). End of stream is NetError::closed.
  virtual std::expected<std::size_t, NetError> read_some(std::span<std::byte> buffer,
                                                         Instant deadline) = 0;
  // Writes every byte or fails.
  virtual std::expected<void, NetError> write_all(std::span<const std::byte> bytes,
                                                  Instant deadline) = 0;
  // Closes both directions; pending and later calls on this end fail with `closed`.
  virtual void close() = 0;
  virtual Address local_address() const = 0;
  virtual Address peer_address() const = 0;

  // Reads exactly buffer.size() bytes or fails.
  std::expected<void, NetError> read_exact(std::span<std::byte> buffer, Instant deadline);
  // Writes `size_bytes` of `file` from `offset` (Fetch responses serve record bytes this way).
  // The runtime uses sendfile(2), so the bytes never pass through user space; this default
  // (used by the simulator) reads and writes in chunks. A file shorter than asked is NetError::io.
  virtual std::expected<void, NetError> send_file(File& file, std::uint64_t offset, std::size_t size_bytes,
                                                  Instant deadline);
};

class Listener {
 public:
  virtual ~Listener() = default;
  virtual std::expected<std::unique_ptr<Stream>, NetError> accept(Instant deadline) = 0;
  virtual Address local_address() const = 0;
  virtual void close() = 0;
};

class Net {
 public:
  virtual ~Net() = default;
  // Port 0 picks a free port; local_address() tells which.
  virtual std::expected<std::unique_ptr<Listener>, NetError> listen(const Address& address) = 0;
  virtual std::expected<std::unique_ptr<Stream>, NetError> connect(const Address& address,
                                                                   Instant deadline) = 0;
};

}  // namespace sluice
