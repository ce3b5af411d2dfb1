#pragma once
// What every load client under bench/peers shares: the clock, a latency histogram, the open-loop
// pacer and the JSON report. The clients (kafka_load, redis_load, nats_load) differ only in how
// they talk to their system; ci/bench.sh (bench/bench.py) drives them and compares the numbers.
//
// Latency is timed from the INTENDED send time (open loop): message i of a run at R msgs/s is due
// at start + i/R whether or not the client managed to send it then, so a broker stall shows up in
// the latency of every message that queued behind it instead of silently slowing the sender down
// (coordinated omission). In a run without a rate the intended time is the moment of sending.
// Every payload starts with its intended time (8 bytes, CLOCK_MONOTONIC ns) so a consumer in the
// same process can time end-to-end latency.

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <sys/prctl.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cassert>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice::bench {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr std::size_t kTimestampBytes = 8;

inline std::int64_t now_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

// Sleeps until the monotonic time `deadline_ns`. The timer slack is cut to 1 ns first
// (keep_timer_slack_small) so the sleep overshoots by microseconds, not the default 50 us.
inline void sleep_until_ns(std::int64_t deadline_ns) {
  timespec deadline{};
  deadline.tv_sec = deadline_ns / 1'000'000'000;
  deadline.tv_nsec = deadline_ns % 1'000'000'000;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, nullptr) != 0) {
  }
}

inline void keep_timer_slack_small() {
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
}

// Log-linear histogram of nanosecond values, HdrHistogram-like: 64 linear sub-buckets per power
// of two, so a reported percentile is within 1/64 (1.6%) of the true value. One writer; merge()
// combines the histograms of several threads after they stopped.
class LatencyHistogram {
 public:
  void record(std::int64_t value_ns) {
    const auto value = static_cast<std::uint64_t>(std::max<std::int64_t>(value_ns, 0));
    ++counts_[bucket_of(value)];
    ++count_;
    max_ns_ = std::max(max_ns_, value);
  }
  void merge(const LatencyHistogram& other) {
    for (std::size_t index = 0; index < kBuckets; ++index) counts_[index] += other.counts_[index];
    count_ += other.count_;
    max_ns_ = std::max(max_ns_, other.max_ns_);
  }
  std::uint64_t count() const { return count_; }
  // The value at quantile q (0..1), as the upper edge of its bucket; 0 when empty.
  double quantile_ms(double q) const {
    assert(q >= 0 && q <= 1);
    if (count_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_ - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t index = 0; index < kBuckets; ++index) {
      seen += counts_[index];
      if (seen >= rank) return static_cast<double>(std::min(upper_edge(index), max_ns_)) / 1e6;
    }
    return static_cast<double>(max_ns_) / 1e6;
  }
  double max_ms() const { return static_cast<double>(max_ns_) / 1e6; }

 private:
  static constexpr std::size_t kSubBits = 6;  // 64 sub-buckets per power of two
  static constexpr std::size_t kSub = std::size_t{1} << kSubBits;
  static constexpr std::size_t kBuckets = (64 - kSubBits + 1) * kSub;

  static std::size_t bucket_of(std::uint64_t value) {
    if (value < kSub) return static_cast<std::size_t>(value);
    const auto magnitude = static_cast<std::size_t>(63 - std::countl_zero(value));  // >= kSubBits
    const std::size_t shift = magnitude - kSubBits;
    const auto sub = static_cast<std::size_t>(value >> shift) - kSub;  // 0..kSub-1
    return (shift + 1) * kSub + sub;
  }
  static std::uint64_t upper_edge(std::size_t bucket) {
    if (bucket < kSub) return bucket;
    const std::size_t shift = bucket / kSub - 1;
    const std::uint64_t sub = bucket % kSub + kSub;
    return ((sub + 1) << shift) - 1;
  }

  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ns_ = 0;
};

// The options every client takes; each adds its own connection options.
struct LoadOptions {
  double duration_s = 5;
  double rate = 0;  // messages/s over all producers; 0: as fast as the window allows
  std::uint64_t count = 0;  // > 0: stop after this many messages (or at the duration, if sooner)
  std::size_t message_bytes = 100;
  std::size_t partitions = 1;  // partitions, or streams/subjects for the peers
  std::size_t producers = 1;
  std::size_t window = 0;      // outstanding (unacknowledged) messages per producer; 0: the client's default
  std::size_t keys = 0;        // > 0: keyed messages, key = index % keys, partition chosen by key hash
  bool end_to_end = false;     // also consume what is produced and time it end to end
  bool retention = false;      // the system may delete old messages: stored <= acked, not ==
  double drain_timeout_s = 30; // after the sends, how long acks (and consumption) may take
  std::string run_id = "run";  // names the run's topic/streams
  bool json = false;
};

