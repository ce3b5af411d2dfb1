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
here=$(cd "$(dirname "$0")" && pwd)
count=500
# shellcheck source=lib.sh
. "$here/lib.sh"
"$python" -c 'import kafka, confluent_kafka' || { echo "missing python3-kafka or python3-confluent-kafka" >&2; exit 1; }

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
