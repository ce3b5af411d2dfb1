// The open-loop pacer the load clients share: every message is sent, none before its due time, each
// stamped with that due time, and a sender ahead of its schedule sleeps at least kMinSleepNs.
#include "bench/peers/load_common.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice::bench {
namespace {

struct FakeProducer {
  std::atomic<std::uint64_t> outstanding{0};
};

TEST(Pacer, WakesAtTheDueTimeOrAfterTheMinimumSleep) {
  const Pacer pacer(1000.0, 0);  // one message per millisecond
  EXPECT_EQ(pacer.due_ns(3), 3'000'000);
  // Far ahead of schedule: wake when message 3 is due.
  EXPECT_EQ(pacer.wake_ns(3, 1'000'000), 3'000'000);
  // Due in 10 us: sleep the minimum instead and send what came due meanwhile.
  EXPECT_EQ(pacer.wake_ns(3, 2'990'000), 2'990'000 + Pacer::kMinSleepNs);
}

TEST(PacedSend, SendsEveryMessageOnTimeStampedWithItsDueTime) {
  keep_timer_slack_small();
  LoadOptions options;
  options.rate = 500'000;  // 2 us apart: far closer than the minimum sleep
  options.duration_s = 0.05;
  options.message_bytes = 64;
  std::vector<std::unique_ptr<FakeProducer>> producers;
  producers.push_back(std::make_unique<FakeProducer>());
  const std::int64_t start = now_ns();
  const Pacer pacer(options.rate, start);
  std::uint64_t expected_index = 0;
  std::uint64_t early = 0;
  std::uint64_t misstamped = 0;
  RoomSignal room(1'000'000);
  const std::uint64_t sent = paced_send(
      options, producers, room, start,
      [&](FakeProducer&, std::uint64_t index, std::int64_t intended_ns, std::string& payload) {
        EXPECT_EQ(index, expected_index);
        ++expected_index;
        if (now_ns() < intended_ns) ++early;
        if (intended_ns != pacer.due_ns(index) || payload_stamp(payload.data(), payload.size()) != intended_ns) {
          ++misstamped;
        }
        return SendOutcome::sent;
      });
  // Message i is due at start + i/rate; none due after the end is sent. The run ends when the clock
  // passes the end, so the last sleep (at least kMinSleepNs, longer when a loaded machine runs
  // something else meanwhile) may leave the final messages unsent: allow half the run.
  EXPECT_EQ(sent, expected_index);
  const auto scheduled = static_cast<std::uint64_t>(options.rate * options.duration_s);
  EXPECT_LE(sent, scheduled);
  EXPECT_GE(sent, scheduled / 2);
  EXPECT_EQ(early, 0u);
  EXPECT_EQ(misstamped, 0u);
}

TEST(PacedSend, RetriesAMessageTheClientRefusedWithTheSameDueTime) {
  LoadOptions options;
  options.rate = 10'000;
  options.duration_s = 10;
  options.count = 100;  // ends the run, 10 ms in
  std::vector<std::unique_ptr<FakeProducer>> producers;
  producers.push_back(std::make_unique<FakeProducer>());
  const std::int64_t start = now_ns();
  std::vector<std::int64_t> attempts_of_first;
  int refusals = 2;
  RoomSignal room(10);
  const std::uint64_t sent = paced_send(
      options, producers, room, start,
      [&](FakeProducer&, std::uint64_t index, std::int64_t intended_ns, std::string&) {
        if (index == 0) attempts_of_first.push_back(intended_ns);
        if (index == 0 && refusals-- > 0) return SendOutcome::retry;
        return SendOutcome::sent;
      });
  EXPECT_EQ(sent, 100u);
  ASSERT_EQ(attempts_of_first.size(), 3u);
  EXPECT_EQ(attempts_of_first[0], start);
  EXPECT_EQ(attempts_of_first[2], start);
}

// A full window: the sender waits for acks to free room (woken by RoomSignal::acknowledged), never
// sends past the window, and sends everything.
TEST(PacedSend, WaitsForAcksWhenTheWindowIsFullAndIsWokenByThem) {
  constexpr std::size_t kWindow = 64;
  LoadOptions options;
  options.duration_s = 10;
  options.count = 1'000;
  std::vector<std::unique_ptr<FakeProducer>> producers;
  producers.push_back(std::make_unique<FakeProducer>());
  FakeProducer& producer = *producers.front();
  RoomSignal room(kWindow);
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> peak{0};
  std::atomic<std::uint64_t> acked{0};
  // The "broker": acknowledges one message every 20 us, like a client's ack thread.
  std::thread acker([&] {
    while (!done.load() || producer.outstanding.load() > 0) {
      if (producer.outstanding.load() > 0) {
        acked.fetch_add(1);
        room.acknowledged(producer.outstanding);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  });
  const std::uint64_t sent = paced_send(
      options, producers, room, now_ns(),
      [&](FakeProducer& chosen, std::uint64_t, std::int64_t, std::string&) {
        const std::uint64_t now_outstanding = chosen.outstanding.fetch_add(1) + 1;
        peak.store(std::max(peak.load(), now_outstanding));
        return SendOutcome::sent;
      });
  done.store(true);
  acker.join();
  EXPECT_EQ(sent, 1'000u);
  EXPECT_EQ(acked.load(), 1'000u);
  EXPECT_LE(peak.load(), kWindow);
}

TEST(RoomSignal, AnAckBelowTheResumeMarkWakesTheWaitingSender) {
  RoomSignal room(64);
  std::atomic<std::uint64_t> outstanding{64};
  const std::uint64_t resume_at = room.resume_at();
  EXPECT_EQ(resume_at, 56u);
  std::thread acker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    for (int freed = 0; freed < 8; ++freed) room.acknowledged(outstanding);
  });
  const std::int64_t start = now_ns();
  // Waits (in 1 ms steps at most) until the count is at the mark: well before the deadline.
  while (outstanding.load() > resume_at) {
    room.wait(start + 5'000'000'000, [&] { return outstanding.load() <= resume_at; });
  }
  EXPECT_LT(now_ns() - start, 2'000'000'000);
  acker.join();
  // A wait whose condition already holds returns at once, without sleeping its millisecond: 200
  // of them take well under the 200 ms they would if each slept.
  const std::int64_t before = now_ns();
  for (int wait = 0; wait < 200; ++wait) room.wait(before + 5'000'000'000, [] { return true; });
  EXPECT_LT(now_ns() - before, 100'000'000);
}

}  // namespace
}  // namespace sluice::bench
