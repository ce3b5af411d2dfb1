#pragma once
// Broker: one Sluice node speaking the Kafka wire protocol. It owns the topics (TopicManager), the
// listener and one fiber per client connection (connection.h), and answers decoded requests.
//
// Lifecycle: open() recovers the data directory; serve() listens and spawns the accept fiber;
// stop() closes the listener, unwinds every connection fiber, then closes every partition log
// cleanly. Call open/serve/stop from a fiber of the env's scheduler (they suspend on disk IO).
// Destroying a Broker without stop() is a crash as far as storage is concerned.
// Concurrency: one scheduler; handlers run on their connection's fiber and may suspend (disk
// writes, Fetch long polls).
//
// Handlers (one member function per API, split by area across broker*.cc files) take the decoded
// request body and return the response body, or nothing when no response is sent (acks=0).
// Only APIs with a handler are advertised in ApiVersions and accepted, even if core/protocol
// describes more: advertising an API the broker does not implement makes clients use it.

#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/env/env.h"
#include "core/group/group_state_machine.h"
#include "core/kafka/kafka_errors.h"
#include "core/kafka/topic_manager.h"
#include "core/protocol/codec.h"
#include "core/protocol/schema.h"
#include "core/protocol/value.h"
#include "core/storage/partition_log.h"

namespace sluice::kafka {

struct BrokerConfig {
  std::int32_t node_id = 0;
  Address advertised{"127.0.0.1", 9092};  // what Metadata tells clients to connect to
  std::string data_dir = "./sluice-data";
  std::string cluster_id = "sluice";
  bool auto_create_topics = true;                       // Kafka's auto.create.topics.enable
  std::int32_t default_partitions = 1;                  // Kafka's num.partitions
  std::uint32_t request_bytes_max = 100 * 1024 * 1024;  // Kafka's socket.request.max.bytes
  Duration idle_timeout = seconds(600);                 // Kafka's connections.max.idle.ms
  // Kafka's default replica.fetch.wait.max / fetch.max.wait bounds: a client's max_wait_ms is
  // clipped to this so a connection fiber never parks for long.
  Duration fetch_wait_max = seconds(30);
  // How long stop() lets requests in progress finish (after it stops accepting and closes idle
  // connections) before it cancels what is left.
  Duration drain_timeout = seconds(10);
  // Broker-wide budget for request bytes held in memory (frame bodies from the moment they are
  // read until their response is written). A connection waits for budget before reading a body,
  // so many large requests at once get backpressure, not an out-of-memory kill. Requests up to
  // 64 KiB are exempt (connection.cc); a frame larger than the whole budget is refused (closed).
  std::size_t request_memory_bytes_max =
      std::size_t{256} * 1024 * 1024;  // Kafka's queued.max.request.bytes
  // How often a housekeeping fiber enforces retention on every partition.
  Duration retention_check_interval = milliseconds(300000);  // log.retention.check.interval.ms
  // How often another applies the flush.ms bound between appends (cheap when nothing is due), so
  // flush.ms is honoured to within this interval (Kafka's log.flush.scheduler.interval.ms).
  Duration flush_check_interval = milliseconds(1000);
  // Topic defaults (log.* broker configs); topics override them (topic_config.h).
  storage::LogConfig log;
  std::int32_t min_insync_replicas = 1;
  // Consumer groups: group.min/max.session.timeout.ms, group.initial.rebalance.delay.ms,
  // group.max.size.
  group::GroupConfig group;
  std::int32_t offsets_topic_partitions = 50;  // offsets.topic.num.partitions
  Duration offsets_retention = milliseconds(7LL * 24 * 3600 * 1000);  // offsets.retention.minutes
  Duration offsets_retention_check_interval =
      milliseconds(600000);  // offsets.retention.check.interval.ms
  std::uint64_t offsets_segment_bytes =
      16 * 1024 * 1024;  // offsets.topic.segment.bytes (Kafka: 100 MiB)
  Duration offsets_compaction_check_interval = seconds(30);
};

class GroupCoordinator;

// One live client connection, as the broker's drain sees it.
struct ConnectionState {
  Stream* stream = nullptr;
  bool reading = false;        // a request is being read or handled (not yet handed on)
  std::size_t pipelined = 0;   // Produce requests appended whose answers are not written yet
  bool busy() const { return reading || pipelined > 0; }
};

// Who sent a request (JoinGroup records it; DescribeGroups reports it).
struct RequestContext {
  std::string client_id;
  std::string client_host;  // as Kafka writes it: "/" + the peer's address
};

// Kafka's internal topics: clients may read them but not write, delete or repartition them.
bool is_internal_topic(std::string_view name);

class Broker {
 public:
  Broker(Env& env, BrokerConfig config);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  std::expected<void, storage::LogError> open();
  // Listens on `listen` (port 0 picks one) and returns the bound address.
  std::expected<Address, NetError> serve(const Address& listen);
  // Graceful stop: closes the listener and the idle connections, lets every request already read
  // finish and be answered (Fetch long polls and parked group joins answer at once) for up to
  // drain_timeout, cancels what is left, then closes every partition log cleanly (flush and
  // clean-shutdown marker, so the next open skips the recovery scan).
  void stop();
  // True from the start of stop(): connections read no further requests.
  bool draining() const { return draining_; }
  // What Metadata tells clients (e.g. once serve() has bound port 0).
  void set_advertised(Address address) { config_.advertised = std::move(address); }
  // A config reload: new topic defaults (log.* and min.insync.replicas) for every topic without
  // its own override; topics' logs are reopened. Returns how many topics could not be reopened.
  std::size_t reload_topic_defaults(const storage::LogConfig& log,
                                    std::int32_t min_insync_replicas);

