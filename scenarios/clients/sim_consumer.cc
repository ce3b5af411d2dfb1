#include "scenarios/clients/sim_consumer.h"

#include <algorithm>
#include <cassert>
#include <map>
#include <set>
#include <utility>

#include "core/client/kafka_connection.h"
#include "core/env/sync.h"
#include "core/group/offsets_records.h"
#include "core/protocol/messages.h"
#include "core/storage/record_batch.h"

namespace sluice::scenarios::clients {

namespace {

using client::ClientError;
using client::KafkaConnection;
using protocol::StructValue;
using protocol::Value;
template <typename T>
using Result = std::expected<T, ClientError>;

// Kafka error codes the consumer acts on.
namespace code {
constexpr std::int16_t none = 0;
constexpr std::int16_t offset_out_of_range = 1;
constexpr std::int16_t unknown_topic_or_partition = 3;
constexpr std::int16_t coordinator_load_in_progress = 14;
constexpr std::int16_t coordinator_not_available = 15;
constexpr std::int16_t not_coordinator = 16;
constexpr std::int16_t illegal_generation = 22;
constexpr std::int16_t unknown_member_id = 25;
constexpr std::int16_t rebalance_in_progress = 27;
constexpr std::int16_t member_id_required = 79;
constexpr std::int16_t fenced_instance_id = 82;
}  // namespace code

// What a group API's error asks of the member (librdkafka's rd_kafka_cgrp_handle_* rules).
enum class GroupAction : std::uint8_t {
  proceed,
  retry,             // the coordinator is busy: try again after a backoff
  find_coordinator,  // it moved or is gone
  rejoin,            // a rebalance is under way
  reset_generation,  // this generation is over: partitions are lost, rejoin
  reset_member,      // the coordinator forgot the member: the same, with a new member id
  fatal,             // fenced, or a configuration the group refuses
};

GroupAction group_action(std::int16_t error) {
  switch (error) {
    case code::none:
      return GroupAction::proceed;
    case code::coordinator_load_in_progress:
      return GroupAction::retry;
    case code::coordinator_not_available:
    case code::not_coordinator:
      return GroupAction::find_coordinator;
    case code::rebalance_in_progress:
      return GroupAction::rejoin;
    case code::illegal_generation:
      return GroupAction::reset_generation;
    case code::unknown_member_id:
      return GroupAction::reset_member;
    default:
      return GroupAction::fatal;  // FENCED_INSTANCE_ID, INCONSISTENT_GROUP_PROTOCOL, ...
  }
}

// Errors after which the coordinator certainly did not store a commit.
bool commit_certainly_refused(std::int16_t error) {
  const GroupAction action = group_action(error);
  return action != GroupAction::proceed && action != GroupAction::fatal;
}

constexpr std::int64_t kEarliestTimestamp = -2;
constexpr std::int64_t kLatestTimestamp = -1;
// A JoinGroup or SyncGroup waits for the whole group; Java allows the rebalance timeout plus this.
constexpr Duration kJoinDeadlineSlack = seconds(5);
// JoinGroup attempts in one rebalance (MEMBER_ID_REQUIRED and REBALANCE_IN_PROGRESS retry at once).
constexpr int kJoinAttemptsMax = 8;

std::int16_t error_of(const StructValue& body) {
  return static_cast<std::int16_t>(body.get_int("error_code"));
}

std::int32_t int32_of(const StructValue& body, std::string_view field) {
  return static_cast<std::int32_t>(body.get_int(field));
}

std::int32_t milliseconds_of(Duration duration) {
  return static_cast<std::int32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(duration).count());
}

Value nullable_string(const std::optional<std::string>& text) {
  return text ? Value(*text) : Value(protocol::Null{});
}

Value bytes_value(std::string_view text) {
  const auto bytes = as_bytes(text);
  return Value(Bytes(bytes.begin(), bytes.end()));
}

std::string text_of(const Value& value) {
  if (value.is_null()) return {};
  return std::string(as_text(value.as_bytes()));
}

checkers::TopicPartition to_checker(const TopicPartition& partition) {
  return {partition.topic, partition.partition};
}

// Partitions grouped by topic, in order: the shape of every request's topic list.
std::map<std::string, std::vector<std::int32_t>> by_topic(const TopicPartitions& partitions) {
  std::map<std::string, std::vector<std::int32_t>> grouped;
  for (const auto& [topic, partition] : partitions) grouped[topic].push_back(partition);
  return grouped;
}

}  // namespace

// One incarnation of the consumer: its connections, member state and positions.
class SimConsumer::Instance {
 public:
  Instance(Env& env, checkers::History& history, const SimConsumerConfig& config, Stats& stats)
      : env_(env), history_(history), config_(config), stats_(stats) {
    bootstrap_.address = config.bootstrap;
  }

  void run_main();
  void run_heartbeats();
  void request_close() {
    closing_ = true;
    wake_.set();
  }
  Event& closed() { return closed_; }

  std::int32_t generation() const { return state_ == MemberState::stable ? generation_ : -1; }
  const std::string& member_id() const { return member_id_; }
  TopicPartitions assigned_partitions() const {
    TopicPartitions partitions;
    for (const auto& [partition, position] : owned_) partitions.push_back(partition);
    return partitions;
  }

 private:
  enum class MemberState : std::uint8_t { unjoined, joining, stable, stopped };

  // A connection to one broker, made on first use and again after it breaks. Callers hold the
  // shared_ptr for the length of their call, so replacing it never pulls it from under them.
  struct Link {
    Address address;
    std::shared_ptr<KafkaConnection> connection;
    Mutex connecting;
  };

  struct Position {
    std::int64_t offset = -1;     // the next offset to fetch; -1: not known yet
    std::int64_t committed = -1;  // the group's committed offset as far as this member knows
    bool reset_needed = false;    // no usable committed offset: ListOffsets decides
    bool polled = false;          // `offset` was reached by this member's own fetches
  };

  struct JoinedMember {
    std::string member_id;
    std::optional<std::string> group_instance_id;
    std::string metadata;
  };
  struct Joined {
    std::int16_t error = code::none;
    std::int32_t generation = -1;
    std::string member_id;
    std::string leader;
    std::string protocol_name;
    std::vector<JoinedMember> members = {};  // the leader's only
  };

