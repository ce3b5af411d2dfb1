#pragma once
// One segment of a partition log: the `<base>.log` file of stamped v2 batches plus its in-memory
// sparse indexes (persisted as `<base>.index` / `<base>.timeindex`, see log_index.h).
//
// A segment knows its byte size, its end offset (one past its last batch) and the largest batch
// max timestamp, and can walk its batches from any batch boundary. It does no locking and makes
// no durability decision: PartitionLog owns both (it serialises every mutation and decides when
// to datasync). Single-threaded, used from the fibers of one scheduler.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "core/env/disk.h"
#include "core/env/time.h"
#include "core/storage/log_index.h"
#include "core/storage/record_batch.h"

namespace sluice::storage {

// "<20-digit zero-padded base offset><suffix>", e.g. 00000000000000000042.log
std::string segment_file_name(std::int64_t base_offset, std::string_view suffix);
// The base offset of a name of the form above with that suffix; nullopt for any other name.
std::optional<std::int64_t> parse_segment_file_name(std::string_view name, std::string_view suffix);

inline constexpr std::string_view kLogSuffix = ".log";
inline constexpr std::uint64_t kPreallocateMinBytes = 64 * 1024;
inline constexpr std::uint64_t kPreallocateMaxBytes = 8 * 1024 * 1024;
inline constexpr std::string_view kOffsetIndexSuffix = ".index";
inline constexpr std::string_view kTimeIndexSuffix = ".timeindex";

// Removes a segment's files, indexes first (a .log is what makes a segment exist); missing files
// are fine. The caller syncs the directory.
std::expected<void, DiskError> remove_segment_files(Disk& disk, const std::string& directory,
                                                    std::int64_t base_offset);

// What a visitor of a walk over batches decides after each batch.
enum class Visit : std::uint8_t { next, stop };

// Why a walk ended.
enum class WalkEnd : std::uint8_t {
  end_of_data,    // reached the limit exactly on a batch boundary
  stopped,        // the visitor said stop
  invalid_batch,  // framing, CRC or offset continuity failed at `end_position`
};

struct WalkResult {
  WalkEnd end = WalkEnd::end_of_data;
  std::uint64_t end_position = 0;  // the position after the last batch visited
  std::int64_t next_offset = 0;    // one past the last batch visited
  std::optional<BatchError> error;  // set when end == invalid_batch and framing or CRC failed
};

// Called with each batch's header, its position, and its bytes (the whole batch).
using BatchVisitor =
    std::function<Visit(const BatchHeader& header, std::uint64_t position, std::span<const std::byte> batch)>;

struct WalkOptions {
  bool verify_crc = true;
  // How much to read at a time beyond the current batch: small for a short lookup, large for
  // scans and reads.
  std::size_t read_ahead_bytes = 1 << 20;
};

class Segment {
 public:
  // A new, empty segment file (its name is not durable until the caller syncs the directory).
  static std::expected<std::unique_ptr<Segment>, DiskError> create(Disk& disk,
                                                                   const std::string& directory,
                                                                   std::int64_t base_offset);
  // An existing segment file; its batches are unknown until recover_by_scan() or
  // load_index_files().
  static std::expected<std::unique_ptr<Segment>, DiskError> open(Disk& disk,
                                                                 const std::string& directory,
                                                                 std::int64_t base_offset);
  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  std::int64_t base_offset() const { return base_offset_; }
  std::int64_t end_offset() const { return end_offset_; }
  std::uint64_t size_bytes() const { return size_bytes_; }
  bool empty() const { return end_offset_ == base_offset_; }
  // -1 while the segment holds no batch.
  std::int64_t largest_timestamp_ms() const { return largest_timestamp_ms_; }
  File& file() { return *file_; }
  const OffsetIndex& offset_index() const { return offset_index_; }
  const TimeIndex& time_index() const { return time_index_; }
  // Batches at or after this position could not be verified (corruption found in the middle of
  // an older segment, or a gap before the next segment): never served.
  std::uint64_t readable_end_position() const { return readable_end_position_; }
  bool has_unreadable_tail() const { return readable_end_position_ < size_bytes_; }
  // Whether the .index/.timeindex files describe the segment as it is now.
  bool index_files_current() const { return index_files_current_; }
  // Where the segment's age (for segment_ms) counts from, on the monotonic clock: the first append
  // this process made, or when it opened a recovered non-empty segment. nullopt before either.
  std::optional<Instant> age_origin() const { return age_origin_; }
  void start_age_clock(Instant now) {
    if (!age_origin_) age_origin_ = now;
  }

