#!/usr/bin/env bash
# Quick start, step 2 (and what CI runs): install what is missing, build with -Werror, and run
# the whole test suite: unit and property tests, runtime and binary tests, the core/ lint, and
# the simulation seed runs (each seed twice, trace hashes compared) — first under ASan+UBSan,
# then in the release build whose ctest summary is the last line.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

echo "== install dependencies"
ci/install-deps.sh

echo "== build (preset ci: RelWithDebInfo, assertions on, -Werror)"
ci/build.sh ci

echo "== sanitizers: build preset asan (ASan + UBSan, fiber switches annotated) and run every test"
ci/build.sh asan
# Fewer seeds under the sanitizers: they are ~10x slower, and the release run below does 50.
SLUICE_SEEDS="${SLUICE_ASAN_SEEDS:-10}" ctest --preset asan -j "${SLUICE_TEST_JOBS:-2}" --timeout 900 \
  > build/asan-tests.log 2>&1 || { cat build/asan-tests.log; echo "asan tests FAILED"; exit 1; }
tail -n 3 build/asan-tests.log

echo "== tests (ctest; includes the core/ lint and the simulation seed runs)"
echo "   started after $(( $(date +%s) - started ))s of install and builds"
ctest --preset ci -j "${SLUICE_TEST_JOBS:-2}" --timeout 900
