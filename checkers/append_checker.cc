#include "checkers/append_checker.h"

#include <map>
#include <utility>

namespace sluice::checkers {

namespace {

using Key = std::pair<std::uint64_t, std::uint64_t>;  // client, sequence

std::string describe(const Key& key) {
  return "client " + std::to_string(key.first) + " sequence " + std::to_string(key.second);
}

constexpr std::size_t kViolationsReportedMax = 20;

void report(AppendCheckResult& result, std::string violation) {
  if (result.violations.size() < kViolationsReportedMax) {
    result.violations.push_back(std::move(violation));
  } else if (result.violations.size() == kViolationsReportedMax) {
    result.violations.push_back("... more violations not listed");
  }
}

}  // namespace

AppendCheckResult check_append_history(const std::vector<AppendOperation>& operations,
                                       const std::vector<LoggedRecord>& final_log) {
  AppendCheckResult result;
  std::map<Key, const AppendOperation*> sent;
  for (const AppendOperation& operation : operations) {
    const Key key{operation.client, operation.sequence};
    if (!sent.emplace(key, &operation).second) {
      report(result, "history error: " + describe(key) + " was sent twice");
    }
    if (operation.outcome == AppendOutcome::acked) result.acked++;
  }

  std::map<Key, std::uint64_t> position_of;
  std::map<std::uint64_t, std::uint64_t> highest_sequence_of_client;
  for (std::uint64_t index = 0; index < final_log.size(); ++index) {
    const LoggedRecord& record = final_log[index];
    const Key key{record.client, record.sequence};
    if (record.offset >= 0 && static_cast<std::uint64_t>(record.offset) != index) {
      report(result, "offset gap: the record at position " + std::to_string(index) + " reports offset " +
                         std::to_string(record.offset));
    }
    auto found = sent.find(key);
    if (found == sent.end()) {
      report(result, "phantom record at index " + std::to_string(index) + ": " + describe(key) +
                         " was never sent");
      continue;
    }
    if (found->second->data != record.data) {
      report(result, "corrupt record at index " + std::to_string(index) + ": " + describe(key) +
                         " holds other bytes than were sent");
    }
    if (!position_of.emplace(key, index).second) {
      report(result, "duplicate: " + describe(key) + " at indexes " +
                         std::to_string(position_of[key]) + " and " + std::to_string(index));
    }
    // Clients send one record at a time, so a record acknowledged at sequence s was in the log
    // before any later sequence was even sent: nothing with a higher sequence may precede it.
    // (A record with an unknown outcome may land late: its request can sit in the network
    // while the client has already moved on.)
    auto highest = highest_sequence_of_client.find(record.client);
    if (found->second->outcome == AppendOutcome::acked && highest != highest_sequence_of_client.end() &&
        highest->second > record.sequence) {
      report(result, "order: client " + std::to_string(record.client) + " sequence " +
                         std::to_string(record.sequence) + " was acknowledged, but sequence " +
                         std::to_string(highest->second) + ", sent after that, precedes it at index " +
                         std::to_string(index));
    }
    if (highest == highest_sequence_of_client.end() || highest->second < record.sequence) {
      highest_sequence_of_client[record.client] = record.sequence;
    }
    if (found->second->outcome != AppendOutcome::acked) result.unknown_found++;
  }

  for (const auto& [key, operation] : sent) {
    if (operation->outcome != AppendOutcome::acked) continue;
    auto position = position_of.find(key);
    if (position == position_of.end()) {
      report(result, "lost write: " + describe(key) + " was acknowledged at index " +
                         std::to_string(operation->index) + " but is not in the log");
      continue;
    }
    result.acked_found++;
    if (position->second != operation->index) {
      report(result, "inconsistent index: " + describe(key) + " was acknowledged at index " +
                         std::to_string(operation->index) + " but is at index " +
                         std::to_string(position->second));
    }
  }
  return result;
}

}  // namespace sluice::checkers
