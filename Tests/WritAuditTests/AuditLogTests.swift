import Crypto
import Foundation
import Logging
import MerkleLog
import SPIFFEIdentity
import Testing
import WritAudit
import WritStore
import WritStoreSQLite
import WritTestSupport

/// Group commit and checkpoint signing over a real SQLite store: every caller hears back only
/// after its batch committed, batches close at the limit or the window, a failed batch fails
/// every caller in it and stores nothing, checkpoints are signed at most once per interval and
/// each is consistent with the one before.
@Suite struct AuditLogTests {
    static let origin = "example.org/writ/audit"

    static func withLog(faults: StoreFaults? = nil, batchLimit: Int = 1000, interval: Duration = .seconds(1),
                        _ body: (AuditLog, SQLDatastore, NoteSigner) async throws -> Void) async throws {
        let directory = try TemporaryDirectory(prefix: "writ-audit")
        let backend = try await SQLiteBackend.open(path: directory.file("datastore.sqlite3").path)
        do {
            let store = try await SQLDatastore(backend: backend, faults: faults)
            let signer = try NoteSigner(name: origin, privateKey: Curve25519.Signing.PrivateKey())
            let log = AuditLog(store: store, signer: signer,
                               configuration: .init(origin: origin, batchLimit: batchLimit, checkpointInterval: interval), logger: Logger(label: "test"))
            // The log's checkpoint work outlives a test body that did not flush; it finishes
            // before the store closes.
            do { try await body(log, store, signer) } catch {
                await log.flush()
                throw error
            }
            await log.flush()
        } catch {
            await backend.close()
            throw error
        }
        await backend.close()
    }

    static func event(_ n: Int) -> AuditEvent {
        AuditEvent(time: Date(timeIntervalSince1970: 1_800_000_000 + Double(n)), type: "svid.x509.issue", actor: .unix(uid: 0, gid: nil, pid: nil),
                   target: AuditTarget(kind: "spiffe_id", id: "spiffe://example.org/w\(n)"), action: "issue", outcome: .allowed)
    }

    @Test func concurrentCallersShareBatchesAndEachHearsItsIndexAfterCommit() async throws {
        try await Self.withLog { log, store, _ in
            let count = 3000
            let indices = try await withThrowingTaskGroup(of: (Int, UInt64).self) { group in
                for n in 0..<count { group.addTask { (n, try await log.record(Self.event(n))) } }
                var out: [Int: UInt64] = [:]
                for try await (n, index) in group {
                    out[n] = index
                    // Acknowledged means committed: the event is in the store under that index.
                    if n % 500 == 0 {
                        let stored = try await store.auditEvents(index..<(index + 1))
                        #expect(stored.first?.body == (try Self.event(n).canonicalBody()), "event \(n) at \(index)")
                    }
                }
                return out
            }
            #expect(Set(indices.values) == Set((0..<UInt64(count))), "every event one index, no gaps")
            await log.flush()
            let statistics = await log.statistics
            print("AuditLogTests: \(count) concurrent events committed in \(statistics.batches) batches (largest \(statistics.largestBatch)), \(statistics.checkpoints) checkpoint(s)")
            #expect(statistics.events == count && statistics.largestBatch <= 1000)
            #expect(statistics.batches >= 3 && statistics.batches < count / 10, "group commit: \(statistics.batches) batches for \(count) events")
            #expect(try await store.auditSize() == UInt64(count))
        }
    }

    /// With a small batch limit, many callers keep two batches in flight (the next one
    /// prepared while the first commits); a caller's several events, spread over batches, still
    /// get increasing indices, and the log holds every event exactly once in that order.
    @Test func overlappingBatchesKeepEachCallersEventsInOrder() async throws {
        try await Self.withLog(batchLimit: 50) { log, store, _ in
            let callers = 40, perCall = 7, rounds = 10
            let results = try await withThrowingTaskGroup(of: [(Int, UInt64)].self) { group in
                for caller in 0..<callers {
                    group.addTask {
                        var out: [(Int, UInt64)] = []
                        for round in 0..<rounds {
                            let first = (caller * rounds + round) * perCall
                            let events = (first..<(first + perCall)).map(Self.event)
                            let indices = try await log.record(events)
                            #expect(indices == indices.sorted() && Set(indices).count == perCall, "one call's events keep their order")
                            out += zip(first..<(first + perCall), indices).map { ($0, $1) }
                        }
                        return out
                    }
                }
                return try await group.reduce(into: [(Int, UInt64)]()) { $0 += $1 }
            }
            let total = callers * perCall * rounds
            #expect(Set(results.map(\.1)) == Set(0..<UInt64(total)), "every event one index, no gaps")
            let stored = try await store.auditEvents(0..<UInt64(total))
            for (n, index) in results where stored[Int(index)].body != (try Self.event(n).canonicalBody()) {
                Issue.record("event \(n) is not at its index \(index)")
                break
            }
            let statistics = await log.statistics
            #expect(statistics.events == total && statistics.largestBatch <= 50 && statistics.failedBatches == 0)
        }
    }

    @Test func aFailedBatchFailsEveryCallerInItAndStoresNothing() async throws {
        let armed = TestSwitch()
        try await Self.withLog(faults: StoreFaults { (point: StoreFaultPoint) throws(StoreError) in
            if point == .beforeCommit, armed.isOn { throw StoreError(.injectedFault, "injected") }
        }) { log, store, _ in
            _ = try await log.record(Self.event(0))
            armed.isOn = true
            let outcomes = await withTaskGroup(of: Bool.self) { group in
                for n in 1...50 { group.addTask { (try? await log.record(Self.event(n))) != nil } }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            armed.isOn = false
            #expect(outcomes.allSatisfy { !$0 }, "no caller of a failed batch hears success")
            #expect(try await store.auditSize() == 1)
            #expect(try await log.record(Self.event(51)) == 1, "the log carries on after a failed batch")
            await #expect(throws: AuditError.self) {
                var bad = Self.event(52)
                bad.type = "Not A Type"
                _ = try await log.record(bad)
            }
            #expect(await log.statistics.failedBatches >= 1)
        }
    }

