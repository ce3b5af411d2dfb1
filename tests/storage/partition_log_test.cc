// Unit tests of PartitionLog in a simulated node: appends, reads, rolls, indexes, recovery,
// retention, DeleteRecords and truncation.
#include "core/storage/partition_log.h"

#include <gtest/gtest.h>

#include "tests/storage/partition_log_test_util.h"

namespace sluice::storage {
namespace {

using testing::append_copy;
using testing::linear_scan;
using testing::LogNode;
using testing::make_batch;
using testing::open_log;

constexpr std::int64_t kTimestampMs = 1'700'000'000'000;

std::vector<std::byte> concat(const std::vector<std::vector<std::byte>>& batches, std::size_t from, std::size_t to) {
  std::vector<std::byte> bytes;
  for (std::size_t i = from; i < to; ++i) bytes.insert(bytes.end(), batches[i].begin(), batches[i].end());
  return bytes;
}

LogConfig small_config() {
  LogConfig config;
  config.segment_bytes = 4096;
  config.index_interval_bytes = 256;
  return config;
}

TEST(PartitionLog, append_assigns_contiguous_offsets_and_reads_back_stamped_bytes) {
  LogNode node(1);
  auto log = open_log(node, LogConfig{});
  std::vector<std::vector<std::byte>> stored;
  node.run([&] {
    for (int i = 0; i < 5; ++i) {
      auto batch = make_batch(3, 10, kTimestampMs + i);
      auto appended = log->append(batch, 4);
      ASSERT_TRUE(appended);
      EXPECT_EQ(appended->base_offset, 3 * i);
      EXPECT_EQ(appended->last_offset, 3 * i + 2);
      auto header = parse_batch_header(batch);
      ASSERT_TRUE(header);
      EXPECT_EQ(header->base_offset, 3 * i);
      EXPECT_EQ(header->partition_leader_epoch, 4);
      EXPECT_TRUE(validate_stored_batch(batch));
      stored.push_back(batch);
    }
    EXPECT_EQ(log->log_end_offset(), 15);
    // Default flush policy: every append is durable before it returns.
    EXPECT_EQ(log->high_watermark(), 15);
    auto read = log->read(0, 1 << 20, log->high_watermark());
    ASSERT_TRUE(read);
    EXPECT_EQ(read->bytes, concat(stored, 0, 5));
    EXPECT_EQ(read->first_offset, 0);
    EXPECT_EQ(read->next_offset, 15);
    EXPECT_EQ(read->batch_count, 5u);
    ASSERT_EQ(read->ranges.size(), 1u);
    EXPECT_EQ(read->ranges[0].position, 0u);
    EXPECT_EQ(read->ranges[0].size_bytes, read->bytes.size());
  });
}

TEST(PartitionLog, read_from_the_middle_of_a_batch_returns_the_containing_batch) {
  LogNode node(2);
  auto log = open_log(node, LogConfig{});
  node.run([&] {
    std::vector<std::vector<std::byte>> stored;
    for (int i = 0; i < 3; ++i) stored.push_back(append_copy(*log, make_batch(4, 8, kTimestampMs)));
    auto read = log->read(5, 1 << 20, log->high_watermark());
    ASSERT_TRUE(read);
    EXPECT_EQ(read->first_offset, 4);
    EXPECT_EQ(read->bytes, concat(stored, 1, 3));
  });
}

TEST(PartitionLog, read_respects_max_bytes_but_always_returns_the_first_batch_whole) {
  LogNode node(3);
  auto log = open_log(node, LogConfig{});
  node.run([&] {
    std::vector<std::vector<std::byte>> stored;
    for (int i = 0; i < 4; ++i) stored.push_back(append_copy(*log, make_batch(1, 100, kTimestampMs)));
    const std::size_t batch_bytes = stored[0].size();
    auto two = log->read(0, 2 * batch_bytes + 10, log->high_watermark());
    ASSERT_TRUE(two);
    EXPECT_EQ(two->bytes, concat(stored, 0, 2));
    auto oversized = log->read(1, 10, log->high_watermark());
    ASSERT_TRUE(oversized);
    EXPECT_EQ(oversized->bytes, concat(stored, 1, 2));
    EXPECT_EQ(oversized->next_offset, 2);
  });
}

TEST(PartitionLog, read_never_passes_the_upper_bound_and_rejects_offsets_out_of_range) {
  LogNode node(4);
  LogConfig config;
  config.flush_messages = 1000;  // appends are acknowledged before they are durable
  auto log = open_log(node, config);
  node.run([&] {
    std::vector<std::vector<std::byte>> stored;
    for (int i = 0; i < 3; ++i) stored.push_back(append_copy(*log, make_batch(2, 10, kTimestampMs)));
    EXPECT_EQ(log->durable_end_offset(), 0);
    auto none = log->read(0, 1 << 20, 0);
    ASSERT_TRUE(none);
    EXPECT_EQ(none->batch_count, 0u);
    ASSERT_TRUE(log->flush_through(3));
    EXPECT_EQ(log->durable_end_offset(), 6);
    auto bounded = log->read(0, 1 << 20, 4);
    ASSERT_TRUE(bounded);
    EXPECT_EQ(bounded->bytes, concat(stored, 0, 2));
    auto at_end = log->read(6, 1 << 20, 6);
    ASSERT_TRUE(at_end);
    EXPECT_EQ(at_end->batch_count, 0u);
    EXPECT_EQ(log->read(7, 1 << 20, 6).error(), LogError::offset_out_of_range);
    EXPECT_EQ(log->read(-1, 1 << 20, 6).error(), LogError::offset_out_of_range);
  });
}

TEST(PartitionLog, the_high_watermark_waits_for_durability_only_when_every_append_is_flushed) {
  LogNode node(6);
  LogConfig lazy;
  lazy.flush_messages = 1000;
  auto durable_log = open_log(node, LogConfig{}, "/durable");
  auto lazy_log = open_log(node, lazy, "/lazy");
  node.run([&] {
    for (PartitionLog* log : {durable_log.get(), lazy_log.get()}) {
      auto batch = make_batch(3, 10, kTimestampMs);
      ASSERT_TRUE(log->append_unflushed(batch, 1));
      EXPECT_EQ(log->log_end_offset(), 3);
      EXPECT_EQ(log->durable_end_offset(), 0);
    }
    // flush.messages=1: readable once durable, so nothing a consumer saw is lost in a crash.
    EXPECT_EQ(durable_log->high_watermark(), 0);
    ASSERT_TRUE(durable_log->await_flush_policy(2));
    EXPECT_EQ(durable_log->high_watermark(), 3);
    // flush.messages>1 (not durable per append): readable at once, as Kafka with one replica.
    EXPECT_EQ(lazy_log->high_watermark(), 3);
    ASSERT_TRUE(lazy_log->await_flush_policy(2));
    EXPECT_EQ(lazy_log->durable_end_offset(), 0);
  });
}

TEST(PartitionLog, concurrent_appends_share_datasyncs) {
  LogNode node(5);
  auto log = open_log(node, LogConfig{});
  const std::uint64_t syncs_before = log->stats().datasyncs;
  int acknowledged = 0;
  constexpr int kAppenders = 20;
  for (int i = 0; i < kAppenders; ++i) {
    node.spawn("appender", [&] {
      auto batch = make_batch(1, 50, kTimestampMs);
      auto appended = log->append(batch, 1);
      ASSERT_TRUE(appended);
      EXPECT_LT(appended->last_offset, log->durable_end_offset());
      ++acknowledged;
    });
  }
  node.world().run_until([&] { return acknowledged == kAppenders; });
  EXPECT_EQ(acknowledged, kAppenders);
  EXPECT_LT(log->stats().datasyncs - syncs_before, static_cast<std::uint64_t>(kAppenders) / 2);
}

TEST(PartitionLog, segment_rolls_by_size_and_each_new_segment_name_is_durable) {
  LogNode node(6);
  auto log = open_log(node, small_config());
  node.run([&] {
    for (int i = 0; i < 40; ++i) append_copy(*log, make_batch(2, 200, kTimestampMs));
  });
  EXPECT_GE(log->segment_count(), 5u);
  std::int64_t expected_base = 0;
  for (const auto& segment : log->segments()) {
    EXPECT_EQ(segment->base_offset(), expected_base);
    EXPECT_LE(segment->size_bytes(), small_config().segment_bytes);
    expected_base = segment->end_offset();
    const std::string name = join_path(testing::kLogDirectory, segment_file_name(segment->base_offset(), kLogSuffix));
    EXPECT_TRUE(node.disk().durable_contents(name).has_value()) << name;
  }
  EXPECT_EQ(expected_base, log->log_end_offset());
}

// A seed whose simulation never rolls a segment early (BUGGIFY), for tests that count rolls.
std::uint64_t seed_without_early_rolls(std::uint64_t from) {
  for (std::uint64_t seed = from;; ++seed) {
    if (!sim::SimWorld(seed).buggify().site_enabled("storage/roll_segment_early")) return seed;
  }
}

// 64 KiB segments of a topic not flushed per append.
LogConfig unflushed_config() {
  LogConfig config;
  config.segment_bytes = 64 * 1024;
  config.index_interval_bytes = 1024;
  config.flush_messages = 1'000'000;
  return config;
}

// A topic not flushed per append: a due roll waits while much is unsynced (appends go on past
// segment_bytes, nothing waits on a sync), flush_due() asks the flush fiber to sync, and the
// first append after that sync rolls, syncing only what came in meanwhile.
TEST(PartitionLog, a_roll_with_much_unsynced_waits_for_the_flush_fiber_instead_of_stalling_appends) {
  LogNode node(seed_without_early_rolls(40));
  const LogConfig lazy = unflushed_config();
  auto log = open_log(node, lazy);
  const std::uint64_t syncs_at_open = log->stats().datasyncs;
  node.run([&] {
    // 80 KiB unsynced: past the roll size, far more than an eighth of a segment unsynced.
    for (int i = 0; i < 80; ++i) append_copy(*log, make_batch(1, 1000, kTimestampMs));
    EXPECT_EQ(log->segment_count(), 1u);
    EXPECT_GT(log->segments().back()->size_bytes(), lazy.segment_bytes);
    EXPECT_EQ(log->stats().datasyncs, syncs_at_open);  // no append waited on a sync
    EXPECT_EQ(log->stats().rolls_deferred, 1u);
    EXPECT_TRUE(log->flush_due());
    ASSERT_TRUE(log->flush_if_due());  // what the broker's flush fiber does
    EXPECT_FALSE(log->flush_due());
    EXPECT_EQ(log->stats().datasyncs, syncs_at_open + 1);
    // The next append rolls: the old segment is already durable.
    append_copy(*log, make_batch(1, 1000, kTimestampMs));
    EXPECT_EQ(log->segment_count(), 2u);
    EXPECT_EQ(log->stats().segments_rolled, 1u);
  });
  const auto first = log->segments().front();
  const std::string name = join_path(testing::kLogDirectory, segment_file_name(first->base_offset(), kLogSuffix));
  auto durable = node.disk().durable_contents(name);
  ASSERT_TRUE(durable.has_value());
  EXPECT_EQ(durable->size(), first->size_bytes());
}

// Without a flush fiber the overshoot is bounded: at 1.5 x segment_bytes the roll syncs under the
// lock as before. A topic flushed per append never has much unsynced: it rolls at segment_bytes.
TEST(PartitionLog, a_deferred_roll_happens_anyway_at_one_and_a_half_segments_and_never_for_synced_logs) {
  LogNode node(seed_without_early_rolls(50));
  const LogConfig lazy = unflushed_config();
  LogConfig durable = lazy;
  durable.flush_messages = 1;
  auto lazy_log = open_log(node, lazy, "/lazy");
  auto durable_log = open_log(node, durable, "/durable");
  node.run([&] {
    for (int i = 0; i < 200; ++i) {
      append_copy(*lazy_log, make_batch(1, 1000, kTimestampMs));
      append_copy(*durable_log, make_batch(1, 1000, kTimestampMs));
    }
  });
  ASSERT_GE(lazy_log->segment_count(), 2u);
  for (std::size_t i = 0; i + 1 < lazy_log->segment_count(); ++i) {
    const std::uint64_t size = lazy_log->segments()[i]->size_bytes();
    EXPECT_GT(size, lazy.segment_bytes);
    EXPECT_LE(size, lazy.segment_bytes + lazy.segment_bytes / 2);
  }
  EXPECT_GE(durable_log->segment_count(), 3u);
  for (const auto& segment : durable_log->segments()) EXPECT_LE(segment->size_bytes(), durable.segment_bytes);
  EXPECT_EQ(durable_log->stats().rolls_deferred, 0u);
}

// A topic not flushed per append asks the flush fiber for a sync once lazy_sync_bytes of its
// active segment are unsynced, well before its flush.messages / flush.ms would (so writeback comes
// in small steps, not in one burst per flush.ms); no append waits for it. Set 0, only the policy
// asks; a topic flushed per append never needs it.
TEST(PartitionLog, a_lazy_log_asks_for_a_sync_every_lazy_sync_bytes_without_an_append_waiting) {
  LogNode node(seed_without_early_rolls(60));
  LogConfig stepped = unflushed_config();
  stepped.segment_bytes = 1 << 20;
  stepped.lazy_sync_bytes = 16 * 1024;
  LogConfig policy_only = stepped;
  policy_only.lazy_sync_bytes = 0;
  auto stepped_log = open_log(node, stepped, "/stepped");
  auto policy_log = open_log(node, policy_only, "/policy");
  const std::uint64_t stepped_syncs = stepped_log->stats().datasyncs;
  const std::uint64_t policy_syncs = policy_log->stats().datasyncs;
  node.run([&] {
    for (int round = 1; round <= 3; ++round) {
      // 15 batches of about 1 KiB: under the step.
      for (int i = 0; i < 15; ++i) {
        append_copy(*stepped_log, make_batch(1, 1000, kTimestampMs));
        append_copy(*policy_log, make_batch(1, 1000, kTimestampMs));
      }
      EXPECT_FALSE(stepped_log->flush_due());
      append_copy(*stepped_log, make_batch(1, 1000, kTimestampMs));
      append_copy(*policy_log, make_batch(1, 1000, kTimestampMs));
      append_copy(*stepped_log, make_batch(1, 1000, kTimestampMs));
      append_copy(*policy_log, make_batch(1, 1000, kTimestampMs));
      EXPECT_TRUE(stepped_log->flush_due());
      EXPECT_FALSE(policy_log->flush_due());
      EXPECT_EQ(stepped_log->stats().datasyncs, stepped_syncs + round - 1);  // no append waited
      ASSERT_TRUE(stepped_log->flush_if_due());  // what the broker's flush fiber does
      ASSERT_TRUE(policy_log->flush_if_due());
      EXPECT_FALSE(stepped_log->flush_due());
      EXPECT_EQ(stepped_log->stats().datasyncs, stepped_syncs + round);
      EXPECT_EQ(stepped_log->durable_end_offset(), stepped_log->log_end_offset());
    }
  });
  EXPECT_EQ(policy_log->stats().datasyncs, policy_syncs);
  EXPECT_LT(policy_log->durable_end_offset(), policy_log->log_end_offset());

  LogConfig durable = stepped;
  durable.flush_messages = 1;
  auto durable_log = open_log(node, durable, "/durable");
  node.run([&] {
    for (int i = 0; i < 40; ++i) append_copy(*durable_log, make_batch(1, 1000, kTimestampMs));
    EXPECT_FALSE(durable_log->flush_due());
  });
}

TEST(PartitionLog, segment_rolls_by_age_on_the_monotonic_clock_not_on_wall_clock_jumps) {
  LogNode node(7);
  LogConfig config;
  config.segment_ms = 1000;
  auto log = open_log(node, config);
  node.run([&] {
    append_copy(*log, make_batch(1, 10, kTimestampMs));
    const std::size_t segments = log->segment_count();
    node.clock().jump_ms(30LL * 24 * 3600 * 1000);  // a month forward
    append_copy(*log, make_batch(1, 10, kTimestampMs));
    node.clock().jump_ms(-60LL * 24 * 3600 * 1000);  // two months back
    append_copy(*log, make_batch(1, 10, kTimestampMs));
    // Wall jumps never roll (unless BUGGIFY asked for an early roll).
    if (!node.world().buggify().site_enabled("storage/roll_segment_early")) {
      EXPECT_EQ(log->segment_count(), segments);
    }
    this_fiber::sleep_for(milliseconds(1500));
    const std::size_t before_age_roll = log->segment_count();
    append_copy(*log, make_batch(1, 10, kTimestampMs));
    EXPECT_EQ(log->segment_count(), before_age_roll + 1);
    EXPECT_EQ(log->segments().back()->base_offset(), 3);
  });
}

TEST(PartitionLog, index_lookups_agree_with_a_linear_scan) {
  LogNode node(8);
  auto log = open_log(node, small_config());
  node.run([&] {
    for (int i = 0; i < 60; ++i) append_copy(*log, make_batch(1 + i % 4, 20 + (i * 37) % 300, kTimestampMs + i));
    const auto scanned = linear_scan(node.disk(), *log);
    ASSERT_FALSE(scanned.empty());
    std::size_t index_entries = 0;
    for (const auto& segment : log->segments()) index_entries += segment->offset_index().entries().size();
    EXPECT_GT(index_entries, 10u);
    for (const auto& batch : scanned) {
      for (std::int64_t offset = batch.header.base_offset; offset <= batch.header.last_offset(); ++offset) {
        auto read = log->read(offset, 1, log->high_watermark());
        ASSERT_TRUE(read) << offset;
        EXPECT_EQ(read->first_offset, batch.header.base_offset) << offset;
        EXPECT_EQ(read->bytes, batch.bytes) << offset;
        ASSERT_EQ(read->ranges.size(), 1u);
        EXPECT_EQ(read->ranges[0].position, batch.position);
        EXPECT_EQ(read->ranges[0].segment->base_offset(), batch.segment_base_offset);
      }
    }
  });
}

TEST(PartitionLog, lookup_by_timestamp_agrees_with_a_linear_scan) {
  LogNode node(9);
  auto log = open_log(node, small_config());
  node.run([&] {
    // Timestamps go up and down, as client CreateTime may.
    for (int i = 0; i < 50; ++i) append_copy(*log, make_batch(2, 60, kTimestampMs + (i * 7919) % 400));
    const auto scanned = linear_scan(node.disk(), *log);
    for (std::int64_t target = kTimestampMs - 5; target <= kTimestampMs + 410; target += 3) {
      // Reference: the first record, in offset order within the first batch that reaches the
      // target, whose own timestamp does.
      std::optional<TimestampedOffset> expected;
      for (const auto& batch : scanned) {
        if (batch.header.max_timestamp < target) continue;
        const auto records = decode_records(batch.bytes).value();
        for (const auto& record : records) {
          if (record.timestamp_ms >= target) {
            expected = TimestampedOffset{record.offset, record.timestamp_ms};
            break;
          }
        }
        break;
      }
      auto found = log->lookup_offset_by_timestamp(target);
      ASSERT_TRUE(found);
      EXPECT_EQ(*found, expected) << target;
    }
  });
}

TEST(PartitionLog, clean_shutdown_then_reopen_skips_the_scan) {
  LogNode node(10);
  std::vector<std::vector<std::byte>> stored;
  {
    auto log = open_log(node, small_config());
    node.run([&] {
      for (int i = 0; i < 30; ++i) stored.push_back(append_copy(*log, make_batch(2, 100, kTimestampMs + i)));
      ASSERT_TRUE(log->close());
      EXPECT_EQ(log->append(stored[0], 1).error(), LogError::closed);
    });
  }
  auto reopened = open_log(node, small_config());
  EXPECT_TRUE(reopened->stats().recovered_from_clean_shutdown);
  EXPECT_EQ(reopened->stats().batches_scanned_on_recovery, 0u);
  EXPECT_EQ(reopened->stats().segments_loaded_from_index_files, reopened->segment_count());
  EXPECT_EQ(reopened->log_end_offset(), 60);
  node.run([&] {
    auto read = reopened->read(0, 1 << 20, reopened->high_watermark());
    ASSERT_TRUE(read);
    EXPECT_EQ(read->bytes, concat(stored, 0, stored.size()));
    // Batch 9 holds offsets 18 (timestamp +9) and 19 (+10).
    EXPECT_EQ(*reopened->lookup_offset_by_timestamp(kTimestampMs + 10), (TimestampedOffset{19, kTimestampMs + 10}));
  });
  // The marker was consumed: a crash now means a full scan.
  reopened.reset();
  node.crash_and_restart();
  auto after_crash = open_log(node, small_config());
  EXPECT_FALSE(after_crash->stats().recovered_from_clean_shutdown);
  EXPECT_EQ(after_crash->stats().batches_scanned_on_recovery, 30u);
  EXPECT_EQ(after_crash->log_end_offset(), 60);
}

std::uint64_t file_size(const std::optional<std::vector<std::byte>>& contents) {
  return contents ? contents->size() : 0;
}

TEST(PartitionLog, appends_go_into_preallocated_space_cut_when_the_segment_rolls_or_closes) {
  LogNode node(12);
  LogConfig config;
  config.segment_bytes = 200 * 1024;
  auto log = open_log(node, config);
  auto active_path = [&] {
    return join_path(testing::kLogDirectory, segment_file_name(log->segments().back()->base_offset(), kLogSuffix));
  };
  node.run([&] {
    append_copy(*log, make_batch(2, 100, kTimestampMs));
    const std::uint64_t logical = log->segments().back()->size_bytes();
    // The first append preallocated kPreallocateMinBytes past itself, durably (it was synced).
    EXPECT_EQ(file_size(node.disk().live_contents(active_path())), logical + kPreallocateMinBytes);
    EXPECT_EQ(file_size(node.disk().durable_contents(active_path())), logical + kPreallocateMinBytes);
    // Further appends fit inside until it runs out; then it grows by the segment's size so far,
    // never past segment_bytes.
    while (log->segments().size() == 1) append_copy(*log, make_batch(10, 1000, kTimestampMs));
    ASSERT_EQ(log->segments().size(), 2u);
    const auto old_segment = log->segments().front();
    const std::string old_path =
        join_path(testing::kLogDirectory, segment_file_name(old_segment->base_offset(), kLogSuffix));
    EXPECT_EQ(file_size(node.disk().durable_contents(old_path)), old_segment->size_bytes());
    EXPECT_LE(old_segment->size_bytes(), config.segment_bytes);
    EXPECT_GT(file_size(node.disk().live_contents(active_path())), log->segments().back()->size_bytes());
    ASSERT_TRUE(log->close());
    EXPECT_EQ(file_size(node.disk().durable_contents(active_path())), log->segments().back()->size_bytes());
  });
  // The index files still describe the files exactly: no scan.
  auto reopened = open_log(node, config);
  EXPECT_TRUE(reopened->stats().recovered_from_clean_shutdown);
  EXPECT_EQ(reopened->stats().batches_scanned_on_recovery, 0u);
  EXPECT_EQ(reopened->log_end_offset(), log->log_end_offset());
}

TEST(PartitionLog, a_crash_leaves_preallocated_zeros_that_recovery_trims_without_calling_them_torn) {
  LogNode node(13);
  std::vector<std::vector<std::byte>> stored;
  std::string active;
  {
    auto log = open_log(node, LogConfig{});
    node.run([&] {
      for (int i = 0; i < 20; ++i) stored.push_back(append_copy(*log, make_batch(1, 300, kTimestampMs + i)));
    });
    active = join_path(testing::kLogDirectory, segment_file_name(log->segments().back()->base_offset(), kLogSuffix));
    ASSERT_GT(file_size(node.disk().durable_contents(active)), log->segments().back()->size_bytes());
  }
  node.crash_and_restart();
  auto log = open_log(node, LogConfig{});
  EXPECT_EQ(log->log_end_offset(), 20);  // every append was durable
  EXPECT_EQ(log->stats().torn_tail_bytes_truncated, 0u);
  EXPECT_EQ(log->stats().corrupt_batches_found, 0u);
  EXPECT_GT(log->stats().preallocated_bytes_trimmed, 0u);
  EXPECT_EQ(file_size(node.disk().durable_contents(active)), log->segments().back()->size_bytes());
  node.run([&] {
    auto read = log->read(0, 1 << 20, log->high_watermark());
    ASSERT_TRUE(read);
    EXPECT_EQ(read->bytes, concat(stored, 0, stored.size()));
    // Appends continue at the recovered end, preallocating again.
    append_copy(*log, make_batch(1, 10, kTimestampMs));
    EXPECT_EQ(log->log_end_offset(), 21);
    EXPECT_GT(file_size(node.disk().live_contents(active)), log->segments().back()->size_bytes());
  });
}

// Bytes of the log not yet advised out of the page cache.
std::uint64_t cached_bytes(const PartitionLog& log) {
  std::uint64_t cached = 0;
  for (const auto& segment : log.segments()) cached += segment->size_bytes() - segment->cache_dropped_until();
  return cached;
}

TEST(PartitionLog, synced_bytes_behind_the_page_cache_window_are_dropped_and_never_unsynced_ones) {
  LogNode node(14);
  LogConfig config;
  config.segment_bytes = 100 * 1024;
  config.page_cache_window_bytes = 64 * 1024;
  const std::uint64_t step = config.page_cache_window_bytes / 8;
  auto log = open_log(node, config);
  // Appenders race each other's datasyncs (the simulated sync takes time), so writes land while a
  // sync runs: a policy that dropped up to the live end instead of the synced one is caught.
  constexpr int kAppenders = 4;
  constexpr int kBatchesEach = 60;
  constexpr std::size_t kValueBytes = 2000;
  int finished = 0;
  std::uint64_t most_cached = 0;
  for (int i = 0; i < kAppenders; ++i) {
    node.spawn("appender", [&] {
      for (int b = 0; b < kBatchesEach; ++b) {
        append_copy(*log, make_batch(1, kValueBytes, kTimestampMs));
        most_cached = std::max(most_cached, cached_bytes(*log));
      }
      ++finished;
    });
  }
  ASSERT_TRUE(node.world().run_until([&] { return finished == kAppenders; }));
  ASSERT_GT(log->segment_count(), 3u);
  EXPECT_EQ(node.disk().cache_dropped_unsynced_bytes(), 0u);
  EXPECT_GT(log->stats().cache_bytes_dropped, 0u);
  EXPECT_EQ(log->stats().cache_bytes_dropped, node.disk().cache_dropped_bytes());
  // What stays cached is the window, plus at most a step and what one round of appends adds.
  const std::uint64_t round_bytes = kAppenders * (kValueBytes + 200);
  EXPECT_GE(cached_bytes(*log), config.page_cache_window_bytes - round_bytes);
  EXPECT_LE(most_cached, config.page_cache_window_bytes + step + 2 * round_bytes);
  // Whole segments older than the window went, each exactly once.
  const auto segments = log->segments();
  EXPECT_EQ(segments.front()->cache_dropped_until(), segments.front()->size_bytes());
  std::uint64_t total = 0;
  for (const auto& segment : segments) total += segment->size_bytes();
  EXPECT_EQ(log->stats().cache_bytes_dropped, total - cached_bytes(*log));
}

TEST(PartitionLog, writes_that_race_a_sync_are_never_dropped_even_when_they_outgrow_the_window) {
  LogNode node(16);
  LogConfig config;
  config.flush_messages = 1'000'000;  // appends do not wait: they pile up while a sync runs
  config.page_cache_window_bytes = 4096;
  auto log = open_log(node, config);
  bool done = false;
  int finished = 0;
  constexpr int kAppenders = 3;
  for (int i = 0; i < kAppenders; ++i) {
    node.spawn("appender", [&] {
      for (int b = 0; b < 200; ++b) {
        append_copy(*log, make_batch(1, 1500, kTimestampMs));
        this_fiber::sleep_for(microseconds(20));
      }
      ++finished;
    });
  }
  node.spawn("flusher", [&] {
    while (finished < kAppenders) ASSERT_TRUE(log->flush_through(log->log_end_offset()));
    done = true;
  });
  ASSERT_TRUE(node.world().run_until([&] { return done; }));
  EXPECT_GT(log->stats().datasyncs, 10u);
  EXPECT_GT(log->stats().cache_bytes_dropped, 0u);
  EXPECT_EQ(node.disk().cache_dropped_unsynced_bytes(), 0u);
}

TEST(PartitionLog, a_log_that_syncs_rarely_drops_cache_only_after_its_flushes_and_window_zero_never) {
  LogNode node(15);
  LogConfig lazy;
  lazy.flush_messages = 1'000'000;
  lazy.page_cache_window_bytes = 16 * 1024;
  LogConfig keep_all;
  keep_all.page_cache_window_bytes = 0;
  auto lazy_log = open_log(node, lazy, "/lazy");
  auto keep_log = open_log(node, keep_all, "/keep");
  node.run([&] {
    for (int i = 0; i < 40; ++i) {
      append_copy(*lazy_log, make_batch(1, 1000, kTimestampMs));
      append_copy(*keep_log, make_batch(1, 1000, kTimestampMs));
    }
    // Only a sync lets anything go (the simulation may roll a segment early, which syncs).
    if (lazy_log->stats().datasyncs == 0) {
      EXPECT_EQ(lazy_log->stats().cache_bytes_dropped, 0u);
    }
    ASSERT_TRUE(lazy_log->flush_through(lazy_log->log_end_offset()));
    EXPECT_GE(lazy_log->stats().cache_bytes_dropped, lazy_log->size_bytes() - lazy.page_cache_window_bytes - 2048);
    // After a truncation below what was dropped, the policy goes on from the new end.
    ASSERT_TRUE(lazy_log->truncate_to(5));
    EXPECT_LE(lazy_log->segments().back()->cache_dropped_until(), lazy_log->segments().back()->size_bytes());
    for (int i = 0; i < 40; ++i) append_copy(*lazy_log, make_batch(1, 1000, kTimestampMs));
    ASSERT_TRUE(lazy_log->flush_through(lazy_log->log_end_offset()));
    EXPECT_LE(cached_bytes(*lazy_log), lazy.page_cache_window_bytes + lazy.page_cache_window_bytes / 8 + 1100);
  });
  EXPECT_EQ(keep_log->stats().cache_bytes_dropped, 0u);
  EXPECT_EQ(node.disk().cache_dropped_unsynced_bytes(), 0u);
  EXPECT_EQ(node.disk().cache_dropped_bytes(), lazy_log->stats().cache_bytes_dropped);
}

TEST(PartitionLog, reopen_after_an_unclean_stop_keeps_durable_batches_and_cuts_the_torn_tail) {
  LogNode node(11);
  LogConfig config = small_config();
  config.flush_messages = 1'000'000;
  std::vector<std::vector<std::byte>> stored;
  std::int64_t durable_end = 0;
  {
    auto log = open_log(node, config);
    node.run([&] {
      for (int i = 0; i < 12; ++i) stored.push_back(append_copy(*log, make_batch(1, 150, kTimestampMs)));
      ASSERT_TRUE(log->flush_through(log->log_end_offset() - 1));
      durable_end = log->durable_end_offset();
      for (int i = 0; i < 6; ++i) append_copy(*log, make_batch(1, 150, kTimestampMs));
    });
    // Garbage after the last batch: what a torn write of a large batch can leave.
    const std::string active = join_path(testing::kLogDirectory, segment_file_name(log->segments().back()->base_offset(), kLogSuffix));
    node.run([&] {
      auto file = node.env().disk().open(active, OpenMode::read_write).value();
      std::vector<std::byte> junk(700, std::byte{0x5a});
      ASSERT_TRUE(file->append(junk));
      ASSERT_TRUE(file->datasync());
    });
  }
  node.crash_and_restart();
  auto log = open_log(node, config);
  EXPECT_GE(log->log_end_offset(), durable_end);
  EXPECT_GT(log->stats().torn_tail_bytes_truncated, 0u);
  EXPECT_EQ(log->high_watermark(), log->log_end_offset());
  node.run([&] {
    auto read = log->read(0, 1 << 20, durable_end);
    ASSERT_TRUE(read);
    EXPECT_EQ(read->bytes, concat(stored, 0, static_cast<std::size_t>(durable_end)));
    // Appends continue at the recovered end.
    const std::int64_t end = log->log_end_offset();
    append_copy(*log, make_batch(1, 10, kTimestampMs));
    EXPECT_EQ(log->log_end_offset(), end + 1);
  });
}

TEST(PartitionLog, delete_records_moves_the_log_start_durably_and_deletes_whole_segments) {
  LogNode node(12);
  {
    auto log = open_log(node, small_config());
    node.run([&] {
      for (int i = 0; i < 40; ++i) append_copy(*log, make_batch(1, 200, kTimestampMs));
      const std::size_t segments = log->segment_count();
      const std::int64_t third_base = log->segments()[2]->base_offset();
      ASSERT_TRUE(log->delete_records_before(third_base + 1));
      EXPECT_EQ(log->log_start_offset(), third_base + 1);
      EXPECT_EQ(log->segment_count(), segments - 2);
      EXPECT_EQ(log->read(third_base, 100, log->high_watermark()).error(), LogError::offset_out_of_range);
      auto read = log->read(third_base + 1, 100, log->high_watermark());
      ASSERT_TRUE(read);
      EXPECT_EQ(read->first_offset, third_base + 1);
      EXPECT_EQ(log->delete_records_before(log->high_watermark() + 1).error(), LogError::offset_out_of_range);
    });
  }
  node.crash_and_restart();
  auto log = open_log(node, small_config());
  EXPECT_EQ(log->log_start_offset(), log->segments()[0]->base_offset() + 1);
  EXPECT_EQ(log->log_end_offset(), 40);
}

TEST(PartitionLog, truncate_to_removes_the_tail_durably_and_appends_continue) {
  LogNode node(13);
  std::vector<std::vector<std::byte>> stored;
  {
    auto log = open_log(node, small_config());
    node.run([&] {
      for (int i = 0; i < 40; ++i) stored.push_back(append_copy(*log, make_batch(2, 200, kTimestampMs)));
      // Offset 31 is inside batch [30, 31]: the whole batch goes.
      auto end = log->truncate_to(31);
      ASSERT_TRUE(end);
      EXPECT_EQ(*end, 30);
      EXPECT_EQ(log->log_end_offset(), 30);
      EXPECT_EQ(log->high_watermark(), 30);
      EXPECT_EQ(log->segments().back()->end_offset(), 30);
      stored.resize(15);
      stored.push_back(append_copy(*log, make_batch(1, 20, kTimestampMs)));
      EXPECT_EQ(log->log_end_offset(), 31);
    });
  }
  node.crash_and_restart();
  auto log = open_log(node, small_config());
  EXPECT_EQ(log->log_end_offset(), 31);
  node.run([&] {
    auto read = log->read(0, 1 << 20, log->high_watermark());
    ASSERT_TRUE(read);
    EXPECT_EQ(read->bytes, concat(stored, 0, stored.size()));
  });
}

TEST(PartitionLog, retention_by_time_follows_the_wall_clock_and_never_deletes_the_active_segment) {
  LogNode node(14);
  LogConfig config = small_config();
  config.retention_ms = 60'000;
  auto log = open_log(node, config);
  node.run([&] {
    const std::int64_t now_ms = node.env().clock().wall_ms();
    for (int i = 0; i < 50; ++i) append_copy(*log, make_batch(1, 200, now_ms));
    const std::size_t segments = log->segment_count();
    ASSERT_GE(segments, 3u);
    EXPECT_EQ(*log->enforce_retention(), 0u);
    node.clock().jump_ms(-3'600'000);  // backwards: nothing expires
    EXPECT_EQ(*log->enforce_retention(), 0u);
    node.clock().jump_ms(3'600'000 + 120'000);  // two minutes past the retention
    EXPECT_EQ(*log->enforce_retention(), segments - 1);
    EXPECT_EQ(log->segment_count(), 1u);
    EXPECT_EQ(log->log_start_offset(), log->segments()[0]->base_offset());
    node.clock().jump_ms(1'000'000'000);
    EXPECT_EQ(*log->enforce_retention(), 0u);  // only the active segment is left
    EXPECT_EQ(log->log_end_offset(), 50);
    append_copy(*log, make_batch(1, 10, now_ms));
    EXPECT_EQ(log->log_end_offset(), 51);
  });
}

TEST(PartitionLog, retention_by_bytes_deletes_the_oldest_closed_segments) {
  LogNode node(15);
  LogConfig config = small_config();
  config.retention_ms = -1;
  config.retention_bytes = 6000;
  auto log = open_log(node, config);
  node.run([&] {
    for (int i = 0; i < 40; ++i) append_copy(*log, make_batch(1, 200, kTimestampMs));
    ASSERT_TRUE(log->enforce_retention());
    EXPECT_GE(log->size_bytes(), 6000u);
    EXPECT_LT(log->size_bytes() - log->segments()[0]->size_bytes(), 6000u);
    EXPECT_EQ(log->log_start_offset(), log->segments()[0]->base_offset());
  });
}

TEST(PartitionLog, for_each_batch_header_replays_every_batch_in_order) {
  LogNode node(16);
  auto log = open_log(node, small_config());
  node.run([&] {
    for (int i = 0; i < 25; ++i) append_copy(*log, make_batch(1 + i % 3, 150, kTimestampMs));
    std::int64_t next = 0;
    std::size_t batches = 0;
    ASSERT_TRUE(log->for_each_batch_header([&](const BatchHeader& header) {
      EXPECT_EQ(header.base_offset, next);
      next = header.last_offset() + 1;
      ++batches;
    }));
    EXPECT_EQ(batches, 25u);
    EXPECT_EQ(next, log->log_end_offset());
  });
}

}  // namespace
}  // namespace sluice::storage

namespace sluice::storage {
namespace {

// What a runtime would sendfile: the file ranges of a read hold exactly the bytes it returned,
// across segment boundaries.
TEST(PartitionLog, read_file_ranges_hold_exactly_the_returned_bytes_across_segments) {
  testing::LogNode node(21);
  LogConfig config;
  config.segment_bytes = 4096;
  config.index_interval_bytes = 256;
  auto log = testing::open_log(node, config);
  node.run([&] {
    for (int i = 0; i < 30; ++i) testing::append_copy(*log, testing::make_batch(2, 200, 1'700'000'000'000 + i));
    ASSERT_GT(log->segment_count(), 3u);
    auto read = log->read(5, 1 << 20, log->high_watermark());
    ASSERT_TRUE(read.has_value());
    ASSERT_GT(read->ranges.size(), 1u);
    std::vector<std::byte> from_files;
    for (const FileRange& range : read->ranges) {
      std::vector<std::byte> chunk(range.size_bytes);
      auto got = range.segment->file().read_at(range.position, chunk);
      ASSERT_TRUE(got.has_value());
      ASSERT_EQ(*got, chunk.size());
      from_files.insert(from_files.end(), chunk.begin(), chunk.end());
    }
    EXPECT_EQ(from_files, read->bytes);
    EXPECT_EQ(read->size_bytes, read->bytes.size());

    // ranges_only: the same verified batches and ranges, no copy of the bytes.
    auto ranges_only = log->read(5, 1 << 20, log->high_watermark(), /*ranges_only=*/true);
    ASSERT_TRUE(ranges_only.has_value());
    EXPECT_TRUE(ranges_only->bytes.empty());
    EXPECT_EQ(ranges_only->size_bytes, read->size_bytes);
    EXPECT_EQ(ranges_only->next_offset, read->next_offset);
    ASSERT_EQ(ranges_only->ranges.size(), read->ranges.size());
    for (std::size_t i = 0; i < read->ranges.size(); ++i) {
      EXPECT_EQ(ranges_only->ranges[i].position, read->ranges[i].position);
      EXPECT_EQ(ranges_only->ranges[i].size_bytes, read->ranges[i].size_bytes);
    }
  });
}

}  // namespace
}  // namespace sluice::storage

namespace sluice::storage {
namespace {

using testing::LogNode;

// flush.ms under a steady stream of appends: syncs come about once per flush.ms, not once per
// append. (A write racing a sync used to leave the time bound expired, so every later append
// synced until one sync happened to finish with nothing written meanwhile.)
TEST(PartitionLog, flush_ms_bound_flushes_about_once_per_interval_under_concurrent_appends) {
  LogNode node(21);
  sim::SimDiskFaults faults;
  faults.sync_latency_min = milliseconds(3);
  faults.sync_latency_mean_extra = milliseconds(2);
  node.disk().set_faults(faults);
  LogConfig config;
  config.flush_messages = std::int64_t{1} << 62;
  config.flush_ms = 100;
  auto log = open_log(node, config);
  const std::uint64_t syncs_before = log->stats().datasyncs;
  const Instant stop_at = node.world().now() + seconds(2);
  int running = 0;
  for (int appender = 0; appender < 2; ++appender) {
    ++running;
    node.spawn("appender", [&] {
      while (node.world().now() < stop_at) {
        auto batch = make_batch(1, 50, kTimestampMs);
        ASSERT_TRUE(log->append(batch, 1));
        this_fiber::sleep_for(microseconds(500));
      }
      --running;
    });
  }
  node.world().run_until([&] { return running == 0; });
  const std::uint64_t syncs = log->stats().datasyncs - syncs_before;
  EXPECT_GE(syncs, 10u);  // the bound is applied: 2 s / 100 ms
  EXPECT_LE(syncs, 25u) << "syncs per append instead of per flush.ms interval";
  // Nothing written more than flush.ms (plus a sync) ago is left unflushed.
  EXPECT_GE(log->durable_end_offset(), log->log_end_offset() - 500);
}

}  // namespace
}  // namespace sluice::storage
