#!/usr/bin/env python3
"""Samples a SQLite database's WAL index while a benchmark runs.

Usage: wal-index.py DATABASE SECONDS [INTERVAL_MS]

Reads the WAL index header from DATABASE-shm (SQLite's shared memory file, which every
connection maps) every INTERVAL_MS (default 5) for SECONDS, without opening the database:
mxFrame, the frames in the WAL since it last started over, and nBackfill, how many of them
a checkpoint has copied into the database file. Prints one line: how many times the WAL
started over (mxFrame went down between two samples; restarts closer together than the
interval are missed), the most frames it held, and the share of samples in which it held
more than 4,096 frames not all copied.

Layout (https://www.sqlite.org/walformat.html, "The WAL-Index Header"): two copies of the
48-byte header, szPage at byte 14 and mxFrame at byte 16 of the first; then the checkpoint
information, nBackfill at byte 96. Native byte order. Only the first copy is read, without
SQLite's locks, so a sample taken while a writer updates it may be torn: fine for these
counts, not for anything exact. The sampling costs some CPU: take timing figures from runs
without it.
"""

import mmap
import os
import struct
import sys
import time


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    shm = sys.argv[1] + "-shm"
    seconds = float(sys.argv[2])
    interval = (float(sys.argv[3]) if len(sys.argv) == 4 else 5.0) / 1000
    end = time.monotonic() + seconds
    while not os.path.exists(shm) or os.path.getsize(shm) < 136:
        if time.monotonic() > end:
            print(f"no WAL index at {shm}", file=sys.stderr)
            return 1
        time.sleep(0.05)
    with open(shm, "rb") as f:
        index = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    last = restarts = most = behind = samples = 0
    frame_bytes = 24 + 4096
    while time.monotonic() < end:
        (page,) = struct.unpack_from("=H", index, 14)
        frame_bytes = 24 + (65536 if page == 1 else page)
        (frames,) = struct.unpack_from("=I", index, 16)
        (copied,) = struct.unpack_from("=I", index, 96)
        restarts += frames < last
        behind += frames > 4096 and copied < frames
        last, most, samples = frames, max(most, frames), samples + 1
        time.sleep(interval)
    print(
        f"{restarts} restarts, at most {most} frames ({most * frame_bytes / 1e6:.1f} MB), "
        f"{100 * behind / max(samples, 1):.0f} % of {samples} samples over 4,096 frames not all copied"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
