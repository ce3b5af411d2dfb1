#!/usr/bin/python3
"""Static membership (KIP-345), the orchestrator example, against the real `sluice serve` with the
default group settings (group.initial.rebalance.delay.ms 3000).

An 8-partition topic; two confluent-kafka consumers (subprocesses) with group.instance.id "orch-a"
and "orch-b", session.timeout.ms=10000, heartbeat.interval.ms=1000, log their on_assign /
on_revoke callbacks and librdkafka's own rebalance count (statistics cgrp.rebalance_cnt).
  (a) SIGKILL orch-a (a static member sends no LeaveGroup anyway) and start it again at once with
      the same instance id: it gets the same 4 partitions back, and until the old session would
      have expired (10 s + margin) orch-b sees no revoke or assign and its rebalance count does not
      move; DescribeGroups stays Stable with 2 members.
  (b) SIGKILL orch-b for good: orch-a gets all 8 partitions after the session timeout, i.e. no
      sooner than 10 s - heartbeat interval - 1 s and within 10 s + 3 s (the time is printed).
Usage: group_static_membership_test.py SLUICE_BINARY   (or --worker ..., internally)"""
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sluice_harness import PYTHON, EventLog, EventReader, Harness, WorkerStop, run_logged_consumer  # noqa: E402

TOPIC = "orders"
GROUP = "orchestrator"
PARTITIONS = 8
SESSION_S = 10
HEARTBEAT_S = 1
MARGIN_S = 3


def worker(brokers, instance, log_path):
    from confluent_kafka import Consumer

    stop = WorkerStop()
    log = EventLog(log_path)
    last_stats = [None]

    def on_stats(text):
        cgrp = json.loads(text).get("cgrp", {})
        summary = (cgrp.get("state"), cgrp.get("join_state"), cgrp.get("rebalance_cnt"))
        if summary != last_stats[0]:
            last_stats[0] = summary
            log.write("stats", state=summary[0], join_state=summary[1], rebalance_cnt=summary[2])

    consumer = Consumer({"bootstrap.servers": brokers, "group.id": GROUP, "group.instance.id": instance,
                         "client.id": instance, "session.timeout.ms": SESSION_S * 1000,
                         "heartbeat.interval.ms": HEARTBEAT_S * 1000, "enable.auto.commit": False,
                         "statistics.interval.ms": 500, "stats_cb": on_stats})
    run_logged_consumer(consumer, TOPIC, log, stop)


