import Crypto
import Foundation
import GRPCCore
import SPIFFEIdentity
import SPIFFEX509
import SwiftASN1
import Synchronization
import Testing
import WritAgentAPI
import WritTestSupport
import X509

/// Two `writ server run` processes on one PostgreSQL database, each with its own CA: both
/// serve the union of their roots as one bundle, an entry written through one reaches an agent
/// synced from the other, an agent attested at one is served by the other, and SVIDs from both
/// verify (openssl) against the shared bundle.
@Suite(.serialized) struct TwoServerTests {
    /// The `x509-svid` keys of the SPIFFE bundle a server serves, and its sequence.
    static func bundle(_ server: ServerHarness) async throws -> (roots: Int, sequence: Int) {
        let shown = try await server.writ(["bundle", "show", "--format", "spiffe"])
        guard shown.status == 0 else { throw TestFailure("bundle show failed: \(shown.summary)") }
        let object = jsonObject(shown.stdout)
        let keys = object["keys"] as? [[String: Any]] ?? []
        return (keys.filter { $0["use"] as? String == "x509-svid" }.count, object["spiffe_sequence"] as? Int ?? -1)
    }

    /// Two servers on a fresh database of their own, with `extra` flags each; the closure stops
    /// both and drops the database.
    static func startPair(_ extra: [String] = []) async throws -> (ServerHarness, ServerHarness, @Sendable () async -> Void) {
        let (url, drop) = try await ServerHarness.createDatabase()
        let a: ServerHarness
        do { a = try await ServerHarness.start(extraArguments: ["--datastore", url] + extra) } catch {
            await drop()
            throw error
        }
        let b: ServerHarness
        do { b = try await ServerHarness.start(extraArguments: ["--datastore", url] + extra) } catch {
            await a.stop()
            await drop()
            throw error
        }
        return (a, b, {
            await a.stop()
            await b.stop()
            await drop()
        })
    }

