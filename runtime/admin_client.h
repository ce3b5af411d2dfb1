#pragma once
// The admin tools' Kafka client (`sluice topic`, `sluice group`): core/client's KafkaConnection,
// which speaks only the Kafka wire protocol, so the tools work against Kafka and Redpanda as well
// as Sluice. See core/client/kafka_connection.h for its lifecycle and concurrency.

#include <memory>

#include "core/client/kafka_connection.h"
#include "core/env/env.h"
#include "core/env/net.h"

namespace sluice::runtime {

using AdminClient = client::KafkaConnection;
using AdminError = client::ClientError;
using client::kafka_error_name;

// Connects to `address` as client "sluice-admin"; `timeout` bounds the connect and each call.
AdminClient::Result<std::unique_ptr<AdminClient>> connect_admin_client(Env& env,
                                                                       const Address& address,
                                                                       Duration timeout);

}  // namespace sluice::runtime
