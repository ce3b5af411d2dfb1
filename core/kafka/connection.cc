#include "core/kafka/connection.h"

#include <algorithm>
#include <cassert>
#include <memory>
#include <variant>

#include "core/kafka/broker_metrics.h"
#include "core/protocol/messages.h"
#include "core/protocol/spliced_frame.h"
#include "core/util/frame_io.h"

namespace sluice::kafka {

namespace {

using protocol::RequestHeader;

// The encoded response for one request (with the file ranges to splice in, for Fetch), or
// nothing to send, or "close".
struct Encoded {
  Bytes body;
  std::vector<protocol::Splice> splices;
};

struct Answer {
  bool close = false;
  std::optional<Encoded> response;

  static Answer close_connection() { return {.close = true, .response = std::nullopt}; }
  static Answer nothing() { return {.close = false, .response = std::nullopt}; }
  static Answer send(Encoded response) { return {.close = false, .response = std::move(response)}; }
};

Encoded encode_response(const RequestHeader& header, const protocol::MessageSchema& schema,
                        std::int16_t version, const protocol::StructValue& response) {
  const bool flexible = schema.flexible(version);
  // ApiVersions answers with header v0 even in flexible versions, so a client that does not yet
  // know the broker's versions can always parse the correlation id.
  const bool flexible_header = flexible && header.api_key != protocol::api::kApiVersions;
  Encoded out;
  protocol::encode_response_header(header.correlation_id, flexible_header, out.body);
  protocol::encode_struct(schema.response, version, flexible, response, out.body, out.splices);
  return out;
}

// A request whose header and body decoded, with when its handling started.
struct Decoded {
  RequestHeader header;
  const protocol::MessageSchema* schema = nullptr;
  protocol::StructValue request;
  Instant started{};
};

// Decodes one frame; an Answer instead when the frame is answered without a handler (KIP-511's
// fallback) or ends the connection.
std::variant<Decoded, Answer> decode(Broker& broker, std::span<const std::byte> frame, const Log& log) {
  ByteReader reader(frame);
  auto header = protocol::decode_request_header(reader);
  if (!header) {
    log.debug("closing: bad request header ({})", protocol::to_string(header.error()));
    return Answer::close_connection();
  }
  const protocol::MessageSchema* schema = broker.handled_schema(header->api_key);
  if (schema == nullptr) {
    log.debug("closing: unknown API key {}", header->api_key);
    return Answer::close_connection();
  }
  if (!schema->valid.contains(header->api_version)) {
    if (header->api_key != protocol::api::kApiVersions) {
      log.debug("closing: {} v{} is not supported", schema->name, header->api_version);
      return Answer::close_connection();
    }
    // KIP-511: the body of a newer ApiVersions request may not parse; it is not read.
    const protocol::StructValue fallback = broker.api_versions_response(error::kUnsupportedVersion);
    return Answer::send(encode_response(*header, *schema, 0, fallback));
  }
  const bool flexible = schema->flexible(header->api_version);
  if (flexible) {
    if (auto skipped = protocol::skip_tagged_fields(reader); !skipped) {
      log.debug("closing: bad request header tags ({})", protocol::to_string(skipped.error()));
      return Answer::close_connection();
    }
  }
  auto request = protocol::decode_message(schema->request, header->api_version, flexible,
                                          frame.subspan(reader.position()));
  if (!request) {
    log.debug("closing: malformed {} v{} body ({})", schema->name, header->api_version,
              protocol::to_string(request.error()));
    return Answer::close_connection();
  }
  return Decoded{.header = std::move(*header), .schema = schema, .request = std::move(*request),
                 .started = broker.env().now()};
}

// Counts a handled request (metrics, request log) and encodes its response.
Answer finish(Broker& broker, const Decoded& decoded, const std::optional<protocol::StructValue>& response,
              const std::string& client_id, const Log& log) {
  Env& env = broker.env();
  const RequestHeader& header = decoded.header;
  ApiStats& stats = env.metrics().api(header.api_key);
  ++stats.requests;
  const std::size_t errors = response ? count_error_codes(*response) : 0;
  if (errors > 0) ++stats.errors;
  Answer reply = response ? Answer::send(encode_response(header, *decoded.schema, header.api_version, *response))
                          : Answer::nothing();
  const Duration took = env.now() - decoded.started;
  stats.latency.observe(took);
  if (broker.request_logging()) {
    log.info("request api={} version={} correlation_id={} client_id={} took_us={} errors={}", decoded.schema->name,
             header.api_version, header.correlation_id, client_id,
             std::chrono::duration_cast<std::chrono::microseconds>(took).count(), errors);
  }
  return reply;
}

// Holds `bytes` of the broker's request memory budget until destroyed.
class BudgetHold {
 public:
  BudgetHold(Semaphore& budget, std::size_t bytes) : budget_(budget), bytes_(bytes) {}
  ~BudgetHold() { budget_.release(bytes_); }
  BudgetHold(const BudgetHold&) = delete;
  BudgetHold& operator=(const BudgetHold&) = delete;

