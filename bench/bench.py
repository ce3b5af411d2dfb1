#!/usr/bin/python3
"""The runner behind ci/bench.sh: the same workloads against Sluice and its peers on this machine.

Every run starts a fresh server (its data in a temporary directory, on free loopback ports),
drives it with a load client from bench/peers, records throughput, latency, the server's CPU
seconds (utime+stime from /proc/PID/stat) and peak RSS (VmHWM, reset before the run through
/proc/PID/clear_refs), checks the count the server stores against the acks, and stops it.
Results go to <out>/bench/results.json; bench/bench_report.py turns them into <out>/BENCHMARKS.md
and gnuplot plots. Exit 1 when a system cannot start or a run's stored count disagrees.

Systems and their modes (durable = acknowledged only once on disk):
  sluice  durable: topic default flush.messages=1 (every append fdatasync'ed before the ack), acks=all
          nondurable: flush.messages=2^63-1 and flush.ms=1000 (synced at most every ~1-2 s), acks=1
  redis   AOF appendfsync always / appendfsync no
  nats    durable: chattr +S on the JetStream store directory (every write synchronous: 2.9 has no
          sync option); as-shipped: file store acks after write(2), fsync every 2 minutes
  mock    librdkafka's in-memory mock cluster (non-durable only): the client library's ceiling
"""

import argparse
import atexit
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

FLUSH_NEVER = str(2**63 - 1)
FIXED_LATENCY_RATE = 1000  # msgs/s: workload 5's light load, the same for every system
NONDURABLE_FLUSH_MS = 1000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")

# (system, mode) pairs in report order. "durable" rows ack after fsync.
CONFIGS = [
    ("sluice", "durable"), ("redis", "durable"), ("nats", "durable"),
    ("sluice", "nondurable"), ("redis", "nondurable"), ("nats", "nondurable"), ("mock", "nondurable"),
]

LIVE_PROCESSES = []  # servers still running, killed at exit whatever happens


def kill_all():
    for process in list(LIVE_PROCESSES):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if process in LIVE_PROCESSES:
            LIVE_PROCESSES.remove(process)


def on_signal(number, _frame):
    kill_all()
    sys.exit(128 + number)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, process, timeout_s=15):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def proc_status_kib(pid, key):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


class StartError(Exception):
    pass


class Server:
    """One server process for one run; its data lives in `directory`, removed on stop."""

    name = "server"

    def __init__(self, bench, mode):
        self.bench = bench
        self.mode = mode
        self.directory = tempfile.mkdtemp(prefix=f"sluice-bench-{self.name}.", dir=bench.work_dir)
        self.process = None
        self.log_path = os.path.join(self.directory, "server.log")

    def spawn(self, argv, **kwargs):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(argv, stdout=kwargs.pop("stdout", log), stderr=log,
                                        stdin=kwargs.pop("stdin", subprocess.DEVNULL),
                                        start_new_session=True, cwd=self.directory, **kwargs)
        LIVE_PROCESSES.append(self.process)
        pid_file = os.environ.get("SLUICE_BENCH_PID_FILE")
        if pid_file:  # ci/bench.sh kills what is left if this process dies without cleaning up
            with open(pid_file, "a") as out:
                out.write(f"{self.process.pid}\n")

    def log_tail(self):
        try:
            with open(self.log_path, "rb") as log:
                return log.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process in LIVE_PROCESSES:
            LIVE_PROCESSES.remove(self.process)
        subprocess.run(["chattr", "-R", "-S", self.directory], stderr=subprocess.DEVNULL, check=False)
        shutil.rmtree(self.directory, ignore_errors=True)

    # Per-run measurements of the server process.
    def cpu_seconds(self):
        return proc_cpu_seconds(self.process.pid)

    def reset_peak(self):
        return reset_peak_rss(self.process.pid)

    def peak_rss_mb(self):
        return proc_status_kib(self.process.pid, "VmHWM") / 1024


