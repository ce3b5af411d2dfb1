#include "core/storage/record_batch.h"

#include <cassert>
#include <cstring>

#include "core/util/crc32c.h"

namespace sluice::storage {

namespace {

// Byte offsets within the batch (PROTOCOL.md §2).
constexpr std::size_t kBaseOffsetAt = 0;
constexpr std::size_t kBatchLengthAt = 8;
constexpr std::size_t kLeaderEpochAt = 12;
constexpr std::size_t kMagicAt = 16;
constexpr std::size_t kCrcAt = 17;
constexpr std::size_t kAttributesAt = 21;
constexpr std::size_t kLastOffsetDeltaAt = 23;
constexpr std::size_t kBaseTimestampAt = 27;
constexpr std::size_t kMaxTimestampAt = 35;
constexpr std::size_t kProducerIdAt = 43;
constexpr std::size_t kProducerEpochAt = 51;
constexpr std::size_t kBaseSequenceAt = 53;
constexpr std::size_t kRecordsCountAt = 57;
constexpr std::size_t kCrcCoveredFrom = kAttributesAt;
constexpr std::int32_t kBatchLengthMin = static_cast<std::int32_t>(kBatchHeaderBytes - kBatchLogOverheadBytes);
constexpr std::int16_t kTimestampTypeBit = 0x8;
constexpr std::int16_t kTransactionalBit = 0x10;
constexpr std::int16_t kControlBit = 0x20;

template <typename T>
T load_be(std::span<const std::byte> bytes, std::size_t at) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) value = (value << 8) | static_cast<std::uint8_t>(bytes[at + i]);
  return static_cast<T>(value);
}

template <typename T>
void store_be(std::span<std::byte> bytes, std::size_t at, T value) {
  auto bits = static_cast<std::uint64_t>(value);
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    bytes[at + sizeof(T) - 1 - i] = static_cast<std::byte>(bits & 0xff);
    bits >>= 8;
  }
}

template <typename T>
void append_be(std::vector<std::byte>& out, T value) {
  const std::size_t at = out.size();
  out.resize(at + sizeof(T));
  store_be<T>(out, at, value);
}

std::uint32_t batch_crc(std::span<const std::byte> batch) {
  return crc32c(batch.subspan(kCrcCoveredFrom));
}

// Walks the records of an uncompressed batch: each is a varint length then that many bytes.
bool record_framing_is_valid(std::span<const std::byte> batch, std::int32_t records_count) {
  std::size_t position = kBatchHeaderBytes;
  for (std::int32_t i = 0; i < records_count; ++i) {
    auto length = read_varint(batch, position);
    if (!length || *length <= 0 || static_cast<std::uint64_t>(*length) > batch.size() - position) return false;
    position += static_cast<std::size_t>(*length);
  }
  return position == batch.size();
}

void append_bytes(std::vector<std::byte>& out, std::string_view text) {
  const auto* data = reinterpret_cast<const std::byte*>(text.data());
  out.insert(out.end(), data, data + text.size());
}

void append_nullable(std::vector<std::byte>& out, const std::optional<std::string>& text) {
  if (!text) {
    append_varint(out, -1);
    return;
  }
  append_varint(out, static_cast<std::int64_t>(text->size()));
  append_bytes(out, *text);
}

std::optional<std::optional<std::string_view>> read_nullable(std::span<const std::byte> bytes,
                                                             std::size_t& position) {
  auto length = read_varint(bytes, position);
  if (!length || *length < -1) return std::nullopt;
  if (*length == -1) return std::optional<std::string_view>();
  if (static_cast<std::uint64_t>(*length) > bytes.size() - position) return std::nullopt;
  std::string_view text(reinterpret_cast<const char*>(bytes.data() + position), static_cast<std::size_t>(*length));
  position += static_cast<std::size_t>(*length);
  return std::optional<std::string_view>(text);
}

}  // namespace

