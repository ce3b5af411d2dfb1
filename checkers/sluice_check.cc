// sluice-check: checks a recorded Kafka client history (JSON lines, as History::write_json_lines
// writes it) with the built-in Jepsen-style checkers, and exports it as EDN or as Elle's
// list-append projection. Exit 0 = no anomaly, 1 = anomalies, 2 = bad usage or unreadable input.

#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "checkers/kafka_history.h"

namespace {

using namespace sluice::checkers;

constexpr int kExitValid = 0;
constexpr int kExitAnomalies = 1;
constexpr int kExitUsage = 2;

// Writes one export; false (after saying why) when the file cannot be written.
template <class Write>
bool write_file(const std::string& path, const char* what, Write&& write) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (out) write(out);
  out.flush();
  if (!out) {
    std::fprintf(stderr, "sluice-check: cannot write the %s to %s\n", what, path.c_str());
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sluice-check: Jepsen-style checks of a recorded Kafka client history"};
  std::string history_path;
  std::string elle_path;
  std::string edn_path;
  KafkaCheckOptions options;
  bool allow_unstable_groups = false;
  bool no_per_key_order = false;
  app.add_option("history", history_path, "history file, one JSON op per line ('-': stdin)")
      ->required();
  app.add_option("--elle-export", elle_path,
                 "write Elle's list-append projection (EDN) here, for `elle-cli -m list-append`");
  app.add_option("--edn", edn_path, "write the history as one EDN vector of op maps here");
  app.add_flag("--idempotent", options.idempotent_producers,
               "producers are idempotent: a value written twice is an anomaly");
  app.add_flag("--retention", options.retention_may_delete,
               "retention may have deleted a prefix of each partition");
  app.add_flag("--no-per-key-order", no_per_key_order, "skip the per-key order check");
  app.add_flag("--allow-unstable-groups", allow_unstable_groups,
               "do not require every group's final state to be Stable");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? kExitValid : kExitUsage;
  }
  options.check_per_key_order = !no_per_key_order;
  options.require_final_groups_stable = !allow_unstable_groups;

  std::ifstream file;
  if (history_path != "-") {
    file.open(history_path, std::ios::binary);
    if (!file) {
      std::fprintf(stderr, "sluice-check: cannot open %s\n", history_path.c_str());
      return kExitUsage;
    }
  }
  std::string error;
  std::optional<History> history = read_json_lines(history_path == "-" ? std::cin : file, &error);
  if (!history) {
    std::fprintf(stderr, "sluice-check: %s: %s\n", history_path.c_str(), error.c_str());
    return kExitUsage;
  }
  if (!elle_path.empty() && !write_file(elle_path, "Elle export", [&](std::ostream& out) {
        history->write_elle_list_append(out);
      })) {
    return kExitUsage;
  }
  if (!edn_path.empty() &&
      !write_file(edn_path, "EDN history", [&](std::ostream& out) { history->write_edn(out); })) {
    return kExitUsage;
  }

  const KafkaCheckResult result = check_kafka_history(*history, options);
  for (const Anomaly& anomaly : result.anomalies) {
    std::string ops;
    for (std::int64_t op : anomaly.ops) ops += (ops.empty() ? "" : ",") + std::to_string(op);
    std::printf("anomaly %s: %s [ops %s]\n", anomaly.type.c_str(), anomaly.description.c_str(),
                ops.c_str());
  }
  std::printf("%s: %zu ops, %s: %s\n", history_path.c_str(), history->ops().size(),
              result.ok() ? "valid" : "INVALID", result.summary().c_str());
  return result.ok() ? kExitValid : kExitAnomalies;
}
