#pragma once
// The fiber scheduler shared by both worlds: stackful fibers (Boost.Context), a FIFO run queue, a
// timer queue ordered by (time, sequence), cancellation scopes, and a running trace hash.
//
// Concurrency: single-threaded. Every fiber of a scheduler runs on the thread that calls run().
// Determinism: ordering depends only on spawn order, timer (time, sequence) and wake order; no
// container is iterated in an order that depends on addresses or hashing.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/env/reactor.h"
#include "core/env/time.h"

namespace sluice {

class Scope;
struct Fiber;

using FiberId = std::uint64_t;
using TimerId = std::uint64_t;
// Move-only, so fibers can own what they serve (a socket, a file).
using FiberBody = std::move_only_function<void()>;

// Why a suspended fiber was resumed.
enum class WakeReason : std::uint8_t { notified, timed_out, cancelled };

// Thrown at a suspension point of a fiber whose scope was cancelled, to unwind its stack.
// Broker code must not swallow it (catch it only to rethrow).
struct FiberCancelled {};

// Everything needed to wake one particular wait of one fiber; a stale ticket (the fiber has
// moved on to another wait, or is gone) wakes nothing.
struct WaitTicket {
  FiberId fiber_id = 0;
  std::uint64_t wait_id = 0;
};

// Completion of a spawned fiber, for joining.
class FiberDone {
 public:
  bool done() const { return done_; }

 private:
  friend class Scheduler;
  bool done_ = false;
  std::deque<WaitTicket> waiters_;
};

struct SchedulerOptions {
  std::size_t stack_size_bytes = 256 * 1024;
  // Finished fibers' stacks kept for the next spawns. Mapping and unmapping a stack per fiber
  // cost a TLB shoot-down across CPUs per munmap: 16% of the broker's CPU with ~10,000 Produce
  // requests a second (one short fiber each).
  std::size_t stacks_cached_max = 64;
};

class StackPool;

class Scheduler {
 public:
  explicit Scheduler(Reactor& reactor, SchedulerOptions options = {});
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // The scheduler whose fiber is running on this thread (or which is inside run()).
  static Scheduler& current();
  static bool has_current();

  Instant now() const { return reactor_.now(); }

  // Runs fibers and timers until stop() is called, or nothing can happen any more.
  void run();
  // Runs until `done()` is true (checked after every fiber step and timer), stop(), or idle.
  // A stop() ends the current run; one requested while no run is active ends the next run.
  // Returns done().
  bool run_until(const std::function<bool()>& done);
  // Runs until the monotonic clock reaches `until` (or idle / stop()).
  void run_until_time(Instant until);
  void stop() { stop_requested_ = true; }
  bool stop_requested() const { return stop_requested_; }

  // Spawns a fiber in `scope`; it first runs when the scheduler reaches it in the run queue.
  std::shared_ptr<FiberDone> spawn(Scope& scope, std::string name, FiberBody body);

  // Timers run callbacks on the scheduler stack (not in a fiber): they must not suspend.
  TimerId schedule_at(Instant at, std::function<void()> callback);
  void cancel_timer(TimerId id);
  std::optional<Instant> next_timer() const;

  // ---- Fiber side: valid only inside a fiber of this scheduler. ----
  bool in_fiber() const { return current_ != nullptr; }
  FiberId current_fiber_id() const;
  std::string_view current_fiber_name() const;
  Scope& current_scope() const;

  // Prepares a wait of the current fiber: the ticket can be handed to a wait queue or an IO
  // callback before suspend() is called.
  WaitTicket prepare_wait();
  // Suspends the current fiber until its ticket is woken or `deadline` passes.
  // Throws FiberCancelled if its scope is cancelled (returns `cancelled` instead while the
  // fiber is already unwinding, so destructors may still call blocking code safely).
  WakeReason suspend(WaitTicket ticket, Instant deadline);
  // Wakes a waiting fiber. Returns false if the ticket is stale.
  bool wake(WaitTicket ticket, WakeReason reason = WakeReason::notified);
  // Puts the current fiber at the back of the run queue.
  void yield();
  // Blocks until `done` completes (or deadline). Returns true if the fiber finished.
  bool join(FiberDone& done, Instant deadline = kNever);

