// The EpollReactor under the shared scheduler: real-clock sleeps and deadlines, wakeups from
// other threads, and fibers blocked in IO being woken by close() or unwound by cancellation.
// Timing bounds: lower bounds are strict (a timer never fires early), upper bounds generous.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>
#include <vector>

#include "core/env/sync.h"
#include "runtime/epoll_reactor.h"
#include "tests/runtime/runtime_test_util.h"

namespace sluice::runtime {
namespace {

using testing::connected_pair;
using testing::test_env_options;

constexpr Duration kGenerousUpperBound = seconds(2);

TEST(EpollReactor, sleeps_wake_in_deadline_order_and_never_early) {
  RuntimeEnv runtime(test_env_options());
  std::vector<int> order_ms;
  runtime.run_until_done([&](Env& env) {
    const Instant start = env.now();
    Scope sleepers(env.scheduler().current_scope(), "sleepers");
    std::vector<std::shared_ptr<FiberDone>> done;
    for (int sleep_ms : {30, 10, 20, 0}) {
      done.push_back(sleepers.spawn("sleeper", [&, sleep_ms] {
        this_fiber::sleep_for(milliseconds(sleep_ms));
        const Duration elapsed = env.now() - start;
        EXPECT_GE(elapsed, milliseconds(sleep_ms));
        EXPECT_LT(elapsed, kGenerousUpperBound);
        order_ms.push_back(sleep_ms);
      }));
    }
    for (auto& fiber : done) EXPECT_TRUE(env.scheduler().join(*fiber));
  });
  EXPECT_EQ(order_ms, (std::vector<int>{0, 10, 20, 30}));
}

TEST(EpollReactor, wait_returns_at_or_after_the_next_timer) {
  EpollReactor reactor;
  for (Duration timeout : {microseconds(100), milliseconds(3), milliseconds(12)}) {
    const Instant start = reactor.now();
    const Instant timer = start + timeout;
    // Without IO, wait() returns only at the timer (a spurious early return would be a bug).
    while (reactor.now() < timer) EXPECT_TRUE(reactor.wait(timer));
    EXPECT_LT(reactor.now() - start, kGenerousUpperBound);
  }
}

TEST(EpollReactor, wait_returns_false_only_after_shutdown_with_nothing_registered) {
  EpollReactor reactor;
  EXPECT_TRUE(reactor.wait(reactor.now()));
  reactor.request_shutdown();
  // A pending timer still keeps it alive.
  EXPECT_TRUE(reactor.wait(reactor.now() + milliseconds(1)));
  EXPECT_FALSE(reactor.wait(std::nullopt));
}

TEST(EpollReactor, post_from_another_thread_wakes_a_blocked_wait) {
  EpollReactor reactor;
  std::atomic<bool> ran = false;
  // Before the thread starts: taken after, a descheduled main thread could read it late.
  const Instant start = reactor.now();
  std::thread poster([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    reactor.post([&] { ran = true; });
  });
  // No timer at all: only the post can end this wait.
  while (!ran) EXPECT_TRUE(reactor.wait(std::nullopt));
  poster.join();
  EXPECT_GE(reactor.now() - start, milliseconds(20));
  EXPECT_LT(reactor.now() - start, kGenerousUpperBound);
}

TEST(EpollReactor, io_thread_job_does_not_block_other_fibers) {
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    bool job_done = false;
    int ticks = 0;
    Scope scope(env.scheduler().current_scope(), "ticker");
    auto ticker = scope.spawn("ticker", [&] {
      while (!job_done) {
        this_fiber::sleep_for(milliseconds(1));
        ticks++;
      }
    });
    const int result = runtime.io_thread().run([] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return 42;
    });
    job_done = true;
    EXPECT_EQ(result, 42);
    EXPECT_TRUE(env.scheduler().join(*ticker));
    // 50 ms of 1 ms sleeps: the reactor kept running timers while the IO thread worked.
    EXPECT_GE(ticks, 5);
    EXPECT_EQ(runtime.io_thread().jobs_completed(), 1u);
  });
}

