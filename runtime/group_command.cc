#include "runtime/group_command.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cassert>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <map>
#include <ranges>
#include <set>
#include <span>
#include <utility>

#include "core/env/scheduler.h"
#include "core/group/offsets_records.h"
#include "core/protocol/messages.h"
#include "runtime/admin_client.h"

namespace sluice::runtime {

namespace {

using nlohmann::json;
using protocol::StructValue;

constexpr std::string_view kConsumerProtocolType = "consumer";
constexpr std::int8_t kCoordinatorKeyTypeGroup = 0;
constexpr std::int16_t kErrorUnknownServer = -1;
constexpr std::int16_t kErrorCoordinatorLoadInProgress = 14;
constexpr std::int16_t kErrorCoordinatorNotAvailable = 15;
constexpr std::int16_t kErrorGroupIdNotFound = 69;
// A coordinator answers COORDINATOR_NOT_AVAILABLE / _LOAD_IN_PROGRESS while it creates or loads
// the offsets topic; Kafka's own tools retry through that, for about this long.
constexpr int kCoordinatorAttemptsMax = 50;
constexpr Duration kCoordinatorRetryDelay = milliseconds(200);
// DescribeGroups of a broker's listed groups goes out in batches of this many.
constexpr std::size_t kDescribeGroupsBatchMax = 1000;
constexpr std::int64_t kMillisecondsPerDay = 86'400'000;

// ---- Parsing ----

// A --topic of reset-offsets: the topic and the chosen partitions (none: every partition).
struct TopicSelection {
  std::string topic;
  std::vector<std::int32_t> partitions;
};

std::optional<TopicSelection> parse_topic_selection(std::string_view text) {
  const auto colon = text.find(':');
  TopicSelection selection{std::string(text.substr(0, colon)), {}};
  if (selection.topic.empty()) return std::nullopt;
  if (colon == std::string_view::npos) return selection;
  const std::string_view partitions = text.substr(colon + 1);
  if (partitions.empty()) return std::nullopt;
  for (const auto part : std::views::split(partitions, ',')) {
    const std::string_view number(part.begin(), part.end());
    std::int32_t partition = -1;
    const auto [end, error] =
        std::from_chars(number.data(), number.data() + number.size(), partition);
    if (error != std::errc{} || end != number.data() + number.size() || partition < 0) {
      return std::nullopt;
    }
    selection.partitions.push_back(partition);
  }
  assert(!selection.partitions.empty());
  return selection;
}

std::string topic_selection_validator(const std::string& text) {
  if (parse_topic_selection(text)) return {};
  return "expected TOPIC or TOPIC:PARTITION[,PARTITION...], got '" + text + "'";
}

std::string datetime_validator(const std::string& text) {
  if (parse_datetime_ms(text)) return {};
  return "expected an ISO 8601 date-time after 1970 such as 2026-11-22T13:00:00Z, "
         "2026-11-22T14:00:00.500+01:00 or 2026-11-22T13:00:00 (UTC), got '" +
         text + "'";
}

// "", "Z", "+HH:MM", "+HHMM", "+HH" (or "-") -> the zone's offset from UTC in ms.
std::optional<std::int64_t> parse_zone_offset_ms(std::string_view zone) {
  if (zone.empty() || zone == "Z" || zone == "z") return 0;
  const bool layout_ok = (zone.size() == 3 || zone.size() == 5 || zone.size() == 6) &&
                         (zone[0] == '+' || zone[0] == '-') && (zone.size() != 6 || zone[3] == ':');
  if (!layout_ok) return std::nullopt;
  std::string digits(zone.substr(1));
  if (zone.size() == 6) digits.erase(2, 1);  // the colon of "+HH:MM"
  digits.resize(4, '0');                     // "+HH" has no minutes
  if (!std::ranges::all_of(digits, [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  const int hours = (digits[0] - '0') * 10 + (digits[1] - '0');
  const int minutes = (digits[2] - '0') * 10 + (digits[3] - '0');
  if (hours > 18 || minutes > 59) return std::nullopt;  // java.time's bounds
  const std::int64_t offset_ms = (hours * 60 + minutes) * 60'000LL;
  return zone[0] == '-' ? -offset_ms : offset_ms;
}

}  // namespace

std::optional<std::int64_t> parse_datetime_ms(std::string_view text) {
  constexpr std::string_view kLayout = "dddd-dd-ddTdd:dd:dd";
  if (text.size() < kLayout.size()) return std::nullopt;
  for (std::size_t index = 0; index < kLayout.size(); ++index) {
    const char c = text[index];
    const char want = kLayout[index];
    const bool ok = want == 'd'   ? (c >= '0' && c <= '9')
                    : want == 'T' ? (c == 'T' || c == 't' || c == ' ')
                                  : c == want;
    if (!ok) return std::nullopt;
  }
  auto number = [&](std::size_t at, std::size_t digits) {
    int value = 0;
    for (std::size_t index = at; index < at + digits; ++index)
      value = value * 10 + (text[index] - '0');
    return value;
  };
  const std::chrono::year_month_day date{std::chrono::year{number(0, 4)},
                                         std::chrono::month{static_cast<unsigned>(number(5, 2))},
                                         std::chrono::day{static_cast<unsigned>(number(8, 2))}};
  const int hour = number(11, 2);
  const int minute = number(14, 2);
  const int second = number(17, 2);
  if (!date.ok() || hour > 23 || minute > 59 || second > 59) return std::nullopt;
  std::size_t position = kLayout.size();
  std::int64_t millisecond = 0;
  if (position < text.size() && text[position] == '.') {
    const std::size_t fraction_start = ++position;
    while (position < text.size() && text[position] >= '0' && text[position] <= '9') ++position;
    const std::size_t digits = position - fraction_start;
    if (digits == 0 || digits > 9) return std::nullopt;
    std::string fraction(text.substr(fraction_start, std::min<std::size_t>(digits, 3)));
    fraction.resize(3, '0');  // ".5" is 500 ms; digits past milliseconds are dropped
    millisecond = std::stoi(fraction);
  }
  const auto zone_offset_ms = parse_zone_offset_ms(text.substr(position));
  if (!zone_offset_ms) return std::nullopt;
  const std::int64_t days = std::chrono::sys_days(date).time_since_epoch().count();
  const std::int64_t since_epoch_ms = days * kMillisecondsPerDay +
                                      ((hour * 60LL + minute) * 60 + second) * 1000 + millisecond -
                                      *zone_offset_ms;
  // ListOffsets reads negative timestamps as "earliest" / "latest": refuse them here.
  if (since_epoch_ms < 0) return std::nullopt;
  return since_epoch_ms;
}

namespace {

// ---- The group's coordinator and description ----

struct Coordinator {
  std::int64_t node_id = -1;
  AdminClient* client = nullptr;
};

AdminResult<Coordinator> find_coordinator(AdminSession& session, const std::string& group) {
  StructValue request = AdminClient::new_request(protocol::kFindCoordinatorSchema);
  request.set("key", group).set("key_type", protocol::int_value(kCoordinatorKeyTypeGroup));
  AdminResult<StructValue> response = std::unexpected(AdminError{});
  for (int attempt = 0; attempt < kCoordinatorAttemptsMax; ++attempt) {
    if (attempt > 0) this_fiber::sleep_for(kCoordinatorRetryDelay);
    response = session.bootstrap().call(protocol::kFindCoordinatorSchema, request);
    if (!response) return std::unexpected(response.error());
    const std::int64_t error_code = response->get_int("error_code");
    const bool retriable = error_code == kErrorCoordinatorNotAvailable ||
                           error_code == kErrorCoordinatorLoadInProgress;
    if (!retriable) break;
  }
  if (auto ok = check_error(*response, "find the coordinator of group '" + group + "'"); !ok) {
    return std::unexpected(ok.error());
  }
  const std::int64_t port = response->get_int("port");
  if (port <= 0 || port > 65535) {
    return std::unexpected(AdminError{
        .kind = AdminError::Kind::protocol,
        .message = fmt::format("FindCoordinator for group '{}' answered port {}", group, port)});
  }
  auto client =
      session.client_for(Address{response->get_string("host"), static_cast<std::uint16_t>(port)});
  if (!client) return std::unexpected(client.error());
  return Coordinator{.node_id = response->get_int("node_id"), .client = *client};
}

struct GroupMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string host;
  std::vector<TopicPartition> assignment;  // decoded for the "consumer" protocol type only
};

struct GroupDescription {
  std::string group_id;
  std::int16_t error_code = 0;
  std::string state;  // Kafka's names: Empty, PreparingRebalance, CompletingRebalance, Stable, Dead
  std::string protocol_type;
  std::string protocol;
  std::vector<GroupMember> members;

  // Offsets may be committed from outside only while no member owns them.
  bool inactive() const { return state == "Empty" || state == "Dead"; }
};

// The partitions in a consumer-protocol assignment; none when the bytes are empty (a group that is
// not Stable) or not a consumer assignment.
std::vector<TopicPartition> decode_assignment(const Bytes& bytes) {
  std::vector<TopicPartition> partitions;
  const auto assignment = group::decode_consumer_assignment(as_text(bytes));
  if (!assignment) return partitions;
  for (const auto& [topic, indexes] : assignment->partitions) {
    for (const std::int32_t index : indexes) partitions.push_back({topic, index});
  }
  std::sort(partitions.begin(), partitions.end());
  return partitions;
}

GroupDescription to_description(const StructValue& described) {
  GroupDescription description{
      .group_id = described.get_string("group_id"),
      .error_code = static_cast<std::int16_t>(described.get_int("error_code")),
      .state = described.get_string("group_state"),
      .protocol_type = described.get_string("protocol_type"),
      .protocol = described.get_string("protocol_data"),
      .members = {},
  };
  const bool consumer = description.protocol_type == kConsumerProtocolType;
  for (const StructValue& member : described.get_structs("members")) {
    auto instance_id = member.get_nullable_string("group_instance_id");
    if (instance_id && instance_id->empty()) instance_id.reset();  // before v4: absent
    description.members.push_back(GroupMember{
        .member_id = member.get_string("member_id"),
        .group_instance_id = std::move(instance_id),
        .client_id = member.get_string("client_id"),
        .host = member.get_string("client_host"),
        .assignment = consumer ? decode_assignment(member["member_assignment"].as_bytes())
                               : std::vector<TopicPartition>{},
    });
  }
  return description;
}

protocol::Value string_array(std::span<const std::string> items) {
  protocol::Value::Array array;
  for (const std::string& item : items) array.emplace_back(item);
  return protocol::Value(std::move(array));
}

// DescribeGroups of `groups` on `client`, their coordinator; each with its own error code.
AdminResult<std::vector<GroupDescription>> describe_groups(AdminClient& client,
                                                           std::span<const std::string> groups) {
  assert(!groups.empty() && groups.size() <= kDescribeGroupsBatchMax);
  StructValue request = AdminClient::new_request(protocol::kDescribeGroupsSchema);
  request.set("groups", string_array(groups));
  auto response = client.call(protocol::kDescribeGroupsSchema, request);
  if (!response) return std::unexpected(response.error());
  std::vector<GroupDescription> descriptions;
  for (const StructValue& described : response->get_structs("groups")) {
    descriptions.push_back(to_description(described));
  }
  return descriptions;
}

AdminResult<GroupDescription> describe_group(AdminClient& coordinator, const std::string& group) {
  auto described = describe_groups(coordinator, std::span(&group, 1));
  if (!described) return std::unexpected(described.error());
  const auto found = std::ranges::find(*described, group, &GroupDescription::group_id);
  if (found == described->end()) {
    return std::unexpected(AdminError::from_kafka(kErrorUnknownServer,
                                                  "describe group '" + group + "'",
                                                  "the answer does not mention the group"));
  }
  if (found->error_code != 0) {
    return std::unexpected(
        AdminError::from_kafka(found->error_code, "describe group '" + group + "'", std::nullopt));
  }
  return std::move(*found);
}

using CommittedOffsets = std::map<TopicPartition, std::int64_t>;

// Every offset `group` has committed: OffsetFetch v2+ with topics null.
AdminResult<CommittedOffsets> fetch_committed_offsets(AdminClient& coordinator,
                                                      const std::string& group) {
  auto version = coordinator.version_for(protocol::kOffsetFetchSchema);
  if (!version) return std::unexpected(version.error());
  if (*version < 2) {
    return std::unexpected(AdminError{
        .kind = AdminError::Kind::unsupported_api,
        .message = fmt::format("the broker at {} speaks OffsetFetch v{}; listing all of a group's "
                               "offsets needs v2",
                               coordinator.address().to_string(), *version)});
  }
  StructValue request = AdminClient::new_request(protocol::kOffsetFetchSchema);
  request.set("group_id", group).set("topics", protocol::Null{});
  auto response = coordinator.call(protocol::kOffsetFetchSchema, request);
  if (!response) return std::unexpected(response.error());
  const std::string context = "fetch the committed offsets of group '" + group + "'";
  CommittedOffsets committed;
  // Kafka answers an unknown group with no offsets; a broker may say GROUP_ID_NOT_FOUND instead.
  if (response->get_int("error_code") == kErrorGroupIdNotFound) return committed;
  if (auto ok = check_error(*response, context); !ok) return std::unexpected(ok.error());
  for (const StructValue& topic : response->get_structs("topics")) {
    for (const StructValue& partition : topic.get_structs("partitions")) {
      const TopicPartition key{topic.get_string("name"),
                               static_cast<std::int32_t>(partition.get_int("partition_index"))};
      const std::string partition_context =
          fmt::format("{} ({}-{})", context, key.topic, key.partition);
      if (auto ok = check_error(partition, partition_context); !ok)
        return std::unexpected(ok.error());
      const std::int64_t offset = partition.get_int("committed_offset");
      if (offset >= 0) committed[key] = offset;  // -1: none
    }
  }
  return committed;
}

// An error naming each partition of `offsets` that has one (for exit 1), or success.
AdminResult<void> check_partition_errors(const PartitionOffsets& offsets, std::string_view doing) {
  std::string failures;
  std::int16_t first_error_code = 0;
  for (const auto& [partition, answer] : offsets) {
    if (answer.error_code == 0) continue;
    if (first_error_code == 0) first_error_code = answer.error_code;
    failures +=
        fmt::format("{}{}-{}: {} ({})", failures.empty() ? "" : "; ", partition.topic,
                    partition.partition, kafka_error_name(answer.error_code), answer.error_code);
  }
  if (first_error_code == 0) return {};
  return std::unexpected(AdminError{.kind = AdminError::Kind::kafka,
                                    .error_code = first_error_code,
                                    .message = fmt::format("{}: {}", doing, failures)});
}

json offset_json(std::optional<std::int64_t> offset) {
  return offset ? json(*offset) : json(nullptr);
}
std::string offset_text(std::optional<std::int64_t> offset) {
  return offset ? std::to_string(*offset) : "-";
}
std::string or_dash(const std::string& text) {
  return text.empty() ? "-" : text;
}

// ---- list ----

// The groups one broker coordinates: ListGroups, then DescribeGroups for their states.
AdminResult<std::vector<GroupDescription>> list_broker_groups(AdminClient& client) {
  auto response = client.call(protocol::kListGroupsSchema,
                              AdminClient::new_request(protocol::kListGroupsSchema));
  if (!response) return std::unexpected(response.error());
  if (auto ok = check_error(*response, "list groups on " + client.address().to_string()); !ok) {
    return std::unexpected(ok.error());
  }
  std::vector<std::string> group_ids;
  std::map<std::string, std::string> protocol_types;
  for (const StructValue& listed : response->get_structs("groups")) {
    group_ids.push_back(listed.get_string("group_id"));
    protocol_types[group_ids.back()] = listed.get_string("protocol_type");
  }
  std::vector<GroupDescription> groups;
  for (std::size_t start = 0; start < group_ids.size(); start += kDescribeGroupsBatchMax) {
    const std::size_t count = std::min(kDescribeGroupsBatchMax, group_ids.size() - start);
    auto described = describe_groups(client, std::span(group_ids).subspan(start, count));
    if (!described) return std::unexpected(described.error());
    for (GroupDescription& description : *described) {
      // A group deleted since the listing reports an error instead of a state.
      if (description.error_code != 0) description.state = kafka_error_name(description.error_code);
      description.protocol_type = protocol_types[description.group_id];
      groups.push_back(std::move(description));
    }
  }
  return groups;
}

AdminResult<void> list_groups(AdminSession& session, const GroupCommandOptions& options) {
  // ListGroups answers only the groups the asked broker coordinates: ask every broker.
  auto metadata = fetch_metadata(session.bootstrap(), std::vector<std::string>{});
  if (!metadata) return std::unexpected(metadata.error());
  std::set<Address> brokers;
  for (const StructValue& broker : metadata->get_structs("brokers")) {
    if (auto address = broker_address(*metadata, broker.get_int("node_id")))
      brokers.insert(*address);
  }
  if (brokers.empty()) brokers.insert(session.bootstrap().address());
  std::map<std::string, GroupDescription> groups;
  for (const Address& address : brokers) {
    auto client = session.client_for(address);
    if (!client) return std::unexpected(client.error());
    auto listed = list_broker_groups(**client);
    if (!listed) return std::unexpected(listed.error());
    for (GroupDescription& group : *listed) groups[group.group_id] = std::move(group);
  }
  if (options.json) {
    json out = json::array();
    for (const auto& [id, group] : groups) {
      out.push_back(
          {{"group", id}, {"protocol_type", group.protocol_type}, {"state", group.state}});
    }
    print_json({{"groups", out}});
    return {};
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& [id, group] : groups) rows.push_back({id, group.protocol_type, group.state});
  print_table({"GROUP", "PROTOCOL_TYPE", "STATE"}, rows);
  return {};
}

// ---- describe ----

// One partition of a described group: its committed offset, log end and owner.
struct PartitionLag {
  std::optional<std::int64_t> committed;
  PartitionOffset log_end;
  const GroupMember* owner = nullptr;

  std::optional<std::int64_t> log_end_offset() const {
    if (log_end.error_code != 0 || log_end.offset < 0) return std::nullopt;
    return log_end.offset;
  }
  std::optional<std::int64_t> lag() const {
    const auto end = log_end_offset();
    if (!committed || !end) return std::nullopt;
    return *end - *committed;
  }
};

// The committed and the assigned partitions, with their log end offsets from their leaders.
AdminResult<std::map<TopicPartition, PartitionLag>> partition_lags(
    AdminSession& session, const GroupDescription& description, const CommittedOffsets& committed) {
  std::map<TopicPartition, PartitionLag> lags;
  for (const auto& [partition, offset] : committed) lags[partition].committed = offset;
  for (const GroupMember& member : description.members) {
    for (const TopicPartition& partition : member.assignment) lags[partition].owner = &member;
  }
  if (lags.empty()) return lags;
  std::vector<TopicPartition> partitions;
  for (const auto& [partition, unused] : lags) partitions.push_back(partition);
  auto log_end = list_offsets_from_leaders(session, partitions, kTimestampLatest);
  if (!log_end) return std::unexpected(log_end.error());
  for (auto& [partition, lag] : lags) lag.log_end = log_end->at(partition);
  // A partition whose log end is unknown (a deleted topic) still shows its committed offset.
  if (auto ok = check_partition_errors(*log_end, "log end offsets not known"); !ok) {
    std::fprintf(stderr, "sluice: warning: %s\n", ok.error().message.c_str());
  }
  return lags;
}

std::string assignment_text(const std::vector<TopicPartition>& assignment) {
  std::string text;
  for (std::size_t index = 0; index < assignment.size(); ++index) {
    const bool new_topic = index == 0 || assignment[index - 1].topic != assignment[index].topic;
    if (new_topic) text += fmt::format("{}{}:", index == 0 ? "" : " ", assignment[index].topic);
    text += fmt::format("{}{}", new_topic ? "" : ",", assignment[index].partition);
  }
  return text;
}

void print_description_json(const GroupDescription& description, const Coordinator& coordinator,
                            const std::map<TopicPartition, PartitionLag>& lags) {
  json members = json::array();
  for (const GroupMember& member : description.members) {
    json assignment = json::array();
    for (const TopicPartition& partition : member.assignment) {
      assignment.push_back({{"topic", partition.topic}, {"partition", partition.partition}});
    }
    members.push_back({{"member_id", member.member_id},
                       {"group_instance_id",
                        member.group_instance_id ? json(*member.group_instance_id) : json(nullptr)},
                       {"client_id", member.client_id},
                       {"host", member.host},
                       {"assignment", assignment}});
  }
  json offsets = json::array();
  for (const auto& [partition, lag] : lags) {
    offsets.push_back({{"topic", partition.topic},
                       {"partition", partition.partition},
                       {"committed_offset", offset_json(lag.committed)},
                       {"log_end_offset", offset_json(lag.log_end_offset())},
                       {"lag", offset_json(lag.lag())},
                       {"member_id", lag.owner ? json(lag.owner->member_id) : json(nullptr)}});
  }
  print_json(
      {{"group", description.group_id},
       {"state", description.state},
       {"protocol_type", description.protocol_type},
       {"protocol", description.protocol},
       {"coordinator",
        {{"node_id", coordinator.node_id}, {"address", coordinator.client->address().to_string()}}},
       {"members", members},
       {"offsets", offsets}});
}

void print_description_table(const GroupDescription& description, const Coordinator& coordinator,
                             const std::map<TopicPartition, PartitionLag>& lags) {
  std::printf(
      "Group: %s  State: %s  Protocol type: %s  Protocol: %s  Members: %zu  Coordinator: %lld "
      "(%s)\n",
      description.group_id.c_str(), description.state.c_str(),
      or_dash(description.protocol_type).c_str(), or_dash(description.protocol).c_str(),
      description.members.size(), static_cast<long long>(coordinator.node_id),
      coordinator.client->address().to_string().c_str());
  if (!lags.empty()) {
    std::printf("\n");
    std::vector<std::vector<std::string>> rows;
    for (const auto& [partition, lag] : lags) {
      rows.push_back({partition.topic, std::to_string(partition.partition),
                      offset_text(lag.committed), offset_text(lag.log_end_offset()),
                      offset_text(lag.lag()), lag.owner ? lag.owner->member_id : "-",
                      lag.owner ? lag.owner->host : "-", lag.owner ? lag.owner->client_id : "-"});
    }
    print_table(
        {"TOPIC", "PARTITION", "COMMITTED", "LOG_END", "LAG", "MEMBER", "HOST", "CLIENT_ID"}, rows);
  }
  std::printf("\n");
  if (description.members.empty()) {
    std::printf("No active members.\n");
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const GroupMember& member : description.members) {
    rows.push_back({member.member_id, member.group_instance_id.value_or("-"), member.client_id,
                    member.host, assignment_text(member.assignment)});
  }
  print_table({"MEMBER", "INSTANCE", "CLIENT_ID", "HOST", "ASSIGNMENT"}, rows);
}

AdminResult<void> describe_group_action(AdminSession& session, const GroupCommandOptions& options) {
  auto coordinator = find_coordinator(session, options.group);
  if (!coordinator) return std::unexpected(coordinator.error());
  auto description = describe_group(*coordinator->client, options.group);
  if (!description) return std::unexpected(description.error());
  auto committed = fetch_committed_offsets(*coordinator->client, options.group);
  if (!committed) return std::unexpected(committed.error());
  // Kafka describes a group it does not know as Dead with no members: say so plainly.
  if (description->members.empty() && committed->empty()) {
    return std::unexpected(AdminError::from_kafka(
        kErrorGroupIdNotFound, "describe group '" + options.group + "'",
        "no such group: no members and no committed offsets (state " + description->state + ")"));
  }
  auto lags = partition_lags(session, *description, *committed);
  if (!lags) return std::unexpected(lags.error());
  if (options.json) {
    print_description_json(*description, *coordinator, *lags);
  } else {
    print_description_table(*description, *coordinator, *lags);
  }
  return {};
}

// ---- delete ----

// group -> error code of DeleteGroups on `coordinator`; a group the answer leaves out gets
// UNKNOWN_SERVER_ERROR.
AdminResult<std::map<std::string, std::int16_t>> delete_on_coordinator(
    AdminClient& coordinator, const std::vector<std::string>& groups) {
  StructValue request = AdminClient::new_request(protocol::kDeleteGroupsSchema);
  request.set("groups_names", string_array(groups));
  auto response = coordinator.call(protocol::kDeleteGroupsSchema, request);
  if (!response) return std::unexpected(response.error());
  std::map<std::string, std::int16_t> outcome;
  for (const std::string& group : groups) outcome[group] = kErrorUnknownServer;
  for (const StructValue& result : response->get_structs("results")) {
    const auto asked = outcome.find(result.get_string("group_id"));
    if (asked != outcome.end())
      asked->second = static_cast<std::int16_t>(result.get_int("error_code"));
  }
  return outcome;
}

AdminResult<void> delete_groups(AdminSession& session, const GroupCommandOptions& options) {
  std::vector<std::string> groups;  // in the order given, once each
  for (const std::string& group : options.groups) {
    if (std::ranges::find(groups, group) == groups.end()) groups.push_back(group);
  }
  std::map<std::string, std::int16_t> outcome;
  std::map<AdminClient*, std::vector<std::string>> by_coordinator;
  for (const std::string& group : groups) {
    auto coordinator = find_coordinator(session, group);
    if (!coordinator && coordinator.error().kind != AdminError::Kind::kafka) {
      return std::unexpected(coordinator.error());
    }
    if (!coordinator) {
      outcome[group] = coordinator.error().error_code;
    } else {
      by_coordinator[coordinator->client].push_back(group);
    }
  }
  for (const auto& [coordinator, coordinated] : by_coordinator) {
    auto deleted = delete_on_coordinator(*coordinator, coordinated);
    if (!deleted) return std::unexpected(deleted.error());
    outcome.merge(*deleted);
  }
  assert(outcome.size() == groups.size());
  std::size_t failed = 0;
  json out = json::array();
  for (const std::string& group : groups) {
    const std::int16_t error_code = outcome.at(group);
    out.push_back({{"group", group},
                   {"deleted", error_code == 0},
                   {"error", error_code == 0 ? json(nullptr) : json(kafka_error_name(error_code))},
                   {"error_code", error_code}});
    if (error_code != 0) {
      ++failed;
      std::fprintf(stderr, "sluice: delete group '%s': %s (%d)\n", group.c_str(),
                   std::string(kafka_error_name(error_code)).c_str(), error_code);
    } else if (!options.json) {
      std::printf("Deleted group '%s'.\n", group.c_str());
    }
  }
  if (options.json) print_json({{"groups", out}});
  if (failed == 0) return {};
  return std::unexpected(
      AdminError{.kind = AdminError::Kind::kafka,
                 .error_code = outcome.at(groups.front()),
                 .message = fmt::format("{} of {} groups not deleted", failed, groups.size())});
}

// ---- reset-offsets ----

// The partitions the --topic selections name; a bare topic means all of its partitions.
AdminResult<std::vector<TopicPartition>> selected_partitions(
    AdminClient& client, const std::vector<std::string>& selections) {
  std::set<TopicPartition> partitions;
  std::vector<std::string> whole_topics;
  for (const std::string& text : selections) {
    const auto selection = parse_topic_selection(text);
    assert(selection);  // CLI11 checked it (topic_selection_validator)
    if (selection->partitions.empty()) whole_topics.push_back(selection->topic);
    for (const std::int32_t partition : selection->partitions)
      partitions.insert({selection->topic, partition});
  }
  if (!whole_topics.empty()) {
    auto metadata = fetch_metadata(client, whole_topics);
    if (!metadata) return std::unexpected(metadata.error());
    for (const StructValue& topic : metadata->get_structs("topics")) {
      const std::string& name = topic.get_string("name");
      if (auto ok = check_error(topic, "find the partitions of topic '" + name + "'"); !ok) {
        return std::unexpected(ok.error());
      }
      for (const StructValue& partition : topic.get_structs("partitions")) {
        partitions.insert({name, static_cast<std::int32_t>(partition.get_int("partition_index"))});
      }
    }
  }
  return std::vector<TopicPartition>(partitions.begin(), partitions.end());
}

// The offset each partition moves to. --to-offset is clamped into [log start, log end] and
// --to-datetime past the last record goes to the log end, as kafka-consumer-groups does.
AdminResult<PartitionOffsets> reset_targets(AdminSession& session,
                                            std::span<const TopicPartition> partitions,
                                            const GroupCommandOptions& options) {
  if (options.to_earliest)
    return list_offsets_from_leaders(session, partitions, kTimestampEarliest);
  auto latest = list_offsets_from_leaders(session, partitions, kTimestampLatest);
  if (options.to_latest || !latest) return latest;
  const std::int64_t timestamp =
      options.to_offset ? kTimestampEarliest : *parse_datetime_ms(options.to_datetime);
  auto found = list_offsets_from_leaders(session, partitions, timestamp);
  if (!found) return std::unexpected(found.error());
  PartitionOffsets targets;
  for (const TopicPartition& partition : partitions) {
    const PartitionOffset end = latest->at(partition);
    const PartitionOffset at = found->at(partition);
    PartitionOffset& target = targets[partition];
    target.error_code = end.error_code != 0 ? end.error_code : at.error_code;
    if (options.to_offset) {
      target.offset = std::clamp(*options.to_offset, at.offset, std::max(at.offset, end.offset));
    } else {
      target.offset = at.offset >= 0 ? at.offset : end.offset;
    }
  }
  return targets;
}

// OffsetCommit of `targets` as a "simple" commit (no generation, no member), which the
// coordinator accepts only for a group without members. The result carries each partition's error.
AdminResult<PartitionOffsets> commit_offsets(AdminClient& coordinator, const std::string& group,
                                             const PartitionOffsets& targets) {
  StructValue request = AdminClient::new_request(protocol::kOffsetCommitSchema);
  request.set("group_id", group)
      .set("generation_id_or_member_epoch", protocol::int_value(-1))
      .set("member_id", std::string())
      .set("group_instance_id", protocol::Null{});
  StructValue* request_topic = nullptr;
  for (const auto& [partition, target] : targets) {  // sorted: one entry a topic
    assert(target.error_code == 0 && target.offset >= 0);
    if (request_topic == nullptr || request_topic->get_string("name") != partition.topic) {
      request_topic = &request.add("topics");
      request_topic->set("name", partition.topic);
    }
    request_topic->add("partitions")
        .set("partition_index", protocol::int_value(partition.partition))
        .set("committed_offset", target.offset)
        .set("committed_metadata", std::string());
  }
  auto response = coordinator.call(protocol::kOffsetCommitSchema, request);
  if (!response) return std::unexpected(response.error());
  PartitionOffsets committed = targets;
  for (auto& [partition, outcome] : committed)
    outcome.error_code = kErrorUnknownServer;  // until answered
  for (const StructValue& topic : response->get_structs("topics")) {
    for (const StructValue& partition : topic.get_structs("partitions")) {
      const auto answered =
          committed.find({topic.get_string("name"),
                          static_cast<std::int32_t>(partition.get_int("partition_index"))});
      if (answered == committed.end()) continue;
      answered->second.error_code = static_cast<std::int16_t>(partition.get_int("error_code"));
    }
  }
  return committed;
}

void print_reset(const GroupCommandOptions& options, const CommittedOffsets& previous,
                 const PartitionOffsets& outcome) {
  auto previous_offset = [&](const TopicPartition& partition) -> std::optional<std::int64_t> {
    const auto found = previous.find(partition);
    if (found == previous.end()) return std::nullopt;
    return found->second;
  };
  if (options.json) {
    json partitions = json::array();
    for (const auto& [partition, target] : outcome) {
      partitions.push_back(
          {{"topic", partition.topic},
           {"partition", partition.partition},
           {"previous_offset", offset_json(previous_offset(partition))},
           {"new_offset", target.offset},
           {"error",
            target.error_code == 0 ? json(nullptr) : json(kafka_error_name(target.error_code))}});
    }
    print_json(
        {{"group", options.group}, {"dry_run", options.dry_run}, {"partitions", partitions}});
    return;
  }
  std::printf(options.dry_run ? "Dry run: new offsets of group '%s' (nothing committed):\n\n"
                              : "New offsets of group '%s':\n\n",
              options.group.c_str());
  std::vector<std::vector<std::string>> rows;
  for (const auto& [partition, target] : outcome) {
    rows.push_back(
        {partition.topic, std::to_string(partition.partition),
         offset_text(previous_offset(partition)), std::to_string(target.offset),
         target.error_code == 0 ? "ok" : std::string(kafka_error_name(target.error_code))});
  }
  print_table({"TOPIC", "PARTITION", "OLD_OFFSET", "NEW_OFFSET", "RESULT"}, rows);
}

AdminResult<void> reset_offsets(AdminSession& session, const GroupCommandOptions& options) {
  const std::string context = "reset offsets of group '" + options.group + "'";
  auto coordinator = find_coordinator(session, options.group);
  if (!coordinator) return std::unexpected(coordinator.error());
  auto description = describe_group(*coordinator->client, options.group);
  if (!description) return std::unexpected(description.error());
  if (!description->inactive()) {
    return std::unexpected(AdminError{
        .kind = AdminError::Kind::refused,
        .message = fmt::format("{}: the group is active (state {}, {} member(s)); offsets can only "
                               "be reset while it is Empty: stop its consumers first",
                               context, description->state, description->members.size())});
  }
  auto partitions = selected_partitions(session.bootstrap(), options.topics);
  if (!partitions) return std::unexpected(partitions.error());
  auto targets = reset_targets(session, *partitions, options);
  if (!targets) return std::unexpected(targets.error());
  if (auto ok = check_partition_errors(*targets, context + ": cannot find the new offsets"); !ok)
    return ok;
  auto previous = fetch_committed_offsets(*coordinator->client, options.group);
  if (!previous) return std::unexpected(previous.error());
  PartitionOffsets outcome = std::move(*targets);
  if (!options.dry_run) {
    auto committed = commit_offsets(*coordinator->client, options.group, outcome);
    if (!committed) return std::unexpected(committed.error());
    outcome = std::move(*committed);
  }
  print_reset(options, *previous, outcome);
  return check_partition_errors(outcome, context + ": commit failed");
}

}  // namespace

CLI::App* GroupCommand::add_group_action(const char* name, const char* description,
                                         GroupAction action) {
  return add_action(name, description, options_, [this, action] {
    return run_admin_action(options_,
                            [&](AdminSession& session) { return action(session, options_); });
  });
}

void GroupCommand::add_reset_options(CLI::App& reset) {
  reset.add_option("group", options_.group, "Group id")->required();
  reset
      .add_option("--topic", options_.topics,
                  "TOPIC (all its partitions) or TOPIC:PARTITION[,PARTITION...]; repeatable")
      ->check(CLI::Validator(topic_selection_validator, "TOPIC[:P,P...]"))
      ->required();
  CLI::Option_group* target =
      reset.add_option_group("target", "Where to move the offsets (exactly one)");
  target->add_flag("--to-earliest", options_.to_earliest, "To each partition's log start offset");
  target->add_flag("--to-latest", options_.to_latest, "To each partition's log end offset");
  target
      ->add_option_function<std::int64_t>(
          "--to-offset", [this](const std::int64_t& offset) { options_.to_offset = offset; },
          "To this offset, clamped into each partition's [log start, log end]")
      ->check(CLI::NonNegativeNumber);
  target
      ->add_option(
          "--to-datetime", options_.to_datetime,
          "To each partition's first offset with a timestamp at or after this ISO 8601 time "
          "(2026-11-22T13:00:00Z, 2026-11-22T14:00:00.000+01:00; no zone: UTC), or its log "
          "end if there is none")
      ->check(CLI::Validator(datetime_validator, "ISO8601"));
  target->require_option(1);
  reset.add_flag("--dry-run", options_.dry_run, "Print the new offsets without committing them");
}

GroupCommand::GroupCommand(CLI::App& app)
    : AdminCommand(app, "group",
                   "Administer consumer groups on a Kafka-compatible broker (Sluice or Kafka) over "
                   "the Kafka protocol") {
  add_group_action("list", "List the consumer groups of every broker with protocol type and state",
                   list_groups);
  add_group_action("describe",
                   "Show a group's state and members, and for each partition it committed or is "
                   "assigned: committed offset, log end offset, lag and owning member",
                   describe_group_action)
      ->add_option("group", options_.group, "Group id")
      ->required();
  add_group_action("delete", "Delete groups without members, with their committed offsets",
                   delete_groups)
      ->add_option("groups", options_.groups, "Group id(s)")
      ->required();
  add_reset_options(*add_group_action("reset-offsets",
                                      "Commit new offsets for a group without members (Empty or "
                                      "Dead): the earliest, the latest, a given offset or the "
                                      "first at a time",
                                      reset_offsets));
}

}  // namespace sluice::runtime
