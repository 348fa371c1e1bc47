import Crypto
import Foundation
import SPIFFEIdentity
import SPIFFEX509
import SwiftASN1
import Testing
import WritTestSupport
import X509

/// The admin API on TCP (`--admin-listen`): TLS 1.3 with the caller's X.509-SVID, driven by
/// Python's `ssl` (OpenSSL) as the client. Only SVIDs of `admin: true` entries and of
/// `--admin-ids` are served; no certificate, a non-admin SVID, an expired SVID and an SVID of
/// another trust domain are refused; changes are logged with the SPIFFE ID as the actor.
@Suite(.serialized) struct AdminTLSTests {
    /// A client credential on disk: the certificate chain (leaf first) and its key.
    struct Credential {
        let certificate: String
        let key: String
    }

    static func write(chainDER: [[UInt8]], key: P256.Signing.PrivateKey, named name: String, in directory: TemporaryDirectory) throws -> Credential {
        let certificate = directory.file("\(name).pem")
        try Data(chainDER.map { PEMDocument(type: "CERTIFICATE", derBytes: $0).pemString }.joined(separator: "\n").utf8).write(to: certificate)
        let keyFile = directory.file("\(name)-key.pem")
        try key.pemRepresentation.write(to: keyFile, atomically: true, encoding: .utf8)
        return Credential(certificate: certificate.path, key: keyFile.path)
    }

    /// An X.509-SVID for `entryID` signed by the server through `agent`, with a fresh key.
    static func svid(_ agent: TestAgent, entry entryID: String, named name: String, in directory: TemporaryDirectory) async throws -> Credential {
        let key = P256.Signing.PrivateKey()
        let results = try await agent.x509SVIDs([entryID], csr: try TestCSR.make(key))
        guard results.count == 1, !results[0].hasError else { throw TestFailure("no SVID for \(name): \(results)") }
        return try write(chainDER: results[0].svidChain.map { Array($0) }, key: key, named: name, in: directory)
    }

    /// One request through `Tests/interop/admin_https.py`; the parsed JSON it prints.
    static func request(_ server: ServerHarness, bundle: String, _ method: String, _ path: String, as credential: Credential?,
                        body: String? = nil) async throws -> [String: Any] {
        let address = try #require(server.ready["admin_listen"] as? String)
        var arguments = [TestEnvironment.interopScript("admin_https.py"), address, bundle, "spiffe://example.org/writ/server", method, path]
        if let credential { arguments += [credential.certificate, credential.key] }
        if let body { arguments += [body] }
        let result = try await ProcessRunner.run(try TestEnvironment.interopPython(), arguments)
        guard result.status == 0 else { throw TestFailure("admin_https.py failed: \(result.summary)") }
        return jsonObject(result.stdout)
    }

