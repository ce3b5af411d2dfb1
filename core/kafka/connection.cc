#include "core/kafka/connection.h"

#include <cassert>

#include "core/protocol/messages.h"
#include "core/util/frame_io.h"

namespace sluice::kafka {

namespace {

using protocol::RequestHeader;

// The encoded response frame body for one request, or nothing to send, or "close".
struct Answer {
  bool close = false;
  std::optional<Bytes> body;

  static Answer close_connection() { return {.close = true, .body = std::nullopt}; }
  static Answer nothing() { return {.close = false, .body = std::nullopt}; }
  static Answer send(Bytes body) { return {.close = false, .body = std::move(body)}; }
};

Bytes encode_response(const RequestHeader& header, const protocol::MessageSchema& schema,
                      std::int16_t version, const protocol::StructValue& response) {
  const bool flexible = schema.flexible(version);
  // ApiVersions answers with header v0 even in flexible versions, so a client that does not yet
  // know the broker's versions can always parse the correlation id.
  const bool flexible_header = flexible && header.api_key != protocol::api::kApiVersions;
  Bytes out;
  protocol::encode_response_header(header.correlation_id, flexible_header, out);
  protocol::encode_struct(schema.response, version, flexible, response, out);
  return out;
}

Answer answer(Broker& broker, std::span<const std::byte> frame, const Log& log) {
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
  auto response = broker.handle(*header, *schema, *request);
  if (!response) return Answer::nothing();
  return Answer::send(encode_response(*header, *schema, header->api_version, *response));
}

}  // namespace

void serve_connection(Broker& broker, Stream& stream) {
  Env& env = broker.env();
  const Log log = env.log().with_component("conn " + stream.peer_address().to_string());
  const BrokerConfig& config = broker.config();
  // Bounded by the connection's lifetime: every iteration reads one frame or ends it.
  for (;;) {
    auto frame =
        read_frame(stream, config.request_bytes_max, env.deadline_after(config.idle_timeout));
    if (!frame) {
      if (frame.error() == NetError::timed_out) log.debug("closing idle connection");
      if (frame.error() == NetError::reset) log.debug("closing: bad or oversized frame, or reset");
      break;
    }
    const Answer reply = answer(broker, *frame, log);
    if (reply.close) break;
    if (!reply.body) continue;
    assert(reply.body->size() >= 4);  // at least the correlation id
    if (!write_frame(stream, *reply.body, env.deadline_after(config.idle_timeout))) break;
  }
  stream.close();
}

}  // namespace sluice::kafka
