#!/usr/bin/python3
"""Bad input against the real `sluice serve`: random garbage, truncated frames, oversized length
prefixes, absurd array counts, unknown API keys and half-sent frames on many connections. The
broker must answer or close each connection, stay up, keep its memory bounded, and keep serving
a well-behaved client (kafka-python) throughout. Usage: bad_input_test.py SLUICE_BINARY"""
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

sluice = sys.argv[1]
work = tempfile.mkdtemp(prefix="sluice-bad-input-")
log_path = os.path.join(work, "broker.log")
random.seed(20261122)

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
brokers = "127.0.0.1:%d" % port


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    with open(log_path, errors="replace") as log:
        print("".join(log.readlines()[-30:]), file=sys.stderr)
    sys.exit(1)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def header(api_key, version, correlation_id, client_id=b"bad-input"):
    return struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id


def frame(body):
    return struct.pack(">i", len(body)) + body


def send_and_expect_close_or_answer(payload, label):
    """Sends payload; the broker must close the connection or answer; it must not hang."""
    with socket.create_connection(("127.0.0.1", port), 2) as connection:
        connection.settimeout(5)
        try:
            connection.sendall(payload)
            connection.shutdown(socket.SHUT_WR)
            while connection.recv(65536):
                pass
        except socket.timeout:
            fail("%s: the broker neither answered nor closed within 5 s" % label)
        except OSError:
            pass  # reset, broken pipe or not connected: the broker closed it, as it may


broker = subprocess.Popen([sluice, "serve", "--listen", brokers, "--data-dir", os.path.join(work, "data"),
                           "--admin-listen", "127.0.0.1:0"],
                          stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
try:
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                fail("broker did not start")
            time.sleep(0.05)

    producer = KafkaProducer(bootstrap_servers=brokers, acks=1)

    def healthy(round_number):
        producer.send("healthy", b"round-%d" % round_number).get(timeout=10)

    healthy(0)
    rss_start = rss_kib(broker.pid)

    cases = [
        ("empty frame", struct.pack(">i", 0)),
        ("negative length", struct.pack(">i", -5) + b"x" * 8),
        ("oversized length", struct.pack(">i", 0x7FFFFFF0) + b"x" * 100),
        ("truncated header", frame(b"\x00\x03")),
        ("unknown api key", frame(header(999, 0, 1))),
        ("unsupported produce version", frame(header(0, 99, 2) + b"\x00" * 20)),
        ("metadata with 2^31-1 topics", frame(header(3, 1, 3) + struct.pack(">i", 0x7FFFFFFF))),
        ("metadata topic with length 32767 and no bytes", frame(header(3, 1, 4) + struct.pack(">ih", 1, 32767))),
        ("produce with 2^31-1 topics", frame(header(0, 7, 5) + struct.pack(">hhii", -1, 1, 1000, 0x7FFFFFFF))),
        ("fetch with absurd partitions", frame(header(1, 11, 6) + struct.pack(">iiiiibii", -1, 100, 1, 1000, 0, 0, 0, -1)
                                               + struct.pack(">i", 1) + struct.pack(">h", 1) + b"t" + struct.pack(">i", 0x7FFFFFFF))),
        ("api versions v99 (KIP-511)", frame(header(18, 99, 7) + b"\xff" * 10)),
        ("produce with a corrupt batch", frame(header(0, 7, 8) + struct.pack(">hhii", -1, 1, 1000, 1) + struct.pack(">h", 1) + b"t"
                                              + struct.pack(">ii", 1, 0) + struct.pack(">i", 70) + os.urandom(70))),
    ]
    for round_number in range(1, 6):
        for label, payload in cases:
            send_and_expect_close_or_answer(payload, label)
        for _ in range(20):
            garbage = os.urandom(random.randint(1, 4096))
            send_and_expect_close_or_answer(garbage, "random garbage")
            send_and_expect_close_or_answer(frame(header(random.choice([0, 1, 2, 3, 18, 22]), random.randint(0, 12), 9)
                                                  + os.urandom(random.randint(0, 512))), "random body")
        healthy(round_number)

    # Half-sent frames on many idle connections: they hold no more than what was sent.
    idle = []
    for _ in range(200):
        connection = socket.create_connection(("127.0.0.1", port), 2)
        connection.sendall(struct.pack(">i", 50_000_000) + b"partial")
        idle.append(connection)
    healthy(99)
    rss_end = rss_kib(broker.pid)
    for connection in idle:
        connection.close()

    if broker.poll() is not None:
        fail("the broker exited with %s" % broker.returncode)
    growth_mib = (rss_end - rss_start) / 1024
    if growth_mib > 64:
        fail("broker RSS grew by %.1f MiB under bad input" % growth_mib)
    consumer = KafkaConsumer(bootstrap_servers=brokers, consumer_timeout_ms=5000)
    partition = TopicPartition("healthy", 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    values = [message.value for message in consumer]
    consumer.close()
    if len(values) != 7:
        fail("the healthy client's 7 messages read back as %r" % values)
    print("bad input: %d malformed requests and 200 half-sent frames handled; broker up; RSS %+.1f MiB; "
          "healthy client unaffected" % (5 * (len(cases) + 40), growth_mib))
finally:
    broker.terminate()
    try:
        broker.wait(20)
    except subprocess.TimeoutExpired:
        broker.kill()
    shutil.rmtree(work, ignore_errors=True)