  // ---- connections
  Result<std::shared_ptr<KafkaConnection>> connected(Link& link, Instant deadline);
  Result<StructValue> call(Link& link, const protocol::MessageSchema& schema,
                           const StructValue& request, Instant deadline);
  Link& leader_link(std::int32_t node_id);

  // ---- the main loop's steps
  void step();
  void backoff();
  bool find_coordinator();
  bool refresh_metadata(const std::vector<std::string>& topics);
  bool refresh_group_metadata();
  void audit_assignment();
  std::map<std::string, std::int32_t> assigned_topic_counts() const;
  bool rebalance();
  std::optional<Joined> join_group();
  std::optional<TopicPartitions> sync_group(const Joined& joined, bool& rejoin_at_once);
  std::optional<GroupAssignment> leader_assignments(const Joined& joined);
  void apply_assignment(std::int32_t generation, const TopicPartitions& assigned);
  void on_group_error(std::int16_t error, std::string_view context);
  void on_connection_error(const ClientError& error, std::string_view context);
  bool fetch_missing_positions();
  bool fetch_committed_offsets();
  bool reset_positions();
  bool poll_once();
  void fetch_from(std::int32_t leader, const TopicPartitions& partitions,
                  std::vector<checkers::RecordRef>& polled);
  void read_batches(const TopicPartition& partition, std::span<const std::byte> bytes,
                    Position& position, std::vector<checkers::RecordRef>& polled);
  void maybe_commit(bool polled);
  // A synchronous OffsetCommit of what this member's own polls reached in `partitions` (the
  // history's contract) and is not committed yet; nothing to commit, no request.
  void commit(const TopicPartitions& partitions);
  std::vector<checkers::CommittedOffset> committable(const TopicPartitions& partitions) const;
  StructValue commit_request(const std::vector<checkers::CommittedOffset>& offsets) const;
  std::int16_t read_commit_response(const StructValue& response, checkers::Op& done);
  void revoke(const TopicPartitions& partitions, std::int32_t generation);
  void lose_partitions();
  // librdkafka's session timeout check: a member that has had no proof of life from the
  // coordinator for session_timeout (counted from when the proving request was sent, so never
  // later than the coordinator's own count) must assume it was expired and its partitions given
  // to others, and must not commit them: it loses them and joins again under a new member id.
  void note_alive(Instant sent) { session_expires_at_ = sent + config_.session_timeout; }
  bool expire_session_if_due();
  void leave_group();
  void shut_down();

  // ---- history
  checkers::Op new_op(checkers::OpType type, std::string_view f) const;
  // (No reference into the history is kept: other fibers append to it meanwhile.)
  void record(checkers::Op op) { history_.add(std::move(op)); }

  std::string subscription_bytes() const;
  const Log& log() const { return env_.log(); }

  Env& env_;
  checkers::History& history_;
  const SimConsumerConfig& config_;
  Stats& stats_;

  Link bootstrap_;
  Link coordinator_;
  bool coordinator_known_ = false;
  std::map<std::int32_t, std::unique_ptr<Link>> leader_links_;

  // Metadata: partition counts, leaders, broker addresses.
  TopicPartitionCounts partition_counts_;
  std::map<TopicPartition, std::int32_t> leaders_;
  std::map<std::int32_t, Address> brokers_;
  bool metadata_stale_ = true;
  Instant metadata_refresh_at_{};
  // As the leader of the current generation: the partition count of every subscribed topic its
  // assignment was made from (0: unknown). Empty when not the leader.
  std::map<std::string, std::int32_t> leader_topic_counts_;
  // As the leader: when to audit the group's assignment (see audit_assignment), if this
  // generation needs it; audit_wanted_ is decided during SyncGroup, audit_at_ once it succeeds.
  bool audit_wanted_ = false;
  bool joined_before_ = false;  // this instance completed a SyncGroup
  std::optional<Instant> audit_at_;

  MemberState state_ = MemberState::unjoined;
  std::string member_id_;
  std::int32_t generation_ = -1;
  bool rejoin_needed_ = true;
  std::optional<std::int16_t> heartbeat_error_;  // set by the heartbeat fiber for the main one
  std::optional<Instant> session_expires_at_;     // while in a generation (see note_alive)
  std::map<TopicPartition, Position> owned_;
  Instant next_commit_at_{};

  bool closing_ = false;
  Event wake_;    // the main fiber's backoff and idle waits end early on it
  Event closed_;  // set when the main fiber has finished
};

// ---- Connections

Result<std::shared_ptr<KafkaConnection>> SimConsumer::Instance::connected(Link& link,
                                                                          Instant deadline) {
  if (!link.connecting.lock(deadline)) {
    return std::unexpected(ClientError{.message = "timed out waiting for a connection attempt"});
  }
  struct Unlock {
    Mutex& mutex;
    ~Unlock() { mutex.unlock(); }
  } unlock{link.connecting};
  if (link.connection && !link.connection->broken()) return link.connection;
  const Duration remaining = deadline - env_.now();
  // The deadline may have passed while this waited for the lock (another attempt was connecting).
  if (remaining <= Duration::zero()) {
    return std::unexpected(ClientError{.message = "timed out waiting for a connection attempt"});
  }
  client::ConnectionOptions options{
      .client_id = config_.client_id,
      .connect_timeout = std::min(remaining, config_.request_timeout),
      .request_timeout = config_.request_timeout};
  auto connection = KafkaConnection::connect(env_, link.address, std::move(options));
  if (!connection) return std::unexpected(connection.error());
  link.connection = std::shared_ptr<KafkaConnection>(std::move(*connection));
  return link.connection;
}

Result<StructValue> SimConsumer::Instance::call(Link& link, const protocol::MessageSchema& schema,
                                                const StructValue& request, Instant deadline) {
  auto connection = connected(link, deadline);
  if (!connection) return std::unexpected(connection.error());
  return (*connection)->call(schema, request, deadline);
}

