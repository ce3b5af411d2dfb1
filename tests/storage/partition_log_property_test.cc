// The partition log's main promise, checked by rapidcheck in a simulated node with SimDisk's
// crash model: random interleavings of concurrent appends, flushes, crashes (during appends too:
// unsynced writes are lost or torn), clean close/reopen and reads. After every recovery:
//  * every batch that was durable (below durable_end_offset()) before the crash is present,
//    byte-identical (as stamped), at its offset;
//  * the log holds exactly a prefix of what was written, offsets contiguous from start to end;
//  * reads return only whole batches that pass their CRC and equal what was written;
//  * the sparse index finds the same batch as a linear scan for every offset.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>

#include "tests/storage/partition_log_test_util.h"

namespace sluice::storage {
namespace {

using testing::linear_scan;
using testing::LogNode;
using testing::make_batch;
using testing::open_log;

enum class Step : std::uint8_t { append, flush, crash_during_appends, crash, close_and_reopen, read };

struct Operation {
  Step step = Step::append;
  int appenders = 1;          // concurrent appends
  int records = 1;
  int value_bytes = 10;
  int crash_after_us = 0;     // crash_during_appends: how long the appends run first
  int read_position = 0;      // read: where in [start, end], as a fraction of 1000
  int read_max_bytes = 100;
};

rc::Gen<Operation> operation_generator() {
  return rc::gen::build<Operation>(
      rc::gen::set(&Operation::step, rc::gen::weightedElement<Step>({{6, Step::append}, {2, Step::flush},
                                                                     {2, Step::crash_during_appends}, {1, Step::crash},
                                                                     {1, Step::close_and_reopen}, {3, Step::read}})),
      rc::gen::set(&Operation::appenders, rc::gen::inRange(1, 6)),
      rc::gen::set(&Operation::records, rc::gen::inRange(1, 5)),
      rc::gen::set(&Operation::value_bytes, rc::gen::inRange(0, 1500)),
      rc::gen::set(&Operation::crash_after_us, rc::gen::inRange(0, 1500)),
      rc::gen::set(&Operation::read_position, rc::gen::inRange(0, 1001)),
      rc::gen::set(&Operation::read_max_bytes, rc::gen::inRange(1, 6000)));
}

// What was handed to append, by stamped base offset (the log stamps the caller's buffer in
// place before writing, so even an append a crash interrupted is known here).
struct Model {
  std::map<std::int64_t, std::vector<std::byte>> batches;

