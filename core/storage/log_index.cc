#include "core/storage/log_index.h"

#include <algorithm>
#include <cassert>

#include "core/util/bytes.h"
#include "core/util/crc32c.h"

namespace sluice::storage {

namespace {

constexpr std::uint32_t kOffsetIndexMagic = 0x534c4f49;  // "SLOI"
constexpr std::uint32_t kTimeIndexMagic = 0x534c5449;    // "SLTI"
constexpr std::size_t kFileHeaderBytes = 4 + 8 + 8 + 8 + 4;
constexpr std::size_t kFileTrailerBytes = 4;
constexpr std::size_t kOffsetEntryBytes = 8;
constexpr std::size_t kTimeEntryBytes = 12;

// One writer for both files: header, entries (written by `write_entry`), checksum.
template <typename Entry, typename WriteEntry>
std::vector<std::byte> encode_file(std::uint32_t magic, const IndexFileSummary& summary,
                                   const std::vector<Entry>& entries, WriteEntry write_entry) {
  Bytes image;
  ByteWriter writer(image);
  writer.u32(magic);
  writer.u64(static_cast<std::uint64_t>(summary.base_offset));
  writer.u64(summary.log_size_bytes);
  writer.u64(static_cast<std::uint64_t>(summary.summary));
  writer.u32(static_cast<std::uint32_t>(entries.size()));
  for (const Entry& entry : entries) write_entry(writer, entry);
  writer.u32(crc32c(image));
  return image;
}

// One reader for both files: checks size, magic and checksum, then reads `entry_count` entries
// with `read_entry`.
template <typename Index, typename ReadEntry>
std::expected<std::pair<Index, IndexFileSummary>, IndexFileError> decode_file(
    std::span<const std::byte> image, std::uint32_t magic, std::size_t entry_bytes,
    ReadEntry read_entry) {
  if (image.size() < kFileHeaderBytes + kFileTrailerBytes) return std::unexpected(IndexFileError::truncated);
  const auto body = image.first(image.size() - kFileTrailerBytes);
  ByteReader trailer(image.last(kFileTrailerBytes));
  if (crc32c(body) != trailer.u32()) return std::unexpected(IndexFileError::bad_checksum);
  ByteReader reader(body);
  if (reader.u32() != magic) return std::unexpected(IndexFileError::bad_magic);
  IndexFileSummary summary;
  summary.base_offset = static_cast<std::int64_t>(reader.u64());
  summary.log_size_bytes = reader.u64();
  summary.summary = static_cast<std::int64_t>(reader.u64());
  const std::uint32_t entry_count = reader.u32();
  if (reader.remaining() != std::size_t{entry_count} * entry_bytes) {
    return std::unexpected(IndexFileError::truncated);
  }
  Index index;
  for (std::uint32_t i = 0; i < entry_count; ++i) {
    if (!read_entry(reader, index)) return std::unexpected(IndexFileError::not_monotonic);
  }
  assert(reader.ok() && reader.remaining() == 0);
  return std::pair{std::move(index), summary};
}

}  // namespace

void OffsetIndex::add(OffsetIndexEntry entry) {
  assert(entries_.empty() || (entry.relative_offset > entries_.back().relative_offset &&
                              entry.position > entries_.back().position));
  entries_.push_back(entry);
}

OffsetIndexEntry OffsetIndex::floor(std::uint32_t relative_offset) const {
  auto after = std::upper_bound(entries_.begin(), entries_.end(), relative_offset,
                                [](std::uint32_t value, const OffsetIndexEntry& entry) {
                                  return value < entry.relative_offset;
                                });
  if (after == entries_.begin()) return OffsetIndexEntry{};
  return *(after - 1);
}

void OffsetIndex::truncate_at_position(std::uint32_t position) {
  auto first_dropped = std::lower_bound(entries_.begin(), entries_.end(), position,
                                        [](const OffsetIndexEntry& entry, std::uint32_t value) {
                                          return entry.position < value;
                                        });
  entries_.erase(first_dropped, entries_.end());
}

std::vector<std::byte> OffsetIndex::encode(const IndexFileSummary& summary) const {
  return encode_file(kOffsetIndexMagic, summary, entries_,
                     [](ByteWriter& writer, const OffsetIndexEntry& entry) {
                       writer.u32(entry.relative_offset);
                       writer.u32(entry.position);
                     });
}

std::expected<std::pair<OffsetIndex, IndexFileSummary>, IndexFileError> OffsetIndex::decode(
    std::span<const std::byte> image) {
  return decode_file<OffsetIndex>(image, kOffsetIndexMagic, kOffsetEntryBytes,
                                  [](ByteReader& reader, OffsetIndex& index) {
                                    OffsetIndexEntry entry;
                                    entry.relative_offset = reader.u32();
                                    entry.position = reader.u32();
                                    const auto& entries = index.entries_;
                                    if (!entries.empty() &&
                                        (entry.relative_offset <= entries.back().relative_offset ||
                                         entry.position <= entries.back().position)) {
                                      return false;
                                    }
                                    index.entries_.push_back(entry);
                                    return true;
                                  });
}

void TimeIndex::add(TimeIndexEntry entry) {
  if (!entries_.empty() && entry.timestamp_ms <= entries_.back().timestamp_ms) return;
  assert(entries_.empty() || entry.relative_offset > entries_.back().relative_offset);
  entries_.push_back(entry);
}

std::uint32_t TimeIndex::scan_start(std::int64_t timestamp_ms) const {
  auto first_not_below = std::lower_bound(entries_.begin(), entries_.end(), timestamp_ms,
                                          [](const TimeIndexEntry& entry, std::int64_t value) {
                                            return entry.timestamp_ms < value;
                                          });
  if (first_not_below == entries_.begin()) return 0;
  return (first_not_below - 1)->relative_offset;
}

void TimeIndex::truncate_at_offset(std::uint32_t relative_offset) {
  auto first_dropped = std::lower_bound(entries_.begin(), entries_.end(), relative_offset,
                                        [](const TimeIndexEntry& entry, std::uint32_t value) {
                                          return entry.relative_offset < value;
                                        });
  entries_.erase(first_dropped, entries_.end());
}

std::vector<std::byte> TimeIndex::encode(const IndexFileSummary& summary) const {
  return encode_file(kTimeIndexMagic, summary, entries_,
                     [](ByteWriter& writer, const TimeIndexEntry& entry) {
                       writer.u64(static_cast<std::uint64_t>(entry.timestamp_ms));
                       writer.u32(entry.relative_offset);
                     });
}

std::expected<std::pair<TimeIndex, IndexFileSummary>, IndexFileError> TimeIndex::decode(
    std::span<const std::byte> image) {
  return decode_file<TimeIndex>(image, kTimeIndexMagic, kTimeEntryBytes,
                                [](ByteReader& reader, TimeIndex& index) {
                                  TimeIndexEntry entry;
                                  entry.timestamp_ms = static_cast<std::int64_t>(reader.u64());
                                  entry.relative_offset = reader.u32();
                                  const auto& entries = index.entries_;
                                  if (!entries.empty() &&
                                      (entry.timestamp_ms <= entries.back().timestamp_ms ||
                                       entry.relative_offset <= entries.back().relative_offset)) {
                                    return false;
                                  }
                                  index.entries_.push_back(entry);
                                  return true;
                                });
}

}  // namespace sluice::storage
