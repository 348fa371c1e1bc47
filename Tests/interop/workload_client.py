"""A SPIFFE Workload API client made of third-party parts, for Writ's agent tests.

usage:
  workload_client.py fetch SOCKET OUTDIR
      py-spiffe fetches the X.509 context, the X.509 bundles and the JWT bundles; writes
      OUTDIR/svid.pem (leaf first), OUTDIR/svid.key (PKCS#8) and OUTDIR/bundle.pem, and prints
      {"spiffe_ids": [...], "hints": [...], "x509_bundles": [...], "jwt_bundles": {td: [kid...]}}.
  workload_client.py raw SOCKET METHOD [--no-header] [--forge PID:UID:GID] [--audience A]...
                        [--spiffe-id ID] [--repeat N] [--handshake DIR]
      calls METHOD (FetchX509SVID, FetchX509Bundles, FetchJWTBundles, FetchJWTSVID with the
      given audiences and spiffe_id; FetchWITSVID and FetchWITBundles, which py-spiffe's stubs
      lack, by path with an empty request) with grpcio, reads the first message, and prints
      {"code": "OK" or the gRPC status name, "details": ...} — with --repeat, N calls in a row
      and {"codes": [...]}. --forge sends Writ's internal caller-credentials header itself,
      which the agent must overwrite with what the kernel says. --handshake writes DIR/pid and
      waits for DIR/go before calling, so a test can prepare for this very process.
  workload_client.py validate SOCKET AUDIENCE TOKEN
      py-spiffe's validate_jwt_svid; prints {"code": "OK", "spiffe_id": ..., "audience": [...]} or
      {"code": STATUS, "details": ...} from the Workload API's answer.
  workload_client.py jwt SOCKET AUDIENCE
      py-spiffe fetches a JWT-SVID for AUDIENCE and the JWT bundles; PyJWT verifies the token with
      the bundle key its `kid` names (ES256/RS256/PS256, audience checked, exp required); prints
      {"spiffe_id": ..., "token": ..., "claims": {...}}.
  workload_client.py watch SOCKET
      follows FetchX509SVID (grpcio): one line {"ids": [...], "serials": [...], "not_after": [...],
      "bundles": [...]} per message (serials lowercase hex, not_after Unix seconds, bundles the
      SHA-256 of each SVID's bundle bytes), flushed, then {"code": STATUS} when the stream ends.
  workload_client.py pywatch SOCKET SECONDS
      follows X.509 contexts with py-spiffe's own watcher (stream_x509_contexts) for SECONDS:
      one line {"ids": [...], "serials": [...], "not_after": [...], "issuers": [SHA-256 of each
      chain's intermediate]} per update, flushed; an error prints {"error": ...}.
  workload_client.py watch-bundles SOCKET
      follows FetchX509Bundles and FetchJWTBundles (grpcio, two threads): one line
      {"kind": "x509"|"jwt", "digest": sha256 of the sorted bundle bytes} per message, flushed.
  workload_client.py fetch-loop SOCKET N
      py-spiffe fetches the X.509 context N times in one process; prints {"ids": [every distinct
      SPIFFE ID received], "fetches": N}.
  workload_client.py fetch-until SOCKET STOPFILE
      as fetch-loop, until STOPFILE exists; prints {"ids": [...], "fetches": n}.
  workload_client.py malformed SOCKET METHOD
      a well-framed gRPC call (the security header set) whose request bytes are not a valid
      protobuf message; prints {"code": ..., "details": ...}.
  workload_client.py health SOCKET SERVICE
      grpc.health.v1.Health/Check with grpcio (bytes by hand); prints {"code": ..., "status": n}
      (1 = SERVING).
  workload_client.py vanish SOCKET DELAY
      starts FetchX509SVID with grpcio and, DELAY seconds later, exits at once (os._exit) while
      the agent may still be attesting it.
"""
import hashlib
import json
import sys

import grpc
from cryptography.hazmat.primitives import serialization
from spiffe import WorkloadApiClient
from spiffe._proto import workload_pb2, workload_pb2_grpc


def fetch(socket, outdir):
    with WorkloadApiClient(socket_path="unix://" + socket, default_timeout=30) as client:
        context = client.fetch_x509_context()
        bundles = client.fetch_x509_bundles()
        jwt_bundles = client.fetch_jwt_bundles()
    svid = context.default_svid
    with open(f"{outdir}/svid.pem", "wb") as handle:
        for cert in svid.cert_chain:
            handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(f"{outdir}/svid.key", "wb") as handle:
        handle.write(svid.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    own = bundles.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain)
    with open(f"{outdir}/bundle.pem", "wb") as handle:
        for cert in own.x509_authorities:
            handle.write(cert.public_bytes(serialization.Encoding.PEM))
    print(json.dumps({
        "spiffe_ids": [str(s.spiffe_id) for s in context.x509_svids],
        "hints": [getattr(s, "hint", "") for s in context.x509_svids],
        "x509_bundles": sorted(str(b.trust_domain) for b in bundles.bundles),
        "jwt_bundles": {str(b.trust_domain): sorted(b.jwt_authorities.keys()) for b in jwt_bundles.bundles},
    }))


