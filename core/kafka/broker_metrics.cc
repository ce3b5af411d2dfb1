#include "core/kafka/broker_metrics.h"

#include <fmt/format.h>

#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

#include "core/env/metrics.h"
#include "core/kafka/broker.h"
#include "core/kafka/group_coordinator.h"

namespace sluice::kafka {

namespace {

// Prometheus label values escape backslash, double quote and line feed.
std::string escape_label(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Builds the exposition: every family once, its HELP and TYPE lines before its samples.
class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(text_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  // `labels` is either empty or `key="value",...` (values already escaped).
  void sample(std::string_view name, std::string_view labels, std::uint64_t value) {
    if (labels.empty()) {
      fmt::format_to(std::back_inserter(text_), "{} {}\n", name, value);
    } else {
      fmt::format_to(std::back_inserter(text_), "{}{{{}}} {}\n", name, labels, value);
    }
  }
  void sample(std::string_view name, std::string_view labels, std::int64_t value) {
    if (labels.empty()) {
      fmt::format_to(std::back_inserter(text_), "{} {}\n", name, value);
    } else {
      fmt::format_to(std::back_inserter(text_), "{}{{{}}} {}\n", name, labels, value);
    }
  }
  // A histogram's cumulative buckets (seconds), sum and count.
  void histogram(std::string_view name, std::string_view labels, const LatencyHistogram& histogram) {
    const std::string prefix = labels.empty() ? std::string() : std::string(labels) + ",";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < LatencyHistogram::kBoundsMicros.size(); ++i) {
      cumulative += histogram.bucket_count(i);
      fmt::format_to(std::back_inserter(text_), "{}_bucket{{{}le=\"{}\"}} {}\n", name, prefix,
                     static_cast<double>(LatencyHistogram::kBoundsMicros[i]) / 1e6, cumulative);
    }
    fmt::format_to(std::back_inserter(text_), "{}_bucket{{{}le=\"+Inf\"}} {}\n", name, prefix,
                   histogram.count());
    const std::string braces = labels.empty() ? std::string() : "{" + std::string(labels) + "}";
    fmt::format_to(std::back_inserter(text_), "{}_sum{} {}\n{}_count{} {}\n", name, braces,
                   static_cast<double>(histogram.sum_micros()) / 1e6, name, braces, histogram.count());
  }
  std::string take() { return std::move(text_); }

 private:
  std::string text_;
};

void render_requests(Broker& broker, Exposition& out) {
  const Metrics& metrics = broker.env().metrics();
  // Every API the broker handles, in key order, with zeros before its first request.
  auto each_api = [&](auto&& emit) {
    for (std::size_t key = 0; key + 1 < Metrics::kApiKeys; ++key) {
      const protocol::MessageSchema* schema = broker.handled_schema(static_cast<std::int16_t>(key));
      if (schema == nullptr) continue;
      emit(fmt::format("api=\"{}\"", schema->name), metrics.api_at(key));
    }
  };
  out.family("sluice_kafka_requests_total", "counter", "Kafka requests answered, by API.");
  each_api([&](const std::string& labels, const ApiStats& stats) {
    out.sample("sluice_kafka_requests_total", labels, stats.requests);
  });
  out.family("sluice_kafka_request_errors_total", "counter",
             "Kafka requests answered with at least one error code other than NONE, by API.");
  each_api([&](const std::string& labels, const ApiStats& stats) {
    out.sample("sluice_kafka_request_errors_total", labels, stats.errors);
  });
  out.family("sluice_kafka_request_latency_seconds", "histogram",
             "Time from a decoded Kafka request to its encoded response (waits included), by API.");
  each_api([&](const std::string& labels, const ApiStats& stats) {
    out.histogram("sluice_kafka_request_latency_seconds", labels, stats.latency);
  });
}

struct PartitionRow {
  std::string labels;
  const Partition* partition;
};

void render_partitions(Broker& broker, Exposition& out) {
  std::vector<PartitionRow> rows;
  for (const auto& [name, topic] : broker.topics().topics()) {
    for (const std::shared_ptr<Partition>& partition : topic->partitions) {
      rows.push_back(PartitionRow{
          fmt::format("topic=\"{}\",partition=\"{}\"", escape_label(name), partition->index),
          partition.get()});
    }
  }
  struct Counter {
    std::string_view name;
    std::string_view help;
    std::uint64_t PartitionTraffic::*field;
  };
  static constexpr Counter kCounters[] = {
      {"sluice_partition_bytes_in_total", "Record batch bytes appended by Produce.",
       &PartitionTraffic::bytes_in},
      {"sluice_partition_records_in_total", "Records appended by Produce.",
       &PartitionTraffic::records_in},
      {"sluice_partition_bytes_out_total", "Record batch bytes sent by Fetch.",
       &PartitionTraffic::bytes_out},
      {"sluice_partition_records_out_total",
       "Records sent by Fetch (whole batches: records before the fetch offset included).",
       &PartitionTraffic::records_out},
  };
  for (const Counter& counter : kCounters) {
    out.family(counter.name, "counter", counter.help);
    for (const PartitionRow& row : rows) out.sample(counter.name, row.labels, row.partition->traffic.*counter.field);
  }
  struct Gauge {
    std::string_view name;
    std::string_view help;
    std::int64_t (*read)(const storage::PartitionLog&);
  };
  static constexpr Gauge kGauges[] = {
      {"sluice_partition_log_start_offset", "The partition's log start offset.",
       [](const storage::PartitionLog& log) { return log.log_start_offset(); }},
      {"sluice_partition_log_end_offset", "The partition's log end offset (written, maybe not yet durable).",
       [](const storage::PartitionLog& log) { return log.log_end_offset(); }},
      {"sluice_partition_high_watermark", "The partition's high watermark (durable; what consumers may read).",
       [](const storage::PartitionLog& log) { return log.high_watermark(); }},
      {"sluice_partition_size_bytes", "Bytes of the partition's segments.",
       [](const storage::PartitionLog& log) { return static_cast<std::int64_t>(log.size_bytes()); }},
      {"sluice_partition_segments", "Segments of the partition's log.",
       [](const storage::PartitionLog& log) { return static_cast<std::int64_t>(log.segment_count()); }},
      {"sluice_partition_recovery_batches_scanned",
       "Batches the partition's last open read to recover its log (0 after a clean shutdown).",
       [](const storage::PartitionLog& log) {
         return static_cast<std::int64_t>(log.stats().batches_scanned_on_recovery);
       }},
      {"sluice_partition_recovered_clean",
       "1 when the partition's log was last opened from a clean-shutdown marker, else 0.",
       [](const storage::PartitionLog& log) {
         return static_cast<std::int64_t>(log.stats().recovered_from_clean_shutdown ? 1 : 0);
       }},
  };
  for (const Gauge& gauge : kGauges) {
    out.family(gauge.name, "gauge", gauge.help);
    for (const PartitionRow& row : rows) out.sample(gauge.name, row.labels, gauge.read(*row.partition->log));
  }
}

void render_storage(Broker& broker, Exposition& out) {
  const Metrics& metrics = broker.env().metrics();
  out.family("sluice_storage_fsync_latency_seconds", "histogram",
             "Partition log datasyncs (group commits) and how long each took; _count is the number "
             "of fsyncs.");
  out.histogram("sluice_storage_fsync_latency_seconds", "", metrics.fsync_latency);
  out.family("sluice_storage_fsync_errors_total", "counter",
             "Partition log datasyncs that failed (the log then refuses writes).");
  out.sample("sluice_storage_fsync_errors_total", "", metrics.fsync_errors);
}

void render_groups(Broker& broker, Exposition& out) {
  const Metrics& metrics = broker.env().metrics();
  GroupCoordinator& groups = broker.groups();
  out.family("sluice_group_rebalances_total", "counter",
             "Consumer group rebalances completed (generations started), all groups.");
  out.sample("sluice_group_rebalances_total", "", metrics.group_rebalances);
  const std::vector<ListedGroup> listed = groups.list();
  out.family("sluice_group_members", "gauge", "Members of each consumer group.");
  for (const ListedGroup& group : listed) {
    const auto description = groups.describe(group.group_id);
    const std::size_t members = description ? description->members.size() : 0;
    out.sample("sluice_group_members", fmt::format("group=\"{}\",state=\"{}\"", escape_label(group.group_id), group.state),
               static_cast<std::uint64_t>(members));
  }
  // Lag against the high watermark (what a consumer can read), as Kafka's tools report it.
  struct Lag {
    std::string labels;
    std::int64_t committed;
    std::int64_t lag;
  };
  std::vector<Lag> lags;
  for (const ListedGroup& group : listed) {
    for (const auto& [key, committed] : groups.fetch_offsets(group.group_id, std::nullopt)) {
      if (committed.offset < 0) continue;
      const std::shared_ptr<Partition> partition = broker.topics().find(key.first, key.second);
      if (partition == nullptr) continue;
      const std::int64_t lag = std::max<std::int64_t>(partition->log->high_watermark() - committed.offset, 0);
      lags.push_back(Lag{fmt::format("group=\"{}\",topic=\"{}\",partition=\"{}\"",
                                     escape_label(group.group_id), escape_label(key.first), key.second),
                         committed.offset, lag});
    }
  }
  out.family("sluice_group_committed_offset", "gauge", "A consumer group's committed offset, by partition.");
  for (const Lag& lag : lags) out.sample("sluice_group_committed_offset", lag.labels, lag.committed);
  out.family("sluice_group_consumer_lag", "gauge",
             "High watermark minus the group's committed offset, by partition.");
  for (const Lag& lag : lags) out.sample("sluice_group_consumer_lag", lag.labels, lag.lag);
}

void render_node(Broker& broker, Exposition& out) {
  const Metrics& metrics = broker.env().metrics();
  out.family("sluice_connections_open", "gauge", "Kafka client connections open now.");
  out.sample("sluice_connections_open", "", static_cast<std::uint64_t>(broker.connections_open()));
  out.family("sluice_connections_accepted_total", "counter", "Kafka client connections accepted.");
  out.sample("sluice_connections_accepted_total", "", metrics.connections_accepted);
  out.family("sluice_connections_closed_total", "counter", "Kafka client connections closed.");
  out.sample("sluice_connections_closed_total", "", metrics.connections_closed);
  const std::size_t budget = broker.config().request_memory_bytes_max;
  const std::size_t available = broker.request_memory().available();
  out.family("sluice_request_memory_used_bytes", "gauge",
             "Request bytes held in memory against the budget (requests over 64 KiB).");
  out.sample("sluice_request_memory_used_bytes", "",
             static_cast<std::uint64_t>(budget - std::min(budget, available)));
  out.family("sluice_request_memory_budget_bytes", "gauge",
             "The broker's request memory budget (kafka.request_memory_bytes_max).");
  out.sample("sluice_request_memory_budget_bytes", "", static_cast<std::uint64_t>(budget));
}

}  // namespace

std::size_t count_error_codes(const protocol::StructValue& response) {
  std::size_t errors = 0;
  const auto fields = response.schema.span();
  for (std::size_t i = 0; i < fields.size() && i < response.values.size(); ++i) {
    const protocol::Value& value = response.values[i];
    if (fields[i].name == "error_code") {
      if (const auto* code = std::get_if<std::int64_t>(&value.variant()); code && *code != 0) ++errors;
    } else if (const auto* structs = std::get_if<std::vector<protocol::StructValue>>(&value.variant())) {
      for (const auto& item : *structs) errors += count_error_codes(item);
    } else if (const auto* nested = std::get_if<std::shared_ptr<protocol::StructValue>>(&value.variant());
               nested && *nested) {
      errors += count_error_codes(**nested);
    }
  }
  return errors;
}

std::string render_prometheus(Broker& broker) {
  Exposition out;
  render_node(broker, out);
  render_requests(broker, out);
  render_storage(broker, out);
  render_partitions(broker, out);
  render_groups(broker, out);
  return out.take();
}

}  // namespace sluice::kafka
