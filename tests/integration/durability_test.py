#!/usr/bin/python3
"""Acknowledged data survives SIGKILL; SIGTERM restarts without a recovery scan.

Starts the real `sluice serve`, runs a confluent-kafka (librdkafka) producer with acks=all and
idempotence that records every successful delivery report (partition, offset, value), SIGKILLs
the broker while the producer is sending, restarts it, and reads the topic back: every message
whose delivery succeeded must be at its reported offset with its value. Then SIGTERM and restart:
the partition logs must open from their clean-shutdown markers (0 batches scanned).
Usage: durability_test.py SLUICE_BINARY"""
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition

sluice = sys.argv[1]
work = tempfile.mkdtemp(prefix="sluice-durability-")
log_path = os.path.join(work, "broker.log")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


port = free_port()
brokers = "127.0.0.1:%d" % port


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    with open(log_path, errors="replace") as log:
        print("---- broker log (tail) ----\n" + "".join(log.readlines()[-40:]), file=sys.stderr)
    sys.exit(1)


def start_broker():
    log = open(log_path, "a")
    process = subprocess.Popen([sluice, "serve", "--listen", brokers, "--data-dir", os.path.join(work, "data"),
                                "--admin-listen", "127.0.0.1:0"],
                               stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    fail("broker did not start listening on " + brokers)


def read_back(topic, expected_count, timeout_s=30):
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "assign-only", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    found = {}
    deadline = time.monotonic() + timeout_s
    idle_polls = 0
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            idle_polls += 1
            if len(found) >= expected_count and idle_polls > 2:
                break
            continue
        idle_polls = 0
        if message.error():
            fail("consume error: %s" % message.error())
        found[message.offset()] = message.value()
    consumer.close()
    return found


try:
    broker = start_broker()
    topic = "durable"
    delivered = {}  # offset -> value
    errors = []
    lock = threading.Lock()
    stop = threading.Event()

    def on_delivery(error, message):
        with lock:
            if error is None:
                delivered[message.offset()] = message.value()
            else:
                errors.append(error)

    def produce_forever():
        producer = Producer({"bootstrap.servers": brokers, "acks": "all", "enable.idempotence": True,
                             "linger.ms": 2, "message.timeout.ms": 8000, "reconnect.backoff.max.ms": 200})
        sequence = 0
        while not stop.is_set():
            try:
                producer.produce(topic, value=b"value-%08d" % sequence, on_delivery=on_delivery)
                sequence += 1
            except BufferError:
                producer.poll(0.05)
            producer.poll(0)
            if sequence % 100 == 0:
                time.sleep(0.005)
        producer.flush(15)

    thread = threading.Thread(target=produce_forever)
    thread.start()
    time.sleep(1.5 + random.random())
    with lock:
        before_kill = len(delivered)
    broker.send_signal(signal.SIGKILL)
    broker.wait()
    time.sleep(0.5)
    broker = start_broker()
    time.sleep(2)
    stop.set()
    thread.join(60)
    if thread.is_alive():
        fail("producer did not finish")
    with lock:
        acknowledged = dict(delivered)
    if before_kill == 0:
        fail("no message was acknowledged before the SIGKILL")
    found = read_back(topic, len(acknowledged))
    lost = [offset for offset in acknowledged if found.get(offset) != acknowledged[offset]]
    if lost:
        fail("%d acknowledged messages lost or changed after SIGKILL, e.g. offsets %r" % (len(lost), sorted(lost)[:5]))
    print("SIGKILL: %d messages acknowledged (%d before the kill), all read back at their offsets; "
          "%d deliveries failed (allowed: not acknowledged)" % (len(acknowledged), before_kill, len(errors)))

    with open(log_path) as log:
        if "unclean shutdown" not in log.read():
            fail("the restart after SIGKILL did not report an unclean-shutdown recovery")

    broker.send_signal(signal.SIGTERM)
    if broker.wait(20) != 0:
        fail("broker did not exit 0 after SIGTERM")
    marker = os.path.getsize(log_path)
    started = time.monotonic()
    broker = start_broker()
    restart_s = time.monotonic() - started
    found_again = read_back(topic, len(found))
    if found_again != found:
        fail("data differs after the SIGTERM restart")
    with open(log_path) as log:
        log.seek(marker)
        tail = log.read()
    if "clean shutdown; 0 batches scanned" not in tail:
        fail("the restart after SIGTERM scanned the log: " + tail[-500:])
    print("SIGTERM: restart listened after %.2f s without a recovery scan; %d messages intact" % (restart_s, len(found_again)))
    broker.send_signal(signal.SIGTERM)
    broker.wait(20)
finally:
    try:
        broker.kill()
    except Exception:
        pass
    shutil.rmtree(work, ignore_errors=True)
