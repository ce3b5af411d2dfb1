#include "runtime/admin_server.h"

#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/env/env.h"
#include "core/env/log.h"
#include "core/kafka/broker.h"
#include "core/kafka/broker_metrics.h"
#include "core/kafka/broker_status.h"
#include "runtime/epoll_reactor.h"
#include "runtime/io_thread.h"

namespace sluice::runtime {

namespace {

// Keys in the order written: the documented field order, not alphabetical.
using json = nlohmann::ordered_json;

constexpr const char* kJsonType = "application/json";
constexpr const char* kPrometheusType = "text/plain; version=0.0.4; charset=utf-8";
// A 2-core machine runs the broker too: two serving threads are plenty for scrapes and probes.
constexpr std::size_t kServingThreads = 2;
constexpr std::size_t kPayloadBytesMax = 64 * 1024;  // no route takes a body
// A slow client holds a serving thread, and stop() waits for it, this long between reads.
constexpr time_t kReadTimeoutSeconds = 2;
constexpr time_t kWriteTimeoutSeconds = 5;
constexpr time_t kKeepAliveTimeoutSeconds = 2;  // an idle keep-alive client holds a thread
constexpr std::size_t kKeepAliveRequestsMax = 100;
constexpr std::chrono::milliseconds kStartWaitStep{1};

std::string render(const json& body) {
  // Group, member and client ids are client-chosen bytes: never let them make dump() throw.
  return body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

void reply(httplib::Response& response, int status, const json& body) {
  response.status = status;
  response.set_content(render(body), kJsonType);
}

void reply_error(httplib::Response& response, int status, std::string_view message) {
  reply(response, status, json{{"error", message}});
}

json optional_json(const auto& value) {
  return value ? json(*value) : json(nullptr);
}

json topic_partitions_json(const kafka::TopicPartitions& partitions) {
  json out = json::object();
  for (const auto& [topic, indexes] : partitions) out[topic] = indexes;
  return out;
}

json topic_json(const kafka::TopicStatus& topic) {
  json partitions = json::array();
  for (const kafka::PartitionStatus& partition : topic.partitions) {
    partitions.push_back({{"partition", partition.partition},
                          {"leader", partition.leader},
                          {"log_start_offset", partition.log_start_offset},
                          {"log_end_offset", partition.log_end_offset},
                          {"size_bytes", partition.size_bytes},
                          {"segments", partition.segment_count}});
  }
  json overrides = json::object();
  for (const auto& [key, value] : topic.config_overrides) overrides[key] = value;
  return {{"name", topic.name},
          {"internal", topic.internal},
          {"partitions", std::move(partitions)},
          {"config_overrides", std::move(overrides)}};
}

json group_json(const kafka::GroupStatus& group) {
  json members = json::array();
  for (const kafka::GroupMemberStatus& member : group.members) {
    members.push_back({{"member_id", member.member_id},
                       {"group_instance_id", optional_json(member.group_instance_id)},
                       {"client_id", member.client_id},
                       {"client_host", member.client_host},
                       {"subscribed_topics", optional_json(member.subscribed_topics)},
                       {"assignment", member.assignment ? topic_partitions_json(*member.assignment)
                                                        : json(nullptr)}});
  }
  json offsets = json::array();
  for (const kafka::GroupOffsetStatus& offset : group.offsets) {
    offsets.push_back({{"topic", offset.topic},
                       {"partition", offset.partition},
                       {"committed_offset", optional_json(offset.committed_offset)},
                       {"log_end_offset", optional_json(offset.log_end_offset)},
                       {"lag", optional_json(offset.lag)},
                       {"member_id", optional_json(offset.member_id)}});
  }
  return {{"group_id", group.group_id},
          {"state", group.state},
          {"protocol_type", group.protocol_type},
          {"protocol", group.protocol},
          {"generation", optional_json(group.generation)},
          {"leader", optional_json(group.leader)},
          {"members", std::move(members)},
          {"offsets", std::move(offsets)}};
}

std::string_view log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::trace:
      return "trace";
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
    case LogLevel::off:
      return "off";
  }
  return "unknown";
}

// The reason phrases of the errors httplib answers by itself.
std::string_view status_text(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 500:
      return "Internal Server Error";
    default:
      return "Error";
  }
}

