#!/usr/bin/env bash
# Proves ci/lint-core.sh fails on each kind of violation it is meant to catch.
set -euo pipefail
lint="$1"
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/core"
violations=(
  '#include <sys/socket.h>'
  '#include <unistd.h>'
  '#include <thread>'
  '#include <random>'
  'auto t = std::chrono::steady_clock::now();'
  'int r = rand();'
  'std::random_device device;'
  'std::mutex lock;'
  'usleep(10);'
)
for violation in "${violations[@]}"; do
  printf '%s\n' "$violation" > "$tree/core/planted.cc"
  if "$lint" "$tree" >/dev/null 2>&1; then
    echo "lint-core missed: $violation"
    exit 1
  fi
done
printf 'int clean() { return 0; }\n' > "$tree/core/planted.cc"
"$lint" "$tree" >/dev/null
echo "lint-core caught all ${#violations[@]} planted violations and passed a clean tree"
