#include "core/env/scheduler.h"

#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#if defined(SLUICE_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace sluice {

namespace context = boost::context;

namespace {

thread_local Scheduler* g_current_scheduler = nullptr;

// AddressSanitizer must be told about every stack switch (Debian's Boost.Context is the fcontext
// build, which does not do it itself).
inline void asan_start_switch(void** fake_stack_save, const void* bottom, std::size_t size) {
#if defined(SLUICE_ASAN)
  __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
#else
  (void)fake_stack_save;
  (void)bottom;
  (void)size;
#endif
}

inline void asan_finish_switch(void* fake_stack_save, const void** bottom_old, std::size_t* size_old) {
#if defined(SLUICE_ASAN)
  __sanitizer_finish_switch_fiber(fake_stack_save, bottom_old, size_old);
#else
  (void)fake_stack_save;
  (void)bottom_old;
  (void)size_old;
#endif
}

[[noreturn]] void fatal(const char* what, std::string_view fiber_name) {
  std::fprintf(stderr, "sluice: fatal: fiber '%.*s': %s\n", static_cast<int>(fiber_name.size()),
               fiber_name.data(), what);
  std::fflush(stderr);
  std::abort();
}

constexpr int kUnwindResumesMax = 1000;
constexpr std::uint32_t kStepsBetweenPolls = 64;

}  // namespace

// Lends fiber stacks (guard page below, as protected_fixedsize_stack maps them) and keeps up to
// `cached_max` returned ones for reuse. Single-threaded like its scheduler.
class StackPool {
 public:
  StackPool(std::size_t stack_size, std::size_t cached_max)
      : allocator_(stack_size), cached_max_(cached_max) {}
  ~StackPool() {
    for (context::stack_context& stack : cached_) allocator_.deallocate(stack);
  }
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  context::stack_context take() {
    if (cached_.empty()) {
      ++mapped_;
      return allocator_.allocate();
    }
    context::stack_context stack = cached_.back();
    cached_.pop_back();
    return stack;
  }
  void give_back(context::stack_context& stack) {
    if (cached_.size() < cached_max_) {
      cached_.push_back(stack);
    } else {
      allocator_.deallocate(stack);
    }
  }
  std::uint64_t mapped() const { return mapped_; }
  std::size_t cached() const { return cached_.size(); }

 private:
  context::protected_fixedsize_stack allocator_;
  std::size_t cached_max_;
  std::vector<context::stack_context> cached_;
  std::uint64_t mapped_ = 0;
};

namespace {

// The StackAllocator Boost.Context keeps inside a fiber: hands the stack back to the pool when
// the fiber's context is destroyed.
class PooledStack {
 public:
  explicit PooledStack(StackPool& pool) : pool_(&pool) {}
  context::stack_context allocate() { return pool_->take(); }
  void deallocate(context::stack_context& stack) noexcept { pool_->give_back(stack); }

 private:
  StackPool* pool_;
};

}  // namespace

enum class FiberState : std::uint8_t { not_started, runnable, running, waiting, done };

struct Fiber {
  FiberId id = 0;
  std::string name;
  Scope* scope = nullptr;
  FiberBody body;
  context::fiber continuation;  // this fiber's suspended continuation
  context::fiber caller;        // whoever resumed it (valid while it runs)
  FiberState state = FiberState::not_started;
  std::uint64_t wait_id = 0;
  WakeReason wake_reason = WakeReason::notified;
  std::optional<WakeReason> early_wake;
  bool cancel_requested = false;
  std::shared_ptr<FiberDone> done;
  const void* stack_bottom = nullptr;
  std::size_t stack_size = 0;
  const void* caller_stack_bottom = nullptr;
  std::size_t caller_stack_size = 0;
};

Scheduler::Scheduler(Reactor& reactor, SchedulerOptions options)
    : reactor_(reactor),
      options_(options),
      stacks_(std::make_unique<StackPool>(options.stack_size_bytes, options.stacks_cached_max)) {}

