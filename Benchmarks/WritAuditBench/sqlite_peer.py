"""The physical limit beside writ-bench-audit's SQLite figure: the same event rows inserted with
SQLite's C API (Python's sqlite3: prepared statements, executemany) into a database that Writ's
own migrations created (so the same tables and indexes), in transactions of 1,000 under WAL
with synchronous=FULL, as Writ commits them — but without the Merkle tree's hash rows and
without Writ's code.

usage: sqlite_peer.py DATABASE ROWS.jsonl   (one row per line: [index, body, type, actor, target, at_ms])
Prints one JSON line: {"rows": n, "seconds": s, "per_second": r}.
"""
import json
import sqlite3
import sys
import time


def main():
    rows = [tuple(json.loads(line)) for line in open(sys.argv[2])]
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    start = time.perf_counter()
    for chunk in range(0, len(rows), 1000):
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO audit_events (leaf_index, body, event_type, actor, target, at_ms) VALUES (?, ?, ?, ?, ?, ?)",
                       rows[chunk:chunk + 1000])
        db.execute("COMMIT")
    seconds = time.perf_counter() - start
    print(json.dumps({"rows": len(rows), "seconds": seconds, "per_second": len(rows) / seconds, "sqlite": sqlite3.sqlite_version}))


if __name__ == "__main__":
    main()
