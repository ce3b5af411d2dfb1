#pragma once
// KafkaConnection: the client side of the Kafka wire protocol over one connection to one broker.
// It speaks only the protocol (core/protocol codecs over a core/env Stream), so the same code
// serves the admin tools against Kafka, Redpanda or Sluice in the runtime (`sluice topic`,
// `sluice group`) and the simulated clients of scenarios/clients inside the simulator.
//
// Lifecycle: connect() opens the stream and negotiates versions with ApiVersions; each call()
// then sends one request at min(Sluice's max, the broker's max) version and waits for its
// response; send() writes a request that gets no response (Produce with acks=0). Any connection
// or protocol error (including a deadline passing mid-exchange) closes the connection for good:
// the byte stream may be out of step, so later calls fail at once with Kind::connection and
// broken() is true. The owner reconnects by calling connect() again.
//
// Concurrency: one scheduler. Calls from several fibers are serialised in FIFO order (one
// request in flight at a time, as the broker answers one at a time anyway); each waits at most
// until its deadline. A fiber cancelled mid-call leaves the connection broken.
//
// Errors are values (ClientError); a Kafka error code inside a response body is the caller's to
// read, since where it lives differs per API.

#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/env/env.h"
#include "core/env/net.h"
#include "core/env/sync.h"
#include "core/protocol/messages.h"
#include "core/protocol/value.h"

namespace sluice::client {

// Kafka's name for an error code ("TOPIC_ALREADY_EXISTS"), or "UNKNOWN_ERROR_CODE".
std::string_view kafka_error_name(std::int16_t error_code);
// Whether Kafka's clients retry a request that got this error code (its exception is a
// RetriableException: a leader or coordinator moving, a timeout, a storage hiccup).
bool kafka_error_retriable(std::int16_t error_code);

struct ClientError {
  enum class Kind : std::uint8_t {
    connection,       // could not connect, or the connection broke (or was already broken)
    protocol,         // the broker sent something we could not decode
    unsupported_api,  // the broker lacks the API or every version we speak
    kafka,            // the broker answered with a Kafka error code
    refused,          // a caller declined to act on what it learned (never from the connection)
  };
  Kind kind = Kind::connection;
  std::int16_t error_code = 0;  // Kind::kafka only
  // Kind::connection and protocol: the whole request was written, so the broker may have acted on
  // it although no usable answer came back (the outcome is unknown). False when nothing reached
  // the broker (the request certainly did not happen) and for the other kinds.
  bool request_written = false;
  std::optional<NetError> net_error =
      std::nullopt;     // Kind::connection: the stream's error, when there was one
  std::string message;  // human-readable, names the address or the Kafka error

  static ClientError from_kafka(std::int16_t error_code, std::string_view context,
                                const std::optional<std::string>& broker_message);
};

struct ConnectionOptions {
  std::string client_id = "sluice-client";
  Duration connect_timeout = seconds(30);  // TCP connect plus ApiVersions
  Duration request_timeout = seconds(30);  // the deadline of call() without one
  // A larger response frame is refused before allocation (the connection then breaks).
  std::uint32_t response_bytes_max = 64 * 1024 * 1024;

  // One timeout for connecting and for each request, as the simulated clients use.
  static ConnectionOptions with_timeout(std::string client_id, Duration timeout) {
    ConnectionOptions options;
    options.client_id = std::move(client_id);
    options.connect_timeout = timeout;
    options.request_timeout = timeout;
    return options;
  }
};

class KafkaConnection {
 public:
  template <typename T>
  using Result = std::expected<T, ClientError>;

  // Connects within options.connect_timeout and negotiates versions.
  static Result<std::unique_ptr<KafkaConnection>> connect(Env& env, const Address& address,
                                                          ConnectionOptions options);
  ~KafkaConnection();
  KafkaConnection(const KafkaConnection&) = delete;
  KafkaConnection& operator=(const KafkaConnection&) = delete;

  // A request of `schema` with every field at its default.
  static protocol::StructValue new_request(const protocol::MessageSchema& schema) {
    return protocol::StructValue::with_defaults(schema.request);
  }
  // The version call() uses for `schema`: min(Sluice's max, the broker's max); an error when the
  // broker lacks the API or the ranges do not overlap.
  Result<std::int16_t> version_for(const protocol::MessageSchema& schema) const;

  // Sends `request` at the negotiated version and returns the decoded response body. Without a
  // deadline, the options' request_timeout bounds the call.
  Result<protocol::StructValue> call(const protocol::MessageSchema& schema,
                                     const protocol::StructValue& request);
  Result<protocol::StructValue> call(const protocol::MessageSchema& schema,
                                     const protocol::StructValue& request, Instant deadline);
  // The same at a chosen version, which both sides must support.
  Result<protocol::StructValue> call_version(const protocol::MessageSchema& schema,
                                             std::int16_t version,
                                             const protocol::StructValue& request,
                                             Instant deadline);
  // Writes a request the broker does not answer (Produce with acks=0) and returns once it is
  // written; the next call() does not wait for a response to it.
  Result<void> send(const protocol::MessageSchema& schema, const protocol::StructValue& request,
                    Instant deadline);

  // True after a connection or protocol error: every later call fails; reconnect instead.
  bool broken() const { return closed_; }
  // Closes the connection (idempotent): a call in progress on another fiber fails at once, later
  // calls fail with Kind::connection.
  void close();
  const Address& address() const { return address_; }
  const ConnectionOptions& options() const { return options_; }

 private:
  // The error of a request that could not start before its deadline (another was in flight).
  ClientError busy_error(const protocol::MessageSchema& schema) const;
  KafkaConnection(Env& env, Address address, std::unique_ptr<Stream> stream,
                  ConnectionOptions options);
  Result<void> negotiate_versions(Instant deadline);
  Result<std::int32_t> write_request(const protocol::MessageSchema& schema, std::int16_t version,
                                     const protocol::StructValue& request, Instant deadline);
  Result<protocol::StructValue> read_response(const protocol::MessageSchema& schema,
                                              std::int16_t version, std::int32_t correlation_id,
                                              Instant deadline);
  // Closes the stream and describes `error` met while `doing` ("sending to", "reading from").
  ClientError fail_connection(std::string_view doing, NetError error, bool request_written);
  ClientError fail_protocol(std::string message);

  Env& env_;
  Address address_;
  // Kept until destruction even when closed: a fiber may still be inside one of its calls.
  std::unique_ptr<Stream> stream_;
  bool closed_ = false;
  ConnectionOptions options_;
  Mutex exchange_mutex_;  // one request/response exchange at a time
  std::int32_t correlation_id_next_ = 1;
  // API key -> the broker's version range, from ApiVersions.
  std::map<std::int16_t, protocol::VersionRange> broker_versions_;
};

}  // namespace sluice::client
