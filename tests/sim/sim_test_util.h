#pragma once
// Helpers shared by the simulator tests.

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sim/world.h"

namespace sluice::sim::testing {

// Runs `body` in a control fiber of `world` until it returns; false if the world went idle first.
inline bool run_in_fiber(SimWorld& world, std::function<void()> body) {
  bool done = false;
  world.control_scope().spawn("test", [&done, body = std::move(body)] {
    body();
    done = true;
  });
  return world.run_until([&done] { return done; });
}

inline std::vector<std::byte> bytes_of(std::string_view text) {
  std::vector<std::byte> bytes(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) bytes[i] = static_cast<std::byte>(text[i]);
  return bytes;
}

inline std::string text_of(std::span<const std::byte> bytes) {
  std::string text(bytes.size(), '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) text[i] = static_cast<char>(bytes[i]);
  return text;
}

}  // namespace sluice::sim::testing
