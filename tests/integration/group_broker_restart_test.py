#!/usr/bin/python3
"""Consumer groups survive a broker restart (SIGTERM, then SIGKILL) of the real `sluice serve`.

A 3-partition topic with 200 messages per partition. For each restart variant:
  - a kafka-python consumer A (group G) changes its subscription once (so the generation is > 1),
    processes about 150 messages committing after each poll batch, then processes one more batch
    without committing (the uncommitted tail); a confluent-kafka consumer C (group R) consumes and
    commits about 150 messages;
  - the broker restarts (SIGTERM: exit 0; or SIGKILL) with A and C still running;
  - ListGroups lists G and R, OffsetFetch answers A's committed offsets, DescribeGroups shows G
    Stable with A's member id; A commits again with its old member id and generation (both
    unchanged: the group, its generation and its members were rebuilt from __consumer_offsets);
  - A leaves; a fresh kafka-python consumer in G starts each partition exactly at the committed
    offset (the uncommitted tail is processed again, nothing committed is, nothing is lost), reads
    to the end, commits, and its generation is higher than A's;
  - C (librdkafka re-finds the coordinator) consumes the rest with no gap and its commits succeed;
    the committed offsets of R end at the log end.
After the second restart the groups of the first variant are still listed with their offsets.
Usage: group_broker_restart_test.py SLUICE_BINARY"""
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sluice_harness import Harness  # noqa: E402

from confluent_kafka import Consumer, KafkaException  # noqa: E402
from confluent_kafka import TopicPartition as RdkTopicPartition  # noqa: E402
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient  # noqa: E402
from kafka.errors import KafkaError  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402

TOPIC = "ledger"
PARTITIONS = 3
PER_PARTITION = 200
ENDS = {p: PER_PARTITION for p in range(PARTITIONS)}

harness = Harness(sys.argv[1], "group-restart", config="groups:\n  initial_rebalance_delay_ms: 0\n")
fail = harness.fail


def kp_consumer(group):
    return KafkaConsumer(bootstrap_servers=harness.brokers, group_id=group, client_id=group, enable_auto_commit=False,
                         auto_offset_reset="earliest", session_timeout_ms=10000, heartbeat_interval_ms=1000,
                         max_poll_records=25, max_partition_fetch_bytes=1024)  # small: partitions interleave


def generation(consumer):
    """(generation id, member id) of a kafka-python consumer (its coordinator's current Generation)."""
    current = consumer._coordinator._generation
    return current.generation_id, current.member_id