std::uint64_t Scheduler::stacks_mapped() const { return stacks_->mapped(); }
std::size_t Scheduler::stacks_cached() const { return stacks_->cached(); }

Scheduler::~Scheduler() {
  if (!fibers_.empty()) {
    std::fprintf(stderr, "sluice: fatal: scheduler destroyed with %zu live fibers (destroy scopes first)\n",
                 fibers_.size());
    std::abort();
  }
  if (g_current_scheduler == this) g_current_scheduler = nullptr;
}

Scheduler& Scheduler::current() {
  assert(g_current_scheduler != nullptr && "no scheduler is running on this thread");
  return *g_current_scheduler;
}

bool Scheduler::has_current() { return g_current_scheduler != nullptr; }

void Scheduler::trace(std::uint64_t value) {
  // A cheap, well-mixed running hash (splitmix64 finaliser over the xor).
  std::uint64_t h = trace_hash_ ^ (value + 0x9e3779b97f4a7c15ULL);
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  trace_hash_ = h ^ (h >> 31);
}

Fiber* Scheduler::find(FiberId id) const {
  auto it = fibers_.find(id);
  return it == fibers_.end() ? nullptr : it->second.get();
}

FiberId Scheduler::current_fiber_id() const {
  assert(current_ != nullptr);
  return current_->id;
}

std::string_view Scheduler::current_fiber_name() const {
  return current_ == nullptr ? std::string_view("scheduler") : std::string_view(current_->name);
}

Scope& Scheduler::current_scope() const {
  assert(current_ != nullptr);
  return *current_->scope;
}

std::shared_ptr<FiberDone> Scheduler::spawn(Scope& scope, std::string name,
                                            FiberBody body) {
  assert(&scope.scheduler() == this);
  auto fiber = std::make_unique<Fiber>();
  Fiber* raw = fiber.get();
  raw->id = next_fiber_id_++;
  raw->name = std::move(name);
  raw->scope = &scope;
  raw->body = std::move(body);
  raw->done = std::make_shared<FiberDone>();
  if (scope.cancelled()) raw->cancel_requested = true;

  PooledStack allocator(*stacks_);
  context::stack_context stack = allocator.allocate();
  raw->stack_size = stack.size;
  raw->stack_bottom = static_cast<char*>(stack.sp) - stack.size;
#if defined(SLUICE_ASAN)
  // A finished fiber never returns from its outermost frames (it switches away), so their
  // redzones stay poisoned; when a reused stack (or one mmap hands back at the same addresses)
  // serves a new fiber, that stale poison reads as a stack-buffer-overflow. A new fiber's stack
  // starts clean.
  __asan_unpoison_memory_region(raw->stack_bottom, raw->stack_size);
#endif
  raw->continuation = context::fiber(
      std::allocator_arg, context::preallocated(stack.sp, stack.size, stack), allocator,
      [this, raw](context::fiber&& caller) -> context::fiber {
        raw->caller = std::move(caller);
        asan_finish_switch(nullptr, &raw->caller_stack_bottom, &raw->caller_stack_size);
        if (!raw->cancel_requested) {
          try {
            raw->body();
          } catch (const FiberCancelled&) {
            // Normal end of a cancelled fiber: its stack is unwound.
          } catch (const context::detail::forced_unwind&) {
            throw;
          } catch (const std::exception& error) {
            fatal(error.what(), raw->name);
          } catch (...) {
            fatal("unknown exception", raw->name);
          }
        }
        raw->body = nullptr;
        raw->state = FiberState::done;
        asan_start_switch(nullptr, raw->caller_stack_bottom, raw->caller_stack_size);
        return std::move(raw->caller);
      });
  (void)this;
  scope.fibers_.emplace(raw->id, raw);
  auto done = raw->done;
  fibers_.emplace(raw->id, std::move(fiber));
  raw->state = FiberState::runnable;
  run_queue_.push_back(raw->id);
  trace(raw->id);
  return done;
}

void Scheduler::make_runnable(Fiber& fiber) {
  fiber.state = FiberState::runnable;
  run_queue_.push_back(fiber.id);
}

