#pragma once
// Helpers shared by the group state machine's unit and property tests.
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/group/group_state_machine.h"

namespace sluice::group::testing {

inline GroupConfig fast_config() {
  GroupConfig config;
  config.initial_rebalance_delay_ms = 0;
  return config;
}

inline JoinRequest join_request(RequestToken token, std::string member_id, std::int16_t version = 5,
                                std::optional<std::string> instance_id = std::nullopt,
                                std::vector<Protocol> protocols = {{"range", "sub"}},
                                std::int32_t session_timeout_ms = 10'000, std::int32_t rebalance_timeout_ms = 30'000) {
  JoinRequest request;
  request.token = token;
  request.version = version;
  request.member_id = std::move(member_id);
  request.group_instance_id = std::move(instance_id);
  request.client_id = "client";
  request.client_host = "/127.0.0.1";
  request.session_timeout_ms = session_timeout_ms;
  request.rebalance_timeout_ms = rebalance_timeout_ms;
  request.protocol_type = "consumer";
  request.protocols = std::move(protocols);
  return request;
}

template <typename Response>
std::optional<Response> response_for(const Effects& effects, RequestToken token) {
  for (const auto& effect : effects) {
    if (const auto* response = std::get_if<Response>(&effect); response != nullptr && response->token == token) {
      return *response;
    }
  }
  return std::nullopt;
}

inline bool has_persist(const Effects& effects) {
  for (const auto& effect : effects) {
    if (std::holds_alternative<PersistGroup>(effect)) return true;
  }
  return false;
}

}  // namespace sluice::group::testing
