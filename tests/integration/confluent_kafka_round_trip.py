#!/usr/bin/python3
"""confluent-kafka (librdkafka) against a running broker: an idempotent producer with acks=all
whose delivery reports must carry consecutive offsets, then a consumer with assign() from offset
0 that must read back the same keys and values. Usage: BROKER TOPIC N"""
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

broker, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
sent = [(b"key-%d" % i, b"value-%d" % i) for i in range(count)]
offsets = []
errors = []


def on_delivery(error, message):
    if error is not None:
        errors.append(error)
    else:
        offsets.append(message.offset())


producer = Producer({"bootstrap.servers": broker, "acks": "all", "enable.idempotence": True})
for key, value in sent:
    producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
if producer.flush(20) != 0 or errors:
    sys.exit("confluent-kafka: delivery failed: %r" % errors[:3])
if sorted(offsets) != list(range(count)):
    sys.exit("confluent-kafka: delivery offsets %r... are not 0..%d" % (sorted(offsets)[:5], count - 1))

consumer = Consumer({"bootstrap.servers": broker, "group.id": "unused-assign-only",
                     "enable.auto.commit": False})
consumer.assign([TopicPartition(topic, 0, 0)])
received = []
deadline = time.monotonic() + 20
while len(received) < count and time.monotonic() < deadline:
    message = consumer.poll(0.5)
    if message is None:
        continue
    if message.error():
        sys.exit("confluent-kafka: consume error: %s" % message.error())
    received.append((message.key(), message.value()))
consumer.close()
if received != sent:
    sys.exit("confluent-kafka: sent %d messages, read back %d" % (count, len(received)))
print("confluent-kafka: %d messages round-tripped with offsets 0..%d" % (count, count - 1))
