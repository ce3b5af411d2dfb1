#include "runtime/io_thread.h"

#include <cassert>
#include <cerrno>
#include <memory>
#include <utility>

namespace sluice::runtime {

namespace {

// Shared by the submitting fiber and the completion, which may outlive a cancelled fiber.
struct JobState {
  bool done = false;
  int result = 0;
  Scheduler* scheduler = nullptr;
  WaitTicket ticket;  // the fiber's current wait; touched on the reactor thread only
};

}  // namespace

IoThread::IoThread(EpollReactor& reactor, std::size_t threads) : reactor_(reactor) {
  assert(threads > 0);
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { loop(); });
}

IoThread::~IoThread() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_available_.notify_all();
  for (std::thread& thread : threads_) thread.join();
}

int IoThread::run(std::function<int()> job) {
  Scheduler& scheduler = Scheduler::current();
  auto state = std::make_shared<JobState>();
  state->scheduler = &scheduler;
  state->ticket = scheduler.prepare_wait();
  reactor_.hold();
  {
    std::lock_guard lock(mutex_);
    assert(!stopping_);
    queue_.push_back([this, state, job = std::move(job)] {
      const int result = job();
      // The completion runs on the reactor thread, so `state` is only written there.
      reactor_.post([this, state, result] {
        reactor_.release();
        jobs_completed_++;
        state->result = result;
        state->done = true;
        state->scheduler->wake(state->ticket);
      });
    });
  }
  work_available_.notify_one();
  while (!state->done) {
    // Nothing but the completion knows this ticket, so a wake means done; loop to be sure.
    // While the fiber is already unwinding, suspend() returns `cancelled` at once instead of
    // throwing; give up waiting then (the job still completes on its own).
    if (scheduler.suspend(state->ticket, kNever) == WakeReason::cancelled) return ECANCELED;
    if (!state->done) state->ticket = scheduler.prepare_wait();
  }
  return state->result;
}

void IoThread::post(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    assert(!stopping_);
    queue_.push_back(std::move(job));
  }
  work_available_.notify_one();
}

void IoThread::loop() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      work_available_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and every queued job has run
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();
  }
}

}  // namespace sluice::runtime
