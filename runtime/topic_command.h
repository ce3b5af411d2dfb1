#pragma once
// `sluice topic create|list|describe|delete|alter`: topic administration over the Kafka protocol
// (runtime/admin_client.h), so the same commands work against Kafka. Output is a human table by
// default and one JSON document on stdout with --json. Flags and exit codes: admin_command.h.

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/admin_command.h"

namespace sluice::runtime {

struct TopicCommandOptions : AdminOptions {
  std::string topic;
  std::int32_t partitions = -1;          // create: -1 = the broker's default
  std::int32_t replication_factor = -1;  // create: -1 = the broker's default
  std::vector<std::string> configs;      // create/alter: "key=value"
};

using TopicAction = AdminResult<void> (*)(AdminClient& client, const TopicCommandOptions& options);

// `topic` and its actions (AdminCommand: parsed(), run()).
class TopicCommand : public AdminCommand {
 public:
  // Adds the `topic` subcommand and its actions to `app`.
  explicit TopicCommand(CLI::App& app);

 private:
  CLI::App* add_topic_action(const char* name, const char* description, bool takes_topic,
                             TopicAction action);

  TopicCommandOptions options_;
};

}  // namespace sluice::runtime
