#pragma once
// The two sparse indexes of one segment, kept in memory while the segment is open and written to
// `<base>.index` / `<base>.timeindex` when the segment closes (roll) or the log shuts down
// cleanly. They are hints, never the truth: every position they give is re-checked against the
// batch headers in the .log file, and a file is trusted at open only after a clean shutdown and
// only when its checksum and the .log size it describes both match (see partition_log.h).
//
// File image (big-endian):
//   magic u32 | base_offset i64 | log_size_bytes u64 | summary i64 | entry_count u32 |
//   entries | crc32c u32 over everything before it.
//   .index:     summary = the segment's end offset;  entry = relative_offset u32, position u32
//   .timeindex: summary = the largest batch max timestamp (ms, -1 if none);
//               entry = timestamp_ms i64, relative_offset u32
// A time entry (T, r): T is the largest max timestamp of the segment's batches before the one at
// relative offset r, so a lookup for a timestamp > T may skip everything before r.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <vector>

namespace sluice::storage {

struct OffsetIndexEntry {
  std::uint32_t relative_offset = 0;  // batch base offset - segment base offset
  std::uint32_t position = 0;         // byte position of the batch in the .log
  bool operator==(const OffsetIndexEntry&) const = default;
};

struct TimeIndexEntry {
  std::int64_t timestamp_ms = 0;      // running max timestamp of the batches before the batch
  std::uint32_t relative_offset = 0;  // that batch's base offset - segment base offset
  bool operator==(const TimeIndexEntry&) const = default;
};

// What a decoded index file says about its segment.
struct IndexFileSummary {
  std::int64_t base_offset = 0;
  std::uint64_t log_size_bytes = 0;
  std::int64_t summary = 0;
};

enum class IndexFileError : std::uint8_t { truncated, bad_magic, bad_checksum, not_monotonic };

class OffsetIndex {
 public:
  // Entries must come in increasing offset and position order.
  void add(OffsetIndexEntry entry);
  // The entry with the largest relative offset <= `relative_offset`; {0, 0} (the segment's
  // start) when there is none.
  OffsetIndexEntry floor(std::uint32_t relative_offset) const;
  // Drops entries at or after `position` (truncation).
  void truncate_at_position(std::uint32_t position);
  void clear() { entries_.clear(); }
  const std::vector<OffsetIndexEntry>& entries() const { return entries_; }

  std::vector<std::byte> encode(const IndexFileSummary& summary) const;
  static std::expected<std::pair<OffsetIndex, IndexFileSummary>, IndexFileError> decode(
      std::span<const std::byte> image);

 private:
  std::vector<OffsetIndexEntry> entries_;
};

class TimeIndex {
 public:
  // Entries must come in strictly increasing timestamp and increasing offset order; an entry
  // whose timestamp is not above the last one is ignored (it adds no information).
  void add(TimeIndexEntry entry);
  // The relative offset from which a scan for the first batch with max timestamp >= ts may
  // start: the entry with the largest timestamp < ts, or 0.
  std::uint32_t scan_start(std::int64_t timestamp_ms) const;
  void truncate_at_offset(std::uint32_t relative_offset);
  void clear() { entries_.clear(); }
  const std::vector<TimeIndexEntry>& entries() const { return entries_; }

  std::vector<std::byte> encode(const IndexFileSummary& summary) const;
  static std::expected<std::pair<TimeIndex, IndexFileSummary>, IndexFileError> decode(
      std::span<const std::byte> image);

 private:
  std::vector<TimeIndexEntry> entries_;
};

}  // namespace sluice::storage
