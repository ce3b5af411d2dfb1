// The consumer-group APIs of a simulated broker over the wire: FindCoordinator, the join / sync /
// heartbeat / leave protocol with a rebalance between two members, OffsetCommit generation
// checks, OffsetFetch, DescribeGroups, ListGroups, DeleteGroups, OffsetDelete; groups and offsets
// rebuilt from __consumer_offsets after a crash (and readable there in Kafka's record format);
// session expiry, offsets retention, and the internal topic's protections.

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "core/group/offsets_records.h"
#include "core/storage/record_batch.h"
#include "tests/kafka/broker_sim_client.h"

namespace sluice::kafka {
namespace {

using namespace kafka::testing;
namespace api = protocol::api;

constexpr std::int16_t kNone = 0;
constexpr std::int16_t kCoordinatorNotAvailable = 15;
constexpr std::int16_t kIllegalGeneration = 22;
constexpr std::int16_t kInvalidTopic = 17;
constexpr std::int16_t kUnknownMemberId = 25;
constexpr std::int16_t kRebalanceInProgress = 27;
constexpr std::int16_t kNonEmptyGroup = 68;
constexpr std::int16_t kGroupIdNotFound = 69;
constexpr std::int16_t kMemberIdRequired = 79;
constexpr std::int16_t kGroupSubscribedToTopic = 86;
constexpr std::int32_t kSessionTimeoutMs = 10'000;

Bytes bytes_of(std::string_view text) {
  return sim::testing::bytes_of(text);
}
std::string text_of(const Value& value) {
  return sim::testing::text_of(value.as_bytes());
}

struct Joined {
  std::int16_t error = 0;
  std::int32_t generation = -1;
  std::string member_id;
  std::string leader;
  std::string protocol_name;
  std::vector<std::string> members;  // the leader's only
};

Joined join_group(Stream& stream, std::string_view group_id, std::string_view member_id,
                  std::optional<std::string> instance_id = std::nullopt, std::int16_t version = 5) {
  StructValue request = request_of(api::kJoinGroup);
  request.set("group_id", Value(std::string(group_id)));
  request.set("session_timeout_ms", Value(std::int64_t{kSessionTimeoutMs}));
  request.set("rebalance_timeout_ms", Value(std::int64_t{kSessionTimeoutMs}));
  request.set("member_id", Value(std::string(member_id)));
  request.set("group_instance_id", instance_id ? Value(*instance_id) : Value(protocol::Null{}));
  request.set("protocol_type", Value(std::string("consumer")));
  StructValue& protocol = request.add("protocols");
  protocol.set("name", Value(std::string("range")));
  protocol.set("metadata",
               Value(bytes_of(group::encode_consumer_subscription({.topics = {"orders"}}))));
  const StructValue response = call(stream, api::kJoinGroup, version, request);
  Joined joined{.error = static_cast<std::int16_t>(response.get_int("error_code")),
                .generation = static_cast<std::int32_t>(response.get_int("generation_id")),
                .member_id = response.get_string("member_id"),
                .leader = response.get_string("leader"),
                .protocol_name = response.get_string("protocol_name"),
                .members = {}};
  for (const StructValue& member : response.get_structs("members"))
    joined.members.push_back(member.get_string("member_id"));
  return joined;
}

// A v5 join of a new dynamic member: MEMBER_ID_REQUIRED first, then the join with that id.
Joined join_new_member(Stream& stream, std::string_view group_id) {
  const Joined first = join_group(stream, group_id, "");
  EXPECT_EQ(first.error, kMemberIdRequired);
  EXPECT_FALSE(first.member_id.empty());
  return join_group(stream, group_id, first.member_id);
}

struct Synced {
  std::int16_t error = 0;
  std::string assignment;
};

Synced sync_group(Stream& stream, std::string_view group_id, const Joined& joined,
                  const std::map<std::string, std::string>& assignments = {}) {
  StructValue request = request_of(api::kSyncGroup);
  request.set("group_id", Value(std::string(group_id)));
  request.set("generation_id", Value(std::int64_t{joined.generation}));
  request.set("member_id", Value(joined.member_id));
  request.set("group_instance_id", Value(protocol::Null{}));
  for (const auto& [member, assignment] : assignments) {
    StructValue& entry = request.add("assignments");
    entry.set("member_id", Value(member));
    entry.set("assignment", Value(bytes_of(assignment)));
  }
  const StructValue response = call(stream, api::kSyncGroup, 3, request);
  return Synced{static_cast<std::int16_t>(response.get_int("error_code")),
                text_of(response["assignment"])};
}

std::int16_t heartbeat(Stream& stream, std::string_view group_id, const Joined& joined) {
  StructValue request = request_of(api::kHeartbeat);
  request.set("group_id", Value(std::string(group_id)));
  request.set("generation_id", Value(std::int64_t{joined.generation}));
  request.set("member_id", Value(joined.member_id));
  request.set("group_instance_id", Value(protocol::Null{}));
  return static_cast<std::int16_t>(call(stream, api::kHeartbeat, 3, request).get_int("error_code"));
}

std::int16_t leave_group(Stream& stream, std::string_view group_id, std::string_view member_id) {
  StructValue request = request_of(api::kLeaveGroup);
  request.set("group_id", Value(std::string(group_id)));
  request.set("member_id", Value(std::string(member_id)));
  return static_cast<std::int16_t>(
      call(stream, api::kLeaveGroup, 1, request).get_int("error_code"));
}

// OffsetCommit v7 of one partition of "orders"; returns its error.
std::int16_t commit(Stream& stream, std::string_view group_id, std::int32_t generation,
                    std::string_view member_id, std::int32_t partition, std::int64_t offset,
                    std::string_view topic = "orders") {
  StructValue request = request_of(api::kOffsetCommit);
  request.set("group_id", Value(std::string(group_id)));
  request.set("generation_id_or_member_epoch", Value(std::int64_t{generation}));
  request.set("member_id", Value(std::string(member_id)));
  request.set("group_instance_id", Value(protocol::Null{}));
  StructValue& topic_entry = request.add("topics");
  topic_entry.set("name", Value(std::string(topic)));
  StructValue& partition_entry = topic_entry.add("partitions");
  partition_entry.set("partition_index", Value(std::int64_t{partition}));
  partition_entry.set("committed_offset", Value(offset));
  partition_entry.set("committed_metadata", Value(std::string("meta")));
  const StructValue response = call(stream, api::kOffsetCommit, 7, request);
  return static_cast<std::int16_t>(
      response.get_structs("topics").at(0).get_structs("partitions").at(0).get_int("error_code"));
}

// OffsetFetch v5 of every committed partition: (topic, partition) -> offset.
std::map<std::pair<std::string, std::int64_t>, std::int64_t> fetch_offsets(
    Stream& stream, std::string_view group_id) {
  StructValue request = request_of(api::kOffsetFetch);
  request.set("group_id", Value(std::string(group_id)));
  request.set("topics", Value(protocol::Null{}));
  const StructValue response = call(stream, api::kOffsetFetch, 5, request);
  EXPECT_EQ(response.get_int("error_code"), kNone);
  std::map<std::pair<std::string, std::int64_t>, std::int64_t> offsets;
  for (const StructValue& topic : response.get_structs("topics")) {
    for (const StructValue& partition : topic.get_structs("partitions")) {
      offsets[{topic.get_string("name"), partition.get_int("partition_index")}] =
          partition.get_int("committed_offset");
    }
  }
  return offsets;
}

StructValue describe_group(Stream& stream, std::string_view group_id) {
  StructValue request = request_of(api::kDescribeGroups);
  request.set("groups", Value(Value::Array{Value(std::string(group_id))}));
  return call(stream, api::kDescribeGroups, 4, request).get_structs("groups").at(0);
}

std::int16_t delete_group(Stream& stream, std::string_view group_id) {
  StructValue request = request_of(api::kDeleteGroups);
  request.set("groups_names", Value(Value::Array{Value(std::string(group_id))}));
  return static_cast<std::int16_t>(call(stream, api::kDeleteGroups, 1, request)
                                       .get_structs("results")
                                       .at(0)
                                       .get_int("error_code"));
}

void create_orders_topic(Stream& stream) {
  StructValue request = request_of(api::kCreateTopics);
  StructValue& topic = request.add("topics");
  topic.set("name", Value(std::string("orders")));
  topic.set("num_partitions", Value(std::int64_t{4}));
  topic.set("replication_factor", Value(std::int64_t{1}));
  const StructValue response = call(stream, api::kCreateTopics, 4, request);
  ASSERT_EQ(response.get_structs("topics").at(0).get_int("error_code"), kNone);
}

class BrokerGroupSimTest : public ::testing::Test {
 protected:
  static void configure(BrokerConfig& config) {
    config.group.initial_rebalance_delay_ms = 0;
    config.offsets_topic_partitions = 5;
  }
  BrokerWorld broker_{configure};
};

TEST_F(BrokerGroupSimTest, find_coordinator_answers_this_node_for_groups_only) {
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    for (std::int16_t version : {0, 1, 2}) {
      StructValue request = request_of(api::kFindCoordinator);
      request.set("key", Value(std::string("g")));
      const StructValue response = call(*stream, api::kFindCoordinator, version, request);
      EXPECT_EQ(response.get_int("error_code"), kNone);
      EXPECT_EQ(response.get_string("host"), "broker");
      EXPECT_EQ(response.get_int("port"), kPort);
    }
    StructValue transactional = request_of(api::kFindCoordinator);
    transactional.set("key", Value(std::string("tx")));
    transactional.set("key_type", Value(std::int64_t{1}));
    EXPECT_EQ(call(*stream, api::kFindCoordinator, 2, transactional).get_int("error_code"),
              kCoordinatorNotAvailable);
  }));
}

