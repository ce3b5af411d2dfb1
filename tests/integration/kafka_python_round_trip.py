#!/usr/bin/python3
"""kafka-python against a running broker: produce N keyed messages (acks=1), then read them back
with assign() + seek_to_beginning() (no consumer group) and compare. Usage: BROKER TOPIC N"""
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

broker, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
sent = [(b"key-%d" % i, b"value-%d" % i) for i in range(count)]
producer = KafkaProducer(bootstrap_servers=broker, acks=1)
for key, value in sent:
    producer.send(topic, key=key, value=value).get(timeout=10)
producer.flush()
producer.close()

consumer = KafkaConsumer(bootstrap_servers=broker, group_id=None, enable_auto_commit=False,
                         consumer_timeout_ms=5000)
partition = TopicPartition(topic, 0)
consumer.assign([partition])
consumer.seek_to_beginning(partition)
received = []
for message in consumer:
    received.append((message.key, message.value))
    if len(received) == count:
        break
consumer.close()
if received != sent:
    sys.exit("kafka-python: sent %d messages, read back %d (first: %r)" % (count, len(received), received[:3]))
print("kafka-python: %d messages round-tripped" % count)