TEST(EpollReactor, read_with_a_deadline_times_out) {
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    auto pair = connected_pair(env);
    ASSERT_TRUE(pair.server);
    std::byte buffer[16];
    const Instant start = env.now();
    auto got = pair.server->read_some(buffer, env.deadline_after(milliseconds(50)));
    ASSERT_FALSE(got.has_value());
    EXPECT_EQ(got.error(), NetError::timed_out);
    EXPECT_GE(env.now() - start, milliseconds(50));
    EXPECT_LT(env.now() - start, kGenerousUpperBound);
    // The stream still works after a timeout.
    ASSERT_TRUE(pair.client->write_all(testing::as_bytes("x"), env.deadline_after(seconds(5))));
    got = pair.server->read_some(buffer, env.deadline_after(seconds(5)));
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, 1u);
  });
}

TEST(EpollReactor, accept_with_a_deadline_times_out) {
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    auto listener = env.net().listen(Address{"127.0.0.1", 0});
    ASSERT_TRUE(listener.has_value());
    const Instant start = env.now();
    auto accepted = (*listener)->accept(env.deadline_after(milliseconds(30)));
    ASSERT_FALSE(accepted.has_value());
    EXPECT_EQ(accepted.error(), NetError::timed_out);
    EXPECT_GE(env.now() - start, milliseconds(30));
  });
}

// Counts destructors run while a fiber's stack unwinds.
struct UnwindWitness {
  int& unwound;
  ~UnwindWitness() { unwound++; }
};

TEST(EpollReactor, cancelling_a_scope_unwinds_fibers_blocked_in_read_and_accept) {
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    auto pair = connected_pair(env);
    ASSERT_TRUE(pair.server);
    int unwound = 0;
    bool returned = false;
    {
      Scope blocked(env.scheduler().current_scope(), "blocked");
      blocked.spawn("reader", [&] {
        UnwindWitness witness{unwound};
        std::byte buffer[16];
        (void)pair.server->read_some(buffer, kNever);
        returned = true;
      });
      blocked.spawn("acceptor", [&] {
        UnwindWitness witness{unwound};
        (void)pair.listener->accept(kNever);
        returned = true;
      });
      this_fiber::sleep_for(milliseconds(10));  // both are now blocked in epoll
      EXPECT_EQ(blocked.live_fibers(), 2u);
    }  // destroying the scope cancels and unwinds them
    EXPECT_EQ(unwound, 2);
    EXPECT_FALSE(returned);
    // Their waits are gone: the stream and listener still work.
    ASSERT_TRUE(pair.client->write_all(testing::as_bytes("y"), env.deadline_after(seconds(5))));
    std::byte buffer[16];
    EXPECT_TRUE(pair.server->read_some(buffer, env.deadline_after(seconds(5))).has_value());
  });
}

TEST(EpollReactor, close_wakes_a_reader_a_writer_and_an_acceptor_with_closed) {
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    auto pair = connected_pair(env);
    ASSERT_TRUE(pair.server);
    std::optional<NetError> read_error, write_error, accept_error;
    Scope scope(env.scheduler().current_scope(), "blocked");
    auto reader = scope.spawn("reader", [&] {
      std::byte buffer[16];
      auto got = pair.server->read_some(buffer, kNever);
      if (!got) read_error = got.error();
    });
    auto writer = scope.spawn("writer", [&] {
      // Nobody reads the other end: the send buffer fills and the writer blocks.
      std::vector<std::byte> chunk(1 << 20);
      for (;;) {
        auto written = pair.server->write_all(chunk, kNever);
        if (!written) {
          write_error = written.error();
          return;
        }
      }
    });
    auto acceptor = scope.spawn("acceptor", [&] {
      auto accepted = pair.listener->accept(kNever);
      if (!accepted) accept_error = accepted.error();
    });
    this_fiber::sleep_for(milliseconds(50));
    EXPECT_FALSE(read_error || write_error || accept_error);
    pair.server->close();
    pair.listener->close();
    EXPECT_TRUE(env.scheduler().join(*reader, env.deadline_after(seconds(5))));
    EXPECT_TRUE(env.scheduler().join(*writer, env.deadline_after(seconds(5))));
    EXPECT_TRUE(env.scheduler().join(*acceptor, env.deadline_after(seconds(5))));
    EXPECT_EQ(read_error, NetError::closed);
    EXPECT_EQ(write_error, NetError::closed);
    EXPECT_EQ(accept_error, NetError::closed);
  });
}

