#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import WritTestSupport

/// mTLS between two Swift processes through the SDK (`SPIFFETLS`, `writ-test-mtls`), each with
/// its identity from a real agent: the server's rotation changes the serial it presents
/// without a restart; a peer the authorizer does not accept is refused on either side, with
/// the exact-ID, member-of-trust-domain and one-of-a-set authorizers; and
/// `openssl s_client` with the files of `writ api fetch x509 --write` is served.
@Suite(.serialized) struct AgentTLSTests {
    @Test func swiftWorkloadsDoMutualTLSAndFollowRotation() async throws {
        guard getuid() == 0 else { throw TestEnvironment.MissingPrerequisite("the client workload runs as uid 65534 with setpriv: run as root") }
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let agent = try await AgentProcessHarness.start(server: server)
        defer { Task { await agent.stop() } }
        let serverID = "spiffe://example.org/svc/tls-server", clientID = "spiffe://example.org/svc/tls-client"
        try await AgentAPITests.entry(server, serverID, parent: agent.agentID, selector: "unix:uid:0", ["--x509-ttl", "20s"])
        try await AgentAPITests.entry(server, clientID, parent: agent.agentID, selector: "unix:uid:65534")
        let tool = try TestEnvironment.executable("writ-test-mtls")
        let setpriv = try TestEnvironment.tool("setpriv")
        let asNobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", tool]

        /// Starts a TLS server (as root: the server identity) with `authorizer`; returns it and its port.
        func startServer(_ authorizer: [String], log name: String) async throws -> (Process, Int) {
            let output = agent.directory.file(name)
            let process = try AgentProcessTests.spawn(tool, ["serve", "--socket", agent.socket] + authorizer, stdout: output)
            var port = 0
            #expect(try await AgentProcessHarness.eventually(.seconds(30)) {
                port = AgentWorkloadTests.lines(output).first?["port"] as? Int ?? 0
                return port > 0
            }, "the TLS server \(authorizer) did not start: \(AgentWorkloadTests.lines(output))")
            return (process, port)
        }
        func connect(_ prefix: [String], port: Int, expect: String) async throws -> [String: Any] {
            let result = try await ProcessRunner.run(prefix[0], Array(prefix.dropFirst()) + ["connect", "--socket", agent.socket, "--port", String(port), "--expect", expect])
            return jsonObject(result.stdout.split(separator: "\n").last.map(String.init) ?? "")
        }
        let (tlsServer, port) = try await startServer(["--allow", clientID], log: "mtls-server.jsonl")
        defer { if tlsServer.isRunning { tlsServer.terminate() } }
        let first = try await connect(asNobody, port: port, expect: serverID)
        #expect(first["ok"] as? Bool == true, "\(first)")
        #expect(first["peer_seen_by_server"] as? String == clientID, "\(first)")
        let firstSerial = first["server_serial"] as? String ?? ""

        // The server's SVID rotates (20 s TTL); new handshakes present the new one, no restart.
        var latest: [String: Any] = [:]
        let rotated = try await AgentProcessHarness.eventually(.seconds(60)) {
            latest = try await connect(asNobody, port: port, expect: serverID)
            return latest["ok"] as? Bool == true && (latest["server_serial"] as? String ?? firstSerial) != firstSerial
        }
        #expect(rotated, "the server kept presenting \(firstSerial): \(latest)")
        #expect(tlsServer.isRunning)

        // Refusals: the client expects someone else; the server does not accept root's identity.
        let wrongServer = try await connect(asNobody, port: port, expect: "spiffe://example.org/svc/someone-else")
        #expect(wrongServer["ok"] as? Bool == false, "a server failing the client's authorizer must be refused: \(wrongServer)")
        let wrongClient = try await connect([tool], port: port, expect: serverID)
        #expect(wrongClient["ok"] as? Bool == false, "a client failing the server's authorizer must be refused: \(wrongClient)")

        // The SDK's other authorizers, in real handshakes: member of a trust domain, one of a set.
        let authorizers = [(["--allow-member", "example.org"], true), (["--allow-member", "partner.org"], false),
                           (["--allow-one-of", "spiffe://example.org/svc/someone-else,\(clientID)"], true),
                           (["--allow-one-of", "spiffe://example.org/svc/someone-else"], false)]
        for (n, (authorizer, accepts)) in authorizers.enumerated() {
            let (other, otherPort) = try await startServer(authorizer, log: "mtls-authorizer-\(n).jsonl")
            defer { if other.isRunning { other.terminate() } }
            let answer = try await connect(asNobody, port: otherPort, expect: serverID)
            #expect(answer["ok"] as? Bool == accepts, "\(authorizer) must \(accepts ? "accept" : "refuse") \(clientID): \(answer)")
            if accepts { #expect(answer["peer_seen_by_server"] as? String == clientID, "\(answer)") }
        }

        // openssl s_client with the files `writ api fetch x509 --write` leaves for the client.
        let files = try TemporaryDirectory(prefix: "writ-tls-files")
        _ = chmod(files.path, 0o777)
        let fetched = try await ProcessRunner.run(setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", try TestEnvironment.executable("writ"),
                                                                   "api", "fetch", "x509", "--socket", agent.socket, "--write", files.path])
        #expect(fetched.status == 0, "\(fetched.summary)")
        // s_client sends `-cert` (the leaf) and `-cert_chain` (the intermediates after it).
        let pem = try String(contentsOf: files.file("svid.0.pem"), encoding: .utf8)
        let blocks = pem.components(separatedBy: "-----END CERTIFICATE-----\n").filter { !$0.isEmpty }.map { $0 + "-----END CERTIFICATE-----\n" }
        try Data(blocks.dropFirst().joined().utf8).write(to: files.file("intermediates.pem"))
        let openssl = try await ProcessRunner.run(try TestEnvironment.tool("openssl"), [
            "s_client", "-connect", "127.0.0.1:\(port)", "-cert", files.file("svid.0.pem").path, "-cert_chain", files.file("intermediates.pem").path, "-key", files.file("svid.0.key").path,
            "-CAfile", files.file("bundle.0.pem").path, "-verify_return_error", "-quiet"], stdin: Data())
        #expect(openssl.stdout.contains("\"peer\":\"\(clientID)\""), "the Swift server must accept openssl with the written files: \(openssl.summary)")
        try await agent.stopAndCheckKeysOnDisk()
    }
}
