#include "core/protocol/spliced_frame.h"

#include <cassert>

namespace sluice::protocol {

std::expected<void, NetError> write_spliced_frame(Stream& stream, std::span<const std::byte> body,
                                                  const std::vector<Splice>& splices, Instant deadline) {
  std::uint64_t total = body.size();
  for (const Splice& splice : splices) total += splice.records.size_bytes;
  if (total > INT32_MAX) return std::unexpected(NetError::io);  // a Kafka frame length is an int32
  // The prefix and the first encoded run go out together; then each splice and the run after it.
  Bytes head;
  ByteWriter(head).u32(static_cast<std::uint32_t>(total));
  std::size_t written = 0;
  const std::size_t first_run = splices.empty() ? body.size() : splices.front().position;
  head.insert(head.end(), body.begin(), body.begin() + static_cast<std::ptrdiff_t>(first_run));
  if (auto sent = stream.write_all(head, deadline); !sent) return sent;
  written = first_run;
  for (std::size_t i = 0; i < splices.size(); ++i) {
    const Splice& splice = splices[i];
    assert(splice.position == written);
    for (const FileSlice& slice : splice.records.slices) {
      assert(slice.file != nullptr);
      if (auto sent = stream.send_file(*slice.file, slice.position, slice.size_bytes, deadline); !sent) return sent;
    }
    const std::size_t run_end = i + 1 < splices.size() ? splices[i + 1].position : body.size();
    if (run_end > written) {
      if (auto sent = stream.write_all(body.subspan(written, run_end - written), deadline); !sent) return sent;
    }
    written = run_end;
  }
  assert(written == body.size());
  return {};
}

}  // namespace sluice::protocol