  // ---- Trace: every fiber step and timer folds into this hash (determinism check). ----
  std::uint64_t trace_hash() const { return trace_hash_; }
  void trace(std::uint64_t value);
  std::uint64_t steps() const { return steps_; }

  std::size_t live_fibers() const { return fibers_.size(); }
  // Stacks mapped so far and stacks waiting in the cache (for tests and metrics).
  std::uint64_t stacks_mapped() const;
  std::size_t stacks_cached() const;

 private:
  friend class Scope;
  struct TimerKey {
    Instant at;
    TimerId sequence;
    bool operator<(const TimerKey& other) const {
      return at != other.at ? at < other.at : sequence < other.sequence;
    }
  };

  Fiber* find(FiberId id) const;
  void make_runnable(Fiber& fiber);
  void resume(Fiber& fiber);
  void switch_out(Fiber& fiber);
  void finish(Fiber& fiber);
  void destroy(FiberId id);
  bool run_one_step();
  void fire_due_timers();
  void cancel_fiber(Fiber& fiber);
  void unwind_now(Fiber& fiber);
  void resume_parked(Scope& scope);

  Reactor& reactor_;
  SchedulerOptions options_;
  // Before fibers_: outlives every fiber whose stack it lends.
  std::unique_ptr<StackPool> stacks_;
  Fiber* current_ = nullptr;
  bool stop_requested_ = false;
  FiberId next_fiber_id_ = 1;
  TimerId next_timer_id_ = 1;
  std::unordered_map<FiberId, std::unique_ptr<Fiber>> fibers_;
  std::deque<FiberId> run_queue_;
  std::map<TimerKey, std::function<void()>> timers_;
  std::unordered_map<TimerId, Instant> timer_deadlines_;
  std::uint64_t trace_hash_ = 0xcbf29ce484222325ULL;
  std::uint64_t steps_ = 0;
  std::uint32_t steps_since_poll_ = 0;
};

// A cancellation scope: owns a set of fibers (and child scopes). cancel() makes every fiber in it
// throw FiberCancelled at its next suspension point. Destroying a scope cancels it and unwinds
// all its fibers before returning: this is how the simulator crashes a node. A scope may be
// paused (its fibers are not run, timers still fire) to model a process stall.
class Scope {
 public:
  Scope(Scheduler& scheduler, std::string name);
  Scope(Scope& parent, std::string name);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

  std::shared_ptr<FiberDone> spawn(std::string name, FiberBody body) {
    return scheduler_.spawn(*this, std::move(name), std::move(body));
  }
  void cancel();
  bool cancelled() const { return cancelled_; }
  void pause();
  void resume();
  bool paused() const;
  const std::string& name() const { return name_; }
  Scheduler& scheduler() const { return scheduler_; }
  // Fibers in this scope and its children that have not finished.
  std::size_t live_fibers() const;

 private:
  friend class Scheduler;
  void unwind_all();

  Scheduler& scheduler_;
  Scope* parent_ = nullptr;
  std::string name_;
  bool cancelled_ = false;
  bool paused_ = false;
  std::map<FiberId, Fiber*> fibers_;
  std::map<std::uint64_t, Scope*> children_;
  std::uint64_t child_key_ = 0;
  std::uint64_t next_child_key_ = 1;
  std::deque<FiberId> parked_;  // runnable while paused
};

// Free functions for broker code: they act on the current fiber's scheduler.
namespace this_fiber {
void yield();
// Sleeps are cut short only by cancellation (which throws FiberCancelled).
void sleep_for(Duration duration);
void sleep_until(Instant deadline);
Instant now();
}  // namespace this_fiber

}  // namespace sluice
