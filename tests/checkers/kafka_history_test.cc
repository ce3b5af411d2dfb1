#include "checkers/kafka_history.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

namespace sluice::checkers {
namespace {

RecordRef record(std::string value, std::int64_t offset, std::int32_t partition = 0,
                 std::string key = "k") {
  return {{"t", partition}, std::move(key), std::move(value), offset};
}

// Builds histories op by op, the way a simulated client records them.
class Builder {
 public:
  // A send of `records` (offsets are what the acknowledgement says) completed with `outcome`;
  // OpType::invoke leaves it pending.
  Builder& send(const std::string& process, std::vector<RecordRef> records,
                OpType outcome = OpType::ok) {
    std::vector<RecordRef> invoked = records;
    for (RecordRef& r : invoked) r.offset = -1;
    add(process, OpType::invoke, "send", [&](Op& op) { op.records = invoked; });
    if (outcome == OpType::invoke) return *this;
    add(process, outcome, "send",
        [&](Op& op) { op.records = outcome == OpType::ok ? records : invoked; });
    return *this;
  }
  Builder& invoke_send(const std::string& process, std::vector<RecordRef> records) {
    return send(process, std::move(records), OpType::invoke);
  }
  Builder& complete_send(const std::string& process, OpType outcome,
                         std::vector<RecordRef> records) {
    return add(process, outcome, "send", [&](Op& op) { op.records = records; });
  }
  Builder& poll(const std::string& process, std::vector<RecordRef> records) {
    add(process, OpType::invoke, "poll", [](Op&) {});
    return add(process, OpType::ok, "poll", [&](Op& op) { op.records = records; });
  }
  Builder& final_read(std::vector<RecordRef> records) {
    return poll(std::string(kFinalReaderProcess), std::move(records));
  }
  Builder& assign(const std::string& process, std::int32_t generation,
                  std::vector<std::int32_t> partitions, const std::string& group = "g") {
    return membership("assign", process, generation, partitions, group);
  }
  Builder& revoke(const std::string& process, std::int32_t generation,
                  std::vector<std::int32_t> partitions, const std::string& group = "g") {
    return membership("revoke", process, generation, partitions, group);
  }
  Builder& invoke_commit(const std::string& process, std::int32_t generation, std::int64_t offset,
                         std::int32_t partition = 0) {
    return add(process, OpType::invoke, "commit", [&](Op& op) {
      op.group = "g";
      op.generation = generation;
      op.offsets = {{{"t", partition}, offset}};
    });
  }
  Builder& complete_commit(const std::string& process, OpType outcome) {
    return add(process, outcome, "commit", [](Op&) {});
  }
  Builder& commit(const std::string& process, std::int32_t generation, std::int64_t offset,
                  OpType outcome = OpType::ok) {
    invoke_commit(process, generation, offset);
    return complete_commit(process, outcome);
  }
  Builder& crash(const std::string& process) {
    return add(process, OpType::info, "crash", [](Op&) {});
  }
  Builder& group_state(const std::string& state, OpType type = OpType::ok) {
    return add(std::string(kFinalReaderProcess), type, "group-state", [&](Op& op) {
      op.group = "g";
      op.group_state = state;
    });
  }

  KafkaCheckResult check(KafkaCheckOptions options = {}) const {
    return check_kafka_history(history_, options);
  }
  const History& history() const { return history_; }

 private:
  template <class Fill>
  Builder& add(const std::string& process, OpType type, const std::string& f, Fill&& fill) {
    Op op;
    op.process = process;
    op.type = type;
    op.f = f;
    op.time_ns = time_ns_ += 1000;
    fill(op);
    history_.add(std::move(op));
    return *this;
  }
  Builder& membership(const std::string& f, const std::string& process, std::int32_t generation,
                      const std::vector<std::int32_t>& partitions, const std::string& group) {
    return add(process, OpType::ok, f, [&](Op& op) {
      op.group = group;
      op.generation = generation;
      for (std::int32_t partition : partitions) op.partitions.push_back({"t", partition});
    });
  }

