#pragma once
// Small whole-file helpers shared by segments (index files) and the partition log (checkpoint and
// clean-shutdown marker): read a file whole, rewrite it whole and sync it, and seal a small
// record with a CRC-32C so a torn or flipped copy is recognised and ignored.

#include <cstddef>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/env/disk.h"

namespace sluice::storage {

std::expected<std::vector<std::byte>, DiskError> read_whole_file(Disk& disk, const std::string& path);
// Truncates, writes and datasyncs `path` (created if missing). The name is durable only after the
// caller syncs the directory.
std::expected<void, DiskError> write_whole_file(Disk& disk, const std::string& path,
                                                std::span<const std::byte> image);
// Writes `path` atomically: `path`.tmp written and synced, renamed over `path`, directory synced.
std::expected<void, DiskError> replace_file_durably(Disk& disk, const std::string& path,
                                                    std::span<const std::byte> image);
// Succeeds when the file was removed or was not there.
std::expected<void, DiskError> remove_if_present(Disk& disk, const std::string& path);

// `body` followed by crc32c(body).
std::vector<std::byte> seal(std::vector<std::byte> body);
// The body of a sealed image; nullopt when too short or the checksum differs.
std::optional<std::span<const std::byte>> unseal(std::span<const std::byte> image);

}  // namespace sluice::storage
