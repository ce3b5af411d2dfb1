// Segment file names and the sparse index files: lookups, truncation, and that a damaged or
// mismatched index file is refused rather than trusted.
#include "core/storage/segment.h"

#include <gtest/gtest.h>

#include "core/storage/log_index.h"

namespace sluice::storage {
namespace {

TEST(SegmentFileName, is_twenty_zero_padded_digits_and_parses_back) {
  EXPECT_EQ(segment_file_name(42, kLogSuffix), "00000000000000000042.log");
  EXPECT_EQ(parse_segment_file_name("00000000000000000042.log", kLogSuffix), 42);
  EXPECT_EQ(parse_segment_file_name("00000000000000000042.index", kLogSuffix), std::nullopt);
  EXPECT_EQ(parse_segment_file_name("0000000000000000004x.log", kLogSuffix), std::nullopt);
  EXPECT_EQ(parse_segment_file_name("42.log", kLogSuffix), std::nullopt);
  EXPECT_EQ(parse_segment_file_name("99999999999999999999.log", kLogSuffix), std::nullopt);  // > int64 max
}

TEST(SegmentOffsetIndex, floor_finds_the_last_entry_at_or_below) {
  OffsetIndex index;
  index.add({10, 1000});
  index.add({20, 2000});
  EXPECT_EQ(index.floor(5), (OffsetIndexEntry{0, 0}));
  EXPECT_EQ(index.floor(10), (OffsetIndexEntry{10, 1000}));
  EXPECT_EQ(index.floor(19), (OffsetIndexEntry{10, 1000}));
  EXPECT_EQ(index.floor(500), (OffsetIndexEntry{20, 2000}));
  index.truncate_at_position(2000);
  EXPECT_EQ(index.entries().size(), 1u);
}

TEST(SegmentTimeIndex, scan_start_skips_only_batches_known_to_be_older) {
  TimeIndex index;
  index.add({100, 10});
  index.add({100, 15});  // not above the last timestamp: adds nothing
  index.add({200, 20});
  EXPECT_EQ(index.entries().size(), 2u);
  EXPECT_EQ(index.scan_start(50), 0u);
  EXPECT_EQ(index.scan_start(100), 0u);
  EXPECT_EQ(index.scan_start(101), 10u);
  EXPECT_EQ(index.scan_start(1000), 20u);
  index.truncate_at_offset(20);
  EXPECT_EQ(index.entries().size(), 1u);
}

TEST(SegmentIndexFile, round_trips_and_refuses_any_damage) {
  OffsetIndex offsets;
  offsets.add({3, 300});
  offsets.add({9, 900});
  TimeIndex times;
  times.add({1'000, 3});
  times.add({2'000, 9});
  const IndexFileSummary summary{100, 4096, 120};
  const auto offset_image = offsets.encode(summary);
  const auto time_image = times.encode(summary);
  auto decoded_offsets = OffsetIndex::decode(offset_image);
  ASSERT_TRUE(decoded_offsets);
  EXPECT_EQ(decoded_offsets->first.entries(), offsets.entries());
  EXPECT_EQ(decoded_offsets->second.log_size_bytes, 4096u);
  EXPECT_EQ(decoded_offsets->second.summary, 120);
  auto decoded_times = TimeIndex::decode(time_image);
  ASSERT_TRUE(decoded_times);
  EXPECT_EQ(decoded_times->first.entries(), times.entries());
  // Wrong kind of file, truncated, or any single bit flipped: refused.
  EXPECT_FALSE(TimeIndex::decode(offset_image));
  EXPECT_FALSE(OffsetIndex::decode(std::span(offset_image).first(offset_image.size() - 1)));
  for (std::size_t byte = 0; byte < offset_image.size(); ++byte) {
    auto damaged = offset_image;
    damaged[byte] ^= std::byte{0x10};
    EXPECT_FALSE(OffsetIndex::decode(damaged)) << byte;
  }
}

}  // namespace
}  // namespace sluice::storage
