// The shared scheduler core and its primitives, driven in virtual time (SimReactor) so every
// expectation about ordering and timing is exact.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/env/sync.h"
#include "sim/sim_reactor.h"

namespace sluice {
namespace {

class SchedulerTest : public ::testing::Test {
 protected:
  sim::SimReactor reactor;
  Scheduler scheduler{reactor};
  std::vector<std::string> events;

  Instant at_ms(std::int64_t ms) const { return Instant(milliseconds(ms)); }
  std::int64_t now_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(scheduler.now().time_since_epoch()).count();
  }
};

TEST_F(SchedulerTest, spawned_fibers_run_in_fifo_order) {
  Scope scope(scheduler, "test");
  for (int i = 0; i < 5; ++i) scope.spawn("f", [this, i] { events.push_back(std::to_string(i)); });
  scheduler.run();
  EXPECT_EQ(events, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
  EXPECT_EQ(scheduler.live_fibers(), 0u);
}

TEST_F(SchedulerTest, sleeps_wake_in_deadline_order_at_exact_virtual_times) {
  Scope scope(scheduler, "test");
  for (int ms : {30, 10, 20, 10}) {
    scope.spawn("sleeper", [this, ms] {
      this_fiber::sleep_for(milliseconds(ms));
      events.push_back(std::to_string(ms) + "@" + std::to_string(now_ms()));
    });
  }
  scheduler.run();
  EXPECT_EQ(events, (std::vector<std::string>{"10@10", "10@10", "20@20", "30@30"}));
}

TEST_F(SchedulerTest, yield_interleaves_fibers) {
  Scope scope(scheduler, "test");
  for (const char* name : {"a", "b"}) {
    scope.spawn(name, [this, name] {
      for (int i = 0; i < 2; ++i) {
        events.push_back(name);
        this_fiber::yield();
      }
    });
  }
  scheduler.run();
  EXPECT_EQ(events, (std::vector<std::string>{"a", "b", "a", "b"}));
}

TEST_F(SchedulerTest, event_wait_times_out_at_deadline) {
  Scope scope(scheduler, "test");
  Event event;
  bool result = true;
  scope.spawn("waiter", [&] { result = event.wait(at_ms(50)); });
  scheduler.run();
  EXPECT_FALSE(result);
  EXPECT_EQ(now_ms(), 50);
}

TEST_F(SchedulerTest, event_set_wakes_all_waiters) {
  Scope scope(scheduler, "test");
  Event event;
  int woken = 0;
  for (int i = 0; i < 3; ++i) scope.spawn("waiter", [&] { woken += event.wait(at_ms(100)) ? 1 : 0; });
  scope.spawn("setter", [&] {
    this_fiber::sleep_for(milliseconds(5));
    event.set();
  });
  scheduler.run();
  EXPECT_EQ(woken, 3);
  EXPECT_EQ(now_ms(), 5);  // the waiters' deadline timers were cancelled, time did not jump to 100
}

TEST_F(SchedulerTest, mutex_excludes_across_suspension_and_is_fifo) {
  Scope scope(scheduler, "test");
  Mutex mutex;
  int inside = 0;
  int inside_max = 0;
  for (int i = 0; i < 4; ++i) {
    scope.spawn("worker", [&, i] {
      LockGuard guard(mutex);
      inside++;
      inside_max = std::max(inside_max, inside);
      events.push_back(std::to_string(i));
      this_fiber::sleep_for(milliseconds(1));
      inside--;
    });
  }
  scheduler.run();
  EXPECT_EQ(inside_max, 1);
  EXPECT_EQ(events, (std::vector<std::string>{"0", "1", "2", "3"}));
  EXPECT_EQ(now_ms(), 4);
}

TEST_F(SchedulerTest, semaphore_acquire_times_out_without_permits) {
  Scope scope(scheduler, "test");
  Semaphore semaphore(1);
  bool first = false;
  bool second = true;
  scope.spawn("a", [&] { first = semaphore.acquire(1, at_ms(10)); });
  scope.spawn("b", [&] { second = semaphore.acquire(1, at_ms(10)); });
  scheduler.run();
  EXPECT_TRUE(first);
  EXPECT_FALSE(second);
  EXPECT_EQ(semaphore.available(), 0u);
}

TEST_F(SchedulerTest, channel_blocks_sender_when_full_and_preserves_order) {
  Scope scope(scheduler, "test");
  Channel<int> channel(2);
  std::vector<int> received;
  scope.spawn("sender", [&] {
    for (int i = 0; i < 5; ++i) {
      ASSERT_EQ(channel.send(i), ChannelStatus::ok);
      events.push_back("sent" + std::to_string(i));
    }
    channel.close();
  });
  scope.spawn("receiver", [&] {
    this_fiber::sleep_for(milliseconds(1));
    EXPECT_EQ(channel.size(), 2u);  // the sender filled the capacity and blocked
    int value = 0;
    while (channel.receive(value) == ChannelStatus::ok) received.push_back(value);
  });
  scheduler.run();
  EXPECT_EQ(received, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST_F(SchedulerTest, channel_receive_times_out_then_close_reports_closed) {
  Scope scope(scheduler, "test");
  Channel<int> channel(1);
  std::vector<ChannelStatus> statuses;
  scope.spawn("receiver", [&] {
    int value = 0;
    statuses.push_back(channel.receive(value, at_ms(5)));
    statuses.push_back(channel.receive(value));
  });
  scope.spawn("closer", [&] {
    this_fiber::sleep_for(milliseconds(20));
    channel.close();
  });
  scheduler.run();
  EXPECT_EQ(statuses, (std::vector<ChannelStatus>{ChannelStatus::timed_out, ChannelStatus::closed}));
  EXPECT_EQ(channel.send(1), ChannelStatus::closed);
}

TEST_F(SchedulerTest, promise_delivers_value_to_waiting_future) {
  Scope scope(scheduler, "test");
  Promise<std::string> promise;
  std::optional<std::string> got;
  std::optional<std::string> timed_out = std::string("unset");
  scope.spawn("consumer", [&] { got = promise.get_future().get(); });
  scope.spawn("impatient", [&] { timed_out = promise.get_future().get(at_ms(1)); });
  scope.spawn("producer", [&] {
    this_fiber::sleep_for(milliseconds(3));
    EXPECT_TRUE(promise.set_value("hello"));
    EXPECT_FALSE(promise.set_value("again"));
  });
  scheduler.run();
  EXPECT_EQ(got, "hello");
  EXPECT_EQ(timed_out, std::nullopt);
}

TEST_F(SchedulerTest, join_waits_for_fiber_end) {
  Scope scope(scheduler, "test");
  scope.spawn("parent", [&] {
    auto done = scheduler.spawn(scheduler.current_scope(), "child", [&] {
      this_fiber::sleep_for(milliseconds(7));
      events.push_back("child");
    });
    EXPECT_FALSE(scheduler.join(*done, at_ms(2)));
    EXPECT_TRUE(scheduler.join(*done));
    events.push_back("parent@" + std::to_string(now_ms()));
  });
  scheduler.run();
  EXPECT_EQ(events, (std::vector<std::string>{"child", "parent@7"}));
}

struct Recorder {
  std::vector<std::string>& events;
  std::string name;
  ~Recorder() { events.push_back("unwound " + name); }
};

TEST_F(SchedulerTest, cancel_unwinds_blocked_fibers_at_their_suspension_point) {
  Scope scope(scheduler, "test");
  Event never;
  bool after_wait = false;
  scope.spawn("blocked", [&] {
    Recorder recorder{events, "blocked"};
    never.wait();
    after_wait = true;
  });
  scope.spawn("canceller", [&] {
    this_fiber::sleep_for(milliseconds(1));
    scope.cancel();
  });
  scheduler.run();
  EXPECT_FALSE(after_wait);
  EXPECT_EQ(events, (std::vector<std::string>{"unwound blocked"}));
  EXPECT_EQ(scope.live_fibers(), 0u);
}

TEST_F(SchedulerTest, destroying_a_scope_unwinds_all_fibers_including_children) {
  Event never;
  Channel<int> channel(1);
  {
    Scope node(scheduler, "node");
    Scope connection(node, "connection");
    node.spawn("sleeper", [&] {
      Recorder recorder{events, "sleeper"};
      this_fiber::sleep_for(seconds(1000));
    });
    connection.spawn("reader", [&] {
      Recorder recorder{events, "reader"};
      int value;
      channel.receive(value);
    });
    node.spawn("never_started", [&] { events.push_back("ran"); });
    scheduler.run_until([&] { return events.empty() && scheduler.steps() >= 2; });
    EXPECT_EQ(node.live_fibers(), 3u);
  }
  EXPECT_EQ(scheduler.live_fibers(), 0u);
  EXPECT_EQ(events, (std::vector<std::string>{"unwound reader", "unwound sleeper"}));
  EXPECT_TRUE(never.is_set() == false);
}

TEST_F(SchedulerTest, blocking_call_in_destructor_during_unwinding_returns_instead_of_throwing) {
  Event never;
  bool destructor_waited = false;
  {
    Scope scope(scheduler, "test");
    struct WaitsOnDestruction {
      Event& event;
      bool& waited;
      ~WaitsOnDestruction() { waited = !event.wait(Instant(seconds(5))); }
    };
    scope.spawn("f", [&] {
      WaitsOnDestruction guard{never, destructor_waited};
      never.wait();
    });
    scheduler.run_until([&] { return scheduler.steps() >= 1; });
  }
  EXPECT_TRUE(destructor_waited);
  EXPECT_EQ(scheduler.live_fibers(), 0u);
}

TEST_F(SchedulerTest, paused_scope_does_not_run_until_resumed) {
  Scope scope(scheduler, "node");
  Scope other(scheduler, "other");
  scope.spawn("ticker", [&] {
    for (int i = 0; i < 3; ++i) {
      this_fiber::sleep_for(milliseconds(10));
      events.push_back("tick@" + std::to_string(now_ms()));
    }
  });
  other.spawn("controller", [&] {
    this_fiber::sleep_for(milliseconds(15));
    scope.pause();
    this_fiber::sleep_for(milliseconds(50));
    scope.resume();
  });
  scheduler.run();
  // The tick due at 20 ms waits until the resume at 65 ms; the next one follows 10 ms later.
  EXPECT_EQ(events, (std::vector<std::string>{"tick@10", "tick@65", "tick@75"}));
}

TEST_F(SchedulerTest, wake_before_suspend_is_not_lost) {
  Scope scope(scheduler, "test");
  WakeReason reason = WakeReason::timed_out;
  scope.spawn("self_waker", [&] {
    WaitTicket ticket = scheduler.prepare_wait();
    EXPECT_TRUE(scheduler.wake(ticket));
    reason = scheduler.suspend(ticket, at_ms(100));
  });
  scheduler.run();
  EXPECT_EQ(reason, WakeReason::notified);
  EXPECT_EQ(now_ms(), 0);
}

TEST_F(SchedulerTest, stale_ticket_does_not_wake_a_later_wait) {
  Scope scope(scheduler, "test");
  WaitTicket stale;
  bool second_result = true;
  scope.spawn("waiter", [&] {
    stale = scheduler.prepare_wait();
    scheduler.suspend(stale, at_ms(1));  // times out
    Event event;
    second_result = event.wait(at_ms(10));
  });
  scope.spawn("late_waker", [&] {
    this_fiber::sleep_for(milliseconds(5));
    EXPECT_FALSE(scheduler.wake(stale));
  });
  scheduler.run();
  EXPECT_FALSE(second_result);
  EXPECT_EQ(now_ms(), 10);
}

TEST_F(SchedulerTest, finished_fibers_stacks_serve_later_fibers) {
  Scope scope(scheduler, "test");
  // One at a time: each fiber finishes before the next is spawned, so one stack serves all.
  for (int i = 0; i < 100; ++i) {
    scope.spawn("short", [this, i] {
      char frame[512];
      frame[0] = static_cast<char>(i);  // touch the reused stack
      events.push_back(std::to_string(frame[0]));
    });
    scheduler.run();
  }
  EXPECT_EQ(events.size(), 100u);
  EXPECT_EQ(scheduler.stacks_mapped(), 1u);
  EXPECT_EQ(scheduler.stacks_cached(), 1u);
  // Ten alive at once need ten stacks; the cache keeps them all, so the next ten map none.
  for (int round = 0; round < 2; ++round) {
    Event release;
    for (int i = 0; i < 10; ++i) scope.spawn("waiter", [&release] { release.wait(); });
    scheduler.run();
    EXPECT_EQ(scheduler.live_fibers(), 10u);
    release.set();
    scheduler.run();
  }
  EXPECT_EQ(scheduler.stacks_mapped(), 10u);
  EXPECT_EQ(scheduler.stacks_cached(), 10u);
}

TEST(SchedulerStackCacheTest, cache_is_bounded) {
  sim::SimReactor reactor;
  Scheduler scheduler(reactor, SchedulerOptions{.stacks_cached_max = 3});
  Scope scope(scheduler, "test");
  Event release;
  for (int i = 0; i < 8; ++i) scope.spawn("waiter", [&release] { release.wait(); });
  scheduler.run();
  release.set();
  scheduler.run();
  EXPECT_EQ(scheduler.stacks_mapped(), 8u);
  EXPECT_EQ(scheduler.stacks_cached(), 3u);  // the other five were unmapped
  Event hold;
  for (int i = 0; i < 4; ++i) scope.spawn("again", [&hold] { hold.wait(); });
  scheduler.run();
  EXPECT_EQ(scheduler.stacks_mapped(), 9u);  // three from the cache, one new
  EXPECT_EQ(scheduler.stacks_cached(), 0u);
  hold.set();
  scheduler.run();
  EXPECT_EQ(scheduler.stacks_cached(), 3u);
}

TEST_F(SchedulerTest, trace_hash_is_a_function_of_the_schedule) {
  auto run_program = [](int sleep_ms) {
    sim::SimReactor reactor;
    Scheduler scheduler(reactor);
    {
      Scope scope(scheduler, "test");
      for (int i = 0; i < 3; ++i) scope.spawn("f", [=] { this_fiber::sleep_for(milliseconds(sleep_ms * i)); });
      scheduler.run();
    }
    return scheduler.trace_hash();
  };
  EXPECT_EQ(run_program(1), run_program(1));
  EXPECT_NE(run_program(1), run_program(2));
}

}  // namespace
}  // namespace sluice