  History history_;
  std::int64_t time_ns_ = 0;
};

std::string anomalies_of(const KafkaCheckResult& result) {
  std::string all;
  for (const Anomaly& anomaly : result.anomalies) {
    all += anomaly.type + ": " + anomaly.description + "\n";
  }
  return all;
}

bool has(const KafkaCheckResult& result, const std::string& type) {
  return result.anomaly_counts.contains(type);
}

#define EXPECT_VALID(result) EXPECT_TRUE((result).ok()) << anomalies_of(result)
#define EXPECT_ANOMALY(result, type) EXPECT_TRUE(has((result), (type))) << anomalies_of(result)

// A correct little history: two producers, one consumer, a commit, the final read.
Builder correct_history() {
  Builder b;
  b.send("producer-1", {record("a", 0)})
      .send("producer-2", {record("b", 1)})
      .assign("consumer-1", 1, {0})
      .poll("consumer-1", {record("a", 0), record("b", 1)})
      .commit("consumer-1", 1, 2)
      .final_read({record("a", 0), record("b", 1)})
      .group_state("Stable");
  return b;
}

TEST(KafkaHistory, correct_history_is_valid) {
  const auto result = correct_history().check();
  EXPECT_VALID(result);
  EXPECT_EQ(result.sends_ok, 2u);
  EXPECT_EQ(result.polls_ok, 2u);
  EXPECT_EQ(result.commits_ok, 1u);
  EXPECT_EQ(result.rebalances, 1u);
  EXPECT_TRUE(result.final_read);
  EXPECT_EQ(result.final_records, 2u);
  EXPECT_NE(result.summary().find("anomalies=0"), std::string::npos) << result.summary();
}

// --- lost-write --------------------------------------------------------------------------------

TEST(KafkaHistory, lost_write_acknowledged_record_missing_from_final_read) {
  Builder b;
  b.send("p", {record("a", 0)}).send("p", {record("b", 1)}).send("p", {record("c", 2)});
  b.final_read({record("a", 0), record("c", 2)});
  EXPECT_ANOMALY(b.check(), "lost-write");
}

TEST(KafkaHistory, lost_write_not_claimed_for_missing_send_of_unknown_outcome) {
  Builder b;
  b.send("p", {record("a", 0)}).send("p", {record("b", -1)}, OpType::info);
  b.send("p", {record("c", 1)});
  b.final_read({record("a", 0), record("c", 1)});
  EXPECT_VALID(b.check());
}

TEST(KafkaHistory, send_of_unknown_outcome_may_also_appear) {
  Builder b;
  b.send("p", {record("a", 0)}).send("p", {record("b", -1)}, OpType::info);
  b.send("p", {record("c", 2)});
  b.final_read({record("a", 0), record("b", 1), record("c", 2)});
  EXPECT_VALID(b.check());
}

TEST(KafkaHistory, lost_write_record_a_consumer_saw_missing_from_final_read) {
  Builder b;
  b.send("p", {record("a", 0)}).send("p", {record("b", -1)}, OpType::info);
  b.send("p", {record("c", 2)});
  b.poll("consumer-1", {record("a", 0), record("b", 1)});
  b.final_read({record("a", 0), record("c", 2)});
  EXPECT_ANOMALY(b.check(), "lost-write");
}

TEST(KafkaHistory, lost_write_acknowledged_without_offset_and_absent) {
  Builder b;
  b.send("p", {record("a", 0)}).send("p", {record("b", -1)});
  b.final_read({record("a", 0)});
  EXPECT_ANOMALY(b.check(), "lost-write");
  Builder present;
  present.send("p", {record("a", 0)}).send("p", {record("b", -1)});
  present.final_read({record("a", 0), record("b", 1)});
  EXPECT_VALID(present.check());
}

TEST(KafkaHistory, retention_excuses_records_below_the_final_log_start) {
  Builder b;
  b.send("p", {record("a", 0)}).send("p", {record("b", 1)}).send("p", {record("c", 2)});
  b.final_read({record("c", 2)});
  EXPECT_ANOMALY(b.check(), "lost-write");
  EXPECT_VALID(b.check({.retention_may_delete = true}));
}

// --- liveness ----------------------------------------------------------------------------------

TEST(KafkaHistory, liveness_final_read_ends_before_acknowledged_record) {
  Builder b;
  b.send("p", {record("a", 0)}).send("p", {record("b", 1)});
  b.final_read({record("a", 0)});
  const auto result = b.check();
  EXPECT_ANOMALY(result, "liveness");
  EXPECT_FALSE(has(result, "lost-write"));
}

TEST(KafkaHistory, liveness_final_read_never_succeeded) {
  Builder reader;
  reader.send("p", {record("a", 0)});
  // The final reader invokes a poll that times out.
  Op invoke;
  invoke.process = std::string(kFinalReaderProcess);
  invoke.f = "poll";
  History history = reader.history();
  history.add(invoke);
  Op info = invoke;
  info.type = OpType::info;
  history.add(info);
  EXPECT_ANOMALY(check_kafka_history(history, {}), "liveness");
  // Without any final read the records are not judged.
  EXPECT_VALID(reader.check());
  EXPECT_FALSE(reader.check().final_read);
}

TEST(KafkaHistory, liveness_group_not_stable_at_the_end) {
  Builder b = correct_history();
  b.group_state("PreparingRebalance");
  EXPECT_ANOMALY(b.check(), "liveness");
  EXPECT_VALID(b.check({.require_final_groups_stable = false}));
  Builder unknown = correct_history();
  unknown.group_state("", OpType::info);
  EXPECT_ANOMALY(unknown.check(), "liveness");
  Builder stable_again = correct_history();
  stable_again.group_state("PreparingRebalance").group_state("Stable");
  EXPECT_VALID(stable_again.check());
}

// --- failed-write-visible ----------------------------------------------------------------------

TEST(KafkaHistory, failed_write_visible) {
  Builder b;
  b.send("p", {record("a", 0)}).send("p", {record("b", -1)}, OpType::fail);
  b.poll("c", {record("a", 0), record("b", 1)});
  b.final_read({record("a", 0), record("b", 1)});
  EXPECT_ANOMALY(b.check(), "failed-write-visible");
  Builder info;
  info.send("p", {record("a", 0)}).send("p", {record("b", -1)}, OpType::info);
  info.poll("c", {record("a", 0), record("b", 1)});
  info.final_read({record("a", 0), record("b", 1)});
  EXPECT_VALID(info.check());
}

// --- phantom-record ----------------------------------------------------------------------------

TEST(KafkaHistory, phantom_record_never_sent) {
  Builder b;
  b.send("p", {record("a", 0)});
  b.poll("c", {record("a", 0), record("z", 1)});
  b.final_read({record("a", 0), record("z", 1)});
  EXPECT_ANOMALY(b.check(), "phantom-record");
  Builder sent;
  sent.send("p", {record("a", 0)}).send("q", {record("z", 1)});
  sent.poll("c", {record("a", 0), record("z", 1)});
  sent.final_read({record("a", 0), record("z", 1)});
  EXPECT_VALID(sent.check());
}

TEST(KafkaHistory, phantom_record_in_another_partition_or_with_another_key) {
  Builder partition;
  partition.send("p", {record("a", 0, 0)});
  partition.final_read({record("a", 0, 0), record("a", 0, 1)});
  EXPECT_ANOMALY(partition.check(), "phantom-record");
  Builder key;
  key.send("p", {record("a", 0, 0, "k1")});
  key.final_read({record("a", 0, 0, "k2")});
  EXPECT_ANOMALY(key.check(), "phantom-record");
}

// --- duplicate ---------------------------------------------------------------------------------

TEST(KafkaHistory, duplicate_is_an_anomaly_only_with_idempotent_producers) {
  Builder b;
  b.send("p", {record("a", 1)});
  b.final_read({record("a", 0), record("a", 1)});
  const auto idempotent = b.check({.idempotent_producers = true});
  EXPECT_ANOMALY(idempotent, "duplicate");
  const auto retries = b.check();
  EXPECT_VALID(retries);
  EXPECT_EQ(retries.duplicates, 1u);
  Builder once;
  once.send("p", {record("a", 0)});
  once.final_read({record("a", 0)});
  EXPECT_VALID(once.check({.idempotent_producers = true}));
}

// --- inconsistent-offsets ----------------------------------------------------------------------

TEST(KafkaHistory, inconsistent_offsets_poll_disagrees_with_acknowledgement) {
  Builder b;
  b.send("p", {record("a", 0)}).send("q", {record("x", -1)}, OpType::info);
  b.poll("c", {record("x", 0)});
  b.final_read({record("a", 0)});
  EXPECT_ANOMALY(b.check(), "inconsistent-offsets");
  Builder agree;
  agree.send("p", {record("a", 0)}).send("q", {record("x", -1)}, OpType::info);
  agree.poll("c", {record("a", 0)});
  agree.final_read({record("a", 0)});
  EXPECT_VALID(agree.check());
}

TEST(KafkaHistory, inconsistent_offsets_final_read_disagrees_with_acknowledgement) {
  Builder b;
  b.send("p", {record("a", 0)}).send("p", {record("b", 1)});
  b.final_read({record("b", 0), record("a", 1)});
  EXPECT_ANOMALY(b.check(), "inconsistent-offsets");
}

// --- nonmonotonic-send -------------------------------------------------------------------------

TEST(KafkaHistory, nonmonotonic_send_after_an_acknowledgement) {
  Builder b;
  b.send("p", {record("a", 1, 0, "k1")}).send("p", {record("b", 0, 0, "k2")});
  b.final_read({record("b", 0, 0, "k2"), record("a", 1, 0, "k1")});
  EXPECT_ANOMALY(b.check(), "nonmonotonic-send");
  Builder two_producers;
  two_producers.send("p", {record("a", 1, 0, "k1")}).send("q", {record("b", 0, 0, "k2")});
  two_producers.final_read({record("b", 0, 0, "k2"), record("a", 1, 0, "k1")});
  EXPECT_VALID(two_producers.check());
}

TEST(KafkaHistory, nonmonotonic_send_within_one_send) {
  Builder b;
  b.send("p", {record("a", 1, 0, "k1"), record("b", 0, 0, "k2")});
  b.final_read({record("b", 0, 0, "k2"), record("a", 1, 0, "k1")});
  EXPECT_ANOMALY(b.check(), "nonmonotonic-send");
  Builder other_partitions;  // offsets of different partitions are not ordered
  other_partitions.send("q", {record("x", -1)}, OpType::info);
  other_partitions.send("p", {record("a", 1, 0), record("b", 0, 1)});
  other_partitions.final_read({record("x", 0, 0), record("a", 1, 0), record("b", 0, 1)});
  EXPECT_VALID(other_partitions.check());
}

TEST(KafkaHistory, concurrent_sends_of_one_producer_may_land_in_either_order) {
  // A send left pending by a crash may still land after the restarted process's next send.
  Builder b;
  b.invoke_send("p", {record("a", -1)}).crash("p");
  b.send("p", {record("b", 0)});
  b.final_read({record("b", 0), record("a", 1)});
  EXPECT_VALID(b.check());
}

// --- nonmonotonic-poll -------------------------------------------------------------------------

Builder two_records() {
  Builder b;
  b.send("p", {record("a", 0)}).send("p", {record("b", 1)});
  b.assign("c", 1, {0});
  return b;
}

TEST(KafkaHistory, nonmonotonic_poll_rereads_without_rebalance) {
  Builder b = two_records();
  b.poll("c", {record("a", 0), record("b", 1)}).poll("c", {record("a", 0)});
  b.final_read({record("a", 0), record("b", 1)});
  EXPECT_ANOMALY(b.check(), "nonmonotonic-poll");
}

TEST(KafkaHistory, nonmonotonic_poll_within_one_poll) {
  Builder b = two_records();
  b.poll("c", {record("b", 1), record("a", 0)});
  b.final_read({record("a", 0), record("b", 1)});
  EXPECT_ANOMALY(b.check(), "nonmonotonic-poll");
}

TEST(KafkaHistory, repoll_after_reassign_or_crash_is_fine) {
  Builder reassigned = two_records();
  reassigned.poll("c", {record("a", 0), record("b", 1)});
  reassigned.revoke("c", 1, {0}).assign("c", 2, {0});
  reassigned.poll("c", {record("a", 0), record("b", 1)});
  reassigned.final_read({record("a", 0), record("b", 1)});
  EXPECT_VALID(reassigned.check());

  Builder crashed = two_records();
  crashed.poll("c", {record("a", 0), record("b", 1)}).crash("c");
  crashed.poll("c", {record("a", 0), record("b", 1)});
  crashed.final_read({record("a", 0), record("b", 1)});
  EXPECT_VALID(crashed.check());

  Builder other_consumer = two_records();
  other_consumer.poll("c", {record("a", 0), record("b", 1)});
  other_consumer.poll("d", {record("a", 0), record("b", 1)});
  other_consumer.final_read({record("a", 0), record("b", 1)});
  EXPECT_VALID(other_consumer.check());
}

// --- poll-skip ---------------------------------------------------------------------------------

TEST(KafkaHistory, poll_skip_over_an_existing_offset) {
  Builder b;
  b.send("p", {record("a", 0)}).send("p", {record("b", 1)}).send("p", {record("c", 2)});
  b.poll("c", {record("a", 0)}).poll("c", {record("c", 2)});
  b.final_read({record("a", 0), record("b", 1), record("c", 2)});
  EXPECT_ANOMALY(b.check(), "poll-skip");
  Builder within;
  within.send("p", {record("a", 0)}).send("p", {record("b", 1)}).send("p", {record("c", 2)});
  within.poll("c", {record("a", 0), record("c", 2)}).poll("c", {record("b", 1)});
  within.final_read({record("a", 0), record("b", 1), record("c", 2)});
  EXPECT_ANOMALY(within.check(), "poll-skip");
}

TEST(KafkaHistory, poll_over_an_offset_gap_is_not_a_skip) {
  Builder b;
  b.send("p", {record("a", 0)}).send("p", {record("c", 2)});  // offset 1: e.g. a control record
  b.poll("c", {record("a", 0)}).poll("c", {record("c", 2)});
  b.final_read({record("a", 0), record("c", 2)});
  EXPECT_VALID(b.check());
}

// --- unseen-write ------------------------------------------------------------------------------

TEST(KafkaHistory, unseen_write_group_polled_around_it) {
  Builder b;
  b.send("p", {record("a", 0)}).send("p", {record("b", 1)}).send("p", {record("c", 2)});
  b.assign("c1", 1, {0}).poll("c1", {record("a", 0)}).crash("c1");
  b.assign("c2", 2, {0}).poll("c2", {record("c", 2)});
  b.final_read({record("a", 0), record("b", 1), record("c", 2)});
  EXPECT_ANOMALY(b.check(), "unseen-write");

  Builder seen;
  seen.send("p", {record("a", 0)}).send("p", {record("b", 1)}).send("p", {record("c", 2)});
  seen.assign("c1", 1, {0}).poll("c1", {record("a", 0)}).crash("c1");
  seen.assign("c2", 2, {0}).poll("c2", {record("b", 1), record("c", 2)});
  seen.final_read({record("a", 0), record("b", 1), record("c", 2)});
  EXPECT_VALID(seen.check());

  Builder not_reached;  // the group has not got past b yet: lag, not an anomaly
  not_reached.send("p", {record("a", 0)}).send("p", {record("b", 1)});
  not_reached.assign("c1", 1, {0}).poll("c1", {record("a", 0)});
  not_reached.final_read({record("a", 0), record("b", 1)});
  EXPECT_VALID(not_reached.check());
}

TEST(KafkaHistory, unseen_write_is_judged_per_group) {
  Builder b;
  b.send("p", {record("a", 0)}).send("p", {record("b", 1)}).send("p", {record("c", 2)});
  b.assign("c1", 1, {0}, "g1").poll("c1", {record("a", 0), record("b", 1), record("c", 2)});
  b.assign("c2", 1, {0}, "g2").poll("c2", {record("a", 0)}).crash("c2");
  b.assign("c2", 2, {0}, "g2").poll("c2", {record("c", 2)});
  b.final_read({record("a", 0), record("b", 1), record("c", 2)});
  EXPECT_ANOMALY(b.check(), "unseen-write");
}

// --- per-key-order -----------------------------------------------------------------------------

TEST(KafkaHistory, per_key_order_final_read_reverses_a_producer) {
  Builder b;  // offsets not reported by the acknowledgements, so only the final read orders them
  b.send("p", {record("a", -1, 0, "k")}).send("p", {record("b", -1, 0, "k")});
  b.final_read({record("b", 0, 0, "k"), record("a", 1, 0, "k")});
  EXPECT_ANOMALY(b.check(), "per-key-order");
  EXPECT_VALID(b.check({.check_per_key_order = false}));
  Builder other_keys;
  other_keys.send("p", {record("a", -1, 0, "k1")}).send("p", {record("b", -1, 0, "k2")});
  other_keys.final_read({record("b", 0, 0, "k2"), record("a", 1, 0, "k1")});
  EXPECT_VALID(other_keys.check());
  Builder other_producers;
  other_producers.send("p", {record("a", -1, 0, "k")}).send("q", {record("b", -1, 0, "k")});
  other_producers.final_read({record("b", 0, 0, "k"), record("a", 1, 0, "k")});
  EXPECT_VALID(other_producers.check());
}

// --- group-exclusivity -------------------------------------------------------------------------

TEST(KafkaHistory, group_exclusivity_two_owners_in_one_generation) {
  Builder b;
  b.assign("c1", 1, {0, 1}).assign("c2", 1, {1});
  EXPECT_ANOMALY(b.check(), "group-exclusivity");

  Builder next_generation;
  next_generation.assign("c1", 1, {0, 1}).assign("c2", 2, {1});
  EXPECT_VALID(next_generation.check());
  Builder revoked;
  revoked.assign("c1", 1, {0, 1}).revoke("c1", 1, {1}).assign("c2", 1, {1});
  EXPECT_VALID(revoked.check());
  Builder crashed;  // a static member replaced after a crash keeps the generation
  crashed.assign("c1", 1, {0, 1}).crash("c1").assign("c2", 1, {0, 1});
  EXPECT_VALID(crashed.check());
  Builder other_group;
  other_group.assign("c1", 1, {0}, "g1").assign("c2", 1, {0}, "g2");
  EXPECT_VALID(other_group.check());
}

// --- commit-regression -------------------------------------------------------------------------

TEST(KafkaHistory, commit_regression_after_an_acknowledged_commit) {
  Builder b;
  b.assign("c1", 1, {0}).commit("c1", 1, 10).commit("c1", 1, 5);
  EXPECT_ANOMALY(b.check(), "commit-regression");

  Builder failed;  // the higher commit failed, so nothing regressed
  failed.assign("c1", 1, {0}).commit("c1", 1, 10, OpType::fail).commit("c1", 1, 5);
  EXPECT_VALID(failed.check());
  Builder concurrent;  // in flight together: either may be applied last
  concurrent.assign("c1", 1, {0}).assign("c2", 1, {1});
  concurrent.invoke_commit("c1", 1, 10).invoke_commit("c2", 1, 5, 0);
  concurrent.complete_commit("c1", OpType::ok).complete_commit("c2", OpType::ok);
  EXPECT_VALID(concurrent.check());
}

TEST(KafkaHistory, commit_regression_across_generations) {
  Builder b;
  b.assign("c1", 1, {0}).commit("c1", 1, 10).revoke("c1", 1, {0});
  b.assign("c2", 2, {0}).commit("c2", 2, 4);
  EXPECT_ANOMALY(b.check(), "commit-regression");
  Builder forward;
  forward.assign("c1", 1, {0}).commit("c1", 1, 10).revoke("c1", 1, {0});
  forward.assign("c2", 2, {0}).commit("c2", 2, 10).commit("c2", 2, 12);
  EXPECT_VALID(forward.check());
}

// --- stale-commit-accepted ---------------------------------------------------------------------

TEST(KafkaHistory, stale_commit_accepted) {
  Builder b;
  b.assign("c1", 1, {0}).assign("c2", 2, {0}).commit("c1", 1, 3);
  EXPECT_ANOMALY(b.check(), "stale-commit-accepted");

  Builder refused;
  refused.assign("c1", 1, {0}).assign("c2", 2, {0}).commit("c1", 1, 3, OpType::fail);
  EXPECT_VALID(refused.check());
  Builder sent_before;  // sent while generation 1 was current: the coordinator may take it
  sent_before.assign("c1", 1, {0}).invoke_commit("c1", 1, 3).assign("c2", 2, {0});
  sent_before.complete_commit("c1", OpType::ok);
  EXPECT_VALID(sent_before.check());
}

// --- pairing -----------------------------------------------------------------------------------

TEST(KafkaHistory, pending_send_at_a_crash_is_of_unknown_outcome) {
  Builder b;
  b.invoke_send("p", {record("a", -1)}).crash("p");
  b.final_read({});
  const auto result = b.check();
  EXPECT_VALID(result);
  EXPECT_EQ(result.sends_info, 1u);
}

TEST(KafkaHistory, anomalies_listed_are_bounded_but_counted) {
  Builder b;
  for (int i = 0; i < 40; ++i) b.send("p", {record("v" + std::to_string(i), i)});
  b.final_read({});
  const auto result = b.check();
  EXPECT_EQ(result.anomaly_counts.at("liveness"), 40u);
  EXPECT_EQ(result.anomalies.size(), KafkaCheckResult::kAnomaliesListedPerType);
}

// --- a model of a correct log, for properties ----------------------------------------------------

// Producers and one consumer group driven against a correct in-memory log, recording the
// history. Each step is one random choice (so rapidcheck can shrink a failing run).
class CorrectLogModel {
 public:
  CorrectLogModel(std::int32_t partitions, bool idempotent)
      : logs_(static_cast<std::size_t>(partitions)), idempotent_(idempotent) {}