TEST_F(BrokerGroupSimTest, two_members_rebalance_sync_commit_and_fence_stale_generations) {
  ASSERT_TRUE(broker_.run([&] {
    auto a = broker_.connect();
    auto b = broker_.connect();
    create_orders_topic(*a);
    const Joined first = join_new_member(*a, "g");
    ASSERT_EQ(first.error, kNone);
    EXPECT_EQ(first.generation, 1);
    EXPECT_EQ(first.leader, first.member_id);
    EXPECT_EQ(first.protocol_name, "range");
    ASSERT_EQ(sync_group(*a, "g", first, {{first.member_id, "all"}}).assignment, "all");
    EXPECT_EQ(commit(*a, "g", first.generation, first.member_id, 0, 10), kNone);

    // B joins: its join parks until A rejoins (A learns of it from its heartbeat).
    const Joined b_first = join_group(*b, "g", "");
    ASSERT_EQ(b_first.error, kMemberIdRequired);
    Joined b_joined;
    Event b_done;
    broker_.world().control_scope().spawn("member-b", [&] {
      b_joined = join_group(*b, "g", b_first.member_id);
      b_done.set();
    });
    this_fiber::sleep_for(milliseconds(50));
    EXPECT_FALSE(b_done.is_set());
    EXPECT_EQ(heartbeat(*a, "g", first), kRebalanceInProgress);
    const Joined second = join_group(*a, "g", first.member_id);
    ASSERT_TRUE(b_done.wait(kNever));
    ASSERT_EQ(second.error, kNone);
    ASSERT_EQ(b_joined.error, kNone);
    EXPECT_EQ(second.generation, 2);
    EXPECT_EQ(b_joined.generation, 2);
    EXPECT_EQ(second.members.size(), 2u);  // A leads (it joined first)
    EXPECT_TRUE(b_joined.members.empty());

    // Commits from the old generation are refused; the follower's sync waits for the leader's.
    EXPECT_EQ(commit(*a, "g", first.generation, first.member_id, 0, 11), kIllegalGeneration);
    Synced b_synced;
    Event b_synced_done;
    broker_.world().control_scope().spawn("member-b-sync", [&] {
      b_synced = sync_group(*b, "g", b_joined);
      b_synced_done.set();
    });
    const Synced a_synced =
        sync_group(*a, "g", second, {{second.member_id, "p0,p1"}, {b_joined.member_id, "p2,p3"}});
    ASSERT_TRUE(b_synced_done.wait(kNever));
    EXPECT_EQ(a_synced.assignment, "p0,p1");
    EXPECT_EQ(b_synced.assignment, "p2,p3");
    EXPECT_EQ(commit(*a, "g", second.generation, second.member_id, 0, 12), kNone);
    EXPECT_EQ(commit(*b, "g", second.generation, b_joined.member_id, 2, 20), kNone);
    EXPECT_EQ(commit(*b, "g", second.generation, "nobody", 2, 21), kUnknownMemberId);

    const StructValue described = describe_group(*a, "g");
    EXPECT_EQ(described.get_string("group_state"), "Stable");
    EXPECT_EQ(described.get_string("protocol_data"), "range");
    ASSERT_EQ(described.get_structs("members").size(), 2u);
    EXPECT_EQ(described.get_structs("members")[0].get_string("client_host").substr(0, 1), "/");
    const auto offsets = fetch_offsets(*a, "g");
    EXPECT_EQ(offsets.at({"orders", 0}), 12);
    EXPECT_EQ(offsets.at({"orders", 2}), 20);
    EXPECT_EQ(offsets.size(), 2u);

    // Both leave: the group is Empty and deletable; afterwards its offsets are gone.
    EXPECT_EQ(delete_group(*a, "g"), kNonEmptyGroup);
    EXPECT_EQ(leave_group(*a, "g", second.member_id), kNone);
    EXPECT_EQ(leave_group(*b, "g", b_joined.member_id), kNone);
    EXPECT_EQ(describe_group(*a, "g").get_string("group_state"), "Empty");
    EXPECT_EQ(delete_group(*a, "g"), kNone);
    EXPECT_EQ(delete_group(*a, "g"), kGroupIdNotFound);
    EXPECT_TRUE(fetch_offsets(*a, "g").empty());
    EXPECT_EQ(describe_group(*a, "g").get_string("group_state"), "Dead");
  }));
}

