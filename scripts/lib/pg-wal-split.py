#!/usr/bin/env python3
"""Splits the PostgreSQL WAL of a benchmark run by what wrote it, per created task.

Usage: pg_waldump --stats=record ... | pg-wal-split.py TASKS

Reads the per-record-type table `pg_waldump --stats=record` prints (PostgreSQL 13 or
later) and prints one line: for each kind of record, records and bytes per task (TASKS,
the tasks the run created), then the whole WAL per task and the share of it that was
full-page images. The kinds:

- index entries: B-tree leaf and inner inserts (a non-HOT update adds one to every index
  of the row, as an insert does);
- index splits: B-tree page splits and new roots;
- non-HOT updates: row versions written to another page, or with an indexed column changed;
- HOT updates: row versions on the same page, no index touched;
- inserts: heap inserts, single and multi-row;
- deletes;
- locks: row locks (`SELECT ... FOR UPDATE`, and the lock an UPDATE's key check takes);
- commits: transaction commits;
- rest: everything else (vacuum and pruning, checkpoints, sequences, ...).

Bytes are each record's size with its full-page images (pg_waldump's combined size).
"""

import re
import sys

ROW = re.compile(
    r"^(?P<type>\S+)\s+(?P<n>\d+)\s+\(\s*[\d.]+\)\s+(?P<rec>\d+)\s+\(\s*[\d.]+\)"
    r"\s+(?P<fpi>\d+)\s+\(\s*[\d.]+\)\s+(?P<all>\d+)\s+\(\s*[\d.]+\)\s*$"
)

# Each kind with the prefixes of the record types it counts.
KINDS = [
    ("index entries", ("Btree/INSERT_",)),
    ("index splits", ("Btree/SPLIT_", "Btree/NEWROOT")),
    ("non-HOT updates", ("Heap/UPDATE",)),
    ("HOT updates", ("Heap/HOT_UPDATE",)),
    ("inserts", ("Heap/INSERT", "Heap2/MULTI_INSERT")),
    ("deletes", ("Heap/DELETE",)),
    ("locks", ("Heap/LOCK", "Heap2/LOCK_UPDATED")),
    ("commits", ("Transaction/COMMIT",)),
]


def kind_of(record_type: str) -> str:
    return next((name for name, prefixes in KINDS if record_type.startswith(prefixes)), "rest")


def main() -> int:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit() or int(sys.argv[1]) == 0:
        print("usage: pg-wal-split.py TASKS (a positive count) < pg_waldump --stats=record output",
              file=sys.stderr)
        return 2
    tasks = int(sys.argv[1])
    totals = {name: [0, 0] for name, _ in KINDS}
    totals["rest"] = [0, 0]
    fpi = 0
    whole = 0
    for line in sys.stdin:
        m = ROW.match(line.strip())
        if not m:
            continue
        kind = totals[kind_of(m["type"])]
        kind[0] += int(m["n"])
        kind[1] += int(m["all"])
        fpi += int(m["fpi"])
        whole += int(m["all"])
    if whole == 0:
        print("pg-wal-split.py: no record table in the input (is it pg_waldump --stats=record?)",
              file=sys.stderr)
        return 1
    parts = [f"{name} {n / tasks:.1f} / {size / tasks / 1000:.2f} KB"
             for name, (n, size) in totals.items() if n]
    print(f"WAL per task {whole / tasks / 1000:.2f} KB (full-page images "
          f"{100 * fpi / whole:.0f} %): " + ", ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
