import Foundation
import MerkleLog
import SQLKit
import Testing
@testable import WritStore
import WritStorePostgres
import WritStoreSQLite
import WritTestSupport

/// The audit log's storage on every backend (part of the one conformance suite): indices,
/// subtree hashes that make up the RFC 6962 tree, proofs from one read, search, checkpoints and
/// log keys; concurrent appenders on one database; a failed append leaves nothing.
extension StoreConformanceTests {
    static func auditEvent(_ n: Int, type: String = "entry.create", actor: String = "unix:uid:0", target: String = "", at time: Date = F.now) -> AuditEventRecord {
        AuditEventRecord(body: Array(#"{"n":\#(n),"type":"\#(type)"}"#.utf8), type: type, actor: actor, target: target, time: time)
    }

    /// The tree recomputed from the stored bodies, independently of the stored hashes.
    static func recomputed(_ store: SQLDatastore) async throws -> CompactRange {
        var range = CompactRange()
        let size = try await store.auditSize()
        var next: UInt64 = 0
        while next < size {
            let page = try await store.auditEvents(next..<min(next + 1000, size))
            for event in page {
                #expect(event.index == range.size, "events come back in index order, without gaps")
                range.append(MerkleHash.leaf(event.body))
            }
            next += UInt64(page.count)
            if page.isEmpty { break }
        }
        return range
    }

    @Test(arguments: StoreBackendKind.allCases)
    func auditAppendsBuildTheMerkleTreeAndAnswerProofsInOneRead(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            #expect(try await store.auditSize() == 0)
            #expect(try await store.appendAuditEvents([]) == 0..<0)
            var total = 0
            for (batch, count) in [1, 37, 500, 1, 86].enumerated() {
                let events = (0..<count).map { Self.auditEvent(total + $0, type: batch % 2 == 0 ? "entry.create" : "svid.x509.issue") }
                let range = try await store.appendAuditEvents(events)
                #expect(range == UInt64(total)..<UInt64(total + count))
                total += count
            }
            let size = try await store.auditSize()
            #expect(size == UInt64(total))
            let tree = try await Self.recomputed(store)
            #expect(tree.size == size)
            // Every complete subtree is stored once: 2n − popcount(n) rows.
            let everySubtree = Set((0..<64).flatMap { level in (0..<(size >> UInt64(level))).map { Subtree(level: level, index: $0) } })
            #expect(try await store.auditSubtrees(everySubtree).count == 2 * total - total.nonzeroBitCount)
            let root = try MerkleProofs.root(size: size, try await store.auditSubtrees(MerkleProofs.rootPlan(size: size).subtrees))
            #expect(root == tree.root)
            // Proofs from one lookup each verify against the recomputed roots.
            let bodies = try await store.auditEvents(0..<size).map(\.body)
            var rng = SeededRandom(seed: 17)
            for _ in 0..<40 {
                let n = UInt64.random(in: 1...size, using: &rng), index = UInt64.random(in: 0..<n, using: &rng), old = UInt64.random(in: 1...n, using: &rng)
                let plan = try MerkleProofs.inclusionPlan(index: index, size: n)
                let proof = try plan.hashes(try await store.auditSubtrees(plan.subtrees))
                var prefix = CompactRange()
                for body in bodies[0..<Int(n)] { prefix.append(MerkleHash.leaf(body)) }
                try MerkleProofs.verifyInclusion(leaf: MerkleHash.leaf(bodies[Int(index)]), index: index, size: n, proof: proof, root: prefix.root)
                var oldPrefix = CompactRange()
                for body in bodies[0..<Int(old)] { oldPrefix.append(MerkleHash.leaf(body)) }
                let consistencyPlan = try MerkleProofs.consistencyPlan(oldSize: old, newSize: n)
                let consistency = try consistencyPlan.hashes(try await store.auditSubtrees(consistencyPlan.subtrees))
                try MerkleProofs.verifyConsistency(oldSize: old, newSize: n, oldRoot: oldPrefix.root, newRoot: prefix.root, proof: consistency)
            }
            await Self.expectError(.invalidArgument, "an empty body") { _ = try await store.appendAuditEvents([AuditEventRecord(body: [], type: "t", actor: "a", time: F.now)]) }
            await Self.expectError(.invalidArgument, "no type") { _ = try await store.appendAuditEvents([AuditEventRecord(body: [0x7B, 0x7D], type: "", actor: "a", time: F.now)]) }
            await Self.expectError(.invalidArgument, "a NUL byte") { _ = try await store.appendAuditEvents([AuditEventRecord(body: [0x7B, 0, 0x7D], type: "t", actor: "a", time: F.now)]) }
            #expect(try await store.auditSize() == size, "refused appends add nothing")
        }
    }

    /// Two stores on one database (two servers) and four appenders each: every event gets one
    /// index, none is skipped, and the tree is the tree of the bodies in index order.
    @Test(arguments: StoreBackendKind.allCases)
    func concurrentAppendersOnOneDatabaseLeaveNoGapsOrDuplicates(_ kind: StoreBackendKind) async throws {
        try await Self.withTwoStores(kind) { first, second in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<8 {
                    let store = writer % 2 == 0 ? first : second
                    group.addTask {
                        for batch in 0..<15 {
                            let events = (0..<(1 + (writer * 7 + batch) % 23)).map { Self.auditEvent(writer * 100_000 + batch * 100 + $0, actor: "writer-\(writer)") }
                            _ = try await store.appendAuditEvents(events)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let expected = (0..<8).reduce(0) { sum, writer in sum + (0..<15).reduce(0) { $0 + 1 + (writer * 7 + $1) % 23 } }
            let size = try await first.auditSize()
            #expect(size == UInt64(expected))
            let events = try await second.auditEvents(0..<size)
            #expect(events.map(\.index) == (0..<size).map { Optional($0) })
            #expect(Set(events.map(\.body)).count == expected, "every event stored once")
            let tree = try await Self.recomputed(first)
            #expect(try MerkleProofs.root(size: size, try await second.auditSubtrees(MerkleProofs.rootPlan(size: size).subtrees)) == tree.root)
        }
    }

    /// Batch appends (on SQLite, whole transactions on the store's second connection) and
    /// writes that carry their events in their own transaction (entry creation, on the first)
    /// run at once on one store: each event one index, no gaps, new names shared, and the tree
    /// is the tree of the bodies.
    @Test(arguments: StoreBackendKind.allCases)
    func batchAppendsAndWritesCarryingEventsInterleave(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        for batch in 0..<20 {
                            // Each batch names a new target and one the entries also use.
                            let events = (0..<(5 + batch % 7)).map {
                                Self.auditEvent(writer * 100_000 + batch * 100 + $0, type: "svid.x509.issue", actor: "spiffe://example.org/agent-\(writer)",
                                                target: $0 == 0 ? "shared:\(batch)" : "batch:\(writer):\(batch)")
                            }
                            _ = try await store.appendAuditEvents(events)
                        }
                    }
                    group.addTask {
                        for n in 0..<20 {
                            let entry = F.entry("/interleave/\(writer)/\(n)")
                            _ = try await store.createEntry(entry, at: F.now, audit: [Self.auditEvent(1_000_000 + writer * 100 + n, target: "shared:\(n)")])
                        }
                    }
                }
                try await group.waitForAll()
            }
            let expected = 4 * (0..<20).reduce(0) { $0 + 5 + $1 % 7 } + 4 * 20
            let size = try await store.auditSize()
            #expect(size == UInt64(expected))
            let events = try await store.auditEvents(0..<size)
            #expect(Set(events.map(\.body)).count == expected, "every event stored once")
            let shared = events.filter { $0.target.hasPrefix("shared:") }.count
            #expect(shared == 160, "a name both paths use reads back from both")
            let tree = try await Self.recomputed(store)
            #expect(try MerkleProofs.root(size: size, try await store.auditSubtrees(MerkleProofs.rootPlan(size: size).subtrees)) == tree.root)
        }
    }