class SluiceServer(Server):
    name = "sluice"

    def start(self):
        self.port = free_port()
        self.admin_port = free_port() if self.bench.sluice_has_admin else None
        config = os.path.join(self.directory, "sluice.yaml")
        flush = ("  flush_messages: 1\n  flush_ms: -1\n" if self.mode == "durable" else
                 f"  flush_messages: {FLUSH_NEVER}\n  flush_ms: {NONDURABLE_FLUSH_MS}\n")
        with open(config, "w") as out:
            out.write("kafka:\n  retention_check_interval_ms: 1000\n"
                      "topic_defaults:\n" + flush)
            if self.admin_port:
                out.write(f"admin:\n  listen: 127.0.0.1:{self.admin_port}\n")
        argv = [self.bench.tool("sluice"), "serve", "--config", config,
                "--listen", f"127.0.0.1:{self.port}",
                "--data-dir", os.path.join(self.directory, "data"), "--log-level", "warn"]
        self.spawn(argv)
        if not wait_for_port(self.port, self.process):
            raise StartError(f"sluice serve did not start:\n{self.log_tail()}")
        self.bootstrap = f"127.0.0.1:{self.port}"

    def create_topic(self, topic, partitions, configs=()):
        argv = [self.bench.tool("sluice"), "topic", "create", topic, "-p", str(partitions),
                "--brokers", self.bootstrap]
        for config in configs:
            argv += ["-c", config]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise StartError(f"sluice topic create {topic}: {result.stderr.strip()}")

    def metrics(self):
        """Counters from the admin API: fsyncs and produced bytes, for the bytes-per-sync figure."""
        if not self.admin_port:
            return None
        import urllib.request
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=5) as reply:
                text = reply.read().decode()
        except OSError:
            return None
        fsyncs = 0.0
        bytes_in = 0.0
        for line in text.splitlines():
            if line.startswith("sluice_storage_fsync_latency_seconds_count"):
                fsyncs = float(line.split()[-1])
            elif line.startswith("sluice_partition_bytes_in_total{"):
                bytes_in += float(line.split()[-1])
        return {"fsyncs": fsyncs, "bytes_in": bytes_in}

    def stored_by_cli(self, topic):
        """The topic's high watermarks summed, read with `sluice topic describe --json`."""
        result = subprocess.run([self.bench.tool("sluice"), "topic", "describe", topic, "--json",
                                 "--brokers", self.bootstrap], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            return None
        described = json.loads(result.stdout)
        return sum(p["high_watermark"] - p["log_start_offset"] for p in described["partitions"])

    def data_bytes(self):
        total = 0
        for root, _dirs, files in os.walk(os.path.join(self.directory, "data")):
            for name in files:
                try:
                    total += os.path.getsize(os.path.join(root, name))
                except OSError:
                    pass
        return total


class MockServer(Server):
    name = "mock"

    def start(self):
        self.spawn([self.bench.tool("sluice-mock-cluster")], stdout=subprocess.PIPE, stdin=subprocess.PIPE)
        line = self._read_line(10)
        if not line.startswith("bootstrap "):
            raise StartError(f"sluice-mock-cluster did not start: {line!r}\n{self.log_tail()}")
        self.bootstrap = line.split()[1]

    def _read_line(self, timeout_s):
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        if not ready:
            return ""
        return self.process.stdout.readline().decode().strip()

    def create_topic(self, topic, partitions, configs=()):
        self.process.stdin.write(f"topic {topic} {partitions}\n".encode())
        self.process.stdin.flush()
        answer = self._read_line(10)
        if answer != "ok":
            raise StartError(f"mock cluster: topic {topic}: {answer}")

    def stop(self):
        if self.process is not None and self.process.stdin:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        super().stop()


class RedisServer(Server):
    name = "redis"

    def start(self):
        self.port = free_port()
        argv = [self.bench.redis_server, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.directory, "--daemonize", "no", "--save", "", "--protected-mode", "yes",
                "--appendonly", "yes",
                "--appendfsync", "always" if self.mode == "durable" else "no",
                "--logfile", self.log_path]
        self.spawn(argv)
        if not wait_for_port(self.port, self.process):
            raise StartError(f"redis-server did not start:\n{self.log_tail()}")


class NatsServer(Server):
    name = "nats"

    def start(self):
        self.port = free_port()
        store = os.path.join(self.directory, "store")
        os.mkdir(store)
        if self.mode == "durable":
            # Emulates 2.10's sync_interval: always: new files inherit the synchronous attribute,
            # so every write of the store returns only once it is on disk.
            result = subprocess.run(["chattr", "+S", store], capture_output=True, text=True)
            if result.returncode != 0:
                raise StartError(f"chattr +S {store}: {result.stderr.strip()}")
        config = os.path.join(self.directory, "nats.conf")
        with open(config, "w") as out:
            out.write(f'listen: 127.0.0.1:{self.port}\nhttp: 0\n'
                      f'jetstream {{\n  store_dir: "{store}"\n  max_file_store: 64G\n}}\n')
        self.spawn([self.bench.nats_server, "-c", config])
        if not wait_for_port(self.port, self.process):
            raise StartError(f"nats-server did not start:\n{self.log_tail()}")
        self.url = f"nats://127.0.0.1:{self.port}"

    def store_synchronous(self):
        """Whether the stream's message files really carry the S attribute (checked once)."""
        result = subprocess.run(["lsattr", "-R", os.path.join(self.directory, "store")],
                                capture_output=True, text=True)
        blocks = [line for line in result.stdout.splitlines() if line.endswith(".blk")]
        return bool(blocks) and all("S" in line.split()[0] for line in blocks)


SERVERS = {"sluice": SluiceServer, "redis": RedisServer, "nats": NatsServer, "mock": MockServer}

# ---- workloads ----

WORKLOADS = {
    "w1": "one producer, one partition, 100 B messages, as fast as acks allow",
    "w2": "one producer, 1 KiB messages over 16 partitions (16 streams / subjects for the peers)",
    "w3": "50 producers, keyed 100 B messages over 16 partitions, each with at most 10 unacknowledged (small batches)",
    "w4": "catch-up read of a backlog of 1 KiB messages in 16 partitions, from the start",
    "w5": "end-to-end latency at 25/50/75% of the system's workload-1 peak, one producer and one consumer, 100 B, timed from the intended send time",
    "w6": "retention: 1 KiB messages into 16 partitions at half of the workload-2 peak, while retention deletes old data",
}


class Bench:
    def __init__(self, args):
        self.args = args
        self.build_dir = os.path.abspath(args.build_dir)
        self.work_dir = args.work_dir
        self.out_dir = os.path.abspath(args.out_dir)
        self.runs = []
        self.failures = []
        self.limits = []
        self.notes = []
        self.redis_server = shutil.which("redis-server")
        self.nats_server = shutil.which("nats-server")
        help_text = subprocess.run([self.tool("sluice"), "serve", "--help"], capture_output=True, text=True).stdout
        self.sluice_config = subprocess.run([self.tool("sluice"), "config", "print"], capture_output=True,
                                            text=True).stdout
        self.sluice_has_admin = "--admin-listen" in help_text
        self.smoke = args.smoke
        self.duration_s = args.duration_s or (1.0 if args.smoke else 5.0)
        self.warmup_s = 0 if args.smoke else min(2.0, self.duration_s)
        self.repeats = args.runs or (1 if args.smoke else 3)
        self.drain_s = 15 if args.smoke else 60
        self.systems = args.systems.split(",")
        self.workloads = args.workloads.split(",")
        self.load_fractions = [0.5] if args.smoke else [0.25, 0.5, 0.75]
        self.backlog_bytes = args.backlog_mib * 1024 * 1024
        self.retention_s = args.retention_s or (2.0 if args.smoke else 60.0)
        self.planned = 0
        self.done = 0
        self.started = time.monotonic()
        self.overhead_s = 1.5  # per run, updated as runs finish
        self.run_counter = 0

    def sluice_setting(self, section, key):
        """A value of `sluice config print` (the defaults the runs' servers use), or None."""
        match = re.search(rf"^{section}:\n(?:  .*\n)*?  {key}: (\S+)$", self.sluice_config, re.MULTILINE)
        if not match:
            return None
        try:
            return int(match.group(1))
        except ValueError:
            return match.group(1)

    def tool(self, name):
        if name == "sluice":
            return os.path.join(self.build_dir, "runtime", "sluice")
        return os.path.join(self.build_dir, "bench", name)

    def available(self, system):
        needs = {"sluice": [self.tool("sluice"), self.tool("sluice-kafka-load")],
                 "mock": [self.tool("sluice-mock-cluster"), self.tool("sluice-kafka-load")],
                 "redis": [self.redis_server, self.tool("sluice-redis-load")],
                 "nats": [self.nats_server, self.tool("sluice-nats-load")]}[system]
        missing = [path or f"{system} server binary" for path in needs if not path or not os.access(path, os.X_OK)]
        return missing

    # ---- progress ----

    def plan(self):
        configs = [c for c in CONFIGS if c[0] in self.systems]
        runs_per_cell = self.repeats + (1 if self.warmup_s > 0 else 0)
        per_run_s = self.duration_s + self.overhead_s
        total_runs = 0
        total_s = 0.0
        for workload in self.workloads:
            if workload in ("w1", "w2", "w3"):
                total_runs += len(configs) * runs_per_cell
                total_s += len(configs) * runs_per_cell * per_run_s
            elif workload == "w5":
                count = (len(configs) * (len(self.load_fractions) + 1) + (1 if self.mock_floor_planned() else 0)) * runs_per_cell
                total_runs += count
                total_s += count * per_run_s
            elif workload == "w4":
                systems = {c[0] for c in configs} - {"mock"}
                total_runs += len(systems) * runs_per_cell
                total_s += len(systems) * (self.backlog_bytes / 100e6 + runs_per_cell * (self.backlog_bytes / 500e6 + 2))
            elif workload == "w6":
                count = sum(1 for c in configs if c[0] in ("sluice", "redis", "nats")) - \
                    sum(1 for c in configs if c in (("redis", "durable"), ("nats", "durable")))
                total_runs += count
                total_s += count * (self.retention_s + 3) + self.retention_s
        self.planned = total_runs
        return total_s

    def progress(self, text):
        elapsed = time.monotonic() - self.started
        left = max(self.planned - self.done, 0)
        eta = left * (self.duration_s + self.overhead_s)
        print(f"[{self.done}/{self.planned} {elapsed:5.0f}s, ETA {eta / 60:4.1f} min] {text}", flush=True)

    # ---- one run ----

    def loader_argv(self, server, workload, run_id, params):
        system = server.name
        common = ["--duration-s", str(params["duration_s"]), "--message-bytes", str(params["message_bytes"]),
                  "--partitions", str(params["partitions"]), "--producers", str(params.get("producers", 1)),
                  "--drain-timeout-s", str(self.drain_s), "--json"]
        for name in ("rate", "window", "keys", "count"):
            if params.get(name):
                common += [f"--{name}", str(int(params[name]) if name != "rate" else params[name])]
        if params.get("end_to_end"):
            common.append("--end-to-end")
        if params.get("retention_bytes"):
            common.append("--retention")
        mode = params.get("mode", "produce")
        if system in ("sluice", "mock"):
            acks = "all" if server.mode == "durable" else "1"
            argv = [self.tool("sluice-kafka-load"), mode, "--brokers", server.bootstrap, "--topic", run_id]
            if mode == "produce":
                argv += ["--acks", acks, "--linger-ms", str(params.get("linger_ms", 5))]
            return argv + common
        if system == "redis":
            argv = [self.tool("sluice-redis-load"), mode, "--port", str(server.port), "--run-id", run_id]
            if params.get("retention_bytes"):
                per_stream = params["retention_bytes"] // params["partitions"]
                argv += ["--maxlen", str(per_stream // params["message_bytes"])]
            return argv + common
        argv = [self.tool("sluice-nats-load"), mode, "--url", server.url, "--run-id", run_id]
        if params.get("retention_bytes"):
            argv += ["--max-bytes", str(params["retention_bytes"] // params["partitions"])]
        return argv + common

    def prepare_topic(self, server, run_id, params):
        if server.name in ("sluice", "mock"):
            configs = []
            if server.name == "sluice" and params.get("retention_bytes"):
                per_partition = params["retention_bytes"] // params["partitions"]
                configs = [f"retention.bytes={per_partition}", f"segment.bytes={max(per_partition // 4, 1 << 20)}"]
            server.create_topic(run_id, params["partitions"], configs)

    def run_load(self, server, workload, params, label, warmup, run_id=None, prepare=True):
        """Runs one load against a started server; records and returns the run."""
        self.run_counter += 1
        run_id = run_id or f"b{self.run_counter}{workload}"
        begun = time.monotonic()
        if prepare and params.get("mode", "produce") == "produce" and not params.get("no_create"):
            self.prepare_topic(server, run_id, params)
        metrics_before = server.metrics() if isinstance(server, SluiceServer) else None
        cpu_before = server.cpu_seconds()
        server.reset_peak()
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        argv = self.loader_argv(server, workload, run_id, params)
        timeout_s = params["duration_s"] + 2 * self.drain_s + 60 + params.get("extra_timeout_s", 0)
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
            exit_code, stdout, stderr = result.returncode, result.stdout, result.stderr
        except subprocess.TimeoutExpired as expired:
            exit_code, stdout, stderr = -1, expired.stdout or "", f"load client timed out after {timeout_s:.0f} s"
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        alive = server.process.poll() is None
        record = {"workload": workload, "system": server.name, "mode": server.mode, "label": label,
                  "warmup": warmup, "params": {k: v for k, v in params.items() if k != "extra_timeout_s"},
                  "command": " ".join(argv), "exit_code": exit_code}
        load = {}
        for line in reversed((stdout or "").strip().splitlines()):
            try:
                load = json.loads(line)
                break
            except ValueError:
                continue
        record["load"] = load
        if alive:
            record["broker_cpu_s"] = server.cpu_seconds() - cpu_before
            record["broker_peak_rss_mb"] = server.peak_rss_mb()
        record["client_cpu_s"] = ((children_after.ru_utime + children_after.ru_stime) -
                                  (children_before.ru_utime + children_before.ru_stime))
        problems = []
        if not alive:
            problems.append(f"{server.name} exited during the run:\n{server.log_tail()}")
        if exit_code != 0 or not load.get("ok", False):
            problems.append(f"load client exit {exit_code}: {stderr.strip()[-1500:]}")
        if metrics_before is not None and alive:
            metrics_after = server.metrics()
            if metrics_after:
                fsyncs = metrics_after["fsyncs"] - metrics_before["fsyncs"]
                record["fsyncs"] = fsyncs
                if fsyncs > 0:
                    record["bytes_per_fsync"] = (metrics_after["bytes_in"] - metrics_before["bytes_in"]) / fsyncs
        if isinstance(server, SluiceServer) and alive and params.get("mode", "produce") == "produce":
            stored = server.stored_by_cli(run_id)
            record["stored_by_cli"] = stored
            expected = load.get("acked")
            if not params.get("retention_bytes") and stored is not None and expected is not None and stored != expected:
                problems.append(f"sluice topic describe: {stored} stored, {expected} acked")
        if isinstance(server, NatsServer) and server.mode == "durable" and alive:
            record["store_synchronous"] = server.store_synchronous()
        record["ok"] = not problems
        record["problems"] = problems
        record["wall_s"] = time.monotonic() - begun
        self.runs.append(record)
        self.done += 1
        self.overhead_s = 0.8 * self.overhead_s + 0.2 * max(record["wall_s"] - params["duration_s"], 0)
        summary = (f"{load.get('msgs_per_s', 0):>12,.0f} msgs/s {load.get('mb_per_s', 0):8.1f} MB/s"
                   if params.get("mode", "produce") == "produce" else
                   f"{load.get('msgs_per_s', 0):>12,.0f} msgs/s {load.get('consumed_mb_per_s', 0):8.1f} MB/s read")
        if "e2e_p99_ms" in load:
            summary += f"  e2e p50 {load['e2e_p50_ms']:.2f} p99 {load['e2e_p99_ms']:.2f} ms"
        self.progress(f"{workload} {server.name:6} {server.mode:10} {label:14}{' (warm-up)' if warmup else '':10} "
                      f"{summary}{'' if record['ok'] else '  FAILED'}")
        if problems:
            self.failures.append(f"{workload} {server.name} {server.mode} {label}: " + "; ".join(problems))
            print("    " + "\n    ".join("; ".join(problems).splitlines()[:12]), file=sys.stderr, flush=True)
        return record

    def with_server(self, system, mode, action):
        """Starts a fresh server, calls action(server), always stops it. A failed start is recorded."""
        server = SERVERS[system](self, mode)
        try:
            server.start()
            return action(server)
        except StartError as error:
            self.failures.append(f"{system} {mode}: cannot start: {error}")
            print(f"    {system} {mode}: cannot start: {error}", file=sys.stderr, flush=True)
            return None
        finally:
            server.stop()

    def cell(self, workload, system, mode, params_for, label=""):
        """A cell: warm-up (discarded) plus `repeats` runs, each on a fresh server."""
        runs = []
        plan = ([True] if self.warmup_s > 0 else []) + [False] * self.repeats
        for warmup in plan:
            params = params_for(warmup)
            record = self.with_server(system, mode, lambda server: self.run_load(server, workload, params, label, warmup))
            if record is None:
                self.done += 1
                return runs
            if not warmup:
                runs.append(record)
        syncs = [r["bytes_per_fsync"] for r in runs if r.get("bytes_per_fsync")]
        if system == "sluice" and mode == "durable" and syncs and workload in ("w1", "w2", "w3"):
            self.measure_disk(statistics.median(syncs), f"after {workload} sluice durable")
        return runs

    def configs(self):
        return [c for c in CONFIGS if c[0] in self.systems]

    # ---- workloads ----

    def throughput_params(self, workload):
        def params_for(warmup):
            duration = self.warmup_s if warmup else self.duration_s
            if workload == "w1":
                return {"duration_s": duration, "message_bytes": 100, "partitions": 1, "linger_ms": 5}
            if workload == "w2":
                return {"duration_s": duration, "message_bytes": 1024, "partitions": 16, "linger_ms": 5}
            return {"duration_s": duration, "message_bytes": 100, "partitions": 16, "producers": 50,
                    "window": 10, "keys": 1000, "linger_ms": 1}
        return params_for

    def peak(self, workload, system, mode):
        values = [r["load"].get("msgs_per_s", 0) for r in self.runs
                  if r["workload"] == workload and r["system"] == system and r["mode"] == mode
                  and not r["warmup"] and r["ok"]]
        return statistics.median(values) if values else 0

    def run_latency(self, system, mode):
        peak = self.peak("w1", system, mode)
        if peak <= 0:
            self.notes.append(f"w5 {system} {mode}: skipped, no workload-1 peak measured")
            floor = 1 if system == "mock" and self.mock_floor_planned() else 0
            self.done += (len(self.load_fractions) + 1 + floor) * (self.repeats + (1 if self.warmup_s > 0 else 0))
            return
        # The shares of each system's own peak, then one light load the same for every system
        # (the latency floor, comparable across systems whatever their peaks).
        loads = [(fraction, round(peak * fraction)) for fraction in self.load_fractions]
        loads.append((None, min(FIXED_LATENCY_RATE, round(peak / 2))))
        for fraction, rate in loads:
            # The mock trims each partition to its last few MB, faster than a consumer keeps up
            # at its rates: its row has ack latency only.
            def params_for(warmup, rate=rate, fraction=fraction):
                return {"duration_s": self.warmup_s if warmup else self.duration_s, "message_bytes": 100,
                        "partitions": 1, "rate": rate, "end_to_end": system != "mock", "linger_ms": 1,
                        "load_fraction": fraction}
            label = f"{int(fraction * 100)}% = {rate:,}/s" if fraction else f"fixed {rate:,}/s"
            self.cell("w5", system, mode, params_for, label=label)
        if system == "mock" and self.mock_floor_planned():
            # The client's own ack latency at the rate of Sluice durable's 50% row, against a broker
            # that does no work: the part of Sluice's end-to-end latency target the client takes.
            rate = round(self.peak("w1", "sluice", "durable") * 0.5)
            if rate <= 0:
                self.done += self.repeats + (1 if self.warmup_s > 0 else 0)
                return

            def floor_params(warmup, rate=rate):
                return {"duration_s": self.warmup_s if warmup else self.duration_s, "message_bytes": 100,
                        "partitions": 1, "rate": rate, "end_to_end": False, "linger_ms": 1,
                        "load_fraction": None, "client_floor_for": "sluice durable 50%"}
            self.cell("w5", system, mode, floor_params, label=f"Sluice durable's 50% = {rate:,}/s")

    def mock_floor_planned(self):
        configs = self.configs()
        return ("mock", "nondurable") in configs and ("sluice", "durable") in configs and 0.5 in self.load_fractions

    def run_backlog(self, system):
        """Workload 4: fill a backlog once (non-durable mode), then read it from the start several times."""
        count = max(self.backlog_bytes // 1024, 1)
        fill = {"duration_s": 3600, "message_bytes": 1024, "partitions": 16, "count": count, "linger_ms": 5,
                "extra_timeout_s": 600}
        run_id = f"backlog{self.run_counter + 1}"

        def action(server):
            record = self.run_load(server, "w4", fill, f"fill {self.backlog_bytes >> 20} MiB", True, run_id=run_id)
            if not record["ok"]:
                return None
            plan = ([True] if self.warmup_s > 0 else []) + [False] * self.repeats
            for warmup in plan:
                read = {"duration_s": 0, "message_bytes": 1024, "partitions": 16, "mode": "consume",
                        "extra_timeout_s": 600}
                reading = self.run_load(server, "w4", read, f"read {self.backlog_bytes >> 20} MiB", warmup,
                                        run_id=run_id, prepare=False)
                if reading["load"].get("consumed") != record["load"].get("acked"):
                    problem = (f"read {reading['load'].get('consumed')} messages of the "
                               f"{record['load'].get('acked')} acknowledged")
                    reading["ok"] = False
                    reading["problems"].append(problem)
                    self.failures.append(f"w4 {system} read: {problem}")
            return True
        mode = "nondurable"
        self.planned += 1  # the fill run
        if self.with_server(system, mode, action) is None:
            self.done += self.repeats + (1 if self.warmup_s > 0 else 0)

    def run_retention(self, system, mode):
        """Workload 6: a long run at half the workload-2 peak with retention bounding the data."""
        peak = self.peak("w2", system, mode)
        rate = round(peak / 2) if peak > 0 else 0
        retention_bytes = 64 << 20 if self.smoke else 256 << 20
        params = {"duration_s": self.retention_s, "message_bytes": 1024, "partitions": 16,
                  "rate": rate, "linger_ms": 5, "retention_bytes": retention_bytes}

        def action(server):
            sampler = RssSampler(server)
            try:
                record = self.run_load(server, "w6", params, f"{rate:,}/s, keep {retention_bytes >> 20} MiB", False)
            finally:
                sampler.stop_event.set()
                sampler.thread.join()
            record["rss_samples_mb"] = sampler.samples
            if isinstance(server, SluiceServer):
                record["data_bytes_after"] = server.data_bytes()
            return record
        if self.with_server(system, mode, action) is None:
            self.done += 1

    def measure_disk(self, sync_bytes, context, duration=None, runs=None):
        """The raw pwrite+fdatasync loop at one sync size: the median of three short runs, taken
        right where it is compared (the disk's sync speed drifts with the machine's other traffic).
        With `duration`, what the disk sustains that long (a virtual disk absorbs short bursts)."""
        duration = duration or (0.3 if self.smoke else 1.0)
        directory = tempfile.mkdtemp(prefix="sluice-bench-limits.", dir=self.work_dir)
        samples = []
        try:
            for _ in range(runs or (1 if self.smoke else 3)):
                result = subprocess.run([self.tool("sluice-limits"), "disk", "--dir", directory, "--sync-bytes",
                                         str(int(sync_bytes)), "--duration-s", str(duration)],
                                        capture_output=True, text=True, timeout=120 + duration)
                if result.returncode != 0:
                    self.failures.append(f"disk limit {sync_bytes}: {result.stderr.strip()}")
                    return None
                samples.append(json.loads(result.stdout))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        chosen = sorted(samples, key=lambda sample: sample["mb_per_s"])[len(samples) // 2]
        chosen["context"] = context
        chosen["mb_per_s_min"] = min(sample["mb_per_s"] for sample in samples)
        chosen["mb_per_s_max"] = max(sample["mb_per_s"] for sample in samples)
        self.limits.append(chosen)
        print(f"    limit ({context}): pwrite+fdatasync {int(sync_bytes):>8} B: {chosen['mb_per_s']:8.1f} MB/s, "
              f"{chosen['syncs_per_s']:8.0f} syncs/s", flush=True)
        return chosen

    def run_limits(self, context):
        """The physical limits at fixed sizes (start and end of the run) and loopback TCP."""
        for size in (4096, 65536, 1 << 20):
            self.measure_disk(size, context)
        duration = 0.5 if self.smoke else 2.0
        result = subprocess.run([self.tool("sluice-limits"), "tcp", "--duration-s", str(2 * duration)],
                                capture_output=True, text=True, timeout=120)
        if result.returncode == 0:
            limit = json.loads(result.stdout)
            limit["context"] = context
            self.limits.append(limit)
            print(f"    limit ({context}): loopback TCP {limit['mb_per_s']:.0f} MB/s, "
                  f"RTT p50 {limit['rtt_p50_ms'] * 1000:.0f} us", flush=True)
        else:
            self.failures.append(f"tcp limit: {result.stderr.strip()}")

    def run(self):
        for system in self.systems:
            missing = self.available(system)
            if missing:
                self.failures.append(f"{system}: cannot start, missing: {', '.join(missing)}")
        self.systems = [s for s in self.systems if not self.available(s)]
        estimate = self.plan()
        print(f"bench: {self.planned} runs planned, about {estimate / 60:.1f} min "
              f"({'smoke' if self.smoke else 'full'}; {self.duration_s:g} s per run, {self.repeats} runs per cell"
              f"{', plus a discarded warm-up' if self.warmup_s else ''})", flush=True)
        self.load_start = os.getloadavg()
        self.run_limits("start")
        for workload in ("w1", "w2", "w3"):
            if workload in self.workloads:
                for system, mode in self.configs():
                    self.cell(workload, system, mode, self.throughput_params(workload))
        if "w5" in self.workloads:
            for system, mode in self.configs():
                self.run_latency(system, mode)
        if "w4" in self.workloads:
            # Not the mock: it keeps only the last few MB of each partition in memory.
            for system in [s for s in ("sluice", "redis", "nats") if s in self.systems]:
                self.run_backlog(system)
        if "w6" in self.workloads:
            # The w6 rates are set from short w2 runs; what the disk keeps up for as long as a w6
            # run is measured here, so a row that falls short of its target can be read against it.
            self.measure_disk(1 << 20, "before w6, sustained", duration=self.retention_s, runs=1)
            # Non-durable, so the peers fill their retention limit too; Sluice durable as well.
            for system, mode in [("sluice", "durable"), ("sluice", "nondurable"), ("redis", "nondurable"),
                                 ("nats", "nondurable")]:
                if system in self.systems:
                    self.run_retention(system, mode)
        self.run_limits("end")
        self.load_end = os.getloadavg()


class RssSampler:
    """Samples a server's RSS once a second on a thread (workload 6: is memory bounded?)."""

    def __init__(self, server):
        import threading
        self.samples = []
        self.server = server
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        started = time.monotonic()
        while not self.stop_event.wait(1.0):
            try:
                rss = proc_status_kib(self.server.process.pid, "VmRSS") / 1024
            except OSError:
                return
            self.samples.append([round(time.monotonic() - started, 1), round(rss, 1)])


def machine_info(work_dir, build_dir):
    def run(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    cpu = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_kib = proc_status_kib_meminfo()
    df = run(["df", "-T", work_dir]).splitlines()
    device, fs_type = (df[-1].split()[0], df[-1].split()[1]) if len(df) > 1 else ("?", "?")
    block = os.path.basename(device).rstrip("0123456789") if device.startswith("/dev/") else ""
    rotational = run(["cat", f"/sys/block/{block}/queue/rotational"]) if block else ""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    versions = {
        "sluice": run([os.path.join(build_dir, "runtime", "sluice"), "--version"]),
        "sluice_commit": run(["git", "-C", repo, "describe", "--always", "--dirty"]),
        "redis": run(["redis-server", "--version"]),
        "nats": run(["nats-server", "--version"]),
        "librdkafka": run(["pkg-config", "--modversion", "rdkafka"]),
        "hiredis": run(["pkg-config", "--modversion", "hiredis"]),
        "libnats": run(["pkg-config", "--modversion", "libnats"]),
        "gnuplot": run(["gnuplot", "--version"]),
        "compiler": run(["c++", "--version"]).splitlines()[0] if run(["c++", "--version"]) else "",
    }
    build_type = ""
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as cache:
            for line in cache:
                if line.startswith("CMAKE_BUILD_TYPE:"):
                    build_type = line.split("=", 1)[1].strip()
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gib": round(memory_kib / 1024 / 1024, 1),
            "kernel": platform.release(), "os": run(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
            "disk": {"work_dir": work_dir, "device": device, "filesystem": fs_type,
                     "rotational": rotational == "1"},
            "build_type": build_type, "versions": versions}


def proc_status_kib_meminfo():
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="every system and workload for about a second")
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--out-dir", required=True, help="BENCHMARKS.md goes here, plots and JSON in bench/")
    parser.add_argument("--work-dir", default=os.environ.get("TMPDIR", "/tmp"),
                        help="temporary data directories (the disk measured)")
    parser.add_argument("--systems", default="sluice,redis,nats,mock")
    parser.add_argument("--workloads", default="w1,w2,w3,w5,w4,w6")
    parser.add_argument("--duration-s", type=float, default=0, help="seconds per run (default 5; smoke 1)")
    parser.add_argument("--runs", type=int, default=0, help="measured runs per cell (default 3; smoke 1)")
    parser.add_argument("--backlog-mib", type=int, default=0, help="workload 4 backlog (default 2048; smoke 32)")
    parser.add_argument("--retention-s", type=float, default=0, help="workload 6 duration (default 60; smoke 2)")
    parser.add_argument("--command", default="", help="the command line to print in the report")
    parser.add_argument("--note", action="append", default=[], help="a note for the report (repeatable)")
    args = parser.parse_args()
    if not args.backlog_mib:
        args.backlog_mib = 32 if args.smoke else 2048
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    atexit.register(kill_all)

    bench = Bench(args)
    bench.notes.extend(args.note)
    started_wall = time.time()
    bench.run()
    results = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started_wall)),
        "smoke": args.smoke,
        "command": args.command or " ".join(sys.argv),
        "elapsed_s": round(time.monotonic() - bench.started, 1),
        "machine": machine_info(args.work_dir, bench.build_dir),
        "load_average": {"start": bench.load_start, "end": bench.load_end},
        "settings": {"duration_s": bench.duration_s, "warmup_s": bench.warmup_s, "runs_per_cell": bench.repeats,
                     "load_fractions": bench.load_fractions, "backlog_bytes": bench.backlog_bytes,
                     "retention_s": bench.retention_s, "nondurable_flush_ms": NONDURABLE_FLUSH_MS,
                     "sluice_page_cache_window_bytes": bench.sluice_setting("storage", "page_cache_window_bytes")},
        "workloads": WORKLOADS,
        "runs": bench.runs,
        "limits": bench.limits,
        "failures": bench.failures,
        "notes": bench.notes,
    }
    os.makedirs(os.path.join(args.out_dir, "bench"), exist_ok=True)
    results_path = os.path.join(args.out_dir, "bench", "results.json")
    with open(results_path, "w") as out:
        json.dump(results, out, indent=1)
    report = subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_report.py"),
                             results_path, args.out_dir])
    print(f"bench: {len(bench.runs)} runs in {results['elapsed_s']:.0f} s; results in {results_path}", flush=True)
    if report.returncode != 0:
        bench.failures.append("bench_report.py failed")
    if bench.failures:
        print("bench: FAILED:\n  " + "\n  ".join(f.splitlines()[0] for f in bench.failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
