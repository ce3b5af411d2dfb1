#!/usr/bin/env bash
# Real Kafka clients against the real `sluice` binary: starts `sluice serve` on a free loopback
# port with a temporary data directory, then checks
#   1. kcat -L lists this broker as the controller;
#   2. kcat -P produces N lines to an auto-created topic and kcat -C -e reads them back identically;
#   3. kafka-python produces and consumes (assign + seek_to_beginning);
#   4. confluent-kafka produces idempotently with acks=all and consumes via assign;
#   5. SIGTERM stops the broker with exit code 0, and a restart serves the same data.
# Usage: real_clients_test.sh SLUICE_BINARY. Every client call is bounded by `timeout`.
set -euo pipefail

sluice=${1:?usage: real_clients_test.sh SLUICE_BINARY}
python=/usr/bin/python3  # Debian's client packages serve this interpreter (DESIGN.md)
here=$(cd "$(dirname "$0")" && pwd)
count=500

for tool in kcat "$python"; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run ci/install-deps.sh" >&2; exit 1; }
done
"$python" -c 'import kafka, confluent_kafka' || { echo "missing python3-kafka or python3-confluent-kafka" >&2; exit 1; }

work=$(mktemp -d)
broker_pid=""
cleanup() {
  if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then kill -KILL "$broker_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  echo "---- broker log ----" >&2
  tail -n 40 "$work/broker.log" >&2 || true
  exit 1
}

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
brokers="127.0.0.1:$port"

start_broker() {
  "$sluice" serve --listen "$brokers" --data-dir "$work/data" >>"$work/broker.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 1 100); do
    if "$python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then return; fi
    sleep 0.1
  done
  fail "broker did not start listening on $brokers"
}

stop_broker() {
  kill -TERM "$broker_pid"
  local status=0
  timeout 20 tail --pid="$broker_pid" -f /dev/null || fail "broker did not stop within 20 s of SIGTERM"
  wait "$broker_pid" || status=$?
  broker_pid=""
  [ "$status" -eq 0 ] || fail "broker exited with $status after SIGTERM"
}

start_broker

echo "== kcat -L"
timeout 20 kcat -b "$brokers" -L >"$work/metadata.txt" || fail "kcat -L"
grep -q "broker 0 at $brokers (controller)" "$work/metadata.txt" || fail "kcat -L: $(cat "$work/metadata.txt")"

echo "== kcat produce/consume $count messages"
seq 1 "$count" | sed 's/^/message-/' >"$work/sent.txt"
timeout 30 kcat -b "$brokers" -P -t kcat-topic -X acks=all <"$work/sent.txt" || fail "kcat -P"
timeout 30 kcat -b "$brokers" -C -t kcat-topic -o beginning -e -q >"$work/received.txt" || fail "kcat -C"
cmp -s "$work/sent.txt" "$work/received.txt" || fail "kcat: consumed messages differ from produced ($(wc -l <"$work/received.txt") lines)"

echo "== kafka-python"
timeout 60 "$python" "$here/kafka_python_round_trip.py" "$brokers" kafka-python-topic "$count" || fail "kafka-python"

echo "== confluent-kafka"
timeout 60 "$python" "$here/confluent_kafka_round_trip.py" "$brokers" confluent-topic "$count" || fail "confluent-kafka"

echo "== SIGTERM, restart, read again"
stop_broker
grep -q "partition logs closed" "$work/broker.log" || fail "no clean close in the log"
start_broker
timeout 30 kcat -b "$brokers" -C -t kcat-topic -o beginning -e -q >"$work/received-again.txt" || fail "kcat -C after restart"
cmp -s "$work/sent.txt" "$work/received-again.txt" || fail "kcat: data differs after restart"
grep -q "clean shutdown" "$work/broker.log" || echo "note: no clean-shutdown recovery line in the log" >&2
stop_broker

echo "PASS: kcat, kafka-python and confluent-kafka against sluice on $brokers"
