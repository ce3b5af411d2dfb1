#pragma once
// PartitionLog: one partition's durable log — a directory of segments (segment.h), group commit,
// crash recovery, reads of whole verified batches, retention, DeleteRecords and truncation.
//
// Directory layout:
//   <20-digit base>.log / .index / .timeindex   one segment (see segment.h, log_index.h)
//   log_start_offset     checkpoint: magic u32 | offset i64 | crc32c u32 (written tmp+sync+rename)
//   clean_shutdown       marker written by close(): magic u32 | end offset i64 | segments u32 | crc32c u32
//
// Offsets: log_start_offset <= durable_end_offset <= log_end_offset, and the high watermark (what
// consumers may read) is the durable end when every append is flushed (flush_messages = 1, the
// default): a record a consumer saw survives any crash. A log that opted out of per-append
// durability (flush_messages > 1) shows its log end, as Kafka does with one replica: records are
// readable once acknowledged, and a machine crash may lose an unflushed tail consumers have read.
//
// Durability: by default (flush_messages = 1) append() returns only after its batch is durable.
// Concurrent appenders share fdatasyncs (group commit): a flush that starts while another runs
// waits for it and then runs one more covering everything written so far. A new segment's name is
// made durable (sync_directory) before any batch is written into it, and a segment is fully
// synced before the next one is created, so only the last segment can have a torn tail. The
// active segment's file is preallocated ahead of its end (Segment::preallocate_ahead); the zeros
// are cut, durably, before a roll and at close(), so only the last segment can end in zeros.
// A failed fdatasync poisons the log (every later append/flush fails with `io`): after a failed
// fsync the page cache can no longer be trusted (the PostgreSQL "fsyncgate" lesson).
//
// Recovery (open):
//  * A valid clean-shutdown marker whose end offset and segment count match: every segment's
//    index files are trusted when their checksum, base offset and .log size match (a segment
//    whose files do not match is scanned). The marker is then removed durably, before anything
//    is appended, so a later crash is never mistaken for a clean stop.
//  * Otherwise every segment is scanned (there is no recovery-point checkpoint yet): framing,
//    offset continuity and CRC-32C of every batch, rebuilding the indexes. The LAST segment is
//    truncated at its first invalid batch (a torn tail; or, when only zeros follow, its
//    preallocated space) and synced. An invalid batch inside an
//    OLDER segment is logged as an error and counted (corrupt_batches_found()); the segment keeps
//    its offset range up to the next segment's base offset, but that range is never served
//    (reads return LogError::corrupt), and later segments stay in service.
//  * Segments wholly below the checkpointed log start offset are deleted (an interrupted
//    retention or DeleteRecords finishes).
//
// Reads verify the CRC of every batch they return. Limitation: the partition leader epoch (bytes
// 12..15 of a batch) is outside the v2 CRC and cannot be verified; the base offset, also outside
// it, is checked by offset continuity.
//
// Segment age for segment_ms is measured on the monotonic clock from the first append this
// process made to the segment (a recovered active segment counts from open()), so wall-clock
// jumps never roll segments; a restart restarts the age. Retention uses the wall clock, as Kafka
// does: a segment expires when its largest batch max timestamp < wall_ms - retention_ms. A
// backwards jump only delays deletion; a forward jump may delete closed segments early, never the
// active one.
//
// Concurrency: one scheduler; every mutation and read holds `mutex_` (SimDisk and runtime IO
// suspend the fiber); flush_through holds no lock, so appenders can queue behind a sync.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/env/env.h"
#include "core/env/sync.h"
#include "core/storage/record_batch.h"
#include "core/storage/segment.h"

