#pragma once
// A deliberately small durable service used to prove the foundation before Kafka exists: clients
// append checksummed records to one file on a node and read them back. It exercises every part of
// the env (net, disk, fsync, crash recovery, fibers) in both worlds, and its invariant (an
// acknowledged record survives crashes byte-identical) is the one the partition log must keep.
//
// Disk frame: u32 payload_size | u32 crc32c(payload) | payload, payload = u64 client | u64 sequence | data.
// Wire: u32 body_size | body. Requests: 'A' u64 client u64 sequence u32 size data  (append)
//                                      'R' u64 from_index u32 max_records          (read)
// Responses: u8 status (0 ok, 1 disk error, 2 corrupt data, 3 bad request) then
//   append: u64 index;  read: u32 count, then per record u64 client u64 sequence u32 size data.

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "core/env/env.h"
#include "core/env/sync.h"
#include "core/util/bytes.h"

namespace sluice::demo {

struct AppendRecord {
  std::uint64_t client = 0;
  std::uint64_t sequence = 0;
  Bytes data;
  bool operator==(const AppendRecord&) const = default;
};

enum class AppendStatus : std::uint8_t { ok = 0, disk_error = 1, corrupt = 2, bad_request = 3 };

struct AppendLogOptions {
  std::string directory = "appendlog";
  std::uint16_t port = 7000;
  Duration idle_timeout = seconds(30);
  std::uint32_t frame_bytes_max = 1 << 20;
  std::uint32_t read_records_max = 1000;
};

struct RecoveryReport {
  std::uint64_t records = 0;
  std::uint64_t valid_bytes = 0;
  std::uint64_t truncated_bytes = 0;
};

class AppendLogService {
 public:
  AppendLogService(Env& env, AppendLogOptions options);
  ~AppendLogService();

  // Scans the log, drops the torn tail after the last valid frame, and makes that durable.
  std::expected<RecoveryReport, DiskError> recover();
  // Listens and serves connections in fibers of `scope` until it is cancelled.
  std::expected<Address, NetError> start(Scope& scope);
  std::size_t record_count() const { return positions_.size(); }
  std::uint64_t durable_records() const { return records_recovered_ + synced_generation_; }

 private:
  void accept_loop(Scope& scope, std::unique_ptr<Listener> listener);
  void serve_connection(std::unique_ptr<Stream> stream);
  Bytes handle_request(std::span<const std::byte> body);
  Bytes handle_append(ByteReader& reader);
  Bytes handle_read(ByteReader& reader);
  std::expected<void, DiskError> sync_through(std::uint64_t generation);

  Env& env_;
  AppendLogOptions options_;
  Log log_;
  std::unique_ptr<File> file_;
  std::uint64_t end_offset_ = 0;
  std::vector<std::uint64_t> positions_;  // frame offset of each record, by index
  std::uint64_t records_recovered_ = 0;
  Mutex append_mutex_;
  // Group commit: each append bumps written_generation_; one datasync covers every append
  // before it. Record i is durable once i < records_recovered_ + synced_generation_.
  std::uint64_t written_generation_ = 0;
  std::uint64_t synced_generation_ = 0;
  bool sync_running_ = false;
  WaitQueue sync_waiters_;
  std::unique_ptr<Scope> connections_;
};

// The node program used by the simulator: recover, serve, run until the node is crashed.
void run_append_log_node(Env& env, const AppendLogOptions& options);

// A blocking client for the service (one request at a time).
class AppendLogClient {
 public:
  static std::expected<AppendLogClient, NetError> connect(Env& env, const Address& address,
                                                          Instant deadline);
  // Returns the record's index in the log once the server has made it durable.
  std::expected<std::uint64_t, std::string> append(std::uint64_t client, std::uint64_t sequence,
                                                   std::span<const std::byte> data, Instant deadline);
  std::expected<std::vector<AppendRecord>, std::string> read(std::uint64_t from_index,
                                                             std::uint32_t records_max,
                                                             Instant deadline);

 private:
  explicit AppendLogClient(std::unique_ptr<Stream> stream) : stream_(std::move(stream)) {}
  std::expected<Bytes, std::string> call(const Bytes& body, Instant deadline);
  std::unique_ptr<Stream> stream_;
};

// Frame helpers shared by the server and tests.
Bytes encode_disk_frame(const AppendRecord& record);

}  // namespace sluice::demo