  // The API's schema when this broker handles it (at any version), else nullptr.
  const protocol::MessageSchema* handled_schema(std::int16_t api_key) const;
  // Answers one decoded request. nullopt: send no response (Produce with acks=0).
  std::optional<protocol::StructValue> handle(const protocol::RequestHeader& header,
                                              const protocol::MessageSchema& schema,
                                              protocol::StructValue& request,
                                              const RequestContext& context = {});
  // Produce in two stages, so a connection can pipeline its Produce requests (as Redpanda does):
  // produce_append validates and appends every partition's batch in request order, waiting only
  // for locks and segment rolls — a connection runs it for each request in the order it reads
  // them, so a producer's batches reach each partition in the order sent; produce_complete then
  // waits until each batch is as durable as its topic's flush policy asks and gives the response
  // (nullopt for acks=0). Many requests' completions may wait at once: they share fsyncs.
  // handle() runs both back to back.
  struct ProduceInProgress {
    protocol::StructValue response;
    std::int64_t acks = 0;
    struct Unflushed {
      std::shared_ptr<storage::PartitionLog> log;
      std::int64_t last_offset = 0;
      std::size_t topic = 0;      // indexes into the response's topics and their partitions
      std::size_t partition = 0;
    };
    std::vector<Unflushed> unflushed;
  };
  ProduceInProgress produce_append(protocol::StructValue& request);
  std::optional<protocol::StructValue> produce_complete(ProduceInProgress& produce);
  // The ApiVersions response body (also used for the KIP-511 fallback).
  protocol::StructValue api_versions_response(std::int16_t error_code) const;

  const BrokerConfig& config() const { return config_; }
  TopicManager& topics() { return topics_; }
  GroupCoordinator& groups() { return *groups_; }
  Env& env() { return env_; }
  std::size_t connections_open() const { return connections_.size(); }
  // The request memory budget (connection.cc acquires a frame's size before reading its body).
  Semaphore& request_memory() { return request_memory_; }
  // Request-level logging: one info line per request (API, version, client, latency, error
  // count), switchable at run time (the admin API). Off by default.
  void set_request_logging(bool enabled) { request_logging_ = enabled; }
  bool request_logging() const { return request_logging_; }
  // Serving clients: opened, listening and not stopping (the admin API's readiness).
  bool ready() const { return listener_ != nullptr && !draining_ && !stopped_; }

 private:
  void accept_loop();
  // stop()'s first half: see stop().
  void drain();
  // Every `interval` (and whenever `wake` is set), `step` on every partition's log (retention;
  // the flush policy of logs not flushed per append).
  using HousekeepingStep =
      std::function<std::expected<void, storage::LogError>(storage::PartitionLog&)>;
  void housekeeping_loop(std::string_view task, Duration interval, HousekeepingStep step,
                         Event* wake = nullptr);
  std::expected<void, storage::LogError> enforce_retention(storage::PartitionLog& log);