  void run(const std::vector<std::uint32_t>& choices) {
    rebalance();
    for (std::uint32_t choice : choices) step(choice);
  }

  // The final read of every partition, which a bug may `corrupt`, and the final group state.
  template <class Corrupt>
  void finish(Corrupt&& corrupt) {
    std::vector<RecordRef> everything;
    for (std::size_t partition = 0; partition < logs_.size(); ++partition) {
      const auto& log = logs_[partition];
      for (std::size_t offset = 0; offset < log.size(); ++offset) {
        everything.push_back(record(log[offset], static_cast<std::int64_t>(offset),
                                    static_cast<std::int32_t>(partition), keys_.at(log[offset])));
      }
    }
    corrupt(everything);
    builder.final_read(everything);
    builder.group_state("Stable");
  }
  void finish() {
    finish([](std::vector<RecordRef>&) {});
  }

  Builder builder;
  std::vector<RecordRef> acknowledged;
  std::int32_t generation = 0;

 private:
  static constexpr std::uint32_t kProducers = 3;
  static constexpr std::uint32_t kConsumers = 3;

  void step(std::uint32_t choice) {
    switch (choice % 8) {
      case 0:
      case 1:
      case 2:
        return send(choice / 8);
      case 3:
      case 4:
        return poll(choice / 8);
      case 5:
        return commit(choice / 8);
      case 6:
        return crash_consumer(choice / 8);
      default:
        return rebalance();
    }
  }