// Every route and the methods it answers: anything else is 404, or 405 with an Allow header.
struct Route {
  std::regex path;
  std::string_view allow;  // the Allow header
  bool (*accepts)(std::string_view method);
};

bool get_only(std::string_view method) {
  return method == "GET" || method == "HEAD";
}
bool get_or_put(std::string_view method) {
  return get_only(method) || method == "PUT";
}

const std::vector<Route>& routes() {
  static const std::vector<Route> table = {
      {std::regex("/metrics"), "GET, HEAD", get_only},
      {std::regex("/v1/status/(ready|live)"), "GET, HEAD", get_only},
      {std::regex("/v1/brokers"), "GET, HEAD", get_only},
      {std::regex("/v1/topics(/[^/]+)?"), "GET, HEAD", get_only},
      {std::regex("/v1/groups(/.+)?"), "GET, HEAD", get_only},
      {std::regex("/v1/config/log_level"), "GET, HEAD, PUT", get_or_put},
      {std::regex("/v1/debug/requests"), "GET, HEAD, PUT", get_or_put},
  };
  return table;
}

// Our own socket options: httplib's defaults may include SO_REUSEPORT, which would let a second
// broker bind the same admin port silently instead of failing at start.
void set_socket_options(socket_t socket) {
  const int enable = 1;
  ::setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &enable, sizeof(enable));
}

}  // namespace

// What the HTTP threads share with the closures they post to the reactor thread.
struct AdminServer::Bridge : std::enable_shared_from_this<Bridge> {
  Bridge(EpollReactor& reactor, kafka::Broker& broker, AdminServerOptions options)
      : reactor(reactor), broker(&broker), options(std::move(options)) {}

  EpollReactor& reactor;
  kafka::Broker* broker;  // reactor thread only; null once the server stops
  const AdminServerOptions options;
  std::mutex mutex;
  std::condition_variable answered;  // an answer arrived, or the server is stopping
  bool stopping = false;             // guarded by mutex

  // Runs `gather` on the reactor thread and returns its value, or nullopt when the reactor did
  // not answer within the timeout or the server is stopping. Called on an HTTP thread.
  template <typename T>
  std::optional<T> ask(std::function<T(kafka::Broker&)> gather) {
    auto answer = std::make_shared<std::optional<T>>();  // guarded by mutex
    reactor.post([self = shared_from_this(), answer, gather = std::move(gather)] {
      if (self->broker == nullptr) return;  // stopping: the waiter is woken by stop()
      T value = gather(*self->broker);
      {
        std::lock_guard lock(self->mutex);
        *answer = std::move(value);
      }
      self->answered.notify_all();
    });
    std::unique_lock lock(mutex);
    answered.wait_for(lock, options.reactor_timeout,
                      [&] { return answer->has_value() || stopping; });
    if (!answer->has_value()) return std::nullopt;
    return std::move(**answer);
  }

  std::string no_answer_message() {
    if (std::lock_guard lock(mutex); stopping) return "the broker is stopping";
    return "the broker did not answer within " +
           std::to_string(
               std::chrono::duration_cast<std::chrono::milliseconds>(options.reactor_timeout)
                   .count()) +
           " ms (its reactor thread is stalled)";
  }
};

// The httplib server and the thread that accepts on it.
struct AdminServer::HttpServer {
  httplib::Server http;
  std::thread thread;
  std::atomic<bool> finished = false;  // listen_after_bind() returned

  ~HttpServer() { assert(!thread.joinable()); }