SimConsumer::Instance::Link& SimConsumer::Instance::leader_link(std::int32_t node_id) {
  auto& link = leader_links_[node_id];
  if (!link) link = std::make_unique<Link>();
  const auto broker = brokers_.find(node_id);
  if (broker != brokers_.end() && link->address != broker->second) {
    link->address = broker->second;
    link->connection.reset();
  }
  return *link;
}

// ---- The main fiber

void SimConsumer::Instance::run_main() {
  next_commit_at_ = env_.deadline_after(config_.commit_interval);
  while (!closing_ && state_ != MemberState::stopped) step();
  if (state_ != MemberState::stopped) shut_down();
  closed_.set();
}

void SimConsumer::Instance::step() {
  // First: a member back from a long stall must not act (commit) on what it no longer owns.
  expire_session_if_due();
  if (heartbeat_error_) {
    const std::int16_t error = *heartbeat_error_;
    heartbeat_error_.reset();
    on_group_error(error, "Heartbeat");
    if (state_ == MemberState::stopped) return;
  }
  if (!coordinator_known_ && !find_coordinator()) return backoff();
  if (state_ == MemberState::stable && audit_at_ && env_.now() >= *audit_at_) {
    audit_at_.reset();
    audit_assignment();
  }
  if (rejoin_needed_ && !rebalance()) return backoff();
  if ((metadata_stale_ || env_.now() >= metadata_refresh_at_) && !refresh_group_metadata()) {
    return backoff();
  }
  if (!fetch_missing_positions()) return backoff();
  if (owned_.empty()) {
    wake_.reset();
    wake_.wait(env_.deadline_after(config_.fetch_wait_max));
    return;
  }
  maybe_commit(poll_once());
}

void SimConsumer::Instance::backoff() {
  if (closing_) return;
  wake_.reset();
  wake_.wait(env_.deadline_after(config_.retry_backoff));
}

bool SimConsumer::Instance::find_coordinator() {
  StructValue request = KafkaConnection::new_request(protocol::kFindCoordinatorSchema);
  request.set("key", Value(config_.group_id)).set("key_type", protocol::int_value(0));
  auto response = call(bootstrap_, protocol::kFindCoordinatorSchema, request,
                       env_.deadline_after(config_.request_timeout));
  if (!response) {
    log().debug("{}: FindCoordinator: {}", config_.process, response.error().message);
    return false;
  }
  if (error_of(*response) != code::none) return false;
  const Address address{response->get_string("host"),
                        static_cast<std::uint16_t>(response->get_int("port"))};
  if (coordinator_.address != address) {
    coordinator_.address = address;
    coordinator_.connection.reset();
  }
  coordinator_known_ = true;
  return true;
}

bool SimConsumer::Instance::refresh_metadata(const std::vector<std::string>& topics) {
  StructValue request = KafkaConnection::new_request(protocol::kMetadataSchema);
  for (const auto& topic : topics) {
    StructValue& entry = request.add("topics");
    entry.set("name", Value(topic));
  }
  request.set("allow_auto_topic_creation", Value(false));
  auto response = call(bootstrap_, protocol::kMetadataSchema, request,
                       env_.deadline_after(config_.request_timeout));
  if (!response) return false;
  for (const StructValue& broker : response->get_structs("brokers")) {
    brokers_[int32_of(broker, "node_id")] =
        Address{broker.get_string("host"), static_cast<std::uint16_t>(broker.get_int("port"))};
  }
  for (const StructValue& topic : response->get_structs("topics")) {
    const std::string& name = topic.get_string("name");
    if (const std::int16_t error = error_of(topic); error != code::none) {
      // Only a topic that is gone loses its count; other errors are transient.
      if (error == code::unknown_topic_or_partition) partition_counts_.erase(name);
      continue;
    }
    const auto& partitions = topic.get_structs("partitions");
    partition_counts_[name] = static_cast<std::int32_t>(partitions.size());
    for (const StructValue& partition : partitions) {
      leaders_[{name, int32_of(partition, "partition_index")}] = int32_of(partition, "leader_id");
    }
  }
  metadata_stale_ = false;
  return true;
}

// Refreshes the metadata of every topic this member reads or, as leader, assigned. A leader
// whose topics changed partition counts (or appeared) rejoins, so the group's assignment follows,
// as Java's ConsumerCoordinator does on a metadata change.
bool SimConsumer::Instance::refresh_group_metadata() {
  std::set<std::string> topics(config_.topics.begin(), config_.topics.end());
  for (const auto& [topic, count] : leader_topic_counts_) topics.insert(topic);
  if (!refresh_metadata(std::vector<std::string>(topics.begin(), topics.end()))) return false;
  metadata_refresh_at_ = env_.deadline_after(config_.metadata_max_age);
  if (state_ == MemberState::stable && leader_topic_counts_ != assigned_topic_counts()) {
    log().debug("{}: partitions changed: rejoining to reassign", config_.process);
    rejoin_needed_ = true;
  }
  return true;
}

// The partition count of each topic of leader_topic_counts_ as the metadata has it now (0: the
// topic is unknown).
std::map<std::string, std::int32_t> SimConsumer::Instance::assigned_topic_counts() const {
  std::map<std::string, std::int32_t> counts;
  for (const auto& [topic, count] : leader_topic_counts_) {
    const auto known = partition_counts_.find(topic);
    counts[topic] = known == partition_counts_.end() ? 0 : known->second;
  }
  return counts;
}

