// partition_log: the log workload against the real storage engine. A server node keeps one
// PartitionLog (core/storage/partition_log.h) with small segments, so faults land on rolls,
// index rebuilds and torn tails; clients send Kafka record batch v2 (one record each, its key
// naming client and sequence) and read batches back. The checks are the append-log ones plus
// offset contiguity: acknowledged batches survive crashes at the offset they were given. With the
// partition_log/lazy_flush buggify the log is not flushed per append (its rolls are deferred while
// much is unsynced) and the server flushes before it acknowledges.

#include <memory>

#include "core/storage/partition_log.h"
#include "core/storage/record_batch.h"
#include "core/util/frame_io.h"
#include "scenarios/log_workload.h"

namespace sluice::scenarios {

namespace {

enum class Status : std::uint8_t { ok = 0, log_error = 1, corrupt = 2, invalid_batch = 3, out_of_range = 4 };
constexpr std::uint32_t kFrameBytesMax = 2 << 20;
constexpr std::uint32_t kFetchBytesMax = 64 * 1024;
constexpr Duration kIdleTimeout = seconds(30);

Bytes status_only(Status status) { return Bytes{static_cast<std::byte>(status)}; }

Status status_of(storage::LogError error) {
  switch (error) {
    case storage::LogError::corrupt: return Status::corrupt;
    case storage::LogError::offset_out_of_range: return Status::out_of_range;
    default: return Status::log_error;
  }
}

// A log not flushed per append (the partition_log/lazy_flush buggify) acknowledges only after an
// explicit flush_through and serves only durable offsets, so the checks stay those of a durable
// log while its rolls go the lazy way (deferred while much is unsynced, PartitionLog::defer_roll).
bool lazy(const storage::PartitionLog& log) { return log.config().flush_messages > 1; }

Bytes handle_produce(storage::PartitionLog& log, std::span<std::byte> batch) {
  if (!storage::validate_client_batch(batch, log.config().max_batch_bytes)) return status_only(Status::invalid_batch);
  auto appended = log.append(batch, 0);
  if (!appended) return status_only(status_of(appended.error()));
  if (lazy(log)) {
    if (auto flushed = log.flush_through(appended->last_offset); !flushed) return status_only(status_of(flushed.error()));
  }
  Bytes response = status_only(Status::ok);
  ByteWriter(response).u64(static_cast<std::uint64_t>(appended->base_offset));
  return response;
}

Bytes handle_fetch(storage::PartitionLog& log, ByteReader& request) {
  const auto offset = static_cast<std::int64_t>(request.u64());
  const std::uint32_t max_bytes = request.u32();
  if (!request.ok()) return status_only(Status::invalid_batch);
  const std::int64_t upper_bound = lazy(log) ? log.durable_end_offset() : log.high_watermark();
  auto read = log.read(offset, std::min(max_bytes, kFetchBytesMax), upper_bound);
  if (!read) return status_only(status_of(read.error()));
  Bytes response = status_only(Status::ok);
  ByteWriter(response).bytes(read->bytes);
  return response;
}

void serve_connection(storage::PartitionLog& log, Env& env, std::unique_ptr<Stream> stream) {
  for (;;) {
    auto body = read_frame(*stream, kFrameBytesMax, env.deadline_after(kIdleTimeout));
    if (!body) break;
    Bytes response;
    ByteReader request(*body);
    switch (request.u8()) {
      case 'P': response = handle_produce(log, std::span<std::byte>(*body).subspan(1)); break;
      case 'F': response = handle_fetch(log, request); break;
      default: response = status_only(Status::invalid_batch);
    }
    if (!write_frame(*stream, response, env.deadline_after(kIdleTimeout))) break;
  }
  stream->close();
}

void run_partition_log_server(Env& env) {
  storage::LogConfig config;
  // Small segments, so faults hit rolls and multi-segment recovery; tiny ones on demand.
  config.segment_bytes = env.buggify("partition_log/tiny_segments") ? 4096 : 128 * 1024;
  config.index_interval_bytes = 1024;
  config.retention_ms = -1;
  if (env.buggify("partition_log/lazy_flush")) config.flush_messages = 1'000'000;
  std::unique_ptr<storage::PartitionLog> log;
  for (;;) {  // a supervised process: retry a failed recovery (e.g. an injected read error)
    auto opened = storage::PartitionLog::open(env, "partition-0", config);
    if (opened) {
      log = std::move(*opened);
      break;
    }
    env.log().error("cannot open the partition log: {}; retrying", storage::to_string(opened.error()));
    this_fiber::sleep_for(milliseconds(100));
  }
  std::unique_ptr<Listener> listener;
  while (!listener) {
    auto bound = env.net().listen(Address{"0.0.0.0", kLogServerPort});
    if (bound) {
      listener = std::move(*bound);
    } else {
      this_fiber::sleep_for(milliseconds(100));
    }
  }
  Scope connections(env.scheduler().current_scope(), "connections");
  for (;;) {
    auto stream = listener->accept(kNever);
    if (!stream) {
      this_fiber::sleep_for(milliseconds(10));
      continue;
    }
    connections.spawn("partition_log/connection", [&log, &env, owned = std::move(*stream)]() mutable {
      serve_connection(*log, env, std::move(owned));
    });
  }
}

class PartitionLogClient final : public LogClient {
 public:
  explicit PartitionLogClient(std::unique_ptr<Stream> stream) : stream_(std::move(stream)) {}