  // Blocks until the HTTP threads are gone: the in-flight requests finish (a slow client holds
  // its thread until the read timeout). Not on the reactor thread.
  void shut_down_and_join() {
    // stop() only acts once the accept loop runs; the thread may not have reached it yet.
    while (!http.is_running() && !finished.load()) std::this_thread::sleep_for(kStartWaitStep);
    http.stop();
    thread.join();
  }
};

namespace {

using Bridge = AdminServer::Bridge;

void add_status_routes(httplib::Server& http, const std::shared_ptr<Bridge>& bridge) {
  http.Get("/v1/status/ready", [bridge](const httplib::Request&, httplib::Response& response) {
    const auto ready = bridge->ask<bool>([](kafka::Broker& broker) { return broker.ready(); });
    if (ready && *ready) return reply(response, 200, json{{"status", "ready"}});
    json body{{"status", "not ready"}};
    if (!ready) body["error"] = bridge->no_answer_message();
    reply(response, 503, body);
  });
  http.Get("/v1/status/live", [bridge](const httplib::Request&, httplib::Response& response) {
    const auto live = bridge->ask<bool>([](kafka::Broker&) { return true; });
    if (live) return reply(response, 200, json{{"status", "live"}});
    reply(response, 503, json{{"status", "not live"}, {"error", bridge->no_answer_message()}});
  });
  http.Get("/metrics", [bridge](const httplib::Request&, httplib::Response& response) {
    const auto text = bridge->ask<std::string>(
        [](kafka::Broker& broker) { return kafka::render_prometheus(broker); });
    if (!text) return reply_error(response, 503, bridge->no_answer_message());
    response.status = 200;
    response.set_content(*text, kPrometheusType);
  });
}

void add_state_routes(httplib::Server& http, const std::shared_ptr<Bridge>& bridge) {
  http.Get("/v1/brokers", [bridge](const httplib::Request&, httplib::Response& response) {
    const auto status = bridge->ask<kafka::BrokerStatus>(
        [](kafka::Broker& broker) { return kafka::broker_status(broker); });
    if (!status) return reply_error(response, 503, bridge->no_answer_message());
    const auto uptime = monotonic_now() - bridge->options.started;
    reply(response, 200,
          json::array({{{"node_id", status->node_id},
                        {"host", status->host},
                        {"port", status->port},
                        {"cluster_id", status->cluster_id},
                        {"version", bridge->options.version},
                        {"is_alive", true},
                        {"ready", status->ready},
                        {"data_directory", status->data_directory},
                        {"uptime_ms",
                         std::chrono::duration_cast<std::chrono::milliseconds>(uptime).count()},
                        {"connections", status->connections}}}));
  });
  http.Get("/v1/topics", [bridge](const httplib::Request&, httplib::Response& response) {
    const auto topics = bridge->ask<std::vector<kafka::TopicStatus>>(
        [](kafka::Broker& broker) { return kafka::topic_statuses(broker); });
    if (!topics) return reply_error(response, 503, bridge->no_answer_message());
    json out = json::array();
    for (const kafka::TopicStatus& topic : *topics) out.push_back(topic_json(topic));
    reply(response, 200, out);
  });
  http.Get("/v1/topics/([^/]+)",
           [bridge](const httplib::Request& request, httplib::Response& response) {
             const std::string name = request.matches[1];
             const auto topic = bridge->ask<std::optional<kafka::TopicStatus>>(
                 [name](kafka::Broker& broker) { return kafka::topic_status(broker, name); });
             if (!topic) return reply_error(response, 503, bridge->no_answer_message());
             if (!*topic) return reply_error(response, 404, "unknown topic '" + name + "'");
             reply(response, 200, topic_json(**topic));
           });
  http.Get("/v1/groups", [bridge](const httplib::Request&, httplib::Response& response) {
    const auto groups = bridge->ask<std::vector<kafka::GroupStatus>>(
        [](kafka::Broker& broker) { return kafka::group_statuses(broker); });
    if (!groups) return reply_error(response, 503, bridge->no_answer_message());
    json out = json::array();
    for (const kafka::GroupStatus& group : *groups) out.push_back(group_json(group));
    reply(response, 200, out);
  });
  http.Get("/v1/groups/(.+)",
           [bridge](const httplib::Request& request, httplib::Response& response) {
             const std::string id = request.matches[1];
             const auto group = bridge->ask<std::optional<kafka::GroupStatus>>(
                 [id](kafka::Broker& broker) { return kafka::group_status(broker, id); });
             if (!group) return reply_error(response, 503, bridge->no_answer_message());
             if (!*group) return reply_error(response, 404, "unknown group '" + id + "'");
             reply(response, 200, group_json(**group));
           });
}

void add_switch_routes(httplib::Server& http, const std::shared_ptr<Bridge>& bridge) {
  auto log_level_route = [bridge](const httplib::Request& request, httplib::Response& response) {
    std::optional<LogLevel> wanted;
    if (request.method == "PUT") {
      const std::string text = request.get_param_value("level");
      LogLevel parsed = LogLevel::info;
      if (!parse_log_level(text, parsed)) {
        return reply_error(response, 400,
                           "invalid or missing 'level' parameter '" + text +
                               "': expected trace, debug, info, warn, error or off "
                               "(PUT /v1/config/log_level?level=debug)");
      }
      wanted = parsed;
    }
    // The level is a global the reactor thread reads on every log call: change it there.
    const auto level = bridge->ask<LogLevel>([wanted](kafka::Broker& broker) {
      if (wanted && *wanted != log_level()) {
        const LogLevel previous = log_level();
        set_log_level(*wanted);
        broker.env().log().info("admin API: log level {} -> {}", log_level_name(previous),
                                log_level_name(*wanted));
      }
      return log_level();
    });
    if (!level) return reply_error(response, 503, bridge->no_answer_message());
    reply(response, 200, json{{"level", log_level_name(*level)}});
  };
  http.Get("/v1/config/log_level", log_level_route);
  http.Put("/v1/config/log_level", log_level_route);

  auto request_logging_route = [bridge](const httplib::Request& request,
                                        httplib::Response& response) {
    std::optional<bool> wanted;
    if (request.method == "PUT") {
      const std::string text = request.get_param_value("enabled");
      if (text != "true" && text != "false") {
        return reply_error(response, 400,
                           "invalid or missing 'enabled' parameter '" + text +
                               "': expected true or false (PUT /v1/debug/requests?enabled=true)");
      }
      wanted = text == "true";
    }
    const auto enabled = bridge->ask<bool>([wanted](kafka::Broker& broker) {
      if (wanted && *wanted != broker.request_logging()) {
        broker.set_request_logging(*wanted);
        broker.env().log().info("admin API: request logging {}", *wanted ? "on" : "off");
      }
      return broker.request_logging();
    });
    if (!enabled) return reply_error(response, 503, bridge->no_answer_message());
    reply(response, 200, json{{"enabled", *enabled}});
  };
  http.Get("/v1/debug/requests", request_logging_route);
  http.Put("/v1/debug/requests", request_logging_route);
}

// Unknown paths and methods, and httplib's own errors (bad requests, payload too large), as JSON.
void add_error_handling(httplib::Server& http) {
  http.set_pre_routing_handler([](const httplib::Request& request, httplib::Response& response) {
    for (const Route& route : routes()) {
      if (!std::regex_match(request.path, route.path)) continue;
      if (route.accepts(request.method)) return httplib::Server::HandlerResponse::Unhandled;
      response.set_header("Allow", std::string(route.allow));
      reply_error(response, 405,
                  "method " + request.method + " not allowed on " + request.path +
                      " (allowed: " + std::string(route.allow) + ")");
      return httplib::Server::HandlerResponse::Handled;
    }
    reply_error(response, 404, "no such path: " + request.path);
    return httplib::Server::HandlerResponse::Handled;
  });
  http.set_error_handler([](const httplib::Request& request, httplib::Response& response) {
    if (!response.body.empty()) return;  // a route's own error
    if (response.status == 400 && request.method == "PUT" &&
        !request.has_header("Content-Length")) {
      // httplib refuses a PUT without a length, which `curl -X PUT URL` sends.
      return reply_error(response, 400,
                         "a PUT needs a Content-Length header (an empty body will do: "
                         "curl -X PUT -d '' URL)");
    }
    reply_error(response, response.status,
                "HTTP " + std::to_string(response.status) + " " +
                    std::string(status_text(response.status)));
  });
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& response, std::exception_ptr error) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& exception) {
          what = exception.what();
        } catch (...) {
        }
        reply_error(response, 500, "internal error: " + what);
      });
}

}  // namespace