void Scheduler::resume(Fiber& fiber) {
  assert(fiber.state == FiberState::runnable);
  Fiber* previous = current_;
  current_ = &fiber;
  fiber.state = FiberState::running;
  void* fake_stack = nullptr;
  asan_start_switch(&fake_stack, fiber.stack_bottom, fiber.stack_size);
  fiber.continuation = std::move(fiber.continuation).resume();
  asan_finish_switch(fake_stack, nullptr, nullptr);
  current_ = previous;
  if (fiber.state == FiberState::done) finish(fiber);
}

void Scheduler::switch_out(Fiber& fiber) {
  assert(current_ == &fiber);
  void* fake_stack = nullptr;
  asan_start_switch(&fake_stack, fiber.caller_stack_bottom, fiber.caller_stack_size);
  fiber.caller = std::move(fiber.caller).resume();
  asan_finish_switch(fake_stack, &fiber.caller_stack_bottom, &fiber.caller_stack_size);
  assert(current_ == &fiber);
}

void Scheduler::finish(Fiber& fiber) {
  assert(fiber.state == FiberState::done);
  assert(!fiber.continuation);
  fiber.done->done_ = true;
  for (const WaitTicket& ticket : fiber.done->waiters_) wake(ticket);
  fiber.done->waiters_.clear();
  fiber.scope->fibers_.erase(fiber.id);
  destroy(fiber.id);
}

void Scheduler::destroy(FiberId id) { fibers_.erase(id); }

WaitTicket Scheduler::prepare_wait() {
  assert(current_ != nullptr && "blocking call outside a fiber");
  current_->wait_id++;
  current_->early_wake.reset();
  return WaitTicket{current_->id, current_->wait_id};
}

WakeReason Scheduler::suspend(WaitTicket ticket, Instant deadline) {
  assert(current_ != nullptr && "blocking call outside a fiber");
  Fiber& fiber = *current_;
  assert(ticket.fiber_id == fiber.id && ticket.wait_id == fiber.wait_id);
  auto cancelled = [&fiber]() -> WakeReason {
    fiber.wait_id++;
    if (std::uncaught_exceptions() > 0) return WakeReason::cancelled;
    throw FiberCancelled{};
  };
  if (fiber.cancel_requested) return cancelled();
  if (fiber.early_wake) {
    WakeReason reason = *fiber.early_wake;
    fiber.early_wake.reset();
    fiber.wait_id++;
    return reason;
  }
  if (deadline <= now()) {
    fiber.wait_id++;
    return WakeReason::timed_out;
  }
  TimerId timer = 0;
  if (deadline != kNever) {
    timer = schedule_at(deadline, [this, ticket] { wake(ticket, WakeReason::timed_out); });
  }
  fiber.state = FiberState::waiting;
  switch_out(fiber);
  if (timer != 0) cancel_timer(timer);
  fiber.wait_id++;  // Any later wake with this ticket is stale.
  if (fiber.cancel_requested || fiber.wake_reason == WakeReason::cancelled) return cancelled();
  return fiber.wake_reason;
}

bool Scheduler::wake(WaitTicket ticket, WakeReason reason) {
  Fiber* fiber = find(ticket.fiber_id);
  if (fiber == nullptr || fiber->wait_id != ticket.wait_id) return false;
  if (fiber->state == FiberState::running) {
    // Woken between prepare_wait() and suspend(): suspend() returns at once.
    if (!fiber->early_wake) fiber->early_wake = reason;
    return true;
  }
  if (fiber->state != FiberState::waiting) return false;
  fiber->wake_reason = reason;
  make_runnable(*fiber);
  return true;
}

void Scheduler::yield() {
  assert(current_ != nullptr);
  Fiber& fiber = *current_;
  if (fiber.cancel_requested) {
    if (std::uncaught_exceptions() > 0) return;
    throw FiberCancelled{};
  }
  make_runnable(fiber);
  switch_out(fiber);
  if (fiber.cancel_requested && std::uncaught_exceptions() == 0) throw FiberCancelled{};
}

