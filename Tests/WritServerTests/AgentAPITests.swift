import Crypto
import Foundation
import GRPCCore
import SwiftASN1
import SwiftProtobuf
import Testing
import WritAgentAPI
import WritTestSupport
import X509

/// The agent API of a real `writ server run` process, over real TLS 1.3 on TCP: join-token
/// attestation, the sync stream, SVID signing for an agent's own entries, and the refusals
/// (reused, expired and raced tokens; other agents' entries; evicted, banned and renewed-away
/// agents).
@Suite(.serialized) struct AgentAPITests {
    static func token(_ server: ServerHarness, _ extra: [String] = []) async throws -> (secret: String, id: String) {
        let generated = try await server.writ(["token", "generate", "--output", "json"] + extra)
        guard generated.status == 0 else { throw TestFailure("token generate failed: \(generated.summary)") }
        let object = jsonObject(generated.stdout)
        return (object["token"] as? String ?? "", object["id"] as? String ?? "")
    }

    @discardableResult
    static func entry(_ server: ServerHarness, _ spiffeID: String, parent: String, selector: String = "unix:uid:1000", _ extra: [String] = []) async throws -> String {
        let created = try await server.writ(["entry", "create", "--spiffe-id", spiffeID, "--parent-id", parent, "--selector", selector, "--output", "json"] + extra)
        let entry = (jsonObject(created.stdout)["results"] as? [[String: Any]])?.first?["entry"] as? [String: Any]
        guard created.status == 0, let id = entry?["id"] as? String else { throw TestFailure("entry create failed: \(created.summary)") }
        return id
    }

