#include "core/util/frame_io.h"

#include <algorithm>

namespace sluice {

std::expected<std::uint32_t, NetError> read_frame_size(Stream& stream, std::uint32_t body_bytes_max,
                                                       Instant deadline) {
  std::byte header[4];
  if (auto got = stream.read_exact(header, deadline); !got) return std::unexpected(got.error());
  const std::uint32_t size = ByteReader(header).u32();
  if (size == 0 || size > body_bytes_max) return std::unexpected(NetError::reset);
  return size;
}

std::expected<Bytes, NetError> read_frame_body(Stream& stream, std::uint32_t size,
                                               Instant deadline) {
  // Grow with the bytes that actually arrive: a peer that announces 100 MiB and sends 10 bytes
  // must not make the broker allocate (and zero) 100 MiB. Once a first chunk has arrived the rest
  // is reserved at once (address space: only what arrives is zeroed and touched), so a large body
  // is not copied at every doubling (that copy was 6.6% of the broker's CPU under 1 MiB frames).
  constexpr std::size_t kChunkBytes = 64 * 1024;
  Bytes body;
  body.reserve(std::min<std::size_t>(size, kChunkBytes));
  while (body.size() < size) {
    const std::size_t filled = body.size();
    if (filled >= kChunkBytes && body.capacity() < size) body.reserve(size);
    const std::size_t chunk = std::min<std::size_t>(size - filled, std::max(filled, kChunkBytes));
    body.resize(filled + chunk);
    if (auto got = stream.read_exact(std::span<std::byte>(body).subspan(filled, chunk), deadline);
        !got) {
      return std::unexpected(got.error());
    }
  }
  return body;
}

std::expected<Bytes, NetError> read_frame(Stream& stream, std::uint32_t body_bytes_max,
                                          Instant deadline) {
  auto size = read_frame_size(stream, body_bytes_max, deadline);
  if (!size) return std::unexpected(size.error());
  return read_frame_body(stream, *size, deadline);
}

std::expected<void, NetError> write_frame(Stream& stream, std::span<const std::byte> body,
                                          Instant deadline) {
  Bytes frame;
  frame.reserve(body.size() + 4);
  ByteWriter writer(frame);
  writer.u32(static_cast<std::uint32_t>(body.size()));
  writer.bytes(body);
  return stream.write_all(frame, deadline);
}

}  // namespace sluice