inline void add_load_options(CLI::App& app, LoadOptions& options) {
  app.add_option("--duration-s", options.duration_s, "Seconds of sending")->capture_default_str();
  app.add_option("--rate", options.rate, "Messages/s over all producers (0: unlimited)")->capture_default_str();
  app.add_option("--count", options.count, "Stop after this many messages (0: by duration only)")
      ->capture_default_str();
  app.add_option("--message-bytes", options.message_bytes, "Bytes of each message value")
      ->check(CLI::Range(std::size_t{kTimestampBytes}, std::size_t{16} << 20))
      ->capture_default_str();
  app.add_option("--partitions", options.partitions, "Partitions (streams) written round-robin or by key")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--producers", options.producers, "Producer connections")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--window", options.window, "Unacknowledged messages per producer (0: default)")
      ->capture_default_str();
  app.add_option("--keys", options.keys, "Distinct keys (0: unkeyed, round-robin)")->capture_default_str();
  app.add_flag("--end-to-end", options.end_to_end, "Consume what is produced; time it end to end");
  app.add_flag("--retention", options.retention, "Old messages may be deleted: check 0 < stored <= acked");
  app.add_option("--drain-timeout-s", options.drain_timeout_s, "Seconds allowed for the last acks")
      ->capture_default_str();
  app.add_option("--run-id", options.run_id, "Names this run's topic or streams")->capture_default_str();
  app.add_flag("--json", options.json, "Print one JSON object");
}

// Which partition message `index` of a producer goes to: by key hash when keyed, else round-robin.
inline std::size_t partition_of(const LoadOptions& options, std::uint64_t index) {
  if (options.keys == 0) return static_cast<std::size_t>(index % options.partitions);
  const std::uint64_t key = index % options.keys;
  return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL >> 32) % options.partitions);
}

inline std::string key_of(const LoadOptions& options, std::uint64_t index) {
  return "key-" + std::to_string(index % options.keys);
}

// A payload of `bytes` whose first 8 bytes are stamped per message (stamp_payload).
inline std::string make_payload(std::size_t bytes) {
  std::string payload(bytes, 'x');
  for (std::size_t index = kTimestampBytes; index < bytes; ++index) {
    payload[index] = static_cast<char>('a' + index % 26);
  }
  return payload;
}

inline void stamp_payload(std::string& payload, std::int64_t intended_ns) {
  assert(payload.size() >= kTimestampBytes);
  std::memcpy(payload.data(), &intended_ns, kTimestampBytes);
}

inline std::int64_t payload_stamp(const void* data, std::size_t length) {
  if (length < kTimestampBytes) return 0;
  std::int64_t stamp = 0;
  std::memcpy(&stamp, data, kTimestampBytes);
  return stamp;
}

// The open-loop schedule: message i is due at start + i / rate. Without a rate every message is
// due when it is sent.
//
// A sender ahead of its schedule sleeps at least kMinSleepNs (wake_ns), then sends every message
// that came due meanwhile. Sleeping until each single message was due (0.77 us apart at 1.3M
// msgs/s) made the Kafka client spend 45% of its CPU in nanosleep and clock_gettime on this
// 2-vCPU machine, CPU the system under test then lacked. Each message is still timed from its own
// due time, so the quantum shows in the latency measured (at most 0.1 ms), it is never hidden.
class Pacer {
 public:
  static constexpr std::int64_t kMinSleepNs = 100'000;

  Pacer(double rate, std::int64_t start_ns) : rate_(rate), start_ns_(start_ns) {}
  bool paced() const { return rate_ > 0; }
  std::int64_t due_ns(std::uint64_t index) const {
    assert(paced());
    return start_ns_ + static_cast<std::int64_t>(static_cast<double>(index) * 1e9 / rate_);
  }
  // When a sender at `now` whose next message is `index` should wake.
  std::int64_t wake_ns(std::uint64_t index, std::int64_t now) const {
    return std::max(due_ns(index), now + kMinSleepNs);
  }

 private:
  double rate_;
  std::int64_t start_ns_;
};