// kafka-python's versions: no group_instance_id field at all. Absent, it must mean "dynamic
// member" (null), not an empty instance id that every member would share and be fenced by.
TEST_F(BrokerGroupSimTest, members_of_versions_without_instance_ids_are_dynamic) {
  ASSERT_TRUE(broker_.run([&] {
    auto a = broker_.connect();
    auto b = broker_.connect();
    const Joined first = join_group(*a, "old", "", std::nullopt, 2);
    ASSERT_EQ(first.error, kNone);
    EXPECT_EQ(first.member_id.substr(0, 9), "sim-test-");  // client id + "-" + suffix
    ASSERT_EQ(sync_group(*a, "old", first, {{first.member_id, "a"}}).error, kNone);
    Joined b_joined;
    Event b_done;
    broker_.world().control_scope().spawn("member-b", [&] {
      b_joined = join_group(*b, "old", "", std::nullopt, 2);
      b_done.set();
    });
    this_fiber::sleep_for(milliseconds(50));
    StructValue beat = request_of(api::kHeartbeat);
    beat.set("group_id", Value(std::string("old")));
    beat.set("generation_id", Value(std::int64_t{first.generation}));
    beat.set("member_id", Value(first.member_id));
    EXPECT_EQ(call(*a, api::kHeartbeat, 1, beat).get_int("error_code"), kRebalanceInProgress);
    const Joined second = join_group(*a, "old", first.member_id, std::nullopt, 2);
    ASSERT_TRUE(b_done.wait(kNever));
    EXPECT_EQ(second.error, kNone);
    EXPECT_EQ(b_joined.error, kNone);
    EXPECT_NE(b_joined.member_id, first.member_id);
    EXPECT_EQ(second.generation, 2);
    EXPECT_EQ(second.members.size(), 2u);
    EXPECT_EQ(describe_group(*a, "old").get_structs("members").size(), 2u);
  }));
}

