import Foundation
import SPIFFEIdentity
import SQLKit
import Testing
import WritModel
@testable import WritStore
import WritStoreSQLite
import WritTestSupport

/// Every store method, on every backend: SQLite in a temporary file and PostgreSQL on the server
/// `scripts/test` starts (each test in a database of its own).
@Suite struct StoreConformanceTests {
    typealias F = StoreFixture

    static func expectError(_ code: StoreError.Code, _ what: String, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("\(what): succeeded, expected \(code.rawValue)")
        } catch let error as StoreError {
            #expect(error.code == code, "\(what): \(error)")
            #expect(!error.message.isEmpty)
        } catch {
            Issue.record("\(what): \(error), expected a StoreError \(code.rawValue)")
        }
    }

    // MARK: schema

    @Test(arguments: StoreBackendKind.allCases)
    func schemaIsMigratedOnceAndANewerOneIsRefused(_ kind: StoreBackendKind) async throws {
        try await F.withBackend(kind) { backend in
            let store = try await SQLDatastore(backend: backend)
            #expect(try await store.schemaVersion() == Migration.latestVersion)
            _ = try await store.createEntry(F.entry("/a"), at: F.now)
            // Opening again applies nothing and loses nothing.
            let again = try await SQLDatastore(backend: backend)
            #expect(try await again.schemaVersion() == Migration.latestVersion)
            #expect(try await again.countEntries(EntryFilter()) == 1)
            try await backend.write { db in try await db.raw("UPDATE writ_schema SET version = 99 WHERE id = 1").run() }
            await Self.expectError(.schemaTooNew, "open a newer schema") { _ = try await SQLDatastore(backend: backend) }
        }
    }

    // MARK: entries

    @Test(arguments: StoreBackendKind.allCases)
    func entriesRoundTripEveryField(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            _ = try await store.setFederatedBundle(F.federatedBundle("partner.org"), at: F.now)
            var entry = F.entry("/svc/api", selectors: ["unix:uid:1000", "unix:path:/usr/bin/api"], labels: ["kind": "agent", "model": "m-1"],
                                expiresAt: F.now.addingTimeInterval(86400), federatesWith: ["partner.org"])
            entry.admin = true
            entry.downstream = true
            let created = try await store.createEntry(entry, at: F.now)
            #expect(created.revision > 0)
            #expect(created.createdAt == F.now && created.updatedAt == F.now)
            let read = try #require(try await store.entry(id: entry.id))
            #expect(read == created)
            #expect(read.selectors == [F.selector("unix:path:/usr/bin/api"), F.selector("unix:uid:1000")])
            #expect(read.labels == ["kind": "agent", "model": "m-1"] && read.owner == "team-a")
            #expect(read.dnsNames == ["svc.example.org"] && read.federatesWith.map(\.name) == ["partner.org"])
            #expect(read.x509SVIDTTL == 600 && read.jwtSVIDTTL == 300 && read.admin && read.downstream && read.hint == "h")
            #expect(try await store.entry(id: "absent") == nil)
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func duplicatesAreRefused(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            let first = try await store.createEntry(F.entry("/a", selectors: ["unix:uid:1", "unix:gid:2"]), at: F.now)
            await Self.expectError(.alreadyExists, "same id") { _ = try await store.createEntry(F.entry("/b", id: first.id), at: F.now) }
            // Same SPIFFE ID, parent and selector set (in another order): a duplicate.
            await Self.expectError(.alreadyExists, "same identity") {
                _ = try await store.createEntry(F.entry("/a", selectors: ["unix:gid:2", "unix:uid:1"]), at: F.now)
            }
            _ = try await store.createEntry(F.entry("/a", selectors: ["unix:uid:1"]), at: F.now)
            _ = try await store.createEntry(F.entry("/a", parent: F.id("/writ/agent/join_token/t2"), selectors: ["unix:uid:1", "unix:gid:2"]), at: F.now)
            #expect(try await store.countEntries(EntryFilter()) == 3)
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func updatesCarryARevision(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            let created = try await store.createEntry(F.entry("/a"), at: F.now)
            let other = try await store.createEntry(F.entry("/b"), at: F.now)
            var change = created
            change.selectors = [F.selector("unix:uid:7")]
            change.owner = "team-b"
            let later = F.now.addingTimeInterval(5)
            let updated = try await store.updateEntry(change, at: later)
            #expect(updated.revision > other.revision)
            #expect(updated.createdAt == F.now && updated.updatedAt == later)
            #expect(try await store.entry(id: created.id) == updated)
            // The old revision is stale now.
            await Self.expectError(.conflict, "stale revision") { _ = try await store.updateEntry(change, at: later) }
            var gone = change
            gone.id = "absent"
            await Self.expectError(.notFound, "update absent") { _ = try await store.updateEntry(gone, at: later) }
            // An update may not make it a duplicate of another entry.
            var collide = other
            collide.spiffeID = updated.spiffeID
            collide.selectors = updated.selectors
            await Self.expectError(.alreadyExists, "update into a duplicate") { _ = try await store.updateEntry(collide, at: later) }
            #expect(try await store.entry(id: other.id) == other)
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func concurrentConflictingUpdatesExactlyOneWins(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            let created = try await store.createEntry(F.entry("/a"), at: F.now)
            let outcomes = await withTaskGroup(of: StoreError.Code?.self) { group in
                for n in 0..<10 {
                    group.addTask {
                        var change = created
                        change.owner = "writer-\(n)"
                        do { _ = try await store.updateEntry(change, at: F.now); return nil } catch { return (error as? StoreError)?.code ?? .unavailable }
                    }
                }
                var all: [StoreError.Code?] = []
                for await outcome in group { all.append(outcome) }
                return all
            }
            #expect(outcomes.filter { $0 == nil }.count == 1, "\(outcomes)")
            #expect(outcomes.filter { $0 == .conflict }.count == 9, "\(outcomes)")
            let final = try #require(try await store.entry(id: created.id))
            #expect(final.owner.hasPrefix("writer-") && final.revision > created.revision)
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func deletesRemoveTheEntryAndItsSelectors(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            let created = try await store.createEntry(F.entry("/a", selectors: ["unix:uid:1", "unix:gid:1"]), at: F.now)
            await Self.expectError(.conflict, "delete at a stale revision") { _ = try await store.deleteEntry(id: created.id, revision: created.revision - 1, at: F.now) }
            let deleted = try await store.deleteEntry(id: created.id, revision: created.revision, at: F.now)
            #expect(deleted == created)
            #expect(try await store.entry(id: created.id) == nil)
            await Self.expectError(.notFound, "delete twice") { _ = try await store.deleteEntry(id: created.id, revision: nil, at: F.now) }
            #expect(try await store.listEntries(EntryQuery(filter: EntryFilter(selectors: [F.selector("unix:uid:1")], match: .any))).entries.isEmpty)
            // The same identity can be registered again.
            _ = try await store.createEntry(F.entry("/a", selectors: ["unix:uid:1", "unix:gid:1"]), at: F.now)
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func listFiltersEveryWay(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            let node = F.id("/writ/agent/x509pop/abc")
            let a = try await store.createEntry(F.entry("/a", selectors: ["unix:uid:1"], owner: "alice", labels: ["kind": "agent"], id: "a"), at: F.now)
            let b = try await store.createEntry(F.entry("/b", selectors: ["unix:uid:1", "unix:gid:2"], owner: "bob", labels: ["kind": "job"], id: "b"), at: F.now)
            let c = try await store.createEntry(F.entry("/c", parent: node, selectors: ["unix:gid:2", "unix:user:svc"], owner: "alice", id: "c"), at: F.now)
            let d = try await store.createEntry(F.entry("/a", selectors: ["unix:user:svc"], owner: "carol", labels: ["kind": "agent"], id: "d"), at: F.now)
            func ids(_ filter: EntryFilter) async throws -> [String] {
                let listed = try await store.listEntries(EntryQuery(filter: filter)).entries.map(\.id)
                #expect(try await store.countEntries(filter) == listed.count, "count differs from list for \(filter)")
                return listed
            }
            let uid1 = F.selector("unix:uid:1"), gid2 = F.selector("unix:gid:2"), svc = F.selector("unix:user:svc")
            #expect(try await ids(EntryFilter()) == ["a", "b", "c", "d"])
            #expect(try await ids(EntryFilter(selectors: [uid1, gid2], match: .exact)) == ["b"])
            #expect(try await ids(EntryFilter(selectors: [uid1, gid2], match: .subset)) == ["a", "b"])
            #expect(try await ids(EntryFilter(selectors: [uid1], match: .superset)) == ["a", "b"])
            #expect(try await ids(EntryFilter(selectors: [gid2], match: .superset)) == ["b", "c"])
            #expect(try await ids(EntryFilter(selectors: [uid1, svc], match: .any)) == ["a", "b", "c", "d"])
            #expect(try await ids(EntryFilter(selectors: [svc], match: .exact)) == ["d"])
            #expect(try await ids(EntryFilter(spiffeID: F.id("/a"))) == ["a", "d"])
            #expect(try await ids(EntryFilter(parentID: node)) == ["c"])
            #expect(try await ids(EntryFilter(owner: "alice")) == ["a", "c"])
            #expect(try await ids(EntryFilter(labels: ["kind": "agent"])) == ["a", "d"])
            #expect(try await ids(EntryFilter(spiffeID: F.id("/a"), selectors: [uid1], match: .superset, owner: "alice", labels: ["kind": "agent"])) == ["a"])
            #expect(try await ids(EntryFilter(owner: "nobody")) == [])
            _ = (a, b, c, d)
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func pageSizesAndTokensAreChecked(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            for n in 0..<105 { _ = try await store.createEntry(F.entry("/w/\(n)", id: String(format: "e%03d", n)), at: F.now) }
            let first = try await store.listEntries(EntryQuery())
            #expect(first.entries.count == 100 && first.nextPageToken != nil)
            let second = try await store.listEntries(EntryQuery(pageToken: first.nextPageToken))
            #expect(second.entries.map(\.id) == (100..<105).map { String(format: "e%03d", $0) } && second.nextPageToken == nil)
            let exact = try await store.listEntries(EntryQuery(pageSize: 105))
            #expect(exact.entries.count == 105 && exact.nextPageToken == nil, "a last full page carries no token")
            for size in [0, -1, 1001] {
                await Self.expectError(.invalidArgument, "page size \(size)") { _ = try await store.listEntries(EntryQuery(pageSize: size)) }
            }
            for token in ["!!", "ZW50cnk6", "bm90LWFuLWVudHJ5", String(repeating: "A", count: 400)] {
                await Self.expectError(.invalidArgument, "page token \(token.prefix(10))") { _ = try await store.listEntries(EntryQuery(pageToken: token)) }
            }
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func paginationIsStableUnderConcurrentInserts(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            let originals = (0..<300).map { String(format: "m%04d", $0 * 2) }
            for id in originals { _ = try await store.createEntry(F.entry("/o/\(id)", id: id), at: F.now) }
            // Pages are read while another task inserts entries between and around them.
            let seen = try await withThrowingTaskGroup(of: [String].self) { group in
                group.addTask {
                    for n in 0..<150 {
                        let id = n % 3 == 0 ? String(format: "a%04d", n) : String(format: "m%04d", n * 4 + 1)
                        _ = try await store.createEntry(F.entry("/n/\(id)", id: id), at: F.now)
                    }
                    return []
                }
                group.addTask {
                    var ids: [String] = []
                    var token: String?
                    repeat {
                        let page = try await store.listEntries(EntryQuery(pageSize: 25, pageToken: token))
                        ids += page.entries.map(\.id)
                        token = page.nextPageToken
                        await Task.yield()
                    } while token != nil
                    return ids
                }
                var all: [[String]] = []
                for try await ids in group { all.append(ids) }
                return all.max { $0.count < $1.count }!
            }
            #expect(seen == seen.sorted(), "pages are in id order")
            #expect(Set(seen).count == seen.count, "no entry appears twice")
            #expect(Set(originals).isSubset(of: Set(seen)), "every entry present before the listing began is listed")
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func expiredEntriesArePruned(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            let old = try await store.createEntry(F.entry("/old", expiresAt: F.now.addingTimeInterval(10)), at: F.now)
            let edge = try await store.createEntry(F.entry("/edge", expiresAt: F.now.addingTimeInterval(60)), at: F.now)
            let keep = try await store.createEntry(F.entry("/keep", expiresAt: F.now.addingTimeInterval(61)), at: F.now)
            let forever = try await store.createEntry(F.entry("/forever"), at: F.now)
            #expect(try await store.pruneExpiredEntries(at: F.now.addingTimeInterval(60)).sorted() == [old.id, edge.id].sorted())
            #expect(try await store.entry(id: old.id) == nil)
            #expect(try await store.entry(id: edge.id) == nil)
            #expect(try await store.entry(id: keep.id) != nil)
            #expect(try await store.entry(id: forever.id) != nil)
            let deletions = try await store.changes(after: forever.revision, limit: 10)
            #expect(Set(deletions.map(\.recordID)) == [old.id, edge.id] && deletions.allSatisfy { $0.kind == .entryDeleted })
        }
    }

    // MARK: change feed

    @Test(arguments: StoreBackendKind.allCases)
    func theChangeFeedListsEveryWriteInOrder(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            #expect(try await store.currentRevision() == 0)
            let a = try await store.createEntry(F.entry("/a"), at: F.now)
            var change = a
            change.owner = "x"
            let updated = try await store.updateEntry(change, at: F.now)
            let b = try await store.createEntry(F.entry("/b"), at: F.now)
            _ = try await store.deleteEntry(id: a.id, revision: nil, at: F.now)
            try await store.createJoinToken(JoinTokenRecord(id: "t1", tokenHash: String(repeating: "a", count: 64), expiresAt: F.now.addingTimeInterval(60)), at: F.now)
            let all = try await store.changes(after: 0, limit: 100)
            #expect(all.map(\.kind) == [.entryCreated, .entryUpdated, .entryCreated, .entryDeleted, .joinTokenCreated])
            #expect(all.map(\.recordID) == [a.id, a.id, b.id, a.id, "t1"])
            #expect(zip(all, all.dropFirst()).allSatisfy { $0.revision < $1.revision })
            #expect([a.revision, updated.revision, b.revision] == Array(all.prefix(3).map(\.revision)))
            #expect(try await store.currentRevision() == all.last!.revision)
            // Resuming from any revision gives exactly the rest.
            for (index, change) in all.enumerated() {
                #expect(try await store.changes(after: change.revision, limit: 100) == Array(all.dropFirst(index + 1)))
            }
            #expect(try await store.changes(after: 0, limit: 2) == Array(all.prefix(2)))
            await Self.expectError(.invalidArgument, "limit 0") { _ = try await store.changes(after: 0, limit: 0) }
        }
    }

    // MARK: failures leave nothing behind

    @Test(arguments: StoreBackendKind.allCases)
    func anInjectedFailureRollsBackTheWholeWrite(_ kind: StoreBackendKind) async throws {
        // (`auditInsert` is reached only by writes that carry events: StoreConformanceTests+Audit.)
        for point in StoreFaultPoint.allCases where point != .auditInsert {
            let armed = FaultSwitch()
            let faults = armed.faults(at: point)
            try await F.withStore(kind, faults: faults) { store in
                let kept = try await store.createEntry(F.entry("/kept", selectors: ["unix:uid:1"]), at: F.now)
                let revision = try await store.currentRevision()
                armed.isOn = true
                let doomed = F.entry("/doomed", selectors: ["unix:uid:2", "unix:gid:3"])
                await Self.expectError(.injectedFault, "create with a fault \(point)") { _ = try await store.createEntry(doomed, at: F.now) }
                var change = kept
                change.selectors = [F.selector("unix:uid:9")]
                change.owner = "changed"
                await Self.expectError(.injectedFault, "update with a fault \(point)") { _ = try await store.updateEntry(change, at: F.now) }
                if point != .afterEntryRow {
                    await Self.expectError(.injectedFault, "delete with a fault \(point)") { _ = try await store.deleteEntry(id: kept.id, revision: nil, at: F.now) }
                }
                armed.isOn = false
                #expect(try await store.entry(id: doomed.id) == nil, "\(point): the failed create left its entry")
                #expect(try await store.entry(id: kept.id) == kept, "\(point): the failed update or delete changed the entry")
                #expect(try await store.currentRevision() == revision, "\(point): a failed write left a change")
                let bySelector = try await store.listEntries(EntryQuery(filter: EntryFilter(selectors: [F.selector("unix:uid:2"), F.selector("unix:uid:9")], match: .any)))
                #expect(bySelector.entries.isEmpty, "\(point): selectors of a failed write remain")
                // The store still works.
                _ = try await store.createEntry(doomed, at: F.now)
            }
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func aCorruptRowIsReportedNotServed(_ kind: StoreBackendKind) async throws {
        try await F.withBackend(kind) { backend in
            let store = try await SQLDatastore(backend: backend)
            let entry = try await store.createEntry(F.entry("/a"), at: F.now)
            try await backend.write { db in try await db.raw("UPDATE entries SET spiffe_id = \(bind: "not a spiffe id") WHERE id = \(bind: entry.id)").run() }
            await Self.expectError(.corrupt, "read a corrupt row") { _ = try await store.entry(id: entry.id) }
        }
    }

    // MARK: backup

    @Test(arguments: StoreBackendKind.allCases)
    func backupCopiesSQLiteAndRefersPostgresToPgDump(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            let entry = try await store.createEntry(F.entry("/a", selectors: ["unix:uid:1", "unix:gid:2"]), at: F.now)
            let directory = try TemporaryDirectory(prefix: "writ-backup")
            let target = directory.file("copy.sqlite3").path
            await Self.expectError(.invalidArgument, "relative path") { try await store.backup(to: "copy.sqlite3") }
            guard kind == .sqlite else {
                await Self.expectError(.invalidArgument, "postgres backup") { try await store.backup(to: target) }
                return
            }
            try await store.backup(to: target)
            await Self.expectError(.alreadyExists, "overwrite") { try await store.backup(to: target) }
            let copy = try await SQLDatastore(backend: try await SQLiteBackend.open(path: target))
            #expect(try await copy.entry(id: entry.id) == entry)
            #expect(try await copy.currentRevision() == store.currentRevision())
            await copy.close()
        }
    }

    // MARK: join tokens

    @Test(arguments: StoreBackendKind.allCases)
    func joinTokensAreSingleUse(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            let hash = String(repeating: "b", count: 64)
            let token = JoinTokenRecord(id: "tok-1", tokenHash: hash, spiffeID: F.id("/node/alias"), expiresAt: F.now.addingTimeInterval(600))
            try await store.createJoinToken(token, at: F.now)
            await Self.expectError(.alreadyExists, "same token twice") { try await store.createJoinToken(token, at: F.now) }
            let used = try await store.consumeJoinToken(hash: hash, at: F.now.addingTimeInterval(1))
            #expect(used.id == "tok-1" && used.spiffeID == F.id("/node/alias") && used.createdAt == F.now)
            await Self.expectError(.tokenRejected, "reuse") { _ = try await store.consumeJoinToken(hash: hash, at: F.now.addingTimeInterval(2)) }
            await Self.expectError(.tokenRejected, "unknown") { _ = try await store.consumeJoinToken(hash: String(repeating: "c", count: 64), at: F.now) }
            let expiring = JoinTokenRecord(id: "tok-2", tokenHash: String(repeating: "d", count: 64), expiresAt: F.now.addingTimeInterval(60))
            try await store.createJoinToken(expiring, at: F.now)
            await Self.expectError(.tokenRejected, "expired") { _ = try await store.consumeJoinToken(hash: expiring.tokenHash, at: F.now.addingTimeInterval(60)) }
            #expect(try await store.pruneJoinTokens(at: F.now.addingTimeInterval(60)) == 1)
            #expect(try await store.pruneJoinTokens(at: F.now.addingTimeInterval(60)) == 0)
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func tenConcurrentUsesOfOneTokenExactlyOneSucceeds(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            let hash = String(repeating: "e", count: 64)
            try await store.createJoinToken(JoinTokenRecord(id: "race", tokenHash: hash, expiresAt: F.now.addingTimeInterval(600)), at: F.now)
            let results = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<10 {
                    group.addTask { (try? await store.consumeJoinToken(hash: hash, at: F.now)) != nil }
                }
                var wins = 0
                for await won in group where won { wins += 1 }
                return wins
            }
            #expect(results == 1)
        }
    }
}

/// A switch tests flip to arm an injected fault.
typealias FaultSwitch = TestSwitch

extension TestSwitch {
    /// Faults that fail every write reaching `point` while the switch is on.
    func faults(at point: StoreFaultPoint) -> StoreFaults {
        StoreFaults { (reached: StoreFaultPoint) throws(StoreError) in
            if reached == point, self.isOn { throw StoreError(.injectedFault, "fault injected at \(reached.rawValue)") }
        }
    }
}
