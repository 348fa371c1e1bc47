import Crypto
import Foundation
import Testing
import WritTestSupport

/// The scan scripts/test runs after the suite (Tests/interop/keys_on_disk.py) finds a workload
/// SVID's private key in every encoding it could be written in, ignores keys that are not in the
/// ledger (an agent's own, anyone else's), and fails when a server's issues were never read.
/// Keys and their fingerprints come from openssl, so the scan is checked against another
/// implementation's idea of the key.
@Suite struct KeysOnDiskScanTests {
    struct Workspace {
        let scratch: TemporaryDirectory
        let ledger: URL
        let root: URL
    }

    static func workspace() throws -> Workspace {
        let scratch = try TemporaryDirectory(prefix: "writ-keyscan")
        let ledger = scratch.file("ledger"), root = scratch.file("root")
        for directory in [ledger, root, scratch.file("keys")] { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) }
        return Workspace(scratch: scratch, ledger: ledger, root: root)
    }

    static func openssl(_ arguments: [String]) async throws {
        let result = try await ProcessRunner.run(try TestEnvironment.tool("openssl"), arguments)
        guard result.status == 0 else { throw TestFailure("openssl \(arguments.joined(separator: " ")): \(result.summary)") }
    }

    /// A new key (`genpkey` arguments) in `keys/<name>.pem`, and openssl's SHA-256 of its DER
    /// SubjectPublicKeyInfo.
    static func key(_ name: String, _ generate: [String], in space: Workspace) async throws -> (pem: URL, fingerprint: String) {
        let pem = space.scratch.file("keys/\(name).pem")
        try await openssl(["genpkey"] + generate + ["-out", pem.path])
        return (pem, try await fingerprint(of: pem))
    }

    static func fingerprint(of pem: URL) async throws -> String {
        let pub = pem.deletingPathExtension().appendingPathExtension("pub.der")
        try await openssl(["pkey", "-in", pem.path, "-pubout", "-outform", "DER", "-out", pub.path])
        let digest = try await ProcessRunner.run(try TestEnvironment.tool("openssl"), ["dgst", "-sha256", "-r", pub.path])
        return String(digest.stdout.prefix { !$0.isWhitespace })
    }

    /// One `writ audit search` line per (purpose, fingerprint), as a server's ledger file holds.
    static func events(_ issued: [(String, String)]) -> String {
        issued.enumerated().map { index, item in
            #"{"index":\#(index),"event":{"type":"svid.x509.issue","outcome":"allowed","target":{"kind":"spiffe_id","id":"spiffe://example.org/w\#(index)"},"#
                + #""details":{"purpose":"\#(item.0)","serial":"0\#(index)","public_key_sha256":"\#(item.1)"}}}"# + "\n"
        }.joined()
    }

    static func scan(_ space: Workspace) async throws -> (status: Int32, report: [String: Any], summary: String) {
        let result = try await ProcessRunner.run(try TestEnvironment.interopPython(),
                                                 [TestEnvironment.interopScript("keys_on_disk.py"), "--ledger", space.ledger.path, space.root.path])
        return (result.status, jsonObject(result.stdout), result.summary)
    }

    @Test func everyEncodingOfALedgerKeyIsFoundAndOnlyThose() async throws {
        let space = try Self.workspace()
        let p256 = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
        let pkcs8 = try await Self.key("pkcs8", p256, in: space)
        let sec1 = try await Self.key("sec1", p256, in: space)
        let der = try await Self.key("der", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], in: space)
        let embedded = try await Self.key("embedded", p256, in: space)
        let rsa = try await Self.key("rsa", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], in: space)
        let agentOwn = try await Self.key("agent", p256, in: space)
        let stranger = try await Self.key("stranger", p256, in: space)

        // The files: PKCS#8 PEM (inside other text), SEC1 PEM, PKCS#8 DER, SEC1 DER inside a
        // binary blob, PKCS#1 PEM, a JWK, and two keys the ledger does not hold as workload keys.
        let root = space.root
        try FileManager.default.createDirectory(at: root.appendingPathComponent("deep/er"), withIntermediateDirectories: true)
        try Data(("log line\n" + (try String(contentsOf: pkcs8.pem, encoding: .utf8)) + "more\n").utf8).write(to: root.appendingPathComponent("deep/er/notes.txt"))
        try await Self.openssl(["ec", "-in", sec1.pem.path, "-out", root.appendingPathComponent("sec1.pem").path])
        try await Self.openssl(["pkey", "-in", der.pem.path, "-outform", "DER", "-out", root.appendingPathComponent("key.der").path])
        let sec1DER = space.scratch.file("keys/embedded.sec1.der")
        try await Self.openssl(["ec", "-in", embedded.pem.path, "-outform", "DER", "-out", sec1DER.path])
        var blob = Data((0..<4096).map { _ in UInt8.random(in: 0...255) })
        blob.insert(contentsOf: try Data(contentsOf: sec1DER), at: 1234)
        try blob.write(to: root.appendingPathComponent("heap.bin"))
        try await Self.openssl(["pkey", "-in", rsa.pem.path, "-traditional", "-out", root.appendingPathComponent("rsa.pem").path])
        let jwkKey = P256.Signing.PrivateKey()
        let jwkPEM = space.scratch.file("keys/jwk.pem")
        try Data(jwkKey.pemRepresentation.utf8).write(to: jwkPEM)
        let jwkFingerprint = try await Self.fingerprint(of: jwkPEM)
        let x963 = jwkKey.publicKey.x963Representation
        func b64url(_ bytes: some DataProtocol) -> String {
            Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        try Data(#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "\#(b64url(x963[1...32]))", "y": "\#(b64url(x963[33...]))", "d": "\#(b64url(jwkKey.rawRepresentation))"}]}"#.utf8)
            .write(to: root.appendingPathComponent("key.jwk.json"))
        try FileManager.default.copyItem(at: agentOwn.pem, to: root.appendingPathComponent("agent-key.pem"))
        try FileManager.default.copyItem(at: stranger.pem, to: root.appendingPathComponent("stranger.pem"))

        // As Swift code would write them: a PEM in a JSON string (JSONEncoder escapes `/` and
        // newlines), PKCS#8 DER as base64 in JSON (a `Data` field), a raw scalar file.
        struct Stored: Encodable { let pem: String?; let der: Data? }
        let escaped = P256.Signing.PrivateKey(), inJSON = P256.Signing.PrivateKey(), raw = P256.Signing.PrivateKey()
        try JSONEncoder().encode(Stored(pem: escaped.pemRepresentation, der: nil)).write(to: root.appendingPathComponent("escaped.json"))
        try JSONEncoder().encode(Stored(pem: nil, der: inJSON.derRepresentation)).write(to: root.appendingPathComponent("der.json"))
        try raw.rawRepresentation.write(to: root.appendingPathComponent("scalar.bin"))
        var swiftKeys: [String] = []
        for (name, key) in [("escaped", escaped), ("injson", inJSON), ("raw", raw)] {
            let pem = space.scratch.file("keys/\(name).pem")
            try Data(key.pemRepresentation.utf8).write(to: pem)
            swiftKeys.append(try await Self.fingerprint(of: pem))
        }

        // An agent's directory: its own key is expected there, any other key is not (even one
        // no server certified).
        let agentDirectory = root.appendingPathComponent("writ-agt-1")
        try FileManager.default.createDirectory(at: agentDirectory.appendingPathComponent("data"), withIntermediateDirectories: true)
        let agentKey = try await Self.key("agent-dir-own", p256, in: space)
        let uncertified = try await Self.key("agent-dir-stray", p256, in: space)
        try FileManager.default.copyItem(at: agentKey.pem, to: agentDirectory.appendingPathComponent("data/agent-key.pem"))
        try FileManager.default.copyItem(at: uncertified.pem, to: agentDirectory.appendingPathComponent("data/pool.pem"))
        try Data("\(agentDirectory.path)\nagent\n".utf8).write(to: space.ledger.appendingPathComponent("writ-agt-1.kept"))

        try Data("/tmp/srv/admin.sock\n".utf8).write(to: space.ledger.appendingPathComponent("srv.server"))
        try Data(Self.events([("entry", pkcs8.fingerprint), ("entry", sec1.fingerprint), ("operator", der.fingerprint), ("entry", embedded.fingerprint),
                              ("entry", rsa.fingerprint), ("entry", jwkFingerprint), ("agent_renewal", agentOwn.fingerprint)]
                             + swiftKeys.map { ("entry", $0) }).utf8)
            .write(to: space.ledger.appendingPathComponent("srv.jsonl"))

        let found = try await Self.scan(space)
        #expect(found.status == 1, "\(found.summary)")
        let matches = (found.report["matches"] as? [String] ?? []).map { String($0.prefix { $0 != ":" }) }
        let expected = ["deep/er/notes.txt", "sec1.pem", "key.der", "heap.bin", "rsa.pem", "key.jwk.json", "escaped.json", "der.json", "scalar.bin",
                        "writ-agt-1/data/pool.pem"].map { root.appendingPathComponent($0).path }
        #expect(Set(matches) == Set(expected) && matches.count == expected.count, "\(found.summary)")
        #expect(found.report["private_keys"] as? Int == 13 && found.report["workload_keys"] as? Int == 9 && found.report["agent_directories"] as? Int == 1,
                "\(found.summary)")

        // Without those files the same tree passes: the agent's own key (in its directory and
        // outside it) and a stranger's are not workload keys.
        for path in expected { try FileManager.default.removeItem(atPath: path) }
        let clean = try await Self.scan(space)
        #expect(clean.status == 0 && (clean.report["matches"] as? [String])?.isEmpty == true && clean.report["private_keys"] as? Int == 3, "\(clean.summary)")
    }

    /// A server whose issues were never read, an issue without a fingerprint, or an empty ledger
    /// fails the scan: each would let a key go unchecked.
    @Test func anIncompleteLedgerFailsTheScan() async throws {
        let space = try Self.workspace()
        let empty = try await Self.scan(space)
        #expect(empty.status == 1 && empty.summary.contains("names no workload SVID key"), "\(empty.summary)")

        let key = try await Self.key("one", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], in: space)
        try Data(Self.events([("entry", key.fingerprint)]).utf8).write(to: space.ledger.appendingPathComponent("a.jsonl"))
        try Data("/tmp/a/admin.sock\n".utf8).write(to: space.ledger.appendingPathComponent("a.server"))
        #expect(try await Self.scan(space).status == 0)

        try Data("/tmp/b/admin.sock\n".utf8).write(to: space.ledger.appendingPathComponent("b.server"))
        try Data("writ audit search: exit 69\n".utf8).write(to: space.ledger.appendingPathComponent("b.failed"))
        let unread = try await Self.scan(space)
        #expect(unread.status == 1 && (unread.report["uncollected_servers"] as? [String])?.first?.contains("exit 69") == true, "\(unread.summary)")
        try FileManager.default.removeItem(at: space.ledger.appendingPathComponent("b.server"))

        try Data((Self.events([("entry", key.fingerprint)]) + #"{"index":9,"event":{"type":"svid.x509.issue","outcome":"allowed","details":{"purpose":"entry","serial":"09"}}}"#).utf8)
            .write(to: space.ledger.appendingPathComponent("a.jsonl"), options: .atomic)
        let unnamed = try await Self.scan(space)
        #expect(unnamed.status == 1 && (unnamed.report["ledger_problems"] as? [String])?.first?.contains("without public_key_sha256") == true, "\(unnamed.summary)")
    }
}
