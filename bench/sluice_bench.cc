// sluice-bench: a load tool built on librdkafka, for any Kafka-compatible broker. Numbers, not
// pass/fail (docs/performance.md records them).
//   produce: sends --count messages of --message-bytes, measuring throughput and the latency from
//            rd_kafka_produce() to the delivery report.
//   consume: reads --count messages from the beginning of every partition of --topic (no consumer
//            group: the partitions are started directly), measuring throughput.
// MB is 10^6 bytes of message value.

#include <CLI/CLI.hpp>
#include <librdkafka/rdkafka.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kFlushTimeoutMs = 120'000;
constexpr int kConsumeIdleTimeoutMs = 15'000;  // give up when nothing arrives for this long
constexpr std::size_t kConsumeBatchMax = 10'000;

struct Options {
  std::string mode;
  std::string brokers = "127.0.0.1:9092";
  std::string topic;
  std::size_t message_bytes = 100;
  std::size_t count = 100'000;
  std::string acks = "1";
  int linger_ms = 5;
  bool json = false;
};

struct Report {
  std::vector<std::pair<std::string, json>> rows;  // in print order
  void add(std::string name, json value) { rows.emplace_back(std::move(name), std::move(value)); }
};

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// The q-quantile (0..1) of sorted values, nearest rank.
double quantile(const std::vector<double>& sorted, double q) {
  assert(!sorted.empty() && q >= 0 && q <= 1);
  const auto rank = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(rank, sorted.size() - 1)];
}

bool set_config(rd_kafka_conf_t* config, const char* name, const std::string& value) {
  char error[512];
  if (rd_kafka_conf_set(config, name, value.c_str(), error, sizeof error) == RD_KAFKA_CONF_OK) {
    return true;
  }
  std::fprintf(stderr, "sluice-bench: %s=%s: %s\n", name, value.c_str(), error);
  return false;
}

// ---- produce ----

struct ProduceState {
  std::vector<Clock::time_point> sent_at;  // by message index
  std::vector<double> latency_ms;
  std::size_t delivered = 0;
  std::size_t failed = 0;
  rd_kafka_resp_err_t first_error = RD_KAFKA_RESP_ERR_NO_ERROR;
  Clock::time_point last_delivery;
};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  auto& state = *static_cast<ProduceState*>(opaque);
  const auto index = reinterpret_cast<std::uintptr_t>(message->_private);
  assert(index < state.sent_at.size());
  const Clock::time_point now = Clock::now();
  state.last_delivery = now;
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (state.failed++ == 0) state.first_error = message->err;
    return;
  }
  ++state.delivered;
  state.latency_ms.push_back(std::chrono::duration<double, std::milli>(now - state.sent_at[index]).count());
}

int produce(const Options& options, Report& report) {
  ProduceState state;
  state.sent_at.resize(options.count);
  state.latency_ms.reserve(options.count);
  rd_kafka_conf_t* config = rd_kafka_conf_new();
  const bool configured =
      set_config(config, "bootstrap.servers", options.brokers) &&
      set_config(config, "acks", options.acks) &&
      set_config(config, "linger.ms", std::to_string(options.linger_ms)) &&
      set_config(config, "queue.buffering.max.messages", "1000000") &&
      set_config(config, "queue.buffering.max.kbytes", "1048576");
  if (!configured) return kExitUsage;
  rd_kafka_conf_set_dr_msg_cb(config, on_delivery);
  rd_kafka_conf_set_opaque(config, &state);
  char error[512];
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, config, error, sizeof error);
  if (producer == nullptr) {
    std::fprintf(stderr, "sluice-bench: cannot create producer: %s\n", error);
    return kExitFailure;
  }
  rd_kafka_topic_t* topic = rd_kafka_topic_new(producer, options.topic.c_str(), nullptr);
  std::string payload(options.message_bytes, 'x');
  for (std::size_t index = 0; index < payload.size(); ++index) payload[index] = static_cast<char>('a' + index % 26);

  const Clock::time_point start = Clock::now();
  for (std::size_t index = 0; index < options.count; ++index) {
    state.sent_at[index] = Clock::now();
    // Bounded by the flush timeout: a queue that never drains ends the run through flush below.
    while (rd_kafka_produce(topic, RD_KAFKA_PARTITION_UA, 0, payload.data(), payload.size(),
                            nullptr, 0, reinterpret_cast<void*>(index)) == -1) {
      if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        std::fprintf(stderr, "sluice-bench: produce: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
        return kExitFailure;
      }
      rd_kafka_poll(producer, 10);
      state.sent_at[index] = Clock::now();
    }
    rd_kafka_poll(producer, 0);
  }
  const rd_kafka_resp_err_t flushed = rd_kafka_flush(producer, kFlushTimeoutMs);
  const double elapsed_s = seconds_between(start, state.last_delivery);
  rd_kafka_topic_destroy(topic);
  rd_kafka_destroy(producer);

  std::sort(state.latency_ms.begin(), state.latency_ms.end());
  report.add("delivered", state.delivered);
  report.add("failed", state.failed);
  if (state.failed > 0) report.add("first_error", rd_kafka_err2name(state.first_error));
  report.add("elapsed_s", elapsed_s);
  report.add("msgs_per_s", static_cast<double>(state.delivered) / elapsed_s);
  report.add("mb_per_s", static_cast<double>(state.delivered * options.message_bytes) / elapsed_s / 1e6);
  if (!state.latency_ms.empty()) {
    report.add("latency_p50_ms", quantile(state.latency_ms, 0.50));
    report.add("latency_p99_ms", quantile(state.latency_ms, 0.99));
    report.add("latency_p999_ms", quantile(state.latency_ms, 0.999));
    report.add("latency_max_ms", state.latency_ms.back());
  }
  if (flushed != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::fprintf(stderr, "sluice-bench: flush: %s\n", rd_kafka_err2str(flushed));
  }
  return state.delivered == options.count ? kExitOk : kExitFailure;
}

