#pragma once
// The broker's metrics in Prometheus' text exposition format (version 0.0.4): the node's counters
// (Env::metrics()), per-partition traffic and log offsets, consumer lag per group and partition,
// connections and the request memory budget. Call on the broker's scheduler thread; it does not
// suspend.

#include <cstddef>
#include <string>

#include "core/protocol/value.h"

namespace sluice::kafka {

class Broker;

std::string render_prometheus(Broker& broker);

// How many error_code fields of a response are not NONE (its top level and every nested struct):
// a request counts as an error in the metrics when any is. Runs once per request.
std::size_t count_error_codes(const protocol::StructValue& response);

}  // namespace sluice::kafka
