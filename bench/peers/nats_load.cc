// sluice-nats-load: the NATS JetStream load client of ci/bench.sh (libnats).
//   produce: creates --partitions file-store streams "<run-id>_<n>" (subject "<run-id>.<n>",
//            one replica) unless --no-create, then --producers connections publish asynchronously
//            (js_PublishAsync) at --rate or as fast as --window unacknowledged messages per
//            connection allow; the JetStream PubAck is the ack. With --end-to-end an ordered
//            push consumer per stream times each message from its intended send time.
//            Afterwards the streams' message counts (stream info) must sum to the acks.
//   consume: reads every stream from its first message with ordered push consumers (a catch-up
//            read of a backlog).

#include "bench/peers/load_common.h"

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

namespace sluice::bench {
namespace {

constexpr std::size_t kDefaultWindow = 4096;

struct NatsOptions {
  std::string url = "nats://127.0.0.1:4222";
  bool create = true;
  std::int64_t max_bytes = -1;  // > 0: stream retention by size (oldest messages discarded)
};

std::string stream_name(const LoadOptions& options, std::size_t index) {
  return options.run_id + "_" + std::to_string(index);
}
std::string subject_name(const LoadOptions& options, std::size_t index) {
  return options.run_id + "." + std::to_string(index);
}

bool check(natsStatus status, const char* what, jsErrCode js_error = static_cast<jsErrCode>(0)) {
  if (status == NATS_OK) return true;
  std::fprintf(stderr, "sluice-nats-load: %s: %s (%s, jetstream error %d)\n", what, natsStatus_GetText(status),
               nats_GetLastError(nullptr), static_cast<int>(js_error));
  return false;
}

// One connection and its JetStream context. The ack handler runs on the connection's reply
// delivery thread, the only writer of the fields below `outstanding`.
struct Producer {
  natsConnection* connection = nullptr;
  jsCtx* js = nullptr;
  std::atomic<std::uint64_t> outstanding{0};
  RoomSignal* room = nullptr;  // the sender's window, once it runs; acks free room in it
  LatencyHistogram ack_latency;
  std::uint64_t acked = 0;
  std::uint64_t failed = 0;
  std::int64_t last_ack_ns = 0;
  std::string first_error;
};

void on_ack(jsCtx*, natsMsg* message, jsPubAck* ack, jsPubAckErr* ack_error, void* closure) {
  auto& producer = *static_cast<Producer*>(closure);
  const std::int64_t now = now_ns();
  if (ack != nullptr && ack_error == nullptr) {
    ++producer.acked;
    producer.ack_latency.record(now - payload_stamp(natsMsg_GetData(message),
                                                    static_cast<std::size_t>(natsMsg_GetDataLength(message))));
  } else if (producer.failed++ == 0) {
    producer.first_error = ack_error != nullptr && ack_error->ErrText != nullptr ? ack_error->ErrText : "publish failed";
  }
  producer.last_ack_ns = now;
  if (producer.room != nullptr) {
    producer.room->acknowledged(producer.outstanding);
  } else {
    producer.outstanding.fetch_sub(1, std::memory_order_acq_rel);
  }
  natsMsg_Destroy(message);
}

bool connect(const NatsOptions& nats, natsConnection** connection) {
  natsOptions* options = nullptr;
  if (!check(natsOptions_Create(&options), "options")) return false;
  natsOptions_SetURL(options, nats.url.c_str());
  natsOptions_SetMaxPendingMsgs(options, 1'000'000);
  const bool connected = check(natsConnection_Connect(connection, options), "connect");
  natsOptions_Destroy(options);
  return connected;
}

std::unique_ptr<Producer> make_producer(const NatsOptions& nats, std::size_t window) {
  auto producer = std::make_unique<Producer>();
  if (!connect(nats, &producer->connection)) return nullptr;
  jsOptions options;
  jsOptions_Init(&options);
  // Our own window keeps the library below its limit, so a publish never stalls inside it.
  options.PublishAsync.MaxPending = static_cast<std::int64_t>(window) * 2 + 16;
  options.PublishAsync.AckHandler = on_ack;
  options.PublishAsync.AckHandlerClosure = producer.get();
  options.PublishAsync.StallWait = 60'000;
  if (!check(natsConnection_JetStream(&producer->js, producer->connection, &options), "jetstream")) return nullptr;
  return producer;
}

void destroy_producer(Producer& producer) {
  jsCtx_Destroy(producer.js);
  natsConnection_Destroy(producer.connection);
}

bool create_streams(jsCtx* js, const LoadOptions& options, const NatsOptions& nats) {
  for (std::size_t index = 0; index < options.partitions; ++index) {
    const std::string name = stream_name(options, index);
    const std::string subject = subject_name(options, index);
    const char* subjects[] = {subject.c_str()};
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    config.Name = name.c_str();
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Storage = js_FileStorage;
    config.Replicas = 1;
    if (nats.max_bytes > 0) config.MaxBytes = nats.max_bytes;
    jsStreamInfo* info = nullptr;
    jsErrCode js_error = static_cast<jsErrCode>(0);
    if (!check(js_AddStream(&info, js, &config, nullptr, &js_error), "add stream", js_error)) return false;
    jsStreamInfo_Destroy(info);
  }
  return true;
}

std::int64_t stored_count(jsCtx* js, const LoadOptions& options, std::uint64_t* bytes = nullptr) {
  std::int64_t stored = 0;
  for (std::size_t index = 0; index < options.partitions; ++index) {
    jsStreamInfo* info = nullptr;
    jsErrCode js_error = static_cast<jsErrCode>(0);
    if (!check(js_GetStreamInfo(&info, js, stream_name(options, index).c_str(), nullptr, &js_error), "stream info",
               js_error)) {
      return -1;
    }
    stored += static_cast<std::int64_t>(info->State.Msgs);
    if (bytes != nullptr) *bytes += info->State.Bytes;
    jsStreamInfo_Destroy(info);
  }
  return stored;
}

// An ordered push consumer per stream, each timing or counting what it receives on its own
// delivery thread.
struct Reader {
  std::mutex mutex;  // a delivery thread may still run when a timed-out run reads the histogram
  LatencyHistogram latency;
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<std::int64_t> last_ns{0};
  bool time_end_to_end = true;
};

void on_message(natsConnection*, natsSubscription*, natsMsg* message, void* closure) {
  auto& reader = *static_cast<Reader*>(closure);
  const std::int64_t now = now_ns();
  const auto length = static_cast<std::size_t>(natsMsg_GetDataLength(message));
  if (reader.time_end_to_end) {
    const std::lock_guard guard(reader.mutex);
    reader.latency.record(now - payload_stamp(natsMsg_GetData(message), length));
  }
  reader.bytes.fetch_add(length, std::memory_order_relaxed);
  reader.last_ns.store(now, std::memory_order_relaxed);
  reader.received.fetch_add(1, std::memory_order_release);
  natsMsg_Destroy(message);
}

// One connection per stream: with all of them on one connection, the first consumer's flood of
// a large backlog delays the replies that create the next ones past any timeout.
struct Readers {
  std::vector<natsConnection*> connections;
  std::vector<jsCtx*> contexts;
  std::vector<std::unique_ptr<Reader>> readers;
  std::vector<natsSubscription*> subscriptions;

