import Crypto
import Foundation
import SwiftASN1
import Testing
import WritTestSupport

/// `writ authority x509|jwt show|prepare|activate|taint|revoke` against a real server: forced
/// rotation changes which intermediate signs; a tainted root stays trusted until revoked, and
/// once revoked what it signed no longer verifies (openssl) while fresh credentials do; refusals
/// get the conventional exit codes.
@Suite(.serialized) struct AuthorityCLITests {
    static func authorities(_ server: ServerHarness, _ family: String) async throws -> [[String: Any]] {
        let shown = try await server.writ(["authority", family, "show", "--output", "json"])
        guard shown.status == 0 else { throw TestFailure("authority \(family) show failed: \(shown.summary)") }
        return jsonObject(shown.stdout)["authorities"] as? [[String: Any]] ?? []
    }

    static func id(_ list: [[String: Any]], kind: String, status: String) -> String? {
        list.first { $0["kind"] as? String == kind && $0["status"] as? String == status }?["id"] as? String
    }

    /// `openssl verify` of a chain (leaf first, DER) against a PEM bundle; true when it verifies.
    static func verifies(_ chainDER: [[UInt8]], bundlePEM: String, in directory: TemporaryDirectory, name: String) async throws -> Bool {
        try bundlePEM.write(to: directory.file("\(name)-bundle.pem"), atomically: true, encoding: .utf8)
        try Data(PEMDocument(type: "CERTIFICATE", derBytes: chainDER[0]).pemString.utf8).write(to: directory.file("\(name)-leaf.pem"))
        try Data(chainDER.dropFirst().map { PEMDocument(type: "CERTIFICATE", derBytes: $0).pemString }.joined(separator: "\n").utf8)
            .write(to: directory.file("\(name)-chain.pem"))
        let result = try await ProcessRunner.run(try TestEnvironment.tool("openssl"), [
            "verify", "-x509_strict", "-CAfile", directory.file("\(name)-bundle.pem").path,
            "-untrusted", directory.file("\(name)-chain.pem").path, directory.file("\(name)-leaf.pem").path])
        return result.status == 0
    }

    @Test func rotateTaintAndRevokeThroughTheCLI() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let directory = try TemporaryDirectory(prefix: "writ-authority")
        let initial = try await Self.authorities(server, "x509")
        #expect(Set(initial.compactMap { $0["kind"] as? String }) == ["root", "intermediate"], "\(initial)")
        #expect(initial.allSatisfy { $0["status"] as? String == "active" }, "\(initial)")
        #expect(try await Self.authorities(server, "jwt").map { $0["kind"] as? String } == ["jwt"])
        let firstRoot = try #require(Self.id(initial, kind: "root", status: "active"))
        let firstIntermediate = try #require(Self.id(initial, kind: "intermediate", status: "active"))

        var attested = try await TestAgent(server: server)
        try await attested.attest(joinToken: try await AgentAPITests.token(server).secret)
        let agent = attested
        let entry = try await AgentAPITests.entry(server, "spiffe://example.org/rotated", parent: agent.id)
        let before = try await agent.x509SVIDs([entry])
        let chainBefore = try #require(before.first?.svidChain.map { Array($0) })

        // Forced rotation of the intermediate: the prepared one signs once activated.
        #expect(try await server.writ(["authority", "x509", "prepare"]).status == 0)
        let twice = try await server.writ(["authority", "x509", "prepare"])
        #expect(twice.status == 4 && twice.stderr.contains("prepared already"), "\(twice.summary)")
        #expect(try await server.writ(["authority", "x509", "activate"]).status == 0)
        let none = try await server.writ(["authority", "x509", "activate"])
        #expect(none.status == 3 && none.stderr.contains("no prepared"), "\(none.summary)")
        let rotated = try await Self.authorities(server, "x509")
        let secondIntermediate = try #require(Self.id(rotated, kind: "intermediate", status: "active"))
        #expect(secondIntermediate != firstIntermediate && Self.id(rotated, kind: "intermediate", status: "old") == firstIntermediate, "\(rotated)")
        let after = try await agent.x509SVIDs([entry])
        let chainAfter = try #require(after.first?.svidChain.map { Array($0) })
        #expect(chainAfter[1] != chainBefore[1], "the new intermediate signs")