  void send(std::uint32_t choice) {
    const std::string producer = "producer-" + std::to_string(choice % kProducers);
    choice /= kProducers;
    const auto partition = static_cast<std::int32_t>(choice % logs_.size());
    choice /= static_cast<std::uint32_t>(logs_.size());
    const std::string key = "k" + std::to_string(choice % 3);
    choice /= 3;
    const std::string value = "v" + std::to_string(next_value_++);
    keys_[value] = key;
    auto& log = logs_[static_cast<std::size_t>(partition)];
    switch (choice % 6) {
      case 0:  // refused
        builder.send(producer, {record(value, -1, partition, key)}, OpType::fail);
        return;
      case 1:  // timed out before reaching the log
        builder.send(producer, {record(value, -1, partition, key)}, OpType::info);
        return;
      case 2:  // timed out after reaching the log
        log.push_back(value);
        builder.send(producer, {record(value, -1, partition, key)}, OpType::info);
        return;
      case 3:  // retried after a lost acknowledgement: written twice unless idempotent
        if (!idempotent_) log.push_back(value);
        [[fallthrough]];
      default: {
        const auto offset = static_cast<std::int64_t>(log.size());
        log.push_back(value);
        acknowledged.push_back(record(value, offset, partition, key));
        builder.send(producer, {acknowledged.back()});
      }
    }
  }