  std::uint64_t received() const {
    std::uint64_t sum = 0;
    for (const auto& reader : readers) sum += reader->received.load(std::memory_order_acquire);
    return sum;
  }
  ~Readers() {
    for (natsSubscription* subscription : subscriptions) {
      natsSubscription_Unsubscribe(subscription);
      natsSubscription_Destroy(subscription);
    }
    for (jsCtx* js : contexts) jsCtx_Destroy(js);
    for (natsConnection* connection : connections) natsConnection_Destroy(connection);
  }
};

bool start_readers(const NatsOptions& nats, const LoadOptions& options, bool time_end_to_end, Readers& out) {
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = 60'000;  // creating a consumer on a stream of gigabytes can take a while
  for (std::size_t index = 0; index < options.partitions; ++index) {
    natsConnection* connection = nullptr;
    if (!connect(nats, &connection)) return false;
    out.connections.push_back(connection);
    jsCtx* js = nullptr;
    if (!check(natsConnection_JetStream(&js, connection, &js_options), "jetstream")) return false;
    out.contexts.push_back(js);
    auto reader = std::make_unique<Reader>();
    reader->time_end_to_end = time_end_to_end;
    jsSubOptions sub_options;
    jsSubOptions_Init(&sub_options);
    sub_options.Ordered = true;
    const std::string stream = stream_name(options, index);
    sub_options.Stream = stream.c_str();
    natsSubscription* subscription = nullptr;
    jsErrCode js_error = static_cast<jsErrCode>(0);
    if (!check(js_Subscribe(&subscription, js, subject_name(options, index).c_str(), on_message, reader.get(),
                            nullptr, &sub_options, &js_error),
               "subscribe", js_error)) {
      return false;
    }
    natsSubscription_SetPendingLimits(subscription, -1, -1);
    out.subscriptions.push_back(subscription);
    out.readers.push_back(std::move(reader));
  }
  return true;
}

std::uint64_t send_all(const LoadOptions& options, std::vector<std::unique_ptr<Producer>>& producers,
                       RoomSignal& room, std::int64_t start_ns, std::string& first_error) {
  std::vector<std::string> subjects;
  for (std::size_t index = 0; index < options.partitions; ++index) subjects.push_back(subject_name(options, index));
  return paced_send(options, producers, room, start_ns,
                    [&](Producer& chosen, std::uint64_t index, std::int64_t, std::string& payload) {
                      chosen.outstanding.fetch_add(1, std::memory_order_acq_rel);
                      const natsStatus status =
                          js_PublishAsync(chosen.js, subjects[partition_of(options, index)].c_str(), payload.data(),
                                          static_cast<int>(payload.size()), nullptr);
                      if (status == NATS_OK) return SendOutcome::sent;
                      chosen.outstanding.fetch_sub(1, std::memory_order_acq_rel);
                      first_error = natsStatus_GetText(status);
                      return SendOutcome::stop;
                    });
}

int produce(const LoadOptions& options, const NatsOptions& nats) {
  const std::size_t window = options.window > 0 ? options.window : kDefaultWindow;
  RoomSignal room(window);  // outlives the producers' ack threads
  std::vector<std::unique_ptr<Producer>> producers;
  for (std::size_t made = 0; made < options.producers; ++made) {
    auto producer = make_producer(nats, window);
    if (producer == nullptr) return kExitFailure;
    producer->room = &room;
    producers.push_back(std::move(producer));
  }
  if (nats.create && !create_streams(producers.front()->js, options, nats)) return kExitFailure;
  const std::int64_t stored_before = stored_count(producers.front()->js, options);
  if (stored_before < 0) return kExitFailure;
  RunResult result;
  Readers readers;
  if (options.end_to_end && !start_readers(nats, options, true, readers)) return kExitFailure;

  result.first_send_ns = now_ns();
  result.sent = send_all(options, producers, room, result.first_send_ns, result.first_error);
  const std::int64_t drain_deadline = now_ns() + static_cast<std::int64_t>(options.drain_timeout_s * 1e9);
  for (auto& producer : producers) {
    while (producer->outstanding.load(std::memory_order_acquire) > 0 && now_ns() < drain_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  for (auto& producer : producers) {
    // Acks may still be in flight when the drain timed out; the counters are read after that.
    result.acked += producer->acked;
    result.failed += producer->failed;
    result.last_ack_ns = std::max(result.last_ack_ns, producer->last_ack_ns);
    result.ack_latency.merge(producer->ack_latency);
    if (result.first_error.empty()) result.first_error = producer->first_error;
  }
  if (options.end_to_end) {
    while (readers.received() < result.acked && now_ns() < drain_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (natsSubscription* subscription : readers.subscriptions) natsSubscription_Unsubscribe(subscription);
    for (const auto& reader : readers.readers) {
      const std::lock_guard guard(reader->mutex);
      result.end_to_end_latency.merge(reader->latency);
    }
    result.consumed = readers.received();
  }
  const std::int64_t stored_after = stored_count(producers.front()->js, options);
  result.stored = stored_after < 0 ? -1 : stored_after - stored_before;
  for (auto& producer : producers) destroy_producer(*producer);
  return report("sluice-nats-load", options, result, {{"window", window}, {"max_bytes", nats.max_bytes}});
}

int consume(LoadOptions options, const NatsOptions& nats) {
  natsConnection* connection = nullptr;
  jsCtx* js = nullptr;
  if (!connect(nats, &connection) || !check(natsConnection_JetStream(&js, connection, nullptr), "jetstream")) {
    return kExitFailure;
  }
  RunResult result;
  result.stored = stored_count(js, options);
  jsCtx_Destroy(js);
  natsConnection_Destroy(connection);
  if (result.stored < 0) return kExitFailure;
  result.sent = result.acked = static_cast<std::uint64_t>(result.stored);
  result.first_send_ns = now_ns();
  Readers readers;
  if (!start_readers(nats, options, false, readers)) return kExitFailure;
  const std::int64_t deadline = result.first_send_ns + static_cast<std::int64_t>(options.drain_timeout_s * 1e9);
  while (readers.received() < result.acked && now_ns() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  result.consumed = readers.received();
  std::uint64_t bytes = 0;
  for (const auto& reader : readers.readers) {
    bytes += reader->bytes.load(std::memory_order_acquire);
    result.last_ack_ns = std::max(result.last_ack_ns, reader->last_ns.load(std::memory_order_acquire));
  }
  return report_consume("sluice-nats-load", options, result, bytes);
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  using namespace sluice::bench;
  CLI::App app{"sluice-nats-load: NATS JetStream load for ci/bench.sh (libnats)", "sluice-nats-load"};
  std::string mode;
  LoadOptions options;
  NatsOptions nats;
  bool no_create = false;
  app.add_option("mode", mode, "produce or consume")->required()->check(CLI::IsMember({"produce", "consume"}));
  app.add_option("--url", nats.url, "Server URL")->capture_default_str();
  app.add_flag("--no-create", no_create, "Use existing streams");
  app.add_option("--max-bytes", nats.max_bytes, "Stream MaxBytes (retention; -1: unbounded)")->capture_default_str();
  add_load_options(app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? kExitOk : kExitUsage;
  }
  nats.create = !no_create;
  keep_timer_slack_small();
  const int exit_code = mode == "produce" ? produce(options, nats) : consume(options, nats);
  nats_Close();
  return exit_code;
}