  // Keeps the file preallocated (File::allocate) ahead of the segment's end before a batch of
  // `batch_bytes` is appended: by as much as the segment already holds, between
  // kPreallocateMinBytes and kPreallocateMaxBytes, not past `limit_bytes` (the roll size) unless
  // the batch itself needs it. Appends into preallocated blocks make their datasyncs cheaper
  // (measured on ext4: 1.5-2x the small syncs per second). Best effort: a file system that cannot
  // preallocate, or a full disk (the write reports it), leaves the file as it is.
  void preallocate_ahead(std::size_t batch_bytes, std::uint64_t limit_bytes);
  // Cuts whatever the file holds past the segment's end (preallocated zeros, or after recovery a
  // torn tail), so it holds exactly the segment. Not durable until the file is datasynced.
  std::expected<void, DiskError> trim_file_to_end();
  // Bytes the file holds past the segment's end.
  std::uint64_t file_tail_bytes() const { return file_bytes_ > size_bytes_ ? file_bytes_ - size_bytes_ : 0; }
  // Whether every byte past the segment's end is zero (a preallocated tail nothing was written to).
  std::expected<bool, DiskError> file_tail_is_zeros();

  // Advises the OS to drop its cached copy of [cache_dropped_until(), position) (File::drop_cache):
  // bytes that are durable and that no reader is expected to want soon. Returns the bytes advised.
  std::uint64_t drop_cache_before(std::uint64_t position);
  std::uint64_t cache_dropped_until() const { return cache_dropped_until_; }

  // Writes a stamped batch at the end and indexes it. On a write error the file is cut back to
  // the old size so a retry never leaves a gap.
  std::expected<void, DiskError> append(std::span<const std::byte> batch, const BatchHeader& header,
                                        std::uint32_t index_interval_bytes, Instant now);

  // Walks batches from `position` (a batch boundary whose base offset is `first_offset`) up to
  // the readable end, checking framing, offset continuity and (optionally) CRC.
  std::expected<WalkResult, DiskError> walk(std::uint64_t position, std::int64_t first_offset,
                                            const WalkOptions& options, const BatchVisitor& visitor);

  // Where the batch containing `offset` starts: via the offset index, then a header walk.
  // nullopt when the offset is not in the readable part of this segment.
  struct Location {
    std::uint64_t position = 0;
    std::int64_t base_offset = 0;
  };
  std::expected<std::optional<Location>, DiskError> locate(std::int64_t offset,
                                                           std::uint32_t index_interval_bytes);

  // Recovery: walks the whole file verifying every batch from `base_offset`, rebuilding the
  // indexes. Returns the walk result; the caller decides whether to truncate the tail or mark
  // it unreadable.
  std::expected<WalkResult, DiskError> rebuild_by_scan(std::uint32_t index_interval_bytes,
                                                       std::uint64_t& batches_scanned,
                                                      bool verify_crc = true);
  // Trusts the index files when both decode, match this segment's base offset and the current
  // .log size. Returns false (and leaves the segment unknown) otherwise.
  std::expected<bool, DiskError> load_index_files(Disk& disk, const std::string& directory);
  // Writes both index files and datasyncs them (names become durable with the next directory sync).
  std::expected<void, DiskError> write_index_files(Disk& disk, const std::string& directory);

  // Cuts the file at `position` (a batch boundary whose base offset is `end_offset`) and
  // rebuilds the in-memory state by a scan. Not durable until the file is datasynced.
  std::expected<void, DiskError> truncate_to(std::uint64_t position, std::uint32_t index_interval_bytes);
  // Marks [position, end) unreadable and pretends the segment ends at `end_offset` (so offsets
  // stay contiguous with the next segment).
  void mark_unreadable_from(std::uint64_t position, std::int64_t end_offset);

 private:
  Segment(std::int64_t base_offset, std::unique_ptr<File> file);
  void reset_state();
  void index_batch(const BatchHeader& header, std::uint64_t position, std::uint32_t index_interval_bytes);

  std::int64_t base_offset_;
  std::unique_ptr<File> file_;
  std::int64_t end_offset_;
  std::uint64_t size_bytes_ = 0;
  std::uint64_t file_bytes_ = 0;  // the file's size: size_bytes_ plus any preallocated or torn tail
  bool preallocation_failed_ = false;
  std::uint64_t cache_dropped_until_ = 0;  // drop_cache_before() advised everything before this
  std::uint64_t readable_end_position_ = 0;
  std::int64_t largest_timestamp_ms_ = -1;
  std::uint64_t bytes_since_index_entry_ = 0;
  OffsetIndex offset_index_;
  TimeIndex time_index_;
  bool index_files_current_ = false;
  std::optional<Instant> age_origin_;
};

}  // namespace sluice::storage