  // A consumer polls every partition it owns, from its position, up to three records each.
  void poll(std::uint32_t choice) {
    const std::string consumer = consumer_name(choice % kConsumers);
    const std::int64_t count_max = 1 + (choice / kConsumers) % 3;
    std::vector<RecordRef> records;
    for (auto& [partition, position] : positions_[consumer]) {
      const auto& log = logs_[static_cast<std::size_t>(partition)];
      for (std::int64_t i = 0; i < count_max && position < static_cast<std::int64_t>(log.size());
           ++i, ++position) {
        const std::string& value = log[static_cast<std::size_t>(position)];
        records.push_back(record(value, position, partition, keys_.at(value)));
      }
    }
    builder.poll(consumer, records);
  }

  // A consumer commits its position in one partition it owns; the coordinator may refuse.
  void commit(std::uint32_t choice) {
    const std::string consumer = consumer_name(choice % kConsumers);
    auto& positions = positions_[consumer];
    if (positions.empty()) return;
    const auto [partition, position] = *positions.begin();
    const OpType outcome = (choice / kConsumers) % 4 == 0 ? OpType::fail : OpType::ok;
    builder.invoke_commit(consumer, generation, position, partition);
    builder.complete_commit(consumer, outcome);
    if (outcome == OpType::ok) committed_[partition] = position;
  }

