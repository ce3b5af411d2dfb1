#include "core/util/frame_io.h"

namespace sluice {

std::expected<Bytes, NetError> read_frame(Stream& stream, std::uint32_t body_bytes_max, Instant deadline) {
  std::byte header[4];
  if (auto got = stream.read_exact(header, deadline); !got) return std::unexpected(got.error());
  const std::uint32_t size = ByteReader(header).u32();
  if (size == 0 || size > body_bytes_max) return std::unexpected(NetError::reset);
  Bytes body(size);
  if (auto got = stream.read_exact(body, deadline); !got) return std::unexpected(got.error());
  return body;
}

std::expected<void, NetError> write_frame(Stream& stream, std::span<const std::byte> body, Instant deadline) {
  Bytes frame;
  frame.reserve(body.size() + 4);
  ByteWriter writer(frame);
  writer.u32(static_cast<std::uint32_t>(body.size()));
  writer.bytes(body);
  return stream.write_all(frame, deadline);
}

}  // namespace sluice
