// append_log: the log workload against the demo append-log service (core/demo/append_log.h),
// the foundation's proof that an acknowledged record survives crashes byte-identical.

#include "core/demo/append_log.h"
#include "scenarios/log_workload.h"

namespace sluice::scenarios {

namespace {

class AppendLogAdapter final : public LogClient {
 public:
  explicit AppendLogAdapter(demo::AppendLogClient client) : client_(std::move(client)) {}

  std::expected<std::uint64_t, std::string> append(std::uint64_t client, std::uint64_t sequence,
                                                   std::span<const std::byte> data, Instant deadline) override {
    return client_.append(client, sequence, data, deadline);
  }

  std::expected<std::vector<checkers::LoggedRecord>, std::string> read(std::uint64_t from,
                                                                      Instant deadline) override {
    auto records = client_.read(from, 500, deadline);
    if (!records) return std::unexpected(records.error());
    std::vector<checkers::LoggedRecord> logged;
    logged.reserve(records->size());
    for (auto& record : *records) {
      logged.push_back({record.client, record.sequence, std::string(as_text(record.data))});
    }
    return logged;
  }

 private:
  demo::AppendLogClient client_;
};

}  // namespace

ScenarioResult run_append_log(const ScenarioOptions& options) {
  LogWorkload workload;
  workload.server_main = [](Env& env) {
    demo::AppendLogOptions service_options;
    service_options.port = kLogServerPort;
    demo::run_append_log_node(env, service_options);
  };
  workload.connect = [](Env& env, const Address& address,
                        Instant deadline) -> std::expected<std::unique_ptr<LogClient>, std::string> {
    auto client = demo::AppendLogClient::connect(env, address, deadline);
    if (!client) return std::unexpected(std::string(to_string(client.error())));
    return std::make_unique<AppendLogAdapter>(std::move(*client));
  };
  return run_log_workload(options, workload);
}

}  // namespace sluice::scenarios