// Each producer's window (its unacknowledged messages, at most window()), and how the sender
// waits when every window is full. Polling for room (a 50 us sleep, then look again) cost a
// saturating client some 20,000 wake-ups a second, nearly all finding the window still full, on a
// 2-vCPU machine where that CPU is the broker's. Instead an ack that frees an eighth of its
// producer's window (resume_at) wakes the sender, so a full window costs one wake-up per batch of
// acks. A wait never lasts longer than 1 ms: a wake-up raced away, or acks that stop, cost at most
// that.
class RoomSignal {
 public:
  explicit RoomSignal(std::size_t window)
      : window_(window), resume_at_(window - std::max<std::size_t>(window / 8, 1)) {}
  std::size_t window() const { return window_; }
  // The outstanding count at or below which an ack wakes a waiting sender.
  std::uint64_t resume_at() const { return resume_at_; }
  // Ack side: one of a producer's `outstanding` messages was acknowledged.
  void acknowledged(std::atomic<std::uint64_t>& outstanding) {
    const std::uint64_t left = outstanding.fetch_sub(1, std::memory_order_acq_rel) - 1;
    if (left > resume_at_) return;
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the one in wait()
    if (!waiting_.load(std::memory_order_relaxed)) return;
    {
      const std::lock_guard lock(mutex_);
      waiting_.store(false, std::memory_order_relaxed);
    }
    wake_.notify_one();
  }
  // Sender side: unless has_room() holds once the wait is announced, sleeps until an ack wakes it,
  // 1 ms passes or `deadline_ns` comes.
  template <typename HasRoom>
  void wait(std::int64_t deadline_ns, HasRoom has_room) {
    std::unique_lock lock(mutex_);
    waiting_.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // the count is read after the flag is set
    if (!has_room()) {
      const std::int64_t until = std::min(deadline_ns, now_ns() + 1'000'000);
      wake_.wait_until(lock, std::chrono::steady_clock::time_point(std::chrono::nanoseconds(until)),
                       [&] { return !waiting_.load(std::memory_order_relaxed); });
    }
    waiting_.store(false, std::memory_order_relaxed);
  }

 private:
  const std::size_t window_;
  const std::uint64_t resume_at_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<bool> waiting_{false};
};

// What a client's send of one message did: sent (the next message), retry (the client's queue is
// full: the same message again shortly) or stop (an error; the caller says which).
enum class SendOutcome : std::uint8_t { sent, retry, stop };

// The open-loop send loop of the windowed clients (Kafka, NATS): message `index` is due at its
// Pacer time (now, without a rate), goes to the first producer from a round-robin start whose
// `outstanding` count is under room.window(), with the due time stamped into `payload`, through
// `send(producer, index, intended_ns, payload)`. With every window full it waits on `room`, which
// the producers' ack handlers signal (RoomSignal::acknowledged). Ends at the run's duration or count;
// returns how many messages were sent.
template <typename Producer, typename Send>
std::uint64_t paced_send(const LoadOptions& options, std::vector<std::unique_ptr<Producer>>& producers,
                         RoomSignal& room, std::int64_t start_ns, Send send) {
  const std::size_t window = room.window();
  const Pacer pacer(options.rate, start_ns);
  const auto end_ns = start_ns + static_cast<std::int64_t>(options.duration_s * 1e9);
  std::string payload = make_payload(options.message_bytes);
  std::uint64_t index = 0;
  std::size_t next_producer = 0;
  // Paced, the clock is read again only once the messages due by its last reading are sent.
  std::int64_t now = now_ns();
  for (;;) {
    if (!pacer.paced()) now = now_ns();
    if (now >= end_ns) break;
    std::int64_t intended_ns = now;
    if (pacer.paced()) {
      intended_ns = pacer.due_ns(index);
      if (intended_ns >= end_ns) break;
      if (intended_ns > now) {
        now = now_ns();
        if (intended_ns > now) {
          sleep_until_ns(pacer.wake_ns(index, now));
          now = now_ns();
        }
        continue;
      }
    }
    Producer* chosen = nullptr;
    for (std::size_t tried = 0; tried < producers.size() && chosen == nullptr; ++tried) {
      Producer& candidate = *producers[(next_producer + tried) % producers.size()];
      if (candidate.outstanding.load(std::memory_order_acquire) < window) {
        chosen = &candidate;
        next_producer = (next_producer + tried + 1) % producers.size();
      }
    }
    if (chosen == nullptr) {
      room.wait(end_ns, [&] {
        return std::any_of(producers.begin(), producers.end(), [&](const auto& producer) {
          return producer->outstanding.load(std::memory_order_relaxed) < window;
        });
      });
      now = now_ns();
      continue;
    }
    stamp_payload(payload, intended_ns);
    const SendOutcome outcome = send(*chosen, index, intended_ns, payload);
    if (outcome == SendOutcome::stop) break;
    if (outcome == SendOutcome::retry) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      now = now_ns();
      continue;
    }
    ++index;
    if (options.count > 0 && index >= options.count) break;
  }
  return index;
}

