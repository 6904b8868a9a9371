"""The Kafka side of the sidecar stand-in: the component's settings, and a producer that
sends records the way Dapr's Kafka component does (Sarama's SyncProducer: one call waits
until the broker acknowledged every record, or says which failed).

The producer is librdkafka's (confluent-kafka), not Sarama; where that shows, it is made to
behave like Dapr's: the partition is chosen with Sarama's hash here, never by librdkafka; a
topic is never created by publishing to it; and a record that cannot be delivered fails
within `delivery_timeout` so the sidecar answers before the host's publish timeout.
"""

import json
import re
import threading
import time
from dataclasses import dataclass

from confluent_kafka import KafkaException, Producer

import dapr_rules

# Sarama's ErrUnknownTopicOrPartition and ErrOutOfBrokers texts (errors.go), which Dapr
# passes on in its 500 message.
UNKNOWN_TOPIC = "kafka server: Request was for a topic or partition that does not exist on this broker"
NO_BROKERS = "kafka: client has run out of available brokers to talk to"
# How long a topic's partition count is trusted before it is read again.
PARTITIONS_TTL = 10.0


class SettingsError(ValueError):
    """Component metadata the stand-in refuses, with the reason."""


@dataclass
class Settings:
    """The component metadata the stand-in honours (component.json), parsed."""

    brokers: str
    client_id: str = "sarama"
    max_message_bytes: int = 1048576
    acks: str = "all"
    retries: int = 5
    exclude_headers: re.Pattern | None = None
    compression: str = "none"

    @classmethod
    def parse(cls, pairs):
        """Reads `NAME=VALUE` strings against component.json: unknown names and values
        outside `values`/`pattern` are refused, as is what the local broker cannot do."""
        known = json.loads(dapr_rules.COMPONENT_FILE.read_text())["metadata"]
        given = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            rule = known.get(name)
            if not sep or rule is None:
                raise SettingsError(f"{pair!r}: not NAME=VALUE with a name of {dapr_rules.COMPONENT_FILE.name}")
            if "values" in rule and value not in rule["values"]:
                raise SettingsError(f"{name}={value!r}: must be one of {rule['values']}")
            if "pattern" in rule and not re.fullmatch(rule["pattern"], value):
                raise SettingsError(f"{name}={value!r}: must match {rule['pattern']}")
            given[name] = value
        if given.get("authType", "none") != "none":
            raise SettingsError("authType: the stand-in talks to a local broker without authentication (none)")
        if "brokers" not in given:
            raise SettingsError("brokers is required")
        exclude = given.get("excludeHeaderMetaRegex", "")
        return cls(
            brokers=given["brokers"],
            client_id=given.get("clientID", "sarama"),
            max_message_bytes=int(given.get("maxMessageBytes", 1048576)),
            acks={"all": "all", "local": "1", "none": "0"}[given.get("producerRequiredAcks", "all")],
            retries=int(given.get("producerRetryMax", 5)),
            exclude_headers=re.compile(exclude) if exclude else None,
            compression=given.get("compression", "none"),
        )


class Forwarder:
    """Sends records to Kafka and waits for the broker's answer for each."""

    def __init__(self, settings, delivery_timeout):
        self.settings = settings
        self.timeout = delivery_timeout
        self.producer = Producer(
            {
                "bootstrap.servers": settings.brokers,
                "client.id": settings.client_id,
                "acks": settings.acks,
                "retries": settings.retries,
                "compression.type": settings.compression,
                # Records are checked against maxMessageBytes before producing (Sarama's check).
                "message.max.bytes": max(settings.max_message_bytes + 1024, 1_000_000),
                "message.timeout.ms": int(delivery_timeout * 1000),
                "linger.ms": 0,
                # Sarama asks for topic auto-creation, but a broker that allows it would make a
                # topic with its own partition count: topics are made on purpose, 3 partitions.
                "allow.auto.create.topics": False,
                "reconnect.backoff.max.ms": 500,
                "log_level": 3,
            }
        )
        self.partitions = {}
        self.lock = threading.Lock()
        self.acked = {}  # topic -> {partition: next offset} of delivered records (take_acked)
        self.running = True
        self.poller = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self.poller.start()

    def _poll(self):
        while self.running:
            self.producer.poll(0.05)

    def close(self):
        self.running = False
        self.producer.flush(self.timeout)

    def wait_for_broker(self, within):
        """Raises KafkaException unless the brokers answer a metadata request in time (Dapr's
        component fails its Init when no broker answers)."""
        self.producer.list_topics(timeout=within)

    def partition_count(self, topic):
        with self.lock:
            known = self.partitions.get(topic)
        if known and time.monotonic() - known[1] < PARTITIONS_TTL:
            return known[0]
        try:
            meta = self.producer.list_topics(topic, timeout=self.timeout).topics.get(topic)
        except KafkaException as error:
            raise RuntimeError(f"{NO_BROKERS} ({error.args[0].str()})") from None
        if meta is None or meta.error is not None or not meta.partitions:
            raise RuntimeError(UNKNOWN_TOPIC)
        with self.lock:
            self.partitions[topic] = (len(meta.partitions), time.monotonic())
        return len(meta.partitions)

    def _forget(self, topic):
        with self.lock:
            self.partitions.pop(topic, None)

    def send(self, records):
        """Produces every record and waits for each delivery: the error text of each record,
        None where the broker acknowledged it."""
        errors = [None] * len(records)
        pending = threading.Semaphore(0)
        produced = 0
        for i, record in enumerate(records):
            try:
                errors[i] = dapr_rules.too_large(record, self.settings.max_message_bytes)
                if errors[i] is None:
                    self._produce(record, i, errors, pending)
                    produced += 1
            except (RuntimeError, BufferError, KafkaException, ValueError) as error:
                errors[i] = f"kafka: Failed to produce message to topic {record.topic}: {error}"
        deadline = time.monotonic() + self.timeout + 2
        for _ in range(produced):
            if not pending.acquire(timeout=max(0.0, deadline - time.monotonic())):
                break
        return errors

    def _produce(self, record, index, errors, pending):
        count = self.partition_count(record.topic)
        if record.partition is not None:
            if record.partition >= count:
                # contrib: common/component/kafka/partitioner.go daprPartitioner.Partition
                raise ValueError(f"partition number {record.partition} is out of range, topic has {count} partitions")
            partition = record.partition
        elif record.key is not None:
            partition = dapr_rules.sarama_partition(record.key, count)
        else:
            partition = -1  # no key: Sarama picks a random partition; so does librdkafka

        def delivered(error, message):
            if error is not None:
                errors[index] = f"kafka: Failed to produce message to topic {record.topic}: {error.str()}"
                self._forget(record.topic)
            else:
                errors[index] = None
                with self.lock:
                    offsets = self.acked.setdefault(message.topic(), {})
                    offsets[message.partition()] = max(offsets.get(message.partition(), 0), message.offset() + 1)
            pending.release()

        errors[index] = "kafka: no answer from the broker in time"
        self.producer.produce(
            record.topic,
            value=record.value,
            key=record.key,
            partition=partition,
            headers=record.headers or None,
            on_delivery=delivered,
        )

    def take_acked(self):
        """{topic: {partition: next offset}} of the records acknowledged since the last call."""
        with self.lock:
            acked, self.acked = self.acked, {}
        return acked
