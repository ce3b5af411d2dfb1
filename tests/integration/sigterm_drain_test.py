#!/usr/bin/python3
"""SIGTERM under load: the broker drains, loses no acknowledged message, and restarts without a
recovery scan.

Two idempotent confluent-kafka producers (acks=all) write uniquely numbered messages to a
3-partition topic as fast as they can, and a consumer group member reads and commits, while the
test sends the broker SIGTERM. Checked:
  - the broker exits 0 within the drain bound, its log saying it drained (no cancelled request);
  - it restarts from clean-shutdown markers: /metrics shows every partition (the topic's and
    __consumer_offsets') recovered clean with 0 batches scanned, and the log has no unclean open;
  - the producers carry on against the restarted broker; at the end every message a producer saw
    acknowledged, before or after the restart, is in the log exactly once (idempotence), read back
    by a fresh consumer from offset 0.
Usage: sigterm_drain_test.py SLUICE_BINARY   (or --worker ..., internally)"""
import os
import re
import sys
import time
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prometheus_text  # noqa: E402
from sluice_harness import PYTHON, EventLog, EventReader, Harness, WorkerStop, run_logged_consumer  # noqa: E402

TOPIC = "drain"
PARTITIONS = 3
PRODUCERS = 2


def producer_worker(brokers, name, log_path):
    from confluent_kafka import Producer

    stop = WorkerStop()
    log = EventLog(log_path)
    producer = Producer({"bootstrap.servers": brokers, "client.id": name, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 2, "message.timeout.ms": 60000,
                         "queue.buffering.max.messages": 20000})
    acked = []

    def on_delivery(error, message):
        if error is None:
            acked.append(message.value().decode())
        else:
            log.write("failed", id=message.value().decode(), error=str(error))

    sequence = 0
    log.write("started")
    while not stop.should_stop():
        try:
            producer.produce(TOPIC, ("%s-%d" % (name, sequence)).encode(), on_delivery=on_delivery)
            sequence += 1
        except BufferError:  # the local queue is full while the broker is away: wait for it
            producer.poll(0.05)
        producer.poll(0)
        if acked:
            log.write("acked", ids=acked[:])
            acked.clear()
    left = producer.flush(30)
    if acked:
        log.write("acked", ids=acked[:])
    log.write("closed", sent=sequence, unflushed=left)


def consumer_worker(brokers, name, log_path):
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "drain-readers", "client.id": name,
                         "session.timeout.ms": 6000, "auto.commit.interval.ms": 200,
                         "auto.offset.reset": "earliest"})
    run_logged_consumer(consumer, TOPIC, EventLog(log_path), WorkerStop())


def scrape(harness):
    with urllib.request.urlopen(harness.admin_url() + "/metrics", timeout=10) as response:
        return prometheus_text.parse(response.read().decode())