bool Scheduler::join(FiberDone& done, Instant deadline) {
  while (!done.done_) {
    WaitTicket ticket = prepare_wait();
    done.waiters_.push_back(ticket);
    WakeReason reason = suspend(ticket, deadline);
    if (reason != WakeReason::notified) break;
  }
  return done.done_;
}

TimerId Scheduler::schedule_at(Instant at, std::function<void()> callback) {
  TimerId id = next_timer_id_++;
  timers_.emplace(TimerKey{at, id}, std::move(callback));
  timer_deadlines_.emplace(id, at);
  return id;
}

void Scheduler::cancel_timer(TimerId id) {
  auto it = timer_deadlines_.find(id);
  if (it == timer_deadlines_.end()) return;
  timers_.erase(TimerKey{it->second, id});
  timer_deadlines_.erase(it);
}

std::optional<Instant> Scheduler::next_timer() const {
  if (timers_.empty()) return std::nullopt;
  return timers_.begin()->first.at;
}

void Scheduler::fire_due_timers() {
  // Bounded: only timers that exist when this starts fire now; one that a callback schedules
  // for "now" waits for the next step, so a callback cannot keep the loop going forever.
  const Instant due = now();
  const TimerId first_new_timer = next_timer_id_;
  while (!timers_.empty()) {
    auto it = timers_.begin();
    if (it->first.at > due) return;
    if (it->first.sequence >= first_new_timer) {
      // Look past this one for older due timers (rare: only same-instant reschedules).
      auto older = std::find_if(it, timers_.end(), [&](const auto& entry) {
        return entry.first.at > due || entry.first.sequence < first_new_timer;
      });
      if (older == timers_.end() || older->first.at > due) return;
      it = older;
    }
    TimerId id = it->first.sequence;
    std::function<void()> callback = std::move(it->second);
    timers_.erase(it);
    timer_deadlines_.erase(id);
    trace(id);
    trace(static_cast<std::uint64_t>(due.time_since_epoch().count()));
    callback();
  }
}

bool Scheduler::run_one_step() {
  fire_due_timers();
  // Busy fibers must not starve IO: every so often, collect ready events without blocking.
  if (!run_queue_.empty() && ++steps_since_poll_ >= kStepsBetweenPolls) {
    steps_since_poll_ = 0;
    reactor_.wait(now());
  }
  while (!run_queue_.empty()) {
    FiberId id = run_queue_.front();
    run_queue_.pop_front();
    Fiber* fiber = find(id);
    if (fiber == nullptr || fiber->state != FiberState::runnable) continue;
    if (fiber->scope->paused()) {
      fiber->scope->parked_.push_back(id);
      continue;
    }
    steps_++;
    trace(id);
    trace(static_cast<std::uint64_t>(now().time_since_epoch().count()));
    resume(*fiber);
    return true;
  }
  steps_since_poll_ = 0;
  return reactor_.wait(next_timer());
}

bool Scheduler::run_until(const std::function<bool()>& done) {
  Scheduler* previous = g_current_scheduler;
  g_current_scheduler = this;
  bool finished = done();
  while (!finished && !stop_requested_) {
    if (!run_one_step()) break;
    finished = done();
  }
  stop_requested_ = false;  // a stop() ends one run; one requested between runs ends the next
  g_current_scheduler = previous;
  return finished;
}

void Scheduler::run() {
  run_until([] { return false; });
}

void Scheduler::run_until_time(Instant until) {
  bool reached = now() >= until;
  TimerId timer = schedule_at(until, [&reached] { reached = true; });
  run_until([&reached] { return reached; });
  cancel_timer(timer);
}

void Scheduler::cancel_fiber(Fiber& fiber) {
  fiber.cancel_requested = true;
  if (fiber.state == FiberState::waiting) {
    fiber.wake_reason = WakeReason::cancelled;
    make_runnable(fiber);
  }
}