  // The concatenation of batches [from, to) must be what the log returns.
  std::vector<std::byte> bytes_between(std::int64_t from_base, std::int64_t to_offset) const {
    std::vector<std::byte> bytes;
    for (auto it = batches.find(from_base); it != batches.end() && it->first < to_offset; ++it) {
      bytes.insert(bytes.end(), it->second.begin(), it->second.end());
    }
    return bytes;
  }
  std::int64_t base_containing(std::int64_t offset) const {
    auto it = batches.upper_bound(offset);
    return it == batches.begin() ? -1 : std::prev(it)->first;
  }
};

// rapidcheck reports failures by throwing, and an exception escaping a fiber aborts the
// scheduler: checks inside fibers record the first failure, reported after the step.
#define CHECK_IN_FIBER(condition) \
  do {                              \
    if (!(condition)) fail(#condition, __LINE__); \
  } while (false)

class Harness {
 public:
  Harness(std::uint64_t seed, LogConfig config) : node_(seed, options()), config_(config) {
    log_ = open_log(node_, config_);
    RC_ASSERT(log_ != nullptr);
  }

  void run(const Operation& operation) {
    switch (operation.step) {
      case Step::append: append(operation, false); break;
      case Step::crash_during_appends: append(operation, true); break;
      case Step::flush: flush(); break;
      case Step::crash: crash(); break;
      case Step::close_and_reopen: close_and_reopen(); break;
      case Step::read: read(operation); break;
    }
    report();
  }

  void report() const {
    if (!failure_.empty()) RC_FAIL(failure_);
  }

  void crash() {
    const std::int64_t durable_end = log_->durable_end_offset();
    // The node's fibers unwind first: they may be waiting inside the log.
    node_.crash_and_restart();
    log_.reset();
    reopen_and_check(durable_end);
  }

 private:
  static sim::SimWorldOptions options() {
    sim::SimWorldOptions options;
    options.disk_faults.write_latency_mean_extra = microseconds(40);
    return options;
  }

  void append(const Operation& operation, bool crash_midway) {
    int finished = 0;
    for (int i = 0; i < operation.appenders; ++i) {
      auto batch = std::make_shared<std::vector<std::byte>>(
          make_batch(operation.records, static_cast<std::size_t>(operation.value_bytes + 97 * i),
                     sim::SimClock::kWallEpochMs + next_timestamp_++, static_cast<char>('a' + i)));
      // -1 marks "not stamped yet": a crash may stop the append before it reaches the log.
      stamp_batch(*batch, -1, -1);
      pending_.push_back(batch);
      node_.spawn("appender", [this, batch, &finished] {
        auto appended = log_->append(*batch, 3);
        CHECK_IN_FIBER(appended.has_value());
        // Default policy: acknowledged means durable.
        if (appended && config_.flush_messages == 1) CHECK_IN_FIBER(appended->last_offset < log_->durable_end_offset());
        ++finished;
      });
    }
    if (crash_midway) {
      node_.world().run_for(microseconds(operation.crash_after_us));
      crash();
      return;
    }
    node_.world().run_until([&] { return finished == operation.appenders; });
    RC_ASSERT(finished == operation.appenders);
    collect_pending();
  }

  void flush() {
    node_.run([&] {
      const std::int64_t end = log_->log_end_offset();
      CHECK_IN_FIBER(log_->flush_through(end - 1).has_value());
      CHECK_IN_FIBER(log_->durable_end_offset() == end);
    });
  }

  void close_and_reopen() {
    node_.run([&] { CHECK_IN_FIBER(log_->close().has_value()); });
    report();
    const std::int64_t end = log_->log_end_offset();
    log_.reset();
    log_ = open_log(node_, config_);
    RC_ASSERT(log_ != nullptr);
    RC_ASSERT(log_->stats().recovered_from_clean_shutdown);
    RC_ASSERT(log_->stats().batches_scanned_on_recovery == 0u);
    RC_ASSERT(log_->log_end_offset() == end);
    check_contents();
  }

  void read(const Operation& operation) {
    node_.run([&] {
      const std::int64_t start = log_->log_start_offset();
      const std::int64_t end = log_->high_watermark();
      const std::int64_t offset = start + (end - start) * operation.read_position / 1000;
      auto read = log_->read(offset, static_cast<std::size_t>(operation.read_max_bytes), end);
      CHECK_IN_FIBER(read.has_value());
      if (!read) return;
      if (offset == end) {
        CHECK_IN_FIBER(read->batch_count == 0u);
        return;
      }
      CHECK_IN_FIBER(read->batch_count > 0u);
      CHECK_IN_FIBER(read->first_offset == model_.base_containing(offset));
      CHECK_IN_FIBER(read->bytes == model_.bytes_between(read->first_offset, read->next_offset));
      CHECK_IN_FIBER(read->next_offset <= end);
      const std::size_t first_batch_bytes = model_.batches.at(read->first_offset).size();
      CHECK_IN_FIBER(read->bytes.size() <= std::max(first_batch_bytes, static_cast<std::size_t>(operation.read_max_bytes)));
    });
  }

  // Appends whose buffers were stamped are in the log (or were, before a crash).
  void collect_pending() {
    for (const auto& batch : pending_) {
      auto header = parse_batch_header(*batch);
      RC_ASSERT(header.has_value());
      if (header->base_offset >= 0) model_.batches[header->base_offset] = *batch;
    }
    pending_.clear();
  }

  void reopen_and_check(std::int64_t durable_end_before) {
    collect_pending();
    log_ = open_log(node_, config_);
    RC_ASSERT(log_ != nullptr);
    RC_ASSERT(log_->log_end_offset() >= durable_end_before);
    // What was lost is a suffix of what was written: forget it (those offsets get reused).
    model_.batches.erase(model_.batches.lower_bound(log_->log_end_offset()), model_.batches.end());
    check_contents();
  }

  // The whole log equals the model, batch by batch, through reads, the index and a linear scan.
  void check_contents() {
    node_.run([&] {
      const std::int64_t start = log_->log_start_offset();
      const std::int64_t end = log_->log_end_offset();
      CHECK_IN_FIBER(log_->high_watermark() == end);
      auto read = log_->read(start, std::size_t{1} << 30, end);
      CHECK_IN_FIBER(read.has_value());
      if (!read || start == end) return;
      CHECK_IN_FIBER(read->next_offset == end);
      CHECK_IN_FIBER(read->bytes == model_.bytes_between(read->first_offset, end));
      const auto scanned = linear_scan(node_.disk(), *log_);
      CHECK_IN_FIBER(!scanned.empty());
      if (scanned.empty()) return;
      CHECK_IN_FIBER(scanned.back().header.last_offset() + 1 == end);
      std::int64_t next = scanned.front().header.base_offset;
      for (const auto& batch : scanned) {
        CHECK_IN_FIBER(batch.header.base_offset == next);  // contiguous
        next = batch.header.last_offset() + 1;
        auto one = log_->read(batch.header.last_offset(), 1, end);
        CHECK_IN_FIBER(one.has_value());
        if (!one) return;
        CHECK_IN_FIBER(one->first_offset == batch.header.base_offset);
        CHECK_IN_FIBER(one->ranges.size() == 1u && one->ranges[0].position == batch.position);
      }
    });
    report();
  }

  void fail(const char* condition, int line) {
    if (failure_.empty()) failure_ = std::string("line ") + std::to_string(line) + ": " + condition;
  }

  LogNode node_;
  LogConfig config_;
  std::string failure_;
  std::unique_ptr<PartitionLog> log_;
  Model model_;
  std::vector<std::shared_ptr<std::vector<std::byte>>> pending_;
  std::int64_t next_timestamp_ = 0;
};

RC_GTEST_PROP(PartitionLogProperty, durable_batches_survive_crashes_byte_identical_and_contiguous, ()) {
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();
  LogConfig config;
  config.segment_bytes = static_cast<std::uint64_t>(*rc::gen::inRange(2048, 16384));
  config.index_interval_bytes = static_cast<std::uint32_t>(*rc::gen::inRange(64, 2048));
  config.flush_messages = *rc::gen::element<std::int64_t>(1, 1'000'000);
  const auto operations = *rc::gen::resize(60, rc::gen::container<std::vector<Operation>>(operation_generator()));
  Harness harness(seed, config);
  for (const Operation& operation : operations) harness.run(operation);
  harness.crash();
}

}  // namespace
}  // namespace sluice::storage