TEST(EpollReactor, one_reader_and_one_writer_share_a_stream) {
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    auto pair = connected_pair(env);
    ASSERT_TRUE(pair.server);
    constexpr std::size_t kBytes = 8 << 20;
    // The server echoes in one fiber; the client writes and reads in two at the same time.
    Scope scope(env.scheduler().current_scope(), "echo");
    auto echo = scope.spawn("echo", [&] {
      std::vector<std::byte> buffer(64 << 10);
      for (;;) {
        auto got = pair.server->read_some(buffer, env.deadline_after(seconds(10)));
        if (!got) return;
        if (!pair.server->write_all(std::span(buffer).first(*got),
                                    env.deadline_after(seconds(10)))) {
          return;
        }
      }
    });
    std::size_t received = 0;
    bool in_order = true;
    auto reader = scope.spawn("reader", [&] {
      std::vector<std::byte> buffer(64 << 10);
      while (received < kBytes) {
        auto got = pair.client->read_some(buffer, env.deadline_after(seconds(10)));
        ASSERT_TRUE(got.has_value());
        for (std::size_t index = 0; index < *got; ++index) {
          in_order &= buffer[index] == static_cast<std::byte>((received + index) % 253);
        }
        received += *got;
      }
    });
    std::vector<std::byte> chunk(1 << 20);
    for (std::size_t offset = 0; offset < kBytes; offset += chunk.size()) {
      for (std::size_t index = 0; index < chunk.size(); ++index) {
        chunk[index] = static_cast<std::byte>((offset + index) % 253);
      }
      ASSERT_TRUE(pair.client->write_all(chunk, env.deadline_after(seconds(10))));
    }
    EXPECT_TRUE(env.scheduler().join(*reader, env.deadline_after(seconds(10))));
    EXPECT_EQ(received, kBytes);
    EXPECT_TRUE(in_order);
    pair.client->close();
    EXPECT_TRUE(env.scheduler().join(*echo, env.deadline_after(seconds(10))));
  });
}

TEST(RuntimeEnv, first_signal_sets_shutdown_and_second_forces_the_stop) {
  RuntimeEnvOptions options = test_env_options();
  options.handle_signals = true;
  RuntimeEnv runtime(options);
  bool saw_shutdown = false;
  int unwound = 0;
  const int exit_code = runtime.run([&](Env& env, Event& shutdown) {
    UnwindWitness witness{unwound};
    // Blocked in this thread, so raise() leaves the signal pending for the signalfd.
    ::raise(SIGTERM);
    saw_shutdown = shutdown.wait(env.deadline_after(seconds(5)));
    ::raise(SIGINT);
    // A main that ignores the shutdown request is stopped and unwound by the second signal.
    this_fiber::sleep_for(seconds(30));
  });
  EXPECT_TRUE(saw_shutdown);
  EXPECT_EQ(exit_code, 1);
  EXPECT_EQ(unwound, 1);
}

TEST(RuntimeEnv, run_returns_zero_when_main_returns_and_unwinds_what_it_left) {
  RuntimeEnv runtime(test_env_options());
  int unwound = 0;
  const int exit_code = runtime.run([&](Env& env, Event& shutdown) {
    EXPECT_FALSE(shutdown.is_set());
    env.scheduler().current_scope().spawn("left-behind", [&] {
      UnwindWitness witness{unwound};
      this_fiber::sleep_for(seconds(30));
    });
    this_fiber::yield();
  });
  EXPECT_EQ(exit_code, 0);
  EXPECT_EQ(unwound, 1);
  EXPECT_EQ(runtime.scheduler().live_fibers(), 0u);
}

}  // namespace
}  // namespace sluice::runtime
