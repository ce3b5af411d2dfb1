#include "core/storage/segment.h"

#include <algorithm>
#include <cassert>
#include <limits>

#include <fmt/format.h>

#include "core/storage/storage_files.h"

namespace sluice::storage {

namespace {

constexpr std::size_t kOffsetDigits = 20;

}  // namespace

std::string segment_file_name(std::int64_t base_offset, std::string_view suffix) {
  assert(base_offset >= 0);
  return fmt::format("{:020d}{}", base_offset, suffix);
}

std::optional<std::int64_t> parse_segment_file_name(std::string_view name, std::string_view suffix) {
  if (name.size() != kOffsetDigits + suffix.size() || !name.ends_with(suffix)) return std::nullopt;
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < kOffsetDigits; ++i) {
    const char digit = name[i];
    if (digit < '0' || digit > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(digit - '0');
    if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
  }
  return static_cast<std::int64_t>(value);
}

Segment::Segment(std::int64_t base_offset, std::unique_ptr<File> file)
    : base_offset_(base_offset), file_(std::move(file)), end_offset_(base_offset) {
  assert(base_offset_ >= 0);
  assert(file_ != nullptr);
}

Segment::~Segment() { file_->close(); }

std::expected<std::unique_ptr<Segment>, DiskError> Segment::create(Disk& disk, const std::string& directory,
                                                                   std::int64_t base_offset) {
  auto file = disk.open(join_path(directory, segment_file_name(base_offset, kLogSuffix)), OpenMode::create_new);
  if (!file) return std::unexpected(file.error());
  return std::unique_ptr<Segment>(new Segment(base_offset, std::move(*file)));
}

std::expected<std::unique_ptr<Segment>, DiskError> Segment::open(Disk& disk, const std::string& directory,
                                                                 std::int64_t base_offset) {
  auto file = disk.open(join_path(directory, segment_file_name(base_offset, kLogSuffix)), OpenMode::read_write);
  if (!file) return std::unexpected(file.error());
  return std::unique_ptr<Segment>(new Segment(base_offset, std::move(*file)));
}

void Segment::reset_state() {
  end_offset_ = base_offset_;
  size_bytes_ = 0;
  readable_end_position_ = 0;
  largest_timestamp_ms_ = -1;
  bytes_since_index_entry_ = 0;
  offset_index_.clear();
  time_index_.clear();
  index_files_current_ = false;
}

void Segment::index_batch(const BatchHeader& header, std::uint64_t position,
                          std::uint32_t index_interval_bytes) {
  assert(header.base_offset == end_offset_);
  assert(position == size_bytes_);
  // Relative offsets and positions are u32 on disk; PartitionLog rolls before either overflows.
  assert(header.last_offset() - base_offset_ < std::numeric_limits<std::uint32_t>::max());
  assert(position + header.size_bytes() <= std::numeric_limits<std::uint32_t>::max());
  const auto relative_offset = static_cast<std::uint32_t>(header.base_offset - base_offset_);
  // The first batch (position 0) needs no entry: a lookup that finds none starts at 0.
  if (position > 0 && bytes_since_index_entry_ >= index_interval_bytes) {
    offset_index_.add(OffsetIndexEntry{relative_offset, static_cast<std::uint32_t>(position)});
    if (largest_timestamp_ms_ >= 0) time_index_.add(TimeIndexEntry{largest_timestamp_ms_, relative_offset});
    bytes_since_index_entry_ = 0;
  }
  bytes_since_index_entry_ += header.size_bytes();
  size_bytes_ += header.size_bytes();
  readable_end_position_ = size_bytes_;
  end_offset_ = header.last_offset() + 1;
  largest_timestamp_ms_ = std::max(largest_timestamp_ms_, header.max_timestamp);
  index_files_current_ = false;
}

void Segment::preallocate_ahead(std::size_t batch_bytes, std::uint64_t limit_bytes) {
  const std::uint64_t needed = size_bytes_ + batch_bytes;
  if (needed <= file_bytes_ || preallocation_failed_) return;
  const std::uint64_t ahead = std::clamp<std::uint64_t>(size_bytes_, kPreallocateMinBytes, kPreallocateMaxBytes);
  const std::uint64_t target = std::max(needed, std::min(needed + ahead, limit_bytes));
  if (auto allocated = file_->allocate(file_bytes_, target - file_bytes_); !allocated) {
    // Unsupported here, or the disk is full (the write will say so): appends go on without.
    preallocation_failed_ = allocated.error() == DiskError::invalid_argument;
  }
  if (auto file_size = file_->size()) file_bytes_ = *file_size;
}

std::expected<void, DiskError> Segment::trim_file_to_end() {
  if (file_bytes_ == size_bytes_) return {};
  if (auto cut = file_->truncate(size_bytes_); !cut) return cut;
  file_bytes_ = size_bytes_;
  return {};
}

std::expected<bool, DiskError> Segment::file_tail_is_zeros() {
  std::vector<std::byte> buffer(std::min<std::uint64_t>(file_tail_bytes(), 64 * 1024));
  for (std::uint64_t at = size_bytes_; at < file_bytes_;) {
    const auto wanted = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), file_bytes_ - at));
    auto got = file_->read_at(at, std::span(buffer).first(wanted));
    if (!got) return std::unexpected(got.error());
    if (*got == 0) return false;  // shorter than believed
    const auto chunk = std::span(buffer).first(*got);
    if (std::any_of(chunk.begin(), chunk.end(), [](std::byte b) { return b != std::byte{0}; })) return false;
    at += *got;
  }
  return true;
}

