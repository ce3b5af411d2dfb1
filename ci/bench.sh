#!/usr/bin/env bash
# Benchmarks Sluice side by side with Redis Streams, NATS JetStream, librdkafka's mock cluster and
# the machine's own disk-sync and loopback limits, on this machine, over loopback only; writes
# docs/BENCHMARKS.md, docs/bench/*.png and docs/bench/results.json (bench/bench.py does the runs,
# bench/bench_report.py the report).
#
#   ci/bench.sh            the full run (about 30 min; not run by CI)
#   ci/bench.sh --smoke    every system and workload for about a second each (< 2 min; the
#                          bench_smoke ctest); writes to <build-dir>/bench-smoke unless --out-dir
#
# Options: --build-dir DIR (default build/bench-rel, configured Release and built here unless
# --no-build), --out-dir DIR (default docs), and bench/bench.py's own (--systems sluice,redis,...
# --workloads w1,w2,... --duration-s S --runs N --backlog-mib M --retention-s S --work-dir DIR
# --note TEXT, a note printed in the report, e.g. that other jobs shared the machine).
# Exit 1 when a system cannot be started or a run's stored count disagrees with its acks.
#
# Peers run as plain processes on free 127.0.0.1 ports with their data in a temporary directory
# (never as system services); every process started is killed on exit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$root/build/bench-rel"
out_dir=""
smoke=0
build=1
passthrough=()
notes=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1; passthrough+=("$1") ;;
    --build-dir) build_dir="$2"; shift ;;
    --out-dir) out_dir="$2"; shift ;;
    --no-build) build=0 ;;
    --note) notes+=("$1" "$2"); shift ;;  # kept out of the command line the report prints
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) passthrough+=("$1") ;;
  esac
  shift
done
if [ -z "$out_dir" ]; then
  if [ "$smoke" -eq 1 ]; then out_dir="$build_dir/bench-smoke"; else out_dir="$root/docs"; fi
fi

if [ "$build" -eq 1 ]; then
  "$root/ci/install-deps.sh"
  if [ ! -f "$build_dir/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build "$build_dir" --target sluice-bench-tools -- -j"$(nproc)" >/dev/null
fi

# bench.py kills its servers itself; this catches them if it is killed without the chance to.
pid_file="$(mktemp /tmp/sluice-bench-pids.XXXXXX)"
cleanup() {
  while read -r pid; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
  done <"$pid_file"
  rm -f "$pid_file"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command_line="ci/bench.sh"
if [ ${#passthrough[@]} -gt 0 ]; then command_line="ci/bench.sh ${passthrough[*]}"; fi
SLUICE_BENCH_PID_FILE="$pid_file" /usr/bin/python3 "$root/bench/bench.py" \
  --build-dir "$build_dir" --out-dir "$out_dir" --command "$command_line" "${passthrough[@]}" "${notes[@]}"