 private:
  Semaphore& budget_;
  std::size_t bytes_;
};

// Requests up to this size skip the memory budget: their memory is bounded per connection, and
// exempting them keeps metadata, heartbeats and small produces flowing while large requests wait.
constexpr std::uint32_t kUnbudgetedRequestBytes = 64 * 1024;

// Marks a connection busy (a request read and not yet answered or handed on) for its lifetime.
class BusyMark {
 public:
  explicit BusyMark(ConnectionState& state) : state_(state) { state_.reading = true; }
  ~BusyMark() { state_.reading = false; }
  BusyMark(const BusyMark&) = delete;
  BusyMark& operator=(const BusyMark&) = delete;

 private:
  ConnectionState& state_;
};

// Produce requests one connection may have appended and not yet answered. Clients pipeline up to
// max.in.flight (librdkafka and Java: 5); each waits for an fsync, and while it does the next
// one's batches are appended and share it, instead of each request costing a sync round trip.
constexpr std::size_t kProducePipelineDepth = 8;

// The connection's pipeline of Produce answers: they are written in the order the requests were
// read (tickets), by the fibers that await their flushes.
struct Pipeline {
  std::uint64_t next_ticket = 0;
  std::uint64_t next_to_write = 0;
  bool broken = false;  // a write failed: later answers are dropped and the connection ends
  WaitQueue moved;      // notified whenever a ticket is written (or the pipeline breaks)
};

struct Connection {
  Broker& broker;
  Stream& stream;
  ConnectionState& state;
  std::string client_host;
  Log log;
  Pipeline pipeline;
  Scope answers;  // the pipelined answers' fibers; after `pipeline`, so they go first

  void wait_pipeline(std::size_t depth_below) {
    while (state.pipelined >= depth_below && !pipeline.broken) pipeline.moved.wait(kNever);
  }

  // Stage two of a Produce, on its own fiber: awaits the flushes, then writes the answer in turn.
  void answer_pipelined(Decoded decoded, Broker::ProduceInProgress produce, std::unique_ptr<BudgetHold> hold,
                        std::string client_id) {
    const std::uint64_t ticket = pipeline.next_ticket++;
    ++state.pipelined;
    answers.spawn("produce-answer", [this, ticket, decoded = std::move(decoded), produce = std::move(produce),
                                     hold = std::move(hold), client_id = std::move(client_id)]() mutable {
      struct Done {
        Connection& connection;
        ~Done() {
          ++connection.pipeline.next_to_write;
          --connection.state.pipelined;
          connection.pipeline.moved.notify_all();
          // Draining and nothing else in progress: the reader waits for a request it must not
          // read, so the connection ends here.
          if (connection.broker.draining() && !connection.state.busy()) connection.stream.close();
        }
      } done{*this};
      const Answer reply = finish(broker, decoded, broker.produce_complete(produce), client_id, log);
      while (pipeline.next_to_write != ticket) pipeline.moved.wait(kNever);
      if (pipeline.broken || !reply.response) return;
      const Env& env = broker.env();
      if (!write_frame(stream, reply.response->body, env.deadline_after(broker.config().idle_timeout))) {
        pipeline.broken = true;
        stream.close();  // the reader ends on it
      }
      hold.reset();  // the budget comes back once the answer is out
    });
  }