std::string_view to_string(BatchError error) {
  switch (error) {
    case BatchError::truncated: return "batch truncated";
    case BatchError::bad_length: return "batch length out of range";
    case BatchError::bad_magic: return "unsupported magic (only record batch v2 is accepted)";
    case BatchError::crc_mismatch: return "CRC-32C mismatch";
    case BatchError::bad_record_count: return "records count does not match last offset delta";
    case BatchError::control_batch_from_client: return "control batch from a client";
    case BatchError::bad_producer_fields: return "inconsistent producer id, epoch and sequence";
    case BatchError::bad_compression: return "unknown compression codec";
    case BatchError::trailing_bytes: return "more than one batch";
    case BatchError::too_large: return "batch larger than max.message.bytes";
    case BatchError::bad_record: return "malformed record inside the batch";
    case BatchError::compressed_records: return "records are compressed";
  }
  return "unknown batch error";
}

std::int16_t kafka_error_code(BatchError error) {
  constexpr std::int16_t kCorruptMessage = 2;
  constexpr std::int16_t kMessageTooLarge = 10;
  constexpr std::int16_t kInvalidRecord = 87;
  switch (error) {
    case BatchError::crc_mismatch:
    case BatchError::truncated:
    case BatchError::bad_length: return kCorruptMessage;
    case BatchError::too_large: return kMessageTooLarge;
    default: return kInvalidRecord;
  }
}

std::int32_t BatchHeader::last_sequence() const {
  if (base_sequence < 0) return kNoSequence;
  const std::int64_t last = static_cast<std::int64_t>(base_sequence) + last_offset_delta;
  return static_cast<std::int32_t>(last > INT32_MAX ? last - INT32_MAX - 1 : last);
}

std::expected<BatchHeader, BatchError> parse_batch_header(std::span<const std::byte> bytes,
                                                          bool require_complete) {
  if (bytes.size() < kBatchHeaderBytes) return std::unexpected(BatchError::truncated);
  BatchHeader header;
  header.base_offset = load_be<std::int64_t>(bytes, kBaseOffsetAt);
  header.batch_length = load_be<std::int32_t>(bytes, kBatchLengthAt);
  header.partition_leader_epoch = load_be<std::int32_t>(bytes, kLeaderEpochAt);
  header.magic = load_be<std::int8_t>(bytes, kMagicAt);
  header.crc = load_be<std::uint32_t>(bytes, kCrcAt);
  header.attributes = load_be<std::int16_t>(bytes, kAttributesAt);
  header.last_offset_delta = load_be<std::int32_t>(bytes, kLastOffsetDeltaAt);
  header.base_timestamp = load_be<std::int64_t>(bytes, kBaseTimestampAt);
  header.max_timestamp = load_be<std::int64_t>(bytes, kMaxTimestampAt);
  header.producer_id = load_be<std::int64_t>(bytes, kProducerIdAt);
  header.producer_epoch = load_be<std::int16_t>(bytes, kProducerEpochAt);
  header.base_sequence = load_be<std::int32_t>(bytes, kBaseSequenceAt);
  header.records_count = load_be<std::int32_t>(bytes, kRecordsCountAt);
  if (header.batch_length < kBatchLengthMin) return std::unexpected(BatchError::bad_length);
  if (header.magic != kMagicV2) return std::unexpected(BatchError::bad_magic);
  if (require_complete && header.size_bytes() > bytes.size()) return std::unexpected(BatchError::truncated);
  return header;
}

std::expected<BatchHeader, BatchError> validate_stored_batch(std::span<const std::byte> bytes) {
  auto header = parse_batch_header(bytes, true);
  if (!header) return header;
  if (batch_crc(bytes.first(header->size_bytes())) != header->crc) {
    return std::unexpected(BatchError::crc_mismatch);
  }
  return header;
}

