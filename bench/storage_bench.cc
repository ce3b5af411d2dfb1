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

#include "core/env/sync.h"
#include "core/storage/partition_log.h"
#include "core/storage/record_batch.h"
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

// The physical limit: sequential pwrite of `size` bytes, then fdatasync, in a loop. `extend`
// appends to a fresh file as a log does (new blocks, size changes in every sync); otherwise the
// loop overwrites a 256 MiB region already allocated (the best case, as with pre-allocation).
void raw_pwrite_fdatasync(benchmark::State& state, bool extend) {
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
    offset += static_cast<std::int64_t>(size);
    if (!extend) offset %= kFileBytesMax;
  }
  ::close(fd);
  std::filesystem::remove(path);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.counters["syncs_per_second"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(raw_pwrite_fdatasync, append, true)
    ->Arg(1 << 10)->Arg(16 << 10)->Arg(64 << 10)->Arg(256 << 10)->Arg(1 << 20)->UseRealTime();
BENCHMARK_CAPTURE(raw_pwrite_fdatasync, overwrite, false)
    ->Arg(1 << 10)->Arg(16 << 10)->Arg(64 << 10)->Arg(256 << 10)->Arg(1 << 20)->UseRealTime();

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
BENCHMARK(BM_RuntimeFileWriteDatasync)->Arg(1 << 10)->Arg(64 << 10)->Arg(1 << 20)->UseRealTime();

// A batch of about `size` bytes: records of ~1 KiB (one record when smaller).
std::vector<std::byte> batch_of_size(std::size_t size) {
  storage::BatchSpec spec;
  const std::size_t record_bytes = std::min<std::size_t>(size, 1024);
  const std::size_t records = std::max<std::size_t>(1, size / (record_bytes + 16));
  for (std::size_t i = 0; i < records; ++i) {
    spec.records.push_back({std::nullopt, std::string(record_bytes, 'v'), {}, 0});
  }
  return storage::build_batch(spec);
}

// Durable appends (acknowledged after fdatasync) through PartitionLog: `state.range(1)` fibers
// append concurrently, so group commit shares fdatasyncs between them, as produce requests do.
void BM_PartitionLogDurableAppend(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const auto appenders = static_cast<int>(state.range(1));
  const std::string directory = bench_directory() + "/partition-append";
  std::filesystem::remove_all(directory);
  runtime::RuntimeEnvOptions options;
  options.handle_signals = false;
  runtime::RuntimeEnv runtime(options);
  std::int64_t batches = 0;
  std::int64_t datasyncs = 0;
  runtime.run_until_done([&](Env& env) {
    storage::LogConfig config;
    config.max_batch_bytes = size + (64 << 10);
    auto opened = storage::PartitionLog::open(env, directory, config);
    if (!opened) {
      state.SkipWithError("cannot open the partition log");
      return;
    }
    storage::PartitionLog& log = **opened;
    const std::vector<std::byte> prototype = batch_of_size(size);
    for (auto _ : state) {
      // One iteration: every appender appends one batch; they share the syncs.
      Scope round(env.scheduler().current_scope(), "round");
      std::vector<std::shared_ptr<FiberDone>> done;
      for (int i = 0; i < appenders; ++i) {
        done.push_back(round.spawn("appender", [&] {
          std::vector<std::byte> batch = prototype;
          if (!log.append(batch, 0)) state.SkipWithError("append failed");
        }));
      }
      for (auto& fiber : done) env.scheduler().join(*fiber);
      batches += appenders;
    }
    datasyncs = static_cast<std::int64_t>(log.stats().datasyncs);
    (void)log.close();
  });
  std::filesystem::remove_all(directory);
  state.SetBytesProcessed(batches * static_cast<std::int64_t>(batch_of_size(size).size()));
  state.SetItemsProcessed(batches);
  state.counters["batches_per_sync"] = datasyncs > 0 ? static_cast<double>(batches) / static_cast<double>(datasyncs) : 0;
}
BENCHMARK(BM_PartitionLogDurableAppend)
    ->ArgsProduct({{1 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20}, {1, 8}})
    ->UseRealTime();

// Reads of whole, CRC-verified batches from a warm log (page cache), 1 MiB per read.
void BM_PartitionLogRead(benchmark::State& state) {
  const std::string directory = bench_directory() + "/partition-read";
  std::filesystem::remove_all(directory);
  runtime::RuntimeEnvOptions options;
  options.handle_signals = false;
  runtime::RuntimeEnv runtime(options);
  std::int64_t bytes = 0;
  runtime.run_until_done([&](Env& env) {
    storage::LogConfig config;
    config.flush_messages = 1000000;  // fill fast; durability is not what this measures
    auto opened = storage::PartitionLog::open(env, directory, config);
    if (!opened) {
      state.SkipWithError("cannot open the partition log");
      return;
    }
    storage::PartitionLog& log = **opened;
    const std::vector<std::byte> prototype = batch_of_size(64 << 10);
    for (int i = 0; i < 1024; ++i) {  // 64 MiB
      std::vector<std::byte> batch = prototype;
      (void)log.append(batch, 0);
    }
    (void)log.flush_through(log.log_end_offset());
    std::int64_t offset = 0;
    for (auto _ : state) {
      auto read = log.read(offset, 1 << 20, log.high_watermark());
      if (!read || read->batch_count == 0) {
        offset = 0;
        continue;
      }
      bytes += static_cast<std::int64_t>(read->bytes.size());
      offset = read->next_offset;
    }
    (void)log.close();
  });
  std::filesystem::remove_all(directory);
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_PartitionLogRead)->UseRealTime();

}  // namespace
}  // namespace sluice
