#include "core/storage/record_batch.h"
#include "core/util/crc32c.h"

#include <gtest/gtest.h>

#include "tests/testing/hex.h"
#include <rapidcheck/gtest.h>

#include <string>
#include <vector>

namespace sluice::storage {
namespace {

using sluice::testing::from_hex;
using sluice::testing::hex;

BatchSpec two_records() {
  BatchSpec spec;
  spec.base_timestamp_ms = 1'700'000'000'000;
  spec.records.push_back({std::nullopt, std::string("hello"), {}, 0});
  spec.records.push_back({std::string("k"), std::nullopt, {{"h", std::string("v")}}, 5});
  return spec;
}

// Recomputes the CRC after a test edits fields inside it, so only the edited rule can fail.
void fix_crc(std::vector<std::byte>& batch) {
  const std::uint32_t crc = crc32c(std::span<const std::byte>(batch).subspan(21));
  for (int i = 0; i < 4; ++i) batch[17 + i] = static_cast<std::byte>(crc >> (24 - 8 * i));
}

template <typename T>
void poke_be(std::vector<std::byte>& batch, std::size_t at, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    batch[at + i] = static_cast<std::byte>(static_cast<std::uint64_t>(value) >> (8 * (sizeof(T) - 1 - i)));
  }
}

TEST(RecordBatch, built_batches_match_kafka_python_byte_for_byte) {
  // Reference bytes from kafka-python 2.0.2's DefaultRecordBatchBuilder (Debian python3-kafka),
  // which writes partition leader epoch 0 where producers on the wire usually send -1.
  auto batch = build_batch(two_records());
  stamp_batch(batch, 0, 0);
  EXPECT_EQ(hex(batch),
            "0000000000000000000000490000000002bdde73110000000000010000018bcfe568000000018bcfe5680"
            "5ffffffffffffffffffffffffffff0000000216000000010a68656c6c6f0016000a02026b010202680276");

  BatchSpec idempotent;
  idempotent.base_timestamp_ms = 1'700'000'000'000;
  idempotent.producer_id = 1234;
  idempotent.producer_epoch = 3;
  idempotent.base_sequence = INT32_MAX;
  idempotent.records.push_back({std::string("key"), std::string("value"), {}, 0});
  idempotent.records.push_back({std::string("key"), std::string("value"), {}, 0});
  auto second = build_batch(idempotent);
  stamp_batch(second, 0, 0);
  EXPECT_EQ(hex(second),
            "00000000000000000000004f0000000002157495dd0000000000010000018bcfe568000000018bcfe5680"
            "000000000000004d200037fffffff000000021c000000066b65790a76616c7565001c000002066b65790a"
            "76616c756500");
}

TEST(RecordBatch, compressed_batches_from_kafka_python_are_accepted_as_sent) {
  // Three records each, compressed by kafka-python 2.0.2 with gzip, snappy (xerial), lz4
  // (frame) and zstd. Stored as sent: the header and CRC are checked, the records are not
  // decompressed (needed only for compaction later).
  const std::pair<Compression, std::string_view> vectors[] = {
      {Compression::gzip,
       "00000000000000000000006d000000000234a0d7cc0001000000020000018bcfe568000000018bcfe56802ffffffffffff"
       "ffffffffffffffff000000031f8b0800fccf026b02ff6b63626060e0c84ead34f8c0589698539aaa4b7f92a18d8981890"
       "9e408c38175040b0bc8114603e80800ef58917d8f010000"},
      {Compression::snappy,
       "00000000000000000000007e0000000002b920a9120002000000020000018bcfe568000000018bcfe56802ffffffffffff"
       "ffffffffffffffff0000000382534e41505059000000000100000001000000398f03448602000000086b657930f00176616c"
       "75652dfe0600c606001400860200020201850031fe8500f6850004040401850032fe8500ea8500"},
      {Compression::lz4,
       "00000000000000000000007d0000000002252fcd460003000000020000018bcfe568000000018bcfe56802ffffffffffff"
       "ffffffffffffffff0000000304224d1868408f01000000000000cb35000000ff038602000000086b657930f00176616c7565"
       "2d06005f6000860200020285001f3185006b20040485001f32850063506c75652d0000000000"},
      {Compression::zstd,
       "00000000000000000000006b0000000002c6c512eb0004000000020000018bcfe568000000018bcfe56802ffffffffffff"
       "ffffffffffffffff0000000328b52ffd608f0085010004028602000000086b657930f00176616c75652d0086020002020"
       "86b657931040432040018a480156f8449bd97b48401"},
  };
  for (const auto& [codec, text] : vectors) {
    auto batch = from_hex(text);
    auto header = validate_client_batch(batch, 1 << 20);
    ASSERT_TRUE(header.has_value()) << static_cast<int>(codec) << ": " << to_string(header.error());
    EXPECT_EQ(header->compression(), codec);
    EXPECT_EQ(header->records_count, 3);
    EXPECT_EQ(decode_records(batch).error(), BatchError::compressed_records);
    batch[70] ^= std::byte{0x10};  // inside the compressed payload
    EXPECT_EQ(validate_client_batch(batch, 1 << 20).error(), BatchError::crc_mismatch);
  }
}

TEST(RecordBatch, client_batch_validates_and_header_fields_decode) {
  auto batch = build_batch(two_records());
  auto header = validate_client_batch(batch, 1 << 20);
  ASSERT_TRUE(header.has_value()) << to_string(header.error());
  EXPECT_EQ(header->records_count, 2);
  EXPECT_EQ(header->last_offset_delta, 1);
  EXPECT_EQ(header->base_timestamp, 1'700'000'000'000);
  EXPECT_EQ(header->max_timestamp, 1'700'000'000'005);
  EXPECT_EQ(header->size_bytes(), batch.size());
  EXPECT_EQ(header->compression(), Compression::none);
  EXPECT_FALSE(header->has_producer());
}

TEST(RecordBatch, stamping_offset_and_epoch_keeps_the_crc_valid) {
  auto batch = build_batch(two_records());
  stamp_batch(batch, 1'000'000'007, 42);
  auto header = validate_stored_batch(batch);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->base_offset, 1'000'000'007);
  EXPECT_EQ(header->last_offset(), 1'000'000'008);
  EXPECT_EQ(header->partition_leader_epoch, 42);
}

TEST(RecordBatch, log_append_time_sets_type_and_max_timestamp_and_recomputes_the_crc) {
  auto batch = build_batch(two_records());
  set_log_append_time(batch, 1'800'000'000'000);
  auto header = validate_stored_batch(batch);
  ASSERT_TRUE(header.has_value());
  EXPECT_TRUE(header->log_append_time());
  EXPECT_EQ(header->max_timestamp, 1'800'000'000'000);
}

TEST(RecordBatch, records_decode_with_null_keys_values_and_headers) {
  auto batch = build_batch(two_records());
  stamp_batch(batch, 100, 0);
  auto records = decode_records(batch);
  ASSERT_TRUE(records.has_value());
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].offset, 100);
  EXPECT_FALSE((*records)[0].key.has_value());
  EXPECT_EQ((*records)[0].value, "hello");
  EXPECT_EQ((*records)[1].offset, 101);
  EXPECT_EQ((*records)[1].timestamp_ms, 1'700'000'000'005);
  EXPECT_EQ((*records)[1].key, "k");
  EXPECT_FALSE((*records)[1].value.has_value());
  ASSERT_EQ((*records)[1].headers.size(), 1u);
  EXPECT_EQ((*records)[1].headers[0].first, "h");
  EXPECT_EQ((*records)[1].headers[0].second, "v");
}

TEST(RecordBatch, each_broken_rule_has_its_error_and_kafka_code) {
  const auto good = build_batch(two_records());
  auto expect_error = [](std::vector<std::byte> batch, BatchError error, std::int16_t code) {
    auto result = validate_client_batch(batch, 1 << 20);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error(), error) << to_string(result.error());
    EXPECT_EQ(kafka_error_code(result.error()), code);
  };
  expect_error(std::vector<std::byte>(good.begin(), good.begin() + 40), BatchError::truncated, 2);
  expect_error(std::vector<std::byte>(good.begin(), good.end() - 1), BatchError::truncated, 2);
  {
    auto batch = good;
    poke_be<std::int32_t>(batch, 8, 10);
    expect_error(batch, BatchError::bad_length, 2);
  }
  {
    auto batch = good;
    batch[16] = std::byte{1};
    expect_error(batch, BatchError::bad_magic, 87);
  }
  {
    auto batch = good;
    batch.back() ^= std::byte{0x01};
    expect_error(batch, BatchError::crc_mismatch, 2);
  }
  {
    auto batch = good;
    poke_be<std::int32_t>(batch, 57, 3);  // records count != last offset delta + 1
    fix_crc(batch);
    expect_error(batch, BatchError::bad_record_count, 87);
  }
  {
    auto spec = two_records();
    spec.control = true;
    expect_error(build_batch(spec), BatchError::control_batch_from_client, 87);
  }
  {
    auto spec = two_records();
    spec.producer_id = 7;
    spec.producer_epoch = 0;
    spec.base_sequence = -1;
    expect_error(build_batch(spec), BatchError::bad_producer_fields, 87);
  }
  {
    auto batch = good;
    batch[22] |= std::byte{0x07};  // codec 7
    fix_crc(batch);
    expect_error(batch, BatchError::bad_compression, 87);
  }
  {
    auto batch = good;
    batch.insert(batch.end(), good.begin(), good.end());
    expect_error(batch, BatchError::trailing_bytes, 87);
  }
  {
    auto result = validate_client_batch(good, good.size() - 1);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error(), BatchError::too_large);
    EXPECT_EQ(kafka_error_code(result.error()), 10);
  }
  {
    auto batch = good;
    batch[61] = std::byte{0x7e};  // first record claims 63 bytes
    fix_crc(batch);
    expect_error(batch, BatchError::bad_record, 87);
  }
}