        // The same for JWT keys; the families do not mix. A token signed with the first key
        // keeps it in the bundle (as `old`) until the token expires; a key that signed nothing
        // would leave at the server's next rotation pass, whenever that falls.
        let minted = try await server.writ(["svid", "mint", "jwt", "--spiffe-id", "spiffe://example.org/rotated", "--audience", "https://api.example.org"])
        #expect(minted.status == 0, "\(minted.summary)")
        #expect(try await server.writ(["authority", "jwt", "prepare"]).status == 0)
        #expect(try await server.writ(["authority", "jwt", "activate"]).status == 0)
        let keys = try await Self.authorities(server, "jwt")
        #expect(keys.count == 2 && Self.id(keys, kind: "jwt", status: "active") != nil && Self.id(keys, kind: "jwt", status: "old") != nil, "\(keys)")
        let wrongFamily = try await server.writ(["authority", "jwt", "taint", "--id", firstRoot])
        #expect(wrongFamily.status == 3 && wrongFamily.stderr.contains("x509"), "\(wrongFamily.summary)")
        #expect(try await server.writ(["authority", "x509", "prepare", "--kind", "jwt"]).status == 64)
        let unknown = try await server.writ(["authority", "x509", "revoke", "--id", "no-such-authority"])
        #expect(unknown.status == 3, "\(unknown.summary)")
        let notTainted = try await server.writ(["authority", "x509", "revoke", "--id", firstRoot])
        #expect(notTainted.status == 4 && notTainted.stderr.contains("taint it first"), "\(notTainted.summary)")

        // Taint the root: a new root takes over; the old one stays in the bundle until revoked,
        // so what it signed still verifies.
        #expect(try await server.writ(["authority", "x509", "taint", "--id", firstRoot]).status == 0)
        let tainted = try await Self.authorities(server, "x509")
        #expect(Self.id(tainted, kind: "root", status: "tainted") == firstRoot, "\(tainted)")
        let secondRoot = try #require(Self.id(tainted, kind: "root", status: "active"))
        #expect(secondRoot != firstRoot)
        let bundleTainted = try await server.writ(["bundle", "show", "--format", "pem"]).stdout
        #expect(bundleTainted.components(separatedBy: "BEGIN CERTIFICATE").count - 1 == 2, "both roots are published")
        #expect(try await Self.verifies(chainAfter, bundlePEM: bundleTainted, in: directory, name: "tainted"))

        // Revoke it: it leaves the bundle and its SVIDs stop verifying; a new agent, attested
        // under the new root, gets an SVID that verifies.
        #expect(try await server.writ(["authority", "x509", "revoke", "--id", firstRoot]).status == 0)
        #expect(Self.id(try await Self.authorities(server, "x509"), kind: "root", status: "tainted") == nil)
        let bundleRevoked = try await server.writ(["bundle", "show", "--format", "pem"]).stdout
        #expect(bundleRevoked.components(separatedBy: "BEGIN CERTIFICATE").count - 1 == 1, "only the new root is published")
        #expect(try await !Self.verifies(chainAfter, bundlePEM: bundleRevoked, in: directory, name: "revoked"), "an SVID under the revoked root still verifies")
        var fresh = try await TestAgent(server: server)
        try await fresh.attest(joinToken: try await AgentAPITests.token(server).secret)
        #expect(try await Self.verifies(fresh.chainDER, bundlePEM: bundleRevoked, in: directory, name: "fresh"))
        #expect(server.serverLog.contains("authority revoked") && server.serverLog.contains("unix:uid:"), "changes are logged with the actor")
    }
}
