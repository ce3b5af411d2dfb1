#pragma once
// Length-prefixed frames on a Stream: u32 big-endian body size, then the body. The Kafka wire
// protocol and Sluice's test services frame messages this way.

#include <cstdint>
#include <expected>

#include "core/env/net.h"
#include "core/util/bytes.h"

namespace sluice {

// Reads one frame. The size is checked against `body_bytes_max` before anything is allocated; a
// zero or oversized frame fails with NetError::reset (the caller closes the connection). The
// buffer is zeroed and filled (in chunks doubling from 64 KiB) only as body bytes arrive, so the
// memory touched follows what the peer really sent, not what it announced; once the first 64 KiB
// are in, the whole size is reserved (address space) so the body is never copied to grow.
std::expected<Bytes, NetError> read_frame(Stream& stream, std::uint32_t body_bytes_max,
                                          Instant deadline);
// The two halves of read_frame, for a caller that must act between them (e.g. wait for memory
// before reading the body): the checked size prefix, then a body of exactly that size (grown as
// its bytes arrive, like read_frame).
std::expected<std::uint32_t, NetError> read_frame_size(Stream& stream, std::uint32_t body_bytes_max,
                                                       Instant deadline);
std::expected<Bytes, NetError> read_frame_body(Stream& stream, std::uint32_t size,
                                               Instant deadline);
std::expected<void, NetError> write_frame(Stream& stream, std::span<const std::byte> body,
                                          Instant deadline);

}  // namespace sluice
