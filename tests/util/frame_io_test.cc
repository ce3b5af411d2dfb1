// read_frame in a simulated network: bodies that arrive in pieces of every size read back whole,
// and a peer that announces more than it sends gets an error, not a hang.
#include "core/util/frame_io.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "core/util/bytes.h"
#include "sim/world.h"

namespace sluice {
namespace {

// Runs `sender` on one end of a connection and returns what read_frame made of it.
std::expected<Bytes, NetError> receive(std::uint64_t seed, std::uint32_t frame_max,
                                       const std::function<void(Env&, Stream&)>& sender) {
  sim::SimWorld world(seed);
  bool done = false;
  std::expected<Bytes, NetError> result = std::unexpected(NetError::io);
  world.add_node("node", [&](Env& env) {
    auto listener = env.net().listen(Address{"127.0.0.1", 0});
    ASSERT_TRUE(listener.has_value());
    env.scheduler().current_scope().spawn("sender", [&] {
      auto client = env.net().connect((*listener)->local_address(), env.deadline_after(seconds(5)));
      ASSERT_TRUE(client.has_value());
      sender(env, **client);
      (*client)->close();
    });
    auto server = (*listener)->accept(env.deadline_after(seconds(5)));
    ASSERT_TRUE(server.has_value());
    result = read_frame(**server, frame_max, env.deadline_after(seconds(30)));
    done = true;
  });
  EXPECT_TRUE(world.run_until([&] { return done; }));
  return result;
}

TEST(FrameIo, a_large_body_arriving_in_pieces_of_every_size_reads_back_whole) {
  for (const std::size_t body_bytes : {std::size_t{1}, std::size_t{65536}, std::size_t{65537},
                                       std::size_t{(1 << 20) + 7}}) {
    Bytes body(body_bytes);
    for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<std::byte>(i * 31 + 7);
    auto got = receive(body_bytes + 1, 8 << 20, [&](Env& env, Stream& stream) {
      Bytes frame;
      ByteWriter(frame).u32(static_cast<std::uint32_t>(body.size()));
      frame.insert(frame.end(), body.begin(), body.end());
      std::size_t sent = 0;
      std::size_t piece = 1;
      while (sent < frame.size()) {
        const std::size_t now = std::min(piece, frame.size() - sent);
        ASSERT_TRUE(stream.write_all(std::span(frame).subspan(sent, now), env.deadline_after(seconds(5))));
        sent += now;
        piece = piece * 3 + 1;  // 1, 4, 13, 40, ... bytes: reads end everywhere
        this_fiber::sleep_for(microseconds(50));
      }
    });
    ASSERT_TRUE(got.has_value()) << body_bytes;
    EXPECT_EQ(*got, body) << body_bytes;
  }
}

TEST(FrameIo, a_peer_that_announces_more_than_it_sends_gets_an_error) {
  auto got = receive(7, 100 << 20, [](Env& env, Stream& stream) {
    Bytes size;
    ByteWriter(size).u32(64 << 20);
    ASSERT_TRUE(stream.write_all(size, env.deadline_after(seconds(5))));
    const Bytes part(100 * 1024);  // past the first chunk, then the peer goes away
    ASSERT_TRUE(stream.write_all(part, env.deadline_after(seconds(5))));
  });
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error(), NetError::closed);
}

}  // namespace
}  // namespace sluice