namespace sluice::storage {

enum class LogError : std::uint8_t {
  offset_out_of_range,  // below the log start offset or above the log end offset
  corrupt,              // the batch at the requested offset failed verification: never served
  io,                   // a disk error (or the log is poisoned by a failed fdatasync)
  no_space,
  invalid_argument,     // bad config, an offset outside what the operation allows
  batch_too_large,      // over max_batch_bytes
  closed,               // close() was called
};

std::string_view to_string(LogError error);

struct LogConfig {
  std::uint64_t segment_bytes = std::uint64_t{1} << 30;
  std::int64_t segment_ms = 7LL * 24 * 3600 * 1000;
  std::int64_t retention_ms = 7LL * 24 * 3600 * 1000;  // -1: keep forever
  std::int64_t retention_bytes = -1;                   // -1: no size limit
  std::uint32_t index_interval_bytes = 4096;
  // Flush policy. flush_messages = 1: every append is durable before it returns (the default, as
  // Redpanda). N > 1: append() returns after the write; it flushes itself once N messages
  // (records) are unflushed or the oldest unflushed append is flush_ms old; flush_if_due() lets a
  // housekeeping fiber apply the flush_ms bound between appends.
  std::int64_t flush_messages = 1;
  std::int64_t flush_ms = -1;  // -1: no time bound
  std::size_t max_batch_bytes = (std::size_t{1} << 20) + kBatchHeaderBytes;
  // Page cache: after each datasync, synced bytes more than this far behind the log's synced end
  // are dropped from the OS page cache (File::drop_cache), in steps of an eighth of it, so a
  // log that writes fast recycles a bounded set of cached pages instead of growing the cache
  // without end; consumers within the window read from memory, further back from the disk. 0:
  // never drop (leave it all to the OS, as Kafka does). A broker-wide setting, not a topic key.
  std::uint64_t page_cache_window_bytes = std::uint64_t{32} << 20;
  // A log not flushed per append (flush_messages > 1) is also synced by the flush fiber once its
  // active segment holds this many unsynced bytes, never on an append's path: the writeback of a
  // fast writer then comes in small steps instead of one burst per flush_ms (at 140 MB/s a 1 s
  // flush.ms wrote back 140 MB at once and then dropped as much page cache, and a 50 ms timeline
  // showed a stall each second: end-to-end p99 median 7.2 ms of 7 runs, 5.2 ms with 4 MiB steps;
  // docs/operations.md). It only ever syncs sooner than the policy asks. 0: sync only as
  // flush_messages/flush_ms say.
  std::uint64_t lazy_sync_bytes = std::uint64_t{4} << 20;
};

struct AppendResult {
  std::int64_t base_offset = 0;
  std::int64_t last_offset = 0;
  std::int64_t append_time_ms = 0;  // the broker's wall clock (LogAppendTime)
};

// A file range holding some of the returned batches, for a later sendfile.
struct FileRange {
  std::shared_ptr<Segment> segment;  // keeps the file open even if the segment is deleted
  std::uint64_t position = 0;
  std::uint64_t size_bytes = 0;
};

struct ReadResult {
  std::vector<std::byte> bytes;    // whole verified batches, back to back (unless ranges_only)
  std::size_t size_bytes = 0;      // total size of the returned batches
  std::int64_t first_offset = 0;   // base offset of the first batch (<= the requested offset)
  std::int64_t next_offset = 0;    // one past the last returned batch (== first_offset if none)
  std::size_t batch_count = 0;
  std::vector<FileRange> ranges;   // the same bytes, where they lie in segment files
};

// What ListOffsets answers for a timestamp: the record's offset and its timestamp.
struct TimestampedOffset {
  std::int64_t offset = 0;
  std::int64_t timestamp_ms = 0;
  bool operator==(const TimestampedOffset&) const = default;
};

struct LogStats {
  std::uint64_t batches_scanned_on_recovery = 0;
  std::uint64_t segments_loaded_from_index_files = 0;
  std::uint64_t corrupt_batches_found = 0;  // detections, on recovery and on reads
  std::uint64_t torn_tail_bytes_truncated = 0;
  std::uint64_t preallocated_bytes_trimmed = 0;  // zeros past the last append, cut on recovery
  std::uint64_t segments_rolled = 0;
  std::uint64_t rolls_deferred = 0;  // rolls put off while the flush fiber synced the segment
  std::uint64_t segments_deleted = 0;
  std::uint64_t datasyncs = 0;
  std::uint64_t cache_bytes_dropped = 0;  // advised to the OS by the page_cache_window_bytes policy
  bool recovered_from_clean_shutdown = false;
};

class PartitionLog {
 public:
  static std::expected<std::unique_ptr<PartitionLog>, LogError> open(Env& env, std::string directory,
                                                                     LogConfig config);
  ~PartitionLog();
  PartitionLog(const PartitionLog&) = delete;
  PartitionLog& operator=(const PartitionLog&) = delete;

