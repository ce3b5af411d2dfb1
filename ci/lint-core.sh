#!/usr/bin/env bash
# Fails if core/ reaches the world other than through core/env (DESIGN.md, rule 1):
# OS headers, threads, real clocks, unseeded or implementation-defined randomness.
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$root"

status=0
report() {
  local what="$1" pattern="$2"
  local hits
  hits=$(grep -rnE --include='*.h' --include='*.cc' --include='*.cpp' --include='*.hpp' "$pattern" core || true)
  if [ -n "$hits" ]; then
    echo "lint-core: $what:" >&2
    echo "$hits" >&2
    status=1
  fi
}

report "OS header in core/ (use core/env)" \
  '#[[:space:]]*include[[:space:]]*<(sys/|unistd\.h|fcntl\.h|netinet/|arpa/|netdb\.h|poll\.h|signal\.h|csignal|pthread\.h|dirent\.h|dlfcn\.h|thread>|future>|condition_variable>|filesystem>|fstream>|random>|ctime>|time\.h)'
report "real clock read in core/ (use Env::clock())" '_clock::now|std::time\(|gettimeofday|clock_gettime'
report "unseeded randomness in core/ (use Env::random())" '(^|[^_a-zA-Z0-9.>:])(rand|srand|drand48|lrand48|arc4random)\(|random_device|_distribution<|mt19937|default_random_engine'
report "threads in core/" 'std::(thread|jthread|async|mutex|condition_variable)[^_a-zA-Z]'
report "real sleeping in core/" 'usleep|nanosleep|this_thread'

if [ "$status" -eq 0 ]; then
  echo "lint-core: core/ is free of OS calls, threads, real clocks and unseeded randomness"
fi
exit "$status"
