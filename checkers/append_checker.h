#pragma once
// Checks a history of the append-log demo (clients appending records, then one final read of the
// whole log) against what a durable log promises. Pure: no env, no IO.

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::checkers {

enum class AppendOutcome : std::uint8_t {
  acked,    // the server acknowledged: the record must be in the log at the acknowledged index
  unknown,  // the request may or may not have reached the log (timeout, reset, crash)
  failed,   // the server answered with an error: the record may still be in the log
};

struct AppendOperation {
  std::uint64_t client = 0;
  std::uint64_t sequence = 0;
  std::string data;
  AppendOutcome outcome = AppendOutcome::unknown;
  std::uint64_t index = 0;  // valid when acked
};

struct LoggedRecord {
  std::uint64_t client = 0;
  std::uint64_t sequence = 0;
  std::string data;
  std::int64_t offset = -1;  // the offset the log reported, when it reports one (-1: none)
};

struct AppendCheckResult {
  std::vector<std::string> violations;
  std::uint64_t acked = 0;
  std::uint64_t acked_found = 0;
  std::uint64_t unknown_found = 0;
  bool ok() const { return violations.empty(); }
};

// Anomalies found: lost acknowledged writes, records at another index than acknowledged,
// records never sent or with other bytes than sent, duplicates, and an acknowledged record
// preceded by a record its client sent after the acknowledgement.
AppendCheckResult check_append_history(const std::vector<AppendOperation>& operations,
                                       const std::vector<LoggedRecord>& final_log);

}  // namespace sluice::checkers
