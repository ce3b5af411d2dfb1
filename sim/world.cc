#include "sim/world.h"

#include <cassert>
#include <utility>

namespace sluice::sim {

struct SimWorld::Node {
  std::string host;
  std::function<void(Env&)> main;
  std::unique_ptr<SimClock> clock;
  SimNodeNet* net = nullptr;  // owned by the network
  std::unique_ptr<SimDisk> disk;
  std::uint64_t incarnation = 0;
  // Per incarnation; the scope is declared last so it is destroyed first.
  std::unique_ptr<Random> random;
  std::unique_ptr<Env> env;
  std::unique_ptr<Scope> scope;
};

SimWorld::SimWorld(std::uint64_t seed, SimWorldOptions options)
    : seed_(seed),
      options_(std::move(options)),
      scheduler_(reactor_),
      random_(seed),
      crash_random_(random_.fork("crash")),
      buggify_(random_.fork("buggify").seed()),
      network_(std::make_unique<SimNetwork>(scheduler_, random_.fork("net"), options_.network)),
      control_scope_(std::make_unique<Scope>(scheduler_, "control")) {
  network_->set_faults(options_.network_faults);
  scheduler_.trace(mix64(seed));
}

SimWorld::~SimWorld() {
  // Fibers first (they own streams, files and references into everything else), then the
  // network and disks, and the scheduler last.
  control_scope_.reset();
  for (auto& node : nodes_) node->scope.reset();
  nodes_.clear();
  network_.reset();
}

SimWorld::Node& SimWorld::node_at(NodeId node) {
  assert(node < nodes_.size());
  return *nodes_[node];
}

const SimWorld::Node& SimWorld::node_at(NodeId node) const {
  assert(node < nodes_.size());
  return *nodes_[node];
}

NodeId SimWorld::add_node(std::string host, std::function<void(Env&)> main) {
  assert(nodes_.size() < options_.nodes_max);
  assert(!network_->has_host(host) && "host names are unique");
  auto node = std::make_unique<Node>();
  node->host = std::move(host);
  node->main = std::move(main);
  node->clock = std::make_unique<SimClock>(scheduler_);
  node->net = &network_->add_host(node->host);
  node->disk = std::make_unique<SimDisk>(scheduler_, random_.fork("disk/" + node->host),
                                         options_.disk_faults);
  const NodeId id = nodes_.size();
  nodes_.push_back(std::move(node));
  start_incarnation(*nodes_.back());
  return id;
}

void SimWorld::start_incarnation(Node& node) {
  assert(!node.scope);
  node.incarnation++;
  node.random = std::make_unique<Random>(
      random_.fork("node/" + node.host + "/" + std::to_string(node.incarnation)));
  node.env = std::make_unique<Env>(scheduler_, *node.clock, *node.net, *node.disk, *node.random,
                                   buggify_, Log(node.host, node.clock.get()));
  node.scope = std::make_unique<Scope>(scheduler_, node.host);
  scheduler_.trace(hash64(node.host, node.incarnation));
  Env* env = node.env.get();
  std::function<void(Env&)>* main = &node.main;
  node.scope->spawn(node.host + "/main", [env, main] { (*main)(*env); });
}

void SimWorld::crash(NodeId id) {
  Node& node = node_at(id);
  assert(node.scope && "crashing a node that is down");
  scheduler_.trace(hash64(node.host, 0xc4a5));
  // Synchronous: every fiber of the node has unwound when this returns, so nothing of the old
  // incarnation can touch the network or disk afterwards.
  node.scope.reset();
  node.env.reset();
  node.random.reset();
  network_->crash_host(node.host);
  node.disk->crash(crash_random_);
  assert(!is_up(id));
}

void SimWorld::restart(NodeId id) {
  Node& node = node_at(id);
  assert(!node.scope && "restarting a node that is up");
  start_incarnation(node);
  assert(is_up(id));
}

void SimWorld::pause(NodeId id) {
  Node& node = node_at(id);
  assert(node.scope);
  scheduler_.trace(hash64(node.host, 0x9a05e));
  node.scope->pause();
}

void SimWorld::resume(NodeId id) {
  Node& node = node_at(id);
  assert(node.scope);
  scheduler_.trace(hash64(node.host, 0x4e5));
  node.scope->resume();
}

bool SimWorld::is_up(NodeId id) const {
  return node_at(id).scope != nullptr;
}

bool SimWorld::is_paused(NodeId id) const {
  const Node& node = node_at(id);
  return node.scope != nullptr && node.scope->paused();
}

const std::string& SimWorld::host(NodeId id) const {
  return node_at(id).host;
}
SimDisk& SimWorld::disk(NodeId id) {
  return *node_at(id).disk;
}
SimClock& SimWorld::clock(NodeId id) {
  return *node_at(id).clock;
}

Env& SimWorld::env(NodeId id) {
  Node& node = node_at(id);
  assert(node.env && "the node is down");
  return *node.env;
}

// ---- Swarm ----

SwarmConfig SwarmConfig::from_seed(std::uint64_t seed) {
  Random random = Random(seed).fork("swarm");
  auto duration_ms = [&random](std::int64_t low, std::int64_t high) {
    return milliseconds(random.range(low, high));
  };
  SwarmConfig config;
  // Each kind draws its switch and its intensities whether on or not, so turning one kind on
  // never shifts the draws of another.
  config.latency_spikes = random.bernoulli(0.5);
  config.latency_spike_probability = 0.001 * static_cast<double>(random.range(1, 50));
  config.latency_spike_mean = duration_ms(5, 500);

  config.partitions = random.bernoulli(0.5);
  config.partition_interval_mean = duration_ms(1'000, 20'000);
  config.partition_duration_mean = duration_ms(100, 10'000);

  config.resets = random.bernoulli(0.5);
  config.reset_probability_per_write = 0.0001 * static_cast<double>(random.range(1, 100));

  config.refused_connects = random.bernoulli(0.5);
  config.refuse_probability_per_connect = 0.01 * static_cast<double>(random.range(1, 30));

  config.clogs = random.bernoulli(0.5);
  config.clog_interval_mean = duration_ms(1'000, 20'000);
  config.clog_duration_mean = duration_ms(10, 2'000);

  config.disk_read_errors = random.bernoulli(0.5);
  config.disk_read_error_probability = 0.0001 * static_cast<double>(random.range(1, 100));

  config.disk_latency = random.bernoulli(0.5);
  config.disk_latency_mean = microseconds(random.range(100, 50'000));

  config.crashes = random.bernoulli(0.5);
  config.crash_interval_mean = duration_ms(2'000, 60'000);

  config.pauses = random.bernoulli(0.5);
  config.pause_interval_mean = duration_ms(1'000, 30'000);
  config.pause_duration_mean = duration_ms(10, 5'000);

  config.clock_skew = random.bernoulli(0.5);
  config.clock_skew_ms_max = random.range(10, 600'000);
  return config;
}

}  // namespace sluice::sim
