#!/usr/bin/python3
"""A kafka-python consumer group of 3 against the real `sluice serve`, with one member SIGKILLed.

A 6-partition topic; a producer thread sends N numbered messages (keys spread over the partitions)
at a steady rate; 3 KafkaConsumer subprocesses (same group, enable_auto_commit=False, a synchronous
commit after each poll batch, session_timeout_ms=6000, heartbeat_interval_ms=1000) log every
assignment and revocation, every processed (partition, offset, value) and every committed offset.
One member is SIGKILLed mid-run. Checks:
  - every produced message is processed, at the offset its producer was told;
  - per partition, the ownership intervals of different members (assigned .. revoked, closing or
    killed) never overlap, and every record is processed inside its member's interval: no message
    is processed by two members while the group is stable;
  - within one interval a member processes consecutive offsets, starting exactly at the committed
    offset (after a clean handover) or, after the SIGKILL, between the last commit the dead member
    logged and its last processed offset + 1: at-least-once, no gap;
  - committed offsets per partition never go backwards across all members' commits, and the
    group's committed offsets (OffsetFetch) end at the log end offsets;
  - the dead member's partitions are assigned to the survivors within the session timeout plus a
    margin, and the survivors process them afterwards.
Usage: group_kafka_python_test.py SLUICE_BINARY   (or --worker ..., internally)"""
import os
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sluice_harness import PYTHON, EventLog, EventReader, Harness, WorkerStop  # noqa: E402

TOPIC = "work"
GROUP = "kp-workers"
PARTITIONS = 6
MEMBERS = 3
COUNT = 2400
RATE = 120  # messages per second: COUNT takes 20 s
SESSION_S = 6
TAKEOVER_MARGIN_S = 6


def worker(brokers, name, log_path):
    from kafka import ConsumerRebalanceListener, KafkaConsumer
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata

    stop = WorkerStop()
    log = EventLog(log_path)

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            log.write("revoked", parts=sorted(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned):
            log.write("assigned", parts=sorted(tp.partition for tp in assigned))

    consumer = KafkaConsumer(bootstrap_servers=brokers, group_id=GROUP, client_id=name, enable_auto_commit=False,
                             auto_offset_reset="earliest", session_timeout_ms=SESSION_S * 1000,
                             heartbeat_interval_ms=1000, max_poll_records=50)
    consumer.subscribe([TOPIC], listener=Listener())
    log.write("started")
    while not stop.should_stop():
        batch = consumer.poll(timeout_ms=200)
        if not batch:
            continue
        offsets = {}
        for tp, records in batch.items():
            for record in records:
                log.write("proc", p=tp.partition, o=record.offset, v=record.value.decode())
                time.sleep(0.01)  # the work: the SIGKILL below lands between processing and the commit
            offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "")
        committed = {str(tp.partition): meta.offset for tp, meta in offsets.items()}
        try:
            consumer.commit(offsets)
            log.write("commit", offsets=committed)
        except KafkaError as error:  # CommitFailedError after a rebalance: the batch stays uncommitted
            log.write("commit_failed", offsets=committed, error=repr(error))
    log.write("closing")
    consumer.close()
    log.write("closed")


def owned(events):
    """The member's current assignment after its events (eager: each assignment is complete)."""
    current = set()
    for event in events:
        if event["ev"] == "revoked":
            current -= set(event["parts"])
        elif event["ev"] == "assigned":
            current = set(event["parts"])
    return current


