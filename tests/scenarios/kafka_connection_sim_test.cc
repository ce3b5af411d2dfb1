// core/client's KafkaConnection and ClusterConnections against the real broker in the simulator:
// version negotiation, calls, acks=0 sends that get no response, what a broken connection says
// about a request's fate, serialised calls from two fibers, and reconnecting after a crash.

#include <gtest/gtest.h>

#include "core/client/cluster_connections.h"
#include "core/client/kafka_connection.h"
#include "core/storage/record_batch.h"
#include "tests/kafka/broker_sim_client.h"

namespace sluice::client {
namespace {

using kafka::testing::BrokerWorld;
using kafka::testing::kPort;
using protocol::int_value;
using protocol::StructValue;

const Address kBroker{"broker", kPort};

// Runs `body` with the Env of a client node "client-node" until it returns.
bool run_client(BrokerWorld& broker, std::function<void(Env&)> body) {
  bool done = false;
  broker.world().add_node("client-node", [&](Env& env) {
    body(env);
    done = true;
  });
  return broker.world().run_until([&] { return done; });
}

ConnectionOptions options() {
  return ConnectionOptions{
      .client_id = "connection-test", .connect_timeout = seconds(5), .request_timeout = seconds(5)};
}

StructValue produce_request(std::int16_t acks, const std::string& value) {
  StructValue request = KafkaConnection::new_request(protocol::kProduceSchema);
  request.set("transactional_id", protocol::Null{});
  request.set("acks", int_value(acks)).set("timeout_ms", int_value(5000));
  StructValue& topic = request.add("topic_data");
  topic.set("name", std::string("t"));
  storage::BatchSpec spec;
  spec.records.emplace_back().value = value;
  topic.add("partition_data").set("index", int_value(0)).set("records", storage::build_batch(spec));
  return request;
}

// Creates topic "t" (one partition) through Metadata's auto-creation.
void create_topic_t(KafkaConnection& connection) {
  StructValue request = KafkaConnection::new_request(protocol::kMetadataSchema);
  request.add("topics").set("name", std::string("t"));
  request.set("allow_auto_topic_creation", true);
  auto response = connection.call(protocol::kMetadataSchema, request);
  ASSERT_TRUE(response.has_value()) << response.error().message;
  ASSERT_EQ(response->get_structs("topics").at(0).get_int("error_code"), 0);
}

TEST(KafkaConnection, kafka_error_names_and_retriability) {
  EXPECT_EQ(kafka_error_name(0), "NONE");
  EXPECT_EQ(kafka_error_name(-1), "UNKNOWN_SERVER_ERROR");
  EXPECT_EQ(kafka_error_name(45), "OUT_OF_ORDER_SEQUENCE_NUMBER");
  EXPECT_EQ(kafka_error_name(999), "UNKNOWN_ERROR_CODE");
  EXPECT_TRUE(kafka_error_retriable(6));    // NOT_LEADER_OR_FOLLOWER
  EXPECT_TRUE(kafka_error_retriable(16));   // NOT_COORDINATOR
  EXPECT_FALSE(kafka_error_retriable(10));  // MESSAGE_TOO_LARGE
  EXPECT_FALSE(kafka_error_retriable(45));  // OUT_OF_ORDER_SEQUENCE_NUMBER: the producer decides
}

TEST(KafkaConnection, negotiates_versions_and_calls_at_the_highest_common_one) {
  BrokerWorld broker;
  ASSERT_TRUE(run_client(broker, [](Env& env) {
    auto connection = KafkaConnection::connect(env, kBroker, options());
    ASSERT_TRUE(connection.has_value()) << connection.error().message;
    EXPECT_EQ((*connection)->version_for(protocol::kProduceSchema), 7);
    EXPECT_EQ((*connection)->version_for(protocol::kFetchSchema), 11);
    StructValue request = KafkaConnection::new_request(protocol::kMetadataSchema);
    request.set("topics", protocol::Null{});
    auto metadata = (*connection)->call(protocol::kMetadataSchema, request);
    ASSERT_TRUE(metadata.has_value()) << metadata.error().message;
    const ClusterMetadata cluster = ClusterMetadata::from_response(*metadata);
    ASSERT_EQ(cluster.brokers.size(), 1u);
    EXPECT_EQ(cluster.brokers.begin()->second, kBroker);
  }));
}

TEST(KafkaConnection, connect_to_nobody_is_a_connection_error_that_wrote_nothing) {
  BrokerWorld broker;
  ASSERT_TRUE(run_client(broker, [](Env& env) {
    auto connection = KafkaConnection::connect(env, Address{"broker", 1}, options());
    ASSERT_FALSE(connection.has_value());
    EXPECT_EQ(connection.error().kind, ClientError::Kind::connection);
    EXPECT_EQ(connection.error().net_error, NetError::refused);
    EXPECT_FALSE(connection.error().request_written);
  }));
}

TEST(KafkaConnection, acks_zero_send_gets_no_response_and_the_next_call_is_answered) {
  BrokerWorld broker;
  ASSERT_TRUE(run_client(broker, [](Env& env) {
    auto connection = KafkaConnection::connect(env, kBroker, options());
    ASSERT_TRUE(connection.has_value());
    KafkaConnection& kafka = **connection;
    create_topic_t(kafka);
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(kafka.send(protocol::kProduceSchema,
                             produce_request(0, "fire-" + std::to_string(i)),
                             env.deadline_after(seconds(5))));
    }
    // Were the broker to answer an acks=0 Produce, this call would read that answer instead and
    // fail on the correlation id.
    auto acknowledged = kafka.call(protocol::kProduceSchema, produce_request(-1, "acked"));
    ASSERT_TRUE(acknowledged.has_value()) << acknowledged.error().message;
    const StructValue& partition =
        acknowledged->get_structs("responses").at(0).get_structs("partition_responses").at(0);
    EXPECT_EQ(partition.get_int("error_code"), 0);
    EXPECT_EQ(partition.get_int("base_offset"), 3);  // after the three acks=0 records
    EXPECT_FALSE(kafka.broken());
  }));
}

TEST(KafkaConnection, calls_from_two_fibers_are_serialised) {
  BrokerWorld broker;
  ASSERT_TRUE(run_client(broker, [](Env& env) {
    auto connection = KafkaConnection::connect(env, kBroker, options());
    ASSERT_TRUE(connection.has_value());
    std::shared_ptr<KafkaConnection> shared = std::move(*connection);
    create_topic_t(*shared);
    int answered = 0;
    Scope callers(env.scheduler().current_scope(), "callers");
    std::vector<std::shared_ptr<FiberDone>> done;
    for (int fiber = 0; fiber < 2; ++fiber) {
      done.push_back(callers.spawn("caller", [&, fiber] {
        for (int i = 0; i < 5; ++i) {
          auto response = shared->call(protocol::kProduceSchema,
                                       produce_request(-1, std::to_string(fiber * 10 + i)));
          ASSERT_TRUE(response.has_value()) << response.error().message;
          ++answered;
        }
      }));
    }
    for (auto& fiber : done) env.scheduler().join(*fiber);
    EXPECT_EQ(answered, 10);
    EXPECT_FALSE(shared->broken());
  }));
}

TEST(KafkaConnection, a_crash_breaks_the_connection_and_cluster_connections_reconnect) {
  BrokerWorld broker;
  std::shared_ptr<KafkaConnection> first;
  std::unique_ptr<ClusterConnections> cluster;
  ASSERT_TRUE(run_client(broker, [&](Env& env) {
    cluster = std::make_unique<ClusterConnections>(env, std::vector<Address>{kBroker}, options());
    auto connection = cluster->any();
    ASSERT_TRUE(connection.has_value());
    first = *connection;
    create_topic_t(*first);
  }));
  broker.crash_and_restart();
  bool done = false;
  broker.world().add_node("client-after", [&](Env& env) {
    // The connection was reset under it: the request may or may not have reached the broker.
    auto lost = first->call(protocol::kProduceSchema, produce_request(-1, "x"),
                            env.deadline_after(seconds(5)));
    ASSERT_FALSE(lost.has_value());
    EXPECT_EQ(lost.error().kind, ClientError::Kind::connection);
    EXPECT_TRUE(first->broken());
    // Once broken, nothing more is sent: certainly not written.
    auto refused = first->call(protocol::kProduceSchema, produce_request(-1, "y"),
                               env.deadline_after(seconds(5)));
    ASSERT_FALSE(refused.has_value());
    EXPECT_FALSE(refused.error().request_written);
    auto again = cluster->to(kBroker);
    ASSERT_TRUE(again.has_value()) << again.error().message;
    EXPECT_NE(again->get(), first.get());
    auto metadata = cluster->fetch_metadata(std::vector<std::string>{"t"});
    ASSERT_TRUE(metadata.has_value()) << metadata.error().message;
    EXPECT_TRUE(metadata->leader_address("t", 0).has_value());
    done = true;
  });
  ASSERT_TRUE(broker.world().run_until([&] { return done; }));
  cluster.reset();
  first.reset();
}

}  // namespace
}  // namespace sluice::client