std::expected<void, DiskError> Segment::append(std::span<const std::byte> batch, const BatchHeader& header,
                                               std::uint32_t index_interval_bytes, Instant now) {
  assert(batch.size() == header.size_bytes());
  assert(!has_unreadable_tail() && "appending after an unreadable region");
  if (auto written = file_->write_at(size_bytes_, batch); !written) {
    // A partial write may have left bytes past the end; cut them so the next append (or a scan
    // after a crash) never sees a half batch between two good ones.
    if (file_->truncate(size_bytes_)) file_bytes_ = size_bytes_;
    return written;
  }
  start_age_clock(now);
  index_batch(header, size_bytes_, index_interval_bytes);
  file_bytes_ = std::max(file_bytes_, size_bytes_);
  return {};
}

std::expected<WalkResult, DiskError> Segment::walk(std::uint64_t position, std::int64_t first_offset,
                                                   const WalkOptions& options, const BatchVisitor& visitor) {
  assert(position <= readable_end_position_);
  const std::uint64_t limit = readable_end_position_;
  WalkResult result{WalkEnd::end_of_data, position, first_offset, std::nullopt};
  std::vector<std::byte> buffer;
  std::uint64_t buffer_start = position;
  // The bytes [at, at + count) of the file, read ahead into `buffer` when not already there.
  auto view = [&](std::uint64_t at, std::size_t count) -> std::expected<std::span<const std::byte>, DiskError> {
    assert(at + count <= limit);
    if (at < buffer_start || at + count > buffer_start + buffer.size()) {
      const std::size_t wanted = static_cast<std::size_t>(
          std::max<std::uint64_t>(count, std::min<std::uint64_t>(options.read_ahead_bytes, limit - at)));
      buffer.resize(wanted);
      auto got = file_->read_at(at, buffer);
      if (!got) return std::unexpected(got.error());
      buffer.resize(*got);
      buffer_start = at;
      if (*got < count) return std::span<const std::byte>{};  // the file is shorter than we believed
    }
    return std::span<const std::byte>(buffer).subspan(static_cast<std::size_t>(at - buffer_start), count);
  };
  auto invalid = [&result](std::optional<BatchError> error) {
    result.end = WalkEnd::invalid_batch;
    result.error = error;
    return result;
  };
  // Every batch is at least a header long, so this bounds the loop.
  const std::uint64_t batches_max = (limit - position) / kBatchHeaderBytes + 1;
  for (std::uint64_t visited = 0; visited <= batches_max; ++visited) {
    const std::uint64_t at = result.end_position;
    if (at == limit) return result;
    if (limit - at < kBatchHeaderBytes) return invalid(BatchError::truncated);
    auto header_bytes = view(at, kBatchHeaderBytes);
    if (!header_bytes) return std::unexpected(header_bytes.error());
    if (header_bytes->empty()) return invalid(BatchError::truncated);
    auto header = parse_batch_header(*header_bytes, /*require_complete=*/false);
    if (!header) return invalid(header.error());
    const std::size_t size = header->size_bytes();
    if (size > limit - at) return invalid(BatchError::truncated);
    auto batch = view(at, size);
    if (!batch) return std::unexpected(batch.error());
    if (batch->empty()) return invalid(BatchError::truncated);
    if (options.verify_crc) {
      if (auto valid = validate_stored_batch(*batch); !valid) return invalid(valid.error());
    }
    // The base offset lies outside the CRC: continuity is what protects it.
    if (header->base_offset != result.next_offset || header->last_offset_delta < 0) return invalid(std::nullopt);
    if (visitor(*header, at, *batch) == Visit::stop) {
      result.end = WalkEnd::stopped;
      return result;
    }
    result.end_position = at + size;
    result.next_offset = header->last_offset() + 1;
  }
  assert(false && "walk exceeded its bound");
  return invalid(BatchError::truncated);
}