def raw(socket, method, header, forge=None, audiences=(), spiffe_id="", repeat=None, handshake=None):
    import os
    import time
    if handshake:
        with open(f"{handshake}/pid.tmp", "w") as handle:
            handle.write(str(os.getpid()))
        os.rename(f"{handshake}/pid.tmp", f"{handshake}/pid")
        deadline = time.monotonic() + 30
        while not os.path.exists(f"{handshake}/go") and time.monotonic() < deadline:
            time.sleep(0.01)
    channel = grpc.insecure_channel("unix:" + socket)
    stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)
    metadata = [("workload.spiffe.io", "true")] if header else []
    if forge:
        metadata.append(("x-writ-peer-credentials", forge.replace(":", " ")))
    untyped = lambda path: channel.unary_stream(path, request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw)
    requests = {
        "FetchX509SVID": (stub.FetchX509SVID, workload_pb2.X509SVIDRequest(), True),
        "FetchX509Bundles": (stub.FetchX509Bundles, workload_pb2.X509BundlesRequest(), True),
        "FetchJWTBundles": (stub.FetchJWTBundles, workload_pb2.JWTBundlesRequest(), True),
        "FetchJWTSVID": (stub.FetchJWTSVID, workload_pb2.JWTSVIDRequest(audience=list(audiences), spiffe_id=spiffe_id), False),
        "FetchWITSVID": (untyped("/SpiffeWorkloadAPI/FetchWITSVID"), b"", True),
        "FetchWITBundles": (untyped("/SpiffeWorkloadAPI/FetchWITBundles"), b"", True),
    }
    call, request, streaming = requests[method]

    def once():
        try:
            answer = call(request, metadata=metadata, timeout=30)
            if streaming:
                next(answer)
                answer.cancel()
            return {"code": "OK", "details": ""}
        except grpc.RpcError as error:
            return {"code": error.code().name, "details": error.details()}

    try:
        if repeat is None:
            print(json.dumps(once()))
        else:
            print(json.dumps({"codes": [once()["code"] for _ in range(repeat)]}))
    finally:
        channel.close()


def watch(socket):
    from cryptography import x509
    channel = grpc.insecure_channel("unix:" + socket)
    stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)
    try:
        for message in stub.FetchX509SVID(workload_pb2.X509SVIDRequest(), metadata=[("workload.spiffe.io", "true")], timeout=120):
            leaves = [x509.load_der_x509_certificate(first_der(svid.x509_svid)) for svid in message.svids]
            print(json.dumps({"ids": [svid.spiffe_id for svid in message.svids],
                              "serials": [format(leaf.serial_number, "x") for leaf in leaves],
                              "not_after": [int(leaf.not_valid_after_utc.timestamp()) for leaf in leaves],
                              "bundles": [hashlib.sha256(svid.bundle).hexdigest() for svid in message.svids]}), flush=True)
        print(json.dumps({"code": "OK"}), flush=True)
    except grpc.RpcError as error:
        print(json.dumps({"code": error.code().name, "details": error.details()}), flush=True)
    finally:
        channel.close()


def pywatch(socket, seconds):
    import threading
    done = threading.Event()

    def on_success(context):
        svids = context.x509_svids
        print(json.dumps({"ids": [str(svid.spiffe_id) for svid in svids],
                          "serials": [format(svid.leaf.serial_number, "x") for svid in svids],
                          "not_after": [int(svid.leaf.not_valid_after_utc.timestamp()) for svid in svids],
                          "issuers": [hashlib.sha256(svid.cert_chain[1].public_bytes(serialization.Encoding.DER)).hexdigest()
                                      if len(svid.cert_chain) > 1 else "" for svid in svids]}), flush=True)

    def on_error(error):
        print(json.dumps({"error": str(error)}), flush=True)

    with WorkloadApiClient(socket_path="unix://" + socket, default_timeout=30) as client:
        handler = client.stream_x509_contexts(on_success, on_error)
        done.wait(seconds)
        handler.cancel()


def first_der(blob):
    """The first DER element of concatenated DER (the leaf of a chain)."""
    length = blob[1]
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(blob[2:2 + count], "big")
        return blob[:2 + count + length]
    return blob[:2 + length]