TEST_F(BrokerGroupSimTest, groups_generations_and_offsets_survive_a_crash) {
  Joined member;
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    create_orders_topic(*stream);
    member = join_new_member(*stream, "survivor");
    ASSERT_EQ(member.error, kNone);
    ASSERT_EQ(sync_group(*stream, "survivor", member, {{member.member_id, "mine"}}).error, kNone);
    ASSERT_EQ(commit(*stream, "survivor", member.generation, member.member_id, 1, 42), kNone);
    ASSERT_EQ(commit(*stream, "simple", -1, "", 3, 7), kNone);  // assign()-style, no membership
  }));
  broker_.crash_and_restart();
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    const StructValue described = describe_group(*stream, "survivor");
    EXPECT_EQ(described.get_string("group_state"), "Stable");
    ASSERT_EQ(described.get_structs("members").size(), 1u);
    EXPECT_EQ(described.get_structs("members")[0].get_string("member_id"), member.member_id);
    EXPECT_EQ(text_of(described.get_structs("members")[0]["member_assignment"]), "mine");
    // The member carries on in its generation without rejoining.
    EXPECT_EQ(heartbeat(*stream, "survivor", member), kNone);
    EXPECT_EQ(commit(*stream, "survivor", member.generation, member.member_id, 1, 43), kNone);
    EXPECT_EQ(fetch_offsets(*stream, "survivor").at({"orders", 1}), 43);
    EXPECT_EQ(fetch_offsets(*stream, "simple").at({"orders", 3}), 7);
    EXPECT_EQ(describe_group(*stream, "simple").get_string("group_state"), "Empty");
  }));
}