std::expected<BatchHeader, BatchError> validate_client_batch(std::span<const std::byte> batch,
                                                             std::size_t max_batch_bytes) {
  auto header = parse_batch_header(batch, true);
  if (!header) return header;
  if (header->size_bytes() < batch.size()) return std::unexpected(BatchError::trailing_bytes);
  if (header->size_bytes() > max_batch_bytes) return std::unexpected(BatchError::too_large);
  if (batch_crc(batch) != header->crc) return std::unexpected(BatchError::crc_mismatch);
  if (header->records_count <= 0 || header->last_offset_delta < 0 ||
      header->records_count != static_cast<std::int64_t>(header->last_offset_delta) + 1) {
    return std::unexpected(BatchError::bad_record_count);
  }
  if (header->control()) return std::unexpected(BatchError::control_batch_from_client);
  if ((header->attributes & 0x7) > static_cast<int>(Compression::zstd)) {
    return std::unexpected(BatchError::bad_compression);
  }
  if (header->has_producer()) {
    if (header->base_sequence < 0 || header->producer_epoch < 0) {
      return std::unexpected(BatchError::bad_producer_fields);
    }
  } else if (header->transactional()) {
    return std::unexpected(BatchError::bad_producer_fields);
  }
  if (header->compression() == Compression::none && !record_framing_is_valid(batch, header->records_count)) {
    return std::unexpected(BatchError::bad_record);
  }
  return header;
}

void stamp_batch(std::span<std::byte> batch, std::int64_t base_offset, std::int32_t leader_epoch) {
  assert(batch.size() >= kBatchHeaderBytes);
  store_be<std::int64_t>(batch, kBaseOffsetAt, base_offset);
  store_be<std::int32_t>(batch, kLeaderEpochAt, leader_epoch);
}

void set_log_append_time(std::span<std::byte> batch, std::int64_t timestamp_ms) {
  assert(batch.size() >= kBatchHeaderBytes);
  const auto attributes = load_be<std::int16_t>(batch, kAttributesAt);
  store_be<std::int16_t>(batch, kAttributesAt, static_cast<std::int16_t>(attributes | kTimestampTypeBit));
  store_be<std::int64_t>(batch, kMaxTimestampAt, timestamp_ms);
  store_be<std::uint32_t>(batch, kCrcAt, batch_crc(batch));
}

void append_varint(std::vector<std::byte>& out, std::int64_t value) {
  auto zigzag = (static_cast<std::uint64_t>(value) << 1) ^ static_cast<std::uint64_t>(value >> 63);
  while (zigzag >= 0x80) {
    out.push_back(static_cast<std::byte>((zigzag & 0x7f) | 0x80));
    zigzag >>= 7;
  }
  out.push_back(static_cast<std::byte>(zigzag));
}

std::optional<std::int64_t> read_varint(std::span<const std::byte> bytes, std::size_t& position) {
  std::uint64_t raw = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (position >= bytes.size()) return std::nullopt;
    const auto byte = static_cast<std::uint8_t>(bytes[position++]);
    raw |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      return static_cast<std::int64_t>((raw >> 1) ^ (~(raw & 1) + 1));
    }
  }
  return std::nullopt;  // more than 10 bytes: malformed
}

