#include "checkers/append_checker.h"

#include <gtest/gtest.h>

namespace sluice::checkers {
namespace {

AppendOperation acked(std::uint64_t client, std::uint64_t sequence, std::string data, std::uint64_t index) {
  return {client, sequence, std::move(data), AppendOutcome::acked, index};
}
AppendOperation unknown(std::uint64_t client, std::uint64_t sequence, std::string data) {
  return {client, sequence, std::move(data), AppendOutcome::unknown, 0};
}

bool mentions(const AppendCheckResult& result, const std::string& word) {
  for (const auto& violation : result.violations) {
    if (violation.find(word) != std::string::npos) return true;
  }
  return false;
}

TEST(AppendChecker, accepts_a_correct_history_with_unknown_outcomes_either_way) {
  std::vector<AppendOperation> history = {acked(1, 1, "a", 0), unknown(1, 2, "b"), unknown(2, 1, "c"),
                                          acked(2, 2, "d", 2)};
  std::vector<LoggedRecord> log = {{1, 1, "a"}, {2, 1, "c"}, {2, 2, "d"}};
  auto result = check_append_history(history, log);
  EXPECT_TRUE(result.ok()) << result.violations.front();
  EXPECT_EQ(result.acked, 2u);
  EXPECT_EQ(result.acked_found, 2u);
  EXPECT_EQ(result.unknown_found, 1u);
}

TEST(AppendChecker, catches_lost_acknowledged_write) {
  auto result = check_append_history({acked(1, 1, "a", 0), acked(1, 2, "b", 1)}, {{1, 1, "a"}});
  EXPECT_TRUE(mentions(result, "lost write"));
}

TEST(AppendChecker, catches_acknowledged_record_at_another_index) {
  auto result = check_append_history({unknown(2, 1, "x"), acked(1, 1, "a", 0)}, {{2, 1, "x"}, {1, 1, "a"}});
  EXPECT_TRUE(mentions(result, "inconsistent index"));
}

TEST(AppendChecker, catches_corrupt_and_phantom_records) {
  auto result = check_append_history({acked(1, 1, "abc", 0)}, {{1, 1, "abX"}, {9, 9, "zz"}});
  EXPECT_TRUE(mentions(result, "corrupt record"));
  EXPECT_TRUE(mentions(result, "phantom"));
}

TEST(AppendChecker, catches_offsets_that_are_not_contiguous) {
  checkers::LoggedRecord first{1, 1, "a", 0};
  checkers::LoggedRecord second{1, 2, "b", 2};  // offset 1 is missing
  auto result = check_append_history({acked(1, 1, "a", 0), unknown(1, 2, "b")}, {first, second});
  EXPECT_TRUE(mentions(result, "offset gap"));
}

TEST(AppendChecker, catches_duplicates) {
  auto result = check_append_history({unknown(1, 1, "a"), unknown(1, 2, "b")}, {{1, 1, "a"}, {1, 1, "a"}});
  EXPECT_TRUE(mentions(result, "duplicate"));
}

TEST(AppendChecker, catches_an_acknowledged_record_preceded_by_a_later_one) {
  auto result = check_append_history({acked(1, 1, "a", 1), unknown(1, 2, "b")}, {{1, 2, "b"}, {1, 1, "a"}});
  EXPECT_TRUE(mentions(result, "order"));
}

TEST(AppendChecker, accepts_a_timed_out_record_that_lands_after_later_ones) {
  // Found by seed 27: the request for sequence 1 sat in a clogged link while the client, after
  // its timeout, reconnected and had sequence 2 acknowledged; then the old request arrived.
  auto result = check_append_history({unknown(1, 1, "a"), acked(1, 2, "b", 0)}, {{1, 2, "b"}, {1, 1, "a"}});
  EXPECT_TRUE(result.ok()) << result.violations.front();
}

}  // namespace
}  // namespace sluice::checkers
