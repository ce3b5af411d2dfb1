// The `sluice` executable: the broker's command line. Until the Kafka API exists, `serve` runs
// the real runtime (data directory, listener, signals, graceful shutdown) and accepts and closes
// connections, saying so in its startup line.

#include <CLI/CLI.hpp>

#include <cassert>
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/env/env.h"
#include "core/env/sync.h"
#include "runtime/runtime_env.h"

#ifndef SLUICE_VERSION
#error "SLUICE_VERSION must be defined by the build (PROJECT_VERSION)"
#endif

namespace {

using sluice::Address;
using sluice::Env;
using sluice::Event;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct ServeOptions {
  std::string listen = "127.0.0.1:9092";
  std::string data_dir = "./sluice-data";
  std::uint64_t node_id = 0;
  std::string log_level = "info";
};

// Accepts connections and closes them at once, until the listener is closed.
void accept_and_close(Env& env, sluice::Listener& listener) {
  for (;;) {
    auto stream = listener.accept(sluice::kNever);
    if (!stream) {
      if (stream.error() == sluice::NetError::closed) return;
      env.log().warn("accept failed: {}", to_string(stream.error()));
      sluice::this_fiber::sleep_for(sluice::milliseconds(50));
      continue;
    }
    env.log().debug("closing connection from {} (Kafka API not implemented yet)",
                    (*stream)->peer_address().to_string());
    (*stream)->close();
  }
}

// The broker's main fiber. Returns the process exit code.
int serve_main(Env& env, Event& shutdown, const ServeOptions& options, const Address& address) {
  if (auto created = env.disk().create_directories(options.data_dir); !created) {
    env.log().error("cannot create data directory '{}': {}", options.data_dir,
                    to_string(created.error()));
    return kExitFailure;
  }
  auto listener = env.net().listen(address);
  if (!listener) {
    env.log().error("cannot listen on {}: {}", address.to_string(), to_string(listener.error()));
    return kExitFailure;
  }
  env.log().info(
      "sluice {} listening on {} with data directory '{}' (Kafka API not implemented yet: "
      "connections are accepted and closed)",
      SLUICE_VERSION, (*listener)->local_address().to_string(), options.data_dir);
  {
    sluice::Scope accept_scope(env.scheduler().current_scope(), "accept");
    accept_scope.spawn("accept", [&env, &listener] { accept_and_close(env, **listener); });
    shutdown.wait();
    env.log().info("shutting down: closing the listener");
    (*listener)->close();
  }
  env.log().info("sluice {} stopped", SLUICE_VERSION);
  return kExitOk;
}

int serve(const ServeOptions& options) {
  sluice::LogLevel level = sluice::LogLevel::info;
  const bool level_known = sluice::parse_log_level(options.log_level, level);
  assert(level_known);  // CLI11 checked it
  (void)level_known;
  sluice::set_log_level(level);
  auto address = Address::parse(options.listen);
  if (!address) {
    std::fprintf(stderr,
                 "sluice: invalid --listen '%s': expected HOST:PORT ([::1]:9092 for IPv6)\n",
                 options.listen.c_str());
    return kExitUsage;
  }
  sluice::runtime::RuntimeEnvOptions runtime_options;
  runtime_options.node_id = options.node_id;
  sluice::runtime::RuntimeEnv runtime(runtime_options);
  int exit_code = kExitOk;
  const int run_status = runtime.run(
      [&](Env& env, Event& shutdown) { exit_code = serve_main(env, shutdown, options, *address); });
  return run_status == 0 ? exit_code : kExitFailure;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Sluice: a Kafka-compatible message broker.", "sluice"};
  app.set_version_flag("--version", std::string("sluice ") + SLUICE_VERSION,
                       "Print the version and exit");
  app.require_subcommand(1);

  ServeOptions options;
  CLI::App* serve_command = app.add_subcommand(
      "serve",
      "Run a broker node in the foreground until SIGINT or SIGTERM (a second signal forces "
      "the stop). The Kafka API is not implemented yet: connections are accepted and closed.");
  serve_command
      ->add_option("--listen", options.listen,
                   "HOST:PORT to accept clients on; IPv6 as [::1]:9092, port 0 picks "
                   "a free port")
      ->capture_default_str();
  serve_command
      ->add_option("--data-dir", options.data_dir,
                   "Directory holding the node's data; created if missing")
      ->capture_default_str();
  serve_command->add_option("--node-id", options.node_id, "This node's id in the cluster")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  serve_command->add_option("--log-level", options.log_level, "Least severe level logged")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version are "errors" with exit code 0; anything else is a usage error.
    const int code = app.exit(error);
    return code == 0 ? kExitOk : kExitUsage;
  }
  if (serve_command->parsed()) return serve(options);
  return kExitUsage;
}