std::expected<std::optional<Segment::Location>, DiskError> Segment::locate(std::int64_t offset,
                                                                           std::uint32_t index_interval_bytes) {
  if (offset < base_offset_ || offset >= end_offset_) return std::optional<Location>{};
  const OffsetIndexEntry start = offset_index_.floor(static_cast<std::uint32_t>(offset - base_offset_));
  if (start.position > readable_end_position_) return std::optional<Location>{};
  std::optional<Location> found;
  WalkOptions options;
  options.verify_crc = false;  // the reader verifies what it returns
  options.read_ahead_bytes = std::size_t{index_interval_bytes} * 2 + kBatchHeaderBytes;
  auto walked = walk(start.position, base_offset_ + start.relative_offset, options,
                     [&found, offset](const BatchHeader& header, std::uint64_t position, std::span<const std::byte>) {
                       if (header.last_offset() < offset) return Visit::next;
                       found = Location{position, header.base_offset};
                       return Visit::stop;
                     });
  if (!walked) return std::unexpected(walked.error());
  assert(!found || (found->base_offset <= offset));
  return found;
}

std::expected<WalkResult, DiskError> Segment::rebuild_by_scan(std::uint32_t index_interval_bytes,
                                                              std::uint64_t& batches_scanned, bool verify_crc) {
  auto file_size = file_->size();
  if (!file_size) return std::unexpected(file_size.error());
  reset_state();
  file_bytes_ = *file_size;
  readable_end_position_ = *file_size;  // the walk's limit, taken once when it starts
  WalkOptions options;
  options.verify_crc = verify_crc;
  auto walked = walk(0, base_offset_, options,
                     [&](const BatchHeader& header, std::uint64_t position, std::span<const std::byte>) {
                       index_batch(header, position, index_interval_bytes);
                       ++batches_scanned;
                       return Visit::next;
                     });
  readable_end_position_ = size_bytes_;
  if (!walked) return walked;
  assert(walked->end_position == size_bytes_ && walked->next_offset == end_offset_);
  return walked;
}

