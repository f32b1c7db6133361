"""Produce to and consume from the real broker, with confluent-kafka and with Spark's Kafka source."""

import json

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.integration


@pytest.fixture
def topic(stack, unique_name):
    name = unique_name("roundtrip")
    admin = AdminClient({"bootstrap.servers": stack["kafka"]["bootstrap"]})
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])[name].result(timeout=30)
    return name


def produce(bootstrap, topic, records):
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, value in records:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def test_produce_then_consume(stack, topic):
    bootstrap = stack["kafka"]["bootstrap"]
    sent = [(f"actor-{i % 7}", json.dumps({"n": i})) for i in range(200)]
    produce(bootstrap, topic, sent)

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    received, partitions_by_key = [], {}
    try:
        for _ in range(200):
            for message in consumer.consume(num_messages=500, timeout=1.0):
                assert message.error() is None
                received.append((message.key().decode(), message.value().decode()))
                partitions_by_key.setdefault(message.key(), set()).add(message.partition())
            if len(received) >= len(sent):
                break
    finally:
        consumer.close()
    assert sorted(received) == sorted(sent)
    # Keyed records keep one partition per key: the per-actor order the job relies on.
    assert all(len(parts) == 1 for parts in partitions_by_key.values())


def test_spark_reads_the_topic(stack, topic, spark):
    produce(stack["kafka"]["bootstrap"], topic, [("a", "1"), ("b", "2"), ("a", "3")])
    rows = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", stack["kafka"]["bootstrap"])
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
        .selectExpr("CAST(key AS STRING) AS key", "CAST(value AS STRING) AS value", "offset")
        .collect()
    )
    assert sorted((r.key, r.value) for r in rows) == [("a", "1"), ("a", "3"), ("b", "2")]


def test_topics_refuse_records_over_the_contracts_bound(stack, config, unique_name):
    """The topics the project creates (fraud.kafka.topic_config) take a record of
    stream.max_record_bytes and refuse a larger one at the broker, before any job reads it."""
    from confluent_kafka import KafkaError

    from fraud.kafka import create_topics, topic_config

    name = unique_name("bounded")
    bootstrap = stack["kafka"]["bootstrap"]
    create_topics({"bootstrap.servers": bootstrap}, [name], 1, 1, topic_config(config))
    limit = config.stream.max_record_bytes
    outcomes = {}
    producer = Producer({"bootstrap.servers": bootstrap, "batch.size": limit})
    for label, size in (("at the bound", limit), ("far over", limit + 64 * 1024)):
        producer.produce(name, key=b"k", value=b"x" * size,
                         on_delivery=lambda err, _msg, label=label: outcomes.__setitem__(label, err))
        producer.flush(30)
    assert outcomes["at the bound"] is None
    assert outcomes["far over"] is not None and outcomes["far over"].code() == KafkaError.MSG_SIZE_TOO_LARGE
