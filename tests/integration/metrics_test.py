"""Every metric the admin API's /metrics exports moves as it should under a real-client workload.

The exposition is parsed with a strict Prometheus text-format parser (prometheus_text.py, shown
first to refuse malformed input). Workload: confluent-kafka (librdkafka) producers with acks=all,
a consumer group that commits and a second member that joins it, an admin error, a retention
that deletes segments, and a raw socket that holds request memory. Checked with exact numbers
where the workload fixes them: records in/out, log end and start offsets, committed offsets and
lag; and as movement otherwise: per-API requests, errors and latency, fsyncs, rebalances,
connections, request memory.

Usage: metrics_test.py SLUICE_BINARY"""
import os
import socket
import struct
import sys
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prometheus_text  # noqa: E402
from sluice_harness import Harness  # noqa: E402

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

CONFIG = """kafka:
  retention_check_interval_ms: 300
groups:
  initial_rebalance_delay_ms: 0
"""
MESSAGES = 1000
EXPECTED_FAMILIES = {
    "sluice_kafka_requests_total": "counter",
    "sluice_kafka_request_errors_total": "counter",
    "sluice_kafka_request_latency_seconds": "histogram",
    "sluice_partition_bytes_in_total": "counter",
    "sluice_partition_records_in_total": "counter",
    "sluice_partition_bytes_out_total": "counter",
    "sluice_partition_records_out_total": "counter",
    "sluice_partition_log_start_offset": "gauge",
    "sluice_partition_log_end_offset": "gauge",
    "sluice_partition_high_watermark": "gauge",
    "sluice_storage_fsync_latency_seconds": "histogram",
    "sluice_storage_fsync_errors_total": "counter",
    "sluice_group_rebalances_total": "counter",
    "sluice_group_members": "gauge",
    "sluice_group_committed_offset": "gauge",
    "sluice_group_consumer_lag": "gauge",
    "sluice_connections_open": "gauge",
    "sluice_connections_accepted_total": "counter",
    "sluice_connections_closed_total": "counter",
    "sluice_request_memory_used_bytes": "gauge",
    "sluice_request_memory_budget_bytes": "gauge",
}

harness = Harness(sys.argv[1], "metrics", config=CONFIG)
harness.watchdog(170)
prometheus_text.self_test()
harness.start_broker()
harness.wait_listening()


def scrape():
    with urllib.request.urlopen(harness.admin_url() + "/metrics", timeout=10) as response:
        content_type = response.headers.get("Content-Type", "")
        if not content_type.startswith("text/plain; version=0.0.4"):
            harness.fail("/metrics Content-Type is %r" % content_type)
        text = response.read().decode()
    try:
        return prometheus_text.parse(text)
    except prometheus_text.FormatError as error:
        harness.fail("/metrics is not valid Prometheus text: %s" % error)


def value(families, series, **labels):
    found = prometheus_text.value(families, series, **labels)
    if found is None:
        harness.fail("no sample %s%s in /metrics" % (series, labels))
    return found


def total(families, series, **labels):
    """The sum over every sample of `series` whose labels include `labels`."""
    name = series
    for suffix in ("_bucket", "_sum", "_count"):
        if series.endswith(suffix) and series[: -len(suffix)] in families:
            name = series[: -len(suffix)]
    family = families.get(name)
    if family is None:
        harness.fail("no family %s in /metrics" % name)
    return sum(v for s, l, v in family.samples
               if s == series and all(l.get(k) == str(want) for k, want in labels.items()))


def expect(condition, message):
    if not condition:
        harness.fail(message)


def delivered_count(producer_config, messages):
    """Produces `messages` (topic, partition, bytes) with acks=all; returns how many were acked."""
    producer = Producer(dict(producer_config, **{"bootstrap.servers": harness.brokers, "acks": "all",
                                                 "linger.ms": 5}))
    acked = []

    def on_delivery(error, message):
        if error is None:
            acked.append(message.offset())

    for topic, partition, payload in messages:
        producer.produce(topic, payload, partition=partition, on_delivery=on_delivery)
        producer.poll(0)
    left = producer.flush(30)
    expect(left == 0, "%d message(s) not delivered within 30 s" % left)
    return len(acked), producer