    static func withTwoStores(_ kind: StoreBackendKind, _ body: (SQLDatastore, SQLDatastore) async throws -> Void) async throws {
        switch kind {
        case .sqlite:
            let directory = try TemporaryDirectory(prefix: "writ-store")
            let path = directory.file("datastore.sqlite3").path
            // Generous timeouts: this checks index assignment, and suites running beside it can
            // keep the process's threads busy for seconds (SQLiteWriterLockTests checks waiting).
            let a = try await SQLiteBackend.open(path: path, busyTimeout: .seconds(60)), b = try await SQLiteBackend.open(path: path, busyTimeout: .seconds(60))
            do { try await body(try await SQLDatastore(backend: a), try await SQLDatastore(backend: b)) } catch {
                await a.close(); await b.close()
                throw error
            }
            await a.close(); await b.close()
        case .postgres:
            try await F.withPostgresDatabase { url in
                try await PostgresBackend.withBackend(url: url) { a in
                    try await PostgresBackend.withBackend(url: url) { b in
                        try await body(try await SQLDatastore(backend: a), try await SQLDatastore(backend: b))
                    }
                }
            }
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func aFailedAuditAppendLeavesNothing(_ kind: StoreBackendKind) async throws {
        let armed = FaultSwitch()
        try await F.withStore(kind, faults: armed.faults(at: .beforeCommit)) { store in
            _ = try await store.appendAuditEvents((0..<5).map { Self.auditEvent($0) })
            let before = try await store.auditSubtrees(Set((0..<4).flatMap { level in (0..<8).map { Subtree(level: level, index: UInt64($0)) } }))
            armed.isOn = true
            await Self.expectError(.injectedFault, "append with a fault") { _ = try await store.appendAuditEvents((5..<12).map { Self.auditEvent($0) }) }
            armed.isOn = false
            #expect(try await store.auditSize() == 5)
            #expect(try await store.auditSubtrees(Set((0..<4).flatMap { level in (0..<8).map { Subtree(level: level, index: UInt64($0)) } })) == before)
            #expect(try await store.appendAuditEvents((5..<12).map { Self.auditEvent($0) }) == 5..<12)
            let tree = try await Self.recomputed(store)
            #expect(try MerkleProofs.root(size: 12, try await store.auditSubtrees(MerkleProofs.rootPlan(size: 12).subtrees)) == tree.root)
        }
    }

    /// An entry write and its audit event commit together or not at all.
    @Test(arguments: StoreBackendKind.allCases)
    func entryWritesAndTheirAuditEventsCommitTogether(_ kind: StoreBackendKind) async throws {
        let armed = FaultSwitch()
        try await F.withStore(kind, faults: armed.faults(at: .beforeCommit)) { store in
            let entry = F.entry("/audited")
            let created = try await store.createEntry(entry, at: F.now, audit: [Self.auditEvent(0, type: "entry.create", target: "entry:\(entry.id)")])
            var change = created
            change.owner = "team-b"
            let updated = try await store.updateEntry(change, at: F.now, audit: [Self.auditEvent(1, type: "entry.update", target: "entry:\(entry.id)")])
            #expect(try await store.searchAuditEvents(AuditQuery(target: "entry:\(entry.id)")).map(\.type) == ["entry.create", "entry.update"])
            let revision = try await store.currentRevision()

            armed.isOn = true
            let doomed = F.entry("/doomed", selectors: ["unix:uid:77"])
            await Self.expectError(.injectedFault, "create") {
                _ = try await store.createEntry(doomed, at: F.now, audit: [Self.auditEvent(2, type: "entry.create", target: "entry:\(doomed.id)")])
            }
            var again = updated
            again.owner = "team-c"
            await Self.expectError(.injectedFault, "update") { _ = try await store.updateEntry(again, at: F.now, audit: [Self.auditEvent(3, type: "entry.update")]) }
            await Self.expectError(.injectedFault, "delete") {
                _ = try await store.deleteEntry(id: entry.id, revision: nil, at: F.now, audit: [Self.auditEvent(4, type: "entry.delete")])
            }
            armed.isOn = false
            #expect(try await store.entry(id: doomed.id) == nil)
            #expect(try await store.entry(id: entry.id) == updated)
            #expect(try await store.currentRevision() == revision)
            #expect(try await store.auditSize() == 2, "no event of a failed write remains")
            #expect(try await store.auditSubtrees([Subtree(level: 0, index: 2)]).isEmpty, "nor its leaf hash")
            // A malformed event fails the write before it starts.
            await Self.expectError(.invalidArgument, "an empty event") {
                _ = try await store.createEntry(doomed, at: F.now, audit: [AuditEventRecord(body: [], type: "entry.create", actor: "a", time: F.now)])
            }
            #expect(try await store.entry(id: doomed.id) == nil)
            _ = try await store.deleteEntry(id: entry.id, revision: nil, at: F.now, audit: [Self.auditEvent(5, type: "entry.delete", target: "entry:\(entry.id)")])
            #expect(try await store.auditSize() == 3)
            let tree = try await Self.recomputed(store)
            #expect(try MerkleProofs.root(size: 3, try await store.auditSubtrees(MerkleProofs.rootPlan(size: 3).subtrees)) == tree.root)
        }
    }

    /// Every other write that takes audit events (tokens, agents, federated bundles) commits
    /// them with its change; a fault on the audit insert leaves neither.
    @Test(arguments: StoreBackendKind.allCases)
    func everyAuditedWriteCommitsWithItsEvents(_ kind: StoreBackendKind) async throws {
        let armed = FaultSwitch()
        try await F.withStore(kind, faults: armed.faults(at: .auditInsert)) { store in
            var n = 0
            func event(_ type: String) -> [AuditEventRecord] {
                n += 1
                return [Self.auditEvent(n, type: type, target: "probe:\(n)")]
            }
            let token = JoinTokenRecord(id: "t-audit", tokenHash: String(repeating: "a", count: 64), spiffeID: nil, expiresAt: F.now.addingTimeInterval(600))
            let agent = Self.agentRecord("/writ/agent/x509pop/audit", serial: "01", type: "x509pop", canReattest: true)
            let bundle = F.federatedBundle("partner.org")
            // Removals hand the ids they found to the event builder inside their transaction.
            let expiredAgent = try await store.attestAgent(Self.agentRecord("/writ/agent/join_token/expired", expiresIn: -60), at: F.now)
            let expiredEntry = try await store.createEntry(F.entry("/expiring", expiresAt: F.now.addingTimeInterval(10)), at: F.now)
            func removing(_ expected: String, _ events: [AuditEventRecord]) -> AuditEventsForRemoved {
                { ids in
                    guard ids == [expected] else { throw StoreError(.corrupt, "the removal named \(ids), not [\(expected)]") }
                    return events
                }
            }
            // Each write, once with the fault armed (nothing of it may remain) and once without.
            let writes: [(String, (SQLDatastore, [AuditEventRecord]) async throws -> Void, (SQLDatastore) async throws -> Bool)] = [
                ("token.generate", { try await $0.createJoinToken(token, at: F.now, audit: $1) },
                 { try await $0.changes(after: 0, limit: 1000).contains { $0.kind == .joinTokenCreated } }),
                ("node.attest", { _ = try await $0.attestAgent(agent, at: F.now, audit: $1) }, { try await $0.agent(id: agent.id) != nil }),
                ("svid.x509.issue", { _ = try await $0.renewAgent(id: agent.id, fromSerial: "01", toSerial: "02", expiresAt: F.now.addingTimeInterval(3600), at: F.now, audit: $1) },
                 { try await $0.agent(id: agent.id)?.serialNumber == "02" }),
                ("agent.ban", { _ = try await $0.banAgent(id: agent.id, at: F.now, audit: $1) }, { try await $0.agent(id: agent.id)?.banned == true }),
                ("agent.evict", { _ = try await $0.evictAgent(id: agent.id, at: F.now, audit: $1) }, { try await $0.agent(id: agent.id) == nil }),
                ("agent.purge", { _ = try await $0.purgeAgents(expiredBefore: F.now, at: F.now, audit: removing(expiredAgent.id.uri, $1)) },
                 { try await $0.agent(id: expiredAgent.id) == nil }),
                ("entry.delete", { _ = try await $0.pruneExpiredEntries(at: F.now.addingTimeInterval(20), audit: removing(expiredEntry.id, $1)) },
                 { try await $0.entry(id: expiredEntry.id) == nil }),
                ("bundle.set", { _ = try await $0.setFederatedBundle(bundle, at: F.now, audit: $1) }, { try await $0.federatedBundle(bundle.trustDomain) != nil }),
                ("bundle.delete", { _ = try await $0.deleteFederatedBundle(bundle.trustDomain, mode: .restrict, at: F.now, audit: $1) },
                 { try await $0.federatedBundle(bundle.trustDomain) == nil }),
            ]
            for (type, write, done) in writes {
                let size = try await store.auditSize()
                let revision = try await store.currentRevision()
                armed.isOn = true
                await Self.expectError(.injectedFault, "\(type) with a fault on its audit insert") { try await write(store, event(type)) }
                armed.isOn = false
                #expect(try await store.auditSize() == size, "\(type): the event of a failed write remains")
                #expect(try await store.currentRevision() == revision, "\(type): the failed write left a change")
                #expect(try await !done(store), "\(type): the failed write took effect")
                try await write(store, event(type))
                #expect(try await done(store), "\(type): the write did not take effect")
                #expect(try await store.auditSize() == size + 1)
                #expect(try await store.searchAuditEvents(AuditQuery(type: type)).map(\.type) == [type])
            }
            // An event builder that throws rolls its removal back.
            let stale = try await store.attestAgent(Self.agentRecord("/writ/agent/join_token/stale", expiresIn: -60), at: F.now)
            await Self.expectError(.invalidArgument, "a purge whose events cannot be built") {
                _ = try await store.purgeAgents(expiredBefore: F.now, at: F.now) { _ in throw StoreError(.corrupt, "no events") }
            }
            #expect(try await store.agent(id: stale.id) != nil, "the purge took effect without its events")
            let tree = try await Self.recomputed(store)
            #expect(tree.size == UInt64(writes.count))
            #expect(try MerkleProofs.root(size: tree.size, try await store.auditSubtrees(MerkleProofs.rootPlan(size: tree.size).subtrees)) == tree.root)
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func auditSearchUsesTypeActorTargetAndTime(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            let t0 = F.now
            _ = try await store.appendAuditEvents([
                Self.auditEvent(0, type: "svid.x509.issue", actor: "spiffe://example.org/writ/agent/a", target: "spiffe://example.org/web", at: t0),
                Self.auditEvent(1, type: "svid.jwt.issue", actor: "spiffe://example.org/writ/agent/a", target: "spiffe://example.org/web", at: t0.addingTimeInterval(10)),
                Self.auditEvent(2, type: "entry.create", actor: "unix:uid:0", target: "entry-1", at: t0.addingTimeInterval(20)),
                Self.auditEvent(3, type: "svidx", actor: "unix:uid:0", at: t0.addingTimeInterval(30)),
                Self.auditEvent(4, type: "svid.x509.issue", actor: "spiffe://example.org/writ/agent/b", target: "spiffe://example.org/db", at: t0.addingTimeInterval(40)),
            ])
            func indices(_ query: AuditQuery) async throws -> [UInt64] { try await store.searchAuditEvents(query).compactMap(\.index) }
            #expect(try await indices(AuditQuery(type: "svid.x509.issue")) == [0, 4])
            #expect(try await indices(AuditQuery(type: "svid.*")) == [0, 1, 4], "a prefix ends with `*`; `svidx` is not under `svid.`")
            #expect(try await indices(AuditQuery(type: "*")) == [0, 1, 2, 3, 4])
            #expect(try await indices(AuditQuery(actor: "unix:uid:0")) == [2, 3])
            #expect(try await indices(AuditQuery(target: "spiffe://example.org/web")) == [0, 1])
            #expect(try await indices(AuditQuery(since: t0.addingTimeInterval(10), until: t0.addingTimeInterval(40))) == [1, 2, 3])
            #expect(try await indices(AuditQuery(type: "svid.*", actor: "spiffe://example.org/writ/agent/a", since: t0.addingTimeInterval(5))) == [1])
            #expect(try await indices(AuditQuery(afterIndex: 1, limit: 2)) == [2, 3])
            // Names are stored once whatever their role: an agent that is an actor above is the
            // target here, and a search by one role does not find the other.
            _ = try await store.appendAuditEvents([
                Self.auditEvent(5, type: "node.attest", actor: "node:join_token:t1", target: "spiffe://example.org/writ/agent/a", at: t0.addingTimeInterval(50)),
            ])
            #expect(try await indices(AuditQuery(actor: "spiffe://example.org/writ/agent/a")) == [0, 1])
            #expect(try await indices(AuditQuery(target: "spiffe://example.org/writ/agent/a")) == [5])
            #expect(try await indices(AuditQuery(type: "spiffe://*")) == [], "a type prefix matches types, not actors or targets")
            #expect(try await indices(AuditQuery(type: "unix:uid:0")) == [])
            #expect(try await indices(AuditQuery(actor: "spiffe://example.org/writ/agent/unknown")) == [], "a name never seen matches nothing")
            #expect(try await indices(AuditQuery(type: "svid.*", target: "entry-1")) == [])
            let found = try await store.searchAuditEvents(AuditQuery(type: "entry.create"))
            #expect(found == [AuditEventRecord(index: 2, body: Self.auditEvent(2, type: "entry.create").body, type: "entry.create", actor: "unix:uid:0",
                                               target: "entry-1", time: t0.addingTimeInterval(20))], "the stored event comes back whole")
            await Self.expectError(.invalidArgument, "a zero limit") { _ = try await store.searchAuditEvents(AuditQuery(limit: 0)) }
        }
    }

