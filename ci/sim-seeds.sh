#!/usr/bin/env bash
# Fault-injection seed runs, as CI runs them:
#  1. every scenario over SLUICE_SEEDS seeds (default 50): all invariants must hold;
#  2. each seed run twice: the trace hashes must be equal (determinism), and differ across seeds;
#  3. every canary bug must be caught by some seed within SLUICE_CANARY_SEEDS (default 40).
# Usage: ci/sim-seeds.sh PATH/TO/sluice-sim
set -euo pipefail
sim="${1:?usage: ci/sim-seeds.sh PATH/TO/sluice-sim}"
seeds="${SLUICE_SEEDS:-50}"
canary_seeds="${SLUICE_CANARY_SEEDS:-40}"
first_seed="${SLUICE_FIRST_SEED:-1}"
failed=0

trace_of() { sed -n 's/.* trace=\([0-9a-f]*\) .*/\1/p'; }

for scenario in $("$sim" list | awk '{print $1}'); do
  declare -A seen=()
  for ((seed = first_seed; seed < first_seed + seeds; seed++)); do
    if ! first=$("$sim" run --scenario "$scenario" --seed "$seed"); then
      echo "$first"
      echo "FAIL: $scenario seed $seed violated an invariant"
      failed=1
      continue
    fi
    second=$("$sim" run --scenario "$scenario" --seed "$seed")
    hash1=$(echo "$first" | trace_of)
    hash2=$(echo "$second" | trace_of)
    if [ -z "$hash1" ] || [ "$hash1" != "$hash2" ]; then
      echo "FAIL: $scenario seed $seed is not deterministic: trace $hash1 then $hash2"
      failed=1
    fi
    if [ -n "${seen[$hash1]:-}" ]; then
      echo "FAIL: $scenario seeds ${seen[$hash1]} and $seed gave the same trace $hash1"
      failed=1
    fi
    seen[$hash1]=$seed
    echo "$first"
  done
  unset seen
done

while read -r bug scenario _; do
  caught=""
  for ((seed = first_seed; seed < first_seed + canary_seeds; seed++)); do
    if ! "$sim" run --scenario "$scenario" --seed "$seed" --bug "$bug" >/tmp/sluice-canary.out; then
      caught=$seed
      break
    fi
  done
  if [ -n "$caught" ]; then
    echo "canary $bug: caught by $scenario seed $caught"
    grep -m 2 'violation' /tmp/sluice-canary.out || true
  else
    echo "FAIL: canary $bug was not caught by $scenario in $canary_seeds seeds"
    failed=1
  fi
done < <("$sim" bugs)

if [ "$failed" -ne 0 ]; then
  echo "sim-seeds: FAILED"
  exit 1
fi
echo "sim-seeds: all scenarios held over $seeds seeds, runs were deterministic, every canary was caught"
