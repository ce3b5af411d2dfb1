#include "core/client/kafka_connection.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <utility>

#include "core/protocol/codec.h"
#include "core/util/frame_io.h"

namespace sluice::client {

namespace {

using protocol::StructValue;

// ApiVersions v2: every Kafka since 2.0 and Sluice speak it, and it is not flexible, so the
// first request needs no KIP-511 fallback dance.
constexpr std::int16_t kApiVersionsVersion = 2;
constexpr std::int16_t kErrorUnsupportedVersion = 35;

// Kafka's error codes -1..108 (org.apache.kafka.common.protocol.Errors), indexed by code + 1.
constexpr std::array<std::string_view, 110> kErrorNames = {
    "UNKNOWN_SERVER_ERROR",
    "NONE",
    "OFFSET_OUT_OF_RANGE",
    "CORRUPT_MESSAGE",
    "UNKNOWN_TOPIC_OR_PARTITION",
    "INVALID_FETCH_SIZE",
    "LEADER_NOT_AVAILABLE",
    "NOT_LEADER_OR_FOLLOWER",
    "REQUEST_TIMED_OUT",
    "BROKER_NOT_AVAILABLE",
    "REPLICA_NOT_AVAILABLE",
    "MESSAGE_TOO_LARGE",
    "STALE_CONTROLLER_EPOCH",
    "OFFSET_METADATA_TOO_LARGE",
    "NETWORK_EXCEPTION",
    "COORDINATOR_LOAD_IN_PROGRESS",
    "COORDINATOR_NOT_AVAILABLE",
    "NOT_COORDINATOR",
    "INVALID_TOPIC_EXCEPTION",
    "RECORD_LIST_TOO_LARGE",
    "NOT_ENOUGH_REPLICAS",
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
    "INVALID_REQUIRED_ACKS",
    "ILLEGAL_GENERATION",
    "INCONSISTENT_GROUP_PROTOCOL",
    "INVALID_GROUP_ID",
    "UNKNOWN_MEMBER_ID",
    "INVALID_SESSION_TIMEOUT",
    "REBALANCE_IN_PROGRESS",
    "INVALID_COMMIT_OFFSET_SIZE",
    "TOPIC_AUTHORIZATION_FAILED",
    "GROUP_AUTHORIZATION_FAILED",
    "CLUSTER_AUTHORIZATION_FAILED",
    "INVALID_TIMESTAMP",
    "UNSUPPORTED_SASL_MECHANISM",
    "ILLEGAL_SASL_STATE",
    "UNSUPPORTED_VERSION",
    "TOPIC_ALREADY_EXISTS",
    "INVALID_PARTITIONS",
    "INVALID_REPLICATION_FACTOR",
    "INVALID_REPLICA_ASSIGNMENT",
    "INVALID_CONFIG",
    "NOT_CONTROLLER",
    "INVALID_REQUEST",
    "UNSUPPORTED_FOR_MESSAGE_FORMAT",
    "POLICY_VIOLATION",
    "OUT_OF_ORDER_SEQUENCE_NUMBER",
    "DUPLICATE_SEQUENCE_NUMBER",
    "INVALID_PRODUCER_EPOCH",
    "INVALID_TXN_STATE",
    "INVALID_PRODUCER_ID_MAPPING",
    "INVALID_TRANSACTION_TIMEOUT",
    "CONCURRENT_TRANSACTIONS",
    "TRANSACTION_COORDINATOR_FENCED",
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
    "SECURITY_DISABLED",
    "OPERATION_NOT_ATTEMPTED",
    "KAFKA_STORAGE_ERROR",
    "LOG_DIR_NOT_FOUND",
    "SASL_AUTHENTICATION_FAILED",
    "UNKNOWN_PRODUCER_ID",
    "REASSIGNMENT_IN_PROGRESS",
    "DELEGATION_TOKEN_AUTH_DISABLED",
    "DELEGATION_TOKEN_NOT_FOUND",
    "DELEGATION_TOKEN_OWNER_MISMATCH",
    "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED",
    "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
    "DELEGATION_TOKEN_EXPIRED",
    "INVALID_PRINCIPAL_TYPE",
    "NON_EMPTY_GROUP",
    "GROUP_ID_NOT_FOUND",
    "FETCH_SESSION_ID_NOT_FOUND",
    "INVALID_FETCH_SESSION_EPOCH",
    "LISTENER_NOT_FOUND",
    "TOPIC_DELETION_DISABLED",
    "FENCED_LEADER_EPOCH",
    "UNKNOWN_LEADER_EPOCH",
    "UNSUPPORTED_COMPRESSION_TYPE",
    "STALE_BROKER_EPOCH",
    "OFFSET_NOT_AVAILABLE",
    "MEMBER_ID_REQUIRED",
    "PREFERRED_LEADER_NOT_AVAILABLE",
    "GROUP_MAX_SIZE_REACHED",
    "FENCED_INSTANCE_ID",
    "ELIGIBLE_LEADERS_NOT_AVAILABLE",
    "ELECTION_NOT_NEEDED",
    "NO_REASSIGNMENT_IN_PROGRESS",
    "GROUP_SUBSCRIBED_TO_TOPIC",
    "INVALID_RECORD",
    "UNSTABLE_OFFSET_COMMIT",
    "THROTTLING_QUOTA_EXCEEDED",
    "PRODUCER_FENCED",
    "RESOURCE_NOT_FOUND",
    "DUPLICATE_RESOURCE",
    "UNACCEPTABLE_CREDENTIAL",
    "INCONSISTENT_VOTER_SET",
    "INVALID_UPDATE_VERSION",
    "FEATURE_UPDATE_FAILED",
    "PRINCIPAL_DESERIALIZATION_FAILURE",
    "SNAPSHOT_NOT_FOUND",
    "POSITION_OUT_OF_RANGE",
    "UNKNOWN_TOPIC_ID",
    "DUPLICATE_BROKER_REGISTRATION",
    "BROKER_ID_NOT_REGISTERED",
    "INCONSISTENT_TOPIC_ID",
    "INCONSISTENT_CLUSTER_ID",
    "TRANSACTIONAL_ID_NOT_FOUND",
    "FETCH_SESSION_TOPIC_ID_ERROR",
    "INELIGIBLE_REPLICA",
    "NEW_LEADER_ELECTED",
};
static_assert(kErrorNames[1] == "NONE" && kErrorNames[37] == "TOPIC_ALREADY_EXISTS");

std::string_view describe(NetError error) {
  if (error == NetError::refused) return "connection refused (is a broker listening there?)";
  if (error == NetError::timed_out) return "timed out";
  return to_string(error);
}

// Holds the exchange mutex for one call; if the call is left before it finished (a fiber
// cancelled mid-exchange), the connection is closed, since the stream may be out of step.
class ExchangeGuard {
 public:
  ExchangeGuard(Mutex& mutex, KafkaConnection& connection)
      : mutex_(mutex), connection_(connection) {}
  ~ExchangeGuard() {
    if (!finished_) connection_.close();
    mutex_.unlock();
  }
  ExchangeGuard(const ExchangeGuard&) = delete;
  ExchangeGuard& operator=(const ExchangeGuard&) = delete;
  void finish() { finished_ = true; }

