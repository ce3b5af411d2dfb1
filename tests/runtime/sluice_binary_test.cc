// The built `sluice` executable as an operator uses it: --version, usage errors, and `serve`
// answering a Kafka ApiVersions request and stopping cleanly on SIGTERM. Plain blocking sockets and
// processes here: this test stands outside the runtime.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/runtime/runtime_test_util.h"

#ifndef SLUICE_BINARY
#error "SLUICE_BINARY must name the sluice executable"
#endif

extern char** environ;

namespace sluice::runtime {
namespace {

using testing::TempDirectory;

// A child process whose stdout and stderr go to one file.
class Child {
 public:
  Child(const std::vector<std::string>& arguments, std::string output_path)
      : output_path_(std::move(output_path)) {
    std::vector<char*> argv;
    std::string binary = SLUICE_BINARY;
    argv.push_back(binary.data());
    std::vector<std::string> copies = arguments;
    for (auto& argument : copies) argv.push_back(argument.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, output_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    const int status =
        ::posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    EXPECT_EQ(status, 0) << "posix_spawn " << binary;
  }
  ~Child() {
    if (pid_ > 0 && !exit_code_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  // The exit code, or nullopt if it is still running after `timeout` (or died by a signal: -1).
  std::optional<int> wait_for_exit(std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!exit_code_) {
      int status = 0;
      const pid_t done = ::waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        break;
      }
      if (std::chrono::steady_clock::now() > until) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return exit_code_;
  }

  void signal(int signal_number) { ::kill(pid_, signal_number); }

  std::string output() const {
    std::ifstream file(output_path_);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  }

 private:
  std::string output_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

constexpr auto kExitTimeout = std::chrono::seconds(10);

// A port that was free a moment ago (the kernel does not hand it out again right away).
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// Connects to 127.0.0.1:port, retrying while the server starts. Returns the fd or -1.
int connect_with_retry(std::uint16_t port, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) return fd;
    ::close(fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

TEST(SluiceBinary, version_prints_the_version_and_exits_zero) {
  TempDirectory directory;
  Child child({"--version"}, directory / "out");
  EXPECT_EQ(child.wait_for_exit(kExitTimeout), 0);
  EXPECT_NE(child.output().find("sluice 0."), std::string::npos) << child.output();
}

TEST(SluiceBinary, help_exits_zero_and_describes_serve) {
  TempDirectory directory;
  Child child({"serve", "--help"}, directory / "out");
  EXPECT_EQ(child.wait_for_exit(kExitTimeout), 0);
  EXPECT_NE(child.output().find("--data-dir"), std::string::npos) << child.output();
  EXPECT_NE(child.output().find("--advertise"), std::string::npos) << child.output();
}

TEST(SluiceBinary, usage_errors_exit_two) {
  TempDirectory directory;
  const std::vector<std::vector<std::string>> bad_invocations = {
      {"serve", "--no-such-flag"},
      {"frobnicate"},
      {},
      {"serve", "--log-level", "loud"},
      {"serve", "--node-id", "-3"},
      {"serve", "--listen", "no-port-here", "--data-dir", directory / "data"},
  };
  for (const auto& arguments : bad_invocations) {
    Child child(arguments, directory / "out");
    EXPECT_EQ(child.wait_for_exit(kExitTimeout), 2) << child.output();
    EXPECT_FALSE(child.output().empty());
  }
}

TEST(SluiceBinary, serve_answers_api_versions_and_exits_zero_on_sigterm) {
  TempDirectory directory;
  const std::uint16_t port = free_port();
  const std::string data_dir = directory / "data";
  Child child({"serve", "--listen", "127.0.0.1:" + std::to_string(port), "--data-dir", data_dir,
               "--admin-listen", "127.0.0.1:0"},
              directory / "out");
  const int fd = connect_with_retry(port, std::chrono::seconds(10));
  ASSERT_GE(fd, 0) << child.output();
  // ApiVersions v0, correlation id 7, null client id: size, key 18, version 0, id, client id -1.
  const unsigned char request[] = {0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 7, 0xff, 0xff};
  ASSERT_EQ(::send(fd, request, sizeof(request), 0), static_cast<ssize_t>(sizeof(request)));
  unsigned char response[10] = {};
  std::size_t received = 0;
  while (received < sizeof(response)) {
    const ssize_t n = ::recv(fd, response + received, sizeof(response) - received, 0);
    ASSERT_GT(n, 0) << child.output();
    received += static_cast<std::size_t>(n);
  }
  // Frame size, correlation id 7, error code 0.
  EXPECT_EQ(response[7], 7);
  EXPECT_EQ(response[8], 0);
  EXPECT_EQ(response[9], 0);
  ::close(fd);
  EXPECT_EQ(::access(data_dir.c_str(), F_OK), 0);

  child.signal(SIGTERM);
  EXPECT_EQ(child.wait_for_exit(kExitTimeout), 0) << child.output();
  const std::string output = child.output();
  EXPECT_NE(output.find("listening on 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << output;
  EXPECT_NE(output.find("Kafka broker node 0"), std::string::npos) << output;
  EXPECT_NE(output.find("shutting down"), std::string::npos) << output;
  EXPECT_NE(output.find("partition logs closed"), std::string::npos) << output;
}

TEST(SluiceBinary, advertise_must_be_host_and_port) {
  TempDirectory directory;
  Child child({"serve", "--advertise", "nope", "--data-dir", directory / "data"},
              directory / "out");
  EXPECT_EQ(child.wait_for_exit(kExitTimeout), 2) << child.output();
  EXPECT_NE(child.output().find("--advertise"), std::string::npos) << child.output();
}

TEST(SluiceBinary, serve_on_a_taken_port_exits_one_with_a_clear_error) {
  TempDirectory directory;
  const int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(holder, 1), 0);
  socklen_t length = sizeof(address);
  ::getsockname(holder, reinterpret_cast<sockaddr*>(&address), &length);
  const std::string listen = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));

  Child child({"serve", "--listen", listen, "--data-dir", directory / "data", "--admin-listen",
               "127.0.0.1:0"},
              directory / "out");
  EXPECT_EQ(child.wait_for_exit(kExitTimeout), 1) << child.output();
  EXPECT_NE(child.output().find("address in use"), std::string::npos) << child.output();
  ::close(holder);
}

}  // namespace
}  // namespace sluice::runtime