// The audit of a cooperative group. Members that give partitions up rejoin at once, which hands
// them over in the next generation; a static member that restarts meanwhile rejoins without a
// rebalance, though, and then nobody does. So a leader whose assignment held partitions back, and
// a static member in the first generation of a new instance, check the group's assignment with
// DescribeGroups once the session timeout has passed in the same generation, and rebalance if a
// subscribed partition has no owner.
void SimConsumer::Instance::audit_assignment() {
  StructValue request = KafkaConnection::new_request(protocol::kDescribeGroupsSchema);
  request.set("groups", Value(Value::Array{Value(config_.group_id)}));
  auto response = call(coordinator_, protocol::kDescribeGroupsSchema, request,
                       env_.deadline_after(config_.request_timeout));
  if (!response || response->get_structs("groups").empty()) {
    audit_at_ = env_.deadline_after(config_.retry_backoff);  // try again
    return;
  }
  const StructValue& described = response->get_structs("groups").front();
  if (error_of(described) != code::none || described.get_string("group_state") != "Stable") return;
  std::set<std::string> topics;
  std::set<TopicPartition> owned;
  for (const StructValue& member : described.get_structs("members")) {
    if (auto subscription =
            group::decode_consumer_subscription(text_of(member["member_metadata"]))) {
      topics.insert(subscription->topics.begin(), subscription->topics.end());
    }
    if (auto assignment = group::decode_consumer_assignment(text_of(member["member_assignment"]))) {
      const auto partitions = from_consumer_protocol(assignment->partitions);
      owned.insert(partitions.begin(), partitions.end());
    }
  }
  if (!refresh_metadata(std::vector<std::string>(topics.begin(), topics.end()))) {
    audit_at_ = env_.deadline_after(config_.retry_backoff);
    return;
  }
  for (const auto& topic : topics) {
    const auto count = partition_counts_.find(topic);
    if (count == partition_counts_.end()) continue;
    for (std::int32_t partition = 0; partition < count->second; ++partition) {
      if (owned.contains({topic, partition})) continue;
      log().debug("{}: {}-{} has no owner: rebalancing", config_.process, topic, partition);
      rejoin_needed_ = true;
      return;
    }
  }
}

// ---- Rebalance

std::string SimConsumer::Instance::subscription_bytes() const {
  group::ConsumerSubscription subscription{.topics = config_.topics};
  if (!is_cooperative(config_.assignor)) return group::encode_consumer_subscription(subscription);
  // KIP-429: the owned partitions (v1) and their generation (v2) let the leader keep them.
  subscription.owned_partitions = to_consumer_protocol(assigned_partitions());
  subscription.generation = owned_.empty() ? -1 : generation_;
  return group::encode_consumer_subscription(subscription, 2);
}

bool SimConsumer::Instance::rebalance() {
  if (!is_cooperative(config_.assignor) && !owned_.empty()) {
    // Eager: everything is given up (after a last commit) before the join.
    commit(assigned_partitions());
    if (!owned_.empty()) revoke(assigned_partitions(), generation_);
    if (state_ == MemberState::stopped) return false;  // the commit was fenced
  }
  for (int attempt = 0; attempt < kJoinAttemptsMax && !closing_; ++attempt) {
    state_ = MemberState::joining;
    const auto joined = join_group();
    if (!joined) return false;
    if (joined->error == code::member_id_required) {
      member_id_ = joined->member_id;  // KIP-394: join again under the id the broker chose
      continue;
    }
    if (joined->error == code::rebalance_in_progress) continue;
    if (joined->error != code::none) {
      on_group_error(joined->error, "JoinGroup");
      return false;
    }
    member_id_ = joined->member_id;
    bool rejoin_at_once = false;
    const auto assigned = sync_group(*joined, rejoin_at_once);
    if (!assigned) {
      if (rejoin_at_once) continue;
      return false;
    }
    apply_assignment(joined->generation, *assigned);
    return true;
  }
  return false;
}

std::optional<SimConsumer::Instance::Joined> SimConsumer::Instance::join_group() {
  StructValue request = KafkaConnection::new_request(protocol::kJoinGroupSchema);
  request.set("group_id", Value(config_.group_id))
      .set("session_timeout_ms", protocol::int_value(milliseconds_of(config_.session_timeout)))
      .set("rebalance_timeout_ms", protocol::int_value(milliseconds_of(config_.rebalance_timeout)))
      .set("member_id", Value(member_id_))
      .set("group_instance_id", nullable_string(config_.group_instance_id))
      .set("protocol_type", Value(std::string("consumer")));
  StructValue& protocol = request.add("protocols");
  protocol.set("name", Value(std::string(protocol_name(config_.assignor))))
      .set("metadata", bytes_value(subscription_bytes()));
  auto response = call(coordinator_, protocol::kJoinGroupSchema, request,
                       env_.deadline_after(config_.rebalance_timeout + kJoinDeadlineSlack));
  if (!response) {
    on_connection_error(response.error(), "JoinGroup");
    return std::nullopt;
  }
  Joined joined{.error = error_of(*response),
                .generation = int32_of(*response, "generation_id"),
                .member_id = response->get_string("member_id"),
                .leader = response->get_string("leader"),
                .protocol_name = response->get_string("protocol_name")};
  for (const StructValue& member : response->get_structs("members")) {
    joined.members.push_back({member.get_string("member_id"),
                              member.get_nullable_string("group_instance_id"),
                              text_of(member["metadata"])});
  }
  return joined;
}

std::optional<GroupAssignment> SimConsumer::Instance::leader_assignments(const Joined& joined) {
  std::vector<MemberSubscription> members;
  std::set<std::string> topics;
  for (const JoinedMember& member : joined.members) {
    MemberSubscription subscription{.member_id = member.member_id,
                                    .group_instance_id = member.group_instance_id};
    if (auto decoded = group::decode_consumer_subscription(member.metadata)) {
      subscription.topics = decoded->topics;
      subscription.owned_partitions = from_consumer_protocol(decoded->owned_partitions);
      subscription.generation = decoded->generation;
    }
    topics.insert(subscription.topics.begin(), subscription.topics.end());
    members.push_back(std::move(subscription));
  }
  if (!refresh_metadata(std::vector<std::string>(topics.begin(), topics.end())))
    return std::nullopt;
  for (const auto& topic : topics) leader_topic_counts_[topic] = 0;
  leader_topic_counts_ = assigned_topic_counts();
  const auto strategy =
      strategy_from_protocol_name(joined.protocol_name).value_or(config_.assignor);
  GroupAssignment assignment = assign(strategy, partition_counts_, members);
  std::size_t assigned = 0, subscribed = 0;
  for (const auto& [member, partitions] : assignment) assigned += partitions.size();
  for (const auto& [topic, count] : leader_topic_counts_)
    subscribed += static_cast<std::size_t>(count);
  if (assigned < subscribed) audit_wanted_ = true;  // cooperative: some partitions still move
  return assignment;
}