    @Test(arguments: ["sqlite", "postgres"])
    func joinTokenAttestationSyncAndSigning(backend: String) async throws {
        let server = try await ServerHarness.start(backend: backend)
        defer { Task { await server.stop() } }
        let shortLived = try await Self.token(server, ["--ttl", "10s"])
        let issuedShortLivedAt = ContinuousClock.now
        let token = try await Self.token(server)
        var agent = try await TestAgent(server: server)
        try await agent.attest(joinToken: token.secret)
        #expect(agent.id == "spiffe://example.org/writ/agent/join_token/\(token.id)")
        #expect(try uriSANs(agent.chainDER[0]) == [agent.id])

        // openssl verifies the agent SVID chain against the published bundle.
        let directory = try TemporaryDirectory(prefix: "writ-agent")
        try agent.bundlePEM.write(to: directory.file("bundle.pem"), atomically: true, encoding: .utf8)
        try Data(PEMDocument(type: "CERTIFICATE", derBytes: agent.chainDER[0]).pemString.utf8).write(to: directory.file("leaf.pem"))
        try Data(agent.chainDER.dropFirst().map { PEMDocument(type: "CERTIFICATE", derBytes: $0).pemString }.joined(separator: "\n").utf8)
            .write(to: directory.file("chain.pem"))
        let verified = try await ProcessRunner.run(try TestEnvironment.tool("openssl"), [
            "verify", "-x509_strict", "-CAfile", directory.file("bundle.pem").path, "-untrusted", directory.file("chain.pem").path, directory.file("leaf.pem").path])
        #expect(verified.status == 0, "\(verified.summary)")

        // The same token again is refused, and the refusal is recorded.
        var again = try await TestAgent(server: server)
        #expect(await rpcCode { try await again.attest(joinToken: token.secret) } == .permissionDenied)
        #expect(await rpcCode { try await again.attest(joinToken: "00" + token.secret.dropFirst(2)) } == .permissionDenied)

        // An entry under the agent: synced, and signed with the entry's ID only, whatever the CSR asks.
        let entryID = try await Self.entry(server, "spiffe://example.org/api", parent: agent.id, ["--dns", "api.example.org", "--x509-ttl", "10m"])
        let snapshot = try await agent.sync { messages in messages.last?.complete == true }
        #expect(snapshot.first?.snapshot == true && snapshot.first?.bundle.trustDomain == "example.org")
        #expect(snapshot.flatMap(\.entries).map(\.id) == [entryID])
        let evil = try TestCSR.make(P256.Signing.PrivateKey(), asking: try Certificate.Extensions {
            SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://example.org/admin"), .dnsName("evil.example.org")])
            try BasicConstraints.isCertificateAuthority(maxPathLength: nil)
        })
        let results = try await agent.x509SVIDs([entryID], csr: evil)
        #expect(results.count == 1 && !results[0].hasError, "\(results)")
        let leaf = try Certificate(derEncoded: Array(try #require(results.first?.svidChain.first)))
        #expect(try uriSANs(Array(results[0].svidChain[0])) == ["spiffe://example.org/api"])
        let names = try leaf.extensions.subjectAlternativeNames.map { Array($0) } ?? []
        #expect(names.contains(.dnsName("api.example.org")) && !names.contains(.dnsName("evil.example.org")))
        #expect(try leaf.extensions.basicConstraints != .isCertificateAuthority(maxPathLength: nil))
        let lifetime = leaf.notValidAfter.timeIntervalSince(leaf.notValidBefore)
        #expect(lifetime > 595 && lifetime < 625, "the entry's 10m TTL (plus the 10 s backdate), got \(lifetime)")
        let jwt = try await agent.jwtSVID(entryID)
        let payload = jwt.token.split(separator: ".")[1]
        let claims = try JSONSerialization.jsonObject(with: try #require(Data(base64URL: String(payload)))) as? [String: Any]
        #expect(claims?["sub"] as? String == "spiffe://example.org/api")

        // The agent is listed; the health service answers.
        let listed = try await server.writ(["agent", "list", "--output", "json"])
        #expect(listed.status == 0 && listed.stdout.contains(agent.id), "\(listed.summary)")
        let shown = try await server.writ(["agent", "show", "--spiffe-id", agent.id])
        #expect(shown.status == 0 && shown.stdout.contains("join_token:id:\(token.id)"), "\(shown.summary)")

        // An expired token is refused.
        try await Task.sleep(until: issuedShortLivedAt + .seconds(11))
        var late = try await TestAgent(server: server)
        #expect(await rpcCode { try await late.attest(joinToken: shortLived.secret) } == .permissionDenied)
        let log = server.serverLog
        #expect(log.contains("attestation refused") && log.contains("expired"), "refusals are logged")
        let (_, metrics) = try await server.httpGet("/metrics")
        #expect(metrics.contains(#"writ_attestations_total{type="join_token",result="ok"} 1"#), "\(metrics.prefix(4000))")
        #expect(metrics.contains(#"result="permissionDenied"} 3"#), "three refusals counted")
    }

    /// Ten attestations race for one token: exactly one gets an agent SVID.
    @Test(arguments: ["sqlite", "postgres"])
    func tenConcurrentAttestationsWithOneTokenYieldOneAgent(backend: String) async throws {
        let server = try await ServerHarness.start(backend: backend)
        defer { Task { await server.stop() } }
        let token = try await Self.token(server)
        let agent = try await TestAgent(server: server)
        let codes = await withTaskGroup(of: RPCError.Code?.self) { group in
            for _ in 0..<10 {
                group.addTask {
                    await rpcCode { _ = try await TestAgent.attest(agent, joinToken: token.secret, csr: try TestCSR.make(P256.Signing.PrivateKey())) }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(codes.filter { $0 == nil }.count == 1, "\(codes)")
        #expect(codes.filter { $0 == .permissionDenied }.count == 9, "\(codes)")
        let count = try await server.writ(["agent", "count"])
        #expect(count.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "\(count.summary)")
    }

    /// What an agent may and may not obtain, and how eviction, banning and renewal take effect.
    @Test func anAgentGetsOnlyItsOwnEntries() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let tokenA = try await Self.token(server, ["--spiffe-id", "spiffe://example.org/nodes/a"])
        let tokenB = try await Self.token(server)
        var a = try await TestAgent(server: server)
        try await a.attest(joinToken: tokenA.secret)
        var b = try await TestAgent(server: server)
        try await b.attest(joinToken: tokenB.secret)

        let own = try await Self.entry(server, "spiffe://example.org/a/own", parent: a.id)
        let others = try await Self.entry(server, "spiffe://example.org/b/own", parent: b.id)
        let viaAlias = try await Self.entry(server, "spiffe://example.org/a/alias", parent: "spiffe://example.org/nodes/a")
        let nested = try await Self.entry(server, "spiffe://example.org/a/nested", parent: "spiffe://example.org/a/own", selector: "unix:uid:2000")
        let deleted = try await Self.entry(server, "spiffe://example.org/a/deleted", parent: a.id, selector: "unix:uid:3000")
        #expect(try await server.writ(["entry", "delete", "--entry-id", deleted]).status == 0)

        let forA = try await a.x509SVIDs([own, viaAlias, nested, others, deleted, "no-such-entry"])
        #expect(forA.map(\.error.code) == ["", "", "", "permission_denied", "not_found", "not_found"], "\(forA.map(\.error))")
        #expect(try uriSANs(Array(forA[1].svidChain[0])) == ["spiffe://example.org/a/alias"])
        let forB = try await b.x509SVIDs([own, viaAlias, others])
        #expect(forB.map(\.error.code) == ["permission_denied", "permission_denied", ""], "\(forB.map(\.error))")
        #expect(await rpcCode { _ = try await b.jwtSVID(own) } == .permissionDenied)
        #expect(await rpcCode { _ = try await a.jwtSVID(deleted) } == .notFound)

        let synced = try await a.sync { $0.last?.complete == true }
        #expect(Set(synced.flatMap(\.entries).map(\.id)) == [own, viaAlias, nested])

        // Without a client certificate, only Attest is served.
        #expect(await rpcCode {
            _ = try await a.withClient(mTLS: false) { client in try await client.batchNewX509SVID(Writ_Agent_V1_BatchNewX509SVIDRequest()) }
        } == .unauthenticated)

        // Renewal: the new SVID works, a copy of the old one is refused.
        var renewed = a
        renewed.key = P256.Signing.PrivateKey()
        let newKey = renewed.key
        let newChain = try await a.withClient { client in
            var request = Writ_Agent_V1_RenewAgentRequest()
            request.csr = Data(try TestCSR.make(newKey))
            return try await client.renewAgent(request).svidChain.map { Array($0) }
        }
        renewed.chainDER = newChain
        #expect(try uriSANs(newChain[0]) == [a.id])
        #expect(try await renewed.x509SVIDs([own]).first?.hasError == false)
        #expect(await rpcCode { _ = try await a.x509SVIDs([own]) } == .permissionDenied, "the pre-renewal SVID is refused")

        // An open sync stream of an evicted agent ends, and its next sync is refused.
        async let stream: RPCError.Code? = rpcCode { _ = try await renewed.sync { _ in false } }
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await server.writ(["agent", "evict", "--spiffe-id", a.id]).status == 0)
        #expect(await stream == .permissionDenied)
        #expect(await rpcCode { _ = try await renewed.sync { $0.last?.complete == true } } == .permissionDenied)

        // A banned agent gets nothing more.
        #expect(try await server.writ(["agent", "ban", "--spiffe-id", b.id]).status == 0)
        #expect(await rpcCode { _ = try await b.x509SVIDs([others]) } == .permissionDenied)
        #expect(await rpcCode { _ = try await b.jwtSVID(others) } == .permissionDenied)
        let banned = try await server.writ(["agent", "list", "--banned", "--output", "json"])
        #expect(banned.stdout.contains(b.id) && !banned.stdout.contains(a.id), "\(banned.summary)")
    }

    /// A snapshot larger than 1 MiB arrives in pages that each stay under 1 MiB, then a change
    /// arrives as a delta.
    @Test func aLargeSnapshotIsPagedAndChangesFollowAsDeltas() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let token = try await Self.token(server)
        var agent = try await TestAgent(server: server)
        try await agent.attest(joinToken: token.secret)
        let count = 4000
        let padding = String(repeating: "x", count: 200)
        for batch in stride(from: 0, to: count, by: 1000) {
            let entries: [[String: Any]] = (batch..<batch + 1000).map { index in
                ["spiffe_id": "spiffe://example.org/workload/\(index)/\(padding)", "parent_id": agent.id,
                 "selectors": [["type": "unix", "value": "uid:\(index)"], ["type": "unix", "value": "path:/srv/\(padding)/\(index)"]]]
            }
            let created = try await server.writ(["entry", "create", "--data", "-", "--output", "json"], stdin: try JSONSerialization.data(withJSONObject: ["entries": entries]))
            #expect(created.status == 0, "\(created.summary.prefix(2000))")
        }
        let added = ManagedFlag()
        let agentID = agent.id
        let messages = try await agent.sync { messages in
            if messages.last?.complete == true, messages.last?.snapshot == true, !added.isSet {
                added.set()
                Task.detached { _ = try? await AgentAPITests.entry(server, "spiffe://example.org/late", parent: agentID, selector: "unix:uid:99999") }
            }
            return messages.last?.snapshot == false && !(messages.last?.entries.isEmpty ?? true)
        }
        let snapshot = messages.filter(\.snapshot)
        #expect(snapshot.flatMap(\.entries).count == count)
        #expect(snapshot.count >= 2, "\(snapshot.count) pages")
        for message in messages {
            let size: [UInt8] = try message.serializedBytes()
            #expect(size.count < 1 << 20, "a message of \(size.count) bytes")
        }
        let delta = try #require(messages.last)
        #expect(delta.entries.map(\.spiffeID) == ["spiffe://example.org/late"] && delta.revision > snapshot[0].revision)
    }

    /// TLS 1.3 only, and the gRPC health service answers (checked with openssl).
    @Test func theAgentAPISpeaksOnlyTLS13() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let agent = try await TestAgent(server: server)
        let openssl = try TestEnvironment.tool("openssl")
        let address = "127.0.0.1:\(try agent.port)"
        let tls12 = try await ProcessRunner.run(openssl, ["s_client", "-connect", address, "-tls1_2", "-brief"], stdin: Data())
        #expect(tls12.status != 0, "TLS 1.2 must be refused: \(tls12.summary)")
        let tls13 = try await ProcessRunner.run(openssl, ["s_client", "-connect", address, "-tls1_3", "-brief", "-alpn", "h2"], stdin: Data())
        #expect(tls13.status == 0 && tls13.stderr.contains("TLSv1.3"), "\(tls13.summary)")
        #expect(tls13.stderr.contains("spiffe://example.org/writ/server") || tls13.stdout.contains("Verification") || tls13.status == 0)
    }