def poll_batch(consumer, processed, timeout_s=20):
    """One non-empty poll batch, recorded in processed {partition: [offsets]}; returns {partition: next offset}."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=500)
        if batch:
            nexts = {}
            for tp, records in batch.items():
                for record in records:
                    if record.value != b"%d-%d" % (tp.partition, record.offset):
                        fail("partition %d offset %d holds %r" % (tp.partition, record.offset, record.value))
                    processed.setdefault(tp.partition, []).append(record.offset)
                nexts[tp.partition] = records[-1].offset + 1
            return nexts
    fail("no records within %d s" % timeout_s)


def commit(consumer, offsets):
    consumer.commit({TopicPartition(TOPIC, p): OffsetAndMetadata(o, "") for p, o in offsets.items()})


def admin_call(what, call, timeout_s=30):
    """Retries an admin call while the coordinator loads after a restart."""
    errors = []

    def attempt():
        admin = KafkaAdminClient(bootstrap_servers=harness.brokers, request_timeout_ms=10000)
        try:
            value = call(admin)
            return [value] if value else None
        except KafkaError as error:
            errors.append(repr(error))
            return None
        finally:
            admin.close()
    result = harness.wait_until(attempt, timeout_s, lambda: what + " (errors: %r)" % errors[-3:], 0.5)
    return result[0]


def group_offsets(admin, group):
    return {tp.partition: meta.offset for tp, meta in admin.list_consumer_group_offsets(group).items()
            if tp.topic == TOPIC}


def rdk_consume(consumer, seen, until, timeout_s=30):
    """Consumes with librdkafka, committing synchronously after each batch, until `until(seen)`."""
    deadline = time.monotonic() + timeout_s
    while not until(seen):
        if time.monotonic() > deadline:
            fail("confluent-kafka consumed %r within %d s" % ({p: len(o) for p, o in seen.items()}, timeout_s))
        messages = consumer.consume(num_messages=25, timeout=0.5)
        good = [m for m in messages if not m.error()]
        for m in messages:
            if m.error():
                print("note: confluent-kafka: %s" % m.error())
        for m in good:
            seen.setdefault(m.partition(), []).append(m.offset())
        if good:
            try:
                result = consumer.commit(asynchronous=False)
            except KafkaException as error:
                fail("confluent-kafka commit failed: %s" % error)
            bad = [tp for tp in result if tp.error]
            if bad:
                fail("confluent-kafka commit failed for %r" % bad)


def run_variant(variant):
    group, rdk_group = "ledger-kp-" + variant.lower(), "ledger-rdk-" + variant.lower()
    print("== %s: groups %s and %s" % (variant, group, rdk_group))

    # ---- before the restart
    a = kp_consumer(group)
    a.subscribe([TOPIC])
    harness.wait_until(lambda: a.poll(timeout_ms=100) is not None and a.assignment(), 20, "A's first assignment")
    a.unsubscribe()  # LeaveGroup; nothing was committed, so what that poll returned is read again
    a.subscribe([TOPIC])
    processed = {}
    committed = {}
    while sum(len(o) for o in processed.values()) < 150 or len(committed) < PARTITIONS:
        nexts = poll_batch(a, processed)
        commit(a, nexts)
        committed.update(nexts)
    tail = poll_batch(a, processed)  # processed, not committed
    generation_before, member_before = generation(a)
    if generation_before < 2 or not member_before:
        fail("generation %r member %r after a subscription change" % (generation_before, member_before))
    fetched = admin_call("OffsetFetch of " + group, lambda admin: [group_offsets(admin, group)])[0]
    if fetched != committed:
        fail("OffsetFetch answers %r, committed were %r" % (fetched, committed))
    described = admin_call("DescribeGroups " + group, lambda admin: [admin.describe_consumer_groups([group])[0]])[0]
    if described.state != "Stable" or [m.member_id for m in described.members] != [member_before]:
        fail("DescribeGroups says %s with %r; A is %s" % (described.state, [m.member_id for m in described.members],
                                                          member_before))
    print("A: generation %d member %s committed %r, uncommitted tail up to %r" %
          (generation_before, member_before, committed, tail))

    c = Consumer({"bootstrap.servers": harness.brokers, "group.id": rdk_group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000})
    rdk_events = []
    c.subscribe([TOPIC], on_assign=lambda _, ps: rdk_events.append(("assign", sorted(p.partition for p in ps))),
                on_revoke=lambda _, ps: rdk_events.append(("revoke", sorted(p.partition for p in ps))))
    rdk_seen = {}
    rdk_consume(c, rdk_seen, lambda seen: sum(len(o) for o in seen.values()) >= 150)
    rdk_events_before = len(rdk_events)

    # ---- restart
    if variant == "SIGTERM":
        harness.stop_broker()
    else:
        harness.kill_broker()
    harness.start_broker()

    listed = admin_call("ListGroups to list %s and %s" % (group, rdk_group),
                        lambda admin: (lambda names: {group, rdk_group} <= names and names)(
                            {g for g, _ in admin.list_consumer_groups()}))
    fetched = admin_call("OffsetFetch of " + group, lambda admin: [group_offsets(admin, group)])[0]
    if fetched != committed:
        fail("after the restart OffsetFetch answers %r, committed were %r" % (fetched, committed))

    # A goes on with its old member id and generation.
    errors = []

    def commit_again():
        a.poll(timeout_ms=100)  # finds the coordinator again; records it returns are more uncommitted tail
        try:
            commit(a, committed)
            return True
        except KafkaError as error:
            errors.append(repr(error))
            return False
    harness.wait_until(commit_again, 30, lambda: "A to commit after the restart (%r)" % errors[-3:], 0.2)
    generation_after, member_after = generation(a)
    if (generation_after, member_after) != (generation_before, member_before):
        fail("A's membership changed across the restart: generation %d member %s -> generation %d member %s "
             "(errors on the way: %r)" % (generation_before, member_before, generation_after, member_after, errors[:5]))
    described = admin_call("DescribeGroups " + group, lambda admin: [admin.describe_consumer_groups([group])[0]])[0]
    if described.state != "Stable" or [m.member_id for m in described.members] != [member_before]:
        fail("after the restart DescribeGroups says %s with %r" % (described.state,
                                                                   [m.member_id for m in described.members]))
    print("after the %s restart: listed %r; A still generation %d member %s; %s Stable with it" %
          (variant, sorted(listed), generation_after, member_after, group))
    a.close()

    # A fresh member resumes exactly at the committed offsets.
    f = kp_consumer(group)
    f.subscribe([TOPIC])
    resumed = {}
    while any(max(resumed.get(p, [-1])) + 1 < PER_PARTITION for p in range(PARTITIONS)):
        commit(f, poll_batch(f, resumed))
    for p in range(PARTITIONS):
        expected = list(range(committed.get(p, 0), PER_PARTITION))
        if resumed.get(p) != expected:
            got = resumed.get(p, [])
            fail("fresh member on partition %d processed %d offsets from %r, expected %d..%d" %
                 (p, len(got), got[:1], committed.get(p, 0), PER_PARTITION - 1))
    generation_fresh, _ = generation(f)
    if generation_fresh <= generation_before:
        fail("fresh member's generation %d is not above A's %d: the generation was reset" %
             (generation_fresh, generation_before))
    f.close()
    reprocessed = sum(max(0, tail.get(p, 0) - committed.get(p, 0)) for p in range(PARTITIONS))
    print("fresh member (generation %d) resumed at %r: %d tail messages processed again, none lost" %
          (generation_fresh, committed, reprocessed))

    # The librdkafka consumer goes on.
    rdk_consume(c, rdk_seen, lambda seen: all(set(seen.get(p, [])) >= set(range(PER_PARTITION))
                                              for p in range(PARTITIONS)))
    rebalanced = rdk_events[rdk_events_before:]
    for p, offsets in rdk_seen.items():
        if sorted(set(offsets)) != list(range(PER_PARTITION)):
            fail("confluent-kafka partition %d: a gap in offsets %r" % (p, offsets))
        if len(offsets) != len(set(offsets)) and not rebalanced:
            fail("confluent-kafka partition %d: messages delivered twice without a rebalance" % p)
    rdk_committed = {}
    for tp in c.committed([RdkTopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=10):
        rdk_committed[tp.partition] = tp.offset
    if rdk_committed != ENDS:
        fail("confluent-kafka group %s committed %r, expected %r" % (rdk_group, rdk_committed, ENDS))
    c.close()
    print("confluent-kafka consumed all %d messages across the restart (callbacks after it: %r)" %
          (PARTITIONS * PER_PARTITION, rebalanced))
    return group, rdk_group


def main():
    harness.watchdog(240)
    harness.start_broker()
    harness.create_topic(TOPIC, PARTITIONS)
    producer = KafkaProducer(bootstrap_servers=harness.brokers, acks="all")
    for i in range(PER_PARTITION):  # one batch per message, so that consumers' fetches interleave partitions
        for p in range(PARTITIONS):
            producer.send(TOPIC, value=b"%d-%d" % (p, i), partition=p).get(10)
    producer.flush(30)
    producer.close()
    started = time.monotonic()
    groups = run_variant("SIGTERM")
    groups += run_variant("SIGKILL")
    listed = admin_call("ListGroups", lambda admin: [{g for g, _ in admin.list_consumer_groups()}])[0]
    if not set(groups) <= listed:
        fail("ListGroups after two restarts: %r, expected %r" % (sorted(listed), groups))
    for group in groups:
        offsets = admin_call("OffsetFetch " + group, lambda admin: [group_offsets(admin, group)])[0]
        if offsets != ENDS:
            fail("group %s committed offsets %r after two restarts, expected %r" % (group, offsets, ENDS))
    print("PASS: groups, members, generations and committed offsets survived a SIGTERM and a SIGKILL restart "
          "(%.1f s)" % (time.monotonic() - started))


main()
