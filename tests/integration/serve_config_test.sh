#!/usr/bin/env bash
# `sluice serve --config FILE`: the file's settings apply (listen address, data directory, default
# partition count), flags override the file, the shipped example parses, and an unknown key or a
# bad value stops the start with exit 2 and a message naming the key; `sluice config print`; a
# second process on the same data directory is refused; SIGHUP reloads the log level and topic
# defaults (and refuses a bad file without stopping); storage.page_cache_window_bytes really
# evicts synced log data from the page cache (checked with mincore), also after a reload.
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
"$sluice" serve --config "$work/sluice.yaml" --admin-listen 127.0.0.1:0 >"$work/broker.log" 2>&1 &
broker_pid=$!
wait_listening "$port"
echo hello | timeout 20 kcat -b "127.0.0.1:$port" -P -t configured || fail "produce"
timeout 20 kcat -b "127.0.0.1:$port" -L -t configured | grep -q 'topic "configured" with 3 partitions' \
  || fail "default_partitions from the file was not applied"
[ -d "$work/data" ] || fail "data_directory from the file was not used"
stop_broker

# A flag overrides the file.
other=$(free_port)
"$sluice" serve --config "$work/sluice.yaml" --listen "127.0.0.1:$other" --admin-listen 127.0.0.1:0 \
  >"$work/broker.log" 2>&1 &
broker_pid=$!
wait_listening "$other"
stop_broker

# The shipped example parses (on a free port and a scratch directory).
"$sluice" serve --config "$example" --listen 127.0.0.1:0 --data-dir "$work/example" \
  --admin-listen 127.0.0.1:0 >"$work/broker.log" 2>&1 &
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
printf 'admin:\n  listen: nowhere\n' >"$work/bad-admin.yaml"
expect_refused "$work/bad-admin.yaml" "invalid value for 'admin.listen'"
printf 'log_format: xml\n' >"$work/bad-format.yaml"
expect_refused "$work/bad-format.yaml" "invalid value for 'log_format'"
printf 'storage:\n  page_cache_window_bytes: -1\n' >"$work/bad-window.yaml"
expect_refused "$work/bad-window.yaml" "invalid value for 'storage.page_cache_window_bytes'"
printf 'storage:\n  lazy_sync_bytes: -1\n' >"$work/bad-lazy.yaml"
expect_refused "$work/bad-lazy.yaml" "invalid value for 'storage.lazy_sync_bytes'"

# `sluice config print`: on defaults it says what the shipped example says (same keys, same
# values), and what it prints loads back to the same configuration.
normalize() { sed -e 's/ *#.*//' -e 's/"//g' -e '/^ *$/d' "$1"; }
"$sluice" config print >"$work/defaults.yaml" || fail "config print failed"
diff <(normalize "$example" | sed 's/^advertise:.*/advertise:/') \
     <(normalize "$work/defaults.yaml" | sed 's/^advertise:.*/advertise:/') \
  || fail "config print on defaults differs from docs/sluice.example.yaml"
"$sluice" config print --config "$work/sluice.yaml" --node-id 7 >"$work/printed.yaml" || fail "config print --config"
grep -q '^node_id: 7$' "$work/printed.yaml" || fail "config print ignored a flag"
grep -q '^  default_partitions: 3$' "$work/printed.yaml" || fail "config print ignored the file"
"$sluice" config print --admin-listen off | grep -q '^  listen: "off"$' || fail "config print ignored --admin-listen"
"$sluice" config print --config "$work/printed.yaml" >"$work/reprinted.yaml" || fail "printed config does not load"
diff "$work/printed.yaml" "$work/reprinted.yaml" || fail "printed config does not round-trip"

# One process per data directory: a second one is refused with a clear error, and the first one
# keeps serving.
brokers="127.0.0.1:$port"  # start_broker listens there and waits on $port
start_broker
second=$(free_port)
status=0
timeout 10 "$sluice" serve --listen "127.0.0.1:$second" --data-dir "$work/data" --admin-listen 127.0.0.1:0 \
  >"$work/second.log" 2>&1 || status=$?
[ "$status" -eq 1 ] || fail "a second broker on the same data directory exited $status (want 1): $(cat "$work/second.log")"
grep -q "in use by another sluice process (pid $broker_pid)" "$work/second.log" \
  || fail "the refusal does not say who holds the directory: $(cat "$work/second.log")"
echo again | timeout 20 kcat -b "$brokers" -P -t still-serving || fail "the first broker stopped serving"
stop_broker

