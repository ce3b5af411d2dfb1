#pragma once
// Metrics: what a node counts about itself, in plain integers. Counting is an add on the hot path
// (no locks, no atomics, no maps): everything in core/ runs on the node's one scheduler thread, and
// the runtime's admin API reads these on that thread too (it posts the scrape to the reactor).
// Deterministic in simulation: latencies are measured with the Env's clock.
//
// What lives where: node-wide counts (per-API requests, fsyncs, connections, rebalances) are
// here, in Env::metrics(); per-partition traffic is on the partition (kafka::Partition::traffic);
// gauges (log offsets, consumer lag, memory in use) are read from their owners at scrape time.
// core/kafka/broker_metrics.h renders all of it in Prometheus' text format.

#include <array>
#include <cstddef>
#include <cstdint>

#include "core/env/time.h"

namespace sluice {

// A latency histogram with fixed bucket bounds (Prometheus' `le`), from 50 us to 10 s.
class LatencyHistogram {
 public:
  static constexpr std::array<std::int64_t, 16> kBoundsMicros = {
      50,     100,    250,     500,     1'000,   2'500,   5'000,     10'000,
      25'000, 50'000, 100'000, 250'000, 500'000, 1'000'000, 2'500'000, 10'000'000};

  void observe(Duration duration) {
    const std::int64_t micros = to_micros(duration);
    std::size_t bucket = 0;
    while (bucket < kBoundsMicros.size() && micros > kBoundsMicros[bucket]) ++bucket;
    ++counts_[bucket];
    ++count_;
    sum_micros_ += micros > 0 ? static_cast<std::uint64_t>(micros) : 0;
  }

  std::uint64_t count() const { return count_; }
  std::uint64_t sum_micros() const { return sum_micros_; }
  // Observations in bucket `i` alone (not cumulative); i == kBoundsMicros.size() is +Inf.
  std::uint64_t bucket_count(std::size_t i) const { return counts_[i]; }

 private:
  static std::int64_t to_micros(Duration duration) { return duration.count() / 1000; }

  std::array<std::uint64_t, kBoundsMicros.size() + 1> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_micros_ = 0;
};

// One Kafka API's requests: how many, how many answered with an error code, how long they took
// (from the decoded request to its encoded response: the broker's own time, waits included).
struct ApiStats {
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  LatencyHistogram latency;
};

class Metrics {
 public:
  static constexpr std::size_t kApiKeys = 80;  // Kafka API keys 0..79

  // Unknown keys (never handled) are counted together under the last slot.
  ApiStats& api(std::int16_t api_key) {
    const auto index = static_cast<std::size_t>(api_key);
    return api_key >= 0 && index < kApiKeys - 1 ? apis_[index] : apis_[kApiKeys - 1];
  }
  const ApiStats& api_at(std::size_t index) const { return apis_[index]; }

  // Storage: every datasync of a partition log's segment (its count is the histogram's count).
  LatencyHistogram fsync_latency;
  std::uint64_t fsync_errors = 0;

  // Connections accepted and closed since start (open = accepted - closed).
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_closed = 0;

  // Consumer groups: rebalances started (a group entering PreparingRebalance).
  std::uint64_t group_rebalances = 0;

 private:
  std::array<ApiStats, kApiKeys> apis_{};
};

}  // namespace sluice
