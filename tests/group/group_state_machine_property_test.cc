// Properties of the group state machine under random client behaviour: simulated consumers
// (dynamic v3 and v5, static v5) join, sync, heartbeat, leave, crash and restart while time jumps.
// Checked throughout: (a) per generation each of 8 partitions reaches at most one member;
// (b) in Stable every member holds its leader-assigned share of the current generation;
// (c) commits from a stale generation are rejected; every request token is answered at most once.
// Checked at the end: (d) with the surviving clients behaving like real ones, the group returns to
// Stable (or Empty) within bounded virtual time and every request has been answered.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/group/group_state_machine.h"
#include "tests/group/group_test_util.h"

namespace sluice::group {
namespace {

constexpr int kPartitions = 8;
constexpr std::int32_t kSessionTimeoutMs = 10'000;

struct Client {
  bool is_static = false;
  std::int16_t version = 5;
  std::string instance_id;
  bool alive = true;
  std::string member_id;
  std::int32_t generation = kNoGeneration;
  bool is_leader = false;
  std::vector<std::string> members;                  // the leader's view of the generation
  std::map<std::string, std::string> member_keys;    // member id -> stable key (instance id or member id)
  std::optional<RequestToken> join_token;
  std::optional<RequestToken> sync_token;
  bool needs_join = true;
  bool synced = false;
};

class Simulation {
 public:
  explicit Simulation(std::vector<Client> clients) : clients_(std::move(clients)) {}

  Group group{"g", config(), 42};
  std::int64_t now_ms = 0;

  static GroupConfig config() {
    GroupConfig result;
    result.new_member_join_timeout_ms = 20'000;
    return result;
  }

  std::size_t client_count() const { return clients_.size(); }
  Client& client(std::size_t index) { return clients_[index]; }

