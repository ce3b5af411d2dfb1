#include "runtime/admin_command.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <ranges>
#include <set>
#include <utility>

#include "core/protocol/messages.h"
#include "runtime/runtime_env.h"

namespace sluice::runtime {

namespace {

using protocol::StructValue;

constexpr std::size_t kTableColumnsMax = 8;
// A cluster's brokers bound the connections of one command; more means a broken Metadata answer.
constexpr std::size_t kSessionClientsMax = 1024;
constexpr std::int16_t kErrorUnknownServer = -1;
constexpr std::int16_t kErrorUnknownTopicOrPartition = 3;
constexpr std::int16_t kErrorLeaderNotAvailable = 5;

std::optional<std::vector<Address>> parse_brokers(const std::string& brokers) {
  std::vector<Address> addresses;
  for (const auto part : std::views::split(std::string_view(brokers), ',')) {
    const std::string_view text(part.begin(), part.end());
    auto address = Address::parse(text);
    if (!address || address->port == 0) {
      std::fprintf(stderr, "sluice: invalid --brokers entry '%.*s': expected HOST:PORT\n",
                   static_cast<int>(text.size()), text.data());
      return std::nullopt;
    }
    addresses.push_back(*address);
  }
  assert(!addresses.empty());
  return addresses;
}

}  // namespace

void add_admin_options(CLI::App& action, AdminOptions& options) {
  action.add_option("--brokers", options.brokers, "Bootstrap broker(s), HOST:PORT[,HOST:PORT]")
      ->capture_default_str();
  action.add_flag("--json", options.json, "Print one JSON document instead of a table");
  action.add_option("--timeout-ms", options.timeout_ms, "Bound on connecting and on each request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

AdminCommand::AdminCommand(CLI::App& app, const char* name, const char* description)
    : command_(app.add_subcommand(name, description)) {
  command_->require_subcommand(1);
}

CLI::App* AdminCommand::add_action(const char* name, const char* description, AdminOptions& options,
                                   std::function<int()> run) {
  assert(run);
  CLI::App* action = command_->add_subcommand(name, description);
  add_admin_options(*action, options);
  actions_.emplace_back(action, std::move(run));
  return action;
}

int AdminCommand::run() const {
  assert(parsed());
  for (const auto& [action, run_action] : actions_) {
    if (action->parsed()) return run_action();
  }
  return kAdminExitUsage;  // require_subcommand(1) makes this unreachable
}

AdminSession::AdminSession(Env& env, Duration timeout, std::unique_ptr<AdminClient> bootstrap)
    : env_(env), timeout_(timeout) {
  assert(bootstrap != nullptr);
  assert(timeout.count() > 0);
  clients_.push_back(std::move(bootstrap));
}

AdminResult<AdminClient*> AdminSession::client_for(const Address& address) {
  for (const auto& client : clients_) {
    if (client->address() == address) return client.get();
  }
  if (clients_.size() >= kSessionClientsMax) {
    return std::unexpected(AdminError{
        .kind = AdminError::Kind::protocol,
        .message = "too many brokers to connect to (" + std::to_string(clients_.size()) + ")"});
  }
  auto client = connect_admin_client(env_, address, timeout_);
  if (!client) return std::unexpected(client.error());
  clients_.push_back(std::move(*client));
  return clients_.back().get();
}

int run_admin_action(const AdminOptions& options, const AdminAction& action) {
  const auto addresses = parse_brokers(options.brokers);
  if (!addresses) return kAdminExitUsage;
  RuntimeEnvOptions runtime_options;
  runtime_options.handle_signals = false;  // Ctrl-C simply ends a command-line tool
  RuntimeEnv runtime(runtime_options);
  int exit_code = kAdminExitFailure;
  const bool finished = runtime.run_until_done([&](Env& env) {
    AdminResult<std::unique_ptr<AdminClient>> client = std::unexpected(AdminError{});
    for (const Address& address : *addresses) {
      client = connect_admin_client(env, address, milliseconds(options.timeout_ms));
      if (client) break;
      std::fprintf(stderr, "sluice: %s\n", client.error().message.c_str());
    }
    if (!client) return;
    AdminSession session(env, milliseconds(options.timeout_ms), std::move(*client));
    if (auto done = action(session); !done) {
      std::fprintf(stderr, "sluice: %s\n", done.error().message.c_str());
      return;
    }
    exit_code = kAdminExitOk;
  });
  return finished ? exit_code : kAdminExitFailure;
}

AdminResult<void> check_error(const StructValue& result, std::string_view context) {
  const auto error_code = static_cast<std::int16_t>(result.get_int("error_code"));
  if (error_code == 0) return {};
  std::optional<std::string> message;
  for (const auto& field : result.schema.span()) {
    if (field.name == "error_message") message = result.get_nullable_string("error_message");
  }
  return std::unexpected(AdminError::from_kafka(error_code, context, message));
}

AdminResult<StructValue> fetch_metadata(AdminClient& client,
                                        const std::optional<std::vector<std::string>>& topics) {
  StructValue request = AdminClient::new_request(protocol::kMetadataSchema);
  if (!topics) {
    request.set("topics", protocol::Null{});
  } else {
    for (const std::string& topic : *topics) request.add("topics").set("name", topic);
  }
  request.set("allow_auto_topic_creation", false);
  return client.call(protocol::kMetadataSchema, request);
}

std::optional<Address> broker_address(const StructValue& metadata, std::int64_t node_id) {
  for (const StructValue& broker : metadata.get_structs("brokers")) {
    if (broker.get_int("node_id") != node_id) continue;
    const std::int64_t port = broker.get_int("port");
    if (port <= 0 || port > 65535) return std::nullopt;
    return Address{broker.get_string("host"), static_cast<std::uint16_t>(port)};
  }
  return std::nullopt;
}

AdminResult<PartitionOffsets> list_offsets(AdminClient& client,
                                           std::span<const TopicPartition> partitions,
                                           std::int64_t timestamp) {
  // An answer the broker leaves out stays an error rather than a made-up offset.
  PartitionOffsets offsets;
  for (const TopicPartition& partition : partitions) {
    offsets[partition] = PartitionOffset{.offset = -1, .error_code = kErrorUnknownServer};
  }
  StructValue request = AdminClient::new_request(protocol::kListOffsetsSchema);
  request.set("replica_id", protocol::int_value(-1));
  StructValue* request_topic = nullptr;
  for (const auto& [partition, unused] : offsets) {  // sorted: one entry a topic
    if (request_topic == nullptr || request_topic->get_string("name") != partition.topic) {
      request_topic = &request.add("topics");
      request_topic->set("name", partition.topic);
    }
    request_topic->add("partitions")
        .set("partition_index", protocol::int_value(partition.partition))
        .set("timestamp", timestamp);
  }
  auto response = client.call(protocol::kListOffsetsSchema, request);
  if (!response) return std::unexpected(response.error());
  for (const StructValue& response_topic : response->get_structs("topics")) {
    for (const StructValue& answer : response_topic.get_structs("partitions")) {
      const TopicPartition key{response_topic.get_string("name"),
                               static_cast<std::int32_t>(answer.get_int("partition_index"))};
      const auto asked = offsets.find(key);
      if (asked == offsets.end()) continue;
      asked->second =
          PartitionOffset{.offset = answer.get_int("offset"),
                          .error_code = static_cast<std::int16_t>(answer.get_int("error_code"))};
    }
  }
  assert(offsets.size() <= partitions.size());
  return offsets;
}

AdminResult<PartitionOffsets> list_offsets_from_leaders(AdminSession& session,
                                                        std::span<const TopicPartition> partitions,
                                                        std::int64_t timestamp) {
  std::set<std::string> topic_names;
  for (const TopicPartition& partition : partitions) topic_names.insert(partition.topic);
  auto metadata = fetch_metadata(session.bootstrap(),
                                 std::vector<std::string>(topic_names.begin(), topic_names.end()));
  if (!metadata) return std::unexpected(metadata.error());
  PartitionOffsets offsets;
  std::map<Address, std::vector<TopicPartition>> by_leader;
  for (const TopicPartition& wanted : partitions) {
    std::int16_t error_code = kErrorUnknownTopicOrPartition;
    for (const StructValue& topic : metadata->get_structs("topics")) {
      if (topic.get_string("name") != wanted.topic) continue;
      error_code = static_cast<std::int16_t>(topic.get_int("error_code"));
      if (error_code != 0) break;
      error_code = kErrorUnknownTopicOrPartition;
      for (const StructValue& partition : topic.get_structs("partitions")) {
        if (partition.get_int("partition_index") != wanted.partition) continue;
        const auto leader = broker_address(*metadata, partition.get_int("leader_id"));
        if (!leader) {
          error_code = kErrorLeaderNotAvailable;
          break;
        }
        by_leader[*leader].push_back(wanted);
        error_code = 0;
      }
    }
    if (error_code != 0) offsets[wanted] = PartitionOffset{.offset = -1, .error_code = error_code};
  }
  for (const auto& [leader, led] : by_leader) {
    auto client = session.client_for(leader);
    if (!client) return std::unexpected(client.error());
    auto answered = list_offsets(**client, led, timestamp);
    if (!answered) return std::unexpected(answered.error());
    offsets.merge(*answered);
  }
  return offsets;
}

void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
  assert(!header.empty() && header.size() <= kTableColumnsMax);
  std::vector<std::size_t> widths(header.size());
  for (std::size_t column = 0; column < header.size(); ++column)
    widths[column] = header[column].size();
  for (const auto& row : rows) {
    assert(row.size() == header.size());
    for (std::size_t column = 0; column < row.size(); ++column) {
      widths[column] = std::max(widths[column], row[column].size());
    }
  }
  auto print_row = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (std::size_t column = 0; column < cells.size(); ++column) {
      line += cells[column];
      if (column + 1 < cells.size())
        line += std::string(widths[column] - cells[column].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  };
  print_row(header);
  for (const auto& row : rows) print_row(row);
}

void print_json(const nlohmann::json& document) {
  std::printf("%s\n", document.dump().c_str());
}

}  // namespace sluice::runtime
