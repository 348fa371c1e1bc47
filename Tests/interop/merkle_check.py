"""An independent check of Writ's transparency-log Merkle trees and checkpoints.

usage: merkle_check.py CASES.json
CASES.json: {"trees": [{"leaves": [hex data...], "roots": [{"size", "root"}],
             "inclusion": [{"index", "size", "path": [b64...]}],
             "consistency": [{"old", "new", "path": [b64...]}]}],
             "checkpoint": {"note": signed note text, "verifier": vkey string}}
Everything is recomputed here from RFC 6962's definitions with hashlib (roots, audit paths,
consistency proofs), and the checkpoint's Ed25519 signature and key id are checked with
`cryptography`. Prints one line per disagreement and a summary; exits 1 on any disagreement.
"""
import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class Tree:
    def __init__(self, hashes):
        self.hashes = hashes
        self.memo = {}

    def mth(self, lo, hi):
        if hi == lo:
            return hashlib.sha256(b"").digest()
        if hi - lo == 1:
            return self.hashes[lo]
        key = (lo, hi)
        if key not in self.memo:
            k = split(hi - lo)
            self.memo[key] = node_hash(self.mth(lo, lo + k), self.mth(lo + k, hi))
        return self.memo[key]

    def path(self, m, lo, hi):
        if hi - lo <= 1:
            return []
        k = split(hi - lo)
        if m < k:
            return self.path(m, lo, lo + k) + [self.mth(lo + k, hi)]
        return self.path(m - k, lo + k, hi) + [self.mth(lo, lo + k)]

    def subproof(self, m, lo, hi, whole):
        n = hi - lo
        if m == n:
            return [] if whole else [self.mth(lo, hi)]
        k = split(n)
        if m <= k:
            return self.subproof(m, lo, lo + k, whole) + [self.mth(lo + k, hi)]
        return self.subproof(m - k, lo + k, hi, False) + [self.mth(lo, lo + k)]


def b64(data):
    return base64.b64encode(data).decode()


def check_checkpoint(case, problems):
    note, vkey = case["note"], case["verifier"]
    text, _, signatures = note.rpartition("\n\n")
    text += "\n"
    name, key_id, key = vkey.split("+", 2)
    raw = base64.b64decode(key)
    if raw[0] != 1 or len(raw) != 33:
        problems.append("checkpoint: the verifier key is not an Ed25519 key")
        return
    expected_id = hashlib.sha256(name.encode() + b"\n" + b"\x01" + raw[1:]).digest()[:4]
    if expected_id.hex() != key_id:
        problems.append("checkpoint: key id %s, computed %s" % (key_id, expected_id.hex()))
    lines = [line for line in signatures.split("\n") if line]
    ok = False
    for line in lines:
        if not line.startswith("\u2014 "):
            problems.append("checkpoint: a signature line does not start with an em dash: %r" % line)
            continue
        signer, blob = line[2:].split(" ")
        blob = base64.b64decode(blob)
        if signer == name and blob[:4] == expected_id:
            Ed25519PublicKey.from_public_bytes(raw[1:]).verify(blob[4:], text.encode())
            ok = True
    if not ok:
        problems.append("checkpoint: no signature by %s" % name)
    origin, size, root = text.split("\n")[:3]
    return origin, int(size), root


def main():
    cases = json.load(open(sys.argv[1]))
    problems = []
    counts = {"roots": 0, "inclusion": 0, "consistency": 0}
    roots_by_size = {}
    for number, case in enumerate(cases["trees"]):
        tree = Tree([leaf_hash(bytes.fromhex(data)) for data in case["leaves"]])
        for item in case["roots"]:
            counts["roots"] += 1
            mine = b64(tree.mth(0, item["size"]))
            roots_by_size[(number, item["size"])] = mine
            if mine != item["root"]:
                problems.append("tree %d: root of %d: Writ %s, here %s" % (number, item["size"], item["root"], mine))
        for item in case["inclusion"]:
            counts["inclusion"] += 1
            mine = [b64(h) for h in tree.path(item["index"], 0, item["size"])]
            if mine != item["path"]:
                problems.append("tree %d: PATH(%d, %d) differs" % (number, item["index"], item["size"]))
        for item in case["consistency"]:
            counts["consistency"] += 1
            mine = [] if item["old"] in (0, item["new"]) else [b64(h) for h in tree.subproof(item["old"], 0, item["new"], True)]
            if mine != item["path"]:
                problems.append("tree %d: PROOF(%d, %d) differs" % (number, item["old"], item["new"]))
    checkpoint = cases.get("checkpoint")
    if checkpoint:
        origin, size, root = check_checkpoint(checkpoint, problems)
        tree = Tree([leaf_hash(bytes.fromhex(data)) for data in cases["trees"][0]["leaves"]])
        if b64(tree.mth(0, size)) != root:
            problems.append("checkpoint: root of %d is not the tree's" % size)
    for problem in problems:
        print(problem)
    print(json.dumps({"agree": not problems, **counts, "checkpoint": bool(checkpoint)}))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
