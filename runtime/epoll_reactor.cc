#include "runtime/epoll_reactor.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sluice::runtime {

namespace {

constexpr int kEventsPerWaitMax = 256;

[[noreturn]] void fatal_errno(const char* what) {
  std::fprintf(stderr, "sluice: fatal: %s: %s\n", what, std::strerror(errno));
  std::fflush(stderr);
  std::abort();
}

}  // namespace

Instant monotonic_now() {
  static_assert(std::chrono::steady_clock::is_steady);
  return Instant(
      std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now().time_since_epoch()));
}

EpollReactor::EpollReactor() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) fatal_errno("epoll_create1");
  wakeup_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeup_fd_ < 0) fatal_errno("eventfd");
  // Level-triggered: a wakeup that races with draining is seen on the next wait.
  if (add(wakeup_fd_, EPOLLIN, wakeup_handler_, Liveness::background) != 0) {
    fatal_errno("epoll_ctl(wakeup eventfd)");
  }
}

EpollReactor::~EpollReactor() {
  assert(registrations_alive_ == 0 && "EpollReactor destroyed with registered fds");
  ::close(wakeup_fd_);
  ::close(epoll_fd_);
}

int EpollReactor::add(int fd, std::uint32_t events, Handler& handler, Liveness liveness) {
  assert(fd >= 0);
  epoll_event event{};
  event.events = events;
  event.data.ptr = &handler;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) return errno;
  if (liveness == Liveness::keeps_alive) registrations_alive_++;
  return 0;
}

void EpollReactor::remove(int fd, Liveness liveness) {
  assert(fd >= 0);
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr) != 0) fatal_errno("epoll_ctl(DEL)");
  if (liveness == Liveness::keeps_alive) {
    assert(registrations_alive_ > 0);
    registrations_alive_--;
  }
}

void EpollReactor::post(std::function<void()> completion) {
  {
    std::lock_guard lock(posted_mutex_);
    posted_.push_back(std::move(completion));
  }
  const std::uint64_t one = 1;
  // EAGAIN means the counter is saturated, so the reactor is certain to wake anyway.
  [[maybe_unused]] const ssize_t written = ::write(wakeup_fd_, &one, sizeof(one));
}

void EpollReactor::hold() {
  holds_++;
}

void EpollReactor::release() {
  assert(holds_ > 0);
  holds_--;
}

void EpollReactor::request_shutdown() {
  shutdown_requested_.store(true, std::memory_order_release);
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = ::write(wakeup_fd_, &one, sizeof(one));
}

bool EpollReactor::can_stop(std::optional<Instant> next_timer) {
  if (!shutdown_requested()) return false;
  if (registrations_alive_ > 0 || holds_ > 0 || next_timer.has_value()) return false;
  std::lock_guard lock(posted_mutex_);
  return posted_.empty();
}

bool EpollReactor::wait(std::optional<Instant> next_timer) {
  if (can_stop(next_timer)) return false;
  epoll_event events[kEventsPerWaitMax];
  const int count = wait_for_events(next_timer, events);
  assert(count >= 0 && count <= kEventsPerWaitMax);
  for (int index = 0; index < count; ++index) {
    static_cast<Handler*>(events[index].data.ptr)->on_ready(events[index].events);
  }
  return true;
}

int EpollReactor::wait_for_events(std::optional<Instant> next_timer, epoll_event* events) {
  std::optional<Duration> timeout;
  if (next_timer) timeout = std::max(Duration::zero(), *next_timer - now());
  int count = -1;
  if (use_epoll_pwait2_) {
    timespec timeout_spec{};
    if (timeout) {
      timeout_spec.tv_sec = static_cast<time_t>(timeout->count() / 1'000'000'000);
      timeout_spec.tv_nsec = static_cast<long>(timeout->count() % 1'000'000'000);
    }
    count = ::epoll_pwait2(epoll_fd_, events, kEventsPerWaitMax, timeout ? &timeout_spec : nullptr,
                           nullptr);
    if (count < 0 && errno == ENOSYS) use_epoll_pwait2_ = false;
  }
  if (!use_epoll_pwait2_) {
    // Millisecond resolution: round up so that a timer never fires early.
    int timeout_ms = -1;
    if (timeout) {
      const auto ms = (timeout->count() + 999'999) / 1'000'000;
      timeout_ms = static_cast<int>(std::min<std::int64_t>(ms, INT_MAX));
    }
    count = ::epoll_wait(epoll_fd_, events, kEventsPerWaitMax, timeout_ms);
  }
  if (count < 0) {
    if (errno == EINTR) return 0;
    fatal_errno("epoll_wait");
  }
  return count;
}

void EpollReactor::WakeupHandler::on_ready(std::uint32_t events) {
  (void)events;
  reactor.drain_wakeup_fd();
  reactor.run_posted();
}

void EpollReactor::drain_wakeup_fd() {
  std::uint64_t counter = 0;
  // Drain before taking the posted list: a post() after this read writes the eventfd again.
  [[maybe_unused]] const ssize_t got = ::read(wakeup_fd_, &counter, sizeof(counter));
}

void EpollReactor::run_posted() {
  assert(posted_running_.empty());
  {
    std::lock_guard lock(posted_mutex_);
    posted_running_.swap(posted_);
  }
  for (auto& completion : posted_running_) completion();
  posted_running_.clear();
}

// ---- FdWatch ----

FdWatch::FdWatch(EpollReactor& reactor, int fd) : reactor_(reactor), fd_(fd) {
  registration_error_ = reactor_.add(fd_, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, *this);
  attached_ = registration_error_ == 0;
}

FdWatch::~FdWatch() {
  // A fiber still waiting here would resume into a destroyed object.
  assert(!has_waiters() && "FdWatch destroyed while a fiber waits on it");
  if (attached_) reactor_.remove(fd_);
}

WakeReason FdWatch::wait_readable(Instant deadline) {
  return wait(reader_, deadline);
}

WakeReason FdWatch::wait_writable(Instant deadline) {
  return wait(writer_, deadline);
}

WakeReason FdWatch::wait(std::optional<Waiter>& slot, Instant deadline) {
  assert(attached_);
  assert(!slot.has_value() && "two fibers wait for the same direction of one fd");
  Scheduler& scheduler = Scheduler::current();
  slot = Waiter{&scheduler, scheduler.prepare_wait()};
  const WaitTicket ticket = slot->ticket;
  // Forget the ticket on every way out, including FiberCancelled unwinding through here.
  struct Forget {
    std::optional<Waiter>& slot;
    ~Forget() { slot.reset(); }
  } forget{slot};
  return scheduler.suspend(ticket, deadline);
}

void FdWatch::wake(std::optional<Waiter>& slot) {
  if (!slot) return;
  slot->scheduler->wake(slot->ticket);
  slot.reset();
}

void FdWatch::on_ready(std::uint32_t events) {
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) wake(reader_);
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) wake(writer_);
}

void FdWatch::detach_and_wake_all() {
  if (attached_) {
    reactor_.remove(fd_);
    attached_ = false;
  }
  wake(reader_);
  wake(writer_);
}

}  // namespace sluice::runtime
