#include "sim/sim_net.h"

#include <gtest/gtest.h>

#include "tests/sim/sim_test_util.h"

namespace sluice::sim {
namespace {

using testing::bytes_of;
using testing::run_in_fiber;
using testing::text_of;

struct sim_net : ::testing::Test {
  SimWorld world{42};
  SimNodeNet& a = world.network().add_host("a");
  SimNodeNet& b = world.network().add_host("b");

  // A connected pair: client on "a", server end on "b".
  struct Pair {
    std::unique_ptr<Listener> listener;
    std::unique_ptr<Stream> client;
    std::unique_ptr<Stream> server;
  };
  Pair connect_pair() {
    Pair pair;
    pair.listener = b.listen(Address{"b", 9092}).value();
    pair.client = a.connect(Address{"b", 9092}, add_saturating(world.now(), seconds(5))).value();
    pair.server = pair.listener->accept(add_saturating(world.now(), seconds(5))).value();
    return pair;
  }
  Instant in(Duration duration) { return add_saturating(world.now(), duration); }
};

TEST_F(sim_net, bytes_arrive_in_order_under_random_latency) {
  SimNetworkFaults faults;
  faults.latency_mean_extra = milliseconds(5);
  faults.latency_spike_probability = 0.2;
  faults.latency_spike_mean = milliseconds(40);
  world.network().set_faults(faults);
  std::vector<std::byte> sent;
  std::vector<std::byte> received;
  ASSERT_TRUE(run_in_fiber(world, [&] {
    Pair pair = connect_pair();
    world.control_scope().spawn("writer", [&] {
      Random random(5);
      for (int message = 0; message < 200; ++message) {
        std::vector<std::byte> chunk(random.range(1, 3000));
        for (auto& byte : chunk)
          byte = static_cast<std::byte>(sent.size() + (&byte - chunk.data()));
        sent.insert(sent.end(), chunk.begin(), chunk.end());
        ASSERT_TRUE(pair.client->write_all(chunk, kNever).has_value());
      }
      pair.client->close();
    });
    std::vector<std::byte> buffer(1000);
    for (;;) {
      auto got = pair.server->read_some(buffer, in(seconds(60)));
      if (!got) {
        EXPECT_EQ(got.error(), NetError::closed);
        break;
      }
      received.insert(received.end(), buffer.begin(),
                      buffer.begin() + static_cast<std::ptrdiff_t>(*got));
    }
  }));
  EXPECT_EQ(received.size(), sent.size());
  EXPECT_TRUE(received == sent);
}

TEST_F(sim_net, partition_holds_bytes_and_heal_releases_them) {
  ASSERT_TRUE(run_in_fiber(world, [&] {
    Pair pair = connect_pair();
    world.network().partition("a", "b");
    ASSERT_TRUE(pair.client->write_all(bytes_of("held"), in(seconds(1))).has_value());
    std::vector<std::byte> buffer(16);
    EXPECT_EQ(pair.server->read_some(buffer, in(seconds(10))).error(), NetError::timed_out);
    world.network().heal_all();
    auto got = pair.server->read_some(buffer, in(seconds(1)));
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(text_of(std::span(buffer).first(*got)), "held");
  }));
}

TEST_F(sim_net, one_way_partition_blocks_one_direction) {
  ASSERT_TRUE(run_in_fiber(world, [&] {
    Pair pair = connect_pair();
    world.network().partition_one_way("a", "b");
    ASSERT_TRUE(pair.client->write_all(bytes_of("to b"), kNever).has_value());
    ASSERT_TRUE(pair.server->write_all(bytes_of("to a"), kNever).has_value());
    std::vector<std::byte> buffer(16);
    EXPECT_TRUE(pair.client->read_some(buffer, in(seconds(1))).has_value());
    EXPECT_EQ(pair.server->read_some(buffer, in(seconds(1))).error(), NetError::timed_out);
  }));
}

TEST_F(sim_net, connect_across_partition_times_out_at_deadline) {
  ASSERT_TRUE(run_in_fiber(world, [&] {
    auto listener = b.listen(Address{"b", 1}).value();
    world.network().isolate("b");
    const Instant deadline = in(milliseconds(750));
    EXPECT_EQ(a.connect(Address{"b", 1}, deadline).error(), NetError::timed_out);
    EXPECT_EQ(world.now(), deadline);
  }));
}

TEST_F(sim_net, connect_to_nobody_is_refused) {
  ASSERT_TRUE(run_in_fiber(world, [&] {
    EXPECT_EQ(a.connect(Address{"b", 9092}, in(seconds(1))).error(), NetError::refused);
    EXPECT_EQ(a.connect(Address{"nowhere", 9092}, in(seconds(1))).error(), NetError::unreachable);
  }));
}

TEST_F(sim_net, listen_checks_addresses_and_picks_free_ports) {
  auto first = b.listen(Address{"0.0.0.0", 9092});
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ((*first)->local_address(), (Address{"b", 9092}));
  EXPECT_EQ(b.listen(Address{"b", 9092}).error(), NetError::address_in_use);
  EXPECT_EQ(b.listen(Address{"a", 1}).error(), NetError::invalid_address);
  auto any = b.listen(Address{"b", 0}).value();
  EXPECT_NE(any->local_address().port, 0);
  (*first)->close();
  EXPECT_TRUE(b.listen(Address{"b", 9092}).has_value());
}

TEST_F(sim_net, crash_host_resets_peers_and_drops_listeners) {
  ASSERT_TRUE(run_in_fiber(world, [&] {
    Pair pair = connect_pair();
    std::vector<std::byte> buffer(16);
    world.network().crash_host("a");
    EXPECT_EQ(pair.server->read_some(buffer, in(seconds(1))).error(), NetError::reset);
    EXPECT_EQ(pair.server->write_all(bytes_of("x"), in(seconds(1))).error(), NetError::reset);
    world.network().crash_host("b");
    EXPECT_EQ(a.connect(Address{"b", 9092}, in(seconds(1))).error(), NetError::refused);
    EXPECT_EQ(pair.listener->accept(in(seconds(1))).error(), NetError::closed);
  }));
}

TEST_F(sim_net, read_deadline_times_out_exactly_at_deadline) {
  ASSERT_TRUE(run_in_fiber(world, [&] {
    Pair pair = connect_pair();
    std::vector<std::byte> buffer(16);
    const Instant deadline = in(milliseconds(123));
    EXPECT_EQ(pair.server->read_some(buffer, deadline).error(), NetError::timed_out);
    EXPECT_EQ(world.now(), deadline);
  }));
}

TEST_F(sim_net, close_gives_end_of_stream_after_data_and_writes_to_closed_peer_reset) {
  ASSERT_TRUE(run_in_fiber(world, [&] {
    Pair pair = connect_pair();
    ASSERT_TRUE(pair.client->write_all(bytes_of("last words"), kNever).has_value());
    pair.client->close();
    EXPECT_EQ(pair.client->write_all(bytes_of("x"), kNever).error(), NetError::closed);
    std::vector<std::byte> buffer(10);
    ASSERT_TRUE(pair.server->read_exact(buffer, in(seconds(1))).has_value());
    EXPECT_EQ(text_of(buffer), "last words");
    EXPECT_EQ(pair.server->read_some(buffer, in(seconds(1))).error(), NetError::closed);
    EXPECT_EQ(pair.server->write_all(bytes_of("reply"), in(seconds(1))).error(), NetError::reset);
  }));
}

TEST_F(sim_net, backpressure_bounds_buffered_bytes) {
  constexpr std::size_t kTotalBytes = 8 * 1024 * 1024;
  std::size_t buffered_max = 0;
  std::size_t received = 0;
  ASSERT_TRUE(run_in_fiber(world, [&] {
    Pair pair = connect_pair();
    bool writer_done = false;
    world.control_scope().spawn("writer", [&] {
      std::vector<std::byte> chunk(256 * 1024, std::byte{7});
      for (std::size_t sent = 0; sent < kTotalBytes; sent += chunk.size()) {
        ASSERT_TRUE(pair.client->write_all(chunk, kNever).has_value());
      }
      writer_done = true;
    });
    // Nobody reads for a second: the writer must block with at most one buffer in flight.
    this_fiber::sleep_for(seconds(1));
    EXPECT_FALSE(writer_done);
    EXPECT_EQ(world.network().buffered_bytes_total(), world.network().send_buffer_bytes());
    std::vector<std::byte> buffer(100'000);
    while (received < kTotalBytes) {
      buffered_max = std::max(buffered_max, world.network().buffered_bytes_total());
      auto got = pair.server->read_some(buffer, in(seconds(10)));
      ASSERT_TRUE(got.has_value());
      received += *got;
    }
    EXPECT_TRUE(writer_done);
  }));
  EXPECT_EQ(received, kTotalBytes);
  EXPECT_LE(buffered_max, world.network().send_buffer_bytes());
}

TEST_F(sim_net, clog_holds_traffic_until_it_ends) {
  ASSERT_TRUE(run_in_fiber(world, [&] {
    Pair pair = connect_pair();
    const Instant clog_end = in(milliseconds(500));
    world.network().clog("a", milliseconds(500));
    ASSERT_TRUE(pair.client->write_all(bytes_of("slow"), kNever).has_value());
    std::vector<std::byte> buffer(16);
    ASSERT_TRUE(pair.server->read_some(buffer, in(seconds(5))).has_value());
    EXPECT_GE(world.now(), clog_end);
  }));
}

TEST_F(sim_net, bandwidth_limit_slows_transfers) {
  SimNetworkFaults faults;
  faults.bandwidth_bytes_per_second = 1'000'000;
  world.network().set_faults(faults);
  ASSERT_TRUE(run_in_fiber(world, [&] {
    Pair pair = connect_pair();
    const Instant start = world.now();
    std::vector<std::byte> payload(500'000);
    ASSERT_TRUE(pair.client->write_all(payload, kNever).has_value());
    ASSERT_TRUE(pair.server->read_exact(payload, in(seconds(10))).has_value());
    EXPECT_GE(world.now() - start, milliseconds(500));
  }));
}

TEST_F(sim_net, reset_fault_resets_both_ends) {
  SimNetworkFaults faults;
  faults.reset_probability_per_write = 1.0;
  ASSERT_TRUE(run_in_fiber(world, [&] {
    Pair pair = connect_pair();
    world.network().set_faults(faults);
    EXPECT_EQ(pair.client->write_all(bytes_of("x"), kNever).error(), NetError::reset);
    std::vector<std::byte> buffer(4);
    EXPECT_EQ(pair.server->read_some(buffer, in(seconds(1))).error(), NetError::reset);
  }));
}

TEST_F(sim_net, refused_connect_fault) {
  SimNetworkFaults faults;
  faults.refuse_probability_per_connect = 1.0;
  world.network().set_faults(faults);
  ASSERT_TRUE(run_in_fiber(world, [&] {
    auto listener = b.listen(Address{"b", 9092}).value();
    EXPECT_EQ(a.connect(Address{"b", 9092}, in(seconds(1))).error(), NetError::refused);
  }));
}

TEST_F(sim_net, destroying_streams_during_unwinding_is_safe) {
  auto scope = std::make_unique<Scope>(world.scheduler(), "doomed");
  bool blocked = false;
  scope->spawn("reader", [&] {
    Pair pair = connect_pair();
    std::vector<std::byte> buffer(4);
    blocked = true;
    (void)pair.server->read_some(buffer, kNever);
    ADD_FAILURE() << "the read should be cancelled";
  });
  ASSERT_TRUE(world.run_until([&] { return blocked; }));
  world.run_for(milliseconds(10));
  scope.reset();  // unwinds the reader: its streams and listener are destroyed mid-read
  world.run_for(milliseconds(10));
  EXPECT_EQ(world.network().live_connection_count(), 0u);
}

}  // namespace
}  // namespace sluice::sim