// Regression (disk_corruption): a corrupt batch in a closed __consumer_offsets segment made
// GroupCoordinator::open, and so Broker::open, fail. The load now skips the unreadable segment.
TEST(BrokerGroupCorruptionSimTest, a_corrupt_offsets_segment_is_skipped_on_load) {
  BrokerWorld broker([](BrokerConfig& config) {
    config.group.initial_rebalance_delay_ms = 0;
    config.offsets_topic_partitions = 1;
    config.offsets_segment_bytes = 64;  // every commit rolls a new segment
  });
  ASSERT_TRUE(broker.run([&] {
    auto stream = broker.connect();
    create_orders_topic(*stream);
    ASSERT_EQ(commit(*stream, "simple", -1, "", 1, 5), kNone);
    ASSERT_EQ(commit(*stream, "simple", -1, "", 3, 7), kNone);
    ASSERT_EQ(commit(*stream, "simple", -1, "", 3, 8), kNone);
  }));
  const std::string first_segment =
      "/data/" + std::string(group::kOffsetsTopic) + "-0/00000000000000000000.log";
  ASSERT_TRUE(broker.world().disk(sim::NodeId{0}).flip_bit(first_segment, 80, 1));
  broker.crash_and_restart();
  ASSERT_TRUE(broker.run([&] {
    auto stream = broker.connect();
    const auto offsets = fetch_offsets(*stream, "simple");
    EXPECT_FALSE(offsets.contains({"orders", 1}));  // its only commit was in the corrupt batch
    EXPECT_EQ(offsets.at({"orders", 3}), 8);
  }));
}

