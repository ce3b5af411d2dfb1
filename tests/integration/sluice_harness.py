"""Shared by the Python integration tests that drive the real `sluice serve` over loopback.

    harness = Harness(sys.argv[1], "name", config="groups: {initial_rebalance_delay_ms: 0}\\n")
    harness.start_broker()            # on a free loopback port, data in harness.work/data
    harness.admin_url()               # "http://127.0.0.1:PORT" of its admin API (a free port too)
    harness.stop_broker()             # SIGTERM; must exit 0 within 20 s
    harness.kill_broker()             # SIGKILL
    harness.fail("message")           # prints FAIL, the broker log's tail, exits 1
    harness.wait_until(fn, 10, "what")  # polls fn() until truthy (returned), else fail
    harness.spawn([...], "name")      # a child process (logs to work/name.out), killed at exit
    harness.create_topic("t", 6)
    harness.watchdog(150)             # the whole test: FAIL and exit after 150 s

A scratch directory (harness.work) holds the data, the broker log and the children's output; it is
removed at exit unless SLUICE_KEEP_WORK=1. The broker and the children get SIGKILL if this process
dies (PR_SET_PDEATHSIG), and at exit if still running.

Worker processes (a test re-running itself with --worker ...) log events as JSON lines through
EventLog; the test reads them with EventReader (a line torn by SIGKILL is ignored)."""
import atexit
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

