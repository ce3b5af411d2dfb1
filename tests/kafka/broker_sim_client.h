#pragma once
// Shared by the broker simulator tests: a world with one broker node ("broker", config adjustable
// per test) and a client host ("client"), and the client side of the Kafka protocol — encode a
// request with core/protocol, frame it, read and decode the response.

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "core/env/sync.h"
#include "core/kafka/broker.h"
#include "core/protocol/codec.h"
#include "core/protocol/messages.h"
#include "core/util/frame_io.h"
#include "sim/world.h"
#include "tests/sim/sim_test_util.h"

namespace sluice::kafka::testing {

using protocol::StructValue;
using protocol::Value;

inline constexpr std::uint16_t kPort = 9092;
inline const Instant kTestDeadline = kNever;

// A world with one broker node and a client host. `configure` adjusts the broker's config before
// each incarnation (restart() runs it again on the durable disk image).
class BrokerWorld {
 public:
  explicit BrokerWorld(std::function<void(BrokerConfig&)> configure = {}) : world_(42) {
    node_ = world_.add_node("broker", [configure, serving = serving_](Env& env) {
      *serving = false;
      BrokerConfig config;
      config.data_dir = "/data";
      config.advertised = Address{"broker", kPort};
      config.request_bytes_max = 1024 * 1024;
      if (configure) configure(config);
      Broker broker(env, config);
      ASSERT_TRUE(broker.open().has_value());
      ASSERT_TRUE(broker.serve(Address{"0.0.0.0", kPort}).has_value());
      *serving = true;
      Event never;
      never.wait();
    });
    client_net_ = &world_.network().add_host("client");
    wait_serving();
  }

  std::unique_ptr<Stream> connect() {
    auto stream = client_net_->connect(Address{"broker", kPort}, kTestDeadline);
    EXPECT_TRUE(stream.has_value());
    if (!stream) return nullptr;
    return std::move(*stream);
  }

  // Kills the broker (unsynced disk state is lost) and starts it again from its disk image.
  void crash_and_restart() {
    world_.crash(node_);
    world_.restart(node_);
    wait_serving();
  }

  sim::SimWorld& world() { return world_; }
  bool run(std::function<void()> body) {
    return sim::testing::run_in_fiber(world_, std::move(body));
  }

 private:
  // Opening the data directory (e.g. creating __consumer_offsets) takes simulated time.
  void wait_serving() {
    world_.run_for(milliseconds(10));
    ASSERT_TRUE(world_.run_until([this] { return *serving_; }));
  }