// ---- consume ----

int partition_count(rd_kafka_t* consumer, rd_kafka_topic_t* topic) {
  const rd_kafka_metadata_t* metadata = nullptr;
  if (rd_kafka_metadata(consumer, 0, topic, &metadata, 10'000) != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
  int count = -1;
  if (metadata->topic_cnt == 1 && metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    count = metadata->topics[0].partition_cnt;
  }
  rd_kafka_metadata_destroy(metadata);
  return count;
}

int consume(const Options& options, Report& report) {
  rd_kafka_conf_t* config = rd_kafka_conf_new();
  if (!set_config(config, "bootstrap.servers", options.brokers) ||
      !set_config(config, "enable.partition.eof", "false")) {
    return kExitUsage;
  }
  char error[512];
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, config, error, sizeof error);
  if (consumer == nullptr) {
    std::fprintf(stderr, "sluice-bench: cannot create consumer: %s\n", error);
    return kExitFailure;
  }
  rd_kafka_topic_t* topic = rd_kafka_topic_new(consumer, options.topic.c_str(), nullptr);
  const int partitions = partition_count(consumer, topic);
  if (partitions <= 0) {
    std::fprintf(stderr, "sluice-bench: topic '%s' not found\n", options.topic.c_str());
    return kExitFailure;
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(consumer);
  for (int partition = 0; partition < partitions; ++partition) {
    rd_kafka_consume_start_queue(topic, partition, RD_KAFKA_OFFSET_BEGINNING, queue);
  }
  std::vector<rd_kafka_message_t*> batch(kConsumeBatchMax);
  std::size_t received = 0;
  std::size_t received_bytes = 0;
  std::size_t errors = 0;
  const Clock::time_point start = Clock::now();
  Clock::time_point last_message = start;
  while (received < options.count &&
         Clock::now() - last_message < std::chrono::milliseconds(kConsumeIdleTimeoutMs)) {
    const ssize_t got = rd_kafka_consume_batch_queue(queue, 100, batch.data(), batch.size());
    for (ssize_t index = 0; index < got; ++index) {
      rd_kafka_message_t* message = batch[static_cast<std::size_t>(index)];
      if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ++received;
        received_bytes += message->len;
        last_message = Clock::now();
      } else {
        ++errors;
      }
      rd_kafka_message_destroy(message);
    }
  }
  const double elapsed_s = seconds_between(start, last_message);
  for (int partition = 0; partition < partitions; ++partition) rd_kafka_consume_stop(topic, partition);
  rd_kafka_queue_destroy(queue);
  rd_kafka_topic_destroy(topic);
  rd_kafka_destroy(consumer);
  report.add("partitions", partitions);
  report.add("received", received);
  report.add("errors", errors);
  report.add("elapsed_s", elapsed_s);
  report.add("msgs_per_s", static_cast<double>(received) / elapsed_s);
  report.add("mb_per_s", static_cast<double>(received_bytes) / elapsed_s / 1e6);
  return received >= options.count ? kExitOk : kExitFailure;
}

void print_report(const Options& options, const Report& report) {
  if (options.json) {
    json out = json::object();
    for (const auto& [name, value] : report.rows) out[name] = value;
    std::printf("%s\n", out.dump().c_str());
    return;
  }
  for (const auto& [name, value] : report.rows) {
    std::string text = value.is_number_float() ? std::to_string(value.get<double>())
                       : value.is_string()     ? value.get<std::string>()
                                               : value.dump();
    std::printf("%-16s %s\n", name.c_str(), text.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sluice-bench: produce/consume load against a Kafka-compatible broker (librdkafka)",
               "sluice-bench"};
  Options options;
  app.add_option("mode", options.mode, "produce or consume")
      ->required()
      ->check(CLI::IsMember({"produce", "consume"}));
  app.add_option("--brokers", options.brokers, "Bootstrap broker(s)")->capture_default_str();
  app.add_option("--topic", options.topic, "Topic")->required();
  app.add_option("--message-bytes", options.message_bytes, "Value size of each message")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--count", options.count, "Messages to produce or consume")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--acks", options.acks, "Producer acks")
      ->check(CLI::IsMember({"0", "1", "all", "-1"}))
      ->capture_default_str();
  app.add_option("--linger-ms", options.linger_ms, "Producer linger.ms")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_flag("--json", options.json, "Print one JSON object instead of a table");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? kExitOk : kExitUsage;
  }
  Report report;
  report.add("mode", options.mode);
  report.add("topic", options.topic);
  report.add("message_bytes", options.message_bytes);
  report.add("count", options.count);
  if (options.mode == "produce") {
    report.add("acks", options.acks);
    report.add("linger_ms", options.linger_ms);
  }
  const int exit_code = options.mode == "produce" ? produce(options, report) : consume(options, report);
  print_report(options, report);
  return exit_code;
}
