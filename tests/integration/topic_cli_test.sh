#!/usr/bin/env bash
# `sluice topic` against the real `sluice serve` over loopback: create with partitions and a
# config, list, describe (partitions, config, high watermark moving after a kcat produce),
# alter, delete, and the error paths (existing topic, unknown topic, unreachable broker, usage).
# Usage: topic_cli_test.sh SLUICE_BINARY. Every client call is bounded by `timeout`.
set -euo pipefail

sluice=${1:?usage: topic_cli_test.sh SLUICE_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
start_broker

topic() {
  status=0
  timeout 30 "$sluice" topic "$@" --brokers "$brokers" >"$work/out" 2>"$work/err" || status=$?
}
expect_status() {  # expect_status CODE WHAT
  [ "$status" -eq "$1" ] || fail "$2: exit $status, expected $1; stdout: $(cat "$work/out"); stderr: $(cat "$work/err")"
}
json_get() {  # json_get PYTHON_EXPRESSION_ON_d: evaluates it on the JSON in $work/out
  "$python" -c "import json, sys; d = json.load(open('$work/out')); print($1)"
}

echo "== create -p 3 -c retention.ms=1000"
topic create orders -p 3 -c retention.ms=1000
expect_status 0 "create"
grep -q "Created topic 'orders'" "$work/out" || fail "create output: $(cat "$work/out")"

echo "== list"
topic list
expect_status 0 "list"
grep -Eq '^orders +3$' "$work/out" || fail "list does not show orders with 3 partitions: $(cat "$work/out")"
topic list --json
expect_status 0 "list --json"
[ "$(json_get "[t['partitions'] for t in d['topics'] if t['name'] == 'orders']")" = "[3]" ] || fail "list --json: $(cat "$work/out")"

echo "== describe"
topic describe orders
expect_status 0 "describe"
grep -q "Partitions: 3" "$work/out" || fail "describe: $(cat "$work/out")"
grep -Eq '^retention\.ms +1000 +topic$' "$work/out" || fail "describe does not show retention.ms=1000 from the topic: $(cat "$work/out")"
topic describe orders --json
expect_status 0 "describe --json"
[ "$(json_get "len(d['partitions'])")" = 3 ] || fail "describe --json partitions: $(cat "$work/out")"
[ "$(json_get "d['configs']['retention.ms']['value']")" = 1000 ] || fail "describe --json configs: $(cat "$work/out")"
[ "$(json_get "sum(p['high_watermark'] for p in d['partitions'])")" = 0 ] || fail "new topic not empty: $(cat "$work/out")"

echo "== produce 30 messages with kcat; the high watermark moves"
seq 1 30 | timeout 30 kcat -b "$brokers" -P -t orders -X acks=all || fail "kcat -P"
topic describe orders --json
expect_status 0 "describe after produce"
[ "$(json_get "sum(p['high_watermark'] - p['log_start_offset'] for p in d['partitions'])")" = 30 ] ||
  fail "high watermarks do not add up to 30: $(cat "$work/out")"

echo "== alter -c retention.ms=2000 -c segment.bytes=1048576"
topic alter orders -c retention.ms=2000 -c segment.bytes=1048576
expect_status 0 "alter"
topic describe orders --json
[ "$(json_get "d['configs']['retention.ms']['value']")" = 2000 ] || fail "alter retention.ms: $(cat "$work/out")"
[ "$(json_get "d['configs']['segment.bytes']['value']")" = 1048576 ] || fail "alter segment.bytes: $(cat "$work/out")"
topic alter orders -c max.message.bytes=500000
expect_status 0 "second alter"
topic describe orders --json
[ "$(json_get "d['configs']['retention.ms']['value']")" = 2000 ] || fail "a second alter lost retention.ms: $(cat "$work/out")"

echo "== error: create an existing topic"
topic create orders -p 1
expect_status 1 "create existing"
grep -q "TOPIC_ALREADY_EXISTS (36)" "$work/err" || fail "create existing: $(cat "$work/err")"

echo "== delete"
topic delete orders
expect_status 0 "delete"
topic list
grep -q '^orders ' "$work/out" && fail "orders still listed after delete: $(cat "$work/out")"

echo "== error: describe and delete an unknown topic"
topic describe orders
expect_status 1 "describe unknown"
grep -q "UNKNOWN_TOPIC_OR_PARTITION (3)" "$work/err" || fail "describe unknown: $(cat "$work/err")"
topic delete orders
expect_status 1 "delete unknown"
grep -q "UNKNOWN_TOPIC_OR_PARTITION (3)" "$work/err" || fail "delete unknown: $(cat "$work/err")"

echo "== error: unreachable broker"
unused=$(free_port)
status=0
timeout 30 "$sluice" topic list --brokers "127.0.0.1:$unused" >"$work/out" 2>"$work/err" || status=$?
expect_status 1 "unreachable broker"
grep -q "127.0.0.1:$unused" "$work/err" || fail "unreachable broker message does not name the address: $(cat "$work/err")"

echo "== usage errors exit 2"
topic list --no-such-flag
expect_status 2 "unknown flag"
topic create bad -c not-a-pair
expect_status 2 "config without ="
topic alter orders
expect_status 2 "alter without -c"
topic create bad -p 0
expect_status 2 "zero partitions"
status=0
"$sluice" topic list --brokers not-an-address >"$work/out" 2>"$work/err" || status=$?
expect_status 2 "bad --brokers"

stop_broker
echo "PASS"
