#pragma once
// Sends an encoded message whose record bytes stay in files: the frame's length prefix, the
// encoded bytes, and the FileRecords spliced in at their places with Stream::send_file
// (sendfile(2) in the runtime), so a Fetch response never copies record batches into memory.

#include <expected>
#include <span>
#include <vector>

#include "core/env/net.h"
#include "core/protocol/codec.h"

namespace sluice::protocol {

std::expected<void, NetError> write_spliced_frame(Stream& stream, std::span<const std::byte> body,
                                                  const std::vector<Splice>& splices, Instant deadline);

}  // namespace sluice::protocol
