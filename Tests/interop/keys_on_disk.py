"""After the suite: no file holds the private key of any X.509-SVID a test's server issued.

usage: keys_on_disk.py --ledger DIR ROOT [ROOT ...]

The ledger (WRIT_TEST_KEY_LEDGER, filled by the test harnesses) holds, for every `writ server`
and `writ dev` a test started, a `<name>.server` file naming its admin socket and, once the
server's `svid.x509.issue` events were read (before it stopped, or by scripts/test for servers
still running at the end), `<name>.jsonl` with those events. The workload SVIDs are the allowed
issues for an entry or an operator's mint; each names its key by `public_key_sha256`, the SHA-256
of the DER SubjectPublicKeyInfo.

Every regular file under the roots (not crossing into other file systems, up to 64 MiB) is
searched for private keys in the encodings a key could be written in: PEM blocks (PKCS#8, SEC1,
PKCS#1; also inside JSON strings, with `\n` and `\/` escapes), a DER file (PKCS#8, SEC1,
PKCS#1), an EC private key structure (RFC 5915, also inside PKCS#8) anywhere in binary data or
in a long base64 run (DER in JSON), JWK objects with a private `d`, and files that are exactly a
raw EC scalar or an X9.63 private key. Each key found is reduced to its SubjectPublicKeyInfo
fingerprint and looked up in the ledger. In a directory the ledger lists as an agent's
(`<name>.kept`, kind `agent`) no private key may be found but `data/agent-key.pem`: that also
covers workload keys that were generated but never certified.

Prints one JSON object (files, keys found, ledger size, servers, matches, what could not be
read) and exits 1 when a file holds a workload key, when an agent's directory holds a key not
its own, when a server's events could not be read, or when the ledger names no workload key at
all (the scan would then prove nothing).
"""

import argparse
import base64
import glob
import hashlib
import json
import os
import re
import stat
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

MAX_FILE = 64 << 20
WORKLOAD_PURPOSES = {"entry", "operator"}
PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----(.*?)-----END \1-----", re.S)
# ECPrivateKey (RFC 5915): version 1, then the scalar as an OCTET STRING of the curve's size.
EC_PRIVATE_KEY = re.compile(rb"\x02\x01\x01\x04(\x20|\x30|\x42)", re.S)
CURVES = {32: ec.SECP256R1(), 48: ec.SECP384R1(), 66: ec.SECP521R1()}
JWK_D = re.compile(rb'"d"\s*:\s*"([A-Za-z0-9_-]{40,120})"')
BASE64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{88,}={0,2}")
RAW_SCALAR_SIZES = {32, 48, 66}
X963_PRIVATE_SIZES = {97: 32, 145: 48, 133: 66}  # 04 || X || Y || d


def fingerprint(private_key):
    spki = private_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def ec_key(scalar_bytes):
    curve = CURVES.get(len(scalar_bytes))
    value = int.from_bytes(scalar_bytes, "big")
    if curve is None or value == 0:
        return None
    try:
        return ec.derive_private_key(value, curve)
    except ValueError:  # not below the curve's order
        return None


def keys_in(data, unreadable, path):
    """The fingerprints of the private keys `data` holds, each once."""
    found = set()
    # Text as a JSON encoder escapes it (`\n` in a PEM string, `\/` in PEM and base64) is also
    # read unescaped.
    sources = [data]
    if b"\\n" in data or b"\\/" in data:
        sources.append(data.replace(b"\\r\\n", b"\n").replace(b"\\n", b"\n").replace(b"\\/", b"/"))
    der_keys(data, found)
    for source in sources:
        pem_keys(source, found, unreadable if source is data else [], path)
        for match in BASE64_RUN.finditer(source):
            text = match.group(0).rstrip(b"=")
            decode = base64.urlsafe_b64decode if (b"-" in text or b"_" in text) else base64.b64decode
            try:
                der_keys(decode(text + b"=" * (-len(text) % 4)), found)
            except ValueError:
                pass
    if len(data) in RAW_SCALAR_SIZES:
        key = ec_key(data)
        if key is not None:
            found.add(fingerprint(key))
    if len(data) in X963_PRIVATE_SIZES and data[:1] == b"\x04":
        key = ec_key(data[-X963_PRIVATE_SIZES[len(data)]:])
        if key is not None:
            found.add(fingerprint(key))
    if b'"d"' in data:
        for match in JWK_D.finditer(data):
            text = match.group(1).decode()
            try:
                raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            except ValueError:
                continue
            key = ec_key(raw)
            if key is not None:
                found.add(fingerprint(key))
    return found