// What a run measured. acked counts the messages the system confirmed; stored is what it holds
// afterwards (read back through its own API), which must equal acked.
struct RunResult {
  std::uint64_t sent = 0;
  std::uint64_t acked = 0;
  std::uint64_t failed = 0;
  std::int64_t stored = -1;  // -1: not checked
  std::uint64_t consumed = 0;
  std::int64_t first_send_ns = 0;
  std::int64_t last_ack_ns = 0;
  LatencyHistogram ack_latency;
  LatencyHistogram end_to_end_latency;
  std::string first_error;
};

inline int report(const char* tool, const LoadOptions& options, const RunResult& result,
                  nlohmann::json extra = nlohmann::json::object()) {
  using nlohmann::json;
  const double elapsed_s =
      result.last_ack_ns > result.first_send_ns
          ? static_cast<double>(result.last_ack_ns - result.first_send_ns) / 1e9
          : 0;
  json out = {{"tool", tool},
              {"message_bytes", options.message_bytes},
              {"partitions", options.partitions},
              {"producers", options.producers},
              {"rate_target", options.rate},
              {"sent", result.sent},
              {"acked", result.acked},
              {"failed", result.failed},
              {"stored", result.stored},
              {"elapsed_s", elapsed_s},
              {"msgs_per_s", elapsed_s > 0 ? static_cast<double>(result.acked) / elapsed_s : 0},
              {"mb_per_s", elapsed_s > 0 ? static_cast<double>(result.acked * options.message_bytes) / elapsed_s / 1e6 : 0}};
  if (result.ack_latency.count() > 0) {
    out["ack_p50_ms"] = result.ack_latency.quantile_ms(0.50);
    out["ack_p99_ms"] = result.ack_latency.quantile_ms(0.99);
    out["ack_p999_ms"] = result.ack_latency.quantile_ms(0.999);
    out["ack_max_ms"] = result.ack_latency.max_ms();
  }
  if (options.end_to_end) {
    out["consumed"] = result.consumed;
    if (result.end_to_end_latency.count() > 0) {
      out["e2e_p50_ms"] = result.end_to_end_latency.quantile_ms(0.50);
      out["e2e_p99_ms"] = result.end_to_end_latency.quantile_ms(0.99);
      out["e2e_p999_ms"] = result.end_to_end_latency.quantile_ms(0.999);
      out["e2e_max_ms"] = result.end_to_end_latency.max_ms();
    }
  }
  if (!result.first_error.empty()) out["first_error"] = result.first_error;
  for (auto& [name, value] : extra.items()) out[name] = value;
  const auto acked = static_cast<std::int64_t>(result.acked);
  const bool counted = options.retention ? result.stored > 0 && result.stored <= acked : result.stored == acked;
  const bool consumed_all = !options.end_to_end || result.consumed == result.acked;
  const bool ok = result.failed == 0 && result.acked == result.sent && counted && consumed_all;
  out["ok"] = ok;
  if (options.json) {
    std::printf("%s\n", out.dump().c_str());
  } else {
    for (auto& [name, value] : out.items()) std::printf("%-14s %s\n", name.c_str(), value.dump().c_str());
  }
  if (!ok) {
    std::fprintf(stderr, "%s: acked %llu of %llu sent, %llu failed, stored %lld, consumed %llu%s%s\n", tool,
                 static_cast<unsigned long long>(result.acked), static_cast<unsigned long long>(result.sent),
                 static_cast<unsigned long long>(result.failed), static_cast<long long>(result.stored),
                 static_cast<unsigned long long>(result.consumed), result.first_error.empty() ? "" : ": ",
                 result.first_error.c_str());
  }
  return ok ? kExitOk : kExitFailure;
}

// A consume run's report: it reads back everything stored (so report() checks consumed ==
// stored) and adds the read rate, `bytes` of message values from first send to last read.
inline int report_consume(const char* tool, LoadOptions options, const RunResult& result,
                          std::uint64_t bytes) {
  options.end_to_end = true;
  const double elapsed_s =
      result.last_ack_ns > result.first_send_ns
          ? static_cast<double>(result.last_ack_ns - result.first_send_ns) / 1e9
          : 0;
  return report(tool, options, result,
                {{"mode", "consume"},
                 {"consumed_mb_per_s", elapsed_s > 0 ? static_cast<double>(bytes) / elapsed_s / 1e6 : 0}});
}

}  // namespace sluice::bench
