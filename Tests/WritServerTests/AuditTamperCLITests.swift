import Foundation
import MerkleLog
import SQLKit
import Testing
@testable import WritStore
import WritStorePostgres
import WritStoreSQLite
import WritTestSupport

/// `writ audit verify --checkpoint-file` against a live server, on both backends: with a
/// checkpoint saved before the damage, each kind of tampering with the stored log — a body
/// edited, only a stored hash edited, an event deleted, two swapped, the tail truncated with
/// every newer checkpoint deleted — fails verification (exit 2) naming the first bad index.
@Suite struct AuditTamperCLITests {
    /// Runs `body` with the server's own datastore, opened beside it.
    static func withServerStore(_ server: ServerHarness, _ body: (SQLDatastore) async throws -> Void) async throws {
        if let url = server.datastoreURL {
            try await PostgresBackend.withBackend(url: try PostgresURL(parsing: url)) { backend in
                try await body(try await SQLDatastore(backend: backend))
            }
        } else {
            let backend = try await SQLiteBackend.open(path: server.dataDir + "/datastore.sqlite3")
            do { try await body(try await SQLDatastore(backend: backend)) } catch {
                await backend.close()
                throw error
            }
            await backend.close()
        }
    }

    /// Creates `count` entries in one CLI call: `count` entry.create events.
    static func createEntries(_ server: ServerHarness, _ range: Range<Int>) async throws {
        let entries = range.map { n in
            ["spiffe_id": "spiffe://example.org/tamper/\(n)", "parent_id": "spiffe://example.org/writ/agent/join_token/t",
             "selectors": [["type": "unix", "value": "uid:\(1000 + n)"]]] as [String: Any]
        }
        let data = try JSONSerialization.data(withJSONObject: ["entries": entries])
        let created = try await server.writ(["entry", "create", "--data", "-"], stdin: data)
        guard created.status == 0 else { throw TestFailure("entry create failed: \(created.summary)") }
    }

    static let tables = ["audit_events", "audit_subtrees", "audit_checkpoints"]

    @Test(arguments: ["sqlite", "postgres"])
    func verifyWithASavedCheckpointNamesTheFirstBadIndex(backend: String) async throws {
        let server = try await ServerHarness.start(backend: backend)
        defer { Task { await server.stop() } }
        let start = try await AuditScenarioTests.events(server).count
        try await Self.createEntries(server, 0..<40)
        let saved = try await AuditScenarioTests.checkpoint(server, covering: start + 40)
        let savedSize = saved["size"] as? Int ?? 0
        try await Self.createEntries(server, 40..<60)
        _ = try await AuditScenarioTests.checkpoint(server, covering: start + 60)
        let key = try await AuditScenarioTests.logKey(server)
        let directory = try TemporaryDirectory(prefix: "writ-audit-tamper")
        let savedFile = directory.file("saved-checkpoint.txt").path
        try (saved["note"] as? String ?? "").write(toFile: savedFile, atomically: true, encoding: .utf8)
        func verify() async throws -> ProcessRunner.Result {
            try await server.writ(["audit", "verify", "--log-key", key, "--checkpoint-file", savedFile])
        }
        let intact = try await verify()
        #expect(intact.status == 0 && intact.stdout.contains("audit log verified"), "\(intact.summary)")

        let body = UInt64(start + 17), hashOnly = UInt64(start + 23), deleted = UInt64(start + 30), swapped = UInt64(start + 10), cut = UInt64(start + 35)
        #expect(cut < UInt64(savedSize), "the truncation lies before the saved checkpoint")
        let damages: [(String, UInt64, @Sendable (any SQLDatabase) async throws -> Void)] = [
            ("one body edited, its hash left alone", body, { db in
                try await db.raw("UPDATE audit_events SET body = REPLACE(body, '\"create\"', '\"remove\"') WHERE leaf_index = \(bind: Int64(body))").run()
            }),
            ("only a stored leaf hash edited", hashOnly, { db in
                let forged = Data(MerkleHash.leaf(Array("forged".utf8)).bytes)
                try await db.raw("UPDATE audit_events SET leaf_hash = \(bind: forged) WHERE leaf_index = \(bind: Int64(hashOnly))").run()
            }),
            ("one event deleted", deleted, { db in
                try await db.raw("DELETE FROM audit_events WHERE leaf_index = \(bind: Int64(deleted))").run()
            }),
            ("two events swapped", swapped, { db in
                let rows = try await db.raw("SELECT leaf_index, body FROM audit_events WHERE leaf_index IN (\(bind: Int64(swapped)), \(bind: Int64(swapped + 1))) ORDER BY leaf_index").all()
                let bodies = try rows.map { try $0.decode(column: "body", as: String.self) }
                try await db.raw("UPDATE audit_events SET body = \(bind: bodies[1]) WHERE leaf_index = \(bind: Int64(swapped))").run()
                try await db.raw("UPDATE audit_events SET body = \(bind: bodies[0]) WHERE leaf_index = \(bind: Int64(swapped + 1))").run()
            }),
            ("the tail truncated and every newer checkpoint deleted", cut, { db in
                try await db.raw("DELETE FROM audit_events WHERE leaf_index >= \(bind: Int64(cut))").run()
                for level in 0..<20 {
                    try await db.raw("DELETE FROM audit_subtrees WHERE level = \(bind: Int64(level)) AND subtree_index >= \(bind: Int64(cut >> UInt64(level)))").run()
                }
                try await db.raw("DELETE FROM audit_checkpoints WHERE tree_size > \(bind: Int64(cut))").run()
            }),
        ]
        try await Self.withServerStore(server) { store in
            try await store.write("keep a copy") { db in
                for table in Self.tables { try await db.raw("CREATE TABLE \(unsafeRaw: "saved_" + table) AS SELECT * FROM \(unsafeRaw: table)").run() }
            }
            for (what, index, damage) in damages {
                try await store.write("tamper: \(what)") { db in try await damage(db) }
                let caught = try await verify()
                #expect(caught.status == 2 && caught.stderr.contains("index \(index):"), "\(backend), \(what): \(caught.summary)")
                try await store.write("undo: \(what)") { db in
                    for table in Self.tables {
                        try await db.raw("DELETE FROM \(unsafeRaw: table)").run()
                        try await db.raw("INSERT INTO \(unsafeRaw: table) SELECT * FROM \(unsafeRaw: "saved_" + table)").run()
                    }
                }
                let restored = try await verify()
                #expect(restored.status == 0, "\(backend), after undoing \(what): \(restored.summary)")
            }
        }
    }
}
