// sluice-kafka-load: the Kafka-protocol load client of ci/bench.sh (librdkafka), used against
// Sluice and against librdkafka's mock cluster (bench/peers/mock_cluster.cc).
//   produce: --producers instances send for --duration-s (or --count messages) to an existing
//            topic's first --partitions partitions (round-robin, or by key hash with --keys), at
//            --rate or as fast as --window unacknowledged messages per producer allow (default:
//            32 MiB of message values, the Java producer's default buffer.memory); with
//            --end-to-end a consumer in the same process times each message from its intended
//            send time to its arrival. Afterwards the topic's high watermarks (ListOffsets) must
//            have grown by exactly the acknowledged count (waiting up to --drain-timeout-s, since
//            a broker may expose data only once it is flushed).
//   consume: reads the first --partitions partitions from their log start to the high watermark
//            they had when it started (a catch-up read of a backlog).
// Prints one JSON object (--json); exit 0 when every message was acknowledged and stored, 1 not.

#include "bench/peers/load_common.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>

namespace sluice::bench {
namespace {

using nlohmann::json;

// The default window: 32 MiB of unacknowledged message values per producer (the Java producer's
// default buffer.memory), e.g. 32,768 messages of 1 KiB. It was 500,000 messages (500 MB of 1 KiB
// values in flight): the client then spent more CPU per message walking long, cache-cold queues
// (librdkafka sets each acknowledged message's offset in a linked-list walk), and every system's
// 1 KiB x 16 partitions throughput was lower (2 runs each, 2026-11-23: the mock 1,125-1,224 -> 1,269-1,331
// MB/s, Sluice non-durable 725-795 -> 912-967, durable 710-741 -> 833-836).
constexpr std::size_t kDefaultWindowBytes = std::size_t{32} << 20;

std::size_t default_window(const LoadOptions& options) {
  return std::max<std::size_t>(kDefaultWindowBytes / std::max<std::size_t>(options.message_bytes, 1), 1);
}
constexpr int kMetadataTimeoutMs = 10'000;
constexpr std::size_t kConsumeBatchMax = 10'000;

struct KafkaOptions {
  std::string brokers = "127.0.0.1:9092";
  std::string topic;
  std::string acks = "all";
  int linger_ms = 5;
};

bool set_config(rd_kafka_conf_t* config, const char* name, const std::string& value) {
  char error[512];
  if (rd_kafka_conf_set(config, name, value.c_str(), error, sizeof error) == RD_KAFKA_CONF_OK) return true;
  std::fprintf(stderr, "sluice-kafka-load: %s=%s: %s\n", name, value.c_str(), error);
  return false;
}

// One producer instance. Its delivery reports run on its own poll thread (the only writer of the
// fields below `outstanding`); the sender thread only reads `outstanding`.
struct Producer {
  rd_kafka_t* handle = nullptr;
  rd_kafka_topic_t* topic = nullptr;
  std::atomic<std::uint64_t> outstanding{0};
  RoomSignal* room = nullptr;  // the sender's window, once it runs; acks free room in it
  std::atomic<bool> stop{false};
  std::thread poller;
  LatencyHistogram ack_latency;
  std::uint64_t acked = 0;
  std::uint64_t failed = 0;
  std::int64_t last_ack_ns = 0;
  std::string first_error;
};

// One delivery report. `now` is when its batch's report reached the poll thread: every message
// of a produce response is acknowledged at once, so the clock is read once per report batch
// instead of once per message (at 1.4M msgs/s those reads were 3% of the client's CPU).
void on_delivery(Producer& producer, const rd_kafka_message_t& message, std::int64_t now) {
  const auto intended_ns = reinterpret_cast<std::intptr_t>(message._private);
  if (message.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++producer.acked;
    producer.ack_latency.record(now - intended_ns);
  } else if (producer.failed++ == 0) {
    producer.first_error = rd_kafka_err2name(message.err);
  }
  producer.last_ack_ns = now;
  if (producer.room != nullptr) {
    producer.room->acknowledged(producer.outstanding);
  } else {
    producer.outstanding.fetch_sub(1, std::memory_order_acq_rel);
  }
}

// Serves the producer's event queue for up to `timeout_ms`: delivery reports (a batch per event)
// and client errors, which librdkafka would otherwise log itself.
void serve_events(Producer& producer, rd_kafka_queue_t* queue, int timeout_ms) {
  while (rd_kafka_event_t* event = rd_kafka_queue_poll(queue, timeout_ms)) {
    if (rd_kafka_event_type(event) == RD_KAFKA_EVENT_DR) {
      const std::int64_t now = now_ns();
      while (const rd_kafka_message_t* message = rd_kafka_event_message_next(event)) {
        on_delivery(producer, *message, now);
      }
    } else if (rd_kafka_event_type(event) == RD_KAFKA_EVENT_ERROR) {
      std::fprintf(stderr, "sluice-kafka-load: client error: %s\n", rd_kafka_event_error_string(event));
    }
    rd_kafka_event_destroy(event);
    timeout_ms = 0;  // then only what is already there
  }
}

std::unique_ptr<Producer> make_producer(const KafkaOptions& kafka, std::size_t window) {
  auto producer = std::make_unique<Producer>();
  rd_kafka_conf_t* config = rd_kafka_conf_new();
  // The window bounds librdkafka's queue too, so a full queue is a full window, never an error.
  const std::string queue_messages = std::to_string(std::max<std::size_t>(window, 1));
  if (!set_config(config, "bootstrap.servers", kafka.brokers) || !set_config(config, "acks", kafka.acks) ||
      !set_config(config, "linger.ms", std::to_string(kafka.linger_ms)) ||
      !set_config(config, "queue.buffering.max.messages", queue_messages) ||
      !set_config(config, "queue.buffering.max.kbytes", "2097151") ||
      !set_config(config, "enable.idempotence", "false")) {
    rd_kafka_conf_destroy(config);
    return nullptr;
  }
  rd_kafka_conf_set_events(config, RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR);
  char error[512];
  producer->handle = rd_kafka_new(RD_KAFKA_PRODUCER, config, error, sizeof error);
  if (producer->handle == nullptr) {
    std::fprintf(stderr, "sluice-kafka-load: cannot create producer: %s\n", error);
    return nullptr;
  }
  producer->topic = rd_kafka_topic_new(producer->handle, kafka.topic.c_str(), nullptr);
  producer->poller = std::thread([raw = producer.get()] {
    rd_kafka_queue_t* queue = rd_kafka_queue_get_main(raw->handle);
    while (!raw->stop.load(std::memory_order_acquire)) serve_events(*raw, queue, 50);
    serve_events(*raw, queue, 0);
    rd_kafka_queue_destroy(queue);
  });
  return producer;
}

void destroy_producer(Producer& producer) {
  producer.stop.store(true, std::memory_order_release);
  producer.poller.join();
  rd_kafka_topic_destroy(producer.topic);
  rd_kafka_destroy(producer.handle);
}

// Partition count of the topic, or -1.
int partition_count(rd_kafka_t* handle, rd_kafka_topic_t* topic) {
  const rd_kafka_metadata_t* metadata = nullptr;
  if (rd_kafka_metadata(handle, 0, topic, &metadata, kMetadataTimeoutMs) != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
  int count = -1;
  if (metadata->topic_cnt == 1 && metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    count = metadata->topics[0].partition_cnt;
  }
  rd_kafka_metadata_destroy(metadata);
  return count;
}

struct Watermarks {
  std::vector<std::int64_t> low;
  std::vector<std::int64_t> high;
  std::int64_t high_sum() const {
    std::int64_t sum = 0;
    for (std::int64_t value : high) sum += value;
    return sum;
  }
  // Messages held: high - low summed (retention raises low).
  std::int64_t held() const {
    std::int64_t sum = 0;
    for (std::size_t index = 0; index < high.size(); ++index) sum += high[index] - low[index];
    return sum;
  }
};

std::optional<Watermarks> query_watermarks(rd_kafka_t* handle, const std::string& topic, std::size_t partitions) {
  Watermarks marks;
  for (std::size_t partition = 0; partition < partitions; ++partition) {
    std::int64_t low = 0;
    std::int64_t high = 0;
    const rd_kafka_resp_err_t error = rd_kafka_query_watermark_offsets(
        handle, topic.c_str(), static_cast<std::int32_t>(partition), &low, &high, kMetadataTimeoutMs);
    if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::fprintf(stderr, "sluice-kafka-load: ListOffsets %s/%zu: %s\n", topic.c_str(), partition,
                   rd_kafka_err2str(error));
      return std::nullopt;
    }
    marks.low.push_back(low);
    marks.high.push_back(high);
  }
  return marks;
}

// A consumer without a group, reading the given partitions from the given offsets into one queue.
struct Consumer {
  rd_kafka_t* handle = nullptr;
  rd_kafka_topic_t* topic = nullptr;
  rd_kafka_queue_t* queue = nullptr;
  std::size_t partitions = 0;
};

std::optional<Consumer> start_consumer(const KafkaOptions& kafka, std::size_t partitions,
                                       const std::vector<std::int64_t>& from_offsets) {
  rd_kafka_conf_t* config = rd_kafka_conf_new();
  if (!set_config(config, "bootstrap.servers", kafka.brokers) ||
      !set_config(config, "enable.partition.eof", "false") ||
      !set_config(config, "fetch.wait.max.ms", "100") ||
      !set_config(config, "fetch.error.backoff.ms", "10")) {
    rd_kafka_conf_destroy(config);
    return std::nullopt;
  }
  char error[512];
  Consumer consumer;
  consumer.handle = rd_kafka_new(RD_KAFKA_CONSUMER, config, error, sizeof error);
  if (consumer.handle == nullptr) {
    std::fprintf(stderr, "sluice-kafka-load: cannot create consumer: %s\n", error);
    return std::nullopt;
  }
  consumer.topic = rd_kafka_topic_new(consumer.handle, kafka.topic.c_str(), nullptr);
  consumer.queue = rd_kafka_queue_new(consumer.handle);
  consumer.partitions = partitions;
  for (std::size_t partition = 0; partition < partitions; ++partition) {
    rd_kafka_consume_start_queue(consumer.topic, static_cast<std::int32_t>(partition), from_offsets[partition],
                                 consumer.queue);
  }
  return consumer;
}

void stop_consumer(Consumer& consumer) {
  for (std::size_t partition = 0; partition < consumer.partitions; ++partition) {
    rd_kafka_consume_stop(consumer.topic, static_cast<std::int32_t>(partition));
  }
  rd_kafka_queue_destroy(consumer.queue);
  rd_kafka_topic_destroy(consumer.topic);
  rd_kafka_destroy(consumer.handle);
}

// Reads messages until `enough` says so or `deadline_ns` passes; calls on_message(message,
// received_ns) for each, received_ns read once per batch as it is handed over (a clock read per
// message was 3% of the client's CPU at 1.4M msgs/s; the messages of a batch arrived together).
// rd_kafka_consume_batch_queue waits for a FULL batch up to its timeout, which would add that
// wait to every end-to-end latency: it is only called with timeout 0 (what is there now), and
// an empty queue is waited on for one message at a time.
template <typename OnMessage, typename Enough>
void consume_until(Consumer& consumer, std::int64_t deadline_ns, OnMessage on_message, Enough enough) {
  std::vector<rd_kafka_message_t*> batch(kConsumeBatchMax);
  const auto deliver = [&](rd_kafka_message_t* message, std::int64_t received_ns) {
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) on_message(*message, received_ns);
    rd_kafka_message_destroy(message);
  };
  std::int64_t now = now_ns();
  while (!enough() && now < deadline_ns) {
    const ssize_t got = rd_kafka_consume_batch_queue(consumer.queue, 0, batch.data(), batch.size());
    now = now_ns();
    for (ssize_t index = 0; index < got; ++index) deliver(batch[static_cast<std::size_t>(index)], now);
    if (got > 0) continue;
    if (rd_kafka_message_t* message = rd_kafka_consume_queue(consumer.queue, 50)) {
      now = now_ns();
      deliver(message, now);
    }
  }
}

// Sends the run's messages; returns the index count sent. Each record's timestamp (CreateTime,
// ms) is its intended send time on the wall clock, so librdkafka does not read the clock for it
// (gettimeofday per message was 3% of the client's CPU at 1.4M msgs/s).
std::uint64_t send_all(const LoadOptions& options, std::vector<std::unique_ptr<Producer>>& producers,
                       RoomSignal& room, std::int64_t start_ns, std::string& first_error) {
  timespec wall{};
  clock_gettime(CLOCK_REALTIME, &wall);
  const std::int64_t wall_minus_monotonic_ns = wall.tv_sec * 1'000'000'000LL + wall.tv_nsec - now_ns();
  return paced_send(options, producers, room, start_ns,
                    [&](Producer& chosen, std::uint64_t index, std::int64_t intended_ns, std::string& payload) {
                      const std::string key = options.keys > 0 ? key_of(options, index) : std::string();
                      const std::int32_t partition = options.keys > 0
                                                         ? RD_KAFKA_PARTITION_UA
                                                         : static_cast<std::int32_t>(partition_of(options, index));
                      chosen.outstanding.fetch_add(1, std::memory_order_acq_rel);
                      const rd_kafka_resp_err_t error = rd_kafka_producev(
                          chosen.handle, RD_KAFKA_V_RKT(chosen.topic), RD_KAFKA_V_PARTITION(partition),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(payload.data(), payload.size()),
                          RD_KAFKA_V_KEY(key.empty() ? nullptr : key.data(), key.size()),
                          RD_KAFKA_V_TIMESTAMP((intended_ns + wall_minus_monotonic_ns) / 1'000'000),
                          RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<std::intptr_t>(intended_ns))),
                          RD_KAFKA_V_END);
                      if (error == RD_KAFKA_RESP_ERR_NO_ERROR) return SendOutcome::sent;
                      chosen.outstanding.fetch_sub(1, std::memory_order_acq_rel);
                      if (error == RD_KAFKA_RESP_ERR__QUEUE_FULL) return SendOutcome::retry;
                      first_error = rd_kafka_err2name(error);
                      return SendOutcome::stop;
                    });
}