  protocol::StructValue handle_metadata(std::int16_t version, const protocol::StructValue& request);
  std::optional<protocol::StructValue> handle_produce(std::int16_t version,
                                                      protocol::StructValue& request);
  protocol::StructValue handle_fetch(std::int16_t version, const protocol::StructValue& request);
  protocol::StructValue handle_list_offsets(std::int16_t version,
                                            const protocol::StructValue& request);
  protocol::StructValue handle_init_producer_id(std::int16_t version,
                                                const protocol::StructValue& request);
  // Admin APIs (broker_admin.cc).
  protocol::StructValue handle_create_topics(std::int16_t version,
                                             const protocol::StructValue& request);
  protocol::StructValue handle_delete_topics(std::int16_t version,
                                             const protocol::StructValue& request);
  protocol::StructValue handle_create_partitions(std::int16_t version,
                                                 const protocol::StructValue& request);
  protocol::StructValue handle_describe_configs(std::int16_t version,
                                                const protocol::StructValue& request);
  protocol::StructValue handle_alter_configs(std::int16_t version,
                                             const protocol::StructValue& request);
  protocol::StructValue handle_delete_records(std::int16_t version,
                                              const protocol::StructValue& request);
  // Consumer-group APIs (broker_group.cc).
  protocol::StructValue handle_find_coordinator(std::int16_t version,
                                                const protocol::StructValue& request);
  protocol::StructValue handle_join_group(std::int16_t version,
                                          const protocol::StructValue& request,
                                          const RequestContext& context);
  protocol::StructValue handle_sync_group(std::int16_t version,
                                          const protocol::StructValue& request);
  protocol::StructValue handle_heartbeat(std::int16_t version,
                                         const protocol::StructValue& request);
  protocol::StructValue handle_leave_group(std::int16_t version,
                                           const protocol::StructValue& request);
  protocol::StructValue handle_offset_commit(std::int16_t version,
                                             const protocol::StructValue& request);
  protocol::StructValue handle_offset_fetch(std::int16_t version,
                                            const protocol::StructValue& request);
  protocol::StructValue handle_describe_groups(std::int16_t version,
                                               const protocol::StructValue& request);
  protocol::StructValue handle_list_groups(std::int16_t version,
                                           const protocol::StructValue& request);
  protocol::StructValue handle_delete_groups(std::int16_t version,
                                             const protocol::StructValue& request);
  protocol::StructValue handle_offset_delete(std::int16_t version,
                                             const protocol::StructValue& request);
  // One CreateTopics topic: validation, then creation unless `validate_only`.
  void create_one_topic(const protocol::StructValue& wanted, bool validate_only,
                        protocol::StructValue& result);

  // Looks a topic up, creating it when `allow_create` and the broker allows it. Error codes are
  // Kafka's: 3 unknown topic, 17 invalid name, 56 storage error.
  std::expected<Topic*, std::int16_t> find_or_create_topic(const std::string& name,
                                                           bool allow_create);
  // One partition's Produce up to the flush: validation, idempotence, append. Fills the
  // partition response; returns the log and the offset whose flush the answer must await (a
  // duplicate's awaits its original's), or nothing on an error.
  std::optional<std::pair<std::shared_ptr<storage::PartitionLog>, std::int64_t>> append_to_partition(
      const std::string& topic, protocol::StructValue& partition_data,
      protocol::StructValue& partition_response);
  // What one Fetch pass read from one partition (counted as traffic once the pass is answered).
  struct PartitionRead {
    std::shared_ptr<Partition> partition;
    std::uint64_t bytes = 0;
    std::uint64_t records = 0;
  };
  // One Fetch pass over every requested partition; returns the record bytes it gathered and
  // replaces `reads` with what it read.
  std::size_t fetch_once(const protocol::StructValue& request, protocol::StructValue& response,
                         std::vector<PartitionRead>& reads);

  Env& env_;
  BrokerConfig config_;
  Log log_;
  TopicManager topics_;
  std::unique_ptr<GroupCoordinator> groups_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Scope> scope_;             // the accept fiber
  std::unique_ptr<Scope> connection_scope_;  // child of scope_: one fiber per connection
  std::map<std::uint64_t, ConnectionState*> connections_;  // by a serial number, while they live
  std::uint64_t next_connection_serial_ = 0;
  WaitQueue connection_closed_;  // notified as each connection ends (drain waits here)
  bool draining_ = false;
  // Set when an append finds a lazy log's flush policy due (flush.messages > 1): the flush
  // fiber syncs it, so no Produce answer waits for a flush its topic did not ask to wait for.
  Event flush_wanted_;
  Semaphore request_memory_;
  // Non-transactional producer ids: counted from a start chosen at open() (wall-clock
  // milliseconds × 1000, so a restarted broker does not hand out ids it gave before; not
  // persisted).
  std::int64_t next_producer_id_ = 0;
  bool stopped_ = false;
  bool request_logging_ = false;
};


}  // namespace sluice::kafka