  void crash_consumer(std::uint32_t choice) {
    const std::string consumer = consumer_name(choice % kConsumers);
    builder.crash(consumer);
    positions_.erase(consumer);
    rebalance();
  }

  // A new generation: every member gives up its partitions, they are dealt out again, and each
  // new owner resumes from the group's committed offset (at least once).
  void rebalance() {
    for (const auto& [consumer, positions] : positions_) {
      std::vector<std::int32_t> owned;
      for (const auto& [partition, position] : positions) owned.push_back(partition);
      builder.revoke(consumer, generation, owned);
    }
    positions_.clear();
    ++generation;
    std::map<std::string, std::vector<std::int32_t>> assignment;
    for (std::size_t partition = 0; partition < logs_.size(); ++partition) {
      const auto owner = (partition + static_cast<std::size_t>(generation)) % kConsumers;
      assignment[consumer_name(owner)].push_back(static_cast<std::int32_t>(partition));
    }
    for (const auto& [consumer, partitions] : assignment) {
      builder.assign(consumer, generation, partitions);
      for (std::int32_t partition : partitions) {
        positions_[consumer][partition] =
            committed_.contains(partition) ? committed_.at(partition) : 0;
      }
    }
  }

  static std::string consumer_name(std::size_t index) {
    return "consumer-" + std::to_string(index);
  }

