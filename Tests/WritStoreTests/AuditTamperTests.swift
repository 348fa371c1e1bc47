import Crypto
import Foundation
import Logging
import MerkleLog
import SQLKit
import Testing
import WritAudit
@testable import WritStore
import WritTestSupport

/// Tampering with the stored audit log is caught, on every backend: with a checkpoint saved
/// before the damage (as `writ audit verify --checkpoint-file` will hold one), verification from
/// the event bodies fails on each kind of damage and names the first bad index.
extension StoreConformanceTests {
    static let auditOrigin = "example.org/writ/audit"

    /// A log of 300 events with signed checkpoints; returns the one saved "elsewhere" (opened).
    static func populatedLog(_ store: SQLDatastore) async throws -> (saved: Checkpoint, signer: NoteSigner) {
        let signer = try NoteSigner(name: auditOrigin, privateKey: Curve25519.Signing.PrivateKey())
        let log = AuditLog(store: store, signer: signer, configuration: .init(origin: auditOrigin, checkpointInterval: .milliseconds(1)), logger: Logger(label: "test"))
        func events(_ range: Range<Int>) throws -> [AuditEventRecord] {
            try range.map { n in
                try AuditEvent(time: F.now.addingTimeInterval(Double(n)), type: "entry.create", actor: .unix(uid: 0, gid: nil, pid: nil),
                               target: AuditTarget(kind: "entry", id: "e\(n)"), action: "create", outcome: .allowed).record()
            }
        }
        _ = try await store.appendAuditEvents(try events(0..<240))
        _ = try await log.checkpointNow()
        _ = try await store.appendAuditEvents(try events(240..<300))
        _ = try await log.checkpointNow()
        let saved = try #require(try await store.auditCheckpoints(limit: 100).first { $0.size == 240 })
        return (try Checkpoint.open(saved.note, verifiers: [signer.verifier], origin: auditOrigin).checkpoint, signer)
    }

    /// Every checkpoint the store still holds, opened with the log key.
    static func storedCheckpoints(_ store: SQLDatastore, _ signer: NoteSigner) async throws -> [Checkpoint] {
        try await store.auditCheckpoints(limit: 1000).map { try Checkpoint.open($0.note, verifiers: [signer.verifier], origin: auditOrigin).checkpoint }
    }

    static func expectCaught(_ store: SQLDatastore, _ checkpoints: [Checkpoint], at index: UInt64?, _ what: String) async {
        do {
            _ = try await AuditVerifier.verify(store: store, checkpoints: checkpoints, pageSize: 64)
            Issue.record("\(what): verification passed")
        } catch let error as AuditVerificationError {
            #expect(error.index == index, "\(what): \(error)")
        } catch {
            Issue.record("\(what): \(error)")
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func tamperingWithTheAuditLogIsCaughtAtItsFirstIndex(_ kind: StoreBackendKind) async throws {
        // Each kind of damage on a fresh log.
        let damages: [(String, UInt64?, (SQLDatastore) async throws -> Void)] = [
            ("one body edited, its hash left alone", 57, { store in
                try await store.write("tamper") { db in
                    try await db.raw("UPDATE audit_events SET body = REPLACE(body, 'e57', 'e99') WHERE leaf_index = 57").run()
                }
            }),
            ("only a stored leaf hash edited", 123, { store in
                let forged = Data(MerkleHash.leaf(Array("forged".utf8)).bytes)
                try await store.write("tamper") { db in
                    try await db.raw("UPDATE audit_events SET leaf_hash = \(bind: forged) WHERE leaf_index = 123").run()
                }
            }),
            ("one event deleted", 200, { store in
                try await store.write("tamper") { db in try await db.raw("DELETE FROM audit_events WHERE leaf_index = 200").run() }
            }),
            ("two events swapped", 10, { store in
                try await store.write("tamper") { db in
                    let rows = try await db.raw("SELECT leaf_index, body FROM audit_events WHERE leaf_index IN (10, 11) ORDER BY leaf_index").all()
                    let bodies = try rows.map { try $0.decode(column: "body", as: String.self) }
                    try await db.raw("UPDATE audit_events SET body = \(bind: bodies[1]) WHERE leaf_index = 10").run()
                    try await db.raw("UPDATE audit_events SET body = \(bind: bodies[0]) WHERE leaf_index = 11").run()
                }
            }),
            ("the tail truncated and every newer checkpoint deleted", 180, { store in
                try await store.write("tamper") { db in
                    try await db.raw("DELETE FROM audit_events WHERE leaf_index >= 180").run()
                    // The subtrees reaching past 180: at level L, index 180 >> L and up.
                    for level in 0..<10 {
                        try await db.raw("DELETE FROM audit_subtrees WHERE level = \(bind: Int64(level)) AND subtree_index >= \(bind: Int64(180 >> level))").run()
                    }
                    try await db.raw("DELETE FROM audit_checkpoints WHERE tree_size > 180").run()
                }
            }),
        ]
        for (what, index, damage) in damages {
            try await F.withStore(kind) { store in
                let (saved, signer) = try await Self.populatedLog(store)
                // Intact, the log verifies against the saved checkpoint and every stored one.
                let intact = try await AuditVerifier.verify(store: store, checkpoints: [saved] + (try await Self.storedCheckpoints(store, signer)), pageSize: 64)
                #expect(intact.size == 300 && intact.verifiedCheckpoints.contains(saved), "\(what): the intact log")
                try await damage(store)
                await Self.expectCaught(store, [saved] + (try await Self.storedCheckpoints(store, signer)), at: index, what)
            }
        }
    }

    /// An attacker who edits a body and rewrites every stored hash to match is still caught by
    /// the checkpoint saved elsewhere; the damage is placed before that checkpoint's size.
    @Test(arguments: StoreBackendKind.allCases)
    func rewrittenHashesDoNotFoolASavedCheckpoint(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            let (saved, _) = try await Self.populatedLog(store)
            let events = try await store.auditEvents(0..<300)
            try await store.write("tamper") { db in
                try await db.raw("DELETE FROM audit_subtrees").run()
                try await db.raw("DELETE FROM audit_events").run()
                try await db.raw("DELETE FROM audit_checkpoints").run()
            }
            var rewritten = events.map { AuditEventRecord(body: $0.body, type: $0.type, actor: $0.actor, target: $0.target, time: $0.time) }
            rewritten[42].body = Array(String(decoding: rewritten[42].body, as: UTF8.self).replacingOccurrences(of: "e42", with: "e43").utf8)
            _ = try await store.appendAuditEvents(rewritten)
            do {
                _ = try await AuditVerifier.verify(store: store, checkpoints: [saved])
                Issue.record("a rewritten log passed")
            } catch let error as AuditVerificationError {
                #expect(error.index == nil && error.message.contains("before index 240"), "\(error)")
            }
        }
    }
}