  // Appends one batch already validated by validate_client_batch: stamps its base offset (the
  // log end offset) and leader epoch in place, writes it, and waits until it is as durable as the
  // flush policy asks (flush.messages / flush.ms): append_unflushed, then await_flush_policy.
  std::expected<AppendResult, LogError> append(std::span<std::byte> batch, std::int32_t leader_epoch);
  // The two halves of append(), for a caller that orders appends but overlaps their waits (a
  // connection's pipelined Produce requests): the write, and the wait for the policy's flush of
  // everything through `last_offset` (an fsync shared by every append waiting on it).
  std::expected<AppendResult, LogError> append_unflushed(std::span<std::byte> batch,
                                                          std::int32_t leader_epoch);
  std::expected<void, LogError> await_flush_policy(std::int64_t last_offset);
  // Waits until every offset <= `offset` is durable (group commit). Offsets at or past the log
  // end wait for everything written so far.
  std::expected<void, LogError> flush_through(std::int64_t offset);
  // Applies the flush policy's bounds (flush_ms; flush_messages when > 1): flushes when due.
  std::expected<void, LogError> flush_if_due();
  // Whether the flush policy's count or time bound is reached (something unflushed is due), or a
  // deferred roll waits for the active segment to be synced.
  bool flush_due() const;

  // Whole batches from the one containing `offset`, up to max_bytes (the first batch always
  // whole), none reaching `upper_bound` (pass the high watermark). Empty at or past upper_bound.
  // With `ranges_only`, the batches are still read and CRC-verified but not copied into
  // `bytes`: the caller sends the file ranges (sendfile) and holds no copy.
  std::expected<ReadResult, LogError> read(std::int64_t offset, std::size_t max_bytes, std::int64_t upper_bound,
                                           bool ranges_only = false);

  // The offset of the first record whose timestamp >= timestamp_ms (ListOffsets); for compressed
  // or LogAppendTime batches, the base offset of the first batch whose max timestamp is >= it.
  std::expected<std::optional<TimestampedOffset>, LogError> lookup_offset_by_timestamp(std::int64_t timestamp_ms);

  // Every batch header from the first segment, in order (producer-state rebuild). CRCs are not
  // re-checked (recovery did); an unreadable region is skipped, logged and counted.
  std::expected<void, LogError> for_each_batch_header(const std::function<void(const BatchHeader&)>& visit);

  // DeleteRecords: moves the log start offset to `offset` (<= high watermark), durably, and
  // deletes the segments wholly below it.
  std::expected<void, LogError> delete_records_before(std::int64_t offset);
  // Removes every batch that ends at or after `offset` (a batch containing it goes whole), durably.
  // Returns the new log end offset. `offset` must be >= the log start offset.
  std::expected<std::int64_t, LogError> truncate_to(std::int64_t offset);
  // Deletes closed segments by retention_ms and retention_bytes; returns how many.
  std::expected<std::size_t, LogError> enforce_retention();
  // Flushes, writes the index files and the clean-shutdown marker. The log is unusable after.
  std::expected<void, LogError> close();

