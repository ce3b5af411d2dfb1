#pragma once
// `sluice group list|describe|delete|reset-offsets`: consumer-group administration over the Kafka
// protocol (runtime/admin_client.h), like Kafka's kafka-consumer-groups, so the same commands work
// against Kafka. Group requests go to the group's coordinator (FindCoordinator), ListOffsets to
// each partition's leader, ListGroups to every broker. Output is a human table by default and one
// JSON document on stdout with --json. Flags and exit codes: admin_command.h.
//
// reset-offsets commits like a consumer using assign() (generation -1, empty member id), which a
// broker accepts only while the group has no members, so it refuses unless the group is Empty
// or Dead.

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/admin_command.h"

namespace sluice::runtime {

struct GroupCommandOptions : AdminOptions {
  std::string group;                // describe, reset-offsets
  std::vector<std::string> groups;  // delete
  // reset-offsets
  std::vector<std::string> topics;  // "TOPIC" (every partition) or "TOPIC:P,P,..."
  bool to_earliest = false;
  bool to_latest = false;
  std::optional<std::int64_t> to_offset;
  std::string to_datetime;  // ISO 8601, see parse_datetime_ms
  bool dry_run = false;
};

// "2026-11-22T13:00:00Z", "...T13:00:00.250+01:00", "...T13:00:00+0100", "...T13:00:00" (UTC)
// -> milliseconds since the Unix epoch; nullopt when malformed or out of range.
std::optional<std::int64_t> parse_datetime_ms(std::string_view text);

using GroupAction = AdminResult<void> (*)(AdminSession& session,
                                          const GroupCommandOptions& options);

// `group` and its actions (AdminCommand: parsed(), run()).
class GroupCommand : public AdminCommand {
 public:
  // Adds the `group` subcommand and its actions to `app`.
  explicit GroupCommand(CLI::App& app);

 private:
  CLI::App* add_group_action(const char* name, const char* description, GroupAction action);
  void add_reset_options(CLI::App& reset);

  GroupCommandOptions options_;
};

}  // namespace sluice::runtime