// A lost config file leaves a topic on broker defaults; for __consumer_offsets that would switch
// retention on and let it delete the groups' only records. The coordinator switches it off again.
TEST(BrokerGroupCorruptionSimTest, a_corrupt_offsets_config_does_not_turn_retention_on) {
  BrokerWorld broker([](BrokerConfig& config) { config.offsets_topic_partitions = 1; });
  ASSERT_TRUE(broker.run([&] {
    auto stream = broker.connect();
    create_orders_topic(*stream);
    ASSERT_EQ(commit(*stream, "kept", -1, "", 0, 3), kNone);
  }));
  const std::string config_file = "/data/" + std::string(group::kOffsetsTopic) + ".config";
  ASSERT_TRUE(broker.world().disk(sim::NodeId{0}).flip_bit(config_file, 10, 3));
  broker.crash_and_restart();
  ASSERT_TRUE(broker.run([&] {
    auto stream = broker.connect();
    EXPECT_EQ(fetch_offsets(*stream, "kept").at({"orders", 0}), 3);
    StructValue request = request_of(api::kDescribeConfigs);
    StructValue& resource = request.add("resources");
    resource.set("resource_type", Value(std::int64_t{2}));  // topic
    resource.set("resource_name", Value(std::string(group::kOffsetsTopic)));
    resource.set("configuration_keys", Value(Value::Array{Value(std::string("retention.ms"))}));
    const StructValue response = call(*stream, api::kDescribeConfigs, 1, request);
    const StructValue& result = response.get_structs("results").at(0);
    ASSERT_EQ(result.get_int("error_code"), kNone);
    ASSERT_EQ(result.get_structs("configs").size(), 1u);
    EXPECT_EQ(result.get_structs("configs")[0].get_string("value"), "-1");
  }));
}

TEST_F(BrokerGroupSimTest, commits_are_kafka_records_in_the_groups_offsets_partition) {
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    create_orders_topic(*stream);
    ASSERT_EQ(commit(*stream, "reader", -1, "", 2, 99), kNone);
    // Read __consumer_offsets back like any topic, and decode it with Kafka's record formats.
    StructValue request = request_of(api::kFetch);
    request.set("max_wait_ms", Value(std::int64_t{0}));
    request.set("max_bytes", Value(std::int64_t{1 << 20}));
    StructValue& topic = request.add("topics");
    topic.set("topic", Value(std::string(group::kOffsetsTopic)));
    StructValue& partition = topic.add("partitions");
    partition.set("partition", Value(std::int64_t{group::partition_for_group("reader", 5)}));
    partition.set("fetch_offset", Value(std::int64_t{0}));
    partition.set("partition_max_bytes", Value(std::int64_t{1 << 20}));
    const StructValue response = call(*stream, api::kFetch, 4, request);
    const StructValue& data =
        response.get_structs("responses").at(0).get_structs("partitions").at(0);
    ASSERT_EQ(data.get_int("error_code"), kNone);
    const Bytes& records = data["records"].as_bytes();
    auto decoded = storage::decode_records(records);
    ASSERT_TRUE(decoded.has_value());
    ASSERT_EQ(decoded->size(), 1u);
    auto record = group::decode_offsets_record(*(*decoded)[0].key, (*decoded)[0].value);
    ASSERT_TRUE(record.has_value());
    const auto& commit_record = std::get<group::OffsetCommitRecord>(*record);
    EXPECT_EQ(commit_record.key, (group::OffsetCommitKey{"reader", "orders", 2}));
    ASSERT_TRUE(commit_record.value.has_value());
    EXPECT_EQ(commit_record.value->offset, 99);
    EXPECT_EQ(commit_record.value->metadata, "meta");
  }));
}

TEST_F(BrokerGroupSimTest, a_silent_member_expires_after_its_session_timeout) {
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    const Joined member = join_new_member(*stream, "quiet");
    ASSERT_EQ(sync_group(*stream, "quiet", member, {{member.member_id, "x"}}).error, kNone);
    this_fiber::sleep_for(milliseconds(kSessionTimeoutMs - 1000));
    EXPECT_EQ(heartbeat(*stream, "quiet", member), kNone);  // renews the session
    this_fiber::sleep_for(milliseconds(kSessionTimeoutMs - 1000));
    EXPECT_EQ(describe_group(*stream, "quiet").get_string("group_state"), "Stable");
    this_fiber::sleep_for(milliseconds(2000));
    EXPECT_EQ(describe_group(*stream, "quiet").get_string("group_state"), "Empty");
    EXPECT_EQ(heartbeat(*stream, "quiet", member), kUnknownMemberId);
  }));
}