std::expected<std::unique_ptr<AdminServer>, std::string> AdminServer::start(
    EpollReactor& reactor, IoThread& io_thread, kafka::Broker& broker, AdminServerOptions options) {
  const Address wanted = options.listen;
  auto bridge = std::make_shared<Bridge>(reactor, broker, std::move(options));
  auto server = std::make_shared<HttpServer>();
  httplib::Server& http = server->http;
  http.new_task_queue = [] { return new httplib::ThreadPool(kServingThreads); };
  http.set_socket_options(set_socket_options);
  http.set_tcp_nodelay(true);
  http.set_read_timeout(kReadTimeoutSeconds, 0);
  http.set_write_timeout(kWriteTimeoutSeconds, 0);
  http.set_keep_alive_timeout(kKeepAliveTimeoutSeconds);
  http.set_keep_alive_max_count(kKeepAliveRequestsMax);
  http.set_payload_max_length(kPayloadBytesMax);
  add_error_handling(http);
  add_status_routes(http, bridge);
  add_state_routes(http, bridge);
  add_switch_routes(http, bridge);

  Address bound = wanted;
  bool bound_ok = false;
  if (wanted.port == 0) {
    const int port = http.bind_to_any_port(wanted.host);
    bound_ok = port > 0;
    bound.port = static_cast<std::uint16_t>(bound_ok ? port : 0);
  } else {
    bound_ok = http.bind_to_port(wanted.host, wanted.port);
  }
  if (!bound_ok) {
    // httplib does not say why; binding once more through the runtime's net does.
    auto probe = broker.env().net().listen(wanted);
    const std::string reason =
        probe ? std::string("cannot bind") : std::string(to_string(probe.error()));
    return std::unexpected("cannot listen on " + wanted.to_string() +
                           " for the admin API: " + reason);
  }
  HttpServer* raw = server.get();  // outlives the thread: joined before it goes
  server->thread = std::thread([raw] {
    raw->http.listen_after_bind();
    raw->finished.store(true);
  });
  return std::unique_ptr<AdminServer>(
      new AdminServer(io_thread, std::move(bridge), std::move(server), std::move(bound)));
}

AdminServer::AdminServer(IoThread& io_thread, std::shared_ptr<Bridge> bridge,
                         std::shared_ptr<HttpServer> http_server, Address bound)
    : io_thread_(io_thread),
      bridge_(std::move(bridge)),
      http_server_(std::move(http_server)),
      bound_(std::move(bound)) {}

AdminServer::~AdminServer() {
  stop();
}

void AdminServer::stop() {
  if (!running_) return;
  running_ = false;
  bridge_->broker = nullptr;  // on the reactor thread: closures still queued leave it alone
  {
    std::lock_guard lock(bridge_->mutex);
    bridge_->stopping = true;
  }
  bridge_->answered.notify_all();
  // Joining waits for in-flight requests (a slow client: up to the read timeout), so it runs on
  // the IO thread while this fiber waits. The job owns the HTTP server: if this fiber is cancelled
  // or already unwinding (ECANCELED), the job still finishes the join on its own.
  const int joined = io_thread_.run([server = http_server_] {
    server->shut_down_and_join();
    return 0;
  });
  assert(joined == 0 || joined == ECANCELED);
  assert(joined != 0 || http_server_->finished.load());
  (void)joined;
}

}  // namespace sluice::runtime
