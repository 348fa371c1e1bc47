"""The physical limit beside writ-bench-audit's SQLite figure: the same event rows inserted with
SQLite's C API (Python's sqlite3: prepared statements, executemany) into a database that Writ's
own migrations created (so the same tables and indexes), in transactions of 1,000 under WAL
with synchronous=FULL and Writ's other settings (SQLiteBackend: page cache, statement journals
in memory, checkpoint interval), as Writ commits them — with each event's leaf hash in its row,
but without the hash rows of the tree's levels above the leaves and without Writ's code. Each
transaction also inserts the names (types, actors, targets) that its events are the first to
use, as Writ's appends do.

usage: sqlite_peer.py DATABASE ROWS.jsonl
  one row per line: [index, body, type_id, actor_id, target_id, at_ms, [[name_id, name], ...], leaf_hash_hex]
  (the names: those this event is the first to use)
Prints one JSON line: {"rows": n, "seconds": s, "per_second": r}.
"""
import json
import sqlite3
import sys
import time


def main():
    rows = [json.loads(line) for line in open(sys.argv[2])]
    for row in rows:
        row[7] = bytes.fromhex(row[7])
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA temp_store=MEMORY")
    db.execute("PRAGMA cache_size=-32768")
    db.execute("PRAGMA wal_autocheckpoint=10000")
    start = time.perf_counter()
    for chunk in range(0, len(rows), 1000):
        batch = rows[chunk:chunk + 1000]
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO audit_names (id, name) VALUES (?, ?)", [tuple(name) for row in batch for name in row[6]])
        db.executemany("INSERT INTO audit_events (leaf_index, body, type_id, actor_id, target_id, at_ms, leaf_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [tuple(row[:6]) + (row[7],) for row in batch])
        db.execute("COMMIT")
    seconds = time.perf_counter() - start
    print(json.dumps({"rows": len(rows), "seconds": seconds, "per_second": len(rows) / seconds, "sqlite": sqlite3.sqlite_version}))


if __name__ == "__main__":
    main()
