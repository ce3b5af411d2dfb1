#include "runtime/runtime_env.h"

#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "runtime/unique_fd.h"

namespace sluice::runtime {

namespace {

std::uint64_t seed_from_os() {
  std::random_device device;
  return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

}  // namespace

// ---- SignalMask ----

RuntimeEnv::SignalMask::SignalMask(bool handle_signals) : active_(handle_signals) {
  // Writes to a closed socket must fail with EPIPE, not kill the process (sends also pass
  // MSG_NOSIGNAL; this covers anything that does not).
  std::signal(SIGPIPE, SIG_IGN);
  if (!active_) return;
  sigemptyset(&handled_);
  sigaddset(&handled_, SIGINT);
  sigaddset(&handled_, SIGTERM);
  sigaddset(&handled_, SIGHUP);
  const int status = ::pthread_sigmask(SIG_BLOCK, &handled_, &previous_);
  assert(status == 0);
  (void)status;
}

RuntimeEnv::SignalMask::~SignalMask() {
  if (active_) ::pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

// ---- SignalWatch: the signalfd on the reactor ----

class RuntimeEnv::SignalWatch final : private EpollReactor::Handler {
 public:
  SignalWatch(RuntimeEnv& env, const sigset_t& handled)
      : env_(env), fd_(::signalfd(-1, &handled, SFD_NONBLOCK | SFD_CLOEXEC)) {
    if (!fd_.valid() ||
        env_.reactor_.add(fd_.get(), EPOLLIN, *this, EpollReactor::Liveness::background) != 0) {
      std::fprintf(stderr, "sluice: fatal: signalfd: %s\n", std::strerror(errno));
      std::abort();
    }
  }
  ~SignalWatch() { env_.reactor_.remove(fd_.get(), EpollReactor::Liveness::background); }
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;

 private:
  void on_ready(std::uint32_t events) override {
    (void)events;
    signalfd_siginfo info{};
    while (::read(fd_.get(), &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
      env_.on_signal(static_cast<int>(info.ssi_signo));
    }
  }

  RuntimeEnv& env_;
  UniqueFd fd_;
};

// ---- RuntimeEnv ----

RuntimeEnv::RuntimeEnv(RuntimeEnvOptions options)
    : signal_mask_(options.handle_signals),
      scheduler_(reactor_, options.scheduler),
      io_thread_(reactor_),
      net_(reactor_),
      disk_(io_thread_),
      random_(seed_from_os()),
      env_(scheduler_, clock_, net_, disk_, random_, buggify_,
           // No clock: spdlog already stamps runtime lines with wall time.
           Log("node-" + std::to_string(options.node_id), nullptr)),
      root_scope_(scheduler_, "node-" + std::to_string(options.node_id)) {
  assert(!buggify_.enabled());
  if (signal_mask_.active()) {
    signal_watch_ = std::make_unique<SignalWatch>(*this, signal_mask_.handled());
  }
}

RuntimeEnv::~RuntimeEnv() = default;

void RuntimeEnv::on_signal(int signal_number) {
  if (signal_number == SIGHUP) {
    env_.log().info("received SIGHUP: reloading the configuration");
    reloads_requested_++;
    reload_waiters_.notify_all();
    return;
  }
  signals_received_++;
  const char* name = signal_number == SIGINT ? "SIGINT" : "SIGTERM";
  if (signals_received_ == 1 && shutdown_ != nullptr) {
    env_.log().info("received {}: shutting down (send it again to force)", name);
    shutdown_->set();
    return;
  }
  env_.log().warn("received {}: forcing stop", name);
  scheduler_.stop();
}

int RuntimeEnv::run(std::function<void(Env& env, Event& shutdown)> main) {
  assert(shutdown_ == nullptr && "run() is not reentrant");
  Event shutdown;
  bool returned = false;
  shutdown_ = &shutdown;
  {
    // Destroyed before `shutdown`: fibers still waiting on it are unwound first.
    Scope scope(root_scope_, "main");
    scope.spawn("main", [&] {
      main(env_, shutdown);
      returned = true;
    });
    scheduler_.run_until([&returned] { return returned; });
  }
  shutdown_ = nullptr;
  return returned ? 0 : 1;
}

bool RuntimeEnv::run_until_done(std::function<void(Env& env)> body) {
  bool returned = false;
  {
    Scope scope(root_scope_, "task");
    scope.spawn("task", [&] {
      body(env_);
      returned = true;
    });
    scheduler_.run_until([&returned] { return returned; });
  }
  return returned;
}

}  // namespace sluice::runtime
