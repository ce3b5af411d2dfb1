#pragma once
// BUGGIFY, FoundationDB semantics: in a simulation run each site is enabled with p=0.25 (decided
// from the run's seed and the site's name, so independent of call order), and an enabled site
// fires with p=0.25 each time it is asked. In the runtime it is always off.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/env/random.h"

namespace sluice {

class Buggify {
 public:
  // A disabled Buggify: every site is always false (the runtime's).
  Buggify() : enabled_(false), seed_(0), random_(0) {}
  // An enabled one for a simulation run.
  explicit Buggify(std::uint64_t seed) : enabled_(true), seed_(seed), random_(mix64(seed)) {}

  bool enabled() const { return enabled_; }
  bool fire(std::string_view site);
  bool site_enabled(std::string_view site) const;

  // Canary switches: named bugs planted on purpose so tests can prove the checkers catch them.
  // Always off unless a simulation turns one on.
  void plant_bug(std::string name) { planted_[std::move(name)] = true; }
  bool bug(std::string_view name) const {
    return enabled_ && planted_.find(std::string(name)) != planted_.end();
  }

 private:
  bool enabled_;
  std::uint64_t seed_;
  Random random_;
  std::map<std::string, bool> planted_;
};

}  // namespace sluice
