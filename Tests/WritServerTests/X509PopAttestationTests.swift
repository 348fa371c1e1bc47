import Crypto
import Foundation
import GRPCCore
import Synchronization
import Testing
import WritAgentAPI
import WritNodeAttestation
import WritTestSupport
import X509

/// x509pop node attestation against a real `writ server run` over real TLS 1.3: a node proves
/// possession of the key of a certificate from the configured node CA; the agent ID and node
/// selectors come from that certificate; node aliases match on those selectors; every kind of
/// bad evidence is refused and counted; an evicted x509pop agent re-attests by itself, a banned
/// one cannot.
@Suite(.serialized) struct X509PopAttestationTests {
    static func start(_ pki: TestNodePKI, backend: String) async throws -> (ServerHarness, TemporaryDirectory) {
        let directory = try TemporaryDirectory(prefix: "writ-x509pop")
        let bundle = directory.file("node-ca.pem")
        try pki.rootPEM.write(to: bundle, atomically: true, encoding: .utf8)
        return (try await ServerHarness.start(backend: backend, extraArguments: ["--x509pop-ca-bundle", bundle.path]), directory)
    }

    @Test(arguments: ["sqlite", "postgres"])
    func aNodeWithACertificateFromTheNodeCAAttestsAndGetsItsAliasesEntries(backend: String) async throws {
        let pki = try TestNodePKI(withIntermediate: true)
        let (server, directory) = try await Self.start(pki, backend: backend)
        defer { Task { await server.stop() } }
        _ = directory
        let nodeKey = P256.Signing.PrivateKey()
        let node = try pki.node(commonName: "node-1.example", dnsNames: ["node-1.example"], key: nodeKey)
        let chain = pki.chainDER(node)

        // A node alias for every node with that CN, and a workload under it.
        let alias = try await server.writ(["entry", "create", "--node", "--spiffe-id", "spiffe://example.org/nodes/web",
                                     "--selector", "x509pop:subject:cn:node-1.example", "--selector", "x509pop:ca:fingerprint:\(TestNodePKI.sha256Hex(pki.root))"])
        #expect(alias.status == 0, "\(alias.summary)")
        let web = try await AgentAPITests.entry(server, "spiffe://example.org/web", parent: "spiffe://example.org/nodes/web")
        let elsewhere = try await AgentAPITests.entry(server, "spiffe://example.org/db", parent: "spiffe://example.org/nodes/db")
        let otherAlias = try await server.writ(["entry", "create", "--node", "--spiffe-id", "spiffe://example.org/nodes/db", "--selector", "x509pop:subject:cn:db-1.example"])
        #expect(otherAlias.status == 0, "\(otherAlias.summary)")

        let answered = Mutex<[([UInt8], [UInt8])]>([])
        var agent = try await TestAgent(server: server)
        let result = try await agent.attest(x509popChain: chain) { nonce in
            let signature = try X509PopChallenge.sign(nonce: nonce, with: nodeKey)
            answered.withLock { $0.append((nonce, signature)) }
            return signature
        }
        #expect(agent.id == "spiffe://example.org/writ/agent/x509pop/\(TestNodePKI.sha256Hex(node))")
        #expect(try uriSANs(agent.chainDER[0]) == [agent.id])
        let selectors = Set(result.selectors.map { "\($0.type):\($0.value)" })
        #expect(selectors.isSuperset(of: ["x509pop:subject:cn:node-1.example", "x509pop:san:dns:node-1.example", "x509pop:serialnumber:12abc",
                                          "x509pop:ca:fingerprint:\(TestNodePKI.sha256Hex(pki.root))",
                                          "x509pop:ca:fingerprint:\(TestNodePKI.sha256Hex(pki.intermediate!))"]), "\(selectors)")
        let nonce = try #require(answered.withLock { $0.first?.0 })
        #expect(nonce.count >= 32)

        // The alias's workload is served; the other alias's is not.
        let issued = try await agent.x509SVIDs([web, elsewhere])
        #expect(!issued[0].hasError && issued[1].error.code == "permission_denied", "\(issued)")
        let synced = try await agent.sync { $0.last?.complete == true }
        #expect(synced.flatMap(\.entries).map(\.id) == [web])

        // Bad evidence, each refused: an untrusted CA, an expired node certificate, a replayed
        // challenge response, a signature by another key, a CA certificate as node certificate.
        let stranger = try TestNodePKI(name: "Untrusted Node CA")
        let strangerKey = P256.Signing.PrivateKey()
        var intruder = try await TestAgent(server: server)
        #expect(await rpcCode {
            try await intruder.attest(x509popChain: stranger.chainDER(try stranger.node(commonName: "node-1.example", key: strangerKey))) {
                try X509PopChallenge.sign(nonce: $0, with: strangerKey)
            }
        } == .permissionDenied)
        let expired = try pki.node(commonName: "node-1.example", key: nodeKey, notBefore: Date() - 7200, notAfter: Date() - 60)
        #expect(await rpcCode {
            try await intruder.attest(x509popChain: pki.chainDER(expired)) { try X509PopChallenge.sign(nonce: $0, with: nodeKey) }
        } == .permissionDenied)
        let recorded = try #require(answered.withLock { $0.first?.1 })
        #expect(await rpcCode { try await intruder.attest(x509popChain: chain) { _ in recorded } } == .permissionDenied, "a replayed response")
        #expect(await rpcCode {
            try await intruder.attest(x509popChain: chain) { try X509PopChallenge.sign(nonce: $0, with: P256.Signing.PrivateKey()) }
        } == .permissionDenied, "a signature by another key")
        #expect(await rpcCode {
            try await intruder.attest(x509popChain: TestNodePKI.der(pki.root)) { _ in [] }
        } == .permissionDenied, "the CA itself as node certificate")
        #expect(await rpcCode { try await intruder.attest(x509popChain: [0x30, 0x01]) { _ in [] } } == .invalidArgument)

        let (_, metrics) = try await server.httpGet("/metrics")
        #expect(metrics.contains(#"writ_attestations_total{type="x509pop",result="ok"} 1"#), "\(metrics.prefix(4000))")
        #expect(metrics.contains(#"writ_attestations_total{type="x509pop",result="permissionDenied"} 5"#), "five refusals counted:\n\(metrics.prefix(4000))")
        let log = server.serverLog
        #expect(log.contains("does not chain") && log.contains("expired at") && log.contains("not a valid"), "refusals are logged with their reason")

        // Evicted: the node attests again by itself, to the same ID. Banned: it cannot.
        #expect(try await server.writ(["agent", "evict", "--spiffe-id", agent.id]).status == 0)
        #expect(await rpcCode { _ = try await agent.x509SVIDs([web]) } == .permissionDenied)
        var again = try await TestAgent(server: server)
        try await again.attest(x509popChain: chain) { try X509PopChallenge.sign(nonce: $0, with: nodeKey) }
        #expect(again.id == agent.id)
        #expect(try await again.x509SVIDs([web]).first?.hasError == false)
        #expect(try await server.writ(["agent", "ban", "--spiffe-id", agent.id]).status == 0)
        var banned = try await TestAgent(server: server)
        #expect(await rpcCode { try await banned.attest(x509popChain: chain) { try X509PopChallenge.sign(nonce: $0, with: nodeKey) } } == .permissionDenied)
    }

    /// Without a node CA x509pop is refused with the setting to change; a bad CA file stops the
    /// server from starting and `writ server validate` names it.
    @Test func x509popNeedsANodeCA() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let pki = try TestNodePKI()
        let key = P256.Signing.PrivateKey()
        var agent = try await TestAgent(server: server)
        do {
            try await agent.attest(x509popChain: pki.chainDER(try pki.node(commonName: "n", key: key))) { try X509PopChallenge.sign(nonce: $0, with: key) }
            Issue.record("x509pop was accepted without a node CA")
        } catch let error as RPCError {
            #expect(error.code == .failedPrecondition && error.message.contains("x509pop.ca_bundle"), "\(error)")
        }

        let directory = try TemporaryDirectory(prefix: "writ-x509pop-bad")
        try "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n".write(to: directory.file("bad.pem"), atomically: true, encoding: .utf8)
        let validate = try await server.writ(["server", "validate", "--data-dir", directory.path, "--trust-domain", "example.org",
                                        "--x509pop-ca-bundle", directory.file("bad.pem").path])
        #expect(validate.status == 64 && validate.stderr.contains("x509pop.ca_bundle"), "\(validate.summary)")
    }
}