def main():
    harness = Harness(sys.argv[1], "group-static")  # default group settings
    harness.watchdog(150)
    fail = harness.fail
    harness.start_broker()
    harness.create_topic(TOPIC, PARTITIONS)
    from kafka.admin import KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=harness.brokers, request_timeout_ms=10000)

    def start(instance, run):
        path = os.path.join(harness.work, "%s-%d.events" % (instance, run))
        process = harness.spawn([PYTHON, os.path.abspath(__file__), "--worker", harness.brokers, instance, path],
                                "%s-%d" % (instance, run))
        return process, EventReader(path)

    def owned(reader):
        """The current assignment (eager: on_assign carries the whole assignment)."""
        current = set()
        for event in reader.all():
            if event["ev"] == "assign":
                current = set(event["parts"])
            elif event["ev"] in ("revoke", "lost"):
                current -= set(event["parts"])
        return current

    def group_state():
        group = admin.describe_consumer_groups([GROUP])[0]
        return group.state, sorted(member.member_id for member in group.members)

    def rebalance_count(reader):
        counts = [e["rebalance_cnt"] for e in reader.all() if e["ev"] == "stats"]
        return counts[-1] if counts else None

    a, a_events = start("orch-a", 1)
    b, b_events = start("orch-b", 1)

    def both_settled():
        harness.check_children_alive([a, b])
        share_a, share_b = owned(a_events), owned(b_events)
        return (len(share_a) == len(share_b) == PARTITIONS // 2 and not share_a & share_b
                and group_state()[0] == "Stable" and (share_a, share_b))
    started = time.monotonic()
    share_a, share_b = harness.wait_until(both_settled, 40, "orch-a and orch-b to split the 8 partitions", 0.2)
    state, members_before = group_state()
    print("stable after %.1f s: orch-a %r, orch-b %r, members %r" %
          (time.monotonic() - started, sorted(share_a), sorted(share_b), members_before))

    # ---- (a) restart orch-a within the session timeout: no rebalance
    def b_steady():  # librdkafka counted orch-b's assignment and is back in the steady join state
        stats = [e for e in b_events.all() if e["ev"] == "stats"]
        return stats and stats[-1]["join_state"] == "steady" and stats[-1]["rebalance_cnt"] >= 1
    harness.wait_until(b_steady, 10, "orch-b's statistics to show it steady after its assignment")
    b_seen = len(b_events.all())
    b_rebalances = rebalance_count(b_events)
    a.kill()
    killed = time.monotonic()
    a.wait(10)
    a, a_events = start("orch-a", 2)

    def reassigned():
        harness.check_children_alive([a, b])
        return any(e["ev"] == "assign" for e in a_events.all())
    harness.wait_until(reassigned, SESSION_S, "the restarted orch-a to get an assignment", 0.1)
    back_s = time.monotonic() - killed
    first = [e for e in a_events.all() if e["ev"] == "assign"][0]
    if set(first["parts"]) != share_a:
        fail("restarted orch-a got %r, it had %r" % (first["parts"], sorted(share_a)))
    print("restarted orch-a got its partitions %r back %.1f s after the SIGKILL" % (first["parts"], back_s))
    # The old orch-a's session would expire SESSION_S after its last heartbeat: watch past that point.
    window_end = killed + SESSION_S + MARGIN_S
    while time.monotonic() < window_end:
        harness.check_children_alive([a, b])
        moves = [e for e in b_events.all()[b_seen:] if e["ev"] in ("assign", "revoke", "lost")]
        if moves:
            fail("orch-b saw a rebalance after orch-a's restart: %r" % moves)
        later = [e for e in a_events.all() if e["ev"] in ("assign", "revoke", "lost")][1:]
        if later:
            fail("the restarted orch-a saw a rebalance after getting its partitions: %r" % later)
        time.sleep(0.2)
    if rebalance_count(b_events) != b_rebalances:
        fail("orch-b's librdkafka rebalance count moved from %r to %r" % (b_rebalances, rebalance_count(b_events)))
    state, members_after = group_state()
    if state != "Stable" or len(members_after) != 2:
        fail("after the static restart DescribeGroups says %s with %r" % (state, members_after))
    if owned(a_events) != share_a or owned(b_events) != share_b:
        fail("assignments changed: orch-a %r orch-b %r" % (sorted(owned(a_events)), sorted(owned(b_events))))
    print("(a) no rebalance for %d s after the restart (orch-b rebalance_cnt stays %r); members now %r" %
          (SESSION_S + MARGIN_S, b_rebalances, members_after))

    # ---- (b) orch-b dies for good: orch-a takes all 8 after the session timeout
    b.kill()
    killed = time.monotonic()
    b.wait(10)

    def took_all():
        harness.check_children_alive([a])
        return owned(a_events) == set(range(PARTITIONS))
    harness.wait_until(took_all, SESSION_S + MARGIN_S + 5, "orch-a to own all 8 partitions", 0.05)
    takeover_s = time.monotonic() - killed
    print("(b) orch-a owns all %d partitions %.1f s after orch-b's SIGKILL (session timeout %d s)" %
          (PARTITIONS, takeover_s, SESSION_S))
    if takeover_s > SESSION_S + MARGIN_S:
        fail("takeover took %.1f s, more than the session timeout %d s + %d s" % (takeover_s, SESSION_S, MARGIN_S))
    if takeover_s < SESSION_S - HEARTBEAT_S - 1:
        fail("takeover after %.1f s: the broker expired orch-b before its %d s session timeout" %
             (takeover_s, SESSION_S))
    state, members = harness.wait_until(lambda: group_state()[0] == "Stable" and group_state(), 10,
                                        "the group to be Stable again")
    if len(members) != 1:
        fail("after orch-b's expiry DescribeGroups lists %r" % members)
    harness.stop_child(a)
    admin.close()
    print("PASS: static membership: restart within the session timeout caused no rebalance (back in %.1f s); "
          "a dead member's partitions moved after %.1f s" % (back_s, takeover_s))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:5])
    else:
        main()
