#!/usr/bin/env bash
# kcat (librdkafka) against the real `sluice` binary: for each codec (none, gzip, snappy, lz4,
# zstd) produce COUNT keyed messages to a 4-partition topic and consume them back:
#   - every message comes back with its key and value, nothing extra;
#   - within each partition the messages keep their produce order;
#   - every key lands on the same partition every time (and all four partitions are used).
# Also: confluent-kafka preserves headers and null keys and values.
# Usage: kcat_codecs_test.sh SLUICE_BINARY [COUNT]
set -euo pipefail

sluice=${1:?usage: kcat_codecs_test.sh SLUICE_BINARY [COUNT]}
count=${2:-100000}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
start_broker

# 1,000 distinct keys; the value carries the sequence number so order can be checked.
awk -v n="$count" 'BEGIN { for (i = 0; i < n; i++) printf "key-%04d:%08d\n", i % 1000, i }' >"$work/sent.txt"

for codec in none gzip snappy lz4 zstd; do
  topic="codec-$codec"
  timeout 30 "$python" - "$brokers" "$topic" <<'PY' || fail "could not create $topic with 4 partitions"
import sys
from kafka.admin import KafkaAdminClient, NewTopic
admin = KafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=10000)
admin.create_topics([NewTopic(name=sys.argv[2], num_partitions=4, replication_factor=1)])
admin.close()
PY
  started_ms=$(( $(date +%s%N) / 1000000 ))
  timeout 120 kcat -b "$brokers" -P -t "$topic" -K: -z "$codec" -X acks=all <"$work/sent.txt" \
    || fail "$codec: kcat -P"
  timeout 120 kcat -b "$brokers" -C -t "$topic" -o beginning -e -q -f '%p %k %s\n' >"$work/received.txt" \
    || fail "$codec: kcat -C"
  elapsed_ms=$(( $(date +%s%N) / 1000000 - started_ms ))
  received=$(wc -l <"$work/received.txt")
  [ "$received" -eq "$count" ] || fail "$codec: sent $count, received $received"
  # Same multiset of key:value pairs.
  cmp -s <(sort "$work/sent.txt") <(awk '{print $2 ":" $3}' "$work/received.txt" | sort) \
    || fail "$codec: consumed content differs from produced"
  # Per partition, sequence numbers increase; each key has exactly one partition; 4 partitions used.
  awk -v codec="$codec" '
    { if (($1 in last) && $3 <= last[$1]) { print codec ": partition " $1 " out of order at " $3; bad = 1 }
      last[$1] = $3
      if (($2 in home) && home[$2] != $1) { print codec ": key " $2 " in partitions " home[$2] " and " $1; bad = 1 }
      home[$2] = $1; used[$1] = 1 }
    END { n = 0; for (p in used) n++; if (n != 4) { print codec ": " n " partitions used, expected 4"; bad = 1 }
          exit bad }' "$work/received.txt" || fail "$codec: order or key placement"
  echo "$codec: $count keyed messages round-tripped over 4 partitions in ${elapsed_ms} ms"
done

echo "== confluent-kafka: headers, null keys and null values"
timeout 60 "$python" "$here/confluent_kafka_headers.py" "$brokers" headers-topic || fail "headers and nulls"

stop_broker
echo "PASS: kcat codecs and confluent-kafka headers against sluice on $brokers"