    /// A log written at schema 5 (type, actor and target as strings in every row) is carried
    /// over whole by the step that moves them to `audit_names`: the same events, the same tree,
    /// searches that find them, and appends that go on from there.
    @Test(arguments: StoreBackendKind.allCases)
    func anAuditLogFromSchemaFiveIsCarriedOverWhole(_ kind: StoreBackendKind) async throws {
        try await F.withBackend(kind) { backend in
            let events = (0..<300).map { n in
                Self.auditEvent(n, type: ["svid.x509.issue", "entry.create", "node.attest"][n % 3],
                                actor: n % 3 == 2 ? "node:join_token:\(n)" : "spiffe://example.org/writ/agent/\(n % 7)",
                                target: n % 5 == 0 ? "" : "spiffe://example.org/workload/\(n % 11)", at: F.now.addingTimeInterval(Double(n)))
            }
            var tree = CompactRange()
            try await backend.write { db in
                try await db.raw("CREATE TABLE writ_schema (id BIGINT PRIMARY KEY, version BIGINT NOT NULL)").run()
                for migration in Migration.all where migration.version <= 5 {
                    for statement in migration.statements(for: kind) { try await db.raw(SQLQueryString(statement)).run() }
                }
                try await db.raw("INSERT INTO writ_schema (id, version) VALUES (1, 5)").run()
                // Rows as schema 5's appends wrote them.
                for (index, event) in events.enumerated() {
                    try await db.raw("""
                        INSERT INTO audit_events (leaf_index, body, event_type, actor, target, at_ms)
                        VALUES (\(bind: Int64(index)), \(bind: String(decoding: event.body, as: UTF8.self)), \(bind: event.type), \(bind: event.actor),
                            \(bind: event.target), \(bind: SQLDatastore.milliseconds(event.time)))
                        """).run()
                    for (subtree, hash) in tree.append(MerkleHash.leaf(event.body)) {
                        try await db.raw("""
                            INSERT INTO audit_subtrees (level, subtree_index, hash)
                            VALUES (\(bind: Int64(subtree.level)), \(bind: Int64(subtree.index)), \(bind: Data(hash.bytes)))
                            """).run()
                    }
                }
            }
            let store = try await SQLDatastore(backend: backend)
            #expect(try await store.schemaVersion() == Migration.latestVersion)
            let migrated = try await store.auditEvents(0..<300)
            #expect(migrated == events.enumerated().map { index, event in var event = event; event.index = UInt64(index); return event })
            #expect(try await Self.recomputed(store).root == tree.root)
            #expect(try MerkleProofs.root(size: 300, try await store.auditSubtrees(MerkleProofs.rootPlan(size: 300).subtrees)) == tree.root)
            #expect(try await store.searchAuditEvents(AuditQuery(actor: "spiffe://example.org/writ/agent/3", limit: 5000)).compactMap(\.index)
                    == (0..<300).filter { $0 % 3 != 2 && $0 % 7 == 3 }.map(UInt64.init))
            #expect(try await store.searchAuditEvents(AuditQuery(type: "node.*", limit: 5000)).count == 100)
            // Appends go on with old names and new ones.
            let more = [Self.auditEvent(300, type: "entry.create", actor: "spiffe://example.org/writ/agent/1", target: "spiffe://example.org/workload/4"),
                        Self.auditEvent(301, type: "agent.ban", actor: "unix:uid:0", target: "spiffe://example.org/writ/agent/9")]
            #expect(try await store.appendAuditEvents(more) == 300..<302)
            for event in more { tree.append(MerkleHash.leaf(event.body)) }
            #expect(try await store.auditEvents(300..<302).map(\.target) == more.map(\.target))
            #expect(try await store.searchAuditEvents(AuditQuery(type: "agent.ban")).compactMap(\.index) == [301])
            #expect(try await Self.recomputed(store).root == tree.root)
            #expect(try MerkleProofs.root(size: 302, try await store.auditSubtrees(MerkleProofs.rootPlan(size: 302).subtrees)) == tree.root)
        }
    }

    /// An event whose name row is gone reads as a corrupt store, naming the event, instead of
    /// vanishing from the log.
    @Test(arguments: StoreBackendKind.allCases)
    func anEventWhoseNameIsGoneIsReportedCorrupt(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            _ = try await store.appendAuditEvents([Self.auditEvent(0, actor: "unix:uid:0"), Self.auditEvent(1, actor: "unix:uid:1000")])
            try await store.write("tamper") { db in try await db.raw("DELETE FROM audit_names WHERE name = 'unix:uid:1000'").run() }
            await Self.expectError(.corrupt, "read an event without its actor's name") { _ = try await store.auditEvents(0..<2) }
            #expect(try await store.auditEvents(0..<1).map(\.actor) == ["unix:uid:0"])
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func checkpointsAndLogKeysAreKept(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            _ = try await store.appendAuditEvents((0..<3).map { Self.auditEvent($0) })
            let first = try await store.addAuditCheckpoint(AuditCheckpointRecord(size: 2, note: "note-2", keyName: "example.org/writ/audit", keyID: 0xc74f20a3, signedAt: F.now))
            let second = try await store.addAuditCheckpoint(AuditCheckpointRecord(size: 3, note: "note-3", keyName: "example.org/writ/audit", keyID: 0xffffffff, signedAt: F.now.addingTimeInterval(1)))
            #expect(first.id != nil && second.id != nil && first.id != second.id)
            #expect(try await store.auditCheckpoints(limit: 10) == [second, first], "newest (largest tree) first; key ids keep all 32 bits")
            #expect(try await store.auditCheckpoints(limit: 1) == [second])
            await Self.expectError(.invalidArgument, "a checkpoint beyond the log") {
                _ = try await store.addAuditCheckpoint(AuditCheckpointRecord(size: 4, note: "n", keyName: "k", keyID: 1, signedAt: F.now))
            }

            let a1 = AuditLogKeyRecord(verifierKey: "example.org/writ/audit+00000001+AAAA", serverID: "server-a", createdAt: F.now)
            let a2 = AuditLogKeyRecord(verifierKey: "example.org/writ/audit+00000002+BBBB", serverID: "server-a", createdAt: F.now.addingTimeInterval(60))
            let b1 = AuditLogKeyRecord(verifierKey: "example.org/writ/audit+00000003+CCCC", serverID: "server-b", createdAt: F.now.addingTimeInterval(30))
            _ = try await store.registerAuditLogKey(a1)
            _ = try await store.registerAuditLogKey(b1)
            let keys = try await store.registerAuditLogKey(a2)
            #expect(keys.map(\.verifierKey) == [a1, b1, a2].map(\.verifierKey))
            #expect(keys.map(\.retiredAt) == [a2.createdAt, nil, nil], "a server's older key is retired, never deleted")
            #expect(try await store.registerAuditLogKey(a2) == keys, "registering again changes nothing")
            await Self.expectError(.alreadyExists, "another server's key") {
                _ = try await store.registerAuditLogKey(AuditLogKeyRecord(verifierKey: a1.verifierKey, serverID: "server-b", createdAt: F.now))
            }
            #expect(try await store.auditLogKeys() == keys)
        }
    }
}
