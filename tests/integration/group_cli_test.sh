#!/usr/bin/env bash
# `sluice group` against the real `sluice serve` and a confluent-kafka consumer group: list and
# describe while the consumer is active (state, member, committed / log end / lag per partition),
# reset-offsets refused while active, then --to-earliest / --to-offset (clamped) / --to-latest /
# --to-datetime / --dry-run once it is empty, delete (NON_EMPTY_GROUP, success, GROUP_ID_NOT_FOUND),
# --json output, and usage errors. Usage: group_cli_test.sh SLUICE_BINARY.
# Every client call is bounded by `timeout`.
set -euo pipefail

sluice=${1:?usage: group_cli_test.sh SLUICE_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
printf 'groups:\n  initial_rebalance_delay_ms: 0\n' >"$work/sluice.yaml"
start_broker --config "$work/sluice.yaml"

# group STATUS ARGS...: `sluice group ARGS` must exit STATUS; stdout in $work/out, stderr in $work/err.
group() {
  local want=$1 got=0
  shift
  timeout 60 "$sluice" group "$@" --brokers "$brokers" >"$work/out" 2>"$work/err" || got=$?
  [ "$got" -eq "$want" ] ||
    fail "group $*: exit $got, expected $want; stdout: $(cat "$work/out"); stderr: $(cat "$work/err")"
}
# expect_json PYTHON_EXPRESSION VALUE: the expression, on the JSON document d in $work/out, prints VALUE.
expect_json() {
  local got
  got=$("$python" -c "import json, sys; d = json.load(open(sys.argv[1])); print(repr(($1)))" "$work/out") ||
    fail "stdout is not JSON: $(cat "$work/out")"
  [ "$got" = "$2" ] || fail "$1 is $got, expected $2; stdout: $(cat "$work/out")"
}
expect_out() { grep -Eq -- "$1" "$work/out" || fail "stdout lacks /$1/: $(cat "$work/out")"; }
expect_err() { grep -qF -- "$1" "$work/err" || fail "stderr lacks '$1': $(cat "$work/err")"; }
# committed_offsets: the committed offsets of cli-group on orders-0..2, from describe --json.
committed_offsets() {
  group 0 describe cli-group --json
  "$python" -c "import json, sys; d = json.load(open(sys.argv[1]))
print([o['committed_offset'] for o in d['offsets'] if o['topic'] == 'orders'])" "$work/out"
}

echo "== orders: 3 partitions with 10, 20 and 30 messages (kcat); events: 6 timestamped messages"
timeout 30 "$sluice" topic create orders -p 3 --brokers "$brokers" >/dev/null || fail "topic create orders"
timeout 30 "$sluice" topic create events -p 1 --brokers "$brokers" >/dev/null || fail "topic create events"
for partition in 0 1 2; do
  seq 1 $(((partition + 1) * 10)) | timeout 30 kcat -b "$brokers" -P -t orders -p "$partition" -X acks=all ||
    fail "kcat -P partition $partition"
done
# One record an hour from 2026-11-22T10:00:00Z (1795341600000 ms) to 15:00.
timeout 60 "$python" - "$brokers" <<'EOF' || fail "produce timestamped events"
import sys
from confluent_kafka import Producer
producer = Producer({"bootstrap.servers": sys.argv[1]})
for hour in range(6):
    producer.produce("events", value=b"event-%d" % hour, partition=0, timestamp=1795341600000 + hour * 3600000)
sys.exit(1 if producer.flush(30) else 0)
EOF

echo "== a consumer in group cli-group reads all 60 and commits 4, 20 and 7, then stays"
cat >"$work/consumer.py" <<'EOF'
import os, sys, time
from confluent_kafka import Consumer, TopicPartition
brokers, ready, stop = sys.argv[1:4]
consumer = Consumer({"bootstrap.servers": brokers, "group.id": "cli-group", "client.id": "cli-test-consumer",
                     "enable.auto.commit": False, "auto.offset.reset": "earliest", "session.timeout.ms": 10000})
consumer.subscribe(["orders"])
seen, deadline = 0, time.time() + 60
while seen < 60 and time.time() < deadline:
    message = consumer.poll(0.5)
    if message is not None and not message.error():
        seen += 1
if seen != 60:
    sys.exit("consumed %d of 60" % seen)
consumer.commit(offsets=[TopicPartition("orders", 0, 4), TopicPartition("orders", 1, 20),
                         TopicPartition("orders", 2, 7)], asynchronous=False)
open(ready, "w").close()
deadline = time.time() + 120
while not os.path.exists(stop) and time.time() < deadline:
    consumer.poll(0.2)  # nothing left to read: polling only keeps the member in the group
consumer.close()
EOF
"$python" "$work/consumer.py" "$brokers" "$work/ready" "$work/stop" >"$work/consumer.log" 2>&1 &
consumer_pid=$!
for _ in $(seq 1 600); do
  [ -e "$work/ready" ] && break
  kill -0 "$consumer_pid" 2>/dev/null || fail "consumer exited: $(cat "$work/consumer.log")"
  sleep 0.1
done
[ -e "$work/ready" ] || fail "consumer not ready within 60 s: $(cat "$work/consumer.log")"

echo "== list"
group 0 list
expect_out '^cli-group +consumer +Stable$'
group 0 list --json
expect_json "[(g['protocol_type'], g['state']) for g in d['groups'] if g['group'] == 'cli-group']" "[('consumer', 'Stable')]"

echo "== describe while active"
group 0 describe cli-group
expect_out 'State: Stable .*Members: 1'
expect_out '^orders +0 +4 +10 +6 +[^ ]+ +[^ ]+ +cli-test-consumer$'
expect_out '^orders +1 +20 +20 +0 '
expect_out '^orders +2 +7 +30 +23 '
group 0 describe cli-group --json
expect_json "d['state'], d['protocol_type'], len(d['members']), d['members'][0]['client_id']" "('Stable', 'consumer', 1, 'cli-test-consumer')"
expect_json "sorted((a['topic'], a['partition']) for a in d['members'][0]['assignment'])" "[('orders', 0), ('orders', 1), ('orders', 2)]"
expect_json "[(o['partition'], o['committed_offset'], o['log_end_offset'], o['lag']) for o in d['offsets']]" "[(0, 4, 10, 6), (1, 20, 20, 0), (2, 7, 30, 23)]"
expect_json "{o['member_id'] for o in d['offsets']} == {d['members'][0]['member_id']}" "True"

echo "== reset-offsets and delete are refused while the group is active"
group 1 reset-offsets cli-group --topic orders --to-earliest
expect_err "the group is active (state Stable, 1 member(s))"
group 1 reset-offsets cli-group --topic orders --to-earliest --dry-run
expect_err "the group is active"
group 1 delete cli-group
expect_err "delete group 'cli-group': NON_EMPTY_GROUP (68)"
[ "$(committed_offsets)" = "[4, 20, 7]" ] || fail "refused commands changed offsets: $(cat "$work/out")"

echo "== the consumer leaves: the group is Empty and keeps its offsets"
touch "$work/stop"
wait "$consumer_pid" || fail "consumer failed: $(cat "$work/consumer.log")"
group 0 describe cli-group
expect_out 'State: Empty .*Members: 0'
expect_out '^No active members\.$'
expect_out '^orders +2 +7 +30 +23 +- +- +-$'

echo "== reset-offsets --to-earliest --dry-run changes nothing"
group 0 reset-offsets cli-group --topic orders --to-earliest --dry-run
expect_out '^Dry run'
expect_out '^orders +2 +7 +0 +ok$'
group 0 reset-offsets cli-group --topic orders --to-earliest --dry-run --json
expect_json "d['dry_run'], [(p['partition'], p['previous_offset'], p['new_offset']) for p in d['partitions']]" "(True, [(0, 4, 0), (1, 20, 0), (2, 7, 0)])"
[ "$(committed_offsets)" = "[4, 20, 7]" ] || fail "--dry-run committed: $(cat "$work/out")"

echo "== reset-offsets --to-earliest: committed 0, lag = log end"
group 0 reset-offsets cli-group --topic orders --to-earliest
expect_out '^orders +1 +20 +0 +ok$'
group 0 describe cli-group --json
expect_json "[(o['partition'], o['committed_offset'], o['lag']) for o in d['offsets']]" "[(0, 0, 10), (1, 0, 20), (2, 0, 30)]"

echo "== --to-offset on chosen partitions, --to-latest, --to-offset clamped to the log end"
group 0 reset-offsets cli-group --topic orders:0,2 --to-offset 5
[ "$(committed_offsets)" = "[5, 0, 5]" ] || fail "--to-offset 5 on orders:0,2: $(cat "$work/out")"
group 0 reset-offsets cli-group --topic orders:1 --to-latest --json
expect_json "d['dry_run'], [(p['partition'], p['previous_offset'], p['new_offset'], p['error']) for p in d['partitions']]" "(False, [(1, 0, 20, None)])"
[ "$(committed_offsets)" = "[5, 20, 5]" ] || fail "--to-latest on orders:1: $(cat "$work/out")"
group 0 reset-offsets cli-group --topic orders --to-offset 25
[ "$(committed_offsets)" = "[10, 20, 25]" ] || fail "--to-offset 25, clamped: $(cat "$work/out")"

echo "== --to-datetime: first record at or after the time, in any zone; the log end past the last"
for case in "2026-11-22T13:00:00Z 3" "2026-11-22T14:30:00+01:00 4" "2026-11-22T12:00:00 2" \
  "2026-11-22T09:00:00.000-01:00 0" "2030-01-01T00:00:00Z 6"; do
  read -r when offset <<<"$case"
  group 0 reset-offsets cli-group --topic events --to-datetime "$when" --json
  expect_json "[(p['topic'], p['partition'], p['new_offset']) for p in d['partitions']]" "[('events', 0, $offset)]"
done
group 0 describe cli-group --json
expect_json "[(o['committed_offset'], o['log_end_offset']) for o in d['offsets'] if o['topic'] == 'events']" "[(6, 6)]"

echo "== reset-offsets errors name the partition"
group 1 reset-offsets cli-group --topic orders:7 --to-earliest
expect_err "orders-7: UNKNOWN_TOPIC_OR_PARTITION (3)"
group 1 reset-offsets cli-group --topic no-such-topic --to-latest
expect_err "UNKNOWN_TOPIC_OR_PARTITION (3)"

echo "== delete: the empty group goes, an unknown one is GROUP_ID_NOT_FOUND"
group 0 reset-offsets second-group --topic orders:0 --to-offset 3
group 0 list --json
expect_json "sorted(g['group'] for g in d['groups'])" "['cli-group', 'second-group']"
group 0 delete cli-group
expect_out "^Deleted group 'cli-group'\.$"
group 0 list
grep -q '^cli-group ' "$work/out" && fail "cli-group still listed after delete: $(cat "$work/out")"
group 1 describe cli-group
expect_err "GROUP_ID_NOT_FOUND (69)"
group 1 delete no-such-group
expect_err "delete group 'no-such-group': GROUP_ID_NOT_FOUND (69)"
group 1 delete second-group no-such-group --json
expect_json "[(g['group'], g['deleted'], g['error']) for g in d['groups']]" "[('second-group', True, None), ('no-such-group', False, 'GROUP_ID_NOT_FOUND')]"
group 0 list --json
expect_json "d['groups']" "[]"

echo "== error: unreachable broker"
unused=$(free_port)
status=0
timeout 30 "$sluice" group list --brokers "127.0.0.1:$unused" >"$work/out" 2>"$work/err" || status=$?
[ "$status" -eq 1 ] || fail "unreachable broker: exit $status"
expect_err "127.0.0.1:$unused"

echo "== usage errors exit 2"
group 2 reset-offsets cli-group --topic orders
group 2 reset-offsets cli-group --topic orders --to-earliest --to-latest
group 2 reset-offsets cli-group --topic orders --to-datetime 2026-11-31T00:00:00Z
group 2 reset-offsets cli-group --topic orders:x --to-earliest
group 2 reset-offsets cli-group --topic orders --to-offset -1
group 2 reset-offsets cli-group --to-earliest
group 2 describe
group 2 delete

stop_broker
echo "PASS"