  // One request: false when the connection should end.
  bool serve_one_request();
};

bool Connection::serve_one_request() {
  Env& env = broker.env();
  const BrokerConfig& config = broker.config();
  Semaphore& budget = broker.request_memory();
  // At most kProducePipelineDepth answers outstanding before another request is read: TCP pushes
  // back on the client meanwhile.
  wait_pipeline(kProducePipelineDepth);
  if (pipeline.broken || broker.draining()) return false;
  const Instant idle_deadline = env.deadline_after(config.idle_timeout);
  // A frame the whole budget cannot hold would wait forever: it is refused like an oversized one.
  const auto frame_bytes_max = static_cast<std::uint32_t>(
      std::min<std::size_t>(config.request_bytes_max, config.request_memory_bytes_max));
  auto size = read_frame_size(stream, frame_bytes_max, idle_deadline);
  if (!size) {
    if (size.error() == NetError::timed_out) log.debug("closing idle connection");
    if (size.error() == NetError::reset) log.debug("closing: bad or oversized frame, or reset");
    return false;
  }
  // From here until the response is written (or handed to the pipeline), a drain waits for this
  // request (bounded).
  const BusyMark busy(state);
  // Backpressure: wait, without reading the body (so TCP pushes back on the client), until the
  // budget covers this request; held until its response is written. Waiting holds nothing, so
  // waiters cannot deadlock; a peer that announces a large frame and stalls holds its share
  // until the idle timeout (as with Kafka's queued.max.request.bytes).
  const std::size_t charged = *size > kUnbudgetedRequestBytes ? *size : 0;
  if (charged > 0 && !budget.acquire(charged, idle_deadline)) {
    log.debug("closing: no request memory for {} bytes within the idle timeout", charged);
    return false;
  }
  auto hold = std::make_unique<BudgetHold>(budget, charged);
  auto frame = read_frame_body(stream, *size, env.deadline_after(config.idle_timeout));
  if (!frame) return false;
  auto decoded = decode(broker, *frame, log);
  if (auto* early = std::get_if<Answer>(&decoded)) {
    if (early->close) return false;
    wait_pipeline(1);  // answers go out in request order
    return !pipeline.broken &&
           write_frame(stream, early->response->body, env.deadline_after(config.idle_timeout)).has_value();
  }
  Decoded& request = std::get<Decoded>(decoded);
  std::string client_id = request.header.client_id.value_or("");
  if (request.header.api_key == protocol::api::kProduce) {
    // Stage one here, in read order; stage two (flush, answer) on the pipeline, which keeps no
    // copy of the records.
    protocol::StructValue body = std::move(request.request);
    Broker::ProduceInProgress produce = broker.produce_append(body);
    answer_pipelined(std::move(request), std::move(produce), std::move(hold), std::move(client_id));
    return true;
  }
  // Anything else runs alone, after every Produce read before it has been answered.
  wait_pipeline(1);
  if (pipeline.broken) return false;
  const RequestContext context{.client_id = client_id, .client_host = client_host};
  const auto response = broker.handle(request.header, *request.schema, request.request, context);
  const Answer reply = finish(broker, request, response, client_id, log);
  if (!reply.response) return true;
  assert(reply.response->body.size() >= 4);  // at least the correlation id
  // Record batches of a Fetch go from the segment files to the socket (sendfile in the runtime).
  return protocol::write_spliced_frame(stream, reply.response->body, reply.response->splices,
                                       env.deadline_after(config.idle_timeout))
      .has_value();
}

}  // namespace

void serve_connection(Broker& broker, Stream& stream, ConnectionState& state) {
  Connection connection{.broker = broker,
                        .stream = stream,
                        .state = state,
                        .client_host = "/" + stream.peer_address().host,
                        .log = broker.env().log().with_component("conn " + stream.peer_address().to_string()),
                        .pipeline = {},
                        .answers = Scope(broker.env().scheduler().current_scope(), "produce-pipeline")};
  // Bounded by the connection's lifetime: every iteration reads one request or ends it.
  while (!broker.draining() && connection.serve_one_request()) {
  }
  // Pipelined answers still awaiting their flushes are written before the connection closes.
  connection.wait_pipeline(1);
  stream.close();
}

}  // namespace sluice::kafka