  std::int64_t log_start_offset() const { return log_start_offset_; }
  std::int64_t log_end_offset() const { return log_end_offset_; }
  std::int64_t durable_end_offset() const { return durable_end_offset_; }
  std::int64_t high_watermark() const {
    return durable_per_append() ? durable_end_offset_ : log_end_offset_;
  }
  // flush_messages = 1: every append waits for its fsync (see the offsets note above).
  bool durable_per_append() const { return config_.flush_messages == 1; }
  std::uint64_t corrupt_batches_found() const { return stats_.corrupt_batches_found; }
  const LogStats& stats() const { return stats_; }
  const LogConfig& config() const { return config_; }
  const std::string& directory() const { return directory_; }
  std::size_t segment_count() const { return segments_.size(); }
  // Read-only views for tests and tools.
  std::vector<std::shared_ptr<const Segment>> segments() const;
  std::uint64_t size_bytes() const;

 private:
  PartitionLog(Env& env, std::string directory, LogConfig config);

  std::expected<void, LogError> recover();
  // The end offset a valid clean-shutdown marker records for exactly these segments.
  std::expected<std::optional<std::int64_t>, LogError> read_clean_marker(const std::vector<std::int64_t>& bases);
  std::expected<void, LogError> recover_segments(const std::vector<std::int64_t>& bases, bool clean);

  std::expected<void, LogError> check_usable() const;
  Segment& active() { return *segments_.back(); }
  bool should_roll(std::size_t batch_bytes, std::int64_t batch_offsets);
  // Whether a due roll waits (see kRollOvershoot in partition_log.cc): more of the active segment
  // is unsynced than a roll should sync under the lock, and the segment may still grow.
  bool defer_roll(std::size_t batch_bytes, std::int64_t batch_offsets);
  // Bytes of the active segment written since its last sync.
  std::uint64_t active_unsynced_bytes() const;
  std::expected<void, LogError> roll();
  std::expected<void, LogError> sync_through_generation(std::uint64_t generation);
  // The page_cache_window_bytes policy, after a datasync made `segment` durable up to
  // `synced_bytes` (every older segment is durable whole).
  void drop_cache_behind(const Segment& segment, std::uint64_t synced_bytes);
  // Cuts the active segment's preallocated tail; durable with the next sync (it counts as a write).
  std::expected<void, LogError> trim_active_file();
  // Index of the segment whose offset range holds `offset`; segments_.size() if none.
  std::size_t segment_index_of(std::int64_t offset) const;
  std::expected<void, LogError> advance_log_start(std::int64_t offset);
  LogError note_corruption(const Segment& segment, std::uint64_t position, std::int64_t offset,
                           std::optional<BatchError> error, std::string_view during);

  Env& env_;
  std::string directory_;
  LogConfig config_;
  Log log_;
  Mutex mutex_;
  std::vector<std::shared_ptr<Segment>> segments_;  // by base offset; never empty once open
  std::int64_t log_start_offset_ = 0;
  std::int64_t log_end_offset_ = 0;
  std::int64_t durable_end_offset_ = 0;
  bool closed_ = false;
  bool poisoned_ = false;  // a datasync failed

  // Group commit. Each write or truncation of the active segment bumps write_generation_; a
  // datasync that started at generation g makes everything up to g durable. A truncation bumps
  // truncation_generation_ so a sync that straddles it does not claim the removed offsets.
  std::uint64_t write_generation_ = 0;
  std::uint64_t synced_generation_ = 0;
  std::uint64_t truncation_generation_ = 0;
  bool sync_running_ = false;
  WaitQueue sync_waiters_;
  std::int64_t unflushed_messages_ = 0;
  std::optional<Instant> oldest_unflushed_at_;
  // The active segment's bytes the last datasync covered (an estimate after a truncation; only
  // defer_roll reads it), and whether a due roll waits for the flush fiber to sync.
  std::uint64_t active_synced_bytes_ = 0;
  bool roll_deferred_ = false;

  LogStats stats_;
};

}  // namespace sluice::storage
