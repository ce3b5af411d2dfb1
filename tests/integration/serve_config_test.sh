#!/usr/bin/env bash
# `sluice serve --config FILE`: the file's settings apply (listen address, data directory, default
# partition count), flags override the file, the shipped example parses, and an unknown key or a
# bad value stops the start with exit 2 and a message naming the key.
# Usage: serve_config_test.sh SLUICE_BINARY EXAMPLE_YAML
set -euo pipefail
sluice=${1:?usage: serve_config_test.sh SLUICE_BINARY EXAMPLE_YAML}
example=${2:?usage: serve_config_test.sh SLUICE_BINARY EXAMPLE_YAML}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

port=$(free_port)
cat >"$work/sluice.yaml" <<YAML
listen: 127.0.0.1:$port
data_directory: $work/data
kafka:
  default_partitions: 3
topic_defaults:
  retention_ms: 3600000
YAML
"$sluice" serve --config "$work/sluice.yaml" >"$work/broker.log" 2>&1 &
broker_pid=$!
wait_listening "$port"
echo hello | timeout 20 kcat -b "127.0.0.1:$port" -P -t configured || fail "produce"
timeout 20 kcat -b "127.0.0.1:$port" -L -t configured | grep -q 'topic "configured" with 3 partitions' \
  || fail "default_partitions from the file was not applied"
[ -d "$work/data" ] || fail "data_directory from the file was not used"
stop_broker

# A flag overrides the file.
other=$(free_port)
"$sluice" serve --config "$work/sluice.yaml" --listen "127.0.0.1:$other" >"$work/broker.log" 2>&1 &
broker_pid=$!
wait_listening "$other"
stop_broker

# The shipped example parses (on a free port and a scratch directory).
"$sluice" serve --config "$example" --listen 127.0.0.1:0 --data-dir "$work/example" >"$work/broker.log" 2>&1 &
broker_pid=$!
sleep 1
kill -0 "$broker_pid" 2>/dev/null || fail "the example config was refused: $(cat "$work/broker.log")"
stop_broker

expect_refused() {
  local file="$1" key="$2" status=0
  "$sluice" serve --config "$file" >"$work/refused.log" 2>&1 || status=$?
  [ "$status" -eq 2 ] || fail "expected exit 2 for $file, got $status"
  grep -q "$key" "$work/refused.log" || fail "the error does not name '$key': $(cat "$work/refused.log")"
}
printf 'kafka:\n  default_partition: 3\n' >"$work/unknown.yaml"
expect_refused "$work/unknown.yaml" "unknown key 'kafka.default_partition'"
printf 'topic_defaults:\n  retention_ms: soon\n' >"$work/bad-value.yaml"
expect_refused "$work/bad-value.yaml" "topic_defaults.retention_ms"
printf 'listen: [1, 2\n' >"$work/not-yaml.yaml"
expect_refused "$work/not-yaml.yaml" "not valid YAML"
echo "PASS: sluice serve --config"
