#pragma once
// The admin HTTP API of `sluice serve` (cpp-httplib) on its own listener, default 127.0.0.1:9644:
//
//   GET /metrics                     Prometheus text (kafka::render_prometheus)
//   GET /v1/status/ready             200 while the broker serves clients, else 503
//   GET /v1/status/live              200 while the reactor thread answers, else 503
//   GET /v1/brokers                  this node
//   GET /v1/topics, /v1/topics/NAME  partitions and their offsets, config overrides
//   GET /v1/groups, /v1/groups/ID    members, assignments, committed offsets and lag
//   GET|PUT /v1/config/log_level     PUT ?level=trace|debug|info|warn|error|off
//   GET|PUT /v1/debug/requests       PUT ?enabled=true|false: one log line per Kafka request
//
// JSON everywhere except /metrics; errors are {"error": "..."} with 400, 404, 405 or 503.
// docs/operations.md documents every field.
//
// Concurrency: the HTTP server runs on its own threads (one accepting, a pool of two serving).
// The broker belongs to the reactor thread, so a request that needs it posts a closure there
// (EpollReactor::post) that copies what it needs into plain values (core/kafka/broker_status.h)
// and hands them back; the HTTP thread waits at most `reactor_timeout` and answers 503 if the
// reactor did not answer. JSON is rendered on the HTTP thread, so the reactor only gathers.
//
// Lifecycle: start() binds (or fails with a message) and starts the threads, on the reactor
// thread once the broker serves; stop() (called by the destructor too) must run on a fiber of the
// reactor thread before the Broker is destroyed — `sluice serve` calls it after Broker::stop(), so
// readiness answers 503 while the broker drains. From then on posted closures leave the broker alone,
// waiting requests get 503, and the HTTP threads are joined on the IO thread, so a slow client
// holding a connection (bounded by the read timeout) never stalls the reactor.

#include <expected>
#include <memory>
#include <string>

#include "core/env/clock.h"
#include "core/env/net.h"

namespace sluice::kafka {
class Broker;
}

namespace sluice::runtime {

class EpollReactor;
class IoThread;

struct AdminServerOptions {
  Address listen;       // port 0 picks a free port
  std::string version;  // what /v1/brokers reports
  Instant started{};    // when the process started serving (monotonic): uptime
  Duration reactor_timeout = seconds(5);
};

class AdminServer {
 public:
  // Binds `options.listen` and starts serving. The error says what could not be bound and why.
  static std::expected<std::unique_ptr<AdminServer>, std::string> start(EpollReactor& reactor,
                                                                        IoThread& io_thread,
                                                                        kafka::Broker& broker,
                                                                        AdminServerOptions options);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // The address as bound (its real port when port 0 was asked for).
  const Address& bound() const { return bound_; }
  // Stops serving; afterwards nothing of this server touches the broker. Idempotent.
  void stop();

  struct Bridge;
  struct HttpServer;

 private:
  AdminServer(IoThread& io_thread, std::shared_ptr<Bridge> bridge,
              std::shared_ptr<HttpServer> http_server, Address bound);

  IoThread& io_thread_;
  std::shared_ptr<Bridge> bridge_;           // shared with the handlers and posted closures
  std::shared_ptr<HttpServer> http_server_;  // the httplib server and its thread
  Address bound_;
  bool running_ = true;
};

}  // namespace sluice::runtime
