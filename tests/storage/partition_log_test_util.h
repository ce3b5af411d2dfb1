#pragma once
// Helpers for the partition log tests: a one-node SimWorld whose fibers run the test's steps (so
// SimDisk latencies, crashes and bit flips apply), batch builders, and a reference linear scan
// that parses .log files straight from the simulated disk.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/env/sync.h"
#include "core/storage/partition_log.h"
#include "core/storage/record_batch.h"
#include "sim/world.h"

namespace sluice::storage::testing {

inline constexpr std::string_view kLogDirectory = "data/topic-0";

// A broker node whose main just waits, plus a way to run test steps in fibers of that node.
class LogNode {
 public:
  explicit LogNode(std::uint64_t seed, sim::SimWorldOptions options = {}) : world_(seed, options) {
    node_ = world_.add_node("broker", [this](Env& env) {
      env_ = &env;
      scope_ = &env.scheduler().current_scope();
      Event forever;
      forever.wait();
    });
    wait_until_up();
  }

  sim::SimWorld& world() { return world_; }
  Env& env() { return *env_; }
  sim::SimDisk& disk() { return world_.disk(node_); }
  sim::SimClock& clock() { return world_.clock(node_); }

  // Runs `body` in a fiber of the node until it returns; false if it never finished.
  bool run(std::function<void()> body) {
    bool done = false;
    scope_->spawn("test-step", [&done, body = std::move(body)] {
      body();
      done = true;
    });
    return world_.run_until([&done] { return done; });
  }
  // Starts `body` in a fiber of the node without waiting for it.
  void spawn(std::string name, std::function<void()> body) { scope_->spawn(std::move(name), std::move(body)); }

  // Kills the node (its fibers unwind, unsynced disk state is lost or torn) and starts it again.
  void crash_and_restart() {
    env_ = nullptr;
    scope_ = nullptr;
    world_.crash(node_);
    world_.restart(node_);
    wait_until_up();
  }

 private:
  void wait_until_up() {
    ASSERT_TRUE(world_.run_until([this] { return env_ != nullptr; }));
  }

  sim::SimWorld world_;
  sim::NodeId node_ = 0;
  Env* env_ = nullptr;
  Scope* scope_ = nullptr;
};

// A producer's batch of `records` records, each with a value of `value_bytes` bytes of `fill`,
// the records' timestamps base_timestamp_ms + 0, 1, 2, ...
inline std::vector<std::byte> make_batch(int records, std::size_t value_bytes, std::int64_t base_timestamp_ms,
                                         char fill = 'v') {
  BatchSpec spec;
  spec.base_offset = 0;
  spec.base_timestamp_ms = base_timestamp_ms;
  for (int i = 0; i < records; ++i) {
    RecordSpec record;
    record.key = "k" + std::to_string(i);
    record.value = std::string(value_bytes, fill);
    record.timestamp_delta_ms = i;
    spec.records.push_back(std::move(record));
  }
  return build_batch(spec);
}

// Opens the log (in a node fiber), failing the test on error.
inline std::unique_ptr<PartitionLog> open_log(LogNode& node, const LogConfig& config,
                                             std::string_view directory = kLogDirectory) {
  std::unique_ptr<PartitionLog> log;
  EXPECT_TRUE(node.run([&] {
    auto opened = PartitionLog::open(node.env(), std::string(directory), config);
    EXPECT_TRUE(opened.has_value()) << (opened ? "" : to_string(opened.error()));
    if (opened) log = std::move(*opened);
  }));
  return log;
}

// Appends a copy of `batch` and returns the stamped bytes as stored.
inline std::vector<std::byte> append_copy(PartitionLog& log, std::vector<std::byte> batch, std::int32_t epoch = 7) {
  auto appended = log.append(batch, epoch);
  EXPECT_TRUE(appended.has_value()) << (appended ? "" : to_string(appended.error()));
  return batch;
}

// One batch as found by parsing the .log files directly.
struct ScannedBatch {
  std::int64_t segment_base_offset = 0;
  std::uint64_t position = 0;
  BatchHeader header;
  std::vector<std::byte> bytes;
};

// Every valid batch of every segment in the live view of the disk, in offset order: the
// reference the log's indexes and reads are checked against.
inline std::vector<ScannedBatch> linear_scan(sim::SimDisk& disk, const PartitionLog& log) {
  std::vector<ScannedBatch> batches;
  for (const auto& segment : log.segments()) {
    const std::string path = join_path(kLogDirectory, segment_file_name(segment->base_offset(), kLogSuffix));
    const auto image = disk.live_contents(path).value_or(std::vector<std::byte>{});
    std::uint64_t position = 0;
    const std::uint64_t limit = std::min<std::uint64_t>(image.size(), segment->readable_end_position());
    while (position < limit) {
      auto header = validate_stored_batch(std::span<const std::byte>(image).subspan(position, limit - position));
      if (!header) break;
      ScannedBatch batch{segment->base_offset(), position, *header, {}};
      batch.bytes.assign(image.begin() + static_cast<std::ptrdiff_t>(position),
                         image.begin() + static_cast<std::ptrdiff_t>(position + header->size_bytes()));
      batches.push_back(std::move(batch));
      position += header->size_bytes();
    }
  }
  return batches;
}

}  // namespace sluice::storage::testing
