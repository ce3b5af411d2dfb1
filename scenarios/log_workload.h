#pragma once
// The shared shape of Sluice's single-server log scenarios: three clients append records to a
// server node, one at a time, while a fault driver (drawn from the seed's swarm configuration)
// crashes, pauses, partitions and clogs it and slows or fails its disk. After the fault period the
// world heals; a verifier reads the whole log and the history is checked (checkers/append_checker).
// A scenario plugs in its server and its client protocol.

#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "checkers/append_checker.h"
#include "core/env/env.h"
#include "scenarios/scenario.h"

namespace sluice::scenarios {

inline constexpr std::uint16_t kLogServerPort = 7000;

class LogClient {
 public:
  virtual ~LogClient() = default;
  // Appends one record; returns its index (offset) once the server acknowledged it. An error
  // that starts with "server:" is a definite refusal; any other error leaves the outcome unknown.
  virtual std::expected<std::uint64_t, std::string> append(std::uint64_t client, std::uint64_t sequence,
                                                           std::span<const std::byte> data, Instant deadline) = 0;
  // Reads records from index `from` on; empty when there is nothing more.
  virtual std::expected<std::vector<checkers::LoggedRecord>, std::string> read(std::uint64_t from,
                                                                              Instant deadline) = 0;
};

struct LogWorkload {
  std::function<void(Env&)> server_main;
  std::function<std::expected<std::unique_ptr<LogClient>, std::string>(Env&, const Address&, Instant)> connect;
};

ScenarioResult run_log_workload(const ScenarioOptions& options, const LogWorkload& workload);

}  // namespace sluice::scenarios