TEST_F(BrokerGroupSimTest,
       offset_delete_refuses_subscribed_topics_and_topic_deletion_drops_offsets) {
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    create_orders_topic(*stream);
    const Joined member = join_new_member(*stream, "od");  // subscribes to "orders"
    ASSERT_EQ(sync_group(*stream, "od", member, {{member.member_id, "x"}}).error, kNone);
    ASSERT_EQ(commit(*stream, "od", member.generation, member.member_id, 0, 5), kNone);
    StructValue request = request_of(api::kOffsetDelete);
    request.set("group_id", Value(std::string("od")));
    StructValue& topic = request.add("topics");
    topic.set("name", Value(std::string("orders")));
    topic.add("partitions").set("partition_index", Value(std::int64_t{0}));
    StructValue response = call(*stream, api::kOffsetDelete, 0, request);
    EXPECT_EQ(response.get_int("error_code"), kNone);
    EXPECT_EQ(
        response.get_structs("topics").at(0).get_structs("partitions").at(0).get_int("error_code"),
        kGroupSubscribedToTopic);
    ASSERT_EQ(leave_group(*stream, "od", member.member_id), kNone);
    response = call(*stream, api::kOffsetDelete, 0, request);
    EXPECT_EQ(
        response.get_structs("topics").at(0).get_structs("partitions").at(0).get_int("error_code"),
        kNone);
    EXPECT_TRUE(fetch_offsets(*stream, "od").empty());

    ASSERT_EQ(commit(*stream, "od", -1, "", 1, 6), kNone);
    StructValue delete_topics = request_of(api::kDeleteTopics);
    delete_topics.set("topic_names", Value(Value::Array{Value(std::string("orders"))}));
    ASSERT_EQ(call(*stream, api::kDeleteTopics, 3, delete_topics)
                  .get_structs("responses")
                  .at(0)
                  .get_int("error_code"),
              kNone);
    EXPECT_TRUE(fetch_offsets(*stream, "od").empty());
  }));
}

TEST_F(BrokerGroupSimTest, the_offsets_topic_is_internal_and_protected) {
  ASSERT_TRUE(broker_.run([&] {
    auto stream = broker_.connect();
    StructValue metadata = request_of(api::kMetadata);
    metadata.set("topics", Value(protocol::Null{}));
    bool found = false;
    const StructValue described = call(*stream, api::kMetadata, 5, metadata);
    for (const StructValue& topic : described.get_structs("topics")) {
      if (topic.get_string("name") != group::kOffsetsTopic) continue;
      found = true;
      EXPECT_TRUE(topic.get_bool("is_internal"));
      EXPECT_EQ(topic.get_structs("partitions").size(), 5u);
    }
    EXPECT_TRUE(found);
    storage::BatchSpec spec;
    spec.records.push_back({.key = "k", .value = "v", .headers = {}});
    const StructValue produced =
        call(*stream, api::kProduce, 7,
             produce_request(group::kOffsetsTopic, -1, storage::build_batch(spec)));
    EXPECT_EQ(produced.get_structs("responses")
                  .at(0)
                  .get_structs("partition_responses")
                  .at(0)
                  .get_int("error_code"),
              kInvalidTopic);
    StructValue delete_topics = request_of(api::kDeleteTopics);
    delete_topics.set("topic_names", Value(Value::Array{Value(std::string(group::kOffsetsTopic))}));
    EXPECT_EQ(call(*stream, api::kDeleteTopics, 3, delete_topics)
                  .get_structs("responses")
                  .at(0)
                  .get_int("error_code"),
              kInvalidTopic);
  }));
}

