#pragma once
// Fiber synchronisation primitives. All are single-threaded (one scheduler), FIFO-fair, and every
// blocking call takes a deadline. Cancellation of the waiting fiber's scope throws FiberCancelled
// out of the blocking call (see Scheduler::suspend).

#include <cassert>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <utility>

#include "core/env/scheduler.h"

namespace sluice {

// A FIFO queue of waiting fibers: the building block of the primitives below.
class WaitQueue {
 public:
  WaitQueue() = default;
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;
  ~WaitQueue() { assert(head_ == nullptr && "WaitQueue destroyed with waiters"); }

  // Suspends the current fiber until notified or the deadline passes.
  WakeReason wait(Instant deadline);
  // Wakes the longest waiter; returns false if there was none.
  bool notify_one();
  void notify_all();
  bool empty() const { return head_ == nullptr; }

 private:
  struct Waiter {
    Scheduler* scheduler = nullptr;  // lets notify work outside run() too (e.g. from a test)
    WaitTicket ticket;
    Waiter* previous = nullptr;
    Waiter* next = nullptr;
    bool linked = false;
  };
  void link(Waiter& waiter);
  void unlink(Waiter& waiter);

  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

// A manual-reset event.
class Event {
 public:
  void set() {
    set_ = true;
    waiters_.notify_all();
  }
  void reset() { set_ = false; }
  bool is_set() const { return set_; }
  // Returns true if the event is set, false on timeout.
  bool wait(Instant deadline = kNever);

 private:
  bool set_ = false;
  WaitQueue waiters_;
};

// A counting semaphore; acquires are served in FIFO order.
class Semaphore {
 public:
  explicit Semaphore(std::size_t permits) : permits_(permits) {}
  // Returns false on timeout.
  bool acquire(std::size_t count = 1, Instant deadline = kNever);
  bool try_acquire(std::size_t count = 1);
  void release(std::size_t count = 1);
  std::size_t available() const { return permits_; }

 private:
  std::size_t permits_;
  std::size_t waiting_ = 0;
  WaitQueue waiters_;
};

class Mutex {
 public:
  // Returns false on timeout.
  bool lock(Instant deadline = kNever) { return semaphore_.acquire(1, deadline); }
  bool try_lock() { return semaphore_.try_acquire(1); }
  void unlock() { semaphore_.release(1); }
  bool locked() const { return semaphore_.available() == 0; }

 private:
  Semaphore semaphore_{1};
};

class LockGuard {
 public:
  explicit LockGuard(Mutex& mutex) : mutex_(mutex) { mutex_.lock(); }
  ~LockGuard() { mutex_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  Mutex& mutex_;
};

// One value handed from a producer to any number of waiting consumers.
template <typename T>
class Future;

template <typename T>
class Promise {
 public:
  Promise() : state_(std::make_shared<State>()) {}
  Future<T> get_future() const { return Future<T>(state_); }
  // Only the first value counts; returns false if a value was already set.
  bool set_value(T value) {
    if (state_->value) return false;
    state_->value.emplace(std::move(value));
    state_->ready.set();
    return true;
  }
  bool ready() const { return state_->value.has_value(); }

 private:
  friend class Future<T>;
  struct State {
    std::optional<T> value;
    Event ready;
  };
  std::shared_ptr<State> state_;
};

template <typename T>
class Future {
 public:
  bool ready() const { return state_->value.has_value(); }
  // Waits for the value; nullopt on timeout. The value stays in the shared state (copied out).
  std::optional<T> get(Instant deadline = kNever) const {
    if (!state_->ready.wait(deadline)) return std::nullopt;
    return state_->value;
  }

 private:
  friend class Promise<T>;
  explicit Future(std::shared_ptr<typename Promise<T>::State> state) : state_(std::move(state)) {}
  std::shared_ptr<typename Promise<T>::State> state_;
};

enum class ChannelStatus : std::uint8_t { ok, timed_out, closed };

// A bounded FIFO channel. Senders block while full; receivers while empty. close() wakes all:
// receivers drain what is queued, then get `closed`.
template <typename T>
class Channel {
 public:
  explicit Channel(std::size_t capacity) : capacity_(capacity) { assert(capacity > 0); }

  ChannelStatus send(T value, Instant deadline = kNever) {
    while (!closed_ && items_.size() >= capacity_) {
      if (not_full_.wait(deadline) == WakeReason::timed_out) {
        if (!closed_ && items_.size() >= capacity_) return ChannelStatus::timed_out;
      }
    }
    if (closed_) return ChannelStatus::closed;
    items_.push_back(std::move(value));
    not_empty_.notify_one();
    return ChannelStatus::ok;
  }

  bool try_send(T value) {
    if (closed_ || items_.size() >= capacity_) return false;
    items_.push_back(std::move(value));
    not_empty_.notify_one();
    return true;
  }

  ChannelStatus receive(T& out, Instant deadline = kNever) {
    while (items_.empty() && !closed_) {
      if (not_empty_.wait(deadline) == WakeReason::timed_out) {
        if (items_.empty() && !closed_) return ChannelStatus::timed_out;
      }
    }
    if (items_.empty()) return ChannelStatus::closed;
    out = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return ChannelStatus::ok;
  }

  void close() {
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }
  bool closed() const { return closed_; }
  std::size_t size() const { return items_.size(); }
  std::size_t capacity() const { return capacity_; }

 private:
  std::size_t capacity_;
  bool closed_ = false;
  std::deque<T> items_;
  WaitQueue not_empty_;
  WaitQueue not_full_;
};

}  // namespace sluice