  void send_join(std::size_t index) {
    Client& c = clients_[index];
    if (!c.alive || c.join_token) return;
    RequestToken token = next_token_++;
    c.join_token = token;
    c.sync_token.reset();
    c.synced = false;
    std::optional<std::string> instance;
    if (c.is_static) instance = c.instance_id;
    auto request = testing::join_request(token, c.member_id, c.version, instance, {{"range", "sub"}},
                                         kSessionTimeoutMs, 15'000);
    apply(group.join(request, now_ms), token);
  }

  void send_sync(std::size_t index, std::vector<std::pair<std::string, Bytes>> assignments) {
    Client& c = clients_[index];
    if (!c.alive || c.join_token || c.sync_token || c.generation < 0 || c.member_id.empty()) return;
    RequestToken token = next_token_++;
    c.sync_token = token;
    std::optional<std::string> instance;
    if (c.is_static) instance = c.instance_id;
    if (c.is_leader) {
      std::map<std::string, std::string> expected;
      for (const auto& [member_id, assignment] : assignments) expected[c.member_keys[member_id]] = assignment;
      proposed_[{c.generation, c.member_id}] = expected;
    }
    apply(group.sync({token, c.generation, c.member_id, instance, {}, {}, std::move(assignments)}, now_ms), token);
  }

  // The leader's assignment: each partition to one member of the generation, or to nobody.
  std::vector<std::pair<std::string, Bytes>> make_assignment(const Client& c, const std::vector<int>& owners) const {
    std::map<std::string, Bytes> by_member;
    for (int partition = 0; partition < kPartitions; ++partition) {
      auto owner = static_cast<std::size_t>(owners[static_cast<std::size_t>(partition)]);
      if (owner < c.members.size()) by_member[c.members[owner]].push_back(static_cast<char>('0' + partition));
    }
    return {by_member.begin(), by_member.end()};
  }

  void send_heartbeat(std::size_t index) {
    Client& c = clients_[index];
    if (!c.alive || c.member_id.empty() || c.join_token || c.sync_token) return;
    RequestToken token = next_token_++;
    std::optional<std::string> instance;
    if (c.is_static) instance = c.instance_id;
    apply(group.heartbeat({token, c.generation, c.member_id, instance}, now_ms), token);
  }

  void send_leave(std::size_t index) {
    Client& c = clients_[index];
    if (!c.alive) return;
    RequestToken token = next_token_++;
    LeaveMember leaving{c.member_id, std::nullopt};
    if (c.is_static) leaving = {"", c.instance_id};  // LeaveGroup v3 by instance id
    apply(group.leave({token, {leaving}}, now_ms), token);
    forget(c);
    c.needs_join = false;
    c.alive = false;  // a consumer that leaves has closed
  }

  void crash(std::size_t index) {
    Client& c = clients_[index];
    forget(c);
    c.alive = false;
  }

  void restart(std::size_t index) {
    Client& c = clients_[index];
    if (c.alive) return;
    c.alive = true;
    c.needs_join = true;
  }

  void advance(std::int64_t delta_ms) {
    now_ms += delta_ms;
    apply(group.tick(now_ms), 0);
  }

  // (c): a commit naming any generation but the current one is refused.
  void check_stale_commit(std::size_t index, std::int32_t generation_back) {
    const Client& c = clients_[index];
    const std::int32_t stale = group.generation() - generation_back;
    if (stale < 0 || c.member_id.empty()) return;
    std::optional<std::string> instance;
    if (c.is_static) instance = c.instance_id;
    RC_ASSERT(group.commit_check(stale, c.member_id, instance, now_ms) != error_code::none);
  }

  // (b): in Stable every member's assignment is what the accepted leader assigned to it.
  void check_stable_assignments() const {
    if (group.state() != GroupState::stable) return;
    auto accepted = accepted_.find(group.generation());
    RC_ASSERT(accepted != accepted_.end());
    for (const auto& member : group.snapshot().members) {
      const std::string key = member.group_instance_id.value_or(member.member_id);
      auto expected = accepted->second.find(key);
      const Bytes want = expected == accepted->second.end() ? Bytes{} : expected->second;
      RC_ASSERT(member.assignment == want);
    }
  }

  // Drives the surviving clients as real consumers would until the group settles. True when it did.
  bool converge(std::int64_t limit_ms, bool stop_when_settled = true) {
    for (std::int64_t elapsed_ms = 0; elapsed_ms <= limit_ms; elapsed_ms += 1'000) {
      const bool heartbeat_due = elapsed_ms % 3'000 == 0;
      for (std::size_t index = 0; index < clients_.size(); ++index) act_like_a_client(index, heartbeat_due);
      if (stop_when_settled && settled()) return true;
      advance(1'000);
    }
    return settled();
  }

  bool all_answered() const { return outstanding_.empty(); }

 private:
  void act_like_a_client(std::size_t index, bool heartbeat_due) {
    Client& c = clients_[index];
    if (!c.alive) return;
    if (c.needs_join) {
      send_join(index);
    } else if (c.generation >= 0 && !c.synced && !c.sync_token && !c.join_token) {
      std::vector<int> owners;
      for (int partition = 0; partition < kPartitions; ++partition) {
        owners.push_back(c.members.empty() ? 0 : partition % static_cast<int>(c.members.size()));
      }
      send_sync(index, c.is_leader ? make_assignment(c, owners) : std::vector<std::pair<std::string, Bytes>>{});
    } else if (c.synced && heartbeat_due) {
      heartbeat_and_react(index);
    }
  }

  bool settled() const {
    std::size_t alive = 0;
    for (const auto& c : clients_) {
      if (!c.alive) continue;
      ++alive;
      if (!c.synced || c.generation != group.generation() || !group.has_member(c.member_id)) return false;
    }
    if (alive == 0) return group.state() == GroupState::empty;
    return group.state() == GroupState::stable && group.member_count() == alive;
  }

  static void forget(Client& c) {
    c.member_id.clear();  // a restarted process has no member id; a static one keeps its instance id
    c.generation = kNoGeneration;
    c.join_token.reset();
    c.sync_token.reset();
    c.synced = false;
    c.is_leader = false;
    c.needs_join = true;
  }

  Client* owner_of(RequestToken token) {
    for (auto& c : clients_) {
      if (c.join_token == token || c.sync_token == token) return &c;
    }
    return nullptr;
  }

  void apply(const Effects& effects, RequestToken sent) {
    if (sent != 0) outstanding_.insert(sent);
    for (const auto& effect : effects) {
      if (const auto* persist = std::get_if<PersistGroup>(&effect)) {
        on_persist(persist->snapshot);
        continue;
      }
      RequestToken token = std::visit(
          [](const auto& response) -> RequestToken {
            if constexpr (requires { response.token; }) return response.token;
            return 0;
          },
          effect);
      RC_ASSERT(outstanding_.erase(token) == 1U);  // answered exactly once
      if (const auto* join = std::get_if<JoinResponse>(&effect)) on_join(*join);
      if (const auto* sync = std::get_if<SyncResponse>(&effect)) on_sync(*sync);
      if (const auto* heartbeat = std::get_if<HeartbeatResponse>(&effect)) on_heartbeat(*heartbeat);
    }
    check_stable_assignments();
  }

  void on_persist(const GroupSnapshot& snapshot) {
    if (snapshot.members.empty()) return;
    // (a) the persisted generation's assignment gives each partition to at most one member, and a
    // generation is persisted with a single assignment (a static replacement may rename members).
    std::map<char, std::string> owner;
    std::map<std::string, std::string> by_key;
    for (const auto& member : snapshot.members) {
      const std::string key = member.group_instance_id.value_or(member.member_id);
      by_key[key] = member.assignment;
      for (char partition : member.assignment) RC_ASSERT(owner.emplace(partition, key).second);
    }
    auto [it, inserted] = accepted_.emplace(snapshot.generation, by_key);
    if (!inserted) RC_ASSERT(it->second == by_key);
    auto proposed = proposed_.find({snapshot.generation, snapshot.leader.value_or("")});
    if (inserted && proposed != proposed_.end()) {
      for (const auto& [key, assignment] : by_key) {
        auto want = proposed->second.find(key);
        RC_ASSERT(assignment == (want == proposed->second.end() ? Bytes{} : want->second));
      }
    }
  }

  void on_join(const JoinResponse& response) {
    Client* c = owner_of(response.token);
    if (c == nullptr) return;  // a crashed incarnation's request
    c->join_token.reset();
    if (response.error == error_code::member_id_required) {
      c->member_id = response.member_id;
      c->needs_join = true;
    } else if (response.error == error_code::none) {
      c->member_id = response.member_id;
      c->generation = response.generation;
      c->is_leader = response.leader == response.member_id;
      c->members.clear();
      c->member_keys.clear();
      for (const auto& member : response.members) {
        c->members.push_back(member.member_id);
        c->member_keys[member.member_id] = member.group_instance_id.value_or(member.member_id);
      }
      c->needs_join = false;
    } else {
      if (response.error != error_code::rebalance_in_progress) c->member_id.clear();
      c->generation = kNoGeneration;
      c->needs_join = true;
    }
  }

  void on_sync(const SyncResponse& response) {
    Client* c = owner_of(response.token);
    if (c == nullptr) return;
    c->sync_token.reset();
    if (response.error == error_code::none) {
      // (a) per generation, the partitions handed out are disjoint across members.
      const std::string key = c->is_static ? c->instance_id : c->member_id;
      for (char partition : response.assignment) {
        auto [it, inserted] = delivered_.emplace(std::pair{c->generation, partition}, key);
        RC_ASSERT(inserted || it->second == key);
      }
      c->synced = true;
      return;
    }
    if (response.error == error_code::unknown_member_id || response.error == error_code::fenced_instance_id) {
      c->member_id.clear();
    }
    c->generation = kNoGeneration;
    c->needs_join = true;
  }

  // Heartbeats are answered at once; heartbeat_and_react reads the answer.
  void on_heartbeat(const HeartbeatResponse& response) { last_heartbeat_error = response.error; }

 public:
  std::int16_t last_heartbeat_error = 0;

  void heartbeat_and_react(std::size_t index) {
    Client& c = clients_[index];
    if (!c.alive || c.member_id.empty() || c.join_token || c.sync_token) return;
    last_heartbeat_error = 0;
    send_heartbeat(index);
    if (last_heartbeat_error == error_code::none) return;
    if (last_heartbeat_error != error_code::rebalance_in_progress) c.member_id.clear();
    c.generation = last_heartbeat_error == error_code::rebalance_in_progress ? c.generation : kNoGeneration;
    c.needs_join = true;
    c.synced = false;
  }

 private:
  std::vector<Client> clients_;
  RequestToken next_token_ = 1;
  std::set<RequestToken> outstanding_;
  std::map<std::int32_t, std::map<std::string, std::string>> accepted_;  // generation -> key -> assignment
  std::map<std::pair<std::int32_t, std::string>, std::map<std::string, std::string>> proposed_;
  std::map<std::pair<std::int32_t, char>, std::string> delivered_;       // (generation, partition) -> key
};

enum class Step : std::uint8_t { join, sync, heartbeat, leave, crash, restart, advance, expire, commit };

struct Operation {
  Step step = Step::advance;
  std::size_t client = 0;
  std::int64_t delta_ms = 0;
  std::vector<int> owners;
  std::int32_t generation_back = 1;
};

rc::Gen<Operation> operation_generator(std::size_t clients) {
  return rc::gen::build<Operation>(
      rc::gen::set(&Operation::step,
                   rc::gen::weightedElement<Step>({{6, Step::join},
                                                   {5, Step::sync},
                                                   {5, Step::heartbeat},
                                                   {1, Step::leave},
                                                   {1, Step::crash},
                                                   {2, Step::restart},
                                                   {4, Step::advance},
                                                   {1, Step::expire},
                                                   {2, Step::commit}})),
      rc::gen::set(&Operation::client, rc::gen::inRange<std::size_t>(0, clients)),
      rc::gen::set(&Operation::delta_ms, rc::gen::inRange<std::int64_t>(0, 8'000)),
      rc::gen::set(&Operation::owners, rc::gen::container<std::vector<int>>(kPartitions, rc::gen::inRange(0, 5))),
      rc::gen::set(&Operation::generation_back, rc::gen::inRange(1, 4)));
}

void run(Simulation& sim, const Operation& op) {
  Client& c = sim.client(op.client);
  switch (op.step) {
    case Step::join: c.needs_join = true; sim.send_join(op.client); break;
    case Step::sync: sim.send_sync(op.client, c.is_leader ? sim.make_assignment(c, op.owners)
                                                           : std::vector<std::pair<std::string, Bytes>>{});
      break;
    case Step::heartbeat: sim.heartbeat_and_react(op.client); break;
    case Step::leave: sim.send_leave(op.client); break;
    case Step::crash: sim.crash(op.client); break;
    case Step::restart: sim.restart(op.client); break;
    case Step::advance: sim.advance(op.delta_ms); break;
    case Step::expire: sim.advance(kSessionTimeoutMs + 1); break;
    case Step::commit: sim.check_stale_commit(op.client, op.generation_back); break;
  }
}

RC_GTEST_PROP(GroupStateMachineProperty, random_clients_keep_invariants_and_converge, ()) {
  const auto client_count = *rc::gen::inRange<std::size_t>(1, 5);
  std::vector<Client> clients;
  for (std::size_t index = 0; index < client_count; ++index) {
    Client c;
    c.is_static = *rc::gen::arbitrary<bool>();
    c.version = c.is_static ? std::int16_t{5} : *rc::gen::element<std::int16_t>(3, 5);
    c.instance_id = "instance-" + std::to_string(index);
    clients.push_back(c);
  }
  Simulation sim(std::move(clients));
  const auto operations = *rc::gen::container<std::vector<Operation>>(operation_generator(client_count));
  for (const auto& op : operations) run(sim, op);
  // (d) the inputs stop; surviving clients behave. Bound: a sync deadline (15 s), a rebalance
  // timeout (15 s), the new-member timeout (20 s), session expiries of the dead (10 s), the
  // initial delay (3 s), several times over for cascades.
  RC_ASSERT(sim.converge(200'000));
  // Keep running so the stragglers' parked requests drain (dead members expire after their
  // session), then the group must still be settled.
  RC_ASSERT(sim.converge(60'000, false));
  RC_ASSERT(sim.all_answered());
  RC_CLASSIFY(sim.group.generation() >= 4, "4+ generations");
  RC_CLASSIFY(sim.group.state() == GroupState::empty, "ended Empty");
}

}  // namespace
}  // namespace sluice::group
