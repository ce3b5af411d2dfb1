// Storage throughput next to the physical limit measured in the same run (not pass/fail):
// a raw pwrite + fdatasync loop (what the disk can do), and the same sizes through the runtime's
// File::append + File::datasync (the env path the partition log uses: fdatasync on the IO thread).
// Files go to $SLUICE_BENCH_DIR (default ./bench-data) — put it on the disk you care about.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/runtime_env.h"

namespace sluice {
namespace {

constexpr std::int64_t kFileBytesMax = 256 << 20;  // wrap around so the file stays bounded

std::string bench_directory() {
  const char* configured = std::getenv("SLUICE_BENCH_DIR");
  std::string directory = configured != nullptr ? configured : "bench-data";
  std::filesystem::create_directories(directory);
  return directory;
}

// The physical limit: sequential pwrite of `size` bytes, then fdatasync, in a loop.
void BM_RawPwriteFdatasync(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const std::string path = bench_directory() + "/raw.bin";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    state.SkipWithError("cannot open bench file");
    return;
  }
  std::vector<char> buffer(size, 'x');
  std::int64_t offset = 0;
  for (auto _ : state) {
    if (::pwrite(fd, buffer.data(), size, offset) != static_cast<ssize_t>(size) || ::fdatasync(fd) != 0) {
      state.SkipWithError("pwrite/fdatasync failed");
      break;
    }
    offset = (offset + static_cast<std::int64_t>(size)) % kFileBytesMax;
  }
  ::close(fd);
  std::filesystem::remove(path);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.counters["syncs_per_second"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RawPwriteFdatasync)->RangeMultiplier(8)->Range(1 << 10, 1 << 20)->UseRealTime();

// The env path: File::write_at then File::datasync through the runtime (IO thread + eventfd).
void BM_RuntimeFileWriteDatasync(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const std::string path = bench_directory() + "/env.bin";
  runtime::RuntimeEnvOptions options;
  options.handle_signals = false;
  runtime::RuntimeEnv runtime(options);
  runtime.run_until_done([&](Env& env) {
    auto file = env.disk().open(path, OpenMode::create);
    if (!file) {
      state.SkipWithError("cannot open bench file");
      return;
    }
    std::vector<std::byte> buffer(size, std::byte{'x'});
    std::uint64_t offset = 0;
    for (auto _ : state) {
      if (!(*file)->write_at(offset, buffer) || !(*file)->datasync()) {
        state.SkipWithError("write/datasync failed");
        break;
      }
      offset = (offset + size) % kFileBytesMax;
    }
    (*file)->close();
  });
  std::filesystem::remove(path);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.counters["syncs_per_second"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RuntimeFileWriteDatasync)->RangeMultiplier(8)->Range(1 << 10, 1 << 20)->UseRealTime();

}  // namespace
}  // namespace sluice
