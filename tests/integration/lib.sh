# Shared by the integration scripts (source it after setting `sluice` to the binary): a scratch
# directory removed on exit, a free loopback port, and a broker started and stopped on it.
#   work, python, port, brokers, broker_pid
#   fail MESSAGE            print the message and the broker log's tail, exit 1
#   free_port               print a free loopback port
#   wait_listening PORT     wait (≤ 10 s) until something accepts on PORT, else fail
#   start_broker [ARGS...]  `sluice serve` on $brokers with data in $work/data (plus ARGS), its
#                           admin API on a free port unless ARGS set --admin-listen (tests
#                           run brokers in parallel)
#   stop_broker             SIGTERM; it must exit 0 within 20 s
python=/usr/bin/python3  # Debian's client packages serve this interpreter (DESIGN.md)
for tool in kcat "$python"; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run ci/install-deps.sh" >&2; exit 1; }
done

work=$(mktemp -d)
broker_pid=""
sluice_integration_cleanup() {
  if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then kill -KILL "$broker_pid"; fi
  rm -rf "$work"
}
trap sluice_integration_cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  echo "---- broker log ----" >&2
  tail -n 40 "$work/broker.log" >&2 2>/dev/null || true
  exit 1
}

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_listening() {
  for _ in $(seq 1 100); do
    "$python" -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "nothing listens on port $1"
}

port=$(free_port)
brokers="127.0.0.1:$port"

start_broker() {
  local admin=(--admin-listen 127.0.0.1:0)
  case " $* " in *" --admin-listen "*) admin=() ;; esac
  "$sluice" serve --listen "$brokers" --data-dir "$work/data" "${admin[@]}" "$@" >>"$work/broker.log" 2>&1 &
  broker_pid=$!
  wait_listening "$port"
}

stop_broker() {
  kill -TERM "$broker_pid"
  local status=0
  timeout 20 tail --pid="$broker_pid" -f /dev/null || fail "broker did not stop within 20 s of SIGTERM"
  wait "$broker_pid" || status=$?
  broker_pid=""
  [ "$status" -eq 0 ] || fail "broker exited with $status after SIGTERM"
}
