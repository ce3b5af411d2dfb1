#!/usr/bin/env bash
# Fault-injection seed runs, as CI runs them:
#  1. a swarm: every scenario over SLUICE_SEEDS seeds (default 200) starting at a seed derived
#     from the commit hash (so each commit explores new seeds; override with SLUICE_FIRST_SEED),
#     plus the fixed regression seeds in scenarios/regressions.txt: all invariants must hold;
#  2. a sample of SLUICE_DETERMINISM_SEEDS seeds (default 10) per scenario run twice: trace hashes
#     must be equal (determinism) and differ across seeds;
#  3. every canary must be caught by its scenario within SLUICE_CANARY_SEEDS seeds (default 40).
# Usage: ci/sim-seeds.sh PATH/TO/sluice-sim
set -euo pipefail
sim="${1:?usage: ci/sim-seeds.sh PATH/TO/sluice-sim}"
root="$(cd "$(dirname "$0")/.." && pwd)"
seeds="${SLUICE_SEEDS:-200}"
determinism_seeds="${SLUICE_DETERMINISM_SEEDS:-10}"
canary_seeds="${SLUICE_CANARY_SEEDS:-40}"
jobs="${SLUICE_SIM_JOBS:-2}"
if [ -z "${SLUICE_FIRST_SEED:-}" ]; then
  commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo 0000001)
  SLUICE_FIRST_SEED=$(( 16#${commit:0:7} ))
fi
first_seed="$SLUICE_FIRST_SEED"
failed=0

echo "== swarm: $seeds seeds per scenario from seed $first_seed, plus scenarios/regressions.txt"
if ! "$sim" swarm --scenarios all --seeds "$seeds" --first-seed "$first_seed" \
     --seed-file "$root/scenarios/regressions.txt" --jobs "$jobs"; then
  echo "FAIL: the swarm found failing seeds (replay commands above)"
  failed=1
fi

echo "== determinism: $determinism_seeds seeds per scenario, each run twice"
trace_of() { sed -n 's/.* trace=\([0-9a-f]*\) .*/\1/p'; }
for scenario in $("$sim" list | awk '{print $1}'); do
  declare -A seen=()
  for ((seed = first_seed; seed < first_seed + determinism_seeds; seed++)); do
    first=$("$sim" run --scenario "$scenario" --seed "$seed" | head -n 1 || true)
    second=$("$sim" run --scenario "$scenario" --seed "$seed" | head -n 1 || true)
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
  done
  unset seen
  echo "$scenario: $determinism_seeds seeds deterministic and distinct"
done

echo "== canaries: each must be caught within $canary_seeds seeds"
while read -r bug scenario _; do
  caught=""
  for ((seed = 1; seed <= canary_seeds; seed++)); do
    if ! "$sim" run --scenario "$scenario" --seed "$seed" --canary "$bug" >/tmp/sluice-canary.out; then
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
echo "sim-seeds: the swarm held, runs were deterministic, every canary was caught"
