#pragma once
// Kafka record batch v2 (magic 2): zero-copy header parsing, validation of a producer's batch,
// and stamping the broker-assigned base offset and leader epoch in place. Layout: see
// ../shared/PROTOCOL.md §2. All integers big-endian. The CRC-32C covers bytes [21, end), so the
// stamped fields (base offset at 0, leader epoch at 12) do not change it.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::storage {

inline constexpr std::size_t kBatchHeaderBytes = 61;
inline constexpr std::size_t kBatchLogOverheadBytes = 12;  // base offset i64 + batch length i32
inline constexpr std::int8_t kMagicV2 = 2;
inline constexpr std::int64_t kNoProducerId = -1;
inline constexpr std::int16_t kNoProducerEpoch = -1;
inline constexpr std::int32_t kNoSequence = -1;

enum class Compression : std::uint8_t { none = 0, gzip = 1, snappy = 2, lz4 = 3, zstd = 4 };

enum class BatchError : std::uint8_t {
  truncated,                  // fewer bytes than the header or the batch length claims
  bad_length,                 // batch length below the header size or above the allowed maximum
  bad_magic,                  // magic != 2
  crc_mismatch,               // CRC-32C over [21, end) differs (Kafka: CORRUPT_MESSAGE)
  bad_record_count,           // records count <= 0 or != last offset delta + 1
  control_batch_from_client,  // clients may not send control batches
  bad_producer_fields,        // producer id set but base sequence < 0 or epoch < 0
  bad_compression,            // codec bits 5..7
  trailing_bytes,             // more than one batch where exactly one is allowed
  too_large,                  // above the topic's max.message.bytes (Kafka: MESSAGE_TOO_LARGE)
  bad_record,                 // an inner record's framing is malformed
  compressed_records,         // decode_records on a compressed batch (decompression comes later)
};

std::string_view to_string(BatchError error);
// Kafka error code a Produce response carries for this failure: 2 CORRUPT_MESSAGE for a CRC
// mismatch or broken framing, 10 MESSAGE_TOO_LARGE, 87 INVALID_RECORD otherwise.
std::int16_t kafka_error_code(BatchError error);

// A decoded copy of the 61-byte header (the batch bytes themselves are not copied).
struct BatchHeader {
  std::int64_t base_offset = 0;
  std::int32_t batch_length = 0;  // bytes after the length field: total size - 12
  std::int32_t partition_leader_epoch = 0;
  std::int8_t magic = 0;
  std::uint32_t crc = 0;
  std::int16_t attributes = 0;
  std::int32_t last_offset_delta = 0;
  std::int64_t base_timestamp = 0;
  std::int64_t max_timestamp = 0;
  std::int64_t producer_id = kNoProducerId;
  std::int16_t producer_epoch = kNoProducerEpoch;
  std::int32_t base_sequence = kNoSequence;
  std::int32_t records_count = 0;

  std::size_t size_bytes() const { return kBatchLogOverheadBytes + static_cast<std::size_t>(batch_length); }
  std::int64_t last_offset() const { return base_offset + last_offset_delta; }
  Compression compression() const { return static_cast<Compression>(attributes & 0x7); }
  bool log_append_time() const { return (attributes & 0x8) != 0; }
  bool transactional() const { return (attributes & 0x10) != 0; }
  bool control() const { return (attributes & 0x20) != 0; }
  bool has_producer() const { return producer_id >= 0; }
  // Last sequence covered by the batch (sequences wrap from INT32_MAX to 0).
  std::int32_t last_sequence() const;
};

// Decodes the header only: checks there are at least 61 bytes, magic 2 and a sane batch length
// (>= 49, and the whole batch within `bytes` when `require_complete`). No CRC check.
std::expected<BatchHeader, BatchError> parse_batch_header(std::span<const std::byte> bytes,
                                                          bool require_complete = true);

// Everything a broker checks on a batch read back from its own log: header, complete, CRC.
// `bytes` starts with the batch and may continue past it (a buffer of several batches).
std::expected<BatchHeader, BatchError> validate_stored_batch(std::span<const std::byte> bytes);

// A producer's batch for one partition (Produce v3+): exactly one batch filling `batch`, magic 2,
// CRC, records count == last offset delta + 1 > 0, no control batch, valid codec, producer
// fields consistent, size <= max_batch_bytes, and (uncompressed) every record's framing.
std::expected<BatchHeader, BatchError> validate_client_batch(std::span<const std::byte> batch,
                                                             std::size_t max_batch_bytes);

// Overwrites base offset and partition leader epoch in place (outside the CRC).
void stamp_batch(std::span<std::byte> batch, std::int64_t base_offset, std::int32_t leader_epoch);

// Sets max timestamp and the LogAppendTime attribute (topics with message.timestamp.type=
// LogAppendTime) and recomputes the CRC, since both lie inside it.
void set_log_append_time(std::span<std::byte> batch, std::int64_t timestamp_ms);

// Protobuf-style zigzag varints as used inside records.
void append_varint(std::vector<std::byte>& out, std::int64_t value);
std::optional<std::int64_t> read_varint(std::span<const std::byte> bytes, std::size_t& position);

// Builds uncompressed v2 batches: for tests, the simulator's clients and benchmarks.
struct RecordSpec {
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<std::pair<std::string, std::optional<std::string>>> headers;
  std::int64_t timestamp_delta_ms = 0;
};

struct BatchSpec {
  std::int64_t base_offset = 0;
  std::int64_t base_timestamp_ms = 0;
  std::int64_t producer_id = kNoProducerId;
  std::int16_t producer_epoch = kNoProducerEpoch;
  std::int32_t base_sequence = kNoSequence;
  bool transactional = false;
  bool control = false;
  std::vector<RecordSpec> records;
};

std::vector<std::byte> build_batch(const BatchSpec& spec);

// One record of an uncompressed batch, viewed in place.
struct RecordView {
  std::int64_t offset = 0;
  std::int64_t timestamp_ms = 0;
  std::optional<std::string_view> key;
  std::optional<std::string_view> value;
  std::vector<std::pair<std::string_view, std::optional<std::string_view>>> headers;
};

// Decodes the records of an uncompressed, validated batch; error if malformed or compressed.
std::expected<std::vector<RecordView>, BatchError> decode_records(std::span<const std::byte> batch);

}  // namespace sluice::storage
