// Fault schedules (scenarios/fault_schedule.h): the file format round-trips every kind exactly,
// malformed lines are rejected with their line number, and replaying a run's recorded schedule
// injects the same faults at the same times and fails the same way.
#include "scenarios/fault_schedule.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "core/env/log.h"
#include "scenarios/scenario.h"

namespace sluice::scenarios {
namespace {

FaultEvent event(Duration at, FaultKind kind, std::string host) {
  FaultEvent event;
  event.at = at;
  event.kind = kind;
  event.host = std::move(host);
  return event;
}

FaultSchedule every_kind() {
  FaultSchedule schedule;
  FaultEvent crash = event(Duration(1'234'567'891), FaultKind::crash, "broker");
  crash.duration = milliseconds(1499);
  schedule.push_back(crash);
  FaultEvent pause = event(seconds(2), FaultKind::pause, "broker");
  pause.duration = Duration(1);
  schedule.push_back(pause);
  FaultEvent partition = event(Duration(3'000'000'001), FaultKind::partition, "producer-host-2");
  partition.peer = "broker";
  partition.duration = seconds(3);
  schedule.push_back(partition);
  FaultEvent isolate = event(seconds(4), FaultKind::isolate, "broker");
  isolate.duration = milliseconds(250);
  schedule.push_back(isolate);
  FaultEvent clog = event(seconds(5), FaultKind::clog, "client-1");
  clog.duration = milliseconds(2000);
  schedule.push_back(clog);
  FaultEvent jump = event(seconds(6), FaultKind::clock_jump, "broker");
  jump.jump_ms = -5321;
  schedule.push_back(jump);
  FaultEvent flip = event(Duration(19'999'999'999), FaultKind::bit_flip, "broker");
  flip.path = "/data/topic-0/00000000000000000000.log";
  flip.byte_offset = 4097;
  flip.bit = 7;
  schedule.push_back(flip);
  FaultEvent stop = event(seconds(21), FaultKind::stop, "broker");
  stop.duration = milliseconds(750);
  schedule.push_back(stop);
  return schedule;
}

TEST(FaultScheduleTest, FileFormatRoundTripsEveryKindExactly) {
  const FaultSchedule schedule = every_kind();
  const std::string text = format_fault_schedule(schedule, {"a header", "another"});
  EXPECT_TRUE(text.starts_with("# a header\n# another\n"));
  EXPECT_NE(text.find("t=1.234567891 crash broker for=1.499000000\n"), std::string::npos);
  EXPECT_NE(text.find("t=3.000000001 partition producer-host-2 from=broker for=3.000000000\n"),
            std::string::npos);
  EXPECT_NE(text.find("t=6.000000000 clock_jump broker ms=-5321\n"), std::string::npos);
  EXPECT_NE(text.find("t=21.000000000 stop broker for=0.750000000\n"), std::string::npos);
  std::string error;
  const auto parsed = parse_fault_schedule(text, error);
  ASSERT_TRUE(parsed.has_value()) << error;
  EXPECT_EQ(*parsed, schedule);
  EXPECT_EQ(format_fault_schedule(*parsed, {"a header", "another"}), text);
}

TEST(FaultScheduleTest, ParsesShortFractionsCommentsAndBlankLines) {
  std::string error;
  const auto parsed = parse_fault_schedule(
      "# comment\n\n  t=1.5 clog broker for=2   # trailing comment\r\nt=7 pause broker for=0.001\n",
      error);
  ASSERT_TRUE(parsed.has_value()) << error;
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].at, milliseconds(1500));
  EXPECT_EQ((*parsed)[0].duration, seconds(2));
  EXPECT_EQ((*parsed)[1].kind, FaultKind::pause);
  EXPECT_EQ((*parsed)[1].duration, milliseconds(1));
}

TEST(FaultScheduleTest, RejectsMalformedLinesWithTheirNumber) {
  for (const char* bad :
       {"t=1 crash broker", "t=1 crash broker for=x", "1 crash broker for=1",
        "t=-1 crash broker for=1", "t=1 explode broker", "t=1 partition a for=1",
        "t=1 clock_jump broker ms=1.5", "t=1 bit_flip broker path=/x byte=1 bit=8",
        "t=1 clog broker for=1 ms=3", "t=1.1234567891 clog broker for=1", "t=1 crash"}) {
    std::string error;
    EXPECT_FALSE(parse_fault_schedule(std::string("t=0 clog broker for=1\n") + bad + "\n", error))
        << bad;
    EXPECT_TRUE(error.starts_with("line 2: ")) << bad << " -> " << error;
  }
}

TEST(FaultScheduleTest, ReplayingTheRecordedScheduleInjectsTheSameFaultsAndFailsTheSameWay) {
  set_log_level(LogLevel::off);
  ScenarioOptions options;
  options.seed = 1;
  options.bugs = {"storage_ack_before_fsync"};
  const ScenarioResult drawn = run_crash_restart(options);
  ASSERT_FALSE(drawn.ok());
  ASSERT_FALSE(drawn.fault_schedule.empty());
  options.fault_schedule = drawn.fault_schedule;
  const ScenarioResult replayed = run_crash_restart(options);
  EXPECT_EQ(replayed.fault_schedule, drawn.fault_schedule);
  EXPECT_EQ(replayed.violations, drawn.violations);
  EXPECT_EQ(replayed.summary, drawn.summary);

  // No faults at all: the canary needs a crash to lose an acknowledged write.
  options.fault_schedule = FaultSchedule{};
  const ScenarioResult quiet = run_crash_restart(options);
  EXPECT_TRUE(quiet.fault_schedule.empty());
  EXPECT_TRUE(quiet.ok()) << quiet.violations.front();
}

TEST(FaultScheduleTest, RecordingDoesNotChangeAnOrdinaryRun) {
  set_log_level(LogLevel::off);
  ScenarioOptions options;
  options.seed = 7;
  const ScenarioResult first = run_append_log(options);
  const ScenarioResult second = run_append_log(options);
  EXPECT_EQ(first.trace_hash, second.trace_hash);
  EXPECT_EQ(first.fault_schedule, second.fault_schedule);
}

}  // namespace
}  // namespace sluice::scenarios