    @Test func onlyAdminSVIDsAreServedOverTCP() async throws {
        let server = try await ServerHarness.start(extraArguments: ["--admin-listen", "127.0.0.1:0", "--admin-ids", "spiffe://example.org/ops/listed"])
        defer { Task { await server.stop() } }
        let directory = try TemporaryDirectory(prefix: "writ-admin-tls")
        let bundle = directory.file("bundle.pem").path
        let shown = try await server.writ(["bundle", "show", "--format", "pem"])
        try shown.stdout.write(toFile: bundle, atomically: true, encoding: .utf8)

        // An agent obtains SVIDs for an admin entry, a plain entry, a listed ID and a short-lived admin entry.
        var attested = try await TestAgent(server: server)
        try await attested.attest(joinToken: try await AgentAPITests.token(server).secret)
        let agent = attested
        let adminEntry = try await AgentAPITests.entry(server, "spiffe://example.org/ops/admin", parent: agent.id, ["--admin"])
        let plainEntry = try await AgentAPITests.entry(server, "spiffe://example.org/ops/plain", parent: agent.id)
        let listedEntry = try await AgentAPITests.entry(server, "spiffe://example.org/ops/listed", parent: agent.id)
        let shortEntry = try await AgentAPITests.entry(server, "spiffe://example.org/ops/short", parent: agent.id, ["--admin", "--x509-ttl", "10s"])
        let admin = try await Self.svid(agent, entry: adminEntry, named: "admin", in: directory)
        let plain = try await Self.svid(agent, entry: plainEntry, named: "plain", in: directory)
        let listed = try await Self.svid(agent, entry: listedEntry, named: "listed", in: directory)
        let short = try await Self.svid(agent, entry: shortEntry, named: "short", in: directory)
        let shortIssued = ContinuousClock.now

        // The admin SVID and the listed ID are served, over TLS 1.3.
        let counted = try await Self.request(server, bundle: bundle, "GET", "/v1/entries-count", as: admin)
        #expect(counted["status"] as? Int == 200 && counted["tls_version"] as? String == "TLSv1.3", "\(counted)")
        let listedCount = try await Self.request(server, bundle: bundle, "GET", "/v1/entries-count", as: listed)
        #expect(listedCount["status"] as? Int == 200, "\(listedCount)")
        let shortCount = try await Self.request(server, bundle: bundle, "GET", "/v1/entries-count", as: short)
        #expect(shortCount["status"] as? Int == 200, "the short-lived admin SVID works while valid: \(shortCount)")

        // A change made over TCP is logged with the caller's SPIFFE ID.
        let created = try await Self.request(server, bundle: bundle, "POST", "/v1/entries", as: admin, body: """
            {"entries":[{"spiffe_id":"spiffe://example.org/made-over-tcp","parent_id":"\(agent.id)","selectors":[{"type":"unix","value":"uid:1001"}]}]}
            """)
        #expect(created["status"] as? Int == 200, "\(created)")
        #expect(server.serverLog.contains("spiffe://example.org/ops/admin"), "the actor is the SPIFFE ID")
        let check = try await server.writ(["entry", "list", "--spiffe-id", "spiffe://example.org/made-over-tcp", "--output", "json"])
        #expect(check.stdout.contains("made-over-tcp"), "\(check.summary)")

        // No certificate: 401 naming what is needed.
        let anonymous = try await Self.request(server, bundle: bundle, "GET", "/v1/entries-count", as: nil)
        #expect(anonymous["status"] as? Int == 401 && (anonymous["body"] as? String ?? "").contains("X.509-SVID"), "\(anonymous)")

        // A valid SVID of a non-admin entry: 403 naming the ID and how to become an admin.
        let refused = try await Self.request(server, bundle: bundle, "POST", "/v1/entries", as: plain, body: """
            {"entries":[{"spiffe_id":"spiffe://example.org/by-plain","parent_id":"\(agent.id)","selectors":[{"type":"unix","value":"uid:1001"}]}]}
            """)
        #expect(refused["status"] as? Int == 403, "\(refused)")
        #expect((refused["body"] as? String ?? "").contains("spiffe://example.org/ops/plain"), "\(refused)")
        #expect(try await server.writ(["entry", "list", "--spiffe-id", "spiffe://example.org/by-plain", "--output", "json"]).stdout.contains("by-plain") == false)

        // An SVID of another trust domain (its own CA, not in the bundle), and one for this
        // trust domain's admin ID signed by that CA: both fail at the handshake.
        let foreignKey = P256.Signing.PrivateKey()
        let foreignCAKey = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let now = Date()
        let foreignCA = try await X509SVIDProfile.rootCA(trustDomain: try TrustDomain(parsing: "other.org"), key: foreignCAKey,
                                                         notBefore: now - 60, notAfter: now + 3600)
        for (name, id) in [("foreign", "spiffe://other.org/ops/admin"), ("forged", "spiffe://example.org/ops/admin")] {
            let leaf = try await X509SVIDProfile.leaf(id: try SPIFFEID(parsing: id), publicKey: Certificate.PublicKey(foreignKey.publicKey),
                                                      notBefore: now - 10, notAfter: now + 600, issuer: foreignCA, issuerKey: foreignCAKey)
            let credential = try Self.write(chainDER: [TestNodePKI.der(leaf)], key: foreignKey, named: name, in: directory)
            let result = try await Self.request(server, bundle: bundle, "GET", "/v1/entries-count", as: credential)
            #expect(result["tls_error"] != nil && result["status"] == nil, "\(name) \(id): \(result)")
        }

        // The admin entry's SVID once expired: refused.
        try await Task.sleep(until: shortIssued + .seconds(12))
        let expired = try await Self.request(server, bundle: bundle, "GET", "/v1/entries-count", as: short)
        #expect(expired["tls_error"] != nil && expired["status"] == nil, "\(expired)")
        #expect(server.serverLog.contains("admin API: refused a client certificate"), "refusals are logged")

        // The socket keeps working beside the TCP listener.
        #expect(try await server.writ(["entry", "count"]).status == 0)
    }

