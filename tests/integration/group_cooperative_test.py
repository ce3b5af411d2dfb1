#!/usr/bin/python3
"""Incremental (cooperative-sticky) rebalancing with confluent-kafka against the real `sluice serve`.

A 6-partition topic; three confluent-kafka consumers (subprocesses, partition.assignment.strategy=
cooperative-sticky) join the group one by one, then leave one by one (close(): LeaveGroup). Each
logs its incremental on_assign / on_revoke / on_lost callbacks. After every step the test waits
until the group settles (DescribeGroups: Stable with the expected member count; the members'
shares are non-empty, disjoint, balanced and cover the 6 partitions) and checks:
  - a member is never assigned a partition it owns, nor revoked one it does not own;
  - a partition that stays with a member across a step is never revoked from it (cooperative:
    only partitions that move are revoked); when a member leaves, the others get no revocation;
  - when a member joins, exactly its share is revoked from the others (sticky: nothing else moves);
  - finally the single remaining member owns all 6.
The broker only has to carry the opaque subscription bytes (owned partitions) and assignments.
Usage: group_cooperative_test.py SLUICE_BINARY   (or --worker ..., internally)"""
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sluice_harness import PYTHON, EventLog, EventReader, Harness, WorkerStop, run_logged_consumer  # noqa: E402

TOPIC = "coop"
GROUP = "coop-group"
PARTITIONS = 6


def worker(brokers, name, log_path):
    from confluent_kafka import Consumer

    stop = WorkerStop()
    log = EventLog(log_path)

    consumer = Consumer({"bootstrap.servers": brokers, "group.id": GROUP, "client.id": name,
                         "partition.assignment.strategy": "cooperative-sticky", "session.timeout.ms": 6000,
                         "heartbeat.interval.ms": 500, "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    run_logged_consumer(consumer, TOPIC, log, stop)


def main():
    harness = Harness(sys.argv[1], "group-coop", config="groups:\n  initial_rebalance_delay_ms: 0\n")
    harness.watchdog(150)
    fail = harness.fail
    harness.start_broker()
    harness.create_topic(TOPIC, PARTITIONS)
    from kafka.admin import KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=harness.brokers, request_timeout_ms=10000)

    names = ["m0", "m1", "m2"]
    readers = {}
    processes = {}
    consumed = {}  # how many events of each member earlier steps have checked

    def ownership(name, upto=None):
        """Replays a member's callbacks; fails on an assign of an owned or a revoke of an unowned partition."""
        owned = set()
        for event in readers[name].all()[:upto]:
            if event["ev"] == "assign":
                if owned & set(event["parts"]):
                    fail("%s assigned %r which it already owns (%r)" % (name, event["parts"], sorted(owned)))
                owned |= set(event["parts"])
            elif event["ev"] in ("revoke", "lost"):
                if not set(event["parts"]) <= owned:
                    fail("%s: %s of %r, but it owns %r" % (name, event["ev"], event["parts"], sorted(owned)))
                owned -= set(event["parts"])
            elif event["ev"] == "error":
                print("note: %s got %s" % (name, event["error"]))
        return owned

    def settled(members):
        harness.check_children_alive([processes[m] for m in members])
        shares = {m: ownership(m) for m in members}
        sizes = [len(s) for s in shares.values()]
        union = set().union(*shares.values())
        if not (min(sizes) > 0 and max(sizes) - min(sizes) <= 1 and sum(sizes) == len(union) == PARTITIONS):
            return False
        group = admin.describe_consumer_groups([GROUP])[0]
        if group.state != "Stable" or len(group.members) != len(members):
            return False
        return shares

    members = []
    before = {}
    step_times = []

    def step(label, joined=None, left=None):
        nonlocal before
        started = time.monotonic()
        if joined:
            path = os.path.join(harness.work, joined + ".events")
            readers[joined] = EventReader(path)
            consumed[joined] = 0
            processes[joined] = harness.spawn([PYTHON, os.path.abspath(__file__), "--worker", harness.brokers, joined,
                                               path], joined)
            members.append(joined)
        if left:
            harness.stop_child(processes[left])
            members.remove(left)
        after = harness.wait_until(lambda: settled(members), 45, "the group to settle after " + label, 0.2)
        elapsed = time.monotonic() - started
        step_times.append(elapsed)
        revoked_total = 0
        for m in members:
            events = readers[m].all()[consumed[m]:]
            consumed[m] += len(events)
            revoked = set()
            for e in events:
                if e["ev"] in ("revoke", "lost"):
                    revoked |= set(e["parts"])
                    revoked_total += len(e["parts"])
            kept = before.get(m, set()) & after[m]
            if revoked & kept:
                fail("%s: partitions %r stayed with %s but were revoked from it (events %r)" %
                     (label, sorted(revoked & kept), m, events))
            for p in revoked:
                if p in after[m]:
                    fail("%s: partition %d revoked from %s and given back to it" % (label, p, m))
            if left and revoked:
                fail("%s: %s lost %r although only the leaving member's partitions move" % (label, m, sorted(revoked)))
        if joined and before and revoked_total != len(after[joined]):
            fail("%s: %d partitions revoked from the others, but %s got %d (%r): more moved than needed" %
                 (label, revoked_total, joined, len(after[joined]), {m: sorted(s) for m, s in after.items()}))
        print("%-10s settled in %.1f s: %s; %d revocations" %
              (label, elapsed, {m: sorted(s) for m, s in after.items()}, revoked_total))
        before = after

    step("m0 joins", joined="m0")
    step("m1 joins", joined="m1")
    step("m2 joins", joined="m2")
    step("m0 leaves", left="m0")
    step("m1 leaves", left="m1")
    if before != {"m2": set(range(PARTITIONS))}:
        fail("the last member should own all partitions: %r" % before)
    harness.stop_child(processes["m2"])
    admin.close()
    print("PASS: cooperative-sticky: 3 joins and 2 leaves, no partition revoked from a member that kept it; "
          "steps took %s s" % ", ".join("%.1f" % s for s in step_times))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:5])
    else:
        main()
