#pragma once
// A Jepsen-style history of Kafka clients (producers, group consumers, admin) and the checkers
// that judge it. Pure: std only, no env, no IO beyond the string/stream readers and writers.
//
// An operation is {index, process, type, f, value, time}: a client `process` invokes `f`, and the
// same process later completes it with ok (it happened), fail (it certainly did not happen) or
// info (unknown: timeout, reset, crash). A completion pairs with the process's pending invoke of
// the same f; a completion with no pending invoke stands alone (assign, revoke, group-state and
// crash/restart are usually recorded that way). An invoke never completed (the process crashed
// or restarted, a second invoke of the same f came first, or the history ended) is info.
// Values, by f:
//   send     invoke: [{topic, partition, key, value}...]   ok: the same, each with its offset
//   poll     invoke: {}                                      ok: [{topic, partition, offset, key,
//   value}...] assign   ok: {generation, partitions [(topic, partition)...]}   (the member now owns
//   these) revoke   ok: {generation, partitions [...]}                     (the member gave these
//   up) commit   invoke: {generation, offsets [(topic, partition, offset)...]}   ok / fail / info
//            (an offset is Kafka's committed offset: the next offset the group will consume)
//   crash, restart   info: {} (a client process crashed or started again; its pending ops are
//                    then of unknown outcome)
//   group-state      ok: {group, state} (the final reader's DescribeGroups after the quiet period)
// Records are identified by their value (unique per run); keys order records per key.
// The history ends with a final read ("poll" by the process "final-reader", or any process whose
// name starts with it) of every partition from the log start, taken after the fault period and a
// quiet period. Its ok polls together are the final log.
//
// What the checkers assume of the clients (the simulated ones do this):
//   - a fail completion is certain: the request was refused before anything was written (a
//     timeout, a reset, or a retry after either, is info);
//   - producers use acks=all; a record a consumer saw was committed (below the high watermark);
//   - consumers commit only offsets their own ok polls reached, and with no committed offset they
//     start from the log start (auto.offset.reset=earliest);
//   - one process has at most one op of each f in flight;
//   - a process that reads a partition again from an earlier offset outside a rebalance (e.g. a
//     final reader starting over) records a restart first.

#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::checkers {

enum class OpType : std::uint8_t { invoke, ok, fail, info };
std::string_view to_string(OpType type);
std::optional<OpType> op_type_from_string(std::string_view name);

inline constexpr std::string_view kFinalReaderProcess = "final-reader";

struct TopicPartition {
  std::string topic;
  std::int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

struct RecordRef {
  TopicPartition tp;
  std::string key;
  std::string value;
  std::int64_t offset = -1;  // -1: not known (a send invoke)
  bool operator==(const RecordRef&) const = default;
};

struct CommittedOffset {
  TopicPartition tp;
  std::int64_t offset = -1;
  bool operator==(const CommittedOffset&) const = default;
};

struct Op {
  std::int64_t index = 0;  // position in the history
  std::string process;     // e.g. "producer-1", "consumer-2", "final-reader"
  OpType type = OpType::invoke;
  std::string f;  // send | poll | assign | revoke | commit | crash | restart | group-state
  std::int64_t time_ns = 0;  // simulated time
  std::string group;         // assign, revoke, commit, group-state (and optionally poll): the group
  std::string group_state;   // group-state: "Stable", "Empty", ...
  std::vector<RecordRef> records;          // send, poll
  std::int32_t generation = -1;            // assign, revoke, commit
  std::vector<TopicPartition> partitions;  // assign, revoke
  std::vector<CommittedOffset> offsets;    // commit
  std::string error;                       // fail / info: why
  bool operator==(const Op&) const = default;
};

class History {
 public:
  // Appends an op; its index is set to its position.
  const Op& add(Op op);
  const std::vector<Op>& ops() const { return ops_; }