TEST(RecordBatch, varints_use_zigzag_encoding) {
  auto encode = [](std::int64_t value) {
    std::vector<std::byte> out;
    append_varint(out, value);
    return hex(out);
  };
  EXPECT_EQ(encode(0), "00");
  EXPECT_EQ(encode(-1), "01");
  EXPECT_EQ(encode(1), "02");
  EXPECT_EQ(encode(150), "ac02");
  EXPECT_EQ(encode(INT64_MIN), "ffffffffffffffffff01");
  std::vector<std::byte> too_long(11, std::byte{0x80});
  std::size_t position = 0;
  EXPECT_FALSE(read_varint(too_long, position).has_value());
}

RC_GTEST_PROP(RecordBatch, varints_round_trip, (std::int64_t value)) {
  std::vector<std::byte> out;
  append_varint(out, value);
  std::size_t position = 0;
  RC_ASSERT(read_varint(out, position) == std::optional<std::int64_t>(value));
  RC_ASSERT(position == out.size());
}

TEST(RecordBatch, last_sequence_wraps_at_int32_max) {
  BatchHeader header;
  header.base_sequence = INT32_MAX - 1;
  header.last_offset_delta = 3;
  EXPECT_EQ(header.last_sequence(), 1);
  header.base_sequence = 10;
  EXPECT_EQ(header.last_sequence(), 13);
  header.base_sequence = kNoSequence;
  EXPECT_EQ(header.last_sequence(), kNoSequence);
}

