#!/usr/bin/python3
"""The admin HTTP API of the real `sluice serve` (runtime/admin_server.h), with real clients.

A confluent-kafka producer writes 10 records to each of 3 partitions of `orders` (which has a
retention.ms override) and 10 to `events`; a confluent-kafka consumer in group `admin-group`
reads all 40 and commits each record except the last 3 of `events`. Then, while the group is
Stable, every route is checked against what the clients saw:
  - /v1/status/ready and /live answer 200; /v1/brokers describes this node (advertised port,
    version, data directory, connections);
  - /v1/topics and /v1/topics/NAME: partitions, leader, log start and end offsets equal to what
    was produced, sizes, the override; the internal __consumer_offsets is marked internal;
  - /v1/groups and /v1/groups/ID: Stable, consumer protocol, the member with its client id, host,
    subscription and assignment decoded, committed offsets and lag = log end - committed (3 on
    `events`, 0 elsewhere);
  - log level get/set: after PUT level=debug, debug lines appear in the broker's log;
  - request logging: a "request Metadata" line appears only while it is enabled;
  - errors: unknown paths 404, unknown topic or group 404, wrong method 405 with Allow, bad
    parameters 400, all as JSON {"error": ...};
  - /metrics answers 200 as Prometheus text (version 0.0.4);
  - slow HTTP clients (more than the server has threads) holding connections open do not delay
    the Kafka listener, and the API answers again once they go;
  - the broker listens on exactly its Kafka and admin ports.
Then: `--admin-listen` on a busy port makes `serve` exit 1 naming the address and the reason, and
`admin: {listen: off}` in the config runs the broker without the API.
Usage: admin_api_test.py SLUICE_BINARY"""
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sluice_harness import Harness  # noqa: E402

GROUP = "admin-group"
CLIENT_ID = "admin-test-consumer"
ORDERS_PARTITIONS = 3
PER_PARTITION = 10
UNCOMMITTED = 3  # the last records of `events`, read but never committed
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def http(method, url, timeout_s=10):
    """(status, headers, body text) of one request; HTTP errors are answers too."""
    request = urllib.request.Request(url, method=method, data=b"" if method in ("PUT", "POST") else None)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


class Api:
    def __init__(self, harness, base):
        self.harness = harness
        self.base = base

    def call(self, method, path, want_status):
        status, headers, body = http(method, self.base + path)
        if status != want_status:
            self.harness.fail("%s %s: status %d, want %d: %s" % (method, path, status, want_status, body))
        if headers.get("Content-Type") != "application/json":
            self.harness.fail("%s %s: Content-Type %r, want application/json" % (method, path, headers.get("Content-Type")))
        try:
            return json.loads(body), headers
        except ValueError:
            self.harness.fail("%s %s: not JSON: %r" % (method, path, body))

    def get(self, path, want_status=200):
        return self.call("GET", path, want_status)[0]

    def put(self, path, want_status=200):
        return self.call("PUT", path, want_status)[0]

    def error(self, method, path, want_status, mentions):
        body, headers = self.call(method, path, want_status)
        if not isinstance(body, dict) or mentions not in body.get("error", ""):
            self.harness.fail("%s %s: want an error mentioning %r, got %r" % (method, path, mentions, body))
        return headers


def check(harness, condition, message):
    if not condition:
        harness.fail(message)


