#!/usr/bin/env bash
# Installs missing Debian packages, then configures and builds one preset (default: release).
# Usage: ci/build.sh [release|asan|ci] [extra cmake --build args...]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
shift || true
ci/install-deps.sh
if [ ! -f "build/$preset/build.ninja" ]; then
  cmake --preset "$preset" >/dev/null
fi
jobs="${SLUICE_BUILD_JOBS:-$(nproc)}"
cmake --build --preset "$preset" -j "$jobs" "$@"
