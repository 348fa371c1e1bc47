import Crypto
import Foundation
import Testing
import WritTestSupport

/// `writ token generate` against a real server: the secret is printed once, ≥ 128 bits, and the
/// datastore holds only its SHA-256 — not in the table, not anywhere in the database files.
@Suite(.serialized) struct JoinTokenCLITests {
    @Test func aTokenIsShownOnceAndStoredOnlyAsItsHash() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let generated = try await server.writ(["token", "generate", "--ttl", "1h", "--spiffe-id", "spiffe://example.org/nodes/web", "--output", "json"])
        #expect(generated.status == 0, "\(generated.summary)")
        let token = jsonObject(generated.stdout)
        let secret = try #require(token["token"] as? String)
        let id = try #require(token["id"] as? String)
        #expect(secret.count == 64 && secret.allSatisfy(\.isHexDigit), "256 random bits as hex")
        #expect(token["agent_id"] as? String == "spiffe://example.org/writ/agent/join_token/\(id)")
        #expect(!(token["agent_id"] as? String ?? "").contains(secret))

        // The node alias is an entry under the server that matches exactly this token's agent.
        let aliases = try await server.writ(["entry", "list", "--parent-id", "spiffe://example.org/writ/server", "--output", "json"])
        let alias = (jsonObject(aliases.stdout)["entries"] as? [[String: Any]])?.first ?? [:]
        #expect(alias["spiffe_id"] as? String == "spiffe://example.org/nodes/web", "\(aliases.summary)")
        #expect((alias["selectors"] as? [[String: String]]) == [["type": "join_token", "value": "id:\(id)"]])

        // Nothing but the hash is on disk (database, WAL and shared memory files).
        let hash = SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
        var files = Data()
        for suffix in ["", "-wal", "-shm"] {
            files += FileManager.default.contents(atPath: server.dataDir + "/datastore.sqlite3" + suffix) ?? Data()
        }
        #expect(files.range(of: Data(secret.utf8)) == nil, "the secret is stored in the datastore")
        #expect(files.range(of: Data(hash.utf8)) != nil, "the hash is stored")

        // Bad requests.
        #expect(try await server.writ(["token", "generate", "--ttl", "5s"]).status == 1)
        #expect(try await server.writ(["token", "generate", "--ttl", "soon"]).status == 64)
        let reserved = try await server.writ(["token", "generate", "--spiffe-id", "spiffe://example.org/writ/x"])
        #expect(reserved.status == 1 && reserved.stderr.contains("reserved"), "\(reserved.summary)")
        let (status, body) = try await server.curl("POST", "/v1/join-tokens", body: Data(#"{"ttl": 60, "colour": 1}"#.utf8))
        #expect(status == 400 && body.contains("unknown field `colour`"), "\(body)")
        // Two tokens never share a secret or an id.
        let second = jsonObject(try await server.writ(["token", "generate", "--output", "json"]).stdout)
        #expect(second["token"] as? String != secret && second["id"] as? String != id)
        await server.stop()
    }
}
