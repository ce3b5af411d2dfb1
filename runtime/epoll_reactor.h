#pragma once
// The runtime's Reactor: sleeps in epoll_pwait2 until a file descriptor is ready, a completion is
// posted from another thread, or the scheduler's next timer is due.
//
// Concurrency: everything runs on the scheduler's thread except post() and request_shutdown(),
// which any thread may call (they wake the reactor through an eventfd). Readiness handlers and
// posted completions run on the scheduler's stack inside wait(): they may wake fibers but must
// not suspend, and must not remove registrations other than their own.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "core/env/reactor.h"
#include "core/env/scheduler.h"

struct epoll_event;

namespace sluice::runtime {

// Reads CLOCK_MONOTONIC (what std::chrono::steady_clock is on Linux) as an Instant.
Instant monotonic_now();

class EpollReactor final : public Reactor {
 public:
  // Gets readiness events (EPOLLIN, EPOLLOUT, EPOLLERR, ...) for one registered fd.
  class Handler {
   public:
    virtual void on_ready(std::uint32_t events) = 0;

   protected:
    ~Handler() = default;
  };

  // Whether a registration is a reason to keep running: sockets and in-flight IO are; the
  // reactor's own wakeup and signal fds are not (see wait()).
  enum class Liveness : std::uint8_t { keeps_alive, background };

  EpollReactor();
  ~EpollReactor() override;
  EpollReactor(const EpollReactor&) = delete;
  EpollReactor& operator=(const EpollReactor&) = delete;

  Instant now() const override { return monotonic_now(); }
  // Returns false only after request_shutdown() when nothing keeps the reactor alive: no
  // keeps_alive registration, no held outside work, and no timer.
  bool wait(std::optional<Instant> next_timer) override;

  // Registers `fd` (edge-triggered when `events` has EPOLLET). Returns 0 or an errno value.
  int add(int fd, std::uint32_t events, Handler& handler,
          Liveness liveness = Liveness::keeps_alive);
  // Deregisters `fd`; call before closing it. Pending events for it are dropped.
  void remove(int fd, Liveness liveness = Liveness::keeps_alive);

  // Thread-safe: runs `completion` on the reactor thread during a later wait().
  void post(std::function<void()> completion);
  // Outside work in flight (an IO-thread job) whose completion will arrive through post():
  // hold() before submitting it, release() when its completion runs. Reactor thread only.
  void hold();
  void release();

  // Thread-safe: from now on wait() returns false as soon as nothing keeps the reactor alive.
  void request_shutdown();
  bool shutdown_requested() const { return shutdown_requested_.load(std::memory_order_acquire); }

  std::size_t registrations() const { return registrations_alive_; }

 private:
  struct WakeupHandler final : Handler {
    explicit WakeupHandler(EpollReactor& reactor) : reactor(reactor) {}
    void on_ready(std::uint32_t events) override;
    EpollReactor& reactor;
  };

  int wait_for_events(std::optional<Instant> next_timer, epoll_event* events);
  void drain_wakeup_fd();
  void run_posted();
  bool can_stop(std::optional<Instant> next_timer);

  int epoll_fd_ = -1;
  int wakeup_fd_ = -1;
  WakeupHandler wakeup_handler_{*this};
  bool use_epoll_pwait2_ = true;
  std::size_t registrations_alive_ = 0;
  std::size_t holds_ = 0;
  std::atomic<bool> shutdown_requested_ = false;

  std::mutex posted_mutex_;
  std::vector<std::function<void()>> posted_;          // guarded by posted_mutex_
  std::vector<std::function<void()>> posted_running_;  // reactor thread only
};

// One non-blocking fd (socket) registered edge-triggered for both directions, with at most one
// reader fiber and one writer fiber waiting on it at a time. The protocol: try the syscall; on
// EAGAIN call wait_readable()/wait_writable() and try again. Because the fiber always tries first
// and readiness edges are only consumed by waiters, no edge is lost; wakeups may be spurious.
class FdWatch final : private EpollReactor::Handler {
 public:
  FdWatch(EpollReactor& reactor, int fd);
  ~FdWatch();
  FdWatch(const FdWatch&) = delete;
  FdWatch& operator=(const FdWatch&) = delete;

  // 0 on success, else the errno of the registration.
  int registration_error() const { return registration_error_; }

  // Suspend the current fiber until the fd may be ready, the deadline passes (timed_out) or
  // wake_all() is called. Throw FiberCancelled if the fiber's scope is cancelled.
  WakeReason wait_readable(Instant deadline);
  WakeReason wait_writable(Instant deadline);

  // Deregisters the fd (before its owner closes it) and wakes both waiters, which must then
  // notice that their owner was closed.
  void detach_and_wake_all();

  bool has_waiters() const { return reader_.has_value() || writer_.has_value(); }

 private:
  // The scheduler is remembered so that a waiter can be woken even from outside run().
  struct Waiter {
    Scheduler* scheduler = nullptr;
    WaitTicket ticket;
  };

  void on_ready(std::uint32_t events) override;
  WakeReason wait(std::optional<Waiter>& slot, Instant deadline);
  static void wake(std::optional<Waiter>& slot);

  EpollReactor& reactor_;
  int fd_;
  int registration_error_ = 0;
  bool attached_ = false;
  std::optional<Waiter> reader_;
  std::optional<Waiter> writer_;
};

}  // namespace sluice::runtime