before = scrape()
for name, type_ in EXPECTED_FAMILIES.items():
    expect(name in before, "/metrics lacks %s" % name)
    expect(before[name].type == type_, "%s is a %s, expected %s" % (name, before[name].type, type_))
    expect(before[name].help, "%s has no HELP" % name)
expect(value(before, "sluice_request_memory_budget_bytes") > 0, "no request memory budget")

# ---- produce: records, bytes, log end offsets, Produce requests, latency, fsyncs, connections
harness.create_topic("metrics", 2)
payload = b"x" * 100
acked, producer = delivered_count({}, [("metrics", i % 2, payload) for i in range(MESSAGES)])
expect(acked == MESSAGES, "only %d of %d messages acked" % (acked, MESSAGES))
produced = scrape()
expect(total(produced, "sluice_partition_records_in_total", topic="metrics") == MESSAGES,
       "records in: %s" % total(produced, "sluice_partition_records_in_total", topic="metrics"))
expect(total(produced, "sluice_partition_bytes_in_total", topic="metrics") > MESSAGES * len(payload),
       "bytes in too small")
for partition in (0, 1):
    for gauge in ("sluice_partition_log_end_offset", "sluice_partition_high_watermark"):
        expect(value(produced, gauge, topic="metrics", partition=partition) == MESSAGES / 2,
               "%s of metrics-%d is %s" % (gauge, partition, value(produced, gauge, topic="metrics",
                                                                     partition=partition)))
    expect(value(produced, "sluice_partition_log_start_offset", topic="metrics", partition=partition) == 0,
           "log start offset moved without retention")
produce_requests = value(produced, "sluice_kafka_requests_total", api="Produce")
expect(produce_requests >= 2, "Produce requests: %s" % produce_requests)
expect(value(produced, "sluice_kafka_request_latency_seconds_count", api="Produce") == produce_requests,
       "Produce latency count differs from its request count")
expect(value(produced, "sluice_kafka_request_errors_total", api="Produce") == 0, "Produce errors")
expect(value(produced, "sluice_storage_fsync_latency_seconds_count") >
       value(before, "sluice_storage_fsync_latency_seconds_count"), "no fsync counted for acks=all")
expect(value(produced, "sluice_storage_fsync_latency_seconds_sum") > 0, "fsyncs took no time")
expect(value(produced, "sluice_connections_open") >= 1, "the producer's connection is not counted open")
expect(value(produced, "sluice_connections_accepted_total") > value(before, "sluice_connections_accepted_total"),
       "no connection accepted")
expect(value(produced, "sluice_kafka_requests_total", api="ApiVersions") >= 1, "no ApiVersions counted")

# ---- a consumer group: bytes and records out, rebalances, members, committed offsets, lag
group_config = {"bootstrap.servers": harness.brokers, "group.id": "readers", "enable.auto.commit": False,
                "auto.offset.reset": "earliest", "session.timeout.ms": 6000}
first = Consumer(group_config)
first.subscribe(["metrics"])
received = [0]


def consumed_all():
    received[0] += len(first.consume(500, 0.5))
    return received[0] >= MESSAGES


harness.wait_until(consumed_all, 40, lambda: "%d of %d messages consumed" % (received[0], MESSAGES))
first.commit(asynchronous=False)
consumed = scrape()
expect(total(consumed, "sluice_partition_records_out_total", topic="metrics") >= MESSAGES, "records out")
expect(total(consumed, "sluice_partition_bytes_out_total", topic="metrics") >=
       total(consumed, "sluice_partition_bytes_in_total", topic="metrics"), "bytes out < bytes in")
rebalances = value(consumed, "sluice_group_rebalances_total")
expect(rebalances >= 1, "no rebalance counted after a join")
expect(value(consumed, "sluice_group_members", group="readers") == 1, "members of readers")
for partition in (0, 1):
    expect(value(consumed, "sluice_group_committed_offset", group="readers", topic="metrics",
                 partition=partition) == MESSAGES / 2, "committed offset of metrics-%d" % partition)
    expect(value(consumed, "sluice_group_consumer_lag", group="readers", topic="metrics", partition=partition) == 0,
           "lag of metrics-%d after committing everything" % partition)