  std::shared_ptr<bool> serving_ = std::make_shared<bool>(false);
  sim::SimWorld world_;
  sim::NodeId node_{};
  Net* client_net_ = nullptr;
};

inline const protocol::MessageSchema& schema_of(std::int16_t api_key) {
  return *protocol::find_schema(api_key);
}

inline Bytes encode_request(std::int16_t api_key, std::int16_t version, std::int32_t correlation_id,
                            const StructValue& body) {
  const protocol::MessageSchema& schema = schema_of(api_key);
  const bool flexible = schema.flexible(version);
  Bytes out;
  protocol::encode_request_header({api_key, version, correlation_id, "sim-test"}, flexible, out);
  protocol::encode_struct(schema.request, version, flexible, body, out);
  return out;
}

inline void send(Stream& stream, std::int16_t api_key, std::int16_t version,
                 std::int32_t correlation_id, const StructValue& body) {
  ASSERT_TRUE(
      write_frame(stream, encode_request(api_key, version, correlation_id, body), kTestDeadline));
}

// Reads one response; `header_flexible` as the broker must have chosen it.
inline std::optional<StructValue> receive(Stream& stream, std::int16_t api_key,
                                          std::int16_t version, std::int32_t correlation_id,
                                          bool header_flexible) {
  auto frame = read_frame(stream, 64 * 1024 * 1024, kTestDeadline);
  if (!frame) return std::nullopt;
  ByteReader reader(*frame);
  EXPECT_EQ(static_cast<std::int32_t>(reader.u32()), correlation_id);
  if (header_flexible) {
    EXPECT_TRUE(protocol::skip_tagged_fields(reader).has_value());
  }
  const protocol::MessageSchema& schema = schema_of(api_key);
  auto body = protocol::decode_message(schema.response, version, schema.flexible(version),
                                       std::span(*frame).subspan(reader.position()));
  EXPECT_TRUE(body.has_value());
  if (!body) return std::nullopt;
  return std::move(*body);
}

// send + receive for APIs whose response header follows the version's flexibility.
inline StructValue call(Stream& stream, std::int16_t api_key, std::int16_t version,
                        const StructValue& body) {
  static std::int32_t next_correlation_id = 1000;
  const std::int32_t correlation_id = next_correlation_id++;
  send(stream, api_key, version, correlation_id, body);
  auto response =
      receive(stream, api_key, version, correlation_id, schema_of(api_key).flexible(version));
  EXPECT_TRUE(response.has_value());
  return response ? std::move(*response) : StructValue::with_defaults(schema_of(api_key).response);
}

inline StructValue request_of(std::int16_t api_key) {
  return StructValue::with_defaults(schema_of(api_key).request);
}

// Metadata for one topic, creating it if missing.
inline StructValue metadata_request(std::string_view topic) {
  StructValue request = request_of(protocol::api::kMetadata);
  request.add("topics").set("name", Value(std::string(topic)));
  request.set("allow_auto_topic_creation", Value(true));
  return request;
}

// A Fetch of partition 0 of `topic` from `offset` (min_bytes 1, 1 MiB limits).
inline StructValue fetch_request(std::string_view topic, std::int64_t offset, std::int32_t max_wait_ms) {
  StructValue request = request_of(protocol::api::kFetch);
  request.set("max_wait_ms", Value(std::int64_t{max_wait_ms}));
  request.set("min_bytes", Value(std::int64_t{1}));
  request.set("max_bytes", Value(std::int64_t{1 << 20}));
  StructValue& fetch_topic = request.add("topics");
  fetch_topic.set("topic", Value(std::string(topic)));
  StructValue& partition = fetch_topic.add("partitions");
  partition.set("partition", Value(std::int64_t{0}));
  partition.set("fetch_offset", Value(offset));
  partition.set("partition_max_bytes", Value(std::int64_t{1 << 20}));
  return request;
}

// One broker incarnation as the test sees it: the broker while it serves, and a stop request.
struct Incarnation {
  Broker* broker = nullptr;
  Event stop_requested;
  bool stopped = false;
  Instant stop_started{};
  Instant stop_finished{};
};

// A broker node that stops gracefully when asked (stop()), and a client host.
class LifecycleWorld {
 public:
  explicit LifecycleWorld(std::function<void(BrokerConfig&)> configure = {}) : world_(7) {
    node_ = world_.add_node("broker", [this, configure](Env& env) {
      auto incarnation = std::make_shared<Incarnation>();
      current_ = incarnation;
      BrokerConfig config;
      config.data_dir = "/data";
      config.advertised = Address{"broker", kPort};
      if (configure) configure(config);
      Broker broker(env, config);
      ASSERT_TRUE(broker.open().has_value());
      ASSERT_TRUE(broker.serve(Address{"0.0.0.0", kPort}).has_value());
      incarnation->broker = &broker;
      incarnation->stop_requested.wait();
      incarnation->stop_started = env.now();
      broker.stop();
      incarnation->stop_finished = env.now();
      incarnation->stopped = true;
      incarnation->broker = nullptr;
      Event never;
      never.wait();
    });
    client_net_ = &world_.network().add_host("client");
    wait_serving();
  }

  sim::SimWorld& world() { return world_; }
  Incarnation& current() { return *current_; }
  Broker& broker() { return *current_->broker; }
  sim::SimDisk& disk() { return world_.disk(node_); }
  std::unique_ptr<Stream> connect() {
    auto stream = client_net_->connect(Address{"broker", kPort}, kTestDeadline);
    EXPECT_TRUE(stream.has_value());
    return stream ? std::move(*stream) : nullptr;
  }
  void restart() {
    world_.crash(node_);
    world_.restart(node_);
    wait_serving();
  }

 private:
  void wait_serving() {
    world_.run_for(milliseconds(10));
    ASSERT_TRUE(world_.run_until([this] { return current_ && current_->broker != nullptr; }));
  }

  sim::SimWorld world_;
  sim::NodeId node_{};
  Net* client_net_ = nullptr;
  std::shared_ptr<Incarnation> current_;
};

// A Produce request of one batch to partition 0 of `topic`.
inline StructValue produce_request(std::string_view topic, std::int16_t acks, Bytes batch) {
  StructValue request = request_of(protocol::api::kProduce);
  request.set("transactional_id", Value(protocol::Null{}));
  request.set("acks", Value(std::int64_t{acks}));
  request.set("timeout_ms", Value(std::int64_t{30000}));
  StructValue& topic_data = request.add("topic_data");
  topic_data.set("name", Value(std::string(topic)));
  StructValue& partition = topic_data.add("partition_data");
  partition.set("index", Value(std::int64_t{0}));
  partition.set("records", Value(std::move(batch)));
  return request;
}

// The stream was closed by the broker: the next read ends.
inline bool closed_by_peer(Stream& stream) {
  std::byte byte{};
  auto read = stream.read_some(std::span(&byte, 1), kTestDeadline);
  return !read.has_value();
}

}  // namespace sluice::kafka::testing
