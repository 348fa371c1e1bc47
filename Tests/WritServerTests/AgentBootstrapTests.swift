#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import Testing
import WritTestSupport
import X509

/// How a real `writ agent run` comes to trust its server and prove its node, each way the
/// issue names: a pinned root (checked in the handshake, before anything is sent: a wrong pin
/// leaves the join token unused), a SPIFFE bundle JSON file, an insecure bootstrap that says so
/// loudly, and x509pop with certificate and key files; and it falls back on that bootstrap
/// trust when its stored bundle stops verifying the server. Each agent also raises its soft
/// RLIMIT_NOFILE to the hard limit.
@Suite(.serialized) struct AgentBootstrapTests {
    /// The soft and hard "Max open files" of a process.
    static func openFileLimits(_ pid: Int32) throws -> (soft: String, hard: String) {
        let limits = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
        guard let line = limits.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") }) else {
            throw TestFailure("no `Max open files` in /proc/\(pid)/limits:\n\(limits)")
        }
        let fields = line.dropFirst("Max open files".count).split(whereSeparator: \.isWhitespace)
        guard fields.count >= 2 else { throw TestFailure("unreadable limit line: \(line)") }
        return (String(fields[0]), String(fields[1]))
    }

    /// The agent serves a workload its identity (the caller runs as root, the entry's uid).
    static func servesAWorkload(_ agent: AgentProcessHarness, _ server: ServerHarness, path: String) async throws -> Bool {
        let id = "spiffe://example.org\(path)"
        try await AgentAPITests.entry(server, id, parent: agent.agentID, selector: "unix:uid:\(getuid())")
        return try await AgentProcessHarness.eventually(.seconds(30)) {
            let fetched = try await ProcessRunner.run(try TestEnvironment.executable("writ"), ["api", "fetch", "x509", "--socket", agent.socket, "--output", "json"])
            return fetched.status == 0 && fetched.stdout.contains(id)
        }
    }

    @Test func aPinnedRootBootstrapsAndAWrongPinSendsNothing() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let generated = try await server.writ(["token", "generate", "--output", "json"])
        let token = try #require(jsonObject(generated.stdout)["token"] as? String, "\(generated.summary)")

        // A pin that does not match: the handshake fails, the agent never attests.
        let wrong = String(repeating: "ab", count: 32)
        let refused = try await AgentProcessHarness.start(server: server, joinToken: token, trust: { _ in ["--trust-bundle-sha256", wrong] }, waitForReady: false)
        let complained = try await AgentProcessHarness.eventually(.seconds(30)) { refused.agentLog.contains("did not present a root certificate with SHA-256 \(wrong)") }
        #expect(complained, "the agent must name the pin it could not match:\n\(refused.agentLog)")
        #expect(!FileManager.default.fileExists(atPath: refused.directory.file("data/ready.json").path))
        await refused.stop()

        // The right pin (SHA-256 of the root's DER, as the help says to compute it): the same
        // join token still works, so nothing reached the server before the pin was checked.
        let pem = try await server.writ(["bundle", "show", "--format", "pem"])
        let pin = TestNodePKI.sha256Hex(try Certificate(pemEncoded: pem.stdout))
        let pinned = try await AgentProcessHarness.start(server: server, joinToken: token, trust: { _ in ["--trust-bundle-sha256", pin] })
        defer { Task { await pinned.stop() } }
        #expect(pinned.agentID.hasPrefix("spiffe://example.org/writ/agent/join_token/"), "\(pinned.ready)")
        #expect(try await Self.servesAWorkload(pinned, server, path: "/svc/pinned"), "\(pinned.agentLog)")
        // What it stored for its restarts is the bundle it then received, in full.
        #expect(FileManager.default.fileExists(atPath: pinned.directory.file("data/bundle.pem").path))

        let limits = try Self.openFileLimits(pinned.pid)
        #expect(limits.soft == limits.hard, "the agent raises its soft RLIMIT_NOFILE to the hard limit: \(limits)")
        try await pinned.stopAndCheckKeysOnDisk()
    }

    @Test func aSPIFFEBundleFileAndAnInsecureBootstrapBothWork() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let spiffe = try await server.writ(["bundle", "show", "--format", "spiffe"])
        #expect(spiffe.status == 0 && spiffe.stdout.contains("\"spiffe_sequence\""), "\(spiffe.summary)")
        let fromJSON = try await AgentProcessHarness.start(server: server, trust: { directory in
            try Data(spiffe.stdout.utf8).write(to: directory.file("bundle.json"))
            return ["--trust-bundle", directory.file("bundle.json").path]
        })
        defer { Task { await fromJSON.stop() } }
        #expect(try await Self.servesAWorkload(fromJSON, server, path: "/svc/from-json"), "\(fromJSON.agentLog)")

        let insecure = try await AgentProcessHarness.start(server: server, trust: { _ in ["--insecure-bootstrap"] })
        defer { Task { await insecure.stop() } }
        #expect(insecure.agentLog.contains("INSECURE BOOTSTRAP") && insecure.agentLog.contains("critical"), "\(insecure.agentLog)")
        #expect(try await Self.servesAWorkload(insecure, server, path: "/svc/insecure"), "\(insecure.agentLog)")
        try await fromJSON.stopAndCheckKeysOnDisk()
        try await insecure.stopAndCheckKeysOnDisk()
    }

    @Test func anAgentAttestsWithX509PopFiles() async throws {
        let pki = try TestNodePKI(withIntermediate: true)
        let directory = try TemporaryDirectory(prefix: "writ-pop-agent")
        try pki.rootPEM.write(to: directory.file("node-ca.pem"), atomically: true, encoding: .utf8)
        let server = try await ServerHarness.start(extraArguments: ["--x509pop-ca-bundle", directory.file("node-ca.pem").path])
        defer { Task { await server.stop() } }
        let key = P256.Signing.PrivateKey()
        let node = try pki.node(commonName: "node-7.example", key: key)
        let chainPEM = try [node, pki.intermediate!].map { try $0.serializeAsPEM().pemString + "\n" }.joined()
        try chainPEM.write(to: directory.file("node.pem"), atomically: true, encoding: .utf8)
        try key.pemRepresentation.write(to: directory.file("node.key"), atomically: true, encoding: .utf8)
        _ = chmod(directory.file("node.key").path, 0o600)
        let agent = try await AgentProcessHarness.start(server: server, attestation: [
            "--x509pop-cert", directory.file("node.pem").path, "--x509pop-key", directory.file("node.key").path])
        defer { Task { await agent.stop() } }
        #expect(agent.agentID == "spiffe://example.org/writ/agent/x509pop/\(TestNodePKI.sha256Hex(node))", "\(agent.ready)")
        #expect(try await Self.servesAWorkload(agent, server, path: "/svc/on-a-pop-node"), "\(agent.agentLog)")
        // A restart comes back as the same agent (its stored SVID; the files stay for re-attestation).
        try await agent.restart()
        #expect(agent.agentID == "spiffe://example.org/writ/agent/x509pop/\(TestNodePKI.sha256Hex(node))", "\(agent.ready)")
        try await agent.stopAndCheckKeysOnDisk()
    }

    /// Trust lost: the agent's stored bundle no longer holds the server's root (here replaced by
    /// an unrelated CA's, as after a root rotation the agent missed). After three failed
    /// verifications the agent trusts its bootstrap bundle again, reconnects with its stored
    /// agent SVID, stores the server's bundle again and serves workloads.
    @Test func anAgentWhoseStoredBundleNoLongerVerifiesReBootstraps() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let agent = try await AgentProcessHarness.start(server: server)
        defer { Task { await agent.stop() } }
        let id = agent.agentID
        await agent.stop()
        let stored = agent.directory.file("data/bundle.pem")
        try TestNodePKI(name: "Some Other CA").rootPEM.write(to: stored, atomically: true, encoding: .utf8)
        try await agent.restart()
        #expect(agent.agentLog.contains("trusting the bootstrap bundle again"), "\(agent.agentLog)")
        #expect(agent.agentID == id, "the agent came back as itself, with its stored SVID: \(agent.ready)")
        let published = try await server.writ(["bundle", "show", "--format", "pem"])
        #expect(try await AgentProcessHarness.eventually(.seconds(30)) {
            WorkloadCLITests.certificates((try? String(contentsOf: stored, encoding: .utf8)) ?? "") == WorkloadCLITests.certificates(published.stdout)
        }, "the stored bundle must be the server's again")
        #expect(try await Self.servesAWorkload(agent, server, path: "/svc/after-rebootstrap"), "\(agent.agentLog)")
        try await agent.stopAndCheckKeysOnDisk()
    }
}
