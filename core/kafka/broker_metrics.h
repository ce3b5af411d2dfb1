#pragma once
// The broker's metrics in Prometheus' text exposition format (version 0.0.4): the node's counters
// (Env::metrics()), per-partition traffic and log offsets, consumer lag per group and partition,
// connections and the request memory budget. Call on the broker's scheduler thread; it does not
// suspend.

#include <string>

namespace sluice::kafka {

class Broker;

std::string render_prometheus(Broker& broker);

}  // namespace sluice::kafka
