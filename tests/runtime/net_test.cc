// RuntimeNet over real loopback sockets: connect outcomes, a full round trip, end of stream,
// and the errors a broker must tell apart (refused, reset/closed, address in use).

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "tests/runtime/runtime_test_util.h"

namespace sluice::runtime {
namespace {

using testing::as_bytes;
using testing::connected_pair;
using testing::test_env_options;

std::string to_text(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

TEST(RuntimeNet, connect_to_a_closed_port_is_refused) {
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    auto listener = env.net().listen(Address{"127.0.0.1", 0});
    ASSERT_TRUE(listener.has_value());
    const Address address = (*listener)->local_address();
    (*listener)->close();
    auto stream = env.net().connect(address, env.deadline_after(seconds(5)));
    ASSERT_FALSE(stream.has_value());
    EXPECT_EQ(stream.error(), NetError::refused);
  });
}

TEST(RuntimeNet, listener_on_port_zero_reports_the_real_port) {
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    auto listener = env.net().listen(Address{"127.0.0.1", 0});
    ASSERT_TRUE(listener.has_value());
    EXPECT_EQ((*listener)->local_address().host, "127.0.0.1");
    EXPECT_NE((*listener)->local_address().port, 0);
  });
}

TEST(RuntimeNet, listen_on_a_taken_address_fails_with_address_in_use) {
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    auto first = env.net().listen(Address{"127.0.0.1", 0});
    ASSERT_TRUE(first.has_value());
    auto second = env.net().listen((*first)->local_address());
    ASSERT_FALSE(second.has_value());
    EXPECT_EQ(second.error(), NetError::address_in_use);
  });
}

TEST(RuntimeNet, malformed_literal_is_an_invalid_address) {
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    for (const char* host : {"999.1.1.1", "::g"}) {
      auto stream = env.net().connect(Address{host, 9}, env.deadline_after(seconds(5)));
      ASSERT_FALSE(stream.has_value());
      EXPECT_EQ(stream.error(), NetError::invalid_address) << host;
      EXPECT_EQ(env.net().listen(Address{host, 0}).error(), NetError::invalid_address) << host;
    }
  });
}

TEST(RuntimeNet, round_trip_then_peer_close_reads_as_closed) {
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    auto pair = connected_pair(env);
    ASSERT_TRUE(pair.server);
    EXPECT_EQ(pair.client->peer_address(), pair.listener->local_address());
    EXPECT_EQ(pair.server->peer_address(), pair.client->local_address());

    ASSERT_TRUE(pair.client->write_all(as_bytes("ping"), env.deadline_after(seconds(5))));
    std::byte request[4];
    ASSERT_TRUE(pair.server->read_exact(request, env.deadline_after(seconds(5))));
    EXPECT_EQ(to_text(request), "ping");
    ASSERT_TRUE(pair.server->write_all(as_bytes("pong"), env.deadline_after(seconds(5))));
    std::byte response[4];
    ASSERT_TRUE(pair.client->read_exact(response, env.deadline_after(seconds(5))));
    EXPECT_EQ(to_text(response), "pong");

    pair.server->close();
    std::byte buffer[8];
    auto got = pair.client->read_some(buffer, env.deadline_after(seconds(5)));
    ASSERT_FALSE(got.has_value());
    EXPECT_EQ(got.error(), NetError::closed);
    // This end after close(): every call fails with closed.
    pair.client->close();
    EXPECT_EQ(pair.client->read_some(buffer, kNever).error(), NetError::closed);
    EXPECT_EQ(pair.client->write_all(as_bytes("x"), kNever).error(), NetError::closed);
  });
}