std::optional<TopicPartitions> SimConsumer::Instance::sync_group(const Joined& joined,
                                                                 bool& rejoin_at_once) {
  StructValue request = KafkaConnection::new_request(protocol::kSyncGroupSchema);
  request.set("group_id", Value(config_.group_id))
      .set("generation_id", protocol::int_value(joined.generation))
      .set("member_id", Value(member_id_))
      .set("group_instance_id", nullable_string(config_.group_instance_id));
  leader_topic_counts_.clear();  // both set again if this member leads this generation
  // A static member's first generation may be a replacement without a rebalance, in a group
  // whose cooperative handover its previous instance cut short (see audit_assignment).
  audit_wanted_ = is_cooperative(config_.assignor) && config_.group_instance_id && !joined_before_;
  if (joined.leader == member_id_ && !joined.members.empty()) {
    const auto assignments = leader_assignments(joined);
    if (!assignments) return std::nullopt;
    log().debug("{}: leads generation {} of {} members", config_.process, joined.generation,
                joined.members.size());
    for (const auto& [member, partitions] : *assignments) {
      StructValue& entry = request.add("assignments");
      entry.set("member_id", Value(member))
          .set("assignment", bytes_value(group::encode_consumer_assignment(
                                 {.partitions = to_consumer_protocol(partitions)})));
    }
  }
  const Instant sent = env_.now();
  auto response = call(coordinator_, protocol::kSyncGroupSchema, request,
                       env_.deadline_after(config_.rebalance_timeout + kJoinDeadlineSlack));
  if (!response) {
    on_connection_error(response.error(), "SyncGroup");
    return std::nullopt;
  }
  const std::int16_t error = error_of(*response);
  if (error == code::rebalance_in_progress) {
    rejoin_at_once = true;
    return std::nullopt;
  }
  if (error != code::none) {
    on_group_error(error, "SyncGroup");
    return std::nullopt;
  }
  note_alive(sent);
  const auto assignment = group::decode_consumer_assignment(text_of((*response)["assignment"]));
  // An empty assignment (no bytes) is a member given nothing.
  return assignment ? from_consumer_protocol(assignment->partitions) : TopicPartitions{};
}

void SimConsumer::Instance::apply_assignment(std::int32_t generation,
                                             const TopicPartitions& assigned) {
  assert(generation >= 0);
  assert(is_cooperative(config_.assignor) || owned_.empty());  // eager members revoked it all
  const std::set<TopicPartition> assigned_set(assigned.begin(), assigned.end());
  TopicPartitions revoked;
  for (const auto& [partition, position] : owned_) {
    if (!assigned_set.contains(partition)) revoked.push_back(partition);
  }
  const std::int32_t previous_generation = generation_;
  generation_ = generation;
  state_ = MemberState::stable;
  rejoin_needed_ = false;
  ++stats_.generations_joined;
  joined_before_ = true;
  if (!revoked.empty()) {
    // Cooperative: hand over what moves, committed, then rejoin so its new owner can have it.
    commit(revoked);
    if (state_ != MemberState::stable) return;  // the commit found this generation over
    revoke(revoked, previous_generation);
    rejoin_needed_ = true;
  }
  for (const auto& partition : assigned) owned_.try_emplace(partition);
  audit_at_.reset();
  if (audit_wanted_) audit_at_ = env_.deadline_after(config_.session_timeout);
  checkers::Op op = new_op(checkers::OpType::ok, "assign");
  op.generation = generation;
  for (const auto& partition : assigned) op.partitions.push_back(to_checker(partition));
  record(std::move(op));
  log().debug("{}: generation {} assigned {} partitions", config_.process, generation,
              assigned.size());
}

void SimConsumer::Instance::on_group_error(std::int16_t error, std::string_view context) {
  log().debug("{}: {}: {}", config_.process, context, client::kafka_error_name(error));
  switch (group_action(error)) {
    case GroupAction::proceed:
    case GroupAction::retry:
      return;
    case GroupAction::find_coordinator:
      coordinator_known_ = false;
      return;
    case GroupAction::rejoin:
      rejoin_needed_ = true;
      return;
    case GroupAction::reset_member:
      member_id_.clear();
      [[fallthrough]];
    case GroupAction::reset_generation:
      lose_partitions();
      generation_ = -1;
      state_ = MemberState::unjoined;
      rejoin_needed_ = true;
      return;
    case GroupAction::fatal:
      lose_partitions();
      stats_.fatal_error =
          std::string(context) + ": " + std::string(client::kafka_error_name(error));
      state_ = MemberState::stopped;
      return;
  }
}

void SimConsumer::Instance::on_connection_error(const ClientError& error,
                                                std::string_view context) {
  log().debug("{}: {}: {}", config_.process, context, error.message);
  // The coordinator may have moved: ask again, as librdkafka does after a transport error.
  coordinator_known_ = false;
}

// ---- Positions

bool SimConsumer::Instance::fetch_missing_positions() {
  if (!fetch_committed_offsets()) return false;
  return reset_positions();
}

bool SimConsumer::Instance::fetch_committed_offsets() {
  TopicPartitions unknown;
  for (const auto& [partition, position] : owned_) {
    if (position.offset < 0 && !position.reset_needed) unknown.push_back(partition);
  }
  if (unknown.empty()) return true;
  StructValue request = KafkaConnection::new_request(protocol::kOffsetFetchSchema);
  request.set("group_id", Value(config_.group_id));
  for (const auto& [topic, numbers] : by_topic(unknown)) {
    StructValue& entry = request.add("topics");
    Value::Array indexes;
    for (std::int32_t number : numbers) indexes.push_back(protocol::int_value(number));
    entry.set("name", Value(topic)).set("partition_indexes", Value(std::move(indexes)));
  }
  auto response = call(coordinator_, protocol::kOffsetFetchSchema, request,
                       env_.deadline_after(config_.request_timeout));
  if (!response) {
    on_connection_error(response.error(), "OffsetFetch");
    return false;
  }
  if (const std::int16_t error = error_of(*response); error != code::none) {
    on_group_error(error, "OffsetFetch");
    return false;
  }
  for (const StructValue& topic : response->get_structs("topics")) {
    for (const StructValue& partition : topic.get_structs("partitions")) {
      auto owned = owned_.find({topic.get_string("name"), int32_of(partition, "partition_index")});
      if (owned == owned_.end() || error_of(partition) != code::none) continue;
      const std::int64_t committed = partition.get_int("committed_offset");
      owned->second.committed = committed;
      if (committed >= 0) {
        owned->second.offset = committed;
      } else {
        owned->second.reset_needed = true;
      }
    }
  }
  return true;
}

