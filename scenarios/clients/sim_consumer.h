#pragma once
// SimConsumer: a simulated Kafka group consumer (the classic protocol, as librdkafka and the Java
// client run it) speaking the real wire protocol to the broker through its env's Net, with
// core/client's KafkaConnection. It records what it does in a checkers::History.
//
// One instance runs two fibers in its own scope:
//   main       FindCoordinator; JoinGroup v5 (MEMBER_ID_REQUIRED: rejoin with the id given); the
//              leader runs the assignor over every member's subscription (client-side) and sends
//              the assignments in SyncGroup; OffsetFetch for newly assigned partitions (none
//              committed: auto.offset.reset through ListOffsets); Fetch from the positions
//              (OFFSET_OUT_OF_RANGE: reset); OffsetCommit with the generation, after each poll
//              batch or periodically; a rejoin whenever the heartbeat or a commit asks for one
//   heartbeat  Heartbeat every heartbeat_interval while the member is in a generation
// Errors are handled like librdkafka: REBALANCE_IN_PROGRESS rejoins; ILLEGAL_GENERATION drops the
// generation and UNKNOWN_MEMBER_ID the member id too, and either loses every partition (revoked
// without a commit) before rejoining; so does a member that heard nothing from the coordinator
// for session_timeout (librdkafka's session check: after a stall it must not commit positions
// its partitions' new owners may have gone past); FENCED_INSTANCE_ID and configuration errors are fatal (the
// consumer stops); NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE find the coordinator again.
// Eager assignors (range, roundrobin) commit and revoke everything before each rejoin;
// cooperative-sticky keeps its partitions, reports them in its subscription (v2: owned
// partitions and generation), revokes only those the new assignment lacks (after committing
// them) and then rejoins at once, so their new owner gets them in the next generation.
// The leader also rejoins when its topics' partition counts change (metadata_max_age), and a
// cooperative group is audited with DescribeGroups when a handover may have been cut short (a
// static member restarting between its revocation and its rejoin: see sim_consumer.cc).
//
// History (process = config.process; see checkers/kafka_history.h):
//   assign ok  {group, generation, every partition owned in that generation}, after SyncGroup
//   revoke ok  {group, generation it was owned in, the partitions given up or lost}
//   poll ok    the records of one Fetch (only when there are some), with the group
//   commit     invoke {group, generation, offsets}, then ok, fail (the coordinator refused it,
//              or the request never left) or info (no answer: the outcome is unknown); only
//              offsets this member's own polls reached are committed
//   crash / restart  info
//
// Lifecycle: start() spawns the fibers; close() commits, revokes and (dynamic members only) sends
// LeaveGroup, then ends them; crash() destroys their scope and closes the connections with no
// commit and no LeaveGroup, as a killed process would; restart() is a new instance on the same
// object: fresh member id and positions, the same group instance id. Call close(), crash() and
// restart() from a fiber outside this consumer (close() waits), crash() also from outside any.
// Concurrency: one scheduler; the two fibers share the coordinator connection (serialised).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checkers/kafka_history.h"
#include "core/env/env.h"
#include "core/env/net.h"
#include "scenarios/clients/assignors.h"

namespace sluice::scenarios::clients {

enum class CommitMode : std::uint8_t {
  after_each_poll,  // a synchronous commit after every poll that returned records
  periodic,         // every commit_interval (and before partitions are revoked)
};

enum class OffsetReset : std::uint8_t { earliest, latest };

struct SimConsumerConfig {
  std::string process = "consumer";  // the history's process name
  std::string client_id = "sluice-sim-consumer";
  Address bootstrap = {};
  std::string group_id = {};
  std::optional<std::string> group_instance_id = {};  // static membership (KIP-345)
  std::vector<std::string> topics = {};
  AssignmentStrategy assignor = AssignmentStrategy::range;
  Duration session_timeout = seconds(10);
  Duration rebalance_timeout = seconds(30);  // max.poll.interval.ms
  Duration heartbeat_interval = seconds(3);
  CommitMode commit_mode = CommitMode::after_each_poll;
  Duration commit_interval = seconds(5);
  OffsetReset auto_offset_reset = OffsetReset::earliest;
  Duration request_timeout = seconds(30);
  // Metadata is refreshed at least this often; a leader that sees its topics' partitions change
  // rejoins to reassign them (metadata.max.age.ms).
  Duration metadata_max_age = seconds(5);
  Duration retry_backoff = milliseconds(100);
  Duration fetch_wait_max = milliseconds(500);
  std::int32_t fetch_bytes_max = 1024 * 1024;
  std::int32_t partition_fetch_bytes_max = 256 * 1024;
  // librdkafka's client-side session check (see SimConsumer::Instance): true. false: as the Java
  // consumer, a member back from a stall keeps its generation until the coordinator refuses it,
  // so its first commits carry the stale generation (the coordinator's fencing must catch them).
  bool session_check = true;
};

class SimConsumer {
 public:
  // `env` supplies the Net (the consumer's host), the clock and the scheduler; the consumer's
  // fibers live in a child scope of `parent`. Both, and `history`, must outlive the consumer.
  SimConsumer(Env& env, Scope& parent, checkers::History& history, SimConsumerConfig config);
  ~SimConsumer();
  SimConsumer(const SimConsumer&) = delete;
  SimConsumer& operator=(const SimConsumer&) = delete;

  void start();
  // Commit, revoke, LeaveGroup (dynamic members), then stop; a crash if not done by `deadline`.
  void close(Instant deadline);
  void crash();
  void restart();
  // A stall (a GC pause, SIGSTOP): the fibers stop running; timers, the broker and the network
  // go on, so a pause past the session timeout gets the member evicted.
  void pause();
  void resume();

  bool running() const;
  // The consumer stopped on an error it cannot recover from (FENCED_INSTANCE_ID, ...).
  const std::optional<std::string>& fatal_error() const;
  std::int32_t generation() const;  // -1: in no generation
  std::string member_id() const;
  TopicPartitions assigned_partitions() const;
  std::uint64_t records_polled() const;
  // Generations this instance joined (each completed SyncGroup).
  std::uint64_t generations_joined() const;
  const SimConsumerConfig& config() const { return config_; }

 private:
  // Counts over every instance of this consumer.
  struct Stats {
    std::uint64_t records_polled = 0;
    std::uint64_t generations_joined = 0;
    std::optional<std::string> fatal_error;  // of the current instance
  };
  class Instance;

  void record_process_event(std::string_view f);
  void stop_instance();

  Env& env_;
  Scope& parent_;
  checkers::History& history_;
  SimConsumerConfig config_;
  Stats stats_;
  std::uint64_t incarnation_ = 0;
  // Declared before the scope so that it is destroyed after it: the scope's fibers use it.
  std::unique_ptr<Instance> instance_;  // the connections and member state
  std::unique_ptr<Scope> scope_;
};

}  // namespace sluice::scenarios::clients
