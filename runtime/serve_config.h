#pragma once
// What `sluice serve` runs with: built-in defaults, then a YAML file (--config), then command-line
// flags. The file accepts only the keys below; an unknown key or a bad value is refused at start
// with a message naming the key and what it accepts.
//
//   node_id: 0
//   data_directory: ./sluice-data
//   listen: 127.0.0.1:9092
//   advertise: ""                    # default: the listen address as bound
//   log_level: info                  # trace | debug | info | warn | error
//   log_format: text                 # text | json (one JSON object a line)
//   kafka:
//     auto_create_topics: true
//     default_partitions: 1
//     request_max_bytes: 104857600   # socket.request.max.bytes
//     request_memory_max_bytes: 268435456
//     idle_timeout_ms: 600000
//     retention_check_interval_ms: 300000
//     drain_timeout_ms: 10000        # SIGTERM: how long requests in progress may finish
//   topic_defaults:                  # log.* broker defaults; topics override them
//     retention_ms: 604800000        # -1: keep forever
//     retention_bytes: -1
//     segment_bytes: 1073741824
//     segment_ms: 604800000
//     flush_messages: 1              # 1: every append durable before it is acknowledged
//     flush_ms: -1
//     max_message_bytes: 1048637
//     min_insync_replicas: 1
//   storage:
//     page_cache_window_bytes: 33554432  # synced data further behind a log's end leaves the page cache; 0: never
//     lazy_sync_bytes: 4194304   # a log not flushed per append is synced in the background this often; 0: by policy only
//   groups:                          # consumer groups (group.* and offsets.* broker configs)
//     initial_rebalance_delay_ms: 3000
//     min_session_timeout_ms: 6000
//     max_session_timeout_ms: 1800000
//     max_size: 2147483647
//     offsets_topic_partitions: 50   # fixed once __consumer_offsets exists
//     offsets_retention_minutes: 10080
//     offsets_retention_check_interval_ms: 600000
//   admin:                           # the admin HTTP API (runtime/admin_server.h)
//     listen: 127.0.0.1:9644         # "" or off: no admin API

#include <cstdint>
#include <expected>
#include <string>

#include "core/kafka/broker.h"

namespace sluice::runtime {

struct ServeConfig {
  std::string listen = "127.0.0.1:9092";
  std::string advertise;  // empty: the listen address as bound
  std::string log_level = "info";
  std::string log_format = "text";
  std::uint64_t node_id = 0;
  // The admin HTTP API's HOST:PORT (port 0 picks a free one); "" or "off" disables it.
  std::string admin_listen = "127.0.0.1:9644";
  kafka::BrokerConfig broker;  // its data_dir is the data directory
};

// Applies the YAML file at `path` over `config`. The error names the file and the key.
std::expected<void, std::string> load_serve_config(const std::string& path, ServeConfig& config);
// Whether `admin_listen` turns the admin API off.
bool admin_disabled(const std::string& admin_listen);
// `config` as a YAML file with every key above (`sluice config print`); loading it gives `config`.
std::string format_serve_config(const ServeConfig& config);

}  // namespace sluice::runtime
