#pragma once
// What the admin commands (`sluice topic`, `sluice group`) share: their common flags
// (--brokers, --json, --timeout-ms), running an action on the fiber runtime with a connection to
// the first bootstrap broker that answers (AdminSession, which also opens connections to other
// brokers on demand: group coordinators, partition leaders), and a few request and output helpers.
// Exit codes of every admin command: 0 done, 1 the broker refused or could not be reached (the
// Kafka error name and code on stderr), 2 usage error.
//
// Concurrency: an action runs on one fiber, and uses its session's clients one call at a time.

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/env/env.h"
#include "core/protocol/value.h"
#include "runtime/admin_client.h"

namespace sluice::runtime {

inline constexpr int kAdminExitOk = 0;
inline constexpr int kAdminExitFailure = 1;
inline constexpr int kAdminExitUsage = 2;

// ListOffsets' special timestamps.
inline constexpr std::int64_t kTimestampEarliest = -2;
inline constexpr std::int64_t kTimestampLatest = -1;

template <typename T>
using AdminResult = AdminClient::Result<T>;

// The flags every admin action takes.
struct AdminOptions {
  std::string brokers = "127.0.0.1:9092";  // HOST:PORT[,HOST:PORT...]: the first that answers
  bool json = false;
  std::int64_t timeout_ms = 30000;  // connect, and each request
};

// Adds --brokers, --json and --timeout-ms to `action`.
void add_admin_options(CLI::App& action, AdminOptions& options);

// The connections of one admin command: the bootstrap broker's, plus one per other broker the
// command needed to talk to, each opened once and closed when the session ends.
class AdminSession {
 public:
  AdminSession(Env& env, Duration timeout, std::unique_ptr<AdminClient> bootstrap);

  AdminClient& bootstrap() { return *clients_.front(); }
  // A client connected to `address`: the bootstrap's or an open one if either matches, else a
  // new connection.
  AdminResult<AdminClient*> client_for(const Address& address);

 private:
  Env& env_;
  Duration timeout_;
  std::vector<std::unique_ptr<AdminClient>> clients_;  // [0]: the bootstrap broker's
};

using AdminAction = std::function<AdminResult<void>(AdminSession&)>;

// Parses --brokers, connects to the first broker that answers and runs `action` on the fiber
// runtime; reports its error on stderr. Returns the exit code.
int run_admin_action(const AdminOptions& options, const AdminAction& action);

// One admin subcommand of `sluice` (`topic`, `group`) and its actions (`topic create`, ...): the
// subclass adds each action with the code that runs it; run() runs the one the command line chose.
class AdminCommand {
 public:
  AdminCommand(const AdminCommand&) = delete;
  AdminCommand& operator=(const AdminCommand&) = delete;

  // True when the command line chose this command (after app.parse()).
  bool parsed() const { return command_->parsed(); }
  // Runs the chosen action; returns the process exit code.
  int run() const;

 protected:
  // Adds the subcommand `name` to `app`; it requires one action.
  AdminCommand(CLI::App& app, const char* name, const char* description);
  ~AdminCommand() = default;
  // Adds an action taking the common flags (into `options`), run by `run` when chosen.
  CLI::App* add_action(const char* name, const char* description, AdminOptions& options,
                       std::function<int()> run);

 private:
  CLI::App* command_ = nullptr;
  std::vector<std::pair<CLI::App*, std::function<int()>>> actions_;
};

// ---- Requests ----

struct TopicPartition {
  std::string topic;
  std::int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

// One partition's answer: an offset, or a Kafka error code.
struct PartitionOffset {
  std::int64_t offset = -1;
  std::int16_t error_code = 0;
};
using PartitionOffsets = std::map<TopicPartition, PartitionOffset>;

// An error result of a response struct with an "error_code" (and maybe "error_message") field.
AdminResult<void> check_error(const protocol::StructValue& result, std::string_view context);

// Metadata for `topics`, or for every topic when nullopt (an empty list asks for brokers only).
// Never creates topics.
AdminResult<protocol::StructValue> fetch_metadata(
    AdminClient& client, const std::optional<std::vector<std::string>>& topics);

// The address of broker `node_id` in a Metadata response.
std::optional<Address> broker_address(const protocol::StructValue& metadata, std::int64_t node_id);

// ListOffsets for `timestamp` (kTimestampEarliest, kTimestampLatest or ms since the epoch) on one
// broker. Every asked partition has an entry: its offset (-1 when no record has a timestamp at or
// after `timestamp`), or its error.
AdminResult<PartitionOffsets> list_offsets(AdminClient& client,
                                           std::span<const TopicPartition> partitions,
                                           std::int64_t timestamp);
// The same, each partition asked of its leader (Metadata); a partition without one has its error
// (UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE).
AdminResult<PartitionOffsets> list_offsets_from_leaders(AdminSession& session,
                                                        std::span<const TopicPartition> partitions,
                                                        std::int64_t timestamp);

// ---- Output ----

// Columns padded to their widest cell, two spaces apart; `rows` each have header.size() cells.
void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows);
// One JSON document on one line of stdout.
void print_json(const nlohmann::json& document);

}  // namespace sluice::runtime