 private:
  Mutex& mutex_;
  KafkaConnection& connection_;
  bool finished_ = false;
};

}  // namespace

std::string_view kafka_error_name(std::int16_t error_code) {
  const int index = error_code + 1;
  if (index < 0 || index >= static_cast<int>(kErrorNames.size())) return "UNKNOWN_ERROR_CODE";
  return kErrorNames[static_cast<std::size_t>(index)];
}

bool kafka_error_retriable(std::int16_t error_code) {
  switch (error_code) {
    case 2:   // CORRUPT_MESSAGE
    case 3:   // UNKNOWN_TOPIC_OR_PARTITION
    case 5:   // LEADER_NOT_AVAILABLE
    case 6:   // NOT_LEADER_OR_FOLLOWER
    case 7:   // REQUEST_TIMED_OUT
    case 9:   // REPLICA_NOT_AVAILABLE
    case 13:  // NETWORK_EXCEPTION
    case 14:  // COORDINATOR_LOAD_IN_PROGRESS
    case 15:  // COORDINATOR_NOT_AVAILABLE
    case 16:  // NOT_COORDINATOR
    case 19:  // NOT_ENOUGH_REPLICAS
    case 20:  // NOT_ENOUGH_REPLICAS_AFTER_APPEND
    case 41:  // NOT_CONTROLLER
    case 51:  // CONCURRENT_TRANSACTIONS
    case 56:  // KAFKA_STORAGE_ERROR
    case 70:  // FETCH_SESSION_ID_NOT_FOUND
    case 71:  // INVALID_FETCH_SESSION_EPOCH
    case 72:  // LISTENER_NOT_FOUND
    case 74:  // FENCED_LEADER_EPOCH
    case 75:  // UNKNOWN_LEADER_EPOCH
    case 78:  // OFFSET_NOT_AVAILABLE
    case 80:  // PREFERRED_LEADER_NOT_AVAILABLE
    case 83:  // ELIGIBLE_LEADERS_NOT_AVAILABLE
    case 88:  // UNSTABLE_OFFSET_COMMIT
    case 89:  // THROTTLING_QUOTA_EXCEEDED
      return true;
    default:
      return false;
  }
}

ClientError ClientError::from_kafka(std::int16_t error_code, std::string_view context,
                                    const std::optional<std::string>& broker_message) {
  assert(error_code != 0);
  std::string message =
      fmt::format("{}: {} ({})", context, kafka_error_name(error_code), error_code);
  if (broker_message && !broker_message->empty()) message += ": " + *broker_message;
  return ClientError{.kind = Kind::kafka, .error_code = error_code, .message = std::move(message)};
}

KafkaConnection::KafkaConnection(Env& env, Address address, std::unique_ptr<Stream> stream,
                                 ConnectionOptions options)
    : env_(env),
      address_(std::move(address)),
      stream_(std::move(stream)),
      options_(std::move(options)) {
  assert(stream_ != nullptr);
}

KafkaConnection::~KafkaConnection() {
  close();
}

void KafkaConnection::close() {
  if (closed_) return;
  closed_ = true;
  stream_->close();
  assert(broken());
}

ClientError KafkaConnection::fail_connection(std::string_view doing, NetError error,
                                             bool request_written) {
  close();
  return ClientError{
      .kind = ClientError::Kind::connection,
      .request_written = request_written,
      .net_error = error,
      .message = fmt::format("{} broker at {}: {}", doing, address_.to_string(), describe(error))};
}

ClientError KafkaConnection::fail_protocol(std::string message) {
  close();
  // Only a response (or its absence) is ever undecodable, so the request went out in full.
  return ClientError{
      .kind = ClientError::Kind::protocol, .request_written = true, .message = std::move(message)};
}

KafkaConnection::Result<std::unique_ptr<KafkaConnection>> KafkaConnection::connect(
    Env& env, const Address& address, ConnectionOptions options) {
  assert(options.connect_timeout.count() > 0 && options.request_timeout.count() > 0);
  const Instant deadline = env.deadline_after(options.connect_timeout);
  auto stream = env.net().connect(address, deadline);
  if (!stream) {
    return std::unexpected(
        ClientError{.kind = ClientError::Kind::connection,
                    .net_error = stream.error(),
                    .message = fmt::format("cannot connect to broker at {}: {}",
                                           address.to_string(), describe(stream.error()))});
  }
  std::unique_ptr<KafkaConnection> connection(
      new KafkaConnection(env, address, std::move(*stream), std::move(options)));
  if (auto negotiated = connection->negotiate_versions(deadline); !negotiated) {
    return std::unexpected(negotiated.error());
  }
  assert(!connection->broken());
  return connection;
}

KafkaConnection::Result<void> KafkaConnection::negotiate_versions(Instant deadline) {
  const auto& schema = protocol::kApiVersionsSchema;
  auto response = call_version(schema, kApiVersionsVersion, new_request(schema), deadline);
  if (!response) return std::unexpected(response.error());
  const auto error_code = static_cast<std::int16_t>(response->get_int("error_code"));
  // A broker without v2 answers UNSUPPORTED_VERSION with a v0 body that still lists its APIs;
  // decoding it as v2 fails, so such a broker (pre-2.0 Kafka) is reported as a protocol error.
  if (error_code != 0 && error_code != kErrorUnsupportedVersion) {
    close();
    return std::unexpected(ClientError::from_kafka(error_code, "ApiVersions", std::nullopt));
  }
  for (const StructValue& key : response->get_structs("api_keys")) {
    broker_versions_[static_cast<std::int16_t>(key.get_int("api_key"))] =
        protocol::VersionRange{static_cast<std::int16_t>(key.get_int("min_version")),
                               static_cast<std::int16_t>(key.get_int("max_version"))};
  }
  return {};
}

KafkaConnection::Result<std::int16_t> KafkaConnection::version_for(
    const protocol::MessageSchema& schema) const {
  const auto found = broker_versions_.find(schema.api_key);
  if (found == broker_versions_.end()) {
    return std::unexpected(
        ClientError{.kind = ClientError::Kind::unsupported_api,
                    .message = fmt::format("the broker at {} does not support {} (API key {})",
                                           address_.to_string(), schema.name, schema.api_key)});
  }
  const protocol::VersionRange broker = found->second;
  const std::int16_t version = std::min(schema.valid.max, broker.max);
  if (version < schema.valid.min || version < broker.min) {
    return std::unexpected(ClientError{
        .kind = ClientError::Kind::unsupported_api,
        .message = fmt::format("the broker at {} supports {} versions {}-{}, sluice speaks {}-{}",
                               address_.to_string(), schema.name, broker.min, broker.max,
                               schema.valid.min, schema.valid.max)});
  }
  return version;
}

KafkaConnection::Result<StructValue> KafkaConnection::call(const protocol::MessageSchema& schema,
                                                           const StructValue& request) {
  return call(schema, request, env_.deadline_after(options_.request_timeout));
}

KafkaConnection::Result<StructValue> KafkaConnection::call(const protocol::MessageSchema& schema,
                                                           const StructValue& request,
                                                           Instant deadline) {
  auto version = version_for(schema);
  if (!version) return std::unexpected(version.error());
  return call_version(schema, *version, request, deadline);
}

ClientError KafkaConnection::busy_error(const protocol::MessageSchema& schema) const {
  return ClientError{.kind = ClientError::Kind::connection,
                     .net_error = NetError::timed_out,
                     .message = fmt::format("{} to {}: timed out waiting for an earlier request",
                                            schema.name, address_.to_string())};
}

KafkaConnection::Result<StructValue> KafkaConnection::call_version(
    const protocol::MessageSchema& schema, std::int16_t version, const StructValue& request,
    Instant deadline) {
  if (!exchange_mutex_.lock(deadline)) return std::unexpected(busy_error(schema));
  ExchangeGuard guard(exchange_mutex_, *this);
  auto correlation_id = write_request(schema, version, request, deadline);
  if (!correlation_id) {
    guard.finish();
    return std::unexpected(correlation_id.error());
  }
  auto response = read_response(schema, version, *correlation_id, deadline);
  guard.finish();
  return response;
}

KafkaConnection::Result<void> KafkaConnection::send(const protocol::MessageSchema& schema,
                                                    const StructValue& request, Instant deadline) {
  auto version = version_for(schema);
  if (!version) return std::unexpected(version.error());
  if (!exchange_mutex_.lock(deadline)) return std::unexpected(busy_error(schema));
  ExchangeGuard guard(exchange_mutex_, *this);
  auto written = write_request(schema, *version, request, deadline);
  guard.finish();
  if (!written) return std::unexpected(written.error());
  return {};
}

KafkaConnection::Result<std::int32_t> KafkaConnection::write_request(
    const protocol::MessageSchema& schema, std::int16_t version, const StructValue& request,
    Instant deadline) {
  assert(request.schema.data == schema.request.data);
  if (!schema.valid.contains(version)) {
    return std::unexpected(
        ClientError{.kind = ClientError::Kind::unsupported_api,
                    .message = fmt::format("sluice does not speak {} v{}", schema.name, version)});
  }
  if (broken()) {
    return std::unexpected(ClientError{
        .kind = ClientError::Kind::connection,
        .net_error = NetError::closed,
        .message = fmt::format("connection to broker at {} is closed after an earlier error",
                               address_.to_string())});
  }
  const bool flexible = schema.flexible(version);
  const std::int32_t correlation_id = correlation_id_next_++;
  Bytes frame;
  protocol::encode_request_header({.api_key = schema.api_key,
                                   .api_version = version,
                                   .correlation_id = correlation_id,
                                   .client_id = options_.client_id},
                                  flexible, frame);
  protocol::encode_struct(schema.request, version, flexible, request, frame);
  // A failed write left at most part of the frame with the broker, which never acts on a partial
  // frame: the request certainly did not happen.
  if (auto written = write_frame(*stream_, frame, deadline); !written) {
    return std::unexpected(fail_connection("sending to", written.error(), false));
  }
  return correlation_id;
}

KafkaConnection::Result<StructValue> KafkaConnection::read_response(
    const protocol::MessageSchema& schema, std::int16_t version, std::int32_t correlation_id,
    Instant deadline) {
  auto body = read_frame(*stream_, options_.response_bytes_max, deadline);
  if (!body) return std::unexpected(fail_connection("reading from", body.error(), true));

  ByteReader reader(*body);
  const auto correlation_received = static_cast<std::int32_t>(reader.u32());
  bool header_ok = true;
  const bool flexible = schema.flexible(version);
  // ApiVersions responses always use header v0 (KIP-511), whatever the request version.
  if (flexible && schema.api_key != protocol::api::kApiVersions) {
    header_ok = protocol::skip_tagged_fields(reader).has_value();
  }
  if (!header_ok || !reader.ok() || correlation_received != correlation_id) {
    return std::unexpected(fail_protocol(
        fmt::format("{} response from {}: bad header (correlation id {}, expected {})", schema.name,
                    address_.to_string(), correlation_received, correlation_id)));
  }
  const auto response_body = std::span<const std::byte>(*body).subspan(reader.position());
  auto decoded = protocol::decode_message(schema.response, version, flexible, response_body);
  if (!decoded) {
    return std::unexpected(
        fail_protocol(fmt::format("{} v{} response from {}: {}", schema.name, version,
                                  address_.to_string(), protocol::to_string(decoded.error()))));
  }
  return std::move(*decoded);
}

}  // namespace sluice::client
