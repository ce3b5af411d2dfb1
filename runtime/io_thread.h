#pragma once
// A small pool of OS threads for the blocking system calls the reactor must never make
// (fdatasync, fsync of a directory). A fiber hands it a job and suspends; the completion comes
// back through EpollReactor::post() and wakes the fiber. Jobs of different fibers may run at the
// same time (fdatasyncs of different partitions overlap on the device: measured on this
// machine's virtual disk, 16 files synced by 4 threads take 2.6x less time than by one); one
// fiber's jobs run in its order, since it waits for each.
//
// Lifecycle: the threads start in the constructor and are joined in the destructor, after they
// have run every job already queued (a queued fsync is never dropped). Start it after blocking the
// signals the process handles through a signalfd: a thread inherits its creator's signal mask.
// Concurrency: run() is called on the reactor thread only; jobs run on an IO thread and must
// own everything they touch (for example a dup() of the fd they sync), because the fiber that
// submitted them may be cancelled and gone before they finish.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/epoll_reactor.h"

namespace sluice::runtime {

class IoThread {
 public:
  static constexpr std::size_t kDefaultThreads = 4;
  explicit IoThread(EpollReactor& reactor, std::size_t threads = kDefaultThreads);
  ~IoThread();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  // Runs `job` on the IO thread and suspends the calling fiber until it is done. Returns the
  // job's result: 0 or an errno value. Throws FiberCancelled if the fiber's scope is cancelled
  // meanwhile (the job still runs to completion; its result is dropped), or returns ECANCELED
  // when called by a fiber that is already unwinding.
  int run(std::function<int()> job);
  // Queues `job` and returns at once: for advice whose outcome nobody waits on (dropping synced
  // pages from the page cache). It runs before the destructor returns, like every queued job.
  void post(std::function<void()> job);

  // Jobs finished since construction (for tests and metrics).
  std::uint64_t jobs_completed() const { return jobs_completed_; }

 private:
  void loop();

  EpollReactor& reactor_;
  std::uint64_t jobs_completed_ = 0;  // reactor thread only

  std::mutex mutex_;
  std::condition_variable work_available_;
  std::deque<std::function<void()>> queue_;  // guarded by mutex_
  bool stopping_ = false;                    // guarded by mutex_
  std::vector<std::thread> threads_;         // last: start after the fields above exist
};

}  // namespace sluice::runtime
