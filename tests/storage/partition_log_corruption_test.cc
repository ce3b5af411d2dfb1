// Bit flips in durable data (SimDisk::flip_bit / corrupt_bit): reads and recovery detect them,
// and a flipped batch is never returned to a reader.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>

#include "tests/storage/partition_log_test_util.h"

namespace sluice::storage {
namespace {

using testing::append_copy;
using testing::linear_scan;
using testing::LogNode;
using testing::make_batch;
using testing::open_log;

constexpr std::int64_t kTimestampMs = 1'700'000'000'000;
// The partition leader epoch lies outside the v2 CRC (PROTOCOL.md §2), so a flip there cannot
// be detected by any Kafka broker; comparisons ignore those four bytes.
constexpr std::size_t kLeaderEpochAt = 12;

std::vector<std::byte> without_epoch(std::vector<std::byte> batch) {
  for (std::size_t i = kLeaderEpochAt; i < kLeaderEpochAt + 4 && i < batch.size(); ++i) batch[i] = std::byte{0};
  return batch;
}

LogConfig small_config() {
  LogConfig config;
  config.segment_bytes = 4096;
  config.index_interval_bytes = 256;
  return config;
}

std::string log_path(std::int64_t base_offset) {
  return join_path(testing::kLogDirectory, segment_file_name(base_offset, kLogSuffix));
}

TEST(PartitionLogCorruption, flip_in_an_older_segment_is_never_served_and_later_segments_stay_readable) {
  LogNode node(21);
  std::map<std::int64_t, std::vector<std::byte>> stored;
  std::int64_t flipped_base = 0;
  std::int64_t next_segment_base = 0;
  std::int64_t end = 0;
  {
    auto log = open_log(node, small_config());
    node.run([&] {
      for (int i = 0; i < 40; ++i) {
        auto batch = append_copy(*log, make_batch(1, 200, kTimestampMs));
        stored[parse_batch_header(batch)->base_offset] = batch;
      }
    });
    ASSERT_GE(log->segment_count(), 3u);
    end = log->log_end_offset();
    const auto scanned = linear_scan(node.disk(), *log);
    // The second batch of the first segment: flip a bit inside its records (CRC-covered).
    const auto& victim = scanned[1];
    ASSERT_EQ(victim.segment_base_offset, 0);
    flipped_base = victim.header.base_offset;
    next_segment_base = log->segments()[1]->base_offset();
    ASSERT_TRUE(node.disk().flip_bit(log_path(0), victim.position + 100, 5));
    node.run([&] {
      EXPECT_EQ(log->read(flipped_base, 1, end).error(), LogError::corrupt);
      EXPECT_GE(log->corrupt_batches_found(), 1u);
      // A read from the start stops before the bad batch.
      auto prefix = log->read(0, 1 << 20, end);
      ASSERT_TRUE(prefix);
      EXPECT_EQ(prefix->bytes, stored.at(0));
      auto later = log->read(next_segment_base, 1 << 20, end);
      ASSERT_TRUE(later);
      EXPECT_EQ(later->next_offset, end);
    });
  }
  node.crash_and_restart();
  auto log = open_log(node, small_config());
  EXPECT_GE(log->corrupt_batches_found(), 1u);
  EXPECT_EQ(log->log_end_offset(), end);  // later segments are kept, not dropped
  node.run([&] {
    EXPECT_EQ(log->read(flipped_base, 1, end).error(), LogError::corrupt);
    EXPECT_EQ(log->read(next_segment_base - 1, 1, end).error(), LogError::corrupt);
    auto later = log->read(next_segment_base, 1 << 20, end);
    ASSERT_TRUE(later);
    std::vector<std::byte> expected;
    for (auto it = stored.find(next_segment_base); it != stored.end(); ++it) {
      expected.insert(expected.end(), it->second.begin(), it->second.end());
    }
    EXPECT_EQ(later->bytes, expected);
    // New appends still work.
    append_copy(*log, make_batch(1, 10, kTimestampMs));
    EXPECT_EQ(log->log_end_offset(), end + 1);
  });
}

// Every batch the log returns equals what was appended (leader epoch aside); a batch it cannot
// verify is an error, never bytes.
void check_every_read(LogNode& node, PartitionLog& log, const std::map<std::int64_t, std::vector<std::byte>>& stored,
                      std::string& failure) {
  node.run([&] {
    for (const auto& [base, bytes] : stored) {
      if (base < log.log_start_offset() || base >= log.high_watermark()) continue;
      auto read = log.read(base, 1, log.high_watermark());
      if (!read) {
        if (read.error() != LogError::corrupt && failure.empty()) failure = "unexpected error " + std::string(to_string(read.error()));
        continue;
      }
      if (read->first_offset != base && failure.empty()) failure = "wrong batch for offset " + std::to_string(base);
      if (without_epoch(read->bytes) != without_epoch(bytes) && failure.empty()) {
        failure = "returned a batch that differs from the one appended at " + std::to_string(base);
      }
    }
  });
}

RC_GTEST_PROP(PartitionLogCorruption, random_bit_flips_are_detected_and_never_returned, ()) {
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();
  const int flips = *rc::gen::inRange(1, 6);
  const bool clean_close = *rc::gen::arbitrary<bool>();
  LogNode node(seed);
  std::map<std::int64_t, std::vector<std::byte>> stored;
  std::string failure;
  auto log = open_log(node, small_config());
  RC_ASSERT(log != nullptr);
  node.run([&] {
    for (int i = 0; i < 30; ++i) {
      auto batch = append_copy(*log, make_batch(1 + i % 3, static_cast<std::size_t>(50 + (i * 131) % 400), kTimestampMs));
      stored[parse_batch_header(batch)->base_offset] = batch;
    }
    if (clean_close && !log->close()) failure = "close failed";
  });
  Random random(seed);
  for (int i = 0; i < flips; ++i) node.disk().corrupt_bit(random);
  if (!clean_close) check_every_read(node, *log, stored, failure);
  RC_ASSERT(failure.empty());
  node.crash_and_restart();
  log.reset();
  log = open_log(node, small_config());
  RC_ASSERT(log != nullptr);
  check_every_read(node, *log, stored, failure);
  if (!failure.empty()) RC_FAIL(failure);
}

}  // namespace
}  // namespace sluice::storage
