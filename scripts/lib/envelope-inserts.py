#!/usr/bin/env python3
"""Inserts envelopes into a fresh SQLite database built from host/migrations/sqlite, the way
the map stage stores them (one multi-row insert, then the bodies in `envelope_bodies`), and
prints how many WAL frames (pages written) each transaction costs as the table grows.

Usage: envelope-inserts.py IDS ENVELOPES [BATCH]

IDS is `v5` (the host's envelope ids: a name-based hash of the mutation id, mapper and
event index, so spread at random over the `id` index) or `ordered` (an id that keeps the
mutation's time order: a comparison only, not what the host publishes). ENVELOPES is how
many to insert in all, BATCH how many per transaction (default 90: 30 mutations of three
events, about a map-stage store at 2,600 requests a second). Mutation and task ids begin
with the time in milliseconds, like the host's UUIDv7; each body is 700 bytes.

Every 99,000 envelopes it prints the mean time per transaction (this script's own Python
work included, the same for both kinds of id) and the WAL frames per transaction, then
checkpoints (TRUNCATE) so the next period counts from an empty WAL; automatic checkpoints are
off. Uses pysqlite3 when it can be imported (`pip install pysqlite3-binary`, a current
SQLite like the host's bundled one), else Python's own sqlite3.
"""

import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

try:
    import pysqlite3 as sqlite3
except ImportError:
    import sqlite3

MIGRATIONS = Path(__file__).resolve().parents[2] / "host" / "migrations" / "sqlite"
PERIOD = 99_000
FRAME = 4096 + 24


def v7() -> uuid.UUID:
    return uuid.UUID(int=(time.time_ns() // 1_000_000) << 80 | random.getrandbits(80))


def main() -> None:
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in ("v5", "ordered"):
        sys.exit(__doc__)
    ids, total = sys.argv[1], int(sys.argv[2])
    batch = int(sys.argv[3]) if len(sys.argv) == 4 else 90
    with tempfile.TemporaryDirectory() as dir:
        path = os.path.join(dir, "envelopes.db")
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA wal_autocheckpoint=0")
        for migration in sorted(MIGRATIONS.glob("*.sql")):
            db.executescript(migration.read_text())
        print(f"SQLite {sqlite3.sqlite_version}, ids {ids}, {batch} envelopes a transaction")
        body = "x" * 700
        seq = inserted = transactions = 0
        started = time.perf_counter()
        while inserted < total:
            rows = []
            for _ in range(batch // 3):
                mutation, task = v7(), v7()
                seq += 1
                for index in range(3):
                    if ids == "v5":
                        id = uuid.uuid5(mutation, f"default:{index}")
                    else:
                        id = uuid.UUID(int=mutation.int & ~0xFFFF | index)
                    rows.append((str(id), mutation.bytes, seq, index, task.bytes, "user", "default",
                                 "task-events", "task.created", str(task), None, "c", "pending", 0,
                                 "2026-12-06T00:00:00Z", None))
            db.execute("BEGIN IMMEDIATE")
            # One multi-row statement, then the bodies under the seq each envelope got.
            stored = db.execute(
                "INSERT INTO envelopes (id, mutation_id, outbox_seq, event_index, task_id, user_id, "
                "mapper, topic, event_type, partition_key, traceparent, correlation_id, state, "
                "attempts, created_at, finished_at) VALUES "
                + ",".join(["(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"] * len(rows))
                + " ON CONFLICT (id) DO NOTHING RETURNING seq",
                [value for row in rows for value in row],
            ).fetchall()
            db.executemany("INSERT INTO envelope_bodies (seq, body) VALUES (?, ?)",
                           [(seq, body) for (seq,) in stored])
            db.execute("COMMIT")
            transactions += 1
            inserted += len(rows)
            if inserted % PERIOD < len(rows):
                elapsed = time.perf_counter() - started
                frames = (os.path.getsize(path + "-wal") - 32) / FRAME
                print(f"{inserted:>9} envelopes: {1000 * elapsed / transactions:6.2f} ms and "
                      f"{frames / transactions:6.1f} WAL frames a transaction")
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                started, transactions = time.perf_counter(), 0


if __name__ == "__main__":
    main()
