// The `sluice` executable: the broker's command line. `serve` runs a single Kafka broker node
// (core/kafka) on the real runtime: it recovers the data directory, listens, and on SIGINT or
// SIGTERM stops accepting, ends every connection and closes the partition logs cleanly; beside it
// runs the admin HTTP API (runtime/admin_server.h: metrics, health, state, switches).
// `config print` shows the effective configuration. `topic` and `group` administer topics and
// consumer groups over the Kafka protocol (runtime/topic_command.h, runtime/group_command.h),
// against Sluice or Kafka.

#include <CLI/CLI.hpp>
#include <malloc.h>

#include <cassert>
#include <cstdint>
#include <cstdio>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/env/env.h"
#include "core/env/sync.h"
#include "core/kafka/broker.h"
#include "runtime/admin_server.h"
#include "runtime/data_dir_lock.h"
#include "runtime/group_command.h"
#include "runtime/runtime_env.h"
#include "runtime/serve_config.h"
#include "runtime/topic_command.h"

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

// The command-line flags of `serve`; set ones override the config file.
struct ServeOptions {
  std::string config_path;
  std::string listen = "127.0.0.1:9092";
  std::string data_dir = "./sluice-data";
  std::uint64_t node_id = 0;
  std::string log_level = "info";
  std::string log_format = "text";
  std::string advertise;  // empty: the listen address
  std::string admin_listen = sluice::runtime::ServeConfig{}.admin_listen;
};

// The broker's main fiber. Returns the process exit code.
using ConfigLoader = std::function<std::optional<sluice::runtime::ServeConfig>()>;

// Applies what a reload can change to a running broker: the log level and the topic defaults.
// The rest takes effect at the next start, which the log says when it changed.
void apply_reload(Env& env, sluice::kafka::Broker& broker,
                  const sluice::runtime::ServeConfig& running,
                  const sluice::runtime::ServeConfig& fresh) {
  sluice::LogLevel level = sluice::LogLevel::info;
  if (sluice::parse_log_level(fresh.log_level, level)) sluice::set_log_level(level);
  sluice::LogFormat format = sluice::LogFormat::text;
  if (sluice::parse_log_format(fresh.log_format, format)) sluice::set_log_format(format);
  const std::size_t failed =
      broker.reload_topic_defaults(fresh.broker.log, fresh.broker.min_insync_replicas);
  env.log().info(
      "configuration reloaded: log_level {}, log_format {}; topic defaults applied to every topic{}",
      fresh.log_level, fresh.log_format,
      failed > 0 ? " (" + std::to_string(failed) + " topic(s) could not be reopened)" : "");
  // What a reload leaves alone: compare the rest of the two configurations.
  sluice::runtime::ServeConfig comparable = fresh;
  comparable.log_level = running.log_level;
  comparable.log_format = running.log_format;
  comparable.broker.log = running.broker.log;
  comparable.broker.min_insync_replicas = running.broker.min_insync_replicas;
  if (sluice::runtime::format_serve_config(comparable) !=
      sluice::runtime::format_serve_config(running)) {
    env.log().warn(
        "changes to listen, advertise, node_id, data_directory, kafka.*, groups.* or "
        "admin.* take effect at the next start");
  }
}

// Waits for SIGHUP and reloads (a fiber of serve_main's).
void reload_loop(sluice::runtime::RuntimeEnv& runtime, Env& env, sluice::kafka::Broker& broker,
                 sluice::runtime::ServeConfig running, const ConfigLoader& load) {
  std::uint64_t seen = runtime.reloads_requested();
  for (;;) {
    while (runtime.reloads_requested() == seen) runtime.reload_waiters().wait(sluice::kNever);
    seen = runtime.reloads_requested();
    auto fresh = load();
    if (!fresh) {
      env.log().error(
          "configuration reload failed (see the message above); keeping the running "
          "configuration");
      continue;
    }
    apply_reload(env, broker, running, *fresh);
    running = std::move(*fresh);
  }
}

// Starts the admin HTTP API beside a serving broker: nullptr when it is off, or why it cannot.
std::expected<std::unique_ptr<sluice::runtime::AdminServer>, std::string> start_admin_server(
    sluice::runtime::RuntimeEnv& runtime, Env& env, sluice::kafka::Broker& broker,
    const std::optional<Address>& admin_listen, sluice::Instant started) {
  if (!admin_listen) return nullptr;
  sluice::runtime::AdminServerOptions admin_options;
  admin_options.listen = *admin_listen;
  admin_options.version = SLUICE_VERSION;
  admin_options.started = started;
  auto admin = sluice::runtime::AdminServer::start(runtime.reactor(), runtime.io_thread(), broker,
                                                   std::move(admin_options));
  if (!admin) {
    return std::unexpected(
        admin.error() + " (--admin-listen, or admin.listen in the config; \"off\" turns it off)");
  }
  env.log().info("admin API listening on {}", (*admin)->bound().to_string());
  return admin;
}

