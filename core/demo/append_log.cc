#include "core/demo/append_log.h"

#include <algorithm>

#include "core/util/crc32c.h"
#include "core/util/frame_io.h"

namespace sluice::demo {

namespace {

constexpr std::size_t kFrameHeaderBytes = 8;        // u32 payload size + u32 crc
constexpr std::size_t kPayloadHeaderBytes = 16;     // u64 client + u64 sequence
constexpr std::uint32_t kPayloadBytesMax = 1 << 20;  // recovery refuses larger claims

std::string log_path(const AppendLogOptions& options) { return join_path(options.directory, "records.log"); }

Bytes status_only(AppendStatus status) { return Bytes{static_cast<std::byte>(status)}; }

std::uint32_t read_u32_at(std::span<const std::byte> bytes, std::size_t position) {
  ByteReader reader(bytes.subspan(position, 4));
  return reader.u32();
}

}  // namespace

Bytes encode_disk_frame(const AppendRecord& record) {
  Bytes frame;
  frame.reserve(kFrameHeaderBytes + kPayloadHeaderBytes + record.data.size());
  ByteWriter writer(frame);
  writer.u32(static_cast<std::uint32_t>(kPayloadHeaderBytes + record.data.size()));
  writer.u32(0);  // crc, patched below
  writer.u64(record.client);
  writer.u64(record.sequence);
  writer.bytes(record.data);
  const auto payload = std::span<const std::byte>(frame).subspan(kFrameHeaderBytes);
  writer.patch_u32(4, crc32c(payload));
  return frame;
}

AppendLogService::AppendLogService(Env& env, AppendLogOptions options)
    : env_(env), options_(std::move(options)), log_(env.log().with_component("appendlog")) {}

AppendLogService::~AppendLogService() {
  connections_.reset();  // unwinds connection fibers before the state they use goes away
  if (file_) file_->close();
}

std::expected<RecoveryReport, DiskError> AppendLogService::recover() {
  Disk& disk = env_.disk();
  if (auto made = disk.create_directories(options_.directory); !made) return std::unexpected(made.error());
  auto opened = disk.open(log_path(options_), OpenMode::create);
  if (!opened) return std::unexpected(opened.error());
  file_ = std::move(*opened);
  // The file's name must survive a crash before any record in it can be acknowledged.
  if (auto synced = disk.sync_directory(options_.directory); !synced) return std::unexpected(synced.error());

  auto size = file_->size();
  if (!size) return std::unexpected(size.error());
  RecoveryReport report;
  positions_.clear();
  std::uint64_t offset = 0;
  Bytes frame;
  const bool skip_crc = env_.bug("demo_skip_crc_on_recovery");
  while (offset + kFrameHeaderBytes <= *size) {
    std::byte header[kFrameHeaderBytes];
    auto got = file_->read_at(offset, header);
    if (!got) return std::unexpected(got.error());
    if (*got < kFrameHeaderBytes) break;
    const std::uint32_t payload_bytes = read_u32_at(header, 0);
    const std::uint32_t crc_stored = read_u32_at(header, 4);
    if (payload_bytes < kPayloadHeaderBytes || payload_bytes > kPayloadBytesMax ||
        offset + kFrameHeaderBytes + payload_bytes > *size) {
      break;
    }
    frame.resize(payload_bytes);
    auto payload = file_->read_at(offset + kFrameHeaderBytes, frame);
    if (!payload) return std::unexpected(payload.error());
    if (*payload < payload_bytes) break;
    if (!skip_crc && crc32c(frame) != crc_stored) break;
    positions_.push_back(offset);
    offset += kFrameHeaderBytes + payload_bytes;
  }
  report.records = positions_.size();
  report.valid_bytes = offset;
  report.truncated_bytes = *size - offset;
  if (report.truncated_bytes > 0) {
    if (auto cut = file_->truncate(offset); !cut) return std::unexpected(cut.error());
    if (auto synced = file_->datasync(); !synced) return std::unexpected(synced.error());
  }
  end_offset_ = offset;
  records_recovered_ = positions_.size();
  written_generation_ = synced_generation_ = 0;
  log_.info("recovered {} records ({} bytes), truncated a torn tail of {} bytes", report.records,
            report.valid_bytes, report.truncated_bytes);
  return report;
}

std::expected<Address, NetError> AppendLogService::start(Scope& scope) {
  auto listener = env_.net().listen(Address{"0.0.0.0", options_.port});
  if (!listener) return std::unexpected(listener.error());
  Address address = (*listener)->local_address();
  connections_ = std::make_unique<Scope>(scope, "connections");
  scope.spawn("appendlog/accept", [this, &scope, owned = std::move(*listener)]() mutable {
    accept_loop(scope, std::move(owned));
  });
  if (env_.bug("demo_ack_before_sync")) {
    // The planted bug: acknowledge at once and flush in the background every 50 ms
    // (flush.ms-style), so a crash can lose acknowledged records.
    scope.spawn("appendlog/flusher", [this] {
      for (;;) {
        this_fiber::sleep_for(milliseconds(50));
        if (auto synced = sync_through(written_generation_); !synced) {
          log_.warn("background datasync failed: {}", to_string(synced.error()));
        }
      }
    });
  }
  log_.info("serving on {}", address.to_string());
  return address;
}

void AppendLogService::accept_loop(Scope& scope, std::unique_ptr<Listener> listener) {
  (void)scope;
  for (;;) {
    auto stream = listener->accept(kNever);
    if (!stream) {
      log_.warn("accept failed: {}", to_string(stream.error()));
      if (stream.error() == NetError::closed) return;
      this_fiber::sleep_for(milliseconds(10));
      continue;
    }
    connections_->spawn("appendlog/connection", [this, owned = std::move(*stream)]() mutable {
      serve_connection(std::move(owned));
    });
  }
}

void AppendLogService::serve_connection(std::unique_ptr<Stream> stream) {
  for (;;) {
    auto body = read_frame(*stream, options_.frame_bytes_max, env_.deadline_after(options_.idle_timeout));
    if (!body) break;
    Bytes response = handle_request(*body);
    if (!write_frame(*stream, response, env_.deadline_after(options_.idle_timeout))) break;
  }
  stream->close();
}

Bytes AppendLogService::handle_request(std::span<const std::byte> body) {
  ByteReader reader(body);
  switch (reader.u8()) {
    case 'A': return handle_append(reader);
    case 'R': return handle_read(reader);
    default: return status_only(AppendStatus::bad_request);
  }
}

Bytes AppendLogService::handle_append(ByteReader& reader) {
  AppendRecord record;
  record.client = reader.u64();
  record.sequence = reader.u64();
  const std::uint32_t size = reader.u32();
  auto data = reader.bytes(size);
  if (!reader.ok() || reader.remaining() != 0 || size > kPayloadBytesMax - kPayloadHeaderBytes) {
    return status_only(AppendStatus::bad_request);
  }
  record.data.assign(data.begin(), data.end());
  const Bytes frame = encode_disk_frame(record);

  std::uint64_t index = 0;
  std::uint64_t generation = 0;
  {
    LockGuard guard(append_mutex_);
    auto written = file_->write_at(end_offset_, frame);
    if (!written) {
      log_.warn("append failed: {}", to_string(written.error()));
      return status_only(AppendStatus::disk_error);
    }
    index = positions_.size();
    positions_.push_back(end_offset_);
    end_offset_ += frame.size();
    generation = ++written_generation_;
  }
  if (!env_.bug("demo_ack_before_sync")) {
    if (auto synced = sync_through(generation); !synced) {
      log_.warn("datasync failed: {}", to_string(synced.error()));
      return status_only(AppendStatus::disk_error);
    }
  }
  Bytes response = status_only(AppendStatus::ok);
  ByteWriter(response).u64(index);
  return response;
}

std::expected<void, DiskError> AppendLogService::sync_through(std::uint64_t generation) {
  // Bounded: each round either runs one datasync or waits for the running one to finish.
  while (synced_generation_ < generation) {
    if (sync_running_) {
      sync_waiters_.wait(kNever);
      continue;
    }
    sync_running_ = true;
    const std::uint64_t target = written_generation_;
    auto synced = file_->datasync();
    sync_running_ = false;
    if (synced) synced_generation_ = std::max(synced_generation_, target);
    sync_waiters_.notify_all();
    if (!synced) return std::unexpected(synced.error());
  }
  return {};
}

Bytes AppendLogService::handle_read(ByteReader& reader) {
  const std::uint64_t from = reader.u64();
  std::uint32_t records_max = std::min(reader.u32(), options_.read_records_max);
  // Rare path on demand: tiny pages exercise the client's paging.
  if (env_.buggify("appendlog/read_one_record_per_page")) records_max = std::min<std::uint32_t>(records_max, 1);
  if (!reader.ok() || reader.remaining() != 0) return status_only(AppendStatus::bad_request);
  // Only durable records are served (like Kafka's high watermark): a reader never sees a record
  // that a crash could still take away.
  const std::uint64_t end = std::min<std::uint64_t>(durable_records(), from + records_max);
  Bytes response = status_only(AppendStatus::ok);
  ByteWriter writer(response);
  writer.u32(static_cast<std::uint32_t>(from < end ? end - from : 0));
  Bytes frame;
  for (std::uint64_t index = from; index < end; ++index) {
    std::byte header[kFrameHeaderBytes];
    const std::uint64_t offset = positions_[index];
    auto got = file_->read_at(offset, header);
    if (!got || *got < kFrameHeaderBytes) return status_only(AppendStatus::disk_error);
    const std::uint32_t payload_bytes = read_u32_at(header, 0);
    if (payload_bytes < kPayloadHeaderBytes || payload_bytes > kPayloadBytesMax) {
      log_.error("corrupt frame header at offset {} (record {}): not served", offset, index);
      return status_only(AppendStatus::corrupt);
    }
    frame.resize(payload_bytes);
    auto payload = file_->read_at(offset + kFrameHeaderBytes, frame);
    if (!payload || *payload < payload_bytes) return status_only(AppendStatus::disk_error);
    if (crc32c(frame) != read_u32_at(header, 4)) {
      log_.error("checksum mismatch at offset {} (record {}): not served", offset, index);
      return status_only(AppendStatus::corrupt);
    }
    writer.bytes(std::span<const std::byte>(frame).subspan(0, kPayloadHeaderBytes));
    writer.u32(payload_bytes - static_cast<std::uint32_t>(kPayloadHeaderBytes));
    writer.bytes(std::span<const std::byte>(frame).subspan(kPayloadHeaderBytes));
  }
  return response;
}

void run_append_log_node(Env& env, const AppendLogOptions& options) {
  AppendLogService service(env, options);
  // Like a supervised process that restarts after a failed start: retry, with a pause, until
  // recovery and listening succeed (disk read errors and busy ports can be transient).
  for (;;) {
    auto recovered = service.recover();
    if (recovered) break;
    env.log().error("append log recovery failed: {}; retrying", to_string(recovered.error()));
    this_fiber::sleep_for(milliseconds(100));
  }
  Scope& scope = env.scheduler().current_scope();
  for (;;) {
    auto address = service.start(scope);
    if (address) break;
    env.log().error("append log cannot listen: {}; retrying", to_string(address.error()));
    this_fiber::sleep_for(milliseconds(100));
  }
  Event forever;
  forever.wait();
}

// ---- client ----

std::expected<AppendLogClient, NetError> AppendLogClient::connect(Env& env, const Address& address,
                                                                  Instant deadline) {
  auto stream = env.net().connect(address, deadline);
  if (!stream) return std::unexpected(stream.error());
  return AppendLogClient(std::move(*stream));
}

std::expected<Bytes, std::string> AppendLogClient::call(const Bytes& body, Instant deadline) {
  if (auto sent = write_frame(*stream_, body, deadline); !sent) {
    return std::unexpected(std::string(to_string(sent.error())));
  }
  auto frame = read_frame(*stream_, 64 << 20, deadline);
  if (!frame) return std::unexpected(std::string(to_string(frame.error())));
  Bytes response = std::move(*frame);
  const auto status = static_cast<AppendStatus>(response[0]);
  if (status != AppendStatus::ok) {
    static constexpr const char* kNames[] = {"ok", "disk error", "corrupt data", "bad request"};
    const auto code = static_cast<std::size_t>(status);
    return std::unexpected(std::string("server: ") + (code < 4 ? kNames[code] : "unknown status"));
  }
  return response;
}

std::expected<std::uint64_t, std::string> AppendLogClient::append(std::uint64_t client,
                                                                  std::uint64_t sequence,
                                                                  std::span<const std::byte> data,
                                                                  Instant deadline) {
  Bytes body;
  ByteWriter writer(body);
  writer.u8('A');
  writer.u64(client);
  writer.u64(sequence);
  writer.u32(static_cast<std::uint32_t>(data.size()));
  writer.bytes(data);
  auto response = call(body, deadline);
  if (!response) return std::unexpected(response.error());
  ByteReader reader(std::span<const std::byte>(*response).subspan(1));
  const std::uint64_t index = reader.u64();
  if (!reader.ok()) return std::unexpected(std::string("short append response"));
  return index;
}

std::expected<std::vector<AppendRecord>, std::string> AppendLogClient::read(std::uint64_t from_index,
                                                                           std::uint32_t records_max,
                                                                           Instant deadline) {
  Bytes body;
  ByteWriter writer(body);
  writer.u8('R');
  writer.u64(from_index);
  writer.u32(records_max);
  auto response = call(body, deadline);
  if (!response) return std::unexpected(response.error());
  ByteReader reader(std::span<const std::byte>(*response).subspan(1));
  const std::uint32_t count = reader.u32();
  std::vector<AppendRecord> records;
  for (std::uint32_t i = 0; i < count && reader.ok(); ++i) {
    AppendRecord record;
    record.client = reader.u64();
    record.sequence = reader.u64();
    auto data = reader.bytes(reader.u32());
    record.data.assign(data.begin(), data.end());
    records.push_back(std::move(record));
  }
  if (!reader.ok() || reader.remaining() != 0) return std::unexpected(std::string("malformed read response"));
  return records;
}

}  // namespace sluice::demo
