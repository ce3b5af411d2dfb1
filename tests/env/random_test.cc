#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>

#include "core/env/buggify.h"
#include "core/env/random.h"

namespace sluice {
namespace {

TEST(Random, same_seed_same_stream_and_different_seed_different_stream) {
  Random a(7);
  Random b(7);
  Random c(8);
  int differ = 0;
  for (int i = 0; i < 100; ++i) {
    const auto value = a.next_u64();
    EXPECT_EQ(value, b.next_u64());
    differ += value != c.next_u64() ? 1 : 0;
  }
  EXPECT_GT(differ, 95);
}

TEST(Random, known_first_outputs_never_change) {
  // Seed replay across machines and releases depends on this exact sequence.
  Random random(42);
  const std::uint64_t first = random.next_u64();
  const std::uint64_t second = random.next_u64();
  Random again(42);
  EXPECT_EQ(again.next_u64(), first);
  EXPECT_EQ(again.next_u64(), second);
  EXPECT_EQ(Random(42).fork("net").next_u64(), Random(42).fork("net").next_u64());
  EXPECT_NE(Random(42).fork("net").next_u64(), Random(42).fork("disk").next_u64());
}

TEST(Random, fork_does_not_advance_the_parent) {
  Random parent(3);
  Random copy(3);
  (void)parent.fork("child").next_u64();
  EXPECT_EQ(parent.next_u64(), copy.next_u64());
}

TEST(Random, uniform_and_range_stay_in_bounds_and_cover_them) {
  Random random(11);
  std::set<std::int64_t> seen;
  for (int i = 0; i < 10000; ++i) {
    const auto value = random.range(-3, 3);
    ASSERT_GE(value, -3);
    ASSERT_LE(value, 3);
    seen.insert(value);
    ASSERT_LT(random.uniform(10), 10u);
    const double unit = random.uniform_double();
    ASSERT_GE(unit, 0.0);
    ASSERT_LT(unit, 1.0);
  }
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_EQ(random.range(5, 5), 5);
}

TEST(Random, bernoulli_and_exponential_have_the_right_moments) {
  Random random(12);
  constexpr int kDraws = 200000;
  int heads = 0;
  double sum = 0;
  for (int i = 0; i < kDraws; ++i) {
    heads += random.bernoulli(0.3) ? 1 : 0;
    sum += random.exponential(2.0);
  }
  EXPECT_NEAR(heads / static_cast<double>(kDraws), 0.3, 0.01);
  EXPECT_NEAR(sum / kDraws, 2.0, 0.05);
  EXPECT_FALSE(random.bernoulli(0.0));
  EXPECT_TRUE(random.bernoulli(1.0));
}

TEST(Buggify, is_always_off_in_the_runtime) {
  Buggify off;
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(off.fire("site/" + std::to_string(i)));
  off.plant_bug("demo_ack_before_sync");
  EXPECT_FALSE(off.bug("demo_ack_before_sync"));
}

TEST(Buggify, enables_a_quarter_of_sites_per_run_and_fires_a_quarter_of_the_time) {
  Buggify buggify(99);
  int enabled = 0;
  int fired = 0;
  int asked = 0;
  for (int site = 0; site < 4000; ++site) {
    const std::string name = "site/" + std::to_string(site);
    if (!buggify.site_enabled(name)) {
      EXPECT_FALSE(buggify.fire(name));
      continue;
    }
    enabled++;
    for (int i = 0; i < 20; ++i, ++asked) fired += buggify.fire(name) ? 1 : 0;
  }
  EXPECT_NEAR(enabled / 4000.0, 0.25, 0.03);
  EXPECT_NEAR(fired / static_cast<double>(asked), 0.25, 0.03);
}

TEST(Buggify, site_choice_depends_on_the_seed_not_on_call_order) {
  Buggify first(5);
  Buggify second(5);
  (void)second.fire("warm-up");
  for (int site = 0; site < 200; ++site) {
    const std::string name = "site/" + std::to_string(site);
    EXPECT_EQ(first.site_enabled(name), second.site_enabled(name));
  }
  int differ = 0;
  Buggify other(6);
  for (int site = 0; site < 200; ++site) {
    const std::string name = "site/" + std::to_string(site);
    differ += first.site_enabled(name) != other.site_enabled(name) ? 1 : 0;
  }
  EXPECT_GT(differ, 20);
}

TEST(Buggify, planted_bugs_are_on_only_in_simulation_and_only_when_planted) {
  Buggify buggify(1);
  EXPECT_FALSE(buggify.bug("demo_ack_before_sync"));
  buggify.plant_bug("demo_ack_before_sync");
  EXPECT_TRUE(buggify.bug("demo_ack_before_sync"));
  EXPECT_FALSE(buggify.bug("demo_skip_crc_on_recovery"));
}

}  // namespace
}  // namespace sluice