int serve_main(sluice::runtime::RuntimeEnv& runtime, Env& env, Event& shutdown,
               const sluice::runtime::ServeConfig& options, const Address& listen,
               const std::optional<Address>& advertise, const std::optional<Address>& admin_listen,
               const ConfigLoader& reload) {
  const sluice::Instant started = sluice::runtime::monotonic_now();
  sluice::kafka::BrokerConfig config = options.broker;
  config.node_id = static_cast<std::int32_t>(options.node_id);
  sluice::kafka::Broker broker(env, config);
  if (auto opened = broker.open(); !opened) {
    env.log().error("cannot open data directory '{}': {}", config.data_dir,
                    sluice::storage::to_string(opened.error()));
    return kExitFailure;
  }
  auto bound = broker.serve(listen);
  if (!bound) {
    env.log().error("cannot listen on {}: {}", listen.to_string(), to_string(bound.error()));
    broker.stop();
    return kExitFailure;
  }
  // Port 0 binds a free port: advertise the one actually bound unless told otherwise.
  const Address advertised = advertise ? *advertise : *bound;
  broker.set_advertised(advertised);
  env.log().info(
      "sluice {} listening on {} (advertised as {}) with data directory '{}': Kafka broker node {}",
      SLUICE_VERSION, bound->to_string(), advertised.to_string(), config.data_dir, options.node_id);
  auto admin_started = start_admin_server(runtime, env, broker, admin_listen, started);
  if (!admin_started) {
    broker.stop();
    env.log().error("{}", admin_started.error());  // last, not buried under the stop's lines
    return kExitFailure;
  }
  std::unique_ptr<sluice::runtime::AdminServer> admin = std::move(*admin_started);
  auto reload_scope =
      std::make_unique<sluice::Scope>(env.scheduler().current_scope(), "config-reload");
  reload_scope->spawn("config-reload", [&] { reload_loop(runtime, env, broker, options, reload); });
  shutdown.wait();
  reload_scope.reset();  // no reload may run while the broker stops
  env.log().info("shutting down: closing the listener, connections and partition logs");
  // The admin API stays up while the broker drains (readiness answers 503 meanwhile); its
  // threads are joined before the broker they read goes.
  broker.stop();
  admin.reset();
  env.log().info("sluice {} stopped", SLUICE_VERSION);
  return kExitOk;
}