def read_everything(harness):
    """Every message of the topic, from offset 0 to each partition's high watermark."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": harness.brokers, "group.id": "drain-audit",
                         "enable.auto.commit": False})
    ends = {}
    for partition in range(PARTITIONS):
        low, high = consumer.get_watermark_offsets(TopicPartition(TOPIC, partition), timeout=10)
        ends[partition] = high
    consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    seen = []
    positions = {p: 0 for p in range(PARTITIONS)}
    deadline = time.monotonic() + 60
    while any(positions[p] < ends[p] for p in positions) and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.5):
            if message.error():
                continue
            seen.append(message.value().decode())
            positions[message.partition()] = message.offset() + 1
    consumer.close()
    if any(positions[p] < ends[p] for p in positions):
        harness.fail("could not read the topic back: at %s, ends %s" % (positions, ends))
    return seen


def main():
    harness = Harness(sys.argv[1], "sigterm-drain", config="groups:\n  initial_rebalance_delay_ms: 0\n")
    harness.watchdog(170)
    fail = harness.fail
    harness.start_broker()
    harness.wait_listening()
    harness.create_topic(TOPIC, PARTITIONS)

    readers = {}
    workers = []
    for i in range(PRODUCERS):
        name = "producer-%d" % i
        path = os.path.join(harness.work, name + ".events")
        readers[name] = EventReader(path)
        workers.append(harness.spawn([PYTHON, __file__, "--worker", "producer", harness.brokers, name, path], name))
    consumer_path = os.path.join(harness.work, "consumer.events")
    consumer = harness.spawn([PYTHON, __file__, "--worker", "consumer", harness.brokers, "consumer", consumer_path],
                             "consumer")

    def acked_ids():
        ids = []
        for reader in readers.values():
            reader.new()
            for event in reader.events:
                if event["ev"] == "acked":
                    ids.extend(event["ids"])
        return ids

    harness.wait_until(lambda: len(acked_ids()) >= 3000, 60,
                       lambda: "3000 acknowledged messages under load (%d so far)" % len(acked_ids()))
    harness.check_children_alive(workers + [consumer])
    acked_before_stop = len(acked_ids())

    # SIGTERM in the middle of the load.
    stop_started = time.monotonic()
    harness.stop_broker(timeout_s=15)
    stop_took = time.monotonic() - stop_started
    log = harness.broker_log()
    if not re.search(r"drained: every request in progress answered; took_ms=\d+", log):
        fail("the broker did not report a complete drain:\n" + "\n".join(
            line for line in log.splitlines() if "drain" in line))
    restart_log_start = len(log)

    harness.start_broker()
    harness.wait_listening()
    families = scrape(harness)
    partitions = [labels for series, labels, _ in families["sluice_partition_recovered_clean"].samples]
    if len(partitions) != PARTITIONS + 50:
        fail("expected %d partitions after the restart, /metrics lists %d" % (PARTITIONS + 50, len(partitions)))
    for series, labels, value in families["sluice_partition_recovered_clean"].samples:
        if value != 1:
            fail("%s-%s was not recovered from a clean-shutdown marker" % (labels["topic"], labels["partition"]))
    for series, labels, value in families["sluice_partition_recovery_batches_scanned"].samples:
        if value != 0:
            fail("%s-%s scanned %d batches to recover" % (labels["topic"], labels["partition"], value))
    restart_log = harness.broker_log()[restart_log_start:]
    if "unclean shutdown" in restart_log:
        fail("a log was opened after an unclean shutdown:\n" + restart_log[-2000:])

    # The load goes on against the restarted broker, then stops.
    harness.wait_until(lambda: len(acked_ids()) >= acked_before_stop + 2000, 60,
                       lambda: "acknowledgements to resume after the restart (%d, %d before the stop)" %
                       (len(acked_ids()), acked_before_stop))
    for worker in workers:
        harness.stop_child(worker, timeout_s=40)
    harness.stop_child(consumer)
    acked = acked_ids()
    failed = [event for reader in readers.values() for event in reader.events if event["ev"] == "failed"]

    stored = read_everything(harness)
    counts = {}
    for message in stored:
        counts[message] = counts.get(message, 0) + 1
    lost = [message for message in acked if message not in counts]
    duplicated = [message for message, count in counts.items() if count > 1]
    if lost:
        fail("%d acknowledged message(s) lost, e.g. %s" % (len(lost), lost[:5]))
    if duplicated:
        fail("%d message(s) stored twice despite idempotence, e.g. %s" % (len(duplicated), duplicated[:5]))
    harness.stop_broker()
    print("PASS: SIGTERM under load: stopped in %.2f s (drained), restarted clean (%d partitions, 0 batches "
          "scanned); %d acknowledged messages (%d before the stop) all stored once; %d stored in all, "
          "%d deliveries reported failed" % (stop_took, len(partitions), len(acked), acked_before_stop,
                                              len(stored), len(failed)))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        kind, brokers, name, path = sys.argv[2:6]
        (producer_worker if kind == "producer" else consumer_worker)(brokers, name, path)
    else:
        main()
