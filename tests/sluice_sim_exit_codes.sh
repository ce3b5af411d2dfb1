#!/usr/bin/env bash
# sluice-sim exits 0 when invariants hold, 1 when a check fails, 2 on bad usage, and always
# prints `seed=S trace=HEX`.
set -uo pipefail
sim="$1"
expect() {
  local want="$1"; shift
  "$@" >/tmp/sluice-sim-exit.out 2>&1
  local got=$?
  if [ "$got" -ne "$want" ]; then
    echo "expected exit $want, got $got: $*"; cat /tmp/sluice-sim-exit.out; exit 1
  fi
}
expect 0 "$sim" run --scenario append_log --seed 1
grep -Eq 'seed=1 trace=[0-9a-f]{16}' /tmp/sluice-sim-exit.out || { echo "no seed/trace line"; exit 1; }
expect 2 "$sim" run --scenario no_such_scenario
expect 2 "$sim" run --scenario append_log --seed notanumber
expect 2 "$sim" run --scenario append_log --bug no_such_bug
expect 2 "$sim" frobnicate
# Seed 2 with the ack-before-sync canary loses acknowledged records.
expect 1 "$sim" run --scenario append_log --seed 2 --bug demo_ack_before_sync
grep -q 'lost write' /tmp/sluice-sim-exit.out || { echo "expected a lost write"; exit 1; }
grep -q 'replay: sluice-sim run --scenario append_log --seed 2 --canary demo_ack_before_sync' /tmp/sluice-sim-exit.out \
  || { echo "no replay line"; exit 1; }
echo "sluice-sim exit codes: ok"
