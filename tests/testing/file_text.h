#pragma once
// Reads a whole env File as text, for tests of both worlds' disks.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/env/disk.h"

namespace sluice::testing {

inline std::string read_all(File& file) {
  auto size = file.size();
  EXPECT_TRUE(size.has_value());
  std::vector<std::byte> buffer(size.value_or(0));
  auto got = file.read_at(0, buffer);
  EXPECT_TRUE(got.has_value());
  return std::string(reinterpret_cast<const char*>(buffer.data()), got.value_or(0));
}

}  // namespace sluice::testing
