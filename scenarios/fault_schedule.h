#pragma once
// A fault schedule: the faults the fault driver injected in one run (or is told to inject), in
// order, each at a virtual time since the driver started. `sluice-sim run --minimize` shrinks a
// failing seed's schedule; `--schedule FILE` replays one. The file format (one event a line):
//
//   t=SECONDS crash HOST for=SECONDS
//   t=SECONDS pause HOST for=SECONDS
//   t=SECONDS partition HOST from=PEER for=SECONDS   (HOST cut off from PEER, both ways)
//   t=SECONDS isolate HOST for=SECONDS
//   t=SECONDS clog HOST for=SECONDS
//   t=SECONDS clock_jump HOST ms=MILLIS
//   t=SECONDS bit_flip HOST path=PATH byte=OFFSET bit=0..7
//   t=SECONDS stop HOST for=SECONDS   (a graceful stop, as on SIGTERM: drain, close, then down)
//
// SECONDS is a decimal with up to 9 fractional digits (exact nanoseconds); `#` starts a comment.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/env/time.h"

namespace sluice::scenarios {

enum class FaultKind : std::uint8_t {
  crash,
  pause,
  partition,
  isolate,
  clog,
  clock_jump,
  bit_flip,
  stop
};

struct FaultEvent {
  Duration at{};  // virtual time since the fault driver started
  FaultKind kind = FaultKind::crash;
  std::string host;          // the node or host the fault hits
  std::string peer;          // partition: the other side
  Duration duration{};       // crash, pause, partition, isolate, clog
  std::int64_t jump_ms = 0;  // clock_jump
  std::string path;          // bit_flip
  std::uint64_t byte_offset = 0;
  int bit = 0;
  bool operator==(const FaultEvent&) const = default;
};

using FaultSchedule = std::vector<FaultEvent>;

const char* fault_kind_name(FaultKind kind);
// One line in the file format above (no newline).
std::string format_fault_event(const FaultEvent& event);
// Parses one line; nullopt (and `error` set) when malformed. Blank/comment lines are not events.
std::optional<FaultEvent> parse_fault_event(const std::string& line, std::string& error);
// A whole file's text: `header` lines are written as `# ` comments first.
std::string format_fault_schedule(const FaultSchedule& schedule,
                                  const std::vector<std::string>& header = {});
// Parses a whole file's text; nullopt (and `error` set, with the line number) when malformed.
std::optional<FaultSchedule> parse_fault_schedule(const std::string& text, std::string& error);

}  // namespace sluice::scenarios
