#include "core/kafka/connection.h"

#include <algorithm>
#include <cassert>

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

Answer answer(Broker& broker, std::span<const std::byte> frame, const std::string& client_host, const Log& log) {
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
  const RequestContext context{.client_id = header->client_id.value_or(""), .client_host = client_host};
  Env& env = broker.env();
  const Instant started = env.now();
  auto response = broker.handle(*header, *schema, *request, context);
  ApiStats& stats = env.metrics().api(header->api_key);
  ++stats.requests;
  const std::size_t errors = response ? count_error_codes(*response) : 0;
  if (errors > 0) ++stats.errors;
  Answer reply = response ? Answer::send(encode_response(*header, *schema, header->api_version, *response))
                          : Answer::nothing();
  const Duration took = env.now() - started;
  stats.latency.observe(took);
  if (broker.request_logging()) {
    log.info("request api={} version={} correlation_id={} client_id={} took_us={} errors={}", schema->name,
             header->api_version, header->correlation_id, context.client_id,
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

// Marks a connection busy (a request read and not yet answered) for its lifetime.
class BusyMark {
 public:
  explicit BusyMark(ConnectionState& state) : state_(state) { state_.busy = true; }
  ~BusyMark() { state_.busy = false; }
  BusyMark(const BusyMark&) = delete;
  BusyMark& operator=(const BusyMark&) = delete;

 private:
  ConnectionState& state_;
};

// One request/response exchange: false when the connection should end.
bool serve_one_request(Broker& broker, Stream& stream, ConnectionState& state,
                       const std::string& client_host, const Log& log) {
  Env& env = broker.env();
  const BrokerConfig& config = broker.config();
  Semaphore& budget = broker.request_memory();
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
  // From here until the response is written, a drain waits for this request (bounded).
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
  const BudgetHold hold(budget, charged);
  auto frame = read_frame_body(stream, *size, env.deadline_after(config.idle_timeout));
  if (!frame) return false;
  const Answer reply = answer(broker, *frame, client_host, log);
  if (reply.close) return false;
  if (!reply.response) return true;
  assert(reply.response->body.size() >= 4);  // at least the correlation id
  // Record batches of a Fetch go from the segment files to the socket (sendfile in the runtime).
  return protocol::write_spliced_frame(stream, reply.response->body, reply.response->splices,
                                       env.deadline_after(config.idle_timeout))
      .has_value();
}

}  // namespace

void serve_connection(Broker& broker, Stream& stream, ConnectionState& state) {
  const Log log = broker.env().log().with_component("conn " + stream.peer_address().to_string());
  // Bounded by the connection's lifetime: every iteration answers one request or ends it.
  const std::string client_host = "/" + stream.peer_address().host;
  while (!broker.draining() && serve_one_request(broker, stream, state, client_host, log)) {
  }
  stream.close();
}

}  // namespace sluice::kafka