    @Test func badAdminListenerConfigurationIsRefused() async throws {
        let directory = try TemporaryDirectory(prefix: "writ-admin-config")
        for (arguments, expected) in [
            (["--admin-listen", "nonsense"], "admin.listen"),
            (["--admin-ids", "spiffe://other.org/ops"], "admin.ids"),
            (["--admin-ids", "spiffe://example.org"], "admin.ids"),
            (["--admin-ids", "https://example.org/ops"], "admin.ids"),
        ] {
            let result = try await ProcessRunner.run(try TestEnvironment.executable("writ"), [
                "server", "validate", "--data-dir", directory.file("data").path, "--trust-domain", "example.org"] + arguments)
            #expect(result.status != 0 && result.stderr.contains(expected), "\(arguments): \(result.summary)")
        }
    }
}

/// Schemathesis (pinned in `Tests/interop/requirements.txt`) against the running admin API over
/// mTLS with an admin SVID: generated valid and invalid requests for every documented operation
/// must get no 5xx and answers that conform to `api/admin.v1.openapi.yaml` (status codes,
/// content types, body schemas), and invalid input must be refused.
@Suite(.serialized) struct AdminAPISchemaTests {
    @Test func schemathesisFindsNoServerErrorsAndNoSchemaViolations() async throws {
        // The caller is an admin through --admin-ids rather than an admin entry: the fuzzer
        // deletes the entries it finds, and would otherwise revoke its own access mid-run.
        let server = try await ServerHarness.start(extraArguments: ["--admin-listen", "127.0.0.1:0", "--admin-ids", "spiffe://example.org/ops/schemathesis"])
        defer { Task { await server.stop() } }
        let directory = try TemporaryDirectory(prefix: "writ-schemathesis")
        var attested = try await TestAgent(server: server)
        try await attested.attest(joinToken: try await AgentAPITests.token(server).secret)
        let agent = attested
        let adminEntry = try await AgentAPITests.entry(server, "spiffe://example.org/ops/schemathesis", parent: agent.id, ["--x509-ttl", "1h"])
        let admin = try await AdminTLSTests.svid(agent, entry: adminEntry, named: "admin", in: directory)
        let address = try #require(server.ready["admin_listen"] as? String)
        let schemathesis = (try TestEnvironment.interopPython() as NSString).deletingLastPathComponent + "/schemathesis"
        guard FileManager.default.isExecutableFile(atPath: schemathesis) else {
            throw TestEnvironment.MissingPrerequisite("`\(schemathesis)` is missing: run scripts/test, which installs Tests/interop/requirements.txt")
        }
        let seed = TestEnvironment.seeds(fixed: []).last ?? 1
        // A body over 1 MiB is refused with 413 before it is parsed (the document says so):
        // a right answer to an invalid request, which schemathesis does not expect by default.
        let config = directory.file("schemathesis.toml")
        try """
            [checks.negative_data_rejection]
            expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]

            """.write(to: config, atomically: true, encoding: .utf8)
        let result = try await ProcessRunner.run(schemathesis, [
            "--config-file", config.path,
            "run", TestEnvironment.packageRoot.appendingPathComponent("api/admin.v1.openapi.yaml").path,
            // Each run stands alone: no examples replayed from an earlier run's database.
            "--generation-database", "none",
            "--url", "https://\(address)",
            // The client checks the server the SPIFFE way elsewhere (admin_https.py); schemathesis
            // cannot check a URI SAN, so it only presents the admin SVID here.
            "--tls-verify", "false", "--request-cert", admin.certificate, "--request-cert-key", admin.key,
            // The backup operation writes files at paths the caller names: not for a fuzzer on a test machine.
            "--exclude-path", "/v1/datastore/backup",
            // Revoking an authority is meant to break trust in what it signed, the fuzzer's own
            // SVID included; AuthorityCLITests covers it.
            "--exclude-path", "/v1/authorities/revoke",
            // Every check but positive_data_acceptance: the document types SPIFFE IDs, selectors
            // and times as strings, and the server rightly refuses strings that do not parse.
            "--checks", "all", "--exclude-checks", "positive_data_acceptance",
            // One worker: CPython 3.11's ast.parse, which hypothesis calls, is not thread-safe.
            "--max-examples", "40", "--seed", String(seed % 1_000_000), "--workers", "1",
            "--report", "junit", "--report-dir", directory.file("report").path,
        ], environment: ["NO_COLOR": "1"])
        // Generated bodies can be huge: keep each line short so the findings themselves fit.
        let report = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map { $0.prefix(300) }.joined(separator: "\n")
        #expect(result.status == 0, "schemathesis (seed \(seed % 1_000_000)) found problems:\n\(report.suffix(12000))\n\(result.stderr.suffix(2000))")
        #expect(result.stdout.contains("passed") || result.stdout.contains("PASSED"), "\(result.stdout.suffix(3000))")
    }
}