TEST(BrokerGroupRetentionSimTest, expired_offsets_and_their_empty_group_are_removed) {
  BrokerWorld broker([](BrokerConfig& config) {
    config.offsets_topic_partitions = 3;
    config.offsets_retention = seconds(60);
    config.offsets_retention_check_interval = seconds(1);
  });
  ASSERT_TRUE(broker.run([&] {
    auto stream = broker.connect();
    create_orders_topic(*stream);
    ASSERT_EQ(commit(*stream, "old", -1, "", 0, 1), kNone);
    this_fiber::sleep_for(seconds(30));
    ASSERT_EQ(commit(*stream, "young", -1, "", 0, 2), kNone);
    this_fiber::sleep_for(seconds(32));
    EXPECT_TRUE(fetch_offsets(*stream, "old").empty());
    EXPECT_EQ(describe_group(*stream, "old").get_string("group_state"), "Dead");
    EXPECT_EQ(fetch_offsets(*stream, "young").at({"orders", 0}), 2);
  }));
}

}  // namespace
}  // namespace sluice::kafka

namespace sluice::kafka {
namespace {

using namespace kafka::testing;

TEST(BrokerGroupCompactionSimTest, compaction_bounds_the_offsets_log_and_keeps_the_latest_state) {
  BrokerWorld broker([](BrokerConfig& config) {
    config.group.initial_rebalance_delay_ms = 0;
    config.offsets_topic_partitions = 1;  // every group in one partition
    config.offsets_segment_bytes = 4096;
    config.offsets_compaction_check_interval = seconds(1);
  });
  Joined member;
  ASSERT_TRUE(broker.run([&] {
    auto stream = broker.connect();
    create_orders_topic(*stream);
    member = join_new_member(*stream, "busy");
    ASSERT_EQ(sync_group(*stream, "busy", member, {{member.member_id, "all"}}).error, kNone);
    ASSERT_EQ(commit(*stream, "gone", -1, "", 0, 1), kNone);
    ASSERT_EQ(delete_group(*stream, "gone"), kNone);
    for (std::int64_t offset = 1; offset <= 400; offset++) {
      ASSERT_EQ(commit(*stream, "busy", member.generation, member.member_id, offset % 4, offset),
                kNone);
      ASSERT_EQ(commit(*stream, "simple", -1, "", 0, 1000 + offset), kNone);
    }
    this_fiber::sleep_for(seconds(2));
    EXPECT_EQ(describe_group(*stream, "busy").get_string("group_state"), "Stable")
        << "before the crash";
  }));
  // The log was cut: far less than the 800 commits' bytes remain, and the start moved.
  broker.crash_and_restart();
  ASSERT_TRUE(broker.run([&] {
    auto stream = broker.connect();
    StructValue request = request_of(api::kListOffsets);
    request.set("replica_id", Value(std::int64_t{-1}));
    StructValue& topic = request.add("topics");
    topic.set("name", Value(std::string(group::kOffsetsTopic)));
    StructValue& partition = topic.add("partitions");
    partition.set("partition_index", Value(std::int64_t{0}));
    partition.set("timestamp", Value(std::int64_t{-2}));  // earliest
    const StructValue earliest = call(*stream, api::kListOffsets, 2, request);
    const std::int64_t log_start =
        earliest.get_structs("topics").at(0).get_structs("partitions").at(0).get_int("offset");
    EXPECT_GT(log_start, 600);
    const auto busy = fetch_offsets(*stream, "busy");
    ASSERT_EQ(busy.size(), 4u);
    EXPECT_EQ(busy.at({"orders", 0}), 400);
    EXPECT_EQ(busy.at({"orders", 3}), 399);
    EXPECT_EQ(fetch_offsets(*stream, "simple").at({"orders", 0}), 1400);
    EXPECT_EQ(describe_group(*stream, "gone").get_string("group_state"), "Dead");
    const StructValue described = describe_group(*stream, "busy");
    EXPECT_EQ(described.get_string("group_state"), "Stable");
    EXPECT_EQ(heartbeat(*stream, "busy", member), kNone);
  }));
}

}  // namespace
}  // namespace sluice::kafka