  std::expected<std::uint64_t, std::string> append(std::uint64_t client, std::uint64_t sequence,
                                                   std::span<const std::byte> data, Instant deadline) override {
    Bytes key;
    ByteWriter key_writer(key);
    key_writer.u64(client);
    key_writer.u64(sequence);
    storage::BatchSpec spec;
    spec.records.push_back({std::string(as_text(key)), std::string(as_text(data)), {}, 0});
    Bytes body{std::byte{'P'}};
    auto batch = storage::build_batch(spec);
    body.insert(body.end(), batch.begin(), batch.end());
    auto response = call(body, deadline);
    if (!response) return std::unexpected(response.error());
    ByteReader reader(std::span<const std::byte>(*response).subspan(1));
    const std::uint64_t offset = reader.u64();
    if (!reader.ok()) return std::unexpected(std::string("short produce response"));
    return offset;
  }

  std::expected<std::vector<checkers::LoggedRecord>, std::string> read(std::uint64_t from,
                                                                      Instant deadline) override {
    Bytes body{std::byte{'F'}};
    ByteWriter writer(body);
    writer.u64(from);
    writer.u32(kFetchBytesMax);
    auto response = call(body, deadline);
    if (!response) return std::unexpected(response.error());
    std::span<const std::byte> batches = std::span<const std::byte>(*response).subspan(1);
    std::vector<checkers::LoggedRecord> logged;
    while (!batches.empty()) {
      // The client checks what it receives, as Kafka consumers do (check.crcs).
      auto header = storage::validate_stored_batch(batches);
      if (!header) return std::unexpected("fetched a bad batch: " + std::string(storage::to_string(header.error())));
      auto records = storage::decode_records(batches.first(header->size_bytes()));
      if (!records) return std::unexpected(std::string("undecodable batch"));
      for (const auto& record : *records) {
        if (record.offset < static_cast<std::int64_t>(from)) continue;  // the batch may start earlier
        if (!record.key || record.key->size() != 16 || !record.value) return std::unexpected(std::string("bad record"));
        ByteReader key(as_bytes(*record.key));
        const std::uint64_t client = key.u64();
        const std::uint64_t sequence = key.u64();
        logged.push_back({client, sequence, std::string(*record.value), record.offset});
      }
      batches = batches.subspan(header->size_bytes());
    }
    return logged;
  }

 private:
  std::expected<Bytes, std::string> call(const Bytes& body, Instant deadline) {
    if (auto sent = write_frame(*stream_, body, deadline); !sent) {
      return std::unexpected(std::string(to_string(sent.error())));
    }
    auto response = read_frame(*stream_, kFrameBytesMax, deadline);
    if (!response) return std::unexpected(std::string(to_string(response.error())));
    const auto status = static_cast<Status>((*response)[0]);
    if (status != Status::ok) return std::unexpected("server: status " + std::to_string(static_cast<int>(status)));
    return std::move(*response);
  }

  std::unique_ptr<Stream> stream_;
};

}  // namespace

ScenarioResult run_partition_log(const ScenarioOptions& options) {
  LogWorkload workload;
  workload.server_main = run_partition_log_server;
  workload.connect = [](Env& env, const Address& address,
                        Instant deadline) -> std::expected<std::unique_ptr<LogClient>, std::string> {
    auto stream = env.net().connect(address, deadline);
    if (!stream) return std::unexpected(std::string(to_string(stream.error())));
    return std::make_unique<PartitionLogClient>(std::move(*stream));
  };
  return run_log_workload(options, workload);
}

}  // namespace sluice::scenarios