def main():
    harness = Harness(sys.argv[1], "group-kp", config="groups:\n  initial_rebalance_delay_ms: 0\n")
    harness.watchdog(150)
    fail = harness.fail
    harness.start_broker()
    harness.create_topic(TOPIC, PARTITIONS)

    names = ["c%d" % i for i in range(MEMBERS)]
    logs = {name: os.path.join(harness.work, name + ".events") for name in names}
    readers = {name: EventReader(logs[name]) for name in names}
    processes = {name: harness.spawn([PYTHON, os.path.abspath(__file__), "--worker", harness.brokers, name, logs[name]],
                                     name) for name in names}

    def settled(members):
        """Every member owns a non-empty share, the shares are disjoint and cover the topic."""
        harness.check_children_alive([processes[m] for m in members])
        shares = [owned(readers[m].all()) for m in members]
        union = set().union(*shares)
        return all(shares) and sum(len(s) for s in shares) == len(union) == PARTITIONS and shares

    started = time.monotonic()
    def current():
        return "; current assignments %r" % {m: sorted(owned(readers[m].all())) for m in names}
    shares = harness.wait_until(lambda: settled(names), 30, lambda: "3 members to share the 6 partitions" + current())
    print("group stable after %.1f s: %s" % (time.monotonic() - started, dict(zip(names, map(sorted, shares)))))

    # ---- the producer
    from kafka import KafkaProducer
    produced = {}  # value -> (partition, offset)
    produce_errors = []
    lock = threading.Lock()

    def produce():
        producer = KafkaProducer(bootstrap_servers=harness.brokers, acks="all", linger_ms=5)
        begin = time.monotonic()
        for i in range(COUNT):
            value = "msg-%06d" % i

            def ok(metadata, value=value):
                with lock:
                    produced[value] = (metadata.partition, metadata.offset)

            def error(exception, value=value):
                with lock:
                    produce_errors.append((value, repr(exception)))

            producer.send(TOPIC, key=b"key-%d" % i, value=value.encode()).add_callback(ok).add_errback(error)
            pause = begin + (i + 1) / RATE - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        producer.flush(30)
        producer.close(10)

    producer_thread = threading.Thread(target=produce, daemon=True)
    producer_thread.start()

    # ---- SIGKILL one member once it has processed and committed a while, in the middle of a batch
    victim = names[1]
    survivors = [n for n in names if n != victim]

    def victim_busy():
        harness.check_children_alive(processes.values())
        events = readers[victim].all()
        with lock:
            progress = len(produced)
        return (progress >= COUNT // 4 and sum(e["ev"] == "commit" for e in events) >= 3
                and events[-1]["ev"] == "proc")
    harness.wait_until(victim_busy, 30, "the victim %s to process and commit" % victim, 0.002)
    victim_parts = owned(readers[victim].all())
    processes[victim].kill()
    kill_time = time.time()
    processes[victim].wait(10)
    print("SIGKILLed %s owning %s after %d messages were produced" % (victim, sorted(victim_parts), len(produced)))

    def taken_over():
        shares = settled(survivors)
        if not shares:
            return False
        last_assignments = [max(e["t"] for e in readers[m].all() if e["ev"] == "assigned") for m in survivors]
        return min(last_assignments) > kill_time and max(last_assignments)
    bound = SESSION_S + TAKEOVER_MARGIN_S
    takeover_time = harness.wait_until(taken_over, bound + 5,
                                       lambda: "the survivors to take over %s's partitions%s" % (victim, current()))
    takeover_s = takeover_time - kill_time
    print("survivors own all %d partitions %.1f s after the SIGKILL (session timeout %d s): %s" %
          (PARTITIONS, takeover_s, SESSION_S, {m: sorted(owned(readers[m].all())) for m in survivors}))
    if takeover_s > bound:
        fail("takeover took %.1f s, more than the session timeout %d s + %d s" % (takeover_s, SESSION_S,
                                                                                   TAKEOVER_MARGIN_S))

    # ---- everything produced is processed and committed
    producer_thread.join(COUNT / RATE + 60)
    if producer_thread.is_alive():
        fail("the producer did not finish")
    if produce_errors or len(produced) != COUNT:
        fail("%d of %d sends acknowledged; errors: %r" % (len(produced), COUNT, produce_errors[:3]))
    ends = {}
    for partition, offset in produced.values():
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    if sorted(ends) != list(range(PARTITIONS)):
        fail("the keys did not spread over all partitions: %r" % ends)

    def processed_values():
        return {e["v"] for n in names for e in readers[n].all() if e["ev"] == "proc"}

    def all_committed():
        harness.check_children_alive([processes[m] for m in survivors])
        last = {}
        for m in survivors:
            for e in readers[m].all():
                if e["ev"] == "commit":
                    for p, offset in e["offsets"].items():
                        last[int(p)] = max(last.get(int(p), 0), offset)
        return last == ends
    harness.wait_until(lambda: len(processed_values()) == COUNT and all_committed(), 60,
                       "every message to be processed and committed")
    for m in survivors:
        readers[m].all()
    for m in survivors:
        harness.signal_child(processes[m])  # all at once; stop_child then waits for each
    for m in survivors:
        harness.stop_child(processes[m])

    # ---- analysis
    events = {n: readers[n].all() for n in names}
    end_of = {n: (kill_time if n == victim else float("inf")) for n in names}
    for n in survivors:
        closing = [e["t"] for e in events[n] if e["ev"] == "closing"]
        if not closing:
            fail("%s logged no closing event" % n)
        end_of[n] = closing[0]

    # ownership intervals per partition: (start, end, member)
    intervals = {p: [] for p in range(PARTITIONS)}
    for n in names:
        current = {}
        for e in events[n]:
            if e["ev"] == "revoked":
                for p in e["parts"]:
                    if p in current:
                        intervals[p].append((current.pop(p), e["t"], n))
            elif e["ev"] == "assigned":
                for p in list(current):
                    if p not in e["parts"]:
                        fail("%s: partition %d silently dropped from its assignment" % (n, p))
                for p in e["parts"]:
                    current.setdefault(p, e["t"])
        for p, start in current.items():
            intervals[p].append((start, end_of[n], n))
    for p in intervals:
        intervals[p].sort()
        for (s1, e1, m1), (s2, e2, m2) in zip(intervals[p], intervals[p][1:]):
            if s2 < e1:
                fail("partition %d owned by %s [%.3f, %.3f] and %s [%.3f, %.3f] at once" % (p, m1, s1, e1, m2, s2, e2))

    # every record processed inside its member's interval; consecutive offsets within one interval
    processed = {}  # (p, start, member) -> [(t, offset)]
    for n in names:
        for e in events[n]:
            if e["ev"] != "proc":
                continue
            if produced.get(e["v"]) != (e["p"], e["o"]):
                fail("%s processed %s at partition %d offset %d; the producer got %r" %
                     (n, e["v"], e["p"], e["o"], produced.get(e["v"])))
            home = [iv for iv in intervals[e["p"]] if iv[2] == n and iv[0] <= e["t"] <= iv[1]]
            if not home:
                fail("%s processed partition %d offset %d at %.3f outside its ownership" % (n, e["p"], e["o"], e["t"]))
            processed.setdefault((e["p"], home[0][0], n), []).append((e["t"], e["o"]))
    missing = set("msg-%06d" % i for i in range(COUNT)) - processed_values()
    if missing:
        fail("%d messages never processed, e.g. %r" % (len(missing), sorted(missing)[:5]))

    commits = sorted((e["t"], int(p), offset, n) for n in names for e in events[n] if e["ev"] == "commit"
                     for p, offset in e["offsets"].items())
    last_commit = {}
    for t, p, offset, n in commits:
        if offset < last_commit.get(p, (0, None))[0]:
            fail("committed offset of partition %d went back from %d (%s) to %d (%s)" %
                 (p, last_commit[p][0], last_commit[p][1], offset, n))
        last_commit[p] = (offset, n)

    duplicates = 0
    for p in range(PARTITIONS):
        after_death = False  # from the dead member's interval to the next one that processes records
        for start, end, member in intervals[p]:
            records = processed.get((p, start, member), [])
            if records:
                offsets = [o for _, o in records]
                if offsets != list(range(offsets[0], offsets[0] + len(offsets))):
                    fail("%s: partition %d offsets not consecutive within one assignment: %r" % (member, p, offsets[:20]))
                committed = max([o for t, q, o, _ in commits if q == p and t < start], default=0)
                before = max([o + 1 for (q, _, __), recs in processed.items() if q == p for t, o in recs if t < start],
                             default=0)
                duplicates += max(0, before - offsets[0])
                if after_death:  # its last commit may have reached the broker but not its event log
                    if not committed <= offsets[0] <= before:
                        fail("%s resumed partition %d at %d after %s's death; its last logged commit was %d and "
                             "offsets up to %d were processed" % (member, p, offsets[0], victim, committed, before - 1))
                    print("partition %d: %s logged a commit of %d, processed up to %d; %s resumed at %d" %
                          (p, victim, committed, before - 1, member, offsets[0]))
                elif offsets[0] != committed:
                    fail("%s started partition %d at offset %d, but the committed offset was %d" %
                         (member, p, offsets[0], committed))
                after_death = False
            if member == victim and end == kill_time:
                after_death = True
        if not any(member in survivors and start > kill_time and processed.get((p, start, member))
                   for start, _, member in intervals[p]) and p in victim_parts:
            fail("no survivor processed partition %d after %s's death" % (p, victim))

    # the coordinator's committed offsets (OffsetFetch)
    from kafka.admin import KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=harness.brokers, request_timeout_ms=10000)
    fetched = {tp.partition: meta.offset for tp, meta in admin.list_consumer_group_offsets(GROUP).items()}
    admin.close()
    if fetched != ends:
        fail("OffsetFetch answers %r, expected the log end offsets %r" % (fetched, ends))

    rebalances = {n: sum(e["ev"] == "assigned" for e in events[n]) for n in names}
    failed_commits = sum(e["ev"] == "commit_failed" for n in names for e in events[n])
    print("PASS: %d messages over %d partitions processed by %d members (one SIGKILLed), %d reprocessed after the "
          "kill, %d partition commits (%d commit calls failed in rebalances), assignments per member %r, takeover %.1f s" %
          (COUNT, PARTITIONS, MEMBERS, duplicates, len(commits), failed_commits, rebalances, takeover_s))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:5])
    else:
        main()