  // One JSON object per line:
  //   {"index":..,"process":..,"type":..,"f":..,"time":..,"value":..[,"error":..]}
  // value: send, poll: [{"topic","partition","key","value","offset"}...] (offset null when
  // unknown), plus a top-level "group" when a poll names its group; other f: an object with the
  // fields of that f ("group", "generation", "partitions", "offsets", "state"). Bytes that are not
  // UTF-8 are written as lone surrogates \udc80..\udcff, which read_json_lines turns back into
  // the same bytes, so writing then reading gives the same history.
  void write_json_lines(std::ostream& out) const;
  // One EDN vector of maps ({:index 0, :process "p", :type :invoke, :f :send, :time 12,
  // :value ...}), one op per line; the same structure as the JSON lines, with keywords for
  // :type, :f and map keys. The form Jepsen and Elle read.
  void write_edn(std::ostream& out) const;
  // Elle's list-append projection, as one EDN vector of ops for `elle-cli -m list-append`:
  //   - a partition is a key, "topic/partition";
  //   - a send becomes, for each partition it wrote, a transaction of [:append key value] in
  //     record order, with the send's outcome (:ok / :fail / :info; still pending at a crash or at
  //     the end: :info);
  //   - an ok poll becomes, for each partition whose first polled offset is the partition's log
  //     start (the lowest offset seen anywhere in the history), a transaction [[:r key [values]]];
  //     a value polled twice is listed once (duplicates are the built-in checker's to judge: only
  //     it knows whether producers are idempotent);
  //   - each (process, partition) pair is its own Elle process, numbered by first appearance, and
  //     gets a fresh number after an :info (as Jepsen never reuses a crashed process): one Kafka
  //     op touching several partitions is several concurrent Elle ops, because Kafka gives no
  //     atomicity or order across partitions.
  // Check it for serializability (not strict: a poll may return a shorter prefix than the log).
  void write_elle_list_append(std::ostream& out) const;

 private:
  std::vector<Op> ops_;
};

// Reads what write_json_lines wrote (blank lines are skipped; unknown fields are ignored). Ops
// are re-indexed by position. On malformed input returns nullopt and, when `error` is not null,
// says which line and why.
std::optional<History> read_json_lines(std::istream& in, std::string* error);

struct Anomaly {
  std::string type;               // lost-write, duplicate, inconsistent-offsets, ... (see below)
  std::string description;        // one line naming the records/ops involved
  std::vector<std::int64_t> ops;  // indexes of the ops involved
};

struct KafkaCheckOptions {
  bool idempotent_producers = false;  // duplicates of a send are anomalies, not retries
  bool check_per_key_order = true;
  bool require_final_groups_stable = true;
  // Retention may have deleted a partition's prefix: records below the first offset of the final
  // read of their partition (all of them, when that read is empty) are not judged lost or unseen.
  bool retention_may_delete = false;
};

struct KafkaCheckResult {
  // At most kAnomaliesListedPerType of each type are listed; anomaly_counts has the totals.
  static constexpr std::size_t kAnomaliesListedPerType = 16;
  std::vector<Anomaly> anomalies;
  std::map<std::string, std::uint64_t> anomaly_counts;
  std::uint64_t sends_ok = 0, sends_info = 0, sends_fail = 0;
  std::uint64_t polls_ok = 0, records_polled = 0, commits_ok = 0, rebalances = 0;
  std::uint64_t duplicates = 0;  // values at two or more offsets of a partition
  std::uint64_t final_records = 0;
  bool final_read = false;  // the history has an ok final read
  bool ok() const { return anomalies.empty(); }
  std::string summary() const;  // one line of counts
};

// Every checker below, each defined precisely where it is implemented in kafka_history.cc.
// "Observed" records are those of ok sends (with their acknowledged offsets) and of ok polls.
//   lost-write            an acknowledged record, or one any poll observed, that the final read
//                         does not hold at its offset although the final read reached past it
//   liveness              after the quiet period: no final read succeeded, the final read ends
//                         before an acknowledged or observed record, or a group's last state is
//                         not Stable (when required)
//   failed-write-visible  a record whose send failed (certainly not written) seen by a poll
//   phantom-record        a polled record never sent to that partition, or with another key
//   duplicate             a value at two offsets of a partition (an anomaly with idempotent
//                         producers; otherwise only counted, as a retry may write it twice)
//   inconsistent-offsets  one offset of a partition observed with two different values
//   nonmonotonic-send     a producer's acknowledged offsets in a partition not increasing: within
//                         one send, or from a send acknowledged before the next was invoked
//   nonmonotonic-poll     a process's polls of a partition, within one poll or between successive
//                         polls of one continuous ownership, not increasing in offset
//   poll-skip             the same, jumping over an offset the final read holds
//   unseen-write          a record of the final log that a group never polled although the group
//                         polled both below and above its offset
//   per-key-order         two records of one key that one producer sent in order (the second
//                         invoked after the first was acknowledged, or both in one send) standing
//                         in the other order in the final read
//   group-exclusivity     two live members owning one partition in the same group generation
//   commit-regression     a group's acknowledged committed offset of a partition lower than one
//                         acknowledged before that commit was invoked
//   stale-commit-accepted a commit acknowledged whose generation is older than a generation of
//                         that group assigned before the commit was invoked
KafkaCheckResult check_kafka_history(const History& history, const KafkaCheckOptions& options);

}  // namespace sluice::checkers