# SIGHUP reloads the log level and the topic defaults; existing topics without an override take
# the new default; a bad file on reload is refused and the broker keeps running as it was.
retention_of() {
  "$sluice" topic describe "$1" --brokers "$brokers" --json |
    "$python" -c 'import json, sys; print(json.load(sys.stdin)["configs"]["retention.ms"]["value"])'
}
cat >"$work/reload.yaml" <<YAML
listen: $brokers
data_directory: $work/data
topic_defaults:
  retention_ms: 3600000
YAML
"$sluice" serve --config "$work/reload.yaml" --admin-listen 127.0.0.1:0 >>"$work/broker.log" 2>&1 &
broker_pid=$!
wait_listening "$port"
echo one | timeout 20 kcat -b "$brokers" -P -t reloaded || fail "produce before the reload"
[ "$(retention_of reloaded)" = 3600000 ] || fail "retention.ms before the reload: $(retention_of reloaded)"
sed -i 's/retention_ms: 3600000/retention_ms: 7200000/' "$work/reload.yaml"
printf 'log_level: debug\n' >>"$work/reload.yaml"
kill -HUP "$broker_pid"
for _ in $(seq 1 50); do grep -q 'configuration reloaded: log_level debug' "$work/broker.log" && break; sleep 0.1; done
grep -q 'configuration reloaded: log_level debug' "$work/broker.log" || fail "no reload after SIGHUP"
[ "$(retention_of reloaded)" = 7200000 ] || fail "retention.ms after the reload: $(retention_of reloaded)"
echo two | timeout 20 kcat -b "$brokers" -P -t reloaded || fail "produce after the reload"
[ "$(timeout 20 kcat -b "$brokers" -C -t reloaded -e -q | wc -l)" -eq 2 ] || fail "records lost across the reload"
# The log format switches on reload too: from then on every line is one JSON object.
printf 'log_format: json\n' >>"$work/reload.yaml"
kill -HUP "$broker_pid"
json_reloaded='"message":"configuration reloaded: log_level debug, log_format json'
for _ in $(seq 1 50); do grep -q "$json_reloaded" "$work/broker.log" && break; sleep 0.1; done
grep -q "$json_reloaded" "$work/broker.log" || fail "no JSON log line after reloading log_format: json"
echo three | timeout 20 kcat -b "$brokers" -P -t reloaded || fail "produce after the JSON reload"
sed -n "/$json_reloaded/,\$p" "$work/broker.log" | /usr/bin/python3 -c '
import json, sys
lines = [line for line in sys.stdin if line.strip()]
events = [json.loads(line) for line in lines]  # every line parses, or this fails
assert all(e["node"] == "node-0" and e["time"].endswith("Z") and "message" in e for e in events), events
' || fail "log lines after the JSON reload are not all JSON objects with node, time and message"
printf 'kafka:\n  no_such_key: 1\n' >>"$work/reload.yaml"
kill -HUP "$broker_pid"
for _ in $(seq 1 50); do grep -q 'configuration reload failed' "$work/broker.log" && break; sleep 0.1; done
grep -q 'configuration reload failed' "$work/broker.log" || fail "a bad file on reload was not reported"
kill -0 "$broker_pid" || fail "the broker died on a bad reload"
[ "$(retention_of reloaded)" = 7200000 ] || fail "a refused reload changed the configuration"
stop_broker