TEST(RuntimeNet, writing_to_a_closed_peer_fails_with_reset_or_closed) {
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    auto pair = connected_pair(env);
    ASSERT_TRUE(pair.server);
    pair.server->close();
    std::vector<std::byte> chunk(64 << 10);
    std::optional<NetError> failure;
    // The first writes may still land in the kernel's buffer; the RST ends them soon after.
    for (int attempt = 0; attempt < 1000 && !failure; ++attempt) {
      auto written = pair.client->write_all(chunk, env.deadline_after(seconds(5)));
      if (!written) failure = written.error();
    }
    ASSERT_TRUE(failure.has_value());
    EXPECT_TRUE(*failure == NetError::reset || *failure == NetError::closed) << to_string(*failure);
  });
}

TEST(RuntimeNet, ipv6_loopback_round_trip) {
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    auto listener = env.net().listen(Address{"::1", 0});
    if (!listener) GTEST_SKIP() << "no IPv6 loopback here: " << to_string(listener.error());
    const Address address = (*listener)->local_address();
    EXPECT_EQ(address.host, "::1");
    EXPECT_EQ(address.to_string(), "[::1]:" + std::to_string(address.port));
    auto client = env.net().connect(address, env.deadline_after(seconds(5)));
    ASSERT_TRUE(client.has_value());
    auto server = (*listener)->accept(env.deadline_after(seconds(5)));
    ASSERT_TRUE(server.has_value());
    ASSERT_TRUE((*client)->write_all(as_bytes("v6"), env.deadline_after(seconds(5))));
    std::byte buffer[2];
    ASSERT_TRUE((*server)->read_exact(buffer, env.deadline_after(seconds(5))));
    EXPECT_EQ(to_text(buffer), "v6");
  });
}

TEST(RuntimeNet, localhost_name_resolves) {
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    auto listener = env.net().listen(Address{"127.0.0.1", 0});
    ASSERT_TRUE(listener.has_value());
    // "localhost" may resolve to ::1 first; connect falls through to 127.0.0.1.
    auto client = env.net().connect(Address{"localhost", (*listener)->local_address().port},
                                    env.deadline_after(seconds(5)));
    ASSERT_TRUE(client.has_value()) << to_string(client.error());
    EXPECT_TRUE((*listener)->accept(env.deadline_after(seconds(5))).has_value());
  });
}

TEST(RuntimeNet, many_connections_in_both_directions) {
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    auto listener = env.net().listen(Address{"127.0.0.1", 0});
    ASSERT_TRUE(listener.has_value());
    constexpr int kConnections = 50;
    int served = 0;
    Scope scope(env.scheduler().current_scope(), "servers");
    auto acceptor = scope.spawn("acceptor", [&] {
      for (int index = 0; index < kConnections; ++index) {
        auto stream = (*listener)->accept(env.deadline_after(seconds(5)));
        ASSERT_TRUE(stream.has_value());
        scope.spawn("server", [&, stream = std::move(*stream)]() mutable {
          std::byte byte[1];
          ASSERT_TRUE(stream->read_exact(byte, env.deadline_after(seconds(5))));
          ASSERT_TRUE(stream->write_all(byte, env.deadline_after(seconds(5))));
          served++;
        });
      }
    });
    std::vector<std::shared_ptr<FiberDone>> clients;
    for (int index = 0; index < kConnections; ++index) {
      clients.push_back(scope.spawn("client", [&, index] {
        auto stream =
            env.net().connect((*listener)->local_address(), env.deadline_after(seconds(5)));
        ASSERT_TRUE(stream.has_value());
        const std::byte sent[1] = {static_cast<std::byte>(index)};
        ASSERT_TRUE((*stream)->write_all(sent, env.deadline_after(seconds(5))));
        std::byte received[1];
        ASSERT_TRUE((*stream)->read_exact(received, env.deadline_after(seconds(5))));
        EXPECT_EQ(received[0], sent[0]);
      }));
    }
    for (auto& client : clients)
      EXPECT_TRUE(env.scheduler().join(*client, env.deadline_after(seconds(10))));
    EXPECT_TRUE(env.scheduler().join(*acceptor, env.deadline_after(seconds(10))));
    EXPECT_EQ(served, kConnections);
  });
}

}  // namespace
}  // namespace sluice::runtime