int produce(const LoadOptions& options, const KafkaOptions& kafka) {
  const std::size_t window = options.window > 0 ? options.window : default_window(options);
  RoomSignal room(window);  // outlives the producers' ack threads
  std::vector<std::unique_ptr<Producer>> producers;
  for (std::size_t made = 0; made < options.producers; ++made) {
    auto producer = make_producer(kafka, window);
    if (producer == nullptr) return kExitFailure;
    producer->room = &room;
    producers.push_back(std::move(producer));
  }
  Producer& first = *producers.front();
  const int partitions = partition_count(first.handle, first.topic);
  if (partitions < static_cast<int>(options.partitions)) {
    std::fprintf(stderr, "sluice-kafka-load: topic '%s' has %d partitions, %zu wanted\n", kafka.topic.c_str(),
                 partitions, options.partitions);
    return kExitFailure;
  }
  const auto before = query_watermarks(first.handle, kafka.topic, options.partitions);
  if (!before) return kExitFailure;

  RunResult result;
  std::optional<Consumer> consumer;
  std::atomic<bool> sending_done{false};
  std::atomic<std::uint64_t> acked_total{0};
  std::thread consumer_thread;
  if (options.end_to_end) {
    consumer = start_consumer(kafka, options.partitions, before->high);
    if (!consumer) return kExitFailure;
    consumer_thread = std::thread([&] {
      const std::int64_t deadline =
          now_ns() + static_cast<std::int64_t>((options.duration_s + options.drain_timeout_s) * 1e9);
      consume_until(
          *consumer, deadline,
          [&](const rd_kafka_message_t& message, std::int64_t received_ns) {
            result.end_to_end_latency.record(received_ns - payload_stamp(message.payload, message.len));
            ++result.consumed;
          },
          [&] {
            return sending_done.load(std::memory_order_acquire) &&
                   result.consumed >= acked_total.load(std::memory_order_acquire);
          });
    });
  }

  result.first_send_ns = now_ns();
  result.sent = send_all(options, producers, room, result.first_send_ns, result.first_error);
  const std::int64_t drain_deadline = now_ns() + static_cast<std::int64_t>(options.drain_timeout_s * 1e9);
  for (auto& producer : producers) {
    while (producer->outstanding.load(std::memory_order_acquire) > 0 && now_ns() < drain_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  for (auto& producer : producers) destroy_producer(*producer);  // joins the poll threads
  for (auto& producer : producers) {
    result.acked += producer->acked;
    result.failed += producer->failed;
    result.last_ack_ns = std::max(result.last_ack_ns, producer->last_ack_ns);
    result.ack_latency.merge(producer->ack_latency);
    if (result.first_error.empty()) result.first_error = producer->first_error;
  }
  acked_total.store(result.acked, std::memory_order_release);
  sending_done.store(true, std::memory_order_release);
  if (consumer_thread.joinable()) {
    consumer_thread.join();
    stop_consumer(*consumer);
  }

  // The stored count, through a fresh client: what a new reader would find.
  auto checker = make_producer(kafka, 1);
  if (checker == nullptr) return kExitFailure;
  const std::int64_t check_deadline = now_ns() + static_cast<std::int64_t>(options.drain_timeout_s * 1e9);
  for (;;) {
    const auto after = query_watermarks(checker->handle, kafka.topic, options.partitions);
    // With retention the log start moves: count what is held. Without, count the offsets
    // assigned (the mock cluster trims its in-memory log on its own, so held would undercount).
    if (after) {
      result.stored = options.retention ? after->held() - before->held() : after->high_sum() - before->high_sum();
    }
    const bool complete = options.retention ? result.stored > 0 : result.stored == static_cast<std::int64_t>(result.acked);
    if (complete || now_ns() >= check_deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  destroy_producer(*checker);
  return report("sluice-kafka-load", options, result,
                {{"system_client", "librdkafka " + std::string(rd_kafka_version_str())},
                 {"acks", kafka.acks},
                 {"linger_ms", kafka.linger_ms},
                 {"window", window}});
}

int consume(LoadOptions options, const KafkaOptions& kafka) {
  auto probe = make_producer(kafka, 1);
  if (probe == nullptr) return kExitFailure;
  const auto marks = query_watermarks(probe->handle, kafka.topic, options.partitions);
  destroy_producer(*probe);
  if (!marks) return kExitFailure;
  std::uint64_t expected = 0;
  for (std::size_t partition = 0; partition < options.partitions; ++partition) {
    expected += static_cast<std::uint64_t>(marks->high[partition] - marks->low[partition]);
  }
  auto consumer = start_consumer(kafka, options.partitions, marks->low);
  if (!consumer) return kExitFailure;
  RunResult result;
  result.sent = result.acked = expected;
  result.stored = static_cast<std::int64_t>(expected);
  std::uint64_t bytes = 0;
  result.first_send_ns = now_ns();
  const std::int64_t deadline = result.first_send_ns + static_cast<std::int64_t>(options.drain_timeout_s * 1e9);
  consume_until(
      *consumer, deadline,
      [&](const rd_kafka_message_t& message, std::int64_t received_ns) {
        ++result.consumed;
        bytes += message.len;
        result.last_ack_ns = received_ns;
      },
      [&] { return result.consumed >= expected; });
  stop_consumer(*consumer);
  return report_consume("sluice-kafka-load", options, result, bytes);
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  using namespace sluice::bench;
  CLI::App app{"sluice-kafka-load: Kafka-protocol load for ci/bench.sh (librdkafka)", "sluice-kafka-load"};
  std::string mode;
  LoadOptions options;
  KafkaOptions kafka;
  app.add_option("mode", mode, "produce or consume")->required()->check(CLI::IsMember({"produce", "consume"}));
  app.add_option("--brokers", kafka.brokers, "Bootstrap broker(s)")->capture_default_str();
  app.add_option("--topic", kafka.topic, "An existing topic")->required();
  app.add_option("--acks", kafka.acks, "Producer acks")->check(CLI::IsMember({"0", "1", "all", "-1"}))->capture_default_str();
  app.add_option("--linger-ms", kafka.linger_ms, "Producer linger.ms")->capture_default_str();
  add_load_options(app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? kExitOk : kExitUsage;
  }
  keep_timer_slack_small();
  return mode == "produce" ? produce(options, kafka) : consume(options, kafka);
}