  std::vector<std::vector<std::string>> logs_;  // partition -> values by offset
  bool idempotent_;
  std::map<std::string, std::map<std::int32_t, std::int64_t>> positions_;  // next offset to poll
  std::map<std::int32_t, std::int64_t> committed_;
  std::map<std::string, std::string> keys_;  // value -> key
  std::uint64_t next_value_ = 0;
};

CorrectLogModel run_model(bool idempotent) {
  const auto partitions = *rc::gen::inRange<std::int32_t>(1, 4);
  const auto choices =
      *rc::gen::container<std::vector<std::uint32_t>>(rc::gen::inRange<std::uint32_t>(0, 1u << 20));
  CorrectLogModel model(partitions, idempotent);
  model.run(choices);
  return model;
}

RC_GTEST_PROP(KafkaHistoryProperty, correct_log_histories_check_clean, (bool idempotent)) {
  CorrectLogModel model = run_model(idempotent);
  model.finish();
  const auto result = model.builder.check({.idempotent_producers = idempotent});
  RC_ASSERT(result.ok());
  RC_ASSERT(result.final_read);
  RC_CLASSIFY(result.duplicates > 0, "dups");
  RC_CLASSIFY(result.rebalances > 3, "rebal");
  RC_CLASSIFY(result.commits_ok > 2, "commits");
  RC_CLASSIFY(result.records_polled > 10, "polled");
  RC_CLASSIFY(result.sends_ok > 10, "sends");
}

RC_GTEST_PROP(KafkaHistoryProperty, dropped_acknowledged_record_is_caught, ()) {
  CorrectLogModel model = run_model(false);
  RC_PRE(!model.acknowledged.empty());
  const RecordRef dropped = *rc::gen::elementOf(model.acknowledged);
  model.finish([&](std::vector<RecordRef>& final_log) {
    std::erase_if(final_log, [&](const RecordRef& r) {
      return r.tp == dropped.tp && r.offset == dropped.offset;
    });
  });
  const auto result = model.builder.check({});
  RC_ASSERT(has(result, "lost-write") || has(result, "liveness"));
}

RC_GTEST_PROP(KafkaHistoryProperty, swapped_values_are_caught, ()) {
  CorrectLogModel model = run_model(true);
  RC_PRE(model.acknowledged.size() >= 2u);
  const RecordRef first = *rc::gen::elementOf(model.acknowledged);
  const RecordRef second = *rc::gen::elementOf(model.acknowledged);
  RC_PRE(first.tp == second.tp && first.value != second.value);
  model.finish([&](std::vector<RecordRef>& final_log) {
    for (RecordRef& r : final_log) {
      if (r.tp != first.tp) continue;
      if (r.offset == first.offset)
        r.value = second.value;
      else if (r.offset == second.offset)
        r.value = first.value;
    }
  });
  RC_ASSERT(has(model.builder.check({.idempotent_producers = true}), "inconsistent-offsets"));
}

RC_GTEST_PROP(KafkaHistoryProperty, duplicate_with_idempotence_is_caught, ()) {
  CorrectLogModel model = run_model(true);
  RC_PRE(!model.acknowledged.empty());
  const RecordRef copied = *rc::gen::elementOf(model.acknowledged);
  model.finish([&](std::vector<RecordRef>& final_log) {
    auto last_of_partition = std::find_if(final_log.rbegin(), final_log.rend(),
                                          [&](const RecordRef& r) { return r.tp == copied.tp; });
    RecordRef copy = copied;
    copy.offset = last_of_partition->offset + 1;
    final_log.insert(last_of_partition.base(), copy);
  });
  RC_ASSERT(has(model.builder.check({.idempotent_producers = true}), "duplicate"));
  RC_ASSERT(model.builder.check({}).ok());  // a retry could have done it
}

RC_GTEST_PROP(KafkaHistoryProperty, stale_commit_is_caught, ()) {
  CorrectLogModel model = run_model(false);
  RC_PRE(model.generation >= 2);
  const auto stale_generation = *rc::gen::inRange<std::int32_t>(1, model.generation);
  model.builder.commit("consumer-zombie", stale_generation, 1'000'000);
  model.finish();
  RC_ASSERT(has(model.builder.check({}), "stale-commit-accepted"));
}

// --- JSON lines --------------------------------------------------------------------------------

std::string round_trip_error(const History& history) {
  std::stringstream stream;
  history.write_json_lines(stream);
  std::string error;
  std::optional<History> read = read_json_lines(stream, &error);
  if (!read) return "unreadable: " + error + "\n" + stream.str();
  if (read->ops() != history.ops()) return "differs:\n" + stream.str();
  return "";
}

TEST(KafkaHistoryJson, round_trip_of_every_kind_of_op) {
  Builder b = correct_history();
  b.send("p\"q\\", {record("tab\there\nnl \x01 \x7f \xc3\xa9 \xf0\x9f\x98\x80", 5, 3, "")},
         OpType::info);
  b.send("p", {record(std::string("nul") + '\0' + "byte \xff\xfe \xed\xa0\x80 \xc3", 6)},
         OpType::fail);
  b.crash("consumer-1").revoke("consumer-1", 1, {0, 1}).group_state("Empty");
  History history = b.history();
  Op with_error;
  with_error.process = "c";
  with_error.type = OpType::info;
  with_error.f = "commit";
  with_error.error = "timeout \"after\" 30s";
  with_error.offsets = {{{"t", 0}, -7}};
  history.add(with_error);
  Op poll_of_group;
  poll_of_group.process = "c";
  poll_of_group.type = OpType::ok;
  poll_of_group.f = "poll";
  poll_of_group.group = "g";
  poll_of_group.records = {record("x", 0)};
  history.add(poll_of_group);
  EXPECT_EQ(round_trip_error(history), "");
}

TEST(KafkaHistoryJson, lines_are_objects_with_the_documented_fields) {
  std::stringstream stream;
  correct_history().history().write_json_lines(stream);
  std::string line;
  std::getline(stream, line);
  EXPECT_EQ(line, R"({"index":0,"process":"producer-1","type":"invoke","f":"send","time":1000,)"
                  R"("value":[{"topic":"t","partition":0,"key":"k","value":"a","offset":null}]})");
}

TEST(KafkaHistoryJson, malformed_input_names_the_line) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"process\":\"p\",\"type\":\"ok\",\"f\":\"poll\"}\n{\"process\":", "line 2"},
      {"[1,2]", "must be an object"},
      {R"({"process":"p","type":"done","f":"poll"})", "unknown type"},
      {R"({"process":"p","type":"ok"})", "missing \"f\""},
      {R"({"process":"p","type":"ok","f":"poll","time":1.5})", "must be an integer"},
      {R"({"process":"p","type":"ok","f":"poll","value":[{"topic":"t","partition":-1}]})",
       "partition"},
      {R"({"process":"p","type":"ok","f":"poll"} x)", "trailing"},
      {"{\"process\":\"a\tb\",\"type\":\"ok\",\"f\":\"poll\"}", "control character"},
      {R"({"process":"\ud800","type":"ok","f":"poll"})", "surrogate"},
      {std::string(100, '[') + std::string(100, ']'), "too deep"},
  };
  for (const auto& [input, expected] : cases) {
    std::istringstream in(input);
    std::string error;
    EXPECT_FALSE(read_json_lines(in, &error).has_value()) << input;
    EXPECT_NE(error.find(expected), std::string::npos) << input << " -> " << error;
  }
  std::istringstream blank("\n  \n");
  auto empty = read_json_lines(blank, nullptr);
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->ops().empty());
}

rc::Gen<std::string> bytes() {
  return rc::gen::map(
      rc::gen::container<std::vector<std::uint8_t>>(rc::gen::arbitrary<std::uint8_t>()),
      [](const std::vector<std::uint8_t>& raw) { return std::string(raw.begin(), raw.end()); });
}

rc::Gen<TopicPartition> topic_partitions() {
  return rc::gen::build<TopicPartition>(
      rc::gen::set(&TopicPartition::topic, bytes()),
      rc::gen::set(&TopicPartition::partition, rc::gen::inRange<std::int32_t>(0, 1 << 30)));
}

rc::Gen<RecordRef> records() {
  return rc::gen::build<RecordRef>(
      rc::gen::set(&RecordRef::tp, topic_partitions()), rc::gen::set(&RecordRef::key, bytes()),
      rc::gen::set(&RecordRef::value, bytes()),
      rc::gen::set(&RecordRef::offset, rc::gen::inRange<std::int64_t>(-1, 1LL << 50)));
}

