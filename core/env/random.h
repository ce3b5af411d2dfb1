#pragma once
// Deterministic randomness: xoshiro256** seeded through splitmix64, with our own distribution
// helpers (the standard library's distributions differ between implementations, which would
// break seed replay across machines). One root seed is split into named sub-streams so that
// adding draws in one component does not shift the draws of another.

#include <cstdint>
#include <string_view>

namespace sluice {

class Random {
 public:
  explicit Random(std::uint64_t seed);

  std::uint64_t next_u64();
  // Uniform in [0, bound), unbiased (Lemire's method). bound must be > 0.
  std::uint64_t uniform(std::uint64_t bound);
  // Uniform in [low, high], inclusive.
  std::int64_t range(std::int64_t low, std::int64_t high);
  // Uniform in [0, 1).
  double uniform_double();
  bool bernoulli(double probability);
  // Exponentially distributed with the given mean.
  double exponential(double mean);
  // An independent stream derived from this one's seed and a name (does not advance this one).
  Random fork(std::string_view name) const;
  std::uint64_t seed() const { return seed_; }

 private:
  std::uint64_t seed_;
  std::uint64_t state_[4];
};

std::uint64_t hash64(std::string_view bytes, std::uint64_t seed = 0);
std::uint64_t mix64(std::uint64_t value);

}  // namespace sluice
