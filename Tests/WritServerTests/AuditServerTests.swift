import Foundation
import MerkleLog
import Testing
import WritAudit
import WritStore
import WritStoreSQLite
import WritTestSupport

/// A real `writ server run`: entry changes through the CLI land in the audit log in the same
/// transaction, with the caller of the admin socket as the actor, and are covered by a
/// checkpoint signed with the server's own log key.
@Suite struct AuditServerTests {
    @Test func entryChangesThroughTheCLIAreAuditedAndCheckpointed() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let created = try await server.writ(["entry", "create", "--spiffe-id", "spiffe://example.org/audited", "--parent-id", "spiffe://example.org/writ/agent/join_token/t",
                                       "--selector", "unix:uid:1000", "--output", "json"])
        #expect(created.status == 0, "\(created.summary)")
        let entry = (jsonObject(created.stdout)["results"] as? [[String: Any]])?.first?["entry"] as? [String: Any] ?? [:]
        let id = try #require(entry["id"] as? String, "\(created.summary)")
        let revision = try #require(entry["revision"] as? Int)
        #expect(try await server.writ(["entry", "update", "--entry-id", id, "--revision", String(revision), "--owner", "team-b"]).status == 0)
        // A refused change (a stale revision) leaves no event.
        #expect(try await server.writ(["entry", "update", "--entry-id", id, "--revision", String(revision), "--owner", "team-c"]).status == 4)
        #expect(try await server.writ(["entry", "delete", "--entry-id", id]).status == 0)

        let keyMode = (try FileManager.default.attributesOfItem(atPath: server.dataDir + "/audit-log.key")[.posixPermissions] as? Int) ?? -1
        #expect(keyMode == 0o600, "the log key file has mode \(String(keyMode, radix: 8))")

        // Read the server's datastore beside it.
        let backend = try await SQLiteBackend.open(path: server.dataDir + "/datastore.sqlite3")
        let store = try await SQLDatastore(backend: backend)
        defer { Task { await backend.close() } }
        let events = try await store.searchAuditEvents(AuditQuery(type: "entry.*"))
        #expect(events.map(\.type) == ["entry.create", "entry.update", "entry.delete"], "\(events.map(\.type))")
        #expect(events.allSatisfy { $0.actor == "unix:uid:\(getuid())" && $0.target == "entry:\(id)" })
        let first = jsonObject(String(decoding: events.first?.body ?? [], as: UTF8.self))
        #expect((first["actor"] as? [String: Any])?["uid"] as? Int == Int(getuid()))
        #expect(((first["details"] as? [String: Any])?["spiffe_id"] as? String) == "spiffe://example.org/audited", "\(first)")

        // A checkpoint covering them is signed within the checkpoint interval, by the key the
        // datastore lists, and the log verifies from its bodies.
        let keys = try await store.auditLogKeys()
        #expect(keys.count == 1 && keys[0].verifierKey.hasPrefix("example.org/writ/audit+"), "\(keys)")
        let verifier = try NoteVerifier(encoded: keys[0].verifierKey)
        var covering: Checkpoint? = nil
        let size = try await store.auditSize()
        // A liveness bound (it is signed within a second); looked at once more after the deadline,
        // since suites running beside this one can starve the test's task.
        let deadline = ContinuousClock.now + .seconds(60)
        while covering == nil {
            let late = ContinuousClock.now >= deadline
            covering = try await store.auditCheckpoints(limit: 1).first.map { try Checkpoint.open($0.note, verifiers: [verifier], origin: "example.org/writ/audit").checkpoint }
                .flatMap { $0.size == size ? $0 : nil }
            if late { break }
            if covering == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let checkpoint = try #require(covering, "no checkpoint of \(size) events was signed")
        let verified = try await AuditVerifier.verify(store: store, checkpoints: [checkpoint])
        #expect(verified.verifiedCheckpoints == [checkpoint])
    }

    /// Rotating the log key (docs/audit-log.md): stop the server, move `audit-log.key` away,
    /// start it again. The new key is registered beside the old one, `writ audit keys` lists
    /// both, and a checkpoint signed with the retired key — saved elsewhere, and stored — still
    /// verifies against the log as it grows under the new key.
    @Test func aRotatedLogKeyStaysListedAndItsCheckpointsKeepVerifying() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        func create(_ path: String, on server: ServerHarness) async throws {
            let run = try await server.writ(["entry", "create", "--spiffe-id", "spiffe://example.org\(path)", "--parent-id",
                                       "spiffe://example.org/writ/agent/join_token/t", "--selector", "unix:uid:1000"])
            #expect(run.status == 0, "\(run.summary)")
        }
        func keys(_ server: ServerHarness) async throws -> [String] {
            let run = try await server.writ(["audit", "keys", "--output", "json"])
            return (jsonObject(run.stdout)["keys"] as? [[String: Any]] ?? []).compactMap { $0["verifier_key"] as? String }
        }
        try await create("/before-rotation", on: server)
        let oldKeys = try await keys(server)
        #expect(oldKeys.count == 1, "\(oldKeys)")
        await server.stop()  // signs a final checkpoint with the old key
        let saved = server.directory.file("old-checkpoint.txt").path
        let retired = server.dataDir + "/audit-log.key.retired"
        try FileManager.default.moveItem(atPath: server.dataDir + "/audit-log.key", toPath: retired)

        let restarted = try await server.restart()
        defer { Task { await restarted.stop() } }
        // The restart signs a checkpoint with the new key at once.
        let checkpoints = try await restarted.writ(["audit", "checkpoint"])
        #expect(checkpoints.status == 0, "\(checkpoints.summary)")
        let newKeys = try await keys(restarted)
        #expect(newKeys.count == 2 && newKeys.contains(oldKeys[0]), "the retired key is no longer listed: \(newKeys)")
        try await create("/after-rotation", on: restarted)

        // Witness the log with a checkpoint signed by the retired key: write it from the
        // datastore's own list (the newest checkpoint the old key signed).
        let backend = try await SQLiteBackend.open(path: restarted.dataDir + "/datastore.sqlite3")
        let store = try await SQLDatastore(backend: backend)
        defer { Task { await backend.close() } }
        let oldVerifier = try NoteVerifier(encoded: oldKeys[0])
        let byOldKey = try await store.auditCheckpoints(limit: 100).first { (try? Checkpoint.open($0.note, verifiers: [oldVerifier], origin: "example.org/writ/audit")) != nil }
        let note = try #require(byOldKey?.note, "no stored checkpoint was signed with the retired key")
        try note.write(toFile: saved, atomically: true, encoding: .utf8)
        let verified = try await restarted.writ(["audit", "verify", "--checkpoint-file", saved])
        #expect(verified.status == 0, "\(verified.summary)")
        let withBothKeys = try await restarted.writ(["audit", "verify", "--checkpoint-file", saved, "--log-key", oldKeys[0], "--log-key",
                                               newKeys.first { $0 != oldKeys[0] } ?? ""])
        #expect(withBothKeys.status == 0, "\(withBothKeys.summary)")
        await restarted.stop()
    }
}
