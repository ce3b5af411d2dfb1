#pragma once
// AdminClient: a small blocking Kafka client for admin tools (`sluice topic`, `sluice group`). It
// speaks only the Kafka wire protocol, so it works against Kafka and Redpanda as well as Sluice.
//
// Lifecycle: connect() opens one TCP connection and negotiates versions with ApiVersions; each
// call() then sends one request and waits for its response (no pipelining). Concurrency: one
// fiber uses a client at a time. Every wait is bounded by the client's request timeout.

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/env/env.h"
#include "core/env/net.h"
#include "core/protocol/messages.h"
#include "core/protocol/value.h"

namespace sluice::runtime {

// Kafka's name for an error code ("TOPIC_ALREADY_EXISTS"), or "UNKNOWN_ERROR_CODE".
std::string_view kafka_error_name(std::int16_t error_code);

struct AdminError {
  enum class Kind : std::uint8_t {
    connection,       // could not connect, or the connection broke
    protocol,         // the broker sent something we could not decode
    unsupported_api,  // the broker lacks the API or every version we speak
    kafka,            // the broker answered with a Kafka error code
    refused,          // the command declined to act (e.g. resetting the offsets of an active group)
  };
  Kind kind = Kind::connection;
  std::int16_t error_code = 0;  // Kind::kafka only
  std::string message;          // human-readable, names the address or the Kafka error

  static AdminError from_kafka(std::int16_t error_code, std::string_view context,
                               const std::optional<std::string>& broker_message);
};

class AdminClient {
 public:
  template <typename T>
  using Result = std::expected<T, AdminError>;

  // Connects within `timeout` and negotiates versions; later calls each get `timeout` too.
  static Result<std::unique_ptr<AdminClient>> connect(Env& env, const Address& address,
                                                      Duration timeout);
  ~AdminClient();
  AdminClient(const AdminClient&) = delete;
  AdminClient& operator=(const AdminClient&) = delete;

  // The version call() uses for `schema`: min(Sluice's max, the broker's max); an error when the
  // broker lacks the API or the ranges do not overlap.
  Result<std::int16_t> version_for(const protocol::MessageSchema& schema) const;
  // A request of `schema` with every field at its default.
  static protocol::StructValue new_request(const protocol::MessageSchema& schema) {
    return protocol::StructValue::with_defaults(schema.request);
  }
  // Sends `request` at the negotiated version and returns the decoded response body.
  Result<protocol::StructValue> call(const protocol::MessageSchema& schema,
                                     const protocol::StructValue& request);

  const Address& address() const { return address_; }

 private:
  AdminClient(Env& env, Address address, std::unique_ptr<Stream> stream, Duration timeout);
  Result<protocol::StructValue> exchange(const protocol::MessageSchema& schema,
                                         std::int16_t version,
                                         const protocol::StructValue& request);
  Result<void> negotiate_versions();
  AdminError connection_error(std::string_view doing, NetError error) const;

  Env& env_;
  Address address_;
  std::unique_ptr<Stream> stream_;
  Duration timeout_;
  std::int32_t correlation_id_next_ = 1;
  // API key -> the broker's max version, from ApiVersions.
  std::unordered_map<std::int16_t, protocol::VersionRange> broker_versions_;
};

}  // namespace sluice::runtime
