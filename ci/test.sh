#!/usr/bin/env bash
# Quick start, step 2 (and what CI runs): install what is missing, build with -Werror, and run
# the whole test suite: unit and property tests, runtime and binary tests, the core/ lint, and
# the simulation seed runs (each seed twice, trace hashes compared).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

echo "== install dependencies"
ci/install-deps.sh

echo "== build (preset ci: RelWithDebInfo, assertions on, -Werror)"
ci/build.sh ci

echo "== tests (ctest; includes the core/ lint and the simulation seed runs)"
echo "   started after $(( $(date +%s) - started ))s of install and build"
ctest --preset ci -j "${SLUICE_TEST_JOBS:-2}" --timeout 900
