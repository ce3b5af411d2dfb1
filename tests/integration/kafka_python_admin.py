#!/usr/bin/python3
"""kafka-python's KafkaAdminClient against the real `sluice serve`: create_topics with configs
(and the errors for an existing topic, a bad config and replication factor 3), describe_configs
(dynamic vs default sources), alter_configs (non-incremental replace), create_partitions, and
delete_topics; configs survive a SIGTERM restart. Usage: kafka_python_admin.py SLUICE_BINARY"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from kafka import KafkaConsumer
from kafka.errors import KafkaError
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic

sluice = sys.argv[1]
work = tempfile.mkdtemp(prefix="sluice-admin-")
log_path = os.path.join(work, "broker.log")
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
brokers = "127.0.0.1:%d" % port
broker = None
TOPIC = "admin-topic"
DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG = 1, 5


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    with open(log_path, errors="replace") as log:
        print("".join(log.readlines()[-30:]), file=sys.stderr)
    sys.exit(1)


def start_broker():
    global broker
    broker = subprocess.Popen([sluice, "serve", "--listen", brokers, "--data-dir", os.path.join(work, "data"),
                               "--admin-listen", "127.0.0.1:0"],
                              stdout=open(log_path, "a"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                fail("broker did not start")
            time.sleep(0.05)


def stop_broker():
    broker.terminate()
    if broker.wait(20) != 0:
        fail("broker exited with %d after SIGTERM" % broker.returncode)


def expect_error(label, call, error_code):
    """kafka-python raises for a controller request whose result carries an error."""
    try:
        call()
    except KafkaError as error:
        if getattr(error, "errno", None) != error_code:
            fail("%s: expected error %d, got %r" % (label, error_code, error))
        return
    fail("%s: expected error %d, got success" % (label, error_code))


def topic_errors(response):
    """{topic: error_code} from a CreateTopics / CreatePartitions response."""
    return {entry[0]: entry[1] for entry in response.topic_errors}


def topic_configs(admin, topic):
    """{name: (value, config_source)} of a topic, via DescribeConfigs v1+."""
    responses = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    error_code, _, _, name, entries = responses[0].resources[0]
    if error_code != 0 or name != topic:
        fail("describe_configs %s: error %d" % (topic, error_code))
    return {entry[0]: (entry[1], entry[3]) for entry in entries}


def partition_count(topic):
    consumer = KafkaConsumer(bootstrap_servers=brokers)
    try:
        return len(consumer.partitions_for_topic(topic) or ())
    finally:
        consumer.close()


try:
    start_broker()
    admin = KafkaAdminClient(bootstrap_servers=brokers, request_timeout_ms=10000)

    print("== create_topics")
    response = admin.create_topics([NewTopic(TOPIC, 2, 1, topic_configs={"retention.ms": "3600000",
                                                                         "max.message.bytes": "65536"})])
    if topic_errors(response) != {TOPIC: 0}:
        fail("create_topics: %r" % (response.topic_errors,))
    expect_error("existing topic", lambda: admin.create_topics([NewTopic(TOPIC, 1, 1)]), 36)
    expect_error("cleanup.policy=compact", lambda: admin.create_topics(
        [NewTopic("bad-config", 1, 1, topic_configs={"cleanup.policy": "compact"})]), 40)
    expect_error("replication factor 3", lambda: admin.create_topics([NewTopic("replicated", 1, 3)]), 38)

    print("== describe_configs")
    configs = topic_configs(admin, TOPIC)
    if configs.get("retention.ms") != ("3600000", DYNAMIC_TOPIC_CONFIG):
        fail("retention.ms described as %r" % (configs.get("retention.ms"),))
    if configs.get("segment.bytes", (None, None))[1] != DEFAULT_CONFIG:
        fail("segment.bytes described as %r" % (configs.get("segment.bytes"),))

    print("== alter_configs")
    response = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, TOPIC, configs={"retention.bytes": "1048576"})])
    if response.resources[0][0] != 0:
        fail("alter_configs: %r" % (response.resources,))
    configs = topic_configs(admin, TOPIC)
    if configs.get("retention.bytes") != ("1048576", DYNAMIC_TOPIC_CONFIG) or configs["retention.ms"][1] != DEFAULT_CONFIG:
        fail("after alter_configs: %r" % configs)
    response = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, TOPIC, configs={"segment.ms": "-5"})])
    if response.resources[0][0] != 40:
        fail("alter_configs with segment.ms=-5: %r" % (response.resources,))

    print("== create_partitions")
    response = admin.create_partitions({TOPIC: NewPartitions(4)})
    if topic_errors(response) != {TOPIC: 0}:
        fail("create_partitions: %r" % (response.topic_errors,))
    expect_error("create_partitions shrinking", lambda: admin.create_partitions({TOPIC: NewPartitions(3)}), 37)
    if partition_count(TOPIC) != 4:
        fail("metadata shows %d partitions, expected 4" % partition_count(TOPIC))
    admin.close()

    print("== restart keeps configs and partitions")
    stop_broker()
    start_broker()
    admin = KafkaAdminClient(bootstrap_servers=brokers, request_timeout_ms=10000)
    if topic_configs(admin, TOPIC).get("retention.bytes") != ("1048576", DYNAMIC_TOPIC_CONFIG):
        fail("retention.bytes lost across a restart")
    if partition_count(TOPIC) != 4:
        fail("partitions lost across a restart")

    print("== delete_topics")
    response = admin.delete_topics([TOPIC])
    if [tuple(entry[:2]) for entry in response.topic_error_codes] != [(TOPIC, 0)]:
        fail("delete_topics: %r" % (response.topic_error_codes,))
    if TOPIC in admin.list_topics():
        fail("deleted topic still listed")
    expect_error("deleting a missing topic", lambda: admin.delete_topics([TOPIC]), 3)
    admin.close()
    print("kafka-python admin: create/describe/alter/create_partitions/delete OK")
finally:
    if broker is not None and broker.poll() is None:
        broker.kill()
    shutil.rmtree(work, ignore_errors=True)