# storage.page_cache_window_bytes: with a 1 MiB window, what a producer wrote more than a window
# behind the end has left the page cache once synced; with 0 (the control) it all stays cached.
# Residency is read with mincore(2) over a mapping of the segment files.
resident_mib() {
  "$python" - "$@" <<'PY'
import ctypes, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
page, total = mmap.PAGESIZE, 0
for path in sys.argv[1:]:
    size = os.path.getsize(path)
    if size == 0:
        continue
    fd = os.open(path, os.O_RDONLY)
    address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    os.close(fd)
    if address in (None, ctypes.c_void_p(-1).value):
        sys.exit("mmap " + path + ": " + os.strerror(ctypes.get_errno()))
    vector = (ctypes.c_ubyte * ((size + page - 1) // page))()
    if libc.mincore(address, size, vector) != 0:
        sys.exit("mincore: " + os.strerror(ctypes.get_errno()))
    total += sum(v & 1 for v in vector) * page
    libc.munmap(address, size)
print(total // (1 << 20))
PY
}
if [ "$(stat -f -c %T "$work")" = tmpfs ]; then
  echo "skip: $work is on tmpfs, which keeps every page"
else
  for window in 1048576 0; do
    printf 'storage:\n  page_cache_window_bytes: %s\n' "$window" >"$work/window.yaml"
    rm -rf "$work/data"
    start_broker --config "$work/window.yaml"
    "$python" -c 'import sys; sys.stdout.write(("w" * 1000 + "\n") * 12000)' |
      timeout 60 kcat -b "$brokers" -P -t cached -X acks=all || fail "produce 12 MB (window $window)"
    resident=$(resident_mib "$work"/data/cached-0/*.log)
    for _ in $(seq 1 20); do
      [ "$window" = 0 ] || [ "$resident" -le 4 ] && break
      sleep 0.1
      resident=$(resident_mib "$work"/data/cached-0/*.log)
    done
    echo "page_cache_window_bytes $window: $resident MiB of 12 MB written still cached"
    if [ "$window" = 0 ]; then
      [ "$resident" -ge 10 ] || fail "window 0 should keep the log cached, found $resident MiB"
    else
      [ "$resident" -le 4 ] || fail "a 1 MiB window left $resident MiB cached"
    fi
    stop_broker
  done
  # The window is reloadable: start with 0, SIGHUP to 1 MiB, then write.
  printf 'storage:\n  page_cache_window_bytes: 0\n' >"$work/window.yaml"
  rm -rf "$work/data"
  : >"$work/broker.log"  # earlier reloads logged the line waited for below
  start_broker --config "$work/window.yaml"
  echo first | timeout 20 kcat -b "$brokers" -P -t cached || fail "produce before the window reload"
  printf 'storage:\n  page_cache_window_bytes: 1048576\n' >"$work/window.yaml"
  kill -HUP "$broker_pid"
  for _ in $(seq 1 50); do grep -q 'configuration reloaded' "$work/broker.log" && break; sleep 0.1; done
  "$python" -c 'import sys; sys.stdout.write(("w" * 1000 + "\n") * 12000)' |
    timeout 60 kcat -b "$brokers" -P -t cached -X acks=all || fail "produce 12 MB after the window reload"
  resident=$(resident_mib "$work"/data/cached-0/*.log)
  for _ in $(seq 1 20); do
    [ "$resident" -le 4 ] && break
    sleep 0.1
    resident=$(resident_mib "$work"/data/cached-0/*.log)
  done
  [ "$resident" -le 4 ] || fail "after reloading a 1 MiB window, $resident MiB stayed cached"
  stop_broker
fi
# storage.lazy_sync_bytes: a topic flushed neither per append nor by time is synced in the
# background once 1 MiB of it is unsynced. Six writes of 1.5 MB each leave at least 1 MiB unsynced
# (what one sync leaves behind is under 1 MiB), so each is followed by a sync of its own, counted
# by the fsync histogram of /metrics however fast the broker runs; with 0 (the control) nothing
# syncs the topic while it runs.
fsyncs() {
  local address
  address=$(grep -o 'admin API listening on [^ ]*' "$work/broker.log" | tail -n 1 | awk '{print $5}')
  [ -n "$address" ] || fail "the broker did not announce its admin API"
  "$python" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
    "http://$address/metrics" | awk '/^sluice_storage_fsync_latency_seconds_count/ {print $2}'
}
for lazy in 1048576 0; do
  printf 'topic_defaults:\n  flush_messages: 1000000000\n  flush_ms: -1\nstorage:\n  lazy_sync_bytes: %s\n' "$lazy" \
    >"$work/lazy.yaml"
  rm -rf "$work/data"
  : >"$work/broker.log"
  start_broker --config "$work/lazy.yaml"
  echo first | timeout 20 kcat -b "$brokers" -P -t lazy || fail "create the lazy topic"
  before=$(fsyncs)
  synced=$before
  for write in 1 2 3 4 5 6; do
    "$python" -c 'import sys; sys.stdout.write(("l" * 1000 + "\n") * 1500)' |
      timeout 60 kcat -b "$brokers" -P -t lazy -X acks=1 || fail "produce 1.5 MB (lazy_sync_bytes $lazy)"
    [ "$lazy" = 0 ] && continue
    for _ in $(seq 1 100); do
      [ "$(fsyncs)" -gt "$synced" ] && break
      sleep 0.1
    done
    now=$(fsyncs)
    [ "$now" -gt "$synced" ] || fail "write $write of 1.5 MB was not followed by a sync (lazy_sync_bytes 1 MiB)"
    synced=$now
  done
  [ "$lazy" = 0 ] && sleep 1
  synced=$(( $(fsyncs) - before ))
  echo "lazy_sync_bytes $lazy: $synced fdatasyncs while 9 MB were written in 6 writes"
  if [ "$lazy" = 0 ]; then
    [ "$synced" -le 1 ] || fail "lazy_sync_bytes 0 still synced $synced times"
  fi
  stop_broker
done
echo "PASS: sluice serve --config, sluice config print, the data-directory lock, SIGHUP reload, the page cache window, lazy_sync_bytes"
