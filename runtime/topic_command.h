#pragma once
// `sluice topic create|list|describe|delete|alter`: topic administration over the Kafka protocol
// (runtime/admin_client.h), so the same commands work against Kafka. Output is a human table by
// default and one JSON document on stdout with --json. Exit codes: 0 done, 1 the broker refused or
// could not be reached (Kafka error name and code on stderr), 2 usage error (CLI11).

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::runtime {

struct TopicCommandOptions {
  std::string brokers = "127.0.0.1:9092";  // HOST:PORT[,HOST:PORT...]: the first that answers
  bool json = false;
  std::int64_t timeout_ms = 30000;  // connect, and each request
  std::string topic;
  std::int32_t partitions = -1;          // create: -1 = the broker's default
  std::int32_t replication_factor = -1;  // create: -1 = the broker's default
  std::vector<std::string> configs;      // create/alter: "key=value"
};

class TopicCommand {
 public:
  // Adds the `topic` subcommand and its actions to `app`.
  explicit TopicCommand(CLI::App& app);
  // True when the command line chose `topic` (after app.parse()).
  bool parsed() const { return topic_->parsed(); }
  // Runs the chosen action; returns the process exit code.
  int run() const;

 private:
  CLI::App* add_action(const char* name, const char* description, bool takes_topic);

  TopicCommandOptions options_;
  CLI::App* topic_ = nullptr;
  CLI::App* create_ = nullptr;
  CLI::App* list_ = nullptr;
  CLI::App* describe_ = nullptr;
  CLI::App* delete_ = nullptr;
  CLI::App* alter_ = nullptr;
};

}  // namespace sluice::runtime
