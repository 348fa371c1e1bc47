"""cedarpy's is_authorized_batch on files written by writ-bench-cedar, timed on one core.

usage: cedarpy_batch.py POLICIES ENTITIES REQUESTS OUT
Writes {"seconds": best of 3 batch calls, "decisions": ["allow"|"deny", ...], "version": ...}.
"""
import json
import sys
import time
from importlib.metadata import version

import cedarpy


def uid(value):
    return '%s::"%s"' % (value["type"], value["id"].replace("\\", "\\\\").replace('"', '\\"'))


def main():
    policies = open(sys.argv[1]).read()
    entities = open(sys.argv[2]).read()
    requests = []
    for line in open(sys.argv[3]):
        if line.strip():
            r = json.loads(line)
            requests.append({"principal": uid(r["principal"]), "action": uid(r["action"]), "resource": uid(r["resource"]), "context": r["context"]})
    best = None
    results = None
    for _ in range(3):
        start = time.perf_counter()
        results = cedarpy.is_authorized_batch(requests, policies, entities)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    decisions = ["allow" if str(r.decision) == "Decision.Allow" else "deny" for r in results]
    with open(sys.argv[4], "w") as handle:
        json.dump({"seconds": best, "decisions": decisions, "version": version("cedarpy")}, handle)


if __name__ == "__main__":
    main()