    /// Runs `body`, failing if it takes longer than `limit`.
    static func within<T: Sendable>(_ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask { try await Task.sleep(for: limit); return nil }
            guard let first = try await group.next(), let value = first else {
                group.cancelAll()
                throw TestFailure("\(what) did not happen within \(limit)")
            }
            group.cancelAll()
            return value
        }
    }

    @Test func twoServersOnOneDatabaseShareTheRegistryAndTheBundle() async throws {
        let (a, b, stopAll) = try await Self.startPair()
        defer { Task { await stopAll() } }

        // Each server published its root; each learns the other's from the datastore.
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let (rootsA, rootsB) = (try await Self.bundle(a).roots, try await Self.bundle(b).roots)
            if rootsA >= 2 && rootsB >= 2 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let (rootsA, sequenceA) = try await Self.bundle(a)
        let (rootsB, sequenceB) = try await Self.bundle(b)
        #expect(rootsA == 2 && rootsB == 2 && sequenceA == sequenceB && sequenceA >= 2,
                "A: \(rootsA) roots at \(sequenceA); B: \(rootsB) roots at \(sequenceB)")

        // One agent attests through each server.
        var attestedA = try await TestAgent(server: a)
        try await attestedA.attest(joinToken: try await AgentAPITests.token(a).secret)
        var attestedB = try await TestAgent(server: b)
        try await attestedB.attest(joinToken: try await AgentAPITests.token(b).secret)
        let agentA = attestedA, agentB = attestedB

        // Both servers written to at once: every entry is served by the other one.
        let written = try await withThrowingTaskGroup(of: [String: String].self) { group in
            for (server, agent, name) in [(a, agentB, "via-a"), (b, agentA, "via-b")] {
                group.addTask {
                    var ids: [String: String] = [:]
                    for index in 0..<10 {
                        ids[try await AgentAPITests.entry(server, "spiffe://example.org/\(name)/\(index)", parent: agent.id)] = agent.id
                    }
                    return ids
                }
            }
            return try await group.reduce(into: [:]) { $0.merge($1) { first, _ in first } }
        }
        let forA = Set(written.filter { $0.value == agentA.id }.keys)
        let forB = Set(written.filter { $0.value == agentB.id }.keys)
        // A liveness bound, not a speed check (propagation is timed below): generous, since the
        // whole suite runs in parallel on two cores (a full run once took 287 s for this test).
        let seenByA = try await Self.within(.seconds(30), "entries written through B reaching an agent of A") { [agentA] in
            try await agentA.sync { messages in forA.isSubset(of: Set(messages.flatMap(\.entries).map(\.id))) }
        }
        #expect(Set(seenByA.flatMap(\.entries).map(\.id)) == forA)
        let seenByB = try await Self.within(.seconds(30), "entries written through A reaching an agent of B") { [agentB] in
            try await agentB.sync { messages in forB.isSubset(of: Set(messages.flatMap(\.entries).map(\.id))) }
        }
        #expect(Set(seenByB.flatMap(\.entries).map(\.id)) == forB)

        // Propagation: from the acknowledgement by A to the delta on B's open sync stream.
        let arrived = Mutex<ContinuousClock.Instant?>(nil)
        async let stream = Self.within(.seconds(15), "an entry created through A reaching B's sync stream") { [agentB] in
            try await agentB.sync { messages in
                guard messages.contains(where: { $0.entries.contains { $0.spiffeID == "spiffe://example.org/propagated" } }) else { return false }
                arrived.withLock { $0 = .now }
                return true
            }
        }
        try await Task.sleep(for: .milliseconds(500))
        // Timed from the start of the `writ entry create` process: the acknowledgement itself is
        // inside that process, and its exit can come after B's delta (scripts/bench times from
        // the acknowledgement).
        let sent = ContinuousClock.now
        _ = try await AgentAPITests.entry(a, "spiffe://example.org/propagated", parent: agentB.id)
        _ = try await stream
        let propagation = try #require(arrived.withLock { $0 }) - sent
        print("TwoServerTests: an entry created through server A (CLI started) reached an agent's sync stream on server B after \(propagation)")
        #expect(propagation < .seconds(10))

        // An agent attested at A is served by B (B trusts A's root through the shared bundle).
        var agentAAtB = try await TestAgent(server: b)
        agentAAtB.key = agentA.key
        agentAAtB.id = agentA.id
        agentAAtB.chainDER = agentA.chainDER
        let entryOfA = try #require(forA.first)
        let viaB = try await agentAAtB.x509SVIDs([entryOfA])
        #expect(viaB.count == 1 && !viaB[0].hasError, "\(viaB)")
        let viaA = try await agentA.x509SVIDs([entryOfA])
        #expect(viaA.count == 1 && !viaA[0].hasError, "\(viaA)")

        // The SVIDs each server signed verify against the bundle either server serves.
        let directory = try TemporaryDirectory(prefix: "writ-two-servers")
        for (name, server) in [("a", a), ("b", b)] {
            let pem = try await server.writ(["bundle", "show", "--format", "pem"])
            try pem.stdout.write(to: directory.file("bundle-\(name).pem"), atomically: true, encoding: .utf8)
        }
        for (name, result) in [("from-a", viaA[0]), ("from-b", viaB[0])] {
            let chain = result.svidChain.map { Array($0) }
            try Data(PEMDocument(type: "CERTIFICATE", derBytes: chain[0]).pemString.utf8).write(to: directory.file("\(name)-leaf.pem"))
            try Data(chain.dropFirst().map { PEMDocument(type: "CERTIFICATE", derBytes: $0).pemString }.joined(separator: "\n").utf8)
                .write(to: directory.file("\(name)-chain.pem"))
            for bundle in ["bundle-a.pem", "bundle-b.pem"] {
                let verified = try await ProcessRunner.run(try TestEnvironment.tool("openssl"), [
                    "verify", "-x509_strict", "-CAfile", directory.file(bundle).path,
                    "-untrusted", directory.file("\(name)-chain.pem").path, directory.file("\(name)-leaf.pem").path])
                #expect(verified.status == 0, "the SVID \(name) against \(bundle): \(verified.summary)")
            }
        }
        // The two SVIDs come from different intermediates: one per server.
        let issuerA = try Certificate(derEncoded: Array(viaA[0].svidChain[0])).issuer
        let issuerB = try Certificate(derEncoded: Array(viaB[0].svidChain[0])).issuer
        #expect(Array(viaA[0].svidChain[1]) != Array(viaB[0].svidChain[1]), "issuers \(issuerA) and \(issuerB)")
    }

    /// An upstream CA for `example.org` written as PEM files: its certificate and its key.
    static func upstream(in directory: TemporaryDirectory) async throws -> (certificate: Certificate, certPath: String, keyPath: String) {
        let key = P256.Signing.PrivateKey()
        let now = Date()
        let anchor = try await X509SVIDProfile.rootCA(trustDomain: try TrustDomain(parsing: "example.org"), key: Certificate.PrivateKey(key),
                                                      notBefore: now - 60, notAfter: now + 365 * 86400)
        var serializer = DER.Serializer()
        try serializer.serialize(anchor)
        try PEMDocument(type: "CERTIFICATE", derBytes: serializer.serializedBytes).pemString
            .write(to: directory.file("upstream.pem"), atomically: true, encoding: .utf8)
        try key.pemRepresentation.write(to: directory.file("upstream-key.pem"), atomically: true, encoding: .utf8)
        return (anchor, directory.file("upstream.pem").path, directory.file("upstream-key.pem").path)
    }

    /// With `--upstream-ca-cert/--upstream-ca-key`, each server's intermediate is signed by the
    /// one upstream key: the shared bundle holds that anchor alone, each server still has its own
    /// intermediate, and openssl verifies SVIDs from both against the upstream certificate.
    @Test func serversWithOneUpstreamCAShareItsAnchor() async throws {
        let directory = try TemporaryDirectory(prefix: "writ-upstream")
        let (anchor, certPath, keyPath) = try await Self.upstream(in: directory)
        let (a, b, stopAll) = try await Self.startPair(["--upstream-ca-cert", certPath, "--upstream-ca-key", keyPath])
        defer { Task { await stopAll() } }
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, try await Self.bundle(a).sequence != Self.bundle(b).sequence {
            try await Task.sleep(for: .milliseconds(100))
        }
        for server in [a, b] {
            let (roots, _) = try await Self.bundle(server)
            #expect(roots == 1, "one anchor, however many servers")
            let pem = try await server.writ(["bundle", "show", "--format", "pem"]).stdout
            #expect(try Certificate(pemEncoded: pem) == anchor, "the bundle's anchor is the upstream certificate")
        }
        var intermediates: [[UInt8]] = []
        for (name, server) in [("a", a), ("b", b)] {
            var attested = try await TestAgent(server: server)
            try await attested.attest(joinToken: try await AgentAPITests.token(server).secret)
            let agent = attested
            let entry = try await AgentAPITests.entry(server, "spiffe://example.org/upstream/\(name)", parent: agent.id)
            let results = try await agent.x509SVIDs([entry])
            let chain = try #require(results.first?.svidChain.map { Array($0) })
            #expect(try Certificate(derEncoded: chain[1]).issuer == anchor.subject, "server \(name)'s intermediate is signed upstream")
            intermediates.append(chain[1])
            try Data(PEMDocument(type: "CERTIFICATE", derBytes: chain[0]).pemString.utf8).write(to: directory.file("\(name)-leaf.pem"))
            try Data(PEMDocument(type: "CERTIFICATE", derBytes: chain[1]).pemString.utf8).write(to: directory.file("\(name)-chain.pem"))
            let verified = try await ProcessRunner.run(try TestEnvironment.tool("openssl"), [
                "verify", "-x509_strict", "-CAfile", certPath, "-untrusted", directory.file("\(name)-chain.pem").path, directory.file("\(name)-leaf.pem").path])
            #expect(verified.status == 0, "server \(name): \(verified.summary)")
        }
        #expect(intermediates.count == 2 && intermediates[0] != intermediates[1], "each server has its own intermediate")
    }

    /// Upstream files are checked before the server starts, with the problem named.
    @Test func badUpstreamFilesAreRefused() async throws {
        let directory = try TemporaryDirectory(prefix: "writ-upstream-bad")
        let (_, certPath, keyPath) = try await Self.upstream(in: directory)
        let otherKey = directory.file("other-key.pem").path
        try P256.Signing.PrivateKey().pemRepresentation.write(toFile: otherKey, atomically: true, encoding: .utf8)
        try "not a certificate".write(to: directory.file("garbage.pem"), atomically: true, encoding: .utf8)
        let node = try TestNodePKI()
        let leaf = try node.node(commonName: "not-a-ca", key: P256.Signing.PrivateKey())
        try PEMDocument(type: "CERTIFICATE", derBytes: TestNodePKI.der(leaf)).pemString.write(to: directory.file("leaf.pem"), atomically: true, encoding: .utf8)
        for (arguments, expected) in [
            (["--upstream-ca-cert", certPath], "go together"),
            (["--upstream-ca-cert", certPath, "--upstream-ca-key", otherKey], "is not the key of"),
            (["--upstream-ca-cert", directory.file("garbage.pem").path, "--upstream-ca-key", keyPath], "upstream.ca_cert"),
            (["--upstream-ca-cert", directory.file("leaf.pem").path, "--upstream-ca-key", keyPath], "not a CA certificate"),
            (["--upstream-ca-cert", certPath, "--upstream-ca-key", directory.file("absent.pem").path], "cannot read"),
        ] {
            let result = try await ProcessRunner.run(try TestEnvironment.executable("writ"), [
                "server", "validate", "--data-dir", directory.file("data").path, "--trust-domain", "example.org"] + arguments)
            #expect(result.status != 0 && result.stderr.contains(expected), "\(arguments): \(result.summary)")
        }
        let good = try await ProcessRunner.run(try TestEnvironment.executable("writ"), [
            "server", "validate", "--data-dir", directory.file("data").path, "--trust-domain", "example.org",
            "--upstream-ca-cert", certPath, "--upstream-ca-key", keyPath])
        #expect(good.status == 0 && good.stdout.contains("configuration ok"), "\(good.summary)")
    }

    /// A data dir's CA stays in the mode it was set up in: switching between self-signed and
    /// upstream, or to another upstream, is refused at start with what to do instead.
    @Test func switchingTheCAModeOfADataDirIsRefused() async throws {
        let directory = try TemporaryDirectory(prefix: "writ-upstream-mode")
        let (_, certPath, keyPath) = try await Self.upstream(in: directory)
        let writ = try TestEnvironment.executable("writ")
        let selfSigned = try await ServerHarness.start()
        await selfSigned.stop()
        let toUpstream = try await ProcessRunner.run(writ, selfSigned.arguments + ["--upstream-ca-cert", certPath, "--upstream-ca-key", keyPath])
        #expect(toUpstream.status != 0 && toUpstream.stderr.contains("self-signed root"), "\(toUpstream.summary)")

        let upstream = try await ServerHarness.start(extraArguments: ["--upstream-ca-cert", certPath, "--upstream-ca-key", keyPath])
        await upstream.stop()
        let base = Array(upstream.arguments.dropLast(4))
        let toSelfSigned = try await ProcessRunner.run(writ, base)
        #expect(toSelfSigned.status != 0 && toSelfSigned.stderr.contains("set up with an upstream CA"), "\(toSelfSigned.summary)")
        let other = try TemporaryDirectory(prefix: "writ-upstream-other")
        let (_, otherCert, otherKey) = try await Self.upstream(in: other)
        let toOther = try await ProcessRunner.run(writ, base + ["--upstream-ca-cert", otherCert, "--upstream-ca-key", otherKey])
        #expect(toOther.status != 0 && toOther.stderr.contains("another upstream CA"), "\(toOther.summary)")
        // The same upstream again: the server starts.
        let again = try await upstream.restart()
        #expect(again.ready["listen"] != nil)
        await again.stop()
    }
}
