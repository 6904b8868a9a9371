#!/usr/bin/env python3
"""Splits a `perf record --call-graph dwarf` profile of the host into the request path and
the relay path, and each into what the time went on.

Usage: perf script -i perf.data -F comm,tid,ip,sym | scripts/lib/profile-split.py
(without `dso`: a kernel frame then names its function, which the categories below match)

A sample belongs to the relay when its stack holds a frame of the relay, the mapper
runtime or the HTTP client that publishes; to the request path when it holds a frame of
the HTTP server, the REST/MCP handlers or the task service; samples on sqlx's SQLite
worker thread serve both (that thread runs every statement) and are shown apart; what is
left (tokio's scheduler parked or waking, timers) is "runtime". Within each, the sample is
counted once, under the first category (leaf first) whose pattern one of its frames
matches. Percentages are of all samples of the process.
"""

import re
import sys
from collections import Counter

RELAY = re.compile(r"pakaura_host::relay::|wasmtime|cranelift|reqwest::|hyper_util::client|pakaura_host::mapper::|pakaura_host::candidate::shadow")
REQUEST = re.compile(r"pakaura_host::http::|pakaura_host::tasks::|axum::|hyper::server|hyper_util::server|pakaura_host::auth::|pakaura_host::mcp|rmcp::")
CATEGORIES = [
    ("kernel: scheduling, futex, wake-ups", re.compile(r"\[kernel|^(schedule|__schedule|finish_task_switch|futex_|__futex|try_to_wake_up|_raw_spin|do_futex|__x64_sys_futex|ttwu|select_task_rq|enqueue_task|dequeue_task|psi_)")),
    ("kernel: network and files", re.compile(r"^(tcp_|__tcp|ip_|__ip|inet_|sock_|__sock|__sys_send|__sys_recv|ext4_|vfs_|__x64_sys_(write|read|pwrite|sendto|recvfrom|epoll|fdatasync|fsync)|do_epoll|ep_|skb_|__skb|net_|__netif|loopback|process_backlog|__napi|security_|copy_user|_copy_)")),
    ("SQLite engine", re.compile(r"^sqlite3|^pager|^btree|^walIndex|^wal[A-Z]|^vdbe")),
    ("wasm guest and wasmtime", re.compile(r"wasmtime|cranelift|wasm\[|^wasm")),
    ("sqlx (driver, encode/decode)", re.compile(r"sqlx")),
    ("JSON (serde_json)", re.compile(r"serde_json|serde::")),
    ("HTTP (hyper, axum, reqwest)", re.compile(r"hyper|axum|reqwest|http::|h2::|tower")),
    ("tracing and metrics", re.compile(r"tracing|metrics")),
    ("allocator", re.compile(r"mi_|mimalloc|malloc|free|realloc")),
    ("tokio runtime", re.compile(r"tokio::")),
]


def samples(lines):
    """Yields (comm, frames) per sample from `perf script` text."""
    comm, frames = None, []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if comm is not None:
                yield comm, frames
            comm, frames = None, []
        elif not line.startswith((" ", "\t")):
            comm, frames = line.split()[0], []
        else:
            parts = line.strip().split(None, 1)
            sym = parts[1] if len(parts) > 1 else ""
            frames.append(re.sub(r"\+0x[0-9a-f]+", "", sym))
    if comm is not None:
        yield comm, frames


def main():
    total = 0
    by_path = Counter()
    by_cat = Counter()
    for comm, frames in samples(sys.stdin):
        total += 1
        joined = "\n".join(frames)
        if comm.startswith("sqlx-sqlite"):
            path = "SQLite worker thread (both paths)"
        elif RELAY.search(joined):
            path = "relay"
        elif REQUEST.search(joined):
            path = "request"
        else:
            path = "runtime (unattributed)"
        by_path[path] += 1
        cat = "other"
        for frame in frames:
            hit = next((name for name, pattern in CATEGORIES if pattern.search(frame)), None)
            if hit:
                cat = hit
                break
        by_cat[(path, cat)] += 1
    if not total:
        sys.exit("no samples on stdin")
    print(f"{total} samples")
    print("| path | share | of which (share of all samples) |")
    print("|---|---|---|")
    for path, n in by_path.most_common():
        cats = sorted(((c, m) for (p, c), m in by_cat.items() if p == path), key=lambda x: -x[1])
        detail = "; ".join(f"{c} {100 * m / total:.0f} %" for c, m in cats if 100 * m / total >= 1)
        print(f"| {path} | {100 * n / total:.0f} % | {detail} |")


if __name__ == "__main__":
    main()