def watch_bundles(socket):
    import hashlib
    import threading
    channel = grpc.insecure_channel("unix:" + socket)
    stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)
    lock = threading.Lock()

    def follow(kind, call, request):
        try:
            for message in call(request, metadata=[("workload.spiffe.io", "true")], timeout=300):
                digest = hashlib.sha256(b"".join(message.bundles[k] for k in sorted(message.bundles))).hexdigest()
                with lock:
                    print(json.dumps({"kind": kind, "digest": digest}), flush=True)
        except grpc.RpcError as error:
            with lock:
                print(json.dumps({"kind": kind, "code": error.code().name}), flush=True)

    threads = [threading.Thread(target=follow, args=("x509", stub.FetchX509Bundles, workload_pb2.X509BundlesRequest())),
               threading.Thread(target=follow, args=("jwt", stub.FetchJWTBundles, workload_pb2.JWTBundlesRequest()))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def fetch_loop(socket, count, until=None):
    import os
    ids = set()
    fetches = 0
    with WorkloadApiClient(socket_path="unix://" + socket, default_timeout=30) as client:
        while (fetches < count) if until is None else not os.path.exists(until):
            for svid in client.fetch_x509_context().x509_svids:
                ids.add(str(svid.spiffe_id))
            fetches += 1
    print(json.dumps({"ids": sorted(ids), "fetches": fetches}))


def malformed(socket, method):
    """A well-framed gRPC call whose request is not a valid protobuf message."""
    channel = grpc.insecure_channel("unix:" + socket)
    call = channel.unary_stream("/SpiffeWorkloadAPI/" + method, request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw)
    try:
        # Field 1, wire type 2 (length-delimited), claiming 100 bytes that are not there.
        stream = call(b"\x0a\x64\x01", metadata=[("workload.spiffe.io", "true")], timeout=30)
        next(stream)
        print(json.dumps({"code": "OK", "details": ""}))
    except grpc.RpcError as error:
        print(json.dumps({"code": error.code().name, "details": error.details()}))
    finally:
        channel.close()


def vanish(socket, delay):
    import os
    import threading
    import time
    channel = grpc.insecure_channel("unix:" + socket)
    stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)

    def call():
        try:
            next(stub.FetchX509SVID(workload_pb2.X509SVIDRequest(), metadata=[("workload.spiffe.io", "true")], timeout=30))
        except Exception:
            pass

    threading.Thread(target=call, daemon=True).start()
    time.sleep(delay)
    os._exit(0)


def health(socket, service):
    channel = grpc.insecure_channel("unix:" + socket)
    check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda x: x, response_deserializer=lambda x: x)
    encoded = service.encode()
    request = (b"\x0a" + bytes([len(encoded)]) + encoded) if encoded else b""
    try:
        reply = check(request, timeout=10)
        status = reply[1] if len(reply) >= 2 and reply[0] == 0x08 else 0
        print(json.dumps({"code": "OK", "status": status}))
    except grpc.RpcError as error:
        print(json.dumps({"code": error.code().name}))
    finally:
        channel.close()


def validate(socket, audience, token):
    try:
        with WorkloadApiClient(socket_path="unix://" + socket, default_timeout=30) as client:
            svid = client.validate_jwt_svid(token, audience)
        print(json.dumps({"code": "OK", "spiffe_id": str(svid.spiffe_id), "audience": sorted(svid.audience)}))
    except Exception as error:  # py-spiffe wraps the gRPC error; its cause holds the status
        cause = error.__cause__ or error.__context__
        code = cause.code().name if isinstance(cause, grpc.RpcError) else type(error).__name__
        details = cause.details() if isinstance(cause, grpc.RpcError) else str(error)
        print(json.dumps({"code": code, "details": details}))


def jwt_fetch(socket, audience):
    import jwt as pyjwt
    with WorkloadApiClient(socket_path="unix://" + socket, default_timeout=30) as client:
        svid = client.fetch_jwt_svid(audience={audience})
        bundles = client.fetch_jwt_bundles()
    kid = pyjwt.get_unverified_header(svid.token)["kid"]
    bundle = bundles.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain)
    key = bundle.jwt_authorities[kid]
    claims = pyjwt.decode(svid.token, key=key, algorithms=["ES256", "ES384", "RS256", "PS256"], audience=audience,
                          options={"require": ["exp", "sub", "aud"]})
    print(json.dumps({"spiffe_id": str(svid.spiffe_id), "token": svid.token, "claims": claims}))


def main():
    if sys.argv[1] == "fetch":
        fetch(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "validate":
        validate(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == "jwt":
        jwt_fetch(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "watch":
        watch(sys.argv[2])
    elif sys.argv[1] == "pywatch":
        pywatch(sys.argv[2], float(sys.argv[3]))
    elif sys.argv[1] == "watch-bundles":
        watch_bundles(sys.argv[2])
    elif sys.argv[1] == "fetch-loop":
        fetch_loop(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "fetch-until":
        fetch_loop(sys.argv[2], 0, until=sys.argv[3])
    elif sys.argv[1] == "malformed":
        malformed(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "health":
        health(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")
    elif sys.argv[1] == "vanish":
        vanish(sys.argv[2], float(sys.argv[3]))
    else:
        rest = sys.argv[4:]
        option = lambda name: rest[rest.index(name) + 1] if name in rest else None
        audiences = [rest[i + 1] for i, word in enumerate(rest) if word == "--audience"]
        repeat = option("--repeat")
        raw(sys.argv[2], sys.argv[3], "--no-header" not in rest, option("--forge"), audiences, option("--spiffe-id") or "",
            int(repeat) if repeat else None, option("--handshake"))


if __name__ == "__main__":
    main()