// auto.offset.reset: ListOffsets at the log start (earliest) or end (latest).
bool SimConsumer::Instance::reset_positions() {
  std::map<std::int32_t, TopicPartitions> by_leader;
  for (const auto& [partition, position] : owned_) {
    if (!position.reset_needed) continue;
    const auto leader = leaders_.find(partition);
    if (leader == leaders_.end()) {
      metadata_stale_ = true;
      continue;
    }
    by_leader[leader->second].push_back(partition);
  }
  if (by_leader.empty()) return true;
  const std::int64_t timestamp =
      config_.auto_offset_reset == OffsetReset::earliest ? kEarliestTimestamp : kLatestTimestamp;
  for (const auto& [leader, partitions] : by_leader) {
    StructValue request = KafkaConnection::new_request(protocol::kListOffsetsSchema);
    request.set("replica_id", protocol::int_value(-1));
    for (const auto& [topic, numbers] : by_topic(partitions)) {
      StructValue& entry = request.add("topics");
      entry.set("name", Value(topic));
      for (std::int32_t number : numbers) {
        entry.add("partitions")
            .set("partition_index", protocol::int_value(number))
            .set("timestamp", Value(timestamp));
      }
    }
    auto response = call(leader_link(leader), protocol::kListOffsetsSchema, request,
                         env_.deadline_after(config_.request_timeout));
    if (!response) return false;
    for (const StructValue& topic : response->get_structs("topics")) {
      for (const StructValue& partition : topic.get_structs("partitions")) {
        auto owned =
            owned_.find({topic.get_string("name"), int32_of(partition, "partition_index")});
        if (owned == owned_.end()) continue;
        if (error_of(partition) != code::none) {
          metadata_stale_ = true;
          continue;
        }
        owned->second.offset = partition.get_int("offset");
        owned->second.reset_needed = false;
      }
    }
  }
  return std::ranges::none_of(owned_, [](const auto& entry) { return entry.second.offset < 0; });
}

// ---- Fetch

bool SimConsumer::Instance::poll_once() {
  std::map<std::int32_t, TopicPartitions> by_leader;
  for (const auto& [partition, position] : owned_) {
    const auto leader = leaders_.find(partition);
    if (leader == leaders_.end()) {
      metadata_stale_ = true;
      continue;
    }
    if (position.offset >= 0) by_leader[leader->second].push_back(partition);
  }
  std::vector<checkers::RecordRef> polled;
  for (const auto& [leader, partitions] : by_leader) fetch_from(leader, partitions, polled);
  if (polled.empty()) return false;
  stats_.records_polled += polled.size();
  checkers::Op op = new_op(checkers::OpType::ok, "poll");
  op.records = std::move(polled);
  record(std::move(op));
  return true;
}

void SimConsumer::Instance::fetch_from(std::int32_t leader, const TopicPartitions& partitions,
                                       std::vector<checkers::RecordRef>& polled) {
  StructValue request = KafkaConnection::new_request(protocol::kFetchSchema);
  request.set("replica_id", protocol::int_value(-1))
      .set("max_wait_ms", protocol::int_value(milliseconds_of(config_.fetch_wait_max)))
      .set("min_bytes", protocol::int_value(1))
      .set("max_bytes", protocol::int_value(config_.fetch_bytes_max))
      .set("session_id", protocol::int_value(0))
      .set("session_epoch", protocol::int_value(-1));  // a full fetch every time, like librdkafka
  for (const auto& [topic, numbers] : by_topic(partitions)) {
    StructValue& entry = request.add("topics");
    entry.set("topic", Value(topic));
    for (std::int32_t number : numbers) {
      entry.add("partitions")
          .set("partition", protocol::int_value(number))
          .set("fetch_offset", Value(owned_.at({topic, number}).offset))
          .set("partition_max_bytes", protocol::int_value(config_.partition_fetch_bytes_max));
    }
  }
  auto response = call(leader_link(leader), protocol::kFetchSchema, request,
                       env_.deadline_after(config_.fetch_wait_max + config_.request_timeout));
  if (!response || error_of(*response) != code::none) {
    metadata_stale_ = true;
    return;
  }
  for (const StructValue& topic : response->get_structs("responses")) {
    for (const StructValue& partition : topic.get_structs("partitions")) {
      const TopicPartition tp{topic.get_string("topic"), int32_of(partition, "partition_index")};
      auto owned = owned_.find(tp);
      if (owned == owned_.end()) continue;
      const std::int16_t error = error_of(partition);
      if (error == code::offset_out_of_range) {
        owned->second.offset = -1;
        owned->second.reset_needed = true;
        continue;
      }
      if (error != code::none) {
        metadata_stale_ = true;
        continue;
      }
      const Value& records = partition["records"];
      if (records.is_null()) continue;
      read_batches(tp, records.as_bytes(), owned->second, polled);
    }
  }
}