// The flags `serve` and `config print` share.
void add_serve_flags(CLI::App& command, ServeOptions& options) {
  command
      .add_option("--config", options.config_path,
                  "YAML config file (see runtime/serve_config.h and docs/sluice.example.yaml); "
                  "unknown keys and bad values are refused")
      ->check(CLI::ExistingFile);
  command
      .add_option("--listen", options.listen,
                  "HOST:PORT to accept clients on; IPv6 as [::1]:9092, port 0 picks "
                  "a free port")
      ->capture_default_str();
  command
      .add_option("--data-dir", options.data_dir,
                  "Directory holding the node's data; created if missing")
      ->capture_default_str();
  command.add_option("--node-id", options.node_id, "This node's id in the cluster")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command
      .add_option("--advertise", options.advertise,
                  "HOST:PORT clients are told to connect to (Metadata); default: the listen "
                  "address as bound")
      ->capture_default_str();
  command.add_option("--log-level", options.log_level, "Least severe level logged")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  command
      .add_option("--log-format", options.log_format,
                  "text, or json: one JSON object a line (time, level, node, component, "
                  "message, and each key=value of the message as a field)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  command
      .add_option("--admin-listen", options.admin_listen,
                  "HOST:PORT of the admin HTTP API (GET /metrics, /v1/status/ready, "
                  "/v1/status/live, /v1/brokers, /v1/topics, /v1/groups; GET/PUT "
                  "/v1/config/log_level, /v1/debug/requests; see docs/operations.md); port 0 "
                  "picks a free port, \"off\" turns the API off")
      ->capture_default_str();
}

// Defaults, then the config file, then the flags given on the command line.
std::optional<sluice::runtime::ServeConfig> effective_config(const ServeOptions& flags,
                                                             const CLI::App& command) {
  sluice::runtime::ServeConfig config;
  if (!flags.config_path.empty()) {
    if (auto loaded = sluice::runtime::load_serve_config(flags.config_path, config); !loaded) {
      std::fprintf(stderr, "sluice: %s\n", loaded.error().c_str());
      return std::nullopt;
    }
  }
  if (command.count("--listen") > 0) config.listen = flags.listen;
  if (command.count("--data-dir") > 0) config.broker.data_dir = flags.data_dir;
  if (command.count("--node-id") > 0) config.node_id = flags.node_id;
  if (command.count("--log-level") > 0) config.log_level = flags.log_level;
  if (command.count("--log-format") > 0) config.log_format = flags.log_format;
  if (command.count("--advertise") > 0) config.advertise = flags.advertise;
  if (command.count("--admin-listen") > 0) config.admin_listen = flags.admin_listen;
  return config;
}

// Request buffers are large (a Produce frame is often 1 MiB) and short-lived. glibc would mmap
// each one and unmap it when freed, so every request paid page faults and kernel zeroing for
// fresh pages (~10% of the broker's CPU under a 1 KiB x 16 partition load). From the heap they
// are reused warm; the request memory budget bounds how much the heap holds.
void keep_request_buffers_warm() {
  constexpr int kMmapThresholdBytes = 64 * 1024 * 1024;
  constexpr int kTrimThresholdBytes = 512 * 1024 * 1024;
  mallopt(M_MMAP_THRESHOLD, kMmapThresholdBytes);
  mallopt(M_TRIM_THRESHOLD, kTrimThresholdBytes);
}

int serve(const sluice::runtime::ServeConfig& options, const ConfigLoader& reload) {
  keep_request_buffers_warm();
  sluice::LogLevel level = sluice::LogLevel::info;
  const bool level_known = sluice::parse_log_level(options.log_level, level);
  assert(level_known);  // CLI11 checked it
  (void)level_known;
  sluice::set_log_level(level);
  sluice::LogFormat format = sluice::LogFormat::text;
  const bool format_known = sluice::parse_log_format(options.log_format, format);
  assert(format_known);  // CLI11 or the config file checked it
  (void)format_known;
  sluice::set_log_format(format);
  auto address = Address::parse(options.listen);
  if (!address) {
    std::fprintf(
        stderr,
        "sluice: invalid listen address '%s' (--listen, or 'listen' in the config): expected "
        "HOST:PORT ([::1]:9092 for IPv6)\n",
        options.listen.c_str());
    return kExitUsage;
  }
  std::optional<Address> advertise;
  if (!options.advertise.empty()) {
    auto parsed = Address::parse(options.advertise);
    if (!parsed || parsed->port == 0) {
      std::fprintf(
          stderr,
          "sluice: invalid advertise address '%s' (--advertise, or 'advertise' in the config): "
          "expected HOST:PORT\n",
          options.advertise.c_str());
      return kExitUsage;
    }
    advertise = *parsed;
  }
  std::optional<Address> admin_listen;
  if (!sluice::runtime::admin_disabled(options.admin_listen)) {
    auto parsed = Address::parse(options.admin_listen);
    if (!parsed) {
      std::fprintf(stderr,
                   "sluice: invalid admin API address '%s' (--admin-listen, or admin.listen in "
                   "the config): expected HOST:PORT, or off\n",
                   options.admin_listen.c_str());
      return kExitUsage;
    }
    admin_listen = *parsed;
  }
  // One process per data directory: a second one would corrupt the logs under the first.
  auto lock = sluice::runtime::DataDirLock::acquire(options.broker.data_dir);
  if (!lock) {
    std::fprintf(stderr, "sluice: %s\n", lock.error().c_str());
    return kExitFailure;
  }
  sluice::runtime::RuntimeEnvOptions runtime_options;
  runtime_options.node_id = options.node_id;
  sluice::runtime::RuntimeEnv runtime(runtime_options);
  int exit_code = kExitOk;
  const int run_status = runtime.run([&](Env& env, Event& shutdown) {
    exit_code =
        serve_main(runtime, env, shutdown, options, *address, advertise, admin_listen, reload);
  });
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
      "Run a Kafka-compatible broker node in the foreground until SIGINT or SIGTERM (a second "
      "signal forces the stop); SIGHUP reloads the log level, the topic defaults and storage.*. Speaks the "
      "Kafka protocol: produce, fetch, list offsets, "
      "idempotent producers, consumer groups and the topic and group admin APIs; topics are "
      "created automatically on first use unless the config turns that off. Beside it runs an "
      "admin HTTP API on --admin-listen (default 127.0.0.1:9644): Prometheus metrics, readiness "
      "and liveness, brokers, topics and groups as JSON, and run-time switches for the log "
      "level and request logging. Settings come from the built-in defaults, then --config FILE, "
      "then the flags below. One process per data directory (it holds <data-dir>/sluice.lock).");
  add_serve_flags(*serve_command, options);
  CLI::App* config_command =
      app.add_subcommand("config", "Show the configuration `sluice serve` would run with");
  config_command->require_subcommand(1);
  ServeOptions print_options;
  CLI::App* print_command = config_command->add_subcommand(
      "print",
      "Print the effective configuration (defaults, then --config FILE, then the flags) as YAML "
      "that `sluice serve --config` accepts");
  add_serve_flags(*print_command, print_options);

  sluice::runtime::TopicCommand topic_command(app);
  sluice::runtime::GroupCommand group_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version are "errors" with exit code 0; anything else is a usage error.
    const int code = app.exit(error);
    return code == 0 ? kExitOk : kExitUsage;
  }
  if (serve_command->parsed()) {
    auto config = effective_config(options, *serve_command);
    if (!config) return kExitUsage;
    // SIGHUP reads the file and the same flags again.
    return serve(*config, [&] { return effective_config(options, *serve_command); });
  }
  if (print_command->parsed()) {
    auto config = effective_config(print_options, *print_command);
    if (!config) return kExitUsage;
    std::fputs(sluice::runtime::format_serve_config(*config).c_str(), stdout);
    return kExitOk;
  }
  if (topic_command.parsed()) return topic_command.run();
  if (group_command.parsed()) return group_command.run();
  return kExitUsage;
}
