#pragma once
// RuntimeEnv: one process's world. It owns the EpollReactor, the fiber Scheduler, the real
// clocks, TCP, the disk with its IO thread, a Random seeded from the OS, a disabled Buggify, a
// Log named "node-<id>", a root Scope, and the Env handed to broker code.
//
// Lifecycle: construct on the thread that will run the fibers; call run() (or, in tests,
// run_until_done()) on that thread. Destruction unwinds every fiber (root scope first), then
// joins the IO thread, then drops the scheduler, then the reactor.
// Signals: with handle_signals, SIGINT and SIGTERM are blocked in every thread (before the IO
// thread starts) and read through a signalfd on the reactor: the first sets run()'s `shutdown`
// Event so main can drain gracefully, the second forces the scheduler to stop.

#include <signal.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "core/env/env.h"
#include "core/env/sync.h"
#include "runtime/epoll_reactor.h"
#include "runtime/io_thread.h"
#include "runtime/runtime_clock.h"
#include "runtime/runtime_disk.h"
#include "runtime/runtime_net.h"

namespace sluice::runtime {

struct RuntimeEnvOptions {
  std::uint64_t node_id = 0;
  // Tests that only run fibers leave signals alone, so Ctrl-C still kills them.
  bool handle_signals = true;
  SchedulerOptions scheduler;
};

class RuntimeEnv {
 public:
  explicit RuntimeEnv(RuntimeEnvOptions options = {});
  ~RuntimeEnv();
  RuntimeEnv(const RuntimeEnv&) = delete;
  RuntimeEnv& operator=(const RuntimeEnv&) = delete;

  // Spawns `main` in a child of the root scope and runs fibers until it returns. Fibers left
  // behind in that scope are cancelled and unwound before run() returns. Returns 0 when main
  // returned, 1 when it was forced to stop (second signal) before returning.
  int run(std::function<void(Env& env, Event& shutdown)> main);
  // For tests: runs `body` in a fiber to completion, like run() without a shutdown Event.
  // Returns false if a signal forced it to stop first.
  bool run_until_done(std::function<void(Env& env)> body);

  // SIGHUP: a request to reload the configuration. The count only grows; wait on the queue.
  std::uint64_t reloads_requested() const { return reloads_requested_; }
  WaitQueue& reload_waiters() { return reload_waiters_; }

  Env& env() { return env_; }
  EpollReactor& reactor() { return reactor_; }
  Scheduler& scheduler() { return scheduler_; }
  IoThread& io_thread() { return io_thread_; }
  Scope& root_scope() { return root_scope_; }

 private:
  // Blocks the handled signals in the constructing thread (and so in threads it starts later);
  // restores the previous mask on destruction.
  class SignalMask {
   public:
    explicit SignalMask(bool handle_signals);
    ~SignalMask();
    bool active() const { return active_; }
    const sigset_t& handled() const { return handled_; }

   private:
    bool active_;
    sigset_t handled_{};
    sigset_t previous_{};
  };
  class SignalWatch;

  void on_signal(int signal_number);

  SignalMask signal_mask_;  // first: before the IO thread starts, restored after it is joined
  EpollReactor reactor_;
  Scheduler scheduler_;
  RuntimeClock clock_;
  IoThread io_thread_;
  RuntimeNet net_;
  RuntimeDisk disk_;
  Random random_;
  Buggify buggify_;
  Env env_;
  std::unique_ptr<SignalWatch> signal_watch_;
  Event* shutdown_ = nullptr;            // run()'s, while it runs
  std::uint32_t signals_received_ = 0;   // SIGINT and SIGTERM
  std::uint64_t reloads_requested_ = 0;  // SIGHUP
  WaitQueue reload_waiters_;
  Scope root_scope_;  // last: destroyed first, unwinding every fiber while all else is alive
};

}  // namespace sluice::runtime