PYTHON = "/usr/bin/python3"  # Debian's client packages serve this interpreter (DESIGN.md)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """preexec_fn: SIGKILL the child when the process that spawned it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Harness:
    def __init__(self, sluice, name, config=None):
        self.sluice = sluice
        self.work = tempfile.mkdtemp(prefix="sluice-%s-" % name)
        self.data_dir = os.path.join(self.work, "data")
        self.log_path = os.path.join(self.work, "broker.log")
        self.port = free_port()
        self.brokers = "127.0.0.1:%d" % self.port
        self.broker = None
        self.broker_log_start = 0  # where the running broker's lines begin in the log
        self.admin_port = None
        self.children = []
        self.config_path = None
        if config is not None:
            self.config_path = os.path.join(self.work, "sluice.yaml")
            with open(self.config_path, "w") as f:
                f.write(config)
        atexit.register(self.cleanup)
        # ctest's timeout and a Ctrl-C still clean up (atexit runs on SystemExit).
        signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))

    # ---- failure and waiting

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, errors="replace") as log:
                return "".join(log.readlines()[-lines:])
        except OSError:
            return "(no broker log)\n"

    def fail(self, message):
        print("FAIL: " + message, file=sys.stderr)
        print("---- broker log (tail) ----\n" + self.log_tail(), file=sys.stderr, end="")
        sys.stderr.flush()
        sys.exit(1)

    def wait_until(self, predicate, timeout_s, what, interval_s=0.05):
        """Returns predicate()'s first truthy value; fails after timeout_s. `what` may be a callable
        (evaluated on failure, e.g. to show the last errors seen)."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                self.fail("timed out after %.1f s waiting for %s" % (timeout_s, what() if callable(what) else what))
            time.sleep(interval_s)

    # ---- the broker

    def wait_listening(self, timeout_s=15):
        def accepts():
            if self.broker is not None and self.broker.poll() is not None:
                self.fail("broker exited with %d before listening" % self.broker.returncode)
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return True
            except OSError:
                return False
        self.wait_until(accepts, timeout_s, "the broker to listen on " + self.brokers)

    def start_broker(self, *extra_args, admin=True):
        """Tests run brokers in parallel: the admin API goes on a free port (admin_url() says
        which) unless extra_args set --admin-listen, or admin=False leaves it to the config."""
        if self.broker is not None and self.broker.poll() is None:
            self.fail("start_broker: a broker is already running")
        args = [self.sluice, "serve", "--listen", self.brokers, "--data-dir", self.data_dir]
        if self.config_path:
            args += ["--config", self.config_path]
        if admin and "--admin-listen" not in extra_args:
            args += ["--admin-listen", "127.0.0.1:0"]
        self.admin_port = None
        self.broker_log_start = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        with open(self.log_path, "a") as log:
            log.write("==== harness: %s\n" % " ".join(args + list(extra_args)))
            log.flush()
            self.broker = subprocess.Popen(args + list(extra_args), stdout=log, stderr=subprocess.STDOUT,
                                           preexec_fn=_die_with_parent)
        self.wait_listening()

    def admin_url(self, timeout_s=10):
        """The running broker's admin API, from its "admin API listening on HOST:PORT" line."""
        if self.admin_port is None:
            def announced():
                with open(self.log_path, "rb") as log:
                    log.seek(self.broker_log_start)
                    found = re.search(rb"admin API listening on (\S+):(\d+)", log.read())
                return int(found.group(2)) if found else None
            self.admin_port = self.wait_until(announced, timeout_s, "the admin API to listen")
        return "http://127.0.0.1:%d" % self.admin_port

    def stop_broker(self, timeout_s=20):
        self.broker.send_signal(signal.SIGTERM)
        try:
            status = self.broker.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.fail("broker did not stop within %d s of SIGTERM" % timeout_s)
        if status != 0:
            self.fail("broker exited with %d after SIGTERM" % status)

    def kill_broker(self):
        self.broker.send_signal(signal.SIGKILL)
        self.broker.wait(10)

    def broker_log(self):
        with open(self.log_path, errors="replace") as log:
            return log.read()

    # ---- child processes

    def spawn(self, args, name):
        """A child process with stdout and stderr in work/NAME.out."""
        out = open(os.path.join(self.work, name + ".out"), "a")
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        out.close()
        process.sluice_name = name
        self.children.append(process)
        return process

    def child_output(self, name, lines=20):
        try:
            with open(os.path.join(self.work, name + ".out"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def signal_child(self, process):
        """Sends a worker SIGTERM once: a second one could land after Python has restored the
        default handler at interpreter exit and kill it with -15."""
        if not getattr(process, "sluice_signalled", False):
            process.send_signal(signal.SIGTERM)
            process.sluice_signalled = True

    def stop_child(self, process, timeout_s=20):
        """SIGTERM (workers close their client and exit 0); fails if it does not exit 0 in time."""
        self.signal_child(process)
        try:
            status = process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.fail("%s did not exit within %d s of SIGTERM:\n%s" %
                      (process.sluice_name, timeout_s, self.child_output(process.sluice_name)))
        if status != 0:
            self.fail("%s exited with %d:\n%s" % (process.sluice_name, status, self.child_output(process.sluice_name)))

    def check_children_alive(self, processes):
        for process in processes:
            if process.poll() is not None:
                self.fail("%s exited early with %d:\n%s" %
                          (process.sluice_name, process.returncode, self.child_output(process.sluice_name)))

    # ---- topics

    def create_topic(self, topic, partitions, timeout_s=20):
        from kafka import KafkaConsumer
        from kafka.admin import KafkaAdminClient, NewTopic
        admin = KafkaAdminClient(bootstrap_servers=self.brokers, request_timeout_ms=10000)
        try:
            response = admin.create_topics([NewTopic(topic, partitions, 1)])
            errors = [entry[1] for entry in response.topic_errors if entry[1] != 0]
            if errors:
                self.fail("create_topics %s: error %r" % (topic, errors))
        finally:
            admin.close()
        consumer = KafkaConsumer(bootstrap_servers=self.brokers)
        try:
            self.wait_until(lambda: len(consumer.partitions_for_topic(topic) or ()) == partitions, timeout_s,
                            "metadata to show %s with %d partitions" % (topic, partitions), 0.2)
        finally:
            consumer.close()

    # ---- exit

    def watchdog(self, timeout_s):
        """Bounds the whole test: after timeout_s, print FAIL and the broker log, clean up, exit 1."""
        def expire():
            print("FAIL: the test did not finish within %d s" % timeout_s, file=sys.stderr)
            print("---- broker log (tail) ----\n" + self.log_tail(), file=sys.stderr, end="")
            sys.stderr.flush()
            self.cleanup()
            os._exit(1)
        timer = threading.Timer(timeout_s, expire)
        timer.daemon = True
        timer.start()

    def cleanup(self):
        for process in self.children + ([self.broker] if self.broker else []):
            if process.poll() is None:
                process.kill()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        if os.environ.get("SLUICE_KEEP_WORK"):
            print("kept scratch directory " + self.work, file=sys.stderr)
        else:
            shutil.rmtree(self.work, ignore_errors=True)


# ---- worker-side helpers

class WorkerStop:
    """should_stop() is true after SIGTERM, when the parent is gone, or after max_lifetime_s."""

    def __init__(self, max_lifetime_s=240):
        self.stopping = False
        self.parent = os.getppid()
        self.deadline = time.monotonic() + max_lifetime_s
        signal.signal(signal.SIGTERM, self._on_term)

    def _on_term(self, *_):
        self.stopping = True

    def should_stop(self):
        return self.stopping or os.getppid() != self.parent or time.monotonic() > self.deadline


class EventLog:
    """Appends one JSON object per line with one write(2), stamped with wall time "t"."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, event, **fields):
        record = {"t": time.time(), "ev": event}
        record.update(fields)
        os.write(self.fd, (json.dumps(record, sort_keys=True) + "\n").encode())


class EventReader:
    """Reads an EventLog incrementally; new() returns the complete lines added since last call."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.events = []

    def new(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        fresh = [json.loads(line) for line in data[:end].split(b"\n") if line]
        self.events.extend(fresh)
        return fresh

    def all(self):
        self.new()
        return self.events


def run_logged_consumer(consumer, topic, log, stop):
    """Subscribes a confluent-kafka `consumer` to `topic`, logs its assign / revoke / lost
    callbacks (partition numbers) and poll errors to `log` until `stop` says so, then closes it."""
    def parts(partitions):
        return sorted(tp.partition for tp in partitions)

    consumer.subscribe([topic], on_assign=lambda c, p: log.write("assign", parts=parts(p)),
                       on_revoke=lambda c, p: log.write("revoke", parts=parts(p)),
                       on_lost=lambda c, p: log.write("lost", parts=parts(p)))
    log.write("started")
    while not stop.should_stop():
        message = consumer.poll(0.2)
        if message is not None and message.error():
            log.write("error", error=str(message.error()))
    log.write("closing")
    consumer.close()
    log.write("closed")
