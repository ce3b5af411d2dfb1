// Idempotence across a broker crash: the producer state rebuilt from the recovered log answers
// a retried batch exactly as the live state did.
#include "core/storage/producer_recovery.h"

#include <gtest/gtest.h>

#include "tests/storage/partition_log_test_util.h"

namespace sluice::storage {
namespace {

using testing::LogNode;
using testing::open_log;

std::vector<std::byte> idempotent_batch(std::int64_t producer_id, std::int16_t epoch, std::int32_t sequence,
                                        int records) {
  BatchSpec spec;
  spec.base_timestamp_ms = 1'700'000'000'000;
  spec.producer_id = producer_id;
  spec.producer_epoch = epoch;
  spec.base_sequence = sequence;
  for (int i = 0; i < records; ++i) spec.records.push_back({std::nullopt, std::string("value"), {}, 0});
  return build_batch(spec);
}

// The produce path in miniature: check, append (durable), record.
ProducerCheck produce(PartitionLog& log, ProducerState& state, std::vector<std::byte> batch) {
  const BatchHeader header = *validate_client_batch(batch, 1 << 20);
  ProducerCheck check = state.check_append(header);
  if (check.verdict != ProducerVerdict::append) return check;
  auto appended = log.append(batch, 0);
  EXPECT_TRUE(appended.has_value());
  state.on_appended(*parse_batch_header(batch), 1'700'000'000'000);
  return check;
}

TEST(ProducerRecovery, rebuilt_state_equals_the_live_state_and_still_detects_duplicates_after_a_crash) {
  LogNode node(11);
  auto log = open_log(node, LogConfig{});
  ProducerState live;
  node.run([&] {
    for (std::int32_t sequence = 0; sequence < 8 * 3; sequence += 3) {
      EXPECT_EQ(produce(*log, live, idempotent_batch(1000, 2, sequence, 3)).verdict, ProducerVerdict::append);
      EXPECT_EQ(produce(*log, live, idempotent_batch(2000, 0, sequence, 3)).verdict, ProducerVerdict::append);
    }
    // A plain (non-idempotent) batch in between changes nothing.
    auto plain = testing::make_batch(2, 10, 1'700'000'000'000);
    ASSERT_TRUE(log->append(plain, 0).has_value());
  });
  const ProducerEntry live_entry = *live.find(1000);
  log.reset();
  node.crash_and_restart();

  log = open_log(node, LogConfig{});
  node.run([&] {
    auto rebuilt = rebuild_producer_state(*log, 1'700'000'000'000);
    ASSERT_TRUE(rebuilt.has_value());
    ASSERT_NE(rebuilt->find(1000), nullptr);
    EXPECT_EQ(rebuilt->find(1000)->batches, live_entry.batches);
    EXPECT_EQ(rebuilt->find(1000)->epoch, 2);
    EXPECT_EQ(rebuilt->producers().size(), 2u);

    // The client did not see the ack of sequence 21..23 and retries it: duplicate, original offset.
    auto retried = produce(*log, *rebuilt, idempotent_batch(1000, 2, 21, 3));
    EXPECT_EQ(retried.verdict, ProducerVerdict::duplicate);
    EXPECT_EQ(retried.original.offset_base, live_entry.batches.back().offset_base);
    // The next sequence continues; a gap is refused with OUT_OF_ORDER_SEQUENCE_NUMBER.
    EXPECT_EQ(produce(*log, *rebuilt, idempotent_batch(1000, 2, 24, 1)).verdict, ProducerVerdict::append);
    auto gap = produce(*log, *rebuilt, idempotent_batch(1000, 2, 30, 1));
    EXPECT_EQ(gap.verdict, ProducerVerdict::out_of_order_sequence);
    EXPECT_EQ(gap.kafka_error_code(), 45);
  });
}

}  // namespace
}  // namespace sluice::storage
