#!/usr/bin/env bash
# Quick start, step 1: install what is missing, build, and start the broker on defaults
# (127.0.0.1:9092, ./sluice-data). Extra arguments go to `sluice serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/build.sh release --target sluice >&2
exec build/release/runtime/sluice serve "$@"
