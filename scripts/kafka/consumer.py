#!/usr/bin/env python3
"""Reading Pakaura's events from Kafka: a consumer to copy (confluent-kafka >= 2.x).

    pip install confluent-kafka
    python3 consumer.py --bootstrap 127.0.0.1:9092            # a consumer group, from the start
    python3 consumer.py --assign --idle-exit 5 --json         # every partition, no group, JSON lines

It reads `task-events`, `task-updates` and `reminders`, and shows the three rules of
consuming them (README.md, "Consuming the events"):
1. Delivery is at least once: the same event can arrive twice (a publish retried after a
   timeout, a replay). Its CloudEvents `id` is stable: skip an `id` you have already handled.
2. A record's key is the task id, so a task's events are in one partition of each topic, in
   the order the task changed. There is no order across topics or across tasks.
3. One exception: an event the relay parked and an operator replayed later arrives after the
   task's later events on that topic. Its `time` (when the change happened) is older than
   the last one seen for the task there: compare `time` before you apply it.
With a group, offsets are committed only after the record was handled (at least once).
"""

import argparse
import json
import sys
import time
from collections import OrderedDict
from datetime import datetime

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

TOPICS = ("task-events", "task-updates", "reminders")


class Events:
    """The two checks a consumer of Pakaura's events makes on each one."""

    def __init__(self, remember):
        self.remember = remember
        self.seen = OrderedDict()  # id -> where it was first read, the newest last
        self.latest = {}  # (topic, key) -> `time` of the newest event applied

    def verdict(self, topic, key, event, where):
        """`new` (handle it), `duplicate` (skip it) or `late` (older than what you applied for
        this task on this topic: a replayed event; handle it knowing that)."""
        if event["id"] in self.seen:  # at least once: a duplicate, skip it
            return "duplicate", self.seen[event["id"]]
        self.seen[event["id"]] = where
        if len(self.seen) > self.remember:  # bounded: the oldest ids are forgotten
            self.seen.popitem(last=False)
        when = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
        newest = self.latest.get((topic, key))
        if newest is not None and when < newest:  # a replayed event, after newer ones
            return "late", newest.isoformat()
        self.latest[(topic, key)] = when
        return "new", None


def consumer(args):
    config = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        # At least once: offsets are stored after a record is handled, committed in the background.
        "enable.auto.offset.store": False,
        "enable.auto.commit": not args.assign,
        # A short session: a group join waits for about half of it on some brokers.
        "session.timeout.ms": 6000,
        "log_level": 3,
    }
    reader = Consumer(config)
    topics = args.topics.split(",")
    if args.assign:
        partitions = [
            TopicPartition(topic, p, OFFSET_BEGINNING)
            for topic, meta in reader.list_topics(timeout=10).topics.items()
            if topic in topics
            for p in meta.partitions
        ]
        reader.assign(partitions)
    else:
        reader.subscribe(topics)
    return reader


def show(record, event, verdict, detail):
    where = f"{record.topic()}[{record.partition()}]@{record.offset()}"
    line = f"{where:<22} {record.key().decode():<36} {event.get('type', '?'):<22} {event.get('time', '?')}"
    if verdict == "duplicate":
        line += f"  duplicate of {detail}: skipped"
    elif verdict == "late":
        line += f"  LATE: older than {detail}, the task's newest on this topic (a replayed event)"
    print(line, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers")
    parser.add_argument("--topics", default=",".join(TOPICS))
    parser.add_argument("--group", default="pakaura-consumer-example", help="consumer group")
    parser.add_argument("--assign", action="store_true", help="read every partition from the start, no group")
    parser.add_argument("--json", action="store_true", help="one JSON object per record (for programs)")
    parser.add_argument("--idle-exit", type=float, default=0, help="stop after this many idle seconds (0: never)")
    parser.add_argument("--remember", type=int, default=100_000, help="ids kept for de-duplication")
    args = parser.parse_args()

    events = Events(args.remember)
    reader = consumer(args)
    counts = {"records": 0, "new": 0, "duplicate": 0, "late": 0}
    last = time.monotonic()
    try:
        while not args.idle_exit or time.monotonic() - last < args.idle_exit:
            record = reader.poll(0.2)
            if record is None:
                continue
            if record.error() is not None:
                if record.error().code() != KafkaError._PARTITION_EOF:
                    print(f"consumer: {record.error()}", file=sys.stderr, flush=True)
                continue
            last = time.monotonic()
            counts["records"] += 1
            where = f"{record.topic()}[{record.partition()}]@{record.offset()}"
            event = json.loads(record.value())
            key = record.key().decode() if record.key() is not None else None
            verdict, detail = events.verdict(record.topic(), key, event, where)
            counts[verdict] += 1
            if args.json:
                line = {
                    "topic": record.topic(), "partition": record.partition(), "offset": record.offset(),
                    "key": key, "headers": [[k, v.decode()] for k, v in record.headers() or []],
                    "value": record.value().decode(), "verdict": verdict,
                }
                print(json.dumps(line), flush=True)
            else:
                show(record, event, verdict, detail)
            # Handle the event here (when verdict is not "duplicate"), then:
            if not args.assign:
                reader.store_offsets(record)
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()
        print(
            f"consumer: {counts['records']} records: {counts['new']} events, {counts['duplicate']} duplicates "
            f"skipped, {counts['late']} late (replayed) events",
            file=sys.stderr,
            flush=True,
        )


if __name__ == "__main__":
    main()
