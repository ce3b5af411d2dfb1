#pragma once
// One client connection: read a length-prefixed request, decode its header and body, let the
// Broker answer it, write the response; responses always go out in request order.
// Produce requests pipeline (up to 8 per connection): each one's batches are appended before the
// next request is read, and its answer waits for the flush on a fiber of its own while the
// connection reads on, so a client's in-flight Produce requests share fsyncs. Every other request
// waits until the Produce answers before it are written, then runs alone. Kafka's rules:
//  * a frame over request_bytes_max, a zero-length frame, a malformed header or body, an unknown
//    API key or an unsupported version of any API but ApiVersions ⇒ the connection is closed;
//  * ApiVersions at an unsupported version ⇒ KIP-511: a v0-format body with UNSUPPORTED_VERSION
//    and the supported API ranges, so the client can retry at a version the broker knows;
//  * response header v1 exactly when the API version is flexible, except ApiVersions (always v0);
//  * no bytes moving for idle_timeout ⇒ closed.
// Returns when the connection ends; the stream is closed on every way out. While the broker
// drains (Broker::stop) no further request is read: those in progress are answered, then the
// connection ends.

#include "core/env/net.h"
#include "core/kafka/broker.h"

namespace sluice::kafka {

void serve_connection(Broker& broker, Stream& stream, ConnectionState& state);

}  // namespace sluice::kafka