void Scheduler::unwind_now(Fiber& fiber) {
  if (&fiber == current_) fatal("a fiber destroyed its own scope", fiber.name);
  fiber.cancel_requested = true;
  Scheduler* previous = g_current_scheduler;
  g_current_scheduler = this;
  FiberId id = fiber.id;
  if (fiber.state == FiberState::not_started || fiber.state == FiberState::runnable ||
      fiber.state == FiberState::waiting) {
    for (int attempt = 0; attempt < kUnwindResumesMax; ++attempt) {
      Fiber* live = find(id);
      if (live == nullptr) break;
      if (live->state == FiberState::running) fatal("unwinding a running fiber", live->name);
      live->state = FiberState::runnable;
      live->wake_reason = WakeReason::cancelled;
      resume(*live);
      if (attempt + 1 == kUnwindResumesMax) fatal("fiber does not finish when cancelled", live->name);
    }
  }
  g_current_scheduler = previous;
}

// ---- Scope ----

Scope::Scope(Scheduler& scheduler, std::string name) : scheduler_(scheduler), name_(std::move(name)) {}

Scope::Scope(Scope& parent, std::string name)
    : scheduler_(parent.scheduler_), parent_(&parent), name_(parent.name_ + "/" + std::move(name)) {
  child_key_ = parent.next_child_key_++;
  parent.children_.emplace(child_key_, this);
  cancelled_ = parent.cancelled_;
}

Scope::~Scope() {
  cancel();
  unwind_all();
  for (auto& [key, child] : children_) child->parent_ = nullptr;
  if (parent_ != nullptr) parent_->children_.erase(child_key_);
}

void Scope::cancel() {
  cancelled_ = true;
  for (auto& [id, fiber] : fibers_) scheduler_.cancel_fiber(*fiber);
  for (auto& [key, child] : children_) child->cancel();
}

void Scope::unwind_all() {
  // Children first: their fibers are often owned by objects living on this scope's fibers.
  for (int round = 0; round < kUnwindResumesMax; ++round) {
    if (!children_.empty()) {
      // Copy: unwinding may destroy child scopes, which unlink themselves.
      std::map<std::uint64_t, Scope*> children = children_;
      for (auto& [key, child] : children) {
        if (children_.count(key) != 0) child->unwind_all();
      }
    }
    if (fibers_.empty()) {
      if (live_fibers() == 0) return;
      continue;
    }
    scheduler_.unwind_now(*fibers_.begin()->second);
  }
  std::fprintf(stderr, "sluice: fatal: scope '%s' could not unwind its fibers\n", name_.c_str());
  std::abort();
}

std::size_t Scope::live_fibers() const {
  std::size_t total = fibers_.size();
  for (const auto& [key, child] : children_) total += child->live_fibers();
  return total;
}

void Scope::pause() { paused_ = true; }

bool Scope::paused() const {
  for (const Scope* scope = this; scope != nullptr; scope = scope->parent_) {
    if (scope->paused_) return true;
  }
  return false;
}

void Scope::resume() {
  paused_ = false;
  scheduler_.resume_parked(*this);
}

void Scheduler::resume_parked(Scope& scope) {
  if (scope.paused()) return;
  while (!scope.parked_.empty()) {
    run_queue_.push_back(scope.parked_.front());
    scope.parked_.pop_front();
  }
  for (auto& [key, child] : scope.children_) resume_parked(*child);
}

// ---- this_fiber ----

namespace this_fiber {

void yield() { Scheduler::current().yield(); }

Instant now() { return Scheduler::current().now(); }

void sleep_until(Instant deadline) {
  Scheduler& scheduler = Scheduler::current();
  while (scheduler.now() < deadline) {
    WaitTicket ticket = scheduler.prepare_wait();
    WakeReason reason = scheduler.suspend(ticket, deadline);
    if (reason != WakeReason::notified) return;
  }
}

void sleep_for(Duration duration) { sleep_until(add_saturating(this_fiber::now(), duration)); }

}  // namespace this_fiber

}  // namespace sluice