std::vector<std::byte> build_batch(const BatchSpec& spec) {
  assert(!spec.records.empty());
  std::vector<std::byte> batch;
  batch.reserve(kBatchHeaderBytes + spec.records.size() * 32);
  append_be<std::int64_t>(batch, spec.base_offset);
  append_be<std::int32_t>(batch, 0);   // batch length, patched below
  append_be<std::int32_t>(batch, -1);  // partition leader epoch: producers send -1
  append_be<std::int8_t>(batch, kMagicV2);
  append_be<std::uint32_t>(batch, 0);  // crc, patched below
  std::int16_t attributes = 0;
  if (spec.transactional) attributes |= kTransactionalBit;
  if (spec.control) attributes |= kControlBit;
  append_be<std::int16_t>(batch, attributes);
  append_be<std::int32_t>(batch, static_cast<std::int32_t>(spec.records.size() - 1));
  std::int64_t max_delta = 0;
  for (const auto& record : spec.records) max_delta = std::max(max_delta, record.timestamp_delta_ms);
  append_be<std::int64_t>(batch, spec.base_timestamp_ms);
  append_be<std::int64_t>(batch, spec.base_timestamp_ms + max_delta);
  append_be<std::int64_t>(batch, spec.producer_id);
  append_be<std::int16_t>(batch, spec.producer_epoch);
  append_be<std::int32_t>(batch, spec.base_sequence);
  append_be<std::int32_t>(batch, static_cast<std::int32_t>(spec.records.size()));
  assert(batch.size() == kBatchHeaderBytes);

  std::vector<std::byte> body;
  for (std::size_t index = 0; index < spec.records.size(); ++index) {
    const RecordSpec& record = spec.records[index];
    body.clear();
    body.push_back(std::byte{0});  // record attributes (unused)
    append_varint(body, record.timestamp_delta_ms);
    append_varint(body, static_cast<std::int64_t>(index));
    append_nullable(body, record.key);
    append_nullable(body, record.value);
    append_varint(body, static_cast<std::int64_t>(record.headers.size()));
    for (const auto& [key, value] : record.headers) {
      append_varint(body, static_cast<std::int64_t>(key.size()));
      append_bytes(body, key);
      append_nullable(body, value);
    }
    append_varint(batch, static_cast<std::int64_t>(body.size()));
    batch.insert(batch.end(), body.begin(), body.end());
  }
  store_be<std::int32_t>(batch, kBatchLengthAt, static_cast<std::int32_t>(batch.size() - kBatchLogOverheadBytes));
  store_be<std::uint32_t>(batch, kCrcAt, batch_crc(batch));
  return batch;
}

std::expected<std::vector<RecordView>, BatchError> decode_records(std::span<const std::byte> batch) {
  auto header = parse_batch_header(batch, true);
  if (!header) return std::unexpected(header.error());
  if (header->compression() != Compression::none) return std::unexpected(BatchError::compressed_records);
  batch = batch.first(header->size_bytes());
  std::vector<RecordView> records;
  std::size_t position = kBatchHeaderBytes;
  for (std::int32_t i = 0; i < header->records_count; ++i) {
    auto length = read_varint(batch, position);
    if (!length || *length <= 0 || static_cast<std::uint64_t>(*length) > batch.size() - position) {
      return std::unexpected(BatchError::bad_record);
    }
    auto record_bytes = batch.subspan(position, static_cast<std::size_t>(*length));
    position += static_cast<std::size_t>(*length);
    std::size_t at = 1;  // skip the record attributes byte
    auto timestamp_delta = read_varint(record_bytes, at);
    auto offset_delta = read_varint(record_bytes, at);
    auto key = read_nullable(record_bytes, at);
    auto value = read_nullable(record_bytes, at);
    auto header_count = read_varint(record_bytes, at);
    if (!timestamp_delta || !offset_delta || !key || !value || !header_count || *header_count < 0 ||
        static_cast<std::uint64_t>(*header_count) > record_bytes.size()) {
      return std::unexpected(BatchError::bad_record);
    }
    RecordView view;
    view.offset = header->base_offset + *offset_delta;
    view.timestamp_ms = header->base_timestamp + *timestamp_delta;
    view.key = *key;
    view.value = *value;
    for (std::int64_t h = 0; h < *header_count; ++h) {
      auto header_key = read_nullable(record_bytes, at);
      auto header_value = read_nullable(record_bytes, at);
      if (!header_key || !*header_key || !header_value) return std::unexpected(BatchError::bad_record);
      view.headers.emplace_back(**header_key, *header_value);
    }
    if (at != record_bytes.size()) return std::unexpected(BatchError::bad_record);
    records.push_back(std::move(view));
  }
  if (position != batch.size()) return std::unexpected(BatchError::bad_record);
  return records;
}

}  // namespace sluice::storage
