#!/usr/bin/env bash
# `sluice-sim run --minimize`: a passing seed exits 0; a canary-failing seed is shrunk to a
# non-empty schedule smaller than the original that still fails when replayed with --schedule,
# and from which removing any single event passes (1-minimality); the printed schedule and the
# file agree, and a malformed schedule file is a usage error.
set -uo pipefail
sim="${1:?usage: minimize_test.sh PATH/TO/sluice-sim}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fail() { echo "FAIL: $*"; cat "$work/out" 2>/dev/null; exit 1; }
run() {  # run WANT_EXIT ARGS...: runs sluice-sim into $work/out and checks its exit status
  local want="$1"; shift
  "$sim" "$@" >"$work/out" 2>&1
  local got=$?
  [ "$got" -eq "$want" ] || fail "expected exit $want, got $got: sluice-sim $*"
}
scenario=(--scenario crash_restart --seed 1 --canary storage_ack_before_fsync)

run 0 run --scenario crash_restart --seed 1 --minimize
grep -q 'the seed passes' out || fail "no 'seed passes' line"

run 1 run "${scenario[@]}" --minimize
cp out minimize.out
file=minimal-crash_restart-1.schedule
[ -f "$file" ] || fail "no $file"
original=$(sed -n 's/^minimize: \([0-9]*\) fault events.*/\1/p' minimize.out)
events=$(grep -c '^t=' "$file")
echo "minimized $original events to $events: $(grep '^minimize: .* still fail' minimize.out)"
[ "$events" -ge 1 ] || fail "the minimal schedule is empty"
[ "$events" -lt "$original" ] || fail "the minimal schedule ($events) is not smaller than $original"
grep -q '1-minimal' minimize.out || fail "minimization did not finish"
grep -q "replay: sluice-sim run --scenario crash_restart --seed 1 --canary storage_ack_before_fsync --schedule $file" \
  minimize.out || fail "no replay command"
# The printed schedule is the file's (the round trip through the file is exact).
diff <(sed -n 's/^  \(t=.*\)/\1/p' minimize.out) <(grep '^t=' "$file") || fail "printed != file"

# Replaying the minimal schedule still fails, and prints a replay line with the schedule.
run 1 run "${scenario[@]}" --schedule "$file"
grep -q "violation:" out || fail "replay did not report a violation"
grep -q -- "--schedule $file" out || fail "replay line lacks --schedule"
# Minimizing the minimal schedule again keeps it as it is.
run 1 run "${scenario[@]}" --schedule "$file" --minimize --minimize-out again.schedule
diff <(grep '^t=' "$file") <(grep '^t=' again.schedule) || fail "re-minimizing changed it"

# 1-minimality: without any one event, the run passes.
for ((i = 1; i <= events; i++)); do
  awk -v skip="$i" '/^t=/ { n++; if (n == skip) next } { print }' "$file" >drop.schedule
  [ "$(grep -c '^t=' drop.schedule)" -eq $((events - 1)) ] || fail "could not drop event $i"
  run 0 run "${scenario[@]}" --schedule drop.schedule
done

# The empty schedule (no faults at all) passes; a malformed file is a usage error.
: >empty.schedule
run 0 run "${scenario[@]}" --schedule empty.schedule
echo 't=1 crash broker for=banana' >bad.schedule
run 2 run "${scenario[@]}" --schedule bad.schedule
grep -q 'line 1' out || fail "no line number in the parse error"
run 2 run "${scenario[@]}" --schedule does-not-exist.schedule
run 2 run "${scenario[@]}" --seeds 2 --minimize
echo "sluice-sim --minimize: ok"