    /// The open sync streams the server reports in `/metrics`.
    static func openSyncStreams(_ server: ServerHarness) async throws -> Int {
        let (_, metrics) = try await server.httpGet("/metrics")
        let line = metrics.split(separator: "\n").first { $0.hasPrefix("writ_sync_streams ") }
        return line.flatMap { Int(Double($0.split(separator: " ").last ?? "") ?? -1) } ?? -1
    }

    /// A sync stream ends on the server when its agent goes away (gRPC reports that through the
    /// RPC's cancellation handle, not by cancelling the handler), and SIGTERM stops a server
    /// whose agents hold streams open instead of waiting for them forever.
    @Test func syncStreamsEndWithTheirAgentAndDoNotHoldUpShutdown() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        var attested = try await TestAgent(server: server)
        try await attested.attest(joinToken: try await Self.token(server).secret)
        let agent = attested
        _ = try await agent.sync { $0.last?.complete == true }
        var deadline = ContinuousClock.now + .seconds(15)
        while try await Self.openSyncStreams(server) != 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(try await Self.openSyncStreams(server) == 0, "the stream of an agent that left is still open")

        let holding = Task { try await agent.sync { _ in false } }
        deadline = ContinuousClock.now + .seconds(15)
        while try await Self.openSyncStreams(server) != 1, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(try await Self.openSyncStreams(server) == 1)
        await server.recordIssuedKeys()
        server.process.terminate()
        deadline = ContinuousClock.now + .seconds(15)
        while server.process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!server.process.isRunning, "SIGTERM did not stop a server with a sync stream open:\n\(server.serverLog.suffix(2000))")
        #expect(server.process.isRunning || server.process.terminationStatus == 0, "exit status \(server.process.terminationStatus)")
        holding.cancel()
        _ = await holding.result
    }
}

/// A flag set once from any task.
final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

extension Data {
    /// Decodes unpadded base64url.
    init?(base64URL text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        self.init(base64Encoded: base64)
    }
}
