// One suite of env behaviours, run against both worlds: the simulator (SimWorld, virtual time)
// and the runtime (epoll, real sockets on loopback, real files in a temp directory). Broker code
// may rely on exactly what passes here in both.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "core/env/env.h"
#include "core/env/sync.h"
#include "runtime/runtime_env.h"
#include "sim/world.h"

namespace sluice {
namespace {

enum class WorldKind { sim, runtime };

std::string world_name(const ::testing::TestParamInfo<WorldKind>& info) {
  return info.param == WorldKind::sim ? "sim" : "runtime";
}

using Body = std::function<void(Env& env, const std::string& directory)>;

void run_in_world(WorldKind kind, const Body& body) {
  if (kind == WorldKind::sim) {
    sim::SimWorld world(42);
    bool done = false;
    world.add_node("node", [&](Env& env) {
      body(env, "data");
      done = true;
    });
    ASSERT_TRUE(world.run_until([&] { return done; })) << "the body never finished";
    return;
  }
  std::string directory = (std::filesystem::temp_directory_path() / "sluice-contract-XXXXXX").string();
  ASSERT_NE(mkdtemp(directory.data()), nullptr);
  {
    runtime::RuntimeEnvOptions options;
    options.handle_signals = false;
    runtime::RuntimeEnv env(options);
    ASSERT_TRUE(env.run_until_done([&](Env& e) { body(e, directory + "/data"); }));
  }
  std::filesystem::remove_all(directory);
}

Duration elapsed_since(Env& env, Instant start) { return env.now() - start; }

std::span<const std::byte> text_bytes(const std::string& text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

std::string to_text(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

const Address kAnyPort{"127.0.0.1", 0};

class EnvContract : public ::testing::TestWithParam<WorldKind> {};

TEST_P(EnvContract, sleeps_end_in_deadline_order_and_not_early) {
  run_in_world(GetParam(), [](Env& env, const std::string&) {
    std::vector<int> order;
    const Instant start = env.now();
    Scope& scope = env.scheduler().current_scope();
    auto slow = scope.spawn("slow", [&] {
      this_fiber::sleep_for(milliseconds(40));
      order.push_back(40);
    });
    auto fast = scope.spawn("fast", [&] {
      this_fiber::sleep_for(milliseconds(10));
      order.push_back(10);
    });
    env.scheduler().join(*slow);
    env.scheduler().join(*fast);
    EXPECT_EQ(order, (std::vector<int>{10, 40}));
    EXPECT_GE(elapsed_since(env, start), milliseconds(40));
    EXPECT_LT(elapsed_since(env, start), seconds(5));
  });
}

TEST_P(EnvContract, event_wait_honours_its_deadline) {
  run_in_world(GetParam(), [](Env& env, const std::string&) {
    Event event;
    const Instant start = env.now();
    EXPECT_FALSE(event.wait(env.deadline_after(milliseconds(15))));
    EXPECT_GE(elapsed_since(env, start), milliseconds(15));
    Scope& scope = env.scheduler().current_scope();
    scope.spawn("setter", [&] {
      this_fiber::sleep_for(milliseconds(5));
      event.set();
    });
    EXPECT_TRUE(event.wait(env.deadline_after(seconds(5))));
  });
}

TEST_P(EnvContract, clock_is_monotonic_and_wall_clock_is_plausible) {
  run_in_world(GetParam(), [](Env& env, const std::string&) {
    const Instant first = env.now();
    this_fiber::sleep_for(milliseconds(1));
    EXPECT_GT(env.now(), first);
    EXPECT_GT(env.clock().wall_ms(), 1'600'000'000'000);  // after 2020
  });
}

TEST_P(EnvContract, destroying_a_scope_unwinds_a_fiber_blocked_in_accept) {
  run_in_world(GetParam(), [](Env& env, const std::string&) {
    auto listener = env.net().listen(kAnyPort);
    ASSERT_TRUE(listener.has_value());
    bool unwound = false;
    bool accepted = false;
    {
      Scope child(env.scheduler().current_scope(), "child");
      child.spawn("acceptor", [&] {
        struct Flag {
          bool& flag;
          ~Flag() { flag = true; }
        } flag{unwound};
        accepted = (*listener)->accept(kNever).has_value();
      });
      this_fiber::sleep_for(milliseconds(5));
      EXPECT_FALSE(unwound);
    }
    EXPECT_TRUE(unwound);
    EXPECT_FALSE(accepted);
  });
}

TEST_P(EnvContract, connect_to_a_port_nobody_listens_on_is_refused) {
  run_in_world(GetParam(), [](Env& env, const std::string&) {
    auto listener = env.net().listen(kAnyPort);
    ASSERT_TRUE(listener.has_value());
    const Address address = (*listener)->local_address();
    (*listener)->close();
    listener->reset();
    auto stream = env.net().connect(address, env.deadline_after(seconds(5)));
    ASSERT_FALSE(stream.has_value());
    EXPECT_EQ(stream.error(), NetError::refused);
  });
}

TEST_P(EnvContract, bytes_round_trip_in_order_and_close_is_seen_as_end_of_stream) {
  run_in_world(GetParam(), [](Env& env, const std::string&) {
    auto listener = env.net().listen(kAnyPort);
    ASSERT_TRUE(listener.has_value());
    const Address address = (*listener)->local_address();
    std::size_t echoed = 0;
    NetError server_end = NetError::io;
    auto server = env.scheduler().current_scope().spawn("echo", [&] {
      auto stream = (*listener)->accept(env.deadline_after(seconds(5)));
      ASSERT_TRUE(stream.has_value());
      std::byte buffer[4096];
      for (;;) {
        auto got = (*stream)->read_some(buffer, env.deadline_after(seconds(5)));
        if (!got) {
          server_end = got.error();
          break;
        }
        ASSERT_TRUE((*stream)->write_all(std::span(buffer, *got), env.deadline_after(seconds(5))).has_value());
        echoed += *got;
      }
      (*stream)->close();
    });
    auto client = env.net().connect(address, env.deadline_after(seconds(5)));
    ASSERT_TRUE(client.has_value());
    std::string message(100'000, '\0');
    for (std::size_t i = 0; i < message.size(); ++i) message[i] = static_cast<char>('a' + i * 7 % 26);
    ASSERT_TRUE((*client)->write_all(text_bytes(message), env.deadline_after(seconds(5))).has_value());
    std::vector<std::byte> back(message.size());
    ASSERT_TRUE((*client)->read_exact(back, env.deadline_after(seconds(5))).has_value());
    EXPECT_EQ(to_text(back), message);
    (*client)->close();
    env.scheduler().join(*server);
    EXPECT_EQ(echoed, message.size());
    EXPECT_EQ(server_end, NetError::closed);
  });
}

TEST_P(EnvContract, read_times_out_at_its_deadline_when_the_peer_is_silent) {
  run_in_world(GetParam(), [](Env& env, const std::string&) {
    auto listener = env.net().listen(kAnyPort);
    ASSERT_TRUE(listener.has_value());
    std::unique_ptr<Stream> accepted;
    env.scheduler().current_scope().spawn("acceptor", [&] {
      auto stream = (*listener)->accept(env.deadline_after(seconds(5)));
      if (stream) accepted = std::move(*stream);
    });
    auto client = env.net().connect((*listener)->local_address(), env.deadline_after(seconds(5)));
    ASSERT_TRUE(client.has_value());
    std::byte buffer[16];
    const Instant start = env.now();
    auto got = (*client)->read_some(buffer, env.deadline_after(milliseconds(30)));
    ASSERT_FALSE(got.has_value());
    EXPECT_EQ(got.error(), NetError::timed_out);
    EXPECT_GE(elapsed_since(env, start), milliseconds(30));
  });
}

TEST_P(EnvContract, files_support_every_operation_and_report_errors_as_values) {
  run_in_world(GetParam(), [](Env& env, const std::string& directory) {
    Disk& disk = env.disk();
    ASSERT_TRUE(disk.create_directories(directory + "/sub").has_value());
    EXPECT_TRUE(disk.create_directories(directory + "/sub").has_value());  // idempotent
    const std::string path = directory + "/sub/a.log";

    auto missing = disk.open(path, OpenMode::read_write);
    ASSERT_FALSE(missing.has_value());
    EXPECT_EQ(missing.error(), DiskError::not_found);

    auto file = disk.open(path, OpenMode::create_new);
    ASSERT_TRUE(file.has_value());
    auto again = disk.open(path, OpenMode::create_new);
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error(), DiskError::already_exists);

    ASSERT_TRUE((*file)->write_at(0, text_bytes("hello")).has_value());
    auto appended_at = (*file)->append(text_bytes(" world"));
    ASSERT_TRUE(appended_at.has_value());
    EXPECT_EQ(*appended_at, 5u);
    ASSERT_TRUE((*file)->datasync().has_value());
    EXPECT_EQ((*file)->size().value(), 11u);

    std::vector<std::byte> buffer(64);
    auto got = (*file)->read_at(6, buffer);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(to_text(std::span(buffer).first(*got)), "world");  // short read at end of file

    ASSERT_TRUE((*file)->truncate(5).has_value());
    EXPECT_EQ((*file)->size().value(), 5u);
    ASSERT_TRUE((*file)->datasync().has_value());

    ASSERT_TRUE(disk.rename(path, directory + "/sub/b.log").has_value());
    ASSERT_TRUE(disk.sync_directory(directory + "/sub").has_value());
    EXPECT_FALSE(disk.exists(path).value());
    EXPECT_TRUE(disk.exists(directory + "/sub/b.log").value());
    EXPECT_EQ(disk.list(directory + "/sub").value(), (std::vector<std::string>{"b.log"}));

    auto not_empty = disk.remove(directory + "/sub");
    ASSERT_FALSE(not_empty.has_value());
    EXPECT_EQ(not_empty.error(), DiskError::not_empty);
    (*file)->close();
    ASSERT_TRUE(disk.remove(directory + "/sub/b.log").has_value());
    ASSERT_TRUE(disk.remove(directory + "/sub").has_value());
    EXPECT_EQ(disk.remove(directory + "/sub").error(), DiskError::not_found);
    EXPECT_EQ(disk.list(directory + "/nope").error(), DiskError::not_found);
  });
}

TEST_P(EnvContract, data_read_back_after_datasync_from_a_reopened_file) {
  run_in_world(GetParam(), [](Env& env, const std::string& directory) {
    ASSERT_TRUE(env.disk().create_directories(directory).has_value());
    const std::string path = directory + "/durable.bin";
    std::vector<std::byte> data(256 * 1024);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 131 + 7);
    {
      auto file = env.disk().open(path, OpenMode::create);
      ASSERT_TRUE(file.has_value());
      ASSERT_TRUE((*file)->append(data).has_value());
      ASSERT_TRUE((*file)->datasync().has_value());
      (*file)->close();
    }
    auto file = env.disk().open(path, OpenMode::read_only);
    ASSERT_TRUE(file.has_value());
    std::vector<std::byte> back(data.size());
    ASSERT_EQ((*file)->read_at(0, back).value(), data.size());
    EXPECT_EQ(back, data);
  });
}

TEST_P(EnvContract, drop_cache_is_advice_that_changes_nothing_readable) {
  run_in_world(GetParam(), [](Env& env, const std::string& directory) {
    ASSERT_TRUE(env.disk().create_directories(directory).has_value());
    const std::string path = directory + "/dropped.log";
    std::vector<std::byte> data(3 * 4096 + 100);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 7 + 1);
    auto file = env.disk().open(path, OpenMode::create_new);
    ASSERT_TRUE(file.has_value());
    ASSERT_TRUE((*file)->append(data).has_value());
    ASSERT_TRUE((*file)->datasync().has_value());
    (*file)->drop_cache(0, 2 * 4096);
    (*file)->drop_cache(4096, 1 << 30);  // past the end: harmless
    (*file)->drop_cache(0, 0);
    std::vector<std::byte> back(data.size());
    ASSERT_EQ((*file)->read_at(0, back).value(), data.size());
    EXPECT_EQ(back, data);
    // Appends after a drop land at the end as before.
    ASSERT_TRUE((*file)->append(text_bytes("tail")).has_value());
    EXPECT_EQ((*file)->size().value(), data.size() + 4);
    (*file)->close();
    (*file)->drop_cache(0, 4096);  // on a closed file: ignored
  });
}

TEST_P(EnvContract, allocate_grows_a_file_with_zeros_and_never_shrinks_it) {
  run_in_world(GetParam(), [](Env& env, const std::string& directory) {
    ASSERT_TRUE(env.disk().create_directories(directory).has_value());
    const std::string path = directory + "/preallocated.log";
    {
      auto file = env.disk().open(path, OpenMode::create_new);
      ASSERT_TRUE(file.has_value());
      ASSERT_TRUE((*file)->write_at(0, text_bytes("abc")).has_value());
      ASSERT_TRUE((*file)->allocate(3, 8189).has_value());
      EXPECT_EQ((*file)->size().value(), 8192u);
      // Writes inside the allocated range keep the size; a smaller allocation changes nothing.
      ASSERT_TRUE((*file)->write_at(3, text_bytes("def")).has_value());
      ASSERT_TRUE((*file)->allocate(0, 10).has_value());
      EXPECT_EQ((*file)->size().value(), 8192u);
      ASSERT_TRUE((*file)->datasync().has_value());
      (*file)->close();
    }
    auto file = env.disk().open(path, OpenMode::read_only);
    ASSERT_TRUE(file.has_value());
    EXPECT_EQ((*file)->size().value(), 8192u);
    std::vector<std::byte> back(8192, std::byte{0x77});
    ASSERT_EQ((*file)->read_at(0, back).value(), back.size());
    EXPECT_EQ(to_text(std::span(back).first(6)), "abcdef");
    EXPECT_TRUE(std::all_of(back.begin() + 6, back.end(), [](std::byte b) { return b == std::byte{0}; }));
  });
}

TEST_P(EnvContract, send_file_delivers_exactly_the_requested_file_range) {
  run_in_world(GetParam(), [](Env& env, const std::string& directory) {
    ASSERT_TRUE(env.disk().create_directories(directory).has_value());
    auto file = env.disk().open(directory + "/segment.log", OpenMode::create);
    ASSERT_TRUE(file.has_value());
    std::vector<std::byte> data(1 << 20);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>((i * 2654435761u) >> 13);
    ASSERT_TRUE((*file)->append(data).has_value());
    auto listener = env.net().listen(kAnyPort);
    ASSERT_TRUE(listener.has_value());
    constexpr std::uint64_t kOffset = 1000;
    constexpr std::size_t kSize = 700'000;
    auto sender = env.scheduler().current_scope().spawn("sender", [&] {
      auto stream = (*listener)->accept(env.deadline_after(seconds(5)));
      ASSERT_TRUE(stream.has_value());
      EXPECT_TRUE((*stream)->send_file(**file, kOffset, kSize, env.deadline_after(seconds(10))).has_value());
      // Asking past the end of the file is an error, not a short send.
      EXPECT_EQ((*stream)->send_file(**file, data.size() - 10, 20, env.deadline_after(seconds(5))).error(),
                NetError::io);
      (*stream)->close();
    });
    auto client = env.net().connect((*listener)->local_address(), env.deadline_after(seconds(5)));
    ASSERT_TRUE(client.has_value());
    std::vector<std::byte> received(kSize);
    ASSERT_TRUE((*client)->read_exact(received, env.deadline_after(seconds(10))).has_value());
    EXPECT_TRUE(std::equal(received.begin(), received.end(), data.begin() + kOffset));
    env.scheduler().join(*sender);
  });
}

INSTANTIATE_TEST_SUITE_P(BothWorlds, EnvContract, ::testing::Values(WorldKind::sim, WorldKind::runtime),
                         world_name);

}  // namespace
}  // namespace sluice