// Whole batches from the one containing the position; a truncated last batch is dropped, as
// clients do. A batch that fails its CRC or cannot be decoded stops the partition there.
void SimConsumer::Instance::read_batches(const TopicPartition& partition,
                                         std::span<const std::byte> bytes, Position& position,
                                         std::vector<checkers::RecordRef>& polled) {
  while (!bytes.empty()) {
    const auto header = storage::parse_batch_header(bytes, /*require_complete=*/false);
    if (!header || header->size_bytes() > bytes.size()) return;
    const auto batch = bytes.first(header->size_bytes());
    bytes = bytes.subspan(header->size_bytes());
    if (header->last_offset() < position.offset) continue;
    if (!storage::validate_stored_batch(batch)) {
      log().warn("{}: {}-{}: corrupt batch at offset {}", config_.process, partition.topic,
                 partition.partition, header->base_offset);
      return;
    }
    if (!header->control()) {
      const auto records = storage::decode_records(batch);
      if (!records) return;
      for (const storage::RecordView& record : *records) {
        if (record.offset < position.offset) continue;
        polled.push_back({.tp = to_checker(partition),
                          .key = std::string(record.key.value_or("")),
                          .value = std::string(record.value.value_or("")),
                          .offset = record.offset});
      }
    }
    position.offset = header->last_offset() + 1;
    position.polled = true;
  }
}

// ---- Commit

void SimConsumer::Instance::maybe_commit(bool polled) {
  if (config_.commit_mode == CommitMode::after_each_poll) {
    if (polled) commit(assigned_partitions());
    return;
  }
  if (env_.now() < next_commit_at_) return;
  next_commit_at_ = env_.deadline_after(config_.commit_interval);
  commit(assigned_partitions());
}

std::vector<checkers::CommittedOffset> SimConsumer::Instance::committable(
    const TopicPartitions& partitions) const {
  std::vector<checkers::CommittedOffset> offsets;
  for (const auto& partition : partitions) {
    const auto owned = owned_.find(partition);
    if (owned == owned_.end()) continue;
    const Position& position = owned->second;
    if (position.polled && position.offset > position.committed) {
      offsets.push_back({to_checker(partition), position.offset});
    }
  }
  return offsets;
}

StructValue SimConsumer::Instance::commit_request(
    const std::vector<checkers::CommittedOffset>& offsets) const {
  StructValue request = KafkaConnection::new_request(protocol::kOffsetCommitSchema);
  request.set("group_id", Value(config_.group_id))
      .set("generation_id_or_member_epoch", protocol::int_value(generation_))
      .set("member_id", Value(member_id_))
      .set("group_instance_id", nullable_string(config_.group_instance_id))
      .set("retention_time_ms", protocol::int_value(-1));
  std::map<std::string, std::vector<std::pair<std::int32_t, std::int64_t>>> by_topic;
  for (const auto& [partition, offset] : offsets) {
    by_topic[partition.topic].emplace_back(partition.partition, offset);
  }
  for (const auto& [name, partitions] : by_topic) {
    StructValue& topic = request.add("topics");
    topic.set("name", Value(name));
    for (const auto& [partition, offset] : partitions) {
      topic.add("partitions")
          .set("partition_index", protocol::int_value(partition))
          .set("committed_offset", Value(offset))
          .set("committed_metadata", Value(std::string()));
    }
  }
  return request;
}

void SimConsumer::Instance::commit(const TopicPartitions& partitions) {
  if (expire_session_if_due()) return;
  checkers::Op invoke = new_op(checkers::OpType::invoke, "commit");
  invoke.generation = generation_;
  invoke.offsets = committable(partitions);
  if (invoke.offsets.empty()) return;
  assert(generation_ >= 0 && "only owned partitions have offsets to commit");
  const StructValue request = commit_request(invoke.offsets);
  checkers::Op done = invoke;  // the completion names the same generation and offsets
  record(std::move(invoke));
  auto response = call(coordinator_, protocol::kOffsetCommitSchema, request,
                       env_.deadline_after(config_.request_timeout));
  done.time_ns = env_.now().time_since_epoch().count();
  if (!response) {
    // Nothing written is a certain failure; a request lost after it was written is unknown.
    done.type = response.error().request_written ? checkers::OpType::info : checkers::OpType::fail;
    done.error = response.error().message;
    record(std::move(done));
    on_connection_error(response.error(), "OffsetCommit");
    return;
  }
  const std::int16_t error = read_commit_response(*response, done);
  record(std::move(done));
  if (error != code::none) on_group_error(error, "OffsetCommit");
}

// Notes what the coordinator stored and sets the completion's type: ok when every partition
// was stored, fail when none was and the error says it was refused, info otherwise. Returns the
// first error.
std::int16_t SimConsumer::Instance::read_commit_response(const StructValue& response,
                                                         checkers::Op& done) {
  std::int16_t first_error = code::none;
  bool some_stored = false;
  for (const StructValue& topic : response.get_structs("topics")) {
    for (const StructValue& partition : topic.get_structs("partitions")) {
      const std::int16_t error = error_of(partition);
      if (error != code::none) {
        if (first_error == code::none) first_error = error;
        continue;
      }
      some_stored = true;
      const TopicPartition stored{topic.get_string("name"), int32_of(partition, "partition_index")};
      const auto committed = std::ranges::find_if(
          done.offsets, [&](const auto& entry) { return entry.tp == to_checker(stored); });
      auto owned = owned_.find(stored);
      if (owned != owned_.end() && committed != done.offsets.end()) {
        owned->second.committed = committed->offset;
      }
    }
  }
  done.type = checkers::OpType::ok;
  if (first_error != code::none) {
    done.type = !some_stored && commit_certainly_refused(first_error) ? checkers::OpType::fail
                                                                      : checkers::OpType::info;
    done.error = std::string(client::kafka_error_name(first_error));
  }
  return first_error;
}

// ---- Giving partitions up

void SimConsumer::Instance::revoke(const TopicPartitions& partitions, std::int32_t generation) {
  assert(generation >= 0 && "owned partitions belong to a generation");
  assert(std::ranges::all_of(partitions, [&](const auto& p) { return owned_.contains(p); }));
  checkers::Op op = new_op(checkers::OpType::ok, "revoke");
  op.generation = generation;
  for (const auto& partition : partitions) {
    op.partitions.push_back(to_checker(partition));
    owned_.erase(partition);
  }
  record(std::move(op));
}

