#include "core/env/buggify.h"

namespace sluice {

bool Buggify::site_enabled(std::string_view site) const {
  if (!enabled_) return false;
  // Top 2 bits zero <=> p = 0.25.
  return (hash64(site, seed_) >> 62) == 0;
}

bool Buggify::fire(std::string_view site) {
  if (!site_enabled(site)) return false;
  return random_.uniform(4) == 0;
}

}  // namespace sluice
