#pragma once
// One client connection: read a length-prefixed request, decode its header and body, let the
// Broker answer it, write the response — strictly one at a time, so pipelined requests are
// answered in order. Kafka's connection rules:
//  * a frame over request_bytes_max, a zero-length frame, a malformed header or body, an unknown
//    API key or an unsupported version of any API but ApiVersions ⇒ the connection is closed;
//  * ApiVersions at an unsupported version ⇒ KIP-511: a v0-format body with UNSUPPORTED_VERSION
//    and the supported API ranges, so the client can retry at a version the broker knows;
//  * response header v1 exactly when the API version is flexible, except ApiVersions (always v0);
//  * no bytes moving for idle_timeout ⇒ closed.
// Returns when the connection ends; the stream is closed on every way out. While the broker
// drains (Broker::stop) no further request is read: the one in progress is answered, then the
// connection ends.

#include "core/env/net.h"
#include "core/kafka/broker.h"

namespace sluice::kafka {

void serve_connection(Broker& broker, Stream& stream, ConnectionState& state);

}  // namespace sluice::kafka
