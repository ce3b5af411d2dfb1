#include "core/storage/partition_log.h"

#include <algorithm>
#include <cassert>
#include <limits>

#include "core/storage/storage_files.h"
#include "core/util/bytes.h"

namespace sluice::storage {

namespace {

constexpr std::string_view kLogStartCheckpointName = "log_start_offset";
constexpr std::string_view kCleanShutdownName = "clean_shutdown";
constexpr std::string_view kTemporarySuffix = ".tmp";
constexpr std::uint32_t kLogStartMagic = 0x534c4c53;     // "SLLS"
constexpr std::uint32_t kCleanShutdownMagic = 0x534c4353;  // "SLCS"
// Group commit finishes within three rounds (wait for the sync running at the call, then at most
// one more that started after it); the bound leaves room and catches a livelock.
constexpr int kSyncRoundsMax = 16;
// A roll syncs the old segment while holding the log's lock, so every append to the partition
// waits for it. For a topic not flushed per append that is up to a whole segment of page cache to
// write back: 0.3-0.6 s for a second of 260 MB/s in the w1 benchmark, seconds with flush.ms off.
// So while more than kRollSyncInlineMax (at most an eighth of a segment) is unsynced, a due roll
// waits: appends go on into the active segment, past segment_bytes by up to 1/kRollOvershoot of
// it, while the flush fiber syncs it (flush_due), and the roll happens at the first append that
// finds little left to sync. Each such sync covers what came in during the previous one, so with
// a disk faster than the ingest the rounds shrink; with a slower one the overshoot bound is
// reached and the roll syncs under the lock as before. What is durable when is unchanged: the old
// segment is still synced before the next one exists.
constexpr std::uint64_t kRollSyncInlineMax = std::uint64_t{4} << 20;
constexpr std::uint64_t kRollOvershoot = 2;  // a segment may reach 1.5 x segment_bytes
constexpr std::int64_t kDurationMsMax = std::int64_t{1} << 50;  // keeps wall_ms - retention_ms sane

LogError from_disk(DiskError error) {
  return error == DiskError::no_space ? LogError::no_space : LogError::io;
}

bool valid_config(const LogConfig& config) {
  return config.segment_bytes > 0 && config.segment_bytes <= std::numeric_limits<std::uint32_t>::max() &&
         config.segment_ms > 0 && config.segment_ms <= kDurationMsMax && config.retention_ms >= -1 &&
         config.retention_ms <= kDurationMsMax && config.retention_bytes >= -1 && config.index_interval_bytes > 0 &&
         config.flush_messages >= 1 && config.flush_ms >= -1 && config.max_batch_bytes >= kBatchHeaderBytes &&
         config.max_batch_bytes <= (std::size_t{1} << 30);
}

std::vector<std::byte> encode_log_start(std::int64_t offset) {
  Bytes body;
  ByteWriter writer(body);
  writer.u32(kLogStartMagic);
  writer.u64(static_cast<std::uint64_t>(offset));
  return seal(std::move(body));
}

std::vector<std::byte> encode_clean_shutdown(std::int64_t end_offset, std::size_t segment_count) {
  Bytes body;
  ByteWriter writer(body);
  writer.u32(kCleanShutdownMagic);
  writer.u64(static_cast<std::uint64_t>(end_offset));
  writer.u32(static_cast<std::uint32_t>(segment_count));
  return seal(std::move(body));
}

// Resets a flag and wakes waiters however the scope ends, so a sync cancelled by a crash of the
// node never leaves later flushes waiting for it.
class SyncRunning {
 public:
  SyncRunning(bool& running, WaitQueue& waiters) : running_(running), waiters_(waiters) { running_ = true; }
  ~SyncRunning() {
    running_ = false;
    waiters_.notify_all();
  }
  SyncRunning(const SyncRunning&) = delete;
  SyncRunning& operator=(const SyncRunning&) = delete;