RC_GTEST_PROP(RecordBatch, built_batches_round_trip_their_records,
              (const std::vector<std::pair<std::string, std::string>>& pairs)) {
  RC_PRE(!pairs.empty());
  BatchSpec spec;
  spec.base_timestamp_ms = 1000;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    spec.records.push_back({pairs[i].first, pairs[i].second, {{pairs[i].first, std::nullopt}},
                            static_cast<std::int64_t>(i)});
  }
  auto batch = build_batch(spec);
  RC_ASSERT(validate_client_batch(batch, batch.size()).has_value());
  auto records = decode_records(batch);
  RC_ASSERT(records.has_value());
  RC_ASSERT(records->size() == pairs.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    RC_ASSERT((*records)[i].key == std::optional<std::string_view>(pairs[i].first));
    RC_ASSERT((*records)[i].value == std::optional<std::string_view>(pairs[i].second));
    RC_ASSERT((*records)[i].offset == static_cast<std::int64_t>(i));
  }
}

// Fuzz-style: any mutation of a valid batch, and any random bytes, are rejected or accepted
// without reading out of bounds (ASan build), and what is accepted is self-consistent.
RC_GTEST_PROP(RecordBatch, mutated_and_random_bytes_never_break_the_parser,
              (const std::vector<std::pair<std::size_t, std::uint8_t>>& mutations,
               const std::vector<std::uint8_t>& noise)) {
  auto batch = build_batch(two_records());
  for (const auto& [at, value] : mutations) batch[at % batch.size()] = static_cast<std::byte>(value);
  if (auto header = validate_client_batch(batch, 1 << 20)) {
    RC_ASSERT(header->size_bytes() == batch.size());
    RC_ASSERT(header->records_count == header->last_offset_delta + 1);
    (void)decode_records(batch);
  }
  (void)validate_stored_batch(batch);
  std::vector<std::byte> random_bytes(noise.size());
  for (std::size_t i = 0; i < noise.size(); ++i) random_bytes[i] = static_cast<std::byte>(noise[i]);
  (void)validate_client_batch(random_bytes, 1 << 20);
  (void)validate_stored_batch(random_bytes);
  (void)decode_records(random_bytes);
}

}  // namespace
}  // namespace sluice::storage
