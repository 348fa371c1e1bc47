"""One request to Writ's TCP admin API with Python's own TLS stack (OpenSSL via `ssl`).

usage: admin_https.py HOST:PORT BUNDLE.pem SERVER_ID METHOD PATH [CERT.pem KEY.pem] [BODY]
The server is authenticated the SPIFFE way: its chain must verify against BUNDLE.pem and its
certificate must carry exactly the URI SAN SERVER_ID (there is no host name to check).
Prints one JSON object: {"status", "body", "tls_version"} or {"tls_error"}; exits 0 either way
(exit 2 means the server itself could not be authenticated).
"""
import http.client
import json
import ssl
import sys


def main():
    address, bundle, server_id, method, path = sys.argv[1:6]
    rest = sys.argv[6:]
    cert = key = None
    if len(rest) >= 2 and rest[0] != "-":
        cert, key = rest[0], rest[1]
        rest = rest[2:]
    body = rest[0].encode() if rest else None
    host, port = address.rsplit(":", 1)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(bundle)
    context.check_hostname = False  # SPIFFE: the URI SAN is checked below instead
    context.verify_mode = ssl.CERT_REQUIRED
    if cert:
        context.load_cert_chain(cert, key)

    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=20)
    try:
        connection.connect()
        peer = connection.sock.getpeercert()
        uris = [value for kind, value in peer.get("subjectAltName", ()) if kind == "URI"]
        if uris != [server_id]:
            print(json.dumps({"server_error": f"server URI SANs {uris}, expected [{server_id}]"}))
            sys.exit(2)
        version = connection.sock.version()
        headers = {"content-type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        print(json.dumps({"status": response.status, "body": response.read().decode(), "tls_version": version}))
    except (ssl.SSLError, ConnectionError, http.client.HTTPException, OSError) as error:
        print(json.dumps({"tls_error": f"{type(error).__name__}: {error}"}))
    finally:
        connection.close()


if __name__ == "__main__":
    main()
