#pragma once
// Helpers shared by the runtime tests: a RuntimeEnv that leaves signals alone, a temporary
// directory removed afterwards, and a connected pair of streams.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>

#include "core/env/net.h"
#include "runtime/runtime_env.h"

namespace sluice::runtime::testing {

inline RuntimeEnvOptions test_env_options() {
  RuntimeEnvOptions options;
  options.handle_signals = false;  // Ctrl-C and ctest's timeout must still kill the test
  return options;
}

// A fresh directory under /tmp (mkdtemp), removed with everything in it on destruction.
class TempDirectory {
 public:
  TempDirectory() {
    std::string pattern = (std::filesystem::temp_directory_path() / "sluice-test-XXXXXX").string();
    const char* made = ::mkdtemp(pattern.data());
    if (made == nullptr) std::abort();
    path_ = made;
  }
  ~TempDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDirectory(const TempDirectory&) = delete;
  TempDirectory& operator=(const TempDirectory&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct StreamPair {
  std::unique_ptr<Listener> listener;
  std::unique_ptr<Stream> client;
  std::unique_ptr<Stream> server;
};

// Call inside a fiber: a listener on 127.0.0.1:0 and both ends of one connection to it.
inline StreamPair connected_pair(Env& env) {
  StreamPair pair;
  auto listener = env.net().listen(Address{"127.0.0.1", 0});
  EXPECT_TRUE(listener.has_value());
  if (!listener) return pair;
  pair.listener = std::move(*listener);
  auto client = env.net().connect(pair.listener->local_address(), env.deadline_after(seconds(5)));
  EXPECT_TRUE(client.has_value());
  if (!client) return pair;
  pair.client = std::move(*client);
  auto server = pair.listener->accept(env.deadline_after(seconds(5)));
  EXPECT_TRUE(server.has_value());
  if (server) pair.server = std::move(*server);
  return pair;
}

inline std::span<const std::byte> as_bytes(std::string_view text) {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

}  // namespace sluice::runtime::testing