    /// One call's events are never split across batches, so an operation whose events cannot
    /// be stored leaves none of them: a call larger than a batch is a batch of its own, stored
    /// whole or not at all, and calls beside a limit they would cross wait for the next batch.
    @Test func oneCallsEventsAreStoredTogetherOrNotAtAll() async throws {
        let failNext = TestSwitch()
        try await Self.withLog(faults: StoreFaults { (point: StoreFaultPoint) throws(StoreError) in
            if point == .beforeCommit, failNext.isOn {
                failNext.isOn = false
                throw StoreError(.injectedFault, "injected")
            }
        }, batchLimit: 10) { log, store, _ in
            failNext.isOn = true
            await #expect(throws: StoreError.self) { _ = try await log.record((0..<25).map(Self.event)) }
            #expect(try await store.auditSize() == 0, "no event of the failed call remains (only its first append failed)")
            #expect(try await log.record((100..<125).map(Self.event)) == Array(0..<25))
            let before = await log.statistics
            // Six calls of 7 at once beside a limit of 10: a batch holds one call.
            let indices = try await withThrowingTaskGroup(of: [UInt64].self) { group in
                for call in 0..<6 { group.addTask { try await log.record((0..<7).map { Self.event(1000 + call * 10 + $0) }) } }
                return try await group.reduce(into: [[UInt64]]()) { $0.append($1) }
            }
            let after = await log.statistics
            #expect(indices.allSatisfy { $0 == Array($0[0]..<($0[0] + 7)) }, "each call's events are consecutive: \(indices)")
            #expect(after.batches - before.batches == 6, "one batch per call, none cut")
            #expect(after.largestBatch == 25)
        }
    }

    /// A log that is never idle still signs a checkpoint each interval: 200 callers keep small
    /// batches committing back to back until two checkpoints are stored (or 20 s pass), and
    /// both must come while they still record, not only once they stop.
    @Test func checkpointsAreSignedWhileBatchesKeepCommitting() async throws {
        try await Self.withLog(batchLimit: 50, interval: .milliseconds(200)) { log, store, _ in
            let stop = TestSwitch()
            let started = ContinuousClock.now
            let seen = try await withThrowingTaskGroup(of: Int.self) { group in
                for caller in 0..<200 {
                    group.addTask {
                        var n = caller
                        while !stop.isOn {
                            _ = try await log.record(Self.event(n))
                            n += 200
                        }
                        return 0
                    }
                }
                // Watches the checkpoints while the callers record, then stops them.
                group.addTask {
                    defer { stop.isOn = true }
                    while ContinuousClock.now - started < .seconds(20) {
                        let count = try await store.auditCheckpoints(limit: 10).count
                        if count >= 2 { return count }
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    return 0
                }
                return try await group.reduce(0, +)
            }
            let statistics = await log.statistics
            print("AuditLogTests: \(seen) checkpoints stored during the load, after \(ContinuousClock.now - started); \(statistics.events) events in \(statistics.batches) batches")
            #expect(seen >= 2, "checkpoints are signed while batches keep committing")
        }
    }

    @Test func checkpointsAreSignedAtMostOncePerIntervalAndStayConsistent() async throws {
        try await Self.withLog(interval: .milliseconds(300)) { log, store, signer in
            let started = ContinuousClock.now
            var n = 0
            while ContinuousClock.now - started < .milliseconds(1500) {
                for _ in 0..<20 { _ = try await log.record(Self.event(n)); n += 1 }
            }
            await log.flush()
            let elapsed = ContinuousClock.now - started
            let stored = try await store.auditCheckpoints(limit: 1000).reversed()
            let allowed = Int((elapsed / .milliseconds(300)).rounded(.up)) + 1
            print("AuditLogTests: \(n) events over \(elapsed), \(stored.count) checkpoints (at most \(allowed) at one per 300 ms)")
            #expect(stored.count >= 2 && stored.count <= allowed)
            var previous: Checkpoint? = nil
            for record in stored {
                let (checkpoint, signers) = try Checkpoint.open(record.note, verifiers: [signer.verifier], origin: Self.origin)
                #expect(signers == [signer.verifier] && checkpoint.size == record.size && record.keyID == signer.keyID)
                if let previous {
                    #expect(previous.size < checkpoint.size)
                    let plan = try MerkleProofs.consistencyPlan(oldSize: previous.size, newSize: checkpoint.size)
                    try MerkleProofs.verifyConsistency(oldSize: previous.size, newSize: checkpoint.size, oldRoot: previous.root, newRoot: checkpoint.root,
                                                       proof: try plan.hashes(try await store.auditSubtrees(plan.subtrees)))
                }
                previous = checkpoint
            }
            #expect(previous?.size == UInt64(n), "after flush the latest checkpoint covers every event")
            // The root it signed is the root of the event bodies.
            var range = CompactRange()
            for event in try await store.auditEvents(0..<UInt64(n)) { range.append(MerkleHash.leaf(event.body)) }
            #expect(previous?.root == range.root)
            #expect(try await log.checkpointNow() == nil, "nothing new to sign")
        }
    }
}