for api in ("FindCoordinator", "JoinGroup", "SyncGroup", "OffsetCommit", "Fetch"):
    expect(value(consumed, "sluice_kafka_requests_total", api=api) >= 1, "no %s request counted" % api)

# 50 more to partition 0 while the group does not consume: lag 50 there, 0 on partition 1.
acked, producer = delivered_count({}, [("metrics", 0, payload) for _ in range(50)])
expect(acked == 50, "extra messages not acked")
lagging = scrape()
expect(value(lagging, "sluice_group_consumer_lag", group="readers", topic="metrics", partition=0) == 50,
       "lag of metrics-0 is %s, expected 50" %
       value(lagging, "sluice_group_consumer_lag", group="readers", topic="metrics", partition=0))
expect(value(lagging, "sluice_group_consumer_lag", group="readers", topic="metrics", partition=1) == 0,
       "lag of metrics-1 moved")

# A second member: another rebalance, two members.
second = Consumer(group_config)
second.subscribe(["metrics"])


def two_members():
    first.poll(0.1)
    second.poll(0.1)
    families = scrape()
    return (value(families, "sluice_group_members", group="readers") == 2 and
            value(families, "sluice_group_rebalances_total") > rebalances)


harness.wait_until(two_members, 40, "a second member to join and a rebalance to be counted")

# ---- an error answer: CreateTopics of a topic that exists
admin = AdminClient({"bootstrap.servers": harness.brokers})
errors_before = value(scrape(), "sluice_kafka_request_errors_total", api="CreateTopics")
try:
    admin.create_topics([NewTopic("metrics", 2, 1)])["metrics"].result(15)
    harness.fail("creating an existing topic succeeded")
except Exception:  # TOPIC_ALREADY_EXISTS, as expected
    pass
expect(value(scrape(), "sluice_kafka_request_errors_total", api="CreateTopics") == errors_before + 1,
       "the CreateTopics error was not counted")

# ---- retention: the log start offset moves when segments are deleted
retained = admin.create_topics([NewTopic("retained", 1, 1, config={"segment.bytes": "4096",
                                                                    "retention.bytes": "8192"})])
retained["retained"].result(15)
acked, producer = delivered_count({"batch.size": 1000}, [("retained", 0, b"r" * 500) for _ in range(200)])
expect(acked == 200, "retained messages not acked")
harness.wait_until(lambda: value(scrape(), "sluice_partition_log_start_offset", topic="retained", partition=0) > 0,
                   20, "retention to move the log start offset of retained-0")
end = value(scrape(), "sluice_partition_log_end_offset", topic="retained", partition=0)
expect(end == 200, "retained-0 ends at %s" % end)

# ---- request memory: a request over 64 KiB holds its size until it is answered or dropped
holder = socket.create_connection(("127.0.0.1", harness.port))
holder.sendall(struct.pack(">i", 256 * 1024) + b"\0" * 1024)
harness.wait_until(lambda: value(scrape(), "sluice_request_memory_used_bytes") == 256 * 1024, 10,
                   "request memory in use to show the 256 KiB request")
holder.close()
harness.wait_until(lambda: value(scrape(), "sluice_request_memory_used_bytes") == 0, 10,
                   "request memory to be released")

# ---- connections close
open_before = value(scrape(), "sluice_connections_open")
first.close()
second.close()
del producer, admin
harness.wait_until(lambda: value(scrape(), "sluice_connections_open") < open_before, 20,
                   "the open connection count to drop as clients close")
final = scrape()
expect(value(final, "sluice_connections_closed_total") > value(consumed, "sluice_connections_closed_total"),
       "no closed connection counted")
harness.stop_broker()
print("PASS: every metric moved as expected (%d Produce requests, %d rebalances, %d fsyncs)" %
      (value(final, "sluice_kafka_requests_total", api="Produce"), value(final, "sluice_group_rebalances_total"),
       value(final, "sluice_storage_fsync_latency_seconds_count")))