def listening_ports(pid):
    """The TCP ports process `pid` listens on (its socket inodes in /proc/net/tcp{,6}, LISTEN)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    ports.add(int(fields[1].split(":")[1], 16))
    return ports


# ---- the workload

def produce(harness):
    """Writes the records; returns {(topic, partition): log end offset} as the producer saw it."""
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": harness.brokers, "acks": "all", "linger.ms": 5})
    ends = {}
    failures = []

    def delivered(error, message):
        if error is not None:
            failures.append(str(error))
            return
        key = (message.topic(), message.partition())
        ends[key] = max(ends.get(key, 0), message.offset() + 1)

    for partition in range(ORDERS_PARTITIONS):
        for i in range(PER_PARTITION):
            producer.produce("orders", value=b"order-%d-%d" % (partition, i), partition=partition, on_delivery=delivered)
    for i in range(PER_PARTITION):
        tail = i >= PER_PARTITION - UNCOMMITTED
        producer.produce("events", value=(b"uncommitted-%d" if tail else b"event-%d") % i, partition=0,
                         on_delivery=delivered)
    if producer.flush(30) != 0 or failures:
        harness.fail("produce: %d undelivered, errors %r" % (len(producer), failures))
    expected = {("orders", p): PER_PARTITION for p in range(ORDERS_PARTITIONS)}
    expected[("events", 0)] = PER_PARTITION
    check(harness, ends == expected, "delivered log ends %r, want %r" % (ends, expected))
    return ends


def consume_and_commit(harness):
    """A subscribed consumer that has read every record and committed all but the last of
    `events`; returned still open, so the group stays Stable while the API is checked."""
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": harness.brokers, "group.id": GROUP, "client.id": CLIENT_ID,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "session.timeout.ms": 10000})
    consumer.subscribe(["orders", "events"])
    total = (ORDERS_PARTITIONS + 1) * PER_PARTITION
    seen = 0
    deadline = time.monotonic() + 60
    while seen < total:
        if time.monotonic() > deadline:
            harness.fail("the consumer read %d of %d records within 60 s" % (seen, total))
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            harness.fail("consumer error: %s" % message.error())
        seen += 1
        if not message.value().startswith(b"uncommitted"):
            consumer.commit(offsets=[TopicPartition(message.topic(), message.partition(), message.offset() + 1)],
                            asynchronous=False)
    return consumer


# ---- the routes

def check_status_and_broker(harness, api, version):
    check(harness, api.get("/v1/status/ready") == {"status": "ready"}, "ready")
    check(harness, api.get("/v1/status/live") == {"status": "live"}, "live")
    brokers = api.get("/v1/brokers")
    check(harness, isinstance(brokers, list) and len(brokers) == 1, "/v1/brokers: %r" % brokers)
    broker = brokers[0]
    want = {"node_id": 0, "host": "127.0.0.1", "port": harness.port, "cluster_id": "sluice", "version": version,
            "is_alive": True, "ready": True, "data_directory": harness.data_dir}
    for key, value in want.items():
        check(harness, broker.get(key) == value, "/v1/brokers: %s = %r, want %r (%r)" % (key, broker.get(key), value, broker))
    check(harness, isinstance(broker.get("uptime_ms"), int) and broker["uptime_ms"] >= 0, "uptime_ms: %r" % broker)
    # The consumer's connections (bootstrap and group coordinator) are open.
    check(harness, isinstance(broker.get("connections"), int) and broker["connections"] >= 1,
          "connections: %r" % broker)


def check_topics(harness, api, ends):
    topics = {topic["name"]: topic for topic in api.get("/v1/topics")}
    check(harness, {"orders", "events", "__consumer_offsets"} <= set(topics), "topics: %r" % sorted(topics))
    check(harness, topics["__consumer_offsets"]["internal"] is True, "__consumer_offsets is not internal")
    for name, partitions in (("orders", ORDERS_PARTITIONS), ("events", 1)):
        topic = api.get("/v1/topics/" + name)
        check(harness, topic == topics[name], "/v1/topics/%s differs from its /v1/topics entry" % name)
        check(harness, topic["internal"] is False, "%s: internal" % name)
        check(harness, [p["partition"] for p in topic["partitions"]] == list(range(partitions)),
              "%s partitions: %r" % (name, topic["partitions"]))
        for partition in topic["partitions"]:
            where = "%s-%d: %r" % (name, partition["partition"], partition)
            check(harness, partition["leader"] == 0, "leader " + where)
            check(harness, partition["log_start_offset"] == 0, "log_start_offset " + where)
            check(harness, partition["log_end_offset"] == ends[(name, partition["partition"])], "log_end_offset " + where)
            check(harness, partition["size_bytes"] > 0 and partition["segments"] >= 1, "size " + where)
    check(harness, topics["orders"]["config_overrides"] == {"retention.ms": "3600000"},
          "orders overrides: %r" % topics["orders"]["config_overrides"])
    check(harness, topics["events"]["config_overrides"] == {}, "events overrides: %r" % topics["events"]["config_overrides"])
    api.error("GET", "/v1/topics/no-such-topic", 404, "no-such-topic")


def check_groups(harness, api, ends):
    group = api.get("/v1/groups/" + GROUP)
    check(harness, [g["group_id"] for g in api.get("/v1/groups")].count(GROUP) == 1, "/v1/groups lacks " + GROUP)
    check(harness, group["state"] == "Stable", "state: %r" % group)
    check(harness, group["protocol_type"] == "consumer", "protocol_type: %r" % group)
    check(harness, group["protocol"] in ("range", "roundrobin", "cooperative-sticky"), "protocol: %r" % group)
    check(harness, len(group["members"]) == 1, "members: %r" % group["members"])
    member = group["members"][0]
    check(harness, member["client_id"] == CLIENT_ID and member["group_instance_id"] is None, "member: %r" % member)
    check(harness, "127.0.0.1" in member["client_host"], "client_host: %r" % member)
    check(harness, sorted(member["subscribed_topics"] or []) == ["events", "orders"], "subscription: %r" % member)
    assignment = {topic: sorted(parts) for topic, parts in (member["assignment"] or {}).items()}
    check(harness, assignment == {"orders": list(range(ORDERS_PARTITIONS)), "events": [0]}, "assignment: %r" % member)
    # One member joined once: generation 1 (or later after a rejoin), and it leads.
    check(harness, isinstance(group["generation"], int) and group["generation"] >= 1, "generation: %r" % group)
    check(harness, group["leader"] == member["member_id"], "leader: %r" % group)

    offsets = {(o["topic"], o["partition"]): o for o in group["offsets"]}
    check(harness, set(offsets) == set(ends), "offsets for %r, want %r" % (sorted(offsets), sorted(ends)))
    for key, end in ends.items():
        committed = end - UNCOMMITTED if key == ("events", 0) else end
        want = {"topic": key[0], "partition": key[1], "committed_offset": committed, "log_end_offset": end,
                "lag": end - committed, "member_id": member["member_id"]}
        check(harness, offsets[key] == want, "offsets of %s-%d: %r, want %r" % (key[0], key[1], offsets[key], want))
    api.error("GET", "/v1/groups/no-such-group", 404, "no-such-group")


def new_log(harness, mark):
    return harness.broker_log()[mark:]


def check_log_level(harness, api):
    check(harness, api.get("/v1/config/log_level") == {"level": "info"}, "log level is not info at start")
    mark = len(harness.broker_log())
    harness.create_topic("before-debug", 1)
    check(harness, "[debug]" not in new_log(harness, mark), "debug lines at level info")
    check(harness, api.put("/v1/config/log_level?level=debug") == {"level": "debug"}, "PUT level=debug")
    check(harness, api.get("/v1/config/log_level") == {"level": "debug"}, "GET after PUT level=debug")
    mark = len(harness.broker_log())
    harness.create_topic("after-debug", 1)
    # A new partition log says where it starts, at debug level.
    harness.wait_until(lambda: re.search(r"\[debug\].*created an empty log", new_log(harness, mark)), 10,
                       "a debug line after PUT level=debug")
    api.error("PUT", "/v1/config/log_level?level=loud", 400, "trace, debug, info, warn, error or off")
    api.error("PUT", "/v1/config/log_level", 400, "level")
    check(harness, api.put("/v1/config/log_level?level=info") == {"level": "info"}, "PUT level=info")


def request_lines(text, api=None):
    """The request-logging lines in `text` (of one API): "request ... correlation_id=...", whatever
    the exact layout of the fields."""
    return [line for line in text.splitlines()
            if " request " in line and "correlation_id=" in line and (api is None or re.search(r"\b%s\b" % api, line))]


def metadata_request(harness):
    from confluent_kafka.admin import AdminClient
    AdminClient({"bootstrap.servers": harness.brokers}).list_topics(timeout=10)


def check_request_logging(harness, api):
    check(harness, api.get("/v1/debug/requests") == {"enabled": False}, "request logging is on at start")
    mark = len(harness.broker_log())
    metadata_request(harness)
    time.sleep(0.3)
    check(harness, not request_lines(new_log(harness, mark)), "request lines while request logging is off")
    check(harness, api.put("/v1/debug/requests?enabled=true") == {"enabled": True}, "PUT enabled=true")
    check(harness, api.get("/v1/debug/requests") == {"enabled": True}, "GET after PUT enabled=true")
    mark = len(harness.broker_log())
    metadata_request(harness)
    harness.wait_until(lambda: request_lines(new_log(harness, mark), "Metadata"), 10, "a Metadata request line when enabled")
    check(harness, api.put("/v1/debug/requests?enabled=false") == {"enabled": False}, "PUT enabled=false")
    mark = len(harness.broker_log())
    metadata_request(harness)
    time.sleep(0.5)  # the consumer's heartbeats and fetches go on too
    check(harness, not request_lines(new_log(harness, mark)),
          "request lines after PUT enabled=false:\n" + "\n".join(request_lines(new_log(harness, mark))[:5]))
    api.error("PUT", "/v1/debug/requests?enabled=maybe", 400, "true or false")


def check_errors_and_metrics(harness, api):
    api.error("GET", "/no/such/path", 404, "/no/such/path")
    api.error("GET", "/v1", 404, "/v1")
    headers = api.error("POST", "/v1/topics", 405, "POST")
    check(harness, headers.get("Allow") == "GET, HEAD", "Allow for /v1/topics: %r" % headers.get("Allow"))
    headers = api.error("DELETE", "/v1/groups/" + GROUP, 405, "DELETE")
    check(harness, headers.get("Allow") == "GET, HEAD", "Allow for /v1/groups/ID: %r" % headers.get("Allow"))
    headers = api.error("POST", "/v1/config/log_level", 405, "POST")
    check(harness, headers.get("Allow") == "GET, HEAD, PUT", "Allow for log_level: %r" % headers.get("Allow"))
    api.error("PUT", "/v1/brokers", 405, "PUT")
    status, headers, body = http("GET", api.base + "/metrics")
    check(harness, status == 200, "/metrics: %d %s" % (status, body[:200]))
    check(harness, headers.get("Content-Type") == PROMETHEUS_TYPE, "/metrics Content-Type: %r" % headers.get("Content-Type"))


def check_slow_clients(harness, api):
    """Slow HTTP clients hold the admin API's threads (and more wait in its queue), never the
    reactor: Kafka requests go on at full speed meanwhile."""
    from confluent_kafka import Consumer, Producer
    slow = []
    for i in range(4):
        client = socket.create_connection(("127.0.0.1", harness.admin_port), 5)
        if i % 2 == 0:
            client.sendall(b"GET /v1/brokers HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        slow.append(client)
    time.sleep(0.2)
    started = time.monotonic()
    producer = Producer({"bootstrap.servers": harness.brokers})
    producer.produce("slow-clients", value=b"through")
    check(harness, producer.flush(10) == 0, "produce while slow HTTP clients hold the admin API")
    consumer = Consumer({"bootstrap.servers": harness.brokers, "group.id": "slow-clients-reader",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe(["slow-clients"])
    message = None
    while message is None and time.monotonic() - started < 15:
        message = consumer.poll(0.5)
    consumer.close()
    took = time.monotonic() - started
    check(harness, message is not None and not message.error() and message.value() == b"through",
          "consume while slow HTTP clients hold the admin API: %r" % message)
    # A group's first join waits for nothing (initial_rebalance_delay_ms 0): seconds, not the
    # admin API's 2 s read timeout per slow client.
    check(harness, took < 8, "Kafka took %.1f s while slow HTTP clients held the admin API" % took)
    for client in slow:
        client.close()
    started = time.monotonic()
    check(harness, api.get("/v1/status/live") == {"status": "live"}, "live after the slow clients")
    check(harness, time.monotonic() - started < 5, "the admin API took %.1f s after the slow clients left"
          % (time.monotonic() - started))


# ---- start-up: a busy admin port, the API turned off

def check_busy_admin_port(sluice, harness):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    busy = "127.0.0.1:%d" % holder.getsockname()[1]
    kafka = socket.socket()
    kafka.bind(("127.0.0.1", 0))
    kafka_port = kafka.getsockname()[1]
    kafka.close()
    run = subprocess.run([sluice, "serve", "--listen", "127.0.0.1:%d" % kafka_port, "--data-dir",
                          os.path.join(harness.work, "busy-data"), "--admin-listen", busy],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    holder.close()
    output = run.stdout.decode(errors="replace")
    check(harness, run.returncode == 1, "serve with a busy admin port exited %d, want 1:\n%s" % (run.returncode, output))
    check(harness, "cannot listen on %s for the admin API: address in use" % busy in output,
          "serve with a busy admin port does not say why:\n" + output)


def check_admin_off(sluice):
    harness = Harness(sluice, "admin-off", config="admin: {listen: off}\n")
    printed = subprocess.run([sluice, "config", "print", "--config", harness.config_path],
                             stdout=subprocess.PIPE, check=True).stdout.decode()
    check(harness, '\nadmin:\n  listen: "off"\n' in printed, "config print with admin off:\n" + printed)
    harness.start_broker(admin=False)
    metadata_request(harness)  # serving
    check(harness, "admin API" not in harness.broker_log(), "admin: {listen: off} still started the API")
    ports = listening_ports(harness.broker.pid)
    check(harness, ports == {harness.port}, "with the API off the broker listens on %r, want only %d"
          % (ports, harness.port))
    harness.stop_broker()


def main():
    sluice = sys.argv[1]
    harness = Harness(sluice, "admin-api", config="groups: {initial_rebalance_delay_ms: 0}\n")
    harness.watchdog(240)
    version = subprocess.run([sluice, "--version"], stdout=subprocess.PIPE, check=True).stdout.decode().split()[-1]
    harness.start_broker()
    api = Api(harness, harness.admin_url())
    check(harness, listening_ports(harness.broker.pid) == {harness.port, harness.admin_port},
          "listening ports %r, want Kafka %d and admin %d" % (listening_ports(harness.broker.pid), harness.port,
                                                               harness.admin_port))

    from kafka.admin import KafkaAdminClient, NewTopic
    admin = KafkaAdminClient(bootstrap_servers=harness.brokers, request_timeout_ms=10000)
    admin.create_topics([NewTopic("orders", ORDERS_PARTITIONS, 1, topic_configs={"retention.ms": "3600000"}),
                         NewTopic("events", 1, 1)])
    admin.close()
    ends = produce(harness)
    consumer = consume_and_commit(harness)

    steps = [("status and brokers", lambda: check_status_and_broker(harness, api, version)),
             ("topics", lambda: check_topics(harness, api, ends)),
             ("groups", lambda: check_groups(harness, api, ends)),
             ("log level", lambda: check_log_level(harness, api)),
             ("request logging", lambda: check_request_logging(harness, api)),
             ("errors and metrics", lambda: check_errors_and_metrics(harness, api)),
             ("slow HTTP clients", lambda: check_slow_clients(harness, api))]
    for name, step in steps:
        started = time.monotonic()
        step()
        print("ok: %s (%.1f s)" % (name, time.monotonic() - started))
    consumer.close()
    harness.stop_broker()

    check_busy_admin_port(sluice, harness)
    print("ok: a busy admin port stops the start")
    check_admin_off(sluice)
    print("ok: admin: {listen: off}")
    print("PASS: the admin API's routes against real clients; busy port; turned off")


if __name__ == "__main__":
    main()