// Any op as the header describes it: send and poll carry records (and a poll its group); the
// others carry their value fields.
Op arbitrary_op() {
  Op op;
  op.process = *bytes();
  op.type = *rc::gen::element(OpType::invoke, OpType::ok, OpType::fail, OpType::info);
  op.f = *rc::gen::element<std::string>("send", "poll", "assign", "revoke", "commit", "crash",
                                        "restart", "group-state", "other f");
  op.time_ns = *rc::gen::arbitrary<std::int64_t>();
  op.error = *bytes();
  if (op.f == "send" || op.f == "poll") {
    op.records = *rc::gen::container<std::vector<RecordRef>>(records());
    if (op.f == "poll") op.group = *bytes();
    return op;
  }
  op.group = *bytes();
  op.group_state = *bytes();
  op.generation = *rc::gen::inRange<std::int32_t>(-1, std::numeric_limits<std::int32_t>::max());
  op.partitions = *rc::gen::container<std::vector<TopicPartition>>(topic_partitions());
  op.offsets = *rc::gen::container<std::vector<CommittedOffset>>(rc::gen::build<CommittedOffset>(
      rc::gen::set(&CommittedOffset::tp, topic_partitions()),
      rc::gen::set(&CommittedOffset::offset, rc::gen::arbitrary<std::int64_t>())));
  op.records = *rc::gen::container<std::vector<RecordRef>>(records());
  return op;
}

RC_GTEST_PROP(KafkaHistoryProperty, json_lines_round_trip, ()) {
  History history;
  const auto count = *rc::gen::inRange(0, 8);
  for (int i = 0; i < count; ++i) history.add(arbitrary_op());
  RC_ASSERT(round_trip_error(history) == "");
}

// --- EDN and Elle ------------------------------------------------------------------------------

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(KafkaHistoryEdn, one_vector_with_one_map_per_op) {
  std::stringstream edn;
  correct_history().history().write_edn(edn);
  const auto lines = lines_of(edn.str());
  ASSERT_EQ(lines.size(), correct_history().history().ops().size() + 1);
  EXPECT_EQ(lines[0], "[");
  EXPECT_EQ(lines[1], R"({:index 0, :process "producer-1", :type :invoke, :f :send, :time 1000, )"
                      R"(:value [{:topic "t", :partition 0, :key "k", :value "a", :offset nil}]})");
  EXPECT_EQ(lines.back().back(), ']');
  EXPECT_NE(edn.str().find(R"(:f :group-state, :time 12000, :value {:group "g", :state "Stable"})"),
            std::string::npos)
      << edn.str();
}

TEST(KafkaHistoryElle, sends_append_and_polls_from_the_log_start_read) {
  Builder b;
  b.send("p", {record("a", 0, 0), record("x", 0, 1)});  // two partitions: two Elle processes
  b.send("p", {record("b", -1, 0)}, OpType::info);
  b.send("p", {record("c", -1, 0)}, OpType::fail);
  b.poll("c", {record("a", 0, 0), record("b", 1, 0), record("a", 2, 0), record("x", 0, 1)});
  b.poll("c", {record("b", 1, 0)});  // not from the log start: not exported
  b.invoke_send("p", {record("d", -1, 0)}).crash("p");
  std::stringstream elle;
  b.history().write_elle_list_append(elle);
  const std::string expected = R"([
{:index 0, :time 1000, :type :invoke, :process 0, :f :txn, :value [[:append, "t/0", "a"]]}
{:index 1, :time 1000, :type :invoke, :process 1, :f :txn, :value [[:append, "t/1", "x"]]}
{:index 2, :time 2000, :type :ok, :process 0, :f :txn, :value [[:append, "t/0", "a"]]}
{:index 3, :time 2000, :type :ok, :process 1, :f :txn, :value [[:append, "t/1", "x"]]}
{:index 4, :time 3000, :type :invoke, :process 0, :f :txn, :value [[:append, "t/0", "b"]]}
{:index 5, :time 4000, :type :info, :process 0, :f :txn, :value [[:append, "t/0", "b"]]}
{:index 6, :time 5000, :type :invoke, :process 2, :f :txn, :value [[:append, "t/0", "c"]]}
{:index 7, :time 6000, :type :fail, :process 2, :f :txn, :value [[:append, "t/0", "c"]]}
{:index 8, :time 7000, :type :invoke, :process 3, :f :txn, :value [[:r, "t/0", nil]]}
{:index 9, :time 7000, :type :invoke, :process 4, :f :txn, :value [[:r, "t/1", nil]]}
{:index 10, :time 8000, :type :ok, :process 3, :f :txn, :value [[:r, "t/0", ["a", "b"]]]}
{:index 11, :time 8000, :type :ok, :process 4, :f :txn, :value [[:r, "t/1", ["x"]]]}
{:index 12, :time 11000, :type :invoke, :process 2, :f :txn, :value [[:append, "t/0", "d"]]}
{:index 13, :time 12000, :type :info, :process 2, :f :txn, :value [[:append, "t/0", "d"]]}]
)";
  EXPECT_EQ(elle.str(), expected);
}

// --- bounded work ------------------------------------------------------------------------------

TEST(KafkaHistory, checks_a_large_history_in_near_linear_time) {
  constexpr int kRecords = 60'000;  // ~200k ops
  Builder b;
  std::vector<RecordRef> final_log;
  b.assign("c", 1, {0, 1, 2, 3});
  for (int i = 0; i < kRecords; ++i) {
    const std::int32_t partition = i % 4;
    const RecordRef r =
        record("v" + std::to_string(i), i / 4, partition, "k" + std::to_string(i % 7));
    b.send("producer-" + std::to_string(i % 5), {r});
    if (i % 2 == 1) b.poll("c", {final_log.back(), r});
    final_log.push_back(r);
  }
  std::stable_sort(final_log.begin(), final_log.end(),
                   [](const RecordRef& x, const RecordRef& y) { return x.tp < y.tp; });
  b.final_read(final_log);
  const auto result = b.check();
  EXPECT_VALID(result);
  EXPECT_EQ(result.sends_ok, static_cast<std::uint64_t>(kRecords));
}

}  // namespace
}  // namespace sluice::checkers