std::expected<bool, DiskError> Segment::load_index_files(Disk& disk, const std::string& directory) {
  auto file_size = file_->size();
  if (!file_size) return std::unexpected(file_size.error());
  auto offset_image = read_whole_file(disk, join_path(directory, segment_file_name(base_offset_, kOffsetIndexSuffix)));
  auto time_image = read_whole_file(disk, join_path(directory, segment_file_name(base_offset_, kTimeIndexSuffix)));
  if (!offset_image || !time_image) return false;
  auto offsets = OffsetIndex::decode(*offset_image);
  auto times = TimeIndex::decode(*time_image);
  if (!offsets || !times) return false;
  const IndexFileSummary& offset_summary = offsets->second;
  const IndexFileSummary& time_summary = times->second;
  const bool matches = offset_summary.base_offset == base_offset_ && time_summary.base_offset == base_offset_ &&
                       offset_summary.log_size_bytes == *file_size && time_summary.log_size_bytes == *file_size &&
                       offset_summary.summary >= base_offset_ && (*file_size == 0) == (offset_summary.summary == base_offset_);
  if (!matches) return false;
  reset_state();
  offset_index_ = std::move(offsets->first);
  time_index_ = std::move(times->first);
  size_bytes_ = readable_end_position_ = file_bytes_ = *file_size;
  end_offset_ = offset_summary.summary;
  largest_timestamp_ms_ = time_summary.summary;
  const auto& entries = offset_index_.entries();
  bytes_since_index_entry_ = size_bytes_ - (entries.empty() ? 0 : entries.back().position);
  index_files_current_ = true;
  return true;
}

std::expected<void, DiskError> Segment::write_index_files(Disk& disk, const std::string& directory) {
  assert(!has_unreadable_tail() && "an unverified segment's indexes are not worth keeping");
  IndexFileSummary summary{base_offset_, size_bytes_, end_offset_};
  if (auto written = write_whole_file(disk, join_path(directory, segment_file_name(base_offset_, kOffsetIndexSuffix)),
                                      offset_index_.encode(summary));
      !written) {
    return written;
  }
  summary.summary = largest_timestamp_ms_;
  if (auto written = write_whole_file(disk, join_path(directory, segment_file_name(base_offset_, kTimeIndexSuffix)),
                                      time_index_.encode(summary));
      !written) {
    return written;
  }
  index_files_current_ = true;
  return {};
}

std::expected<void, DiskError> Segment::truncate_to(std::uint64_t position, std::uint32_t index_interval_bytes) {
  assert(position <= size_bytes_);
  if (auto cut = file_->truncate(position); !cut) return cut;
  cache_dropped_until_ = std::min(cache_dropped_until_, position);
  std::uint64_t batches_scanned = 0;
  auto rebuilt = rebuild_by_scan(index_interval_bytes, batches_scanned);
  if (!rebuilt) return std::unexpected(rebuilt.error());
  // Everything before `position` was verified when written or recovered; a failure here means
  // the disk changed under us, which the caller reports as corruption on the next read.
  return {};
}

std::uint64_t Segment::drop_cache_before(std::uint64_t position) {
  position = std::min(position, size_bytes_);
  if (position <= cache_dropped_until_) return 0;
  const std::uint64_t length = position - cache_dropped_until_;
  file_->drop_cache(cache_dropped_until_, length);
  cache_dropped_until_ = position;
  return length;
}

void Segment::mark_unreadable_from(std::uint64_t position, std::int64_t end_offset) {
  assert(position == size_bytes_);
  assert(end_offset >= end_offset_);
  auto file_size = file_->size();
  size_bytes_ = file_size ? std::max<std::uint64_t>(*file_size, position) : position;
  file_bytes_ = size_bytes_;
  readable_end_position_ = position;
  end_offset_ = end_offset;
  index_files_current_ = false;
}

std::expected<void, DiskError> remove_segment_files(Disk& disk, const std::string& directory,
                                                    std::int64_t base_offset) {
  for (std::string_view suffix : {kOffsetIndexSuffix, kTimeIndexSuffix, kLogSuffix}) {
    if (auto removed = remove_if_present(disk, join_path(directory, segment_file_name(base_offset, suffix)));
        !removed) {
      return removed;
    }
  }
  return {};
}

}  // namespace sluice::storage