bool SimConsumer::Instance::expire_session_if_due() {
  if (!config_.session_check || !session_expires_at_ || env_.now() < *session_expires_at_) return false;
  if (state_ != MemberState::stable && owned_.empty()) return false;
  log().debug("{}: session timed out (no coordinator answer for {} ms): assignment lost",
              config_.process, milliseconds_of(config_.session_timeout));
  session_expires_at_.reset();
  lose_partitions();
  member_id_.clear();
  generation_ = -1;
  state_ = MemberState::unjoined;
  rejoin_needed_ = true;
  return true;
}

// The member is out of its generation: its partitions are gone, uncommitted.
void SimConsumer::Instance::lose_partitions() {
  if (owned_.empty()) return;
  revoke(assigned_partitions(), generation_);
}

void SimConsumer::Instance::leave_group() {
  StructValue request = KafkaConnection::new_request(protocol::kLeaveGroupSchema);
  request.set("group_id", Value(config_.group_id)).set("member_id", Value(member_id_));
  request.add("members")
      .set("member_id", Value(member_id_))
      .set("group_instance_id", Value(protocol::Null{}));
  auto response = call(coordinator_, protocol::kLeaveGroupSchema, request,
                       env_.deadline_after(config_.request_timeout));
  if (!response) log().debug("{}: LeaveGroup: {}", config_.process, response.error().message);
}

void SimConsumer::Instance::shut_down() {
  if (!owned_.empty()) {
    commit(assigned_partitions());
    if (!owned_.empty()) revoke(assigned_partitions(), generation_);
  }
  // Static members leave by session expiry only (KIP-345), so a restart does not rebalance.
  if (!config_.group_instance_id && !member_id_.empty() && coordinator_known_) leave_group();
  state_ = MemberState::stopped;
}

// ---- The heartbeat fiber

void SimConsumer::Instance::run_heartbeats() {
  while (true) {
    this_fiber::sleep_for(config_.heartbeat_interval);
    if (closing_ || state_ != MemberState::stable || heartbeat_error_ || !coordinator_known_) {
      continue;
    }
    const std::int32_t generation = generation_;
    const std::string member_id = member_id_;
    const Instant sent = env_.now();
    StructValue request = KafkaConnection::new_request(protocol::kHeartbeatSchema);
    request.set("group_id", Value(config_.group_id))
        .set("generation_id", protocol::int_value(generation))
        .set("member_id", Value(member_id))
        .set("group_instance_id", nullable_string(config_.group_instance_id));
    auto response =
        call(coordinator_, protocol::kHeartbeatSchema, request,
             env_.deadline_after(std::min(config_.request_timeout, config_.session_timeout)));
    // An answer about a generation the main fiber has already left is stale.
    if (state_ != MemberState::stable || generation != generation_ || member_id != member_id_) {
      continue;
    }
    if (!response) {
      on_connection_error(response.error(), "Heartbeat");
      continue;
    }
    const std::int16_t error = error_of(*response);
    // The coordinator counted it as a heartbeat (it restarts the session in a rebalance too).
    if (error == code::none || error == code::rebalance_in_progress) note_alive(sent);
    if (error != code::none) {
      heartbeat_error_ = error;
      wake_.set();
    }
  }
}

// ---- History

checkers::Op SimConsumer::Instance::new_op(checkers::OpType type, std::string_view f) const {
  checkers::Op op;
  op.process = config_.process;
  op.type = type;
  op.f = std::string(f);
  op.time_ns = env_.now().time_since_epoch().count();
  op.group = config_.group_id;
  return op;
}

// ---- SimConsumer

SimConsumer::SimConsumer(Env& env, Scope& parent, checkers::History& history,
                         SimConsumerConfig config)
    : env_(env), parent_(parent), history_(history), config_(std::move(config)) {
  assert(!config_.group_id.empty() && !config_.topics.empty());
}

SimConsumer::~SimConsumer() {
  stop_instance();
}

void SimConsumer::start() {
  assert(instance_ == nullptr && "start() on a running consumer");
  ++incarnation_;
  stats_.fatal_error.reset();
  instance_ = std::make_unique<Instance>(env_, history_, config_, stats_);
  scope_ = std::make_unique<Scope>(parent_, config_.process + "#" + std::to_string(incarnation_));
  Instance* instance = instance_.get();
  scope_->spawn(config_.process + "/main", [instance] { instance->run_main(); });
  scope_->spawn(config_.process + "/heartbeat", [instance] { instance->run_heartbeats(); });
}

void SimConsumer::close(Instant deadline) {
  if (instance_ == nullptr) return;
  instance_->request_close();
  // Not done in time: it ends as a killed process would, and the history says so.
  if (!instance_->closed().wait(deadline)) record_process_event("crash");
  stop_instance();
}

void SimConsumer::crash() {
  if (instance_ == nullptr) return;
  record_process_event("crash");
  stop_instance();
}

void SimConsumer::restart() {
  crash();
  record_process_event("restart");
  start();
}

void SimConsumer::pause() {
  if (scope_) scope_->pause();
}

void SimConsumer::resume() {
  if (scope_) scope_->resume();
}

void SimConsumer::stop_instance() {
  scope_.reset();  // unwinds the fibers first: they use the instance
  instance_.reset();
}

void SimConsumer::record_process_event(std::string_view f) {
  checkers::Op op;
  op.process = config_.process;
  op.type = checkers::OpType::info;
  op.f = std::string(f);
  op.time_ns = env_.now().time_since_epoch().count();
  history_.add(std::move(op));
}

bool SimConsumer::running() const {
  return instance_ != nullptr && !stats_.fatal_error;
}

const std::optional<std::string>& SimConsumer::fatal_error() const {
  return stats_.fatal_error;
}

std::int32_t SimConsumer::generation() const {
  return instance_ ? instance_->generation() : -1;
}

std::string SimConsumer::member_id() const {
  return instance_ ? instance_->member_id() : std::string();
}

TopicPartitions SimConsumer::assigned_partitions() const {
  return instance_ ? instance_->assigned_partitions() : TopicPartitions{};
}

std::uint64_t SimConsumer::records_polled() const {
  return stats_.records_polled;
}

std::uint64_t SimConsumer::generations_joined() const {
  return stats_.generations_joined;
}

}  // namespace sluice::scenarios::clients