def pem_keys(data, found, unreadable, path):
    for match in PEM_BLOCK.finditer(data):
        label, body = match.group(1), match.group(0)
        if label.startswith(b"ENCRYPTED"):
            unreadable.append(f"{path}: an encrypted private key (not checked)")
            continue
        try:
            found.add(fingerprint(serialization.load_pem_private_key(body, password=None)))
        except (ValueError, TypeError) as error:
            unreadable.append(f"{path}: a {label.decode()} block that does not load ({error})")


def der_keys(data, found):
    """Keys in binary data: the whole of it as DER, and EC private key structures anywhere."""
    if data[:1] == b"\x30" and len(data) < 64 << 10:
        try:
            found.add(fingerprint(serialization.load_der_private_key(data, password=None)))
        except (ValueError, TypeError):
            pass
    for match in EC_PRIVATE_KEY.finditer(data):
        size = match.group(1)[0]
        start = match.end()
        key = ec_key(data[start:start + size]) if start + size <= len(data) else None
        if key is not None:
            found.add(fingerprint(key))


def agent_directories(directory):
    """The directories the ledger lists as agents' (kind `agent` in `<name>.kept`)."""
    agents = []
    for kept in sorted(glob.glob(os.path.join(directory, "*.kept"))):
        lines = open(kept, encoding="utf-8").read().split("\n")
        if len(lines) > 1 and lines[1].strip() == "agent":
            agents.append(os.path.realpath(lines[0].strip()))
    return agents


def read_ledger(directory):
    workload, servers, uncollected, problems = {}, 0, [], []
    for server in sorted(glob.glob(os.path.join(directory, "*.server"))):
        servers += 1
        name = os.path.basename(server)[: -len(".server")]
        events = os.path.join(directory, name + ".jsonl")
        if not os.path.exists(events):
            failed = os.path.join(directory, name + ".failed")
            why = open(failed, encoding="utf-8", errors="replace").read().strip() if os.path.exists(failed) else "never read"
            uncollected.append(f"{name} ({open(server, encoding='utf-8').read().strip()}): {why}")
            continue
        for number, line in enumerate(open(events, encoding="utf-8"), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as error:
                problems.append(f"{name}.jsonl line {number}: {error}")
                continue
            event = item.get("event", item)
            details = event.get("details") or {}
            if event.get("type") != "svid.x509.issue" or event.get("outcome") != "allowed" or details.get("purpose") not in WORKLOAD_PURPOSES:
                continue
            key = details.get("public_key_sha256")
            if not isinstance(key, str) or not re.fullmatch(r"[0-9a-f]{64}", key):
                problems.append(f"{name}.jsonl line {number}: an issue without public_key_sha256")
                continue
            workload[key] = f"{details.get('purpose')} {(event.get('target') or {}).get('id', '?')} serial {details.get('serial', '?')} ({name})"
    return workload, servers, uncollected, problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ledger", required=True)
    parser.add_argument("roots", nargs="+")
    args = parser.parse_args()
    ledger = os.path.realpath(args.ledger)
    workload, servers, uncollected, problems = read_ledger(ledger)
    agents = agent_directories(ledger)

    def same_device(path, device):
        try:
            return os.lstat(path).st_dev == device
        except OSError:  # gone while the walk ran
            return False

    files, keys, matches, unreadable = 0, 0, [], []
    for root in args.roots:
        device = os.lstat(root).st_dev
        for directory, subdirectories, names in os.walk(root, onerror=lambda e: unreadable.append(f"{e.filename}: {e.strerror}")):
            subdirectories[:] = [d for d in subdirectories
                                 if os.path.realpath(os.path.join(directory, d)) != ledger and same_device(os.path.join(directory, d), device)]
            real = os.path.realpath(directory)
            agent = next((a for a in agents if real == a or real.startswith(a + os.sep)), None)
            for name in names:
                path = os.path.join(directory, name)
                try:
                    info = os.lstat(path)
                    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE:
                        continue
                    with open(path, "rb") as handle:
                        data = handle.read()
                except OSError as error:
                    unreadable.append(f"{path}: {error.strerror}")
                    continue
                files += 1
                for key in keys_in(data, unreadable, path):
                    keys += 1
                    if key in workload:
                        matches.append(f"{path}: the private key of {workload[key]}")
                    elif agent is not None and os.path.relpath(os.path.join(real, name), agent) != os.path.join("data", "agent-key.pem"):
                        matches.append(f"{path}: a private key in an agent's directory that is not the agent's own")

    report = {"files": files, "private_keys": keys, "workload_keys": len(workload), "servers": servers, "agent_directories": len(agents),
              "matches": matches, "uncollected_servers": uncollected, "ledger_problems": problems, "unreadable": unreadable[:50]}
    print(json.dumps(report, indent=1))
    if not workload:
        print("keys_on_disk: the ledger names no workload SVID key, so the scan proves nothing", file=sys.stderr)
    return 1 if matches or uncollected or problems or not workload else 0


if __name__ == "__main__":
    sys.exit(main())