 private:
  bool& running_;
  WaitQueue& waiters_;
};

}  // namespace

std::string_view to_string(LogError error) {
  switch (error) {
    case LogError::offset_out_of_range: return "offset out of range";
    case LogError::corrupt: return "corrupt data";
    case LogError::io: return "i/o error";
    case LogError::no_space: return "no space left";
    case LogError::invalid_argument: return "invalid argument";
    case LogError::batch_too_large: return "batch too large";
    case LogError::closed: return "log closed";
  }
  return "unknown log error";
}

PartitionLog::PartitionLog(Env& env, std::string directory, LogConfig config)
    : env_(env), directory_(std::move(directory)), config_(config),
      log_(env.log().with_component("log/" + directory_)) {}

PartitionLog::~PartitionLog() = default;

std::expected<std::unique_ptr<PartitionLog>, LogError> PartitionLog::open(Env& env, std::string directory,
                                                                          LogConfig config) {
  if (!valid_config(config) || directory.empty()) return std::unexpected(LogError::invalid_argument);
  std::unique_ptr<PartitionLog> log(new PartitionLog(env, std::move(directory), config));
  LockGuard guard(log->mutex_);
  if (auto recovered = log->recover(); !recovered) return std::unexpected(recovered.error());
  assert(!log->segments_.empty());
  assert(log->log_start_offset_ <= log->log_end_offset_);
  return log;
}

// ---- Recovery ----

std::expected<void, LogError> PartitionLog::recover() {
  Disk& disk = env_.disk();
  // The directory's own name must be durable before anything in it is acknowledged.
  auto prepared = disk.create_directories(directory_);
  if (prepared) prepared = disk.sync_directory(parent_path(directory_));
  if (!prepared) return std::unexpected(from_disk(prepared.error()));
  auto names = disk.list(directory_);
  if (!names) return std::unexpected(from_disk(names.error()));

  std::vector<std::int64_t> bases;
  for (const std::string& name : *names) {
    if (auto base = parse_segment_file_name(name, kLogSuffix)) {
      bases.push_back(*base);
    } else if (name.ends_with(kTemporarySuffix)) {
      // A checkpoint or marker write that a crash interrupted: its rename never happened.
      if (auto removed = remove_if_present(disk, join_path(directory_, name)); !removed) {
        return std::unexpected(from_disk(removed.error()));
      }
    }
  }
  std::sort(bases.begin(), bases.end());

  auto checkpoint = read_whole_file(disk, join_path(directory_, kLogStartCheckpointName));
  std::optional<std::int64_t> checkpointed_start;
  if (checkpoint) {
    if (auto body = unseal(*checkpoint); body && body->size() == 12) {
      ByteReader reader(*body);
      if (reader.u32() == kLogStartMagic) checkpointed_start = static_cast<std::int64_t>(reader.u64());
    }
    if (!checkpointed_start) log_.error("log start checkpoint is unreadable; using the first segment's base offset");
  }
  log_start_offset_ = std::max(checkpointed_start.value_or(0), bases.empty() ? 0 : bases.front());

  // Segments wholly below the log start offset (the next one starts at or before it) belong to
  // an interrupted retention or DeleteRecords: finish it.
  std::size_t below_start = 0;
  while (below_start + 1 < bases.size() && bases[below_start + 1] <= log_start_offset_) {
    if (auto removed = remove_segment_files(disk, directory_, bases[below_start]); !removed) {
      return std::unexpected(from_disk(removed.error()));
    }
    ++below_start;
  }
  bases.erase(bases.begin(), bases.begin() + static_cast<std::ptrdiff_t>(below_start));

  auto clean = read_clean_marker(bases);
  if (!clean) return std::unexpected(clean.error());
  const bool new_log = bases.empty();
  if (new_log) {
    auto created = Segment::create(disk, directory_, log_start_offset_);
    if (!created) return std::unexpected(from_disk(created.error()));
    bases.push_back(log_start_offset_);
  }
  if (auto recovered = recover_segments(bases, clean->has_value()); !recovered) return recovered;
  if (clean->has_value() && segments_.back()->end_offset() != **clean) {
    log_.error("clean-shutdown marker says end offset {}, the index files say {}: rescanning", **clean,
               segments_.back()->end_offset());
    if (auto rescanned = recover_segments(bases, false); !rescanned) return rescanned;
  }

  log_end_offset_ = segments_.back()->end_offset();
  if (log_start_offset_ > log_end_offset_) {
    log_.error("log start offset {} is past the recovered end {}; moving it back", log_start_offset_, log_end_offset_);
    log_start_offset_ = log_end_offset_;
  }
  // After a process crash (not a power loss) the recovered tail may still be only in the page
  // cache: make it durable before it counts as such. This also makes a torn-tail cut durable.
  // The directory sync covers a new first segment, removed segments and the removed marker.
  auto synced = segments_.back()->file().datasync();
  if (synced) synced = remove_if_present(disk, join_path(directory_, kCleanShutdownName));
  if (synced) synced = disk.sync_directory(directory_);
  ++stats_.datasyncs;
  if (!synced) return std::unexpected(from_disk(synced.error()));
  durable_end_offset_ = log_end_offset_;
  if (!segments_.back()->empty()) segments_.back()->start_age_clock(env_.now());
  if (new_log) {
    log_.debug("created an empty log at offset {}", log_start_offset_);
    return {};
  }
  log_.info("recovered offsets [{}, {}) in {} segments ({}; {} batches scanned, {} torn bytes cut, {} corrupt)",
            log_start_offset_, log_end_offset_, segments_.size(), clean->has_value() ? "clean shutdown" : "unclean shutdown",
            stats_.batches_scanned_on_recovery, stats_.torn_tail_bytes_truncated, stats_.corrupt_batches_found);
  return {};
}

std::expected<std::optional<std::int64_t>, LogError> PartitionLog::read_clean_marker(
    const std::vector<std::int64_t>& bases) {
  auto image = read_whole_file(env_.disk(), join_path(directory_, kCleanShutdownName));
  if (!image) {
    if (image.error() == DiskError::not_found) return std::nullopt;
    return std::unexpected(from_disk(image.error()));
  }
  auto body = unseal(*image);
  if (!body || body->size() != 16) return std::nullopt;
  ByteReader reader(*body);
  const bool magic_matches = reader.u32() == kCleanShutdownMagic;
  const auto end_offset = static_cast<std::int64_t>(reader.u64());
  const std::uint32_t segment_count = reader.u32();
  if (!magic_matches || segment_count != bases.size()) return std::nullopt;
  stats_.recovered_from_clean_shutdown = true;
  return end_offset;
}

std::expected<void, LogError> PartitionLog::recover_segments(const std::vector<std::int64_t>& bases, bool clean) {
  Disk& disk = env_.disk();
  segments_.clear();
  for (std::size_t i = 0; i < bases.size(); ++i) {
    const bool last = i + 1 == bases.size();
    auto opened = Segment::open(disk, directory_, bases[i]);
    if (!opened) return std::unexpected(from_disk(opened.error()));
    std::shared_ptr<Segment> segment = std::move(*opened);
    bool loaded = false;
    if (clean) {
      auto from_files = segment->load_index_files(disk, directory_);
      if (!from_files) return std::unexpected(from_disk(from_files.error()));
      loaded = *from_files;
    }
    if (loaded) {
      ++stats_.segments_loaded_from_index_files;
    } else {
      // The canary bug skips the CRC here, so torn tails with intact framing survive recovery.
      auto walked = segment->rebuild_by_scan(config_.index_interval_bytes, stats_.batches_scanned_on_recovery,
                                             !env_.bug("storage_skip_crc_on_recovery"));
      if (!walked) return std::unexpected(from_disk(walked.error()));
      const std::uint64_t tail_bytes = segment->file_tail_bytes();
      if (tail_bytes > 0 && last) {
        // Zeros only: the preallocated space past the last append. Anything else is a torn tail:
        // unsynced writes a crash cut short. Nothing past it was ever acknowledged, unless the
        // disk corrupted synced data, which Kafka also cannot tell apart.
        auto zeros = segment->file_tail_is_zeros();
        if (!zeros) return std::unexpected(from_disk(zeros.error()));
        if (*zeros) {
          log_.debug("segment {}: trimming {} preallocated bytes after position {}", bases[i], tail_bytes,
                     walked->end_position);
          stats_.preallocated_bytes_trimmed += tail_bytes;
        } else {
          log_.warn("segment {}: cutting {} bytes after position {} (offset {}): {}", bases[i], tail_bytes,
                    walked->end_position, walked->next_offset,
                    walked->error ? to_string(*walked->error) : "offset discontinuity");
          stats_.torn_tail_bytes_truncated += tail_bytes;
        }
        if (auto cut = segment->trim_file_to_end(); !cut) return std::unexpected(from_disk(cut.error()));
      } else if (!last && (tail_bytes > 0 || segment->end_offset() != bases[i + 1])) {
        note_corruption(*segment, walked->end_position, walked->next_offset, walked->error, "recovery");
        if (segment->end_offset() > bases[i + 1]) {
          log_.error("segment {} overlaps segment {}: refusing to open", bases[i], bases[i + 1]);
          return std::unexpected(LogError::corrupt);
        }
        segment->mark_unreadable_from(walked->end_position, bases[i + 1]);
      }
    }
    if (!segments_.empty() && segments_.back()->end_offset() != segment->base_offset()) {
      // Only reachable after a clean load whose index files disagree with their neighbours.
      log_.error("segment {} does not continue segment {}: rescanning everything", bases[i], segments_.back()->base_offset());
      return clean ? recover_segments(bases, false) : std::unexpected(LogError::corrupt);
    }
    segments_.push_back(std::move(segment));
  }
  return {};
}

LogError PartitionLog::note_corruption(const Segment& segment, std::uint64_t position, std::int64_t offset,
                                       std::optional<BatchError> error, std::string_view during) {
  ++stats_.corrupt_batches_found;
  log_.error("CORRUPT batch found during {}: segment {} position {} (offset {}): {}; it will not be served",
             during, segment.base_offset(), position, offset, error ? to_string(*error) : "offset discontinuity");
  return LogError::corrupt;
}

// ---- Appending and group commit ----

std::expected<void, LogError> PartitionLog::check_usable() const {
  if (closed_) return std::unexpected(LogError::closed);
  if (poisoned_) return std::unexpected(LogError::io);
  return {};
}

std::expected<AppendResult, LogError> PartitionLog::append(std::span<std::byte> batch, std::int32_t leader_epoch) {
  auto appended = append_unflushed(batch, leader_epoch);
  if (!appended) return appended;
  if (auto flushed = await_flush_policy(appended->last_offset); !flushed) return std::unexpected(flushed.error());
  return appended;
}

std::expected<AppendResult, LogError> PartitionLog::append_unflushed(std::span<std::byte> batch,
                                                                     std::int32_t leader_epoch) {
  if (batch.size() > config_.max_batch_bytes) return std::unexpected(LogError::batch_too_large);
  auto parsed = parse_batch_header(batch);
  if (!parsed || parsed->size_bytes() != batch.size() || parsed->last_offset_delta < 0) {
    return std::unexpected(LogError::invalid_argument);
  }
  BatchHeader header = *parsed;
  AppendResult result;
  {
    LockGuard guard(mutex_);
    if (auto usable = check_usable(); !usable) return std::unexpected(usable.error());
    const std::int64_t batch_offsets = std::int64_t{header.last_offset_delta} + 1;
    if (should_roll(batch.size(), batch_offsets)) {
      if (defer_roll(batch.size(), batch_offsets)) {
        if (!roll_deferred_) ++stats_.rolls_deferred;
        roll_deferred_ = true;
      } else if (auto rolled = roll(); !rolled) {
        return std::unexpected(rolled.error());
      }
    }
    header.base_offset = log_end_offset_;
    header.partition_leader_epoch = leader_epoch;
    stamp_batch(batch, header.base_offset, leader_epoch);
    const Instant now = env_.now();
    active().preallocate_ahead(batch.size(), config_.segment_bytes);
    if (auto written = active().append(batch, header, config_.index_interval_bytes, now); !written) {
      log_.warn("append at offset {} failed: {}", header.base_offset, to_string(written.error()));
      return std::unexpected(from_disk(written.error()));
    }
    log_end_offset_ = header.last_offset() + 1;
    ++write_generation_;
    unflushed_messages_ += header.records_count;
    if (!oldest_unflushed_at_) oldest_unflushed_at_ = now;
    result = AppendResult{header.base_offset, header.last_offset(), env_.clock().wall_ms()};
  }
  return result;
}

bool PartitionLog::should_roll(std::size_t batch_bytes, std::int64_t batch_offsets) {
  const Segment& segment = active();
  // An empty segment takes any batch, so a batch larger than segment_bytes still goes somewhere.
  if (segment.empty()) return false;
  if (segment.size_bytes() + batch_bytes > config_.segment_bytes) return true;
  // Relative offsets are u32 in the index.
  if (log_end_offset_ + batch_offsets - segment.base_offset() >= std::numeric_limits<std::int32_t>::max()) return true;
  const auto origin = segment.age_origin();
  if (origin && env_.now() - *origin >= milliseconds(config_.segment_ms)) return true;
  return env_.buggify("storage/roll_segment_early");
}

std::uint64_t PartitionLog::active_unsynced_bytes() const {
  const std::uint64_t size = segments_.back()->size_bytes();
  return size - std::min(active_synced_bytes_, size);
}

bool PartitionLog::defer_roll(std::size_t batch_bytes, std::int64_t batch_offsets) {
  const Segment& segment = active();
  if (synced_generation_ >= write_generation_) return false;
  if (active_unsynced_bytes() <= std::min(kRollSyncInlineMax, config_.segment_bytes / 8)) return false;
  // Offsets and positions are u32 relative to the segment (should_roll keeps offsets in range).
  const std::uint64_t bound = std::min<std::uint64_t>(config_.segment_bytes + config_.segment_bytes / kRollOvershoot,
                                                      std::numeric_limits<std::uint32_t>::max());
  if (segment.size_bytes() + batch_bytes > bound) return false;
  return log_end_offset_ + batch_offsets - segment.base_offset() < std::numeric_limits<std::int32_t>::max();
}

std::expected<void, LogError> PartitionLog::roll() {
  assert(mutex_.locked());
  Disk& disk = env_.disk();
  // The old segment is durable, and holds no preallocated tail, before the next exists: only the
  // last segment can be torn or end in zeros.
  if (auto trimmed = trim_active_file(); !trimmed) return trimmed;
  if (auto synced = sync_through_generation(write_generation_); !synced) return synced;
  Segment& old_segment = active();
  assert(old_segment.end_offset() == log_end_offset_ && durable_end_offset_ == log_end_offset_);
  if (auto written = old_segment.write_index_files(disk, directory_); !written) {
    return std::unexpected(from_disk(written.error()));
  }
  auto created = Segment::create(disk, directory_, log_end_offset_);
  if (!created) return std::unexpected(from_disk(created.error()));
  // The new name (and the index files) must survive a crash before a batch in it is acknowledged.
  if (auto synced = disk.sync_directory(directory_); !synced) return std::unexpected(from_disk(synced.error()));
  segments_.push_back(std::move(*created));
  active_synced_bytes_ = 0;
  roll_deferred_ = false;
  ++stats_.segments_rolled;
  log_.debug("rolled to segment {}", log_end_offset_);
  return {};
}

std::expected<void, LogError> PartitionLog::trim_active_file() {
  assert(mutex_.locked());
  if (active().file_tail_bytes() == 0) return {};
  if (auto trimmed = active().trim_file_to_end(); !trimmed) {
    log_.warn("cutting the preallocated tail of segment {} failed: {}", active().base_offset(),
              to_string(trimmed.error()));
    return std::unexpected(from_disk(trimmed.error()));
  }
  ++write_generation_;  // the cut is durable with the next sync
  return {};
}

std::expected<void, LogError> PartitionLog::sync_through_generation(std::uint64_t generation) {
  for (int round = 0; round < kSyncRoundsMax; ++round) {
    if (synced_generation_ >= generation) return {};
    if (poisoned_) return std::unexpected(LogError::io);
    if (sync_running_) {
      sync_waiters_.wait(kNever);
      continue;
    }
    // Everything written up to here is covered by this sync, which runs on the active segment:
    // older segments were synced when they were closed.
    const std::uint64_t target_generation = write_generation_;
    const std::int64_t target_offset = log_end_offset_;
    const std::uint64_t truncations = truncation_generation_;
    const std::int64_t target_messages = unflushed_messages_;
    const Instant started = env_.now();
    std::shared_ptr<Segment> segment = segments_.back();
    const std::uint64_t target_bytes = segment->size_bytes();
    std::expected<void, DiskError> synced;
    {
      SyncRunning running(sync_running_, sync_waiters_);
      synced = segment->file().datasync();
      ++stats_.datasyncs;
      Metrics& metrics = env_.metrics();
      metrics.fsync_latency.observe(env_.now() - started);
      if (!synced) ++metrics.fsync_errors;
    }
    if (!synced) {
      poisoned_ = true;
      log_.error("datasync failed ({}): the log refuses further writes", to_string(synced.error()));
      return std::unexpected(from_disk(synced.error()));
    }
    synced_generation_ = std::max(synced_generation_, target_generation);
    if (truncations == truncation_generation_) {
      durable_end_offset_ = std::max(durable_end_offset_, target_offset);
      if (segment == segments_.back()) active_synced_bytes_ = std::max(active_synced_bytes_, target_bytes);
      drop_cache_behind(*segment, target_bytes);
    }
    if (synced_generation_ == write_generation_) {
      unflushed_messages_ = 0;
      oldest_unflushed_at_.reset();
    } else {
      // Writes raced the sync: what it covered is flushed, what came after is not. Those later
      // writes are no older than the sync's start, so the flush.ms bound runs from there (early
      // by at most one sync, never late) instead of staying expired and syncing every append.
      unflushed_messages_ = std::max<std::int64_t>(unflushed_messages_ - target_messages, 0);
      if (oldest_unflushed_at_ && *oldest_unflushed_at_ < started) oldest_unflushed_at_ = started;
    }
  }
  assert(false && "group commit did not converge");
  return std::unexpected(LogError::io);
}

void PartitionLog::drop_cache_behind(const Segment& segment, std::uint64_t synced_bytes) {
  const std::uint64_t window = config_.page_cache_window_bytes;
  if (window == 0) return;
  const std::uint64_t step = std::max<std::uint64_t>(window / 8, 4096);
  std::size_t index = segments_.size();
  while (index > 0 && segments_[index - 1].get() != &segment) --index;
  if (index == 0) return;  // truncated or deleted meanwhile: the next sync decides
  // From the synced end back: the window's bytes stay cached, everything before them may go. A
  // pass leaves every segment older than the one the window starts in dropped whole, so the walk
  // stops at the first such segment it finds already dropped.
  std::uint64_t keep = window;
  for (std::size_t i = index; i-- > 0;) {
    Segment& older = *segments_[i];
    const std::uint64_t end = i + 1 == index ? std::min(older.size_bytes(), synced_bytes) : older.size_bytes();
    // On a page boundary (4 KiB), so that the next drop's range starts on one: the kernel drops
    // only whole pages.
    const std::uint64_t cut = keep == 0 ? end : end > keep ? (end - keep) & ~std::uint64_t{4095} : 0;
    keep -= std::min(keep, end);
    const std::uint64_t dropped_until = older.cache_dropped_until();
    if (cut > dropped_until && (cut == end || cut - dropped_until >= step)) {
      stats_.cache_bytes_dropped += older.drop_cache_before(cut);
    } else if (keep == 0 && dropped_until >= end) {
      break;
    }
  }
}

std::expected<void, LogError> PartitionLog::flush_through(std::int64_t offset) {
  if (auto usable = check_usable(); !usable) return usable;
  if (offset < durable_end_offset_) return {};
  return sync_through_generation(write_generation_);
}

std::expected<void, LogError> PartitionLog::await_flush_policy(std::int64_t last_offset) {
  if (env_.bug("storage_ack_before_fsync")) {
    // The canary bug: acknowledge and expose the batch before anything made it durable.
    durable_end_offset_ = log_end_offset_;
    return {};
  }
  const bool by_count = unflushed_messages_ >= config_.flush_messages;
  const bool by_time = config_.flush_ms >= 0 && oldest_unflushed_at_ &&
                       env_.now() - *oldest_unflushed_at_ >= milliseconds(config_.flush_ms);
  if (config_.flush_messages > 1 && !by_count && !by_time) return {};
  // A policy flush while one already runs would only queue a second sync behind it: the running
  // one began after the bound was hit, and what is written meanwhile is younger than its start.
  if (config_.flush_messages > 1 && sync_running_) return {};
  return flush_through(last_offset);
}

bool PartitionLog::flush_due() const {
  if (roll_deferred_ && synced_generation_ < write_generation_) return true;
  if (!oldest_unflushed_at_) return false;
  if (config_.flush_messages > 1 && config_.lazy_sync_bytes > 0 &&
      active_unsynced_bytes() >= config_.lazy_sync_bytes) {
    return true;
  }
  if (config_.flush_messages > 1 && unflushed_messages_ >= config_.flush_messages) return true;
  return config_.flush_ms >= 0 && env_.now() - *oldest_unflushed_at_ >= milliseconds(config_.flush_ms);
}

std::expected<void, LogError> PartitionLog::flush_if_due() {
  if (!flush_due()) return {};
  return flush_through(log_end_offset_ - 1);
}

// ---- Reading ----

std::size_t PartitionLog::segment_index_of(std::int64_t offset) const {
  auto after = std::upper_bound(segments_.begin(), segments_.end(), offset,
                                [](std::int64_t value, const std::shared_ptr<Segment>& segment) {
                                  return value < segment->base_offset();
                                });
  if (after == segments_.begin()) return segments_.size();
  const std::size_t index = static_cast<std::size_t>(after - segments_.begin()) - 1;
  return offset < segments_[index]->end_offset() ? index : segments_.size();
}

std::expected<ReadResult, LogError> PartitionLog::read(std::int64_t offset, std::size_t max_bytes,
                                                       std::int64_t upper_bound, bool ranges_only) {
  LockGuard guard(mutex_);
  if (closed_) return std::unexpected(LogError::closed);
  if (offset < log_start_offset_ || offset > log_end_offset_) return std::unexpected(LogError::offset_out_of_range);
  ReadResult result;
  result.first_offset = result.next_offset = offset;
  const std::int64_t end = std::min(upper_bound, log_end_offset_);
  if (offset >= end) return result;

  std::size_t index = segment_index_of(offset);
  assert(index < segments_.size());
  auto located = segments_[index]->locate(offset, config_.index_interval_bytes);
  if (!located) return std::unexpected(from_disk(located.error()));
  if (!*located) return std::unexpected(note_corruption(*segments_[index], segments_[index]->readable_end_position(), offset, std::nullopt, "read"));
  std::uint64_t position = (*located)->position;
  std::int64_t first_offset = (*located)->base_offset;

  WalkOptions options;
  options.read_ahead_bytes = std::clamp<std::size_t>(max_bytes, kBatchHeaderBytes, std::size_t{8} << 20);
  // The canary bug serves batches without checking their CRC (flipped record bits reach clients).
  if (env_.bug("serve_corrupt_batch")) options.verify_crc = false;
  for (; index < segments_.size(); ++index) {
    const std::shared_ptr<Segment>& segment = segments_[index];
    if (result.batch_count > 0) {  // continuing into the next segment from its start
      position = 0;
      first_offset = segment->base_offset();
    }
    if (first_offset >= end) break;
    auto walked = segment->walk(position, first_offset, options,
                                [&](const BatchHeader& header, std::uint64_t at, std::span<const std::byte> batch) {
                                  if (header.last_offset() >= end) return Visit::stop;
                                  if (result.batch_count > 0 && result.size_bytes + batch.size() > max_bytes) return Visit::stop;
                                  if (result.batch_count == 0) result.first_offset = header.base_offset;
                                  if (!ranges_only) result.bytes.insert(result.bytes.end(), batch.begin(), batch.end());
                                  result.size_bytes += batch.size();
                                  result.next_offset = header.last_offset() + 1;
                                  ++result.batch_count;
                                  if (!result.ranges.empty() && result.ranges.back().segment == segment &&
                                      result.ranges.back().position + result.ranges.back().size_bytes == at) {
                                    result.ranges.back().size_bytes += batch.size();
                                  } else {
                                    result.ranges.push_back(FileRange{segment, at, batch.size()});
                                  }
                                  return Visit::next;
                                });
    if (!walked) return std::unexpected(from_disk(walked.error()));
    const bool unreadable = walked->end == WalkEnd::invalid_batch ||
                            (walked->end == WalkEnd::end_of_data && walked->next_offset < segment->end_offset());
    if (unreadable) {
      // Serve the verified batches before the bad one; the next fetch starts at it and fails.
      const LogError error = note_corruption(*segment, walked->end_position, walked->next_offset, walked->error, "read");
      if (result.batch_count == 0) return std::unexpected(error);
      break;
    }
    if (walked->end == WalkEnd::stopped) break;
  }
  assert(result.batch_count == 0 || (result.first_offset <= offset && result.next_offset > offset));
  return result;
}

namespace {

// The first record of a batch (whose max timestamp is >= the target) with a timestamp >= the
// target, as Kafka's ListOffsets answers. Compressed batches would need decompressing: for them
// (and LogAppendTime batches, whose records all carry the batch time) the batch's base offset.
TimestampedOffset first_offset_at_or_after(const BatchHeader& header, std::span<const std::byte> batch,
                                           std::int64_t timestamp_ms) {
  const TimestampedOffset whole_batch{header.base_offset, header.max_timestamp};
  if (header.log_append_time() || header.compression() != Compression::none) return whole_batch;
  if (!validate_stored_batch(batch)) return whole_batch;
  auto records = decode_records(batch);
  if (!records) return whole_batch;
  for (const RecordView& record : *records) {
    if (record.timestamp_ms >= timestamp_ms) return TimestampedOffset{record.offset, record.timestamp_ms};
  }
  return whole_batch;
}

}  // namespace

std::expected<std::optional<TimestampedOffset>, LogError> PartitionLog::lookup_offset_by_timestamp(std::int64_t timestamp_ms) {
  LockGuard guard(mutex_);
  if (closed_) return std::unexpected(LogError::closed);
  auto holder = std::find_if(segments_.begin(), segments_.end(), [timestamp_ms](const std::shared_ptr<Segment>& segment) {
    return segment->largest_timestamp_ms() >= timestamp_ms;
  });
  if (holder == segments_.end()) return std::optional<TimestampedOffset>{};
  Segment& segment = **holder;
  const std::int64_t scan_from = segment.base_offset() + segment.time_index().scan_start(timestamp_ms);
  auto located = segment.locate(scan_from, config_.index_interval_bytes);
  if (!located) return std::unexpected(from_disk(located.error()));
  if (!*located) return std::unexpected(LogError::corrupt);
  std::optional<TimestampedOffset> found;
  WalkOptions options;
  options.verify_crc = false;  // headers locate the batch; its records are decoded only if its CRC holds
  auto walked = segment.walk((*located)->position, (*located)->base_offset, options,
                             [&found, timestamp_ms](const BatchHeader& header, std::uint64_t, std::span<const std::byte> batch) {
                               if (header.max_timestamp < timestamp_ms) return Visit::next;
                               found = first_offset_at_or_after(header, batch, timestamp_ms);
                               return Visit::stop;
                             });
  if (!walked) return std::unexpected(from_disk(walked.error()));
  if (!found) return std::unexpected(LogError::corrupt);  // the index promised a batch that is not readable
  if (found->offset < log_start_offset_) found->offset = log_start_offset_;
  return found;
}

std::expected<void, LogError> PartitionLog::for_each_batch_header(const std::function<void(const BatchHeader&)>& visit) {
  LockGuard guard(mutex_);
  if (closed_) return std::unexpected(LogError::closed);
  WalkOptions options;
  options.verify_crc = false;
  for (const std::shared_ptr<Segment>& segment : segments_) {
    auto walked = segment->walk(0, segment->base_offset(), options,
                                [&visit](const BatchHeader& header, std::uint64_t, std::span<const std::byte>) {
                                  visit(header);
                                  return Visit::next;
                                });
    if (!walked) return std::unexpected(from_disk(walked.error()));
    if (walked->end == WalkEnd::invalid_batch || walked->next_offset < segment->end_offset()) {
      log_.error("batch header replay skips offsets [{}, {}) of segment {}: unreadable", walked->next_offset,
                 segment->end_offset(), segment->base_offset());
    }
  }
  return {};
}

// ---- Log start, retention, truncation ----

std::expected<void, LogError> PartitionLog::advance_log_start(std::int64_t offset) {
  assert(mutex_.locked());
  assert(offset >= log_start_offset_ && offset <= log_end_offset_);
  Disk& disk = env_.disk();
  // The checkpoint first: a crash in the middle of the deletions below leaves segments that the
  // next recovery recognises as wholly below the start and deletes.
  if (auto written = replace_file_durably(disk, join_path(directory_, kLogStartCheckpointName), encode_log_start(offset));
      !written) {
    return std::unexpected(from_disk(written.error()));
  }
  log_start_offset_ = offset;
  std::size_t removed = 0;
  while (segments_.size() > 1 && segments_.front()->end_offset() <= offset) {
    if (auto gone = remove_segment_files(disk, directory_, segments_.front()->base_offset()); !gone) return std::unexpected(from_disk(gone.error()));
    segments_.erase(segments_.begin());
    ++removed;
  }
  stats_.segments_deleted += removed;
  if (removed > 0) {
    if (auto synced = disk.sync_directory(directory_); !synced) return std::unexpected(from_disk(synced.error()));
  }
  return {};
}

std::expected<void, LogError> PartitionLog::delete_records_before(std::int64_t offset) {
  LockGuard guard(mutex_);
  if (auto usable = check_usable(); !usable) return usable;
  // Kafka's DeleteRecords may not go past the high watermark.
  if (offset > high_watermark() || offset < 0) return std::unexpected(LogError::offset_out_of_range);
  if (offset <= log_start_offset_) return {};
  return advance_log_start(offset);
}

std::expected<std::size_t, LogError> PartitionLog::enforce_retention() {
  LockGuard guard(mutex_);
  if (auto usable = check_usable(); !usable) return std::unexpected(usable.error());
  if (config_.retention_ms < 0 && config_.retention_bytes < 0) return 0;
  const std::int64_t wall_ms = env_.clock().wall_ms();
  std::uint64_t total_bytes = size_bytes();
  std::size_t expired = 0;
  std::int64_t new_start = log_start_offset_;
  // Oldest first, closed segments only (never the active one, the last).
  for (std::size_t i = 0; i + 1 < segments_.size(); ++i) {
    const Segment& segment = *segments_[i];
    const bool by_time = config_.retention_ms >= 0 && segment.largest_timestamp_ms() < wall_ms - config_.retention_ms;
    const bool by_size = config_.retention_bytes >= 0 &&
                         total_bytes - segment.size_bytes() >= static_cast<std::uint64_t>(config_.retention_bytes);
    if (!by_time && !by_size) break;
    total_bytes -= segment.size_bytes();
    new_start = std::max(new_start, segment.end_offset());
    ++expired;
  }
  if (expired == 0) return 0;
  log_.info("retention deletes {} segments; log start offset {} -> {}", expired, log_start_offset_, new_start);
  if (auto advanced = advance_log_start(new_start); !advanced) return std::unexpected(advanced.error());
  return expired;
}

std::expected<std::int64_t, LogError> PartitionLog::truncate_to(std::int64_t offset) {
  LockGuard guard(mutex_);
  if (auto usable = check_usable(); !usable) return std::unexpected(usable.error());
  if (offset < log_start_offset_) return std::unexpected(LogError::invalid_argument);
  if (offset >= log_end_offset_) return log_end_offset_;
  Disk& disk = env_.disk();
  // No datasync may straddle the removals below (it would sync a file that is going away).
  if (auto synced = sync_through_generation(write_generation_); !synced) return std::unexpected(synced.error());
  ++truncation_generation_;
  // Newest first, each removal durable before the next: a crash leaves a prefix of the segments,
  // never a gap.
  while (segments_.size() > 1 && segments_.back()->base_offset() >= offset) {
    auto removed = remove_segment_files(disk, directory_, segments_.back()->base_offset());
    if (removed) removed = disk.sync_directory(directory_);
    if (!removed) return std::unexpected(from_disk(removed.error()));
    segments_.pop_back();
    ++stats_.segments_deleted;
  }
  Segment& segment = active();
  auto located = segment.locate(offset, config_.index_interval_bytes);
  if (!located) return std::unexpected(from_disk(located.error()));
  const std::uint64_t cut = *located ? (*located)->position : segment.readable_end_position();
  if (auto truncated = segment.truncate_to(cut, config_.index_interval_bytes); !truncated) {
    return std::unexpected(from_disk(truncated.error()));
  }
  log_end_offset_ = segment.end_offset();
  durable_end_offset_ = std::min(durable_end_offset_, log_end_offset_);
  active_synced_bytes_ = 0;  // the sync below covers the (possibly older) active segment again
  roll_deferred_ = false;    // the next append decides afresh
  ++write_generation_;
  if (auto synced = sync_through_generation(write_generation_); !synced) return std::unexpected(synced.error());
  if (log_start_offset_ > log_end_offset_) {
    // The cut batch straddled the log start: the log restarts empty at its new end.
    if (auto advanced = replace_file_durably(disk, join_path(directory_, kLogStartCheckpointName),
                                             encode_log_start(log_end_offset_));
        !advanced) {
      return std::unexpected(from_disk(advanced.error()));
    }
    log_start_offset_ = log_end_offset_;
  }
  log_.info("truncated to offset {} (asked {})", log_end_offset_, offset);
  assert(log_end_offset_ <= offset && durable_end_offset_ == log_end_offset_);
  return log_end_offset_;
}

std::expected<void, LogError> PartitionLog::close() {
  LockGuard guard(mutex_);
  if (closed_) return {};
  if (auto usable = check_usable(); !usable) return usable;
  Disk& disk = env_.disk();
  // The index files and the marker describe the file as it is: without its preallocated tail.
  if (auto trimmed = trim_active_file(); !trimmed) return trimmed;
  if (auto synced = sync_through_generation(write_generation_); !synced) return synced;
  for (const std::shared_ptr<Segment>& segment : segments_) {
    if (segment->index_files_current() || segment->has_unreadable_tail()) continue;
    if (auto written = segment->write_index_files(disk, directory_); !written) {
      return std::unexpected(from_disk(written.error()));
    }
  }
  // replace_file_durably syncs the directory, which also makes new index file names durable.
  if (auto marked = replace_file_durably(disk, join_path(directory_, kCleanShutdownName),
                                         encode_clean_shutdown(log_end_offset_, segments_.size()));
      !marked) {
    return std::unexpected(from_disk(marked.error()));
  }
  closed_ = true;
  log_.info("closed cleanly at offset {}", log_end_offset_);
  return {};
}

std::vector<std::shared_ptr<const Segment>> PartitionLog::segments() const {
  return {segments_.begin(), segments_.end()};
}

std::uint64_t PartitionLog::size_bytes() const {
  std::uint64_t total = 0;
  for (const std::shared_ptr<Segment>& segment : segments_) total += segment->size_bytes();
  return total;
}

}  // namespace sluice::storage
