import Foundation
import MerkleLog
import SQLKit

/// One audit event as the log stores it: the canonical bytes that are hashed into the tree,
/// and the columns it is found by.
public struct AuditEventRecord: Sendable, Hashable {
    /// Its leaf index; nil until appended.
    public var index: UInt64?
    /// The event's canonical JSON (RFC 8785), exactly the bytes of its leaf.
    public var body: [UInt8]
    public var type: String
    /// The actor as one string (`spiffe://…`, `unix:uid:0`, `node:…`).
    public var actor: String
    /// What the event is about (an entry id, a SPIFFE ID, …); empty when nothing.
    public var target: String
    public var time: Date

    public init(index: UInt64? = nil, body: [UInt8], type: String, actor: String, target: String = "", time: Date) {
        self.index = index
        self.body = body
        self.type = type
        self.actor = actor
        self.target = target
        self.time = time
    }
}

/// The audit events of a write that removes records it finds itself (expired entries, expired
/// agents): called inside the write's transaction with the removed records' ids (never with
/// none), so the events name exactly what was removed and commit with the removal. A throw
/// rolls the write back.
public typealias AuditEventsForRemoved = @Sendable (_ removedIDs: [String]) throws -> [AuditEventRecord]

/// What to look for in the audit log; every field given must match. Results come in index
/// order, after `afterIndex` when given, at most `limit`.
public struct AuditQuery: Sendable, Hashable {
    /// An exact type, or a prefix ending in `*` (`svid.*`).
    public var type: String?
    public var actor: String?
    public var target: String?
    public var since: Date?
    public var until: Date?
    public var afterIndex: UInt64?
    public var limit: Int

    public init(type: String? = nil, actor: String? = nil, target: String? = nil, since: Date? = nil, until: Date? = nil,
                afterIndex: UInt64? = nil, limit: Int = 1000) {
        self.type = type
        self.actor = actor
        self.target = target
        self.since = since
        self.until = until
        self.afterIndex = afterIndex
        self.limit = limit
    }
}

/// A signed checkpoint as stored: the note and who signed it.
public struct AuditCheckpointRecord: Sendable, Hashable {
    public var id: Int64?
    public var size: UInt64
    /// The whole signed note (C2SP checkpoint text and signature lines).
    public var note: String
    public var keyName: String
    public var keyID: UInt32
    public var signedAt: Date

    public init(id: Int64? = nil, size: UInt64, note: String, keyName: String, keyID: UInt32, signedAt: Date) {
        self.id = id
        self.size = size
        self.note = note
        self.keyName = keyName
        self.keyID = keyID
        self.signedAt = signedAt
    }
}

/// A server's log key: its verifier key string (C2SP signed-note `name+id+key`), when it was
/// registered and, once the server moved to another key, when it was retired.
public struct AuditLogKeyRecord: Sendable, Hashable {
    public var verifierKey: String
    public var serverID: String
    public var createdAt: Date
    public var retiredAt: Date?

    public init(verifierKey: String, serverID: String, createdAt: Date, retiredAt: Date? = nil) {
        self.verifierKey = verifierKey
        self.serverID = serverID
        self.createdAt = createdAt
        self.retiredAt = retiredAt
    }
}

/// The audit log on SQL: `audit_events` holds the bodies and leaf hashes with the ids of their
/// type, actor and target (the strings are stored once, in `audit_names`), `audit_subtrees`
/// the hash of every complete subtree above the leaves (n − popcount(n) rows for n events), so
/// appending reads only the right edge and a proof or a root reads O(log n) rows in one query.
extension SQLDatastore {
    /// The most events one append takes (a group-commit batch is at most 1,000).
    public static let maximumAuditBatch = 10_000

    public func appendAuditEvents(_ events: [AuditEventRecord]) async throws(StoreError) -> Range<UInt64> {
        try await appendAuditEvents(try prepareAuditEvents(events))
    }

    /// Checks the events, hashes their leaves and builds their rows (with the name ids this
    /// store has cached).
    public func prepareAuditEvents(_ events: [AuditEventRecord]) throws(StoreError) -> PreparedAuditEvents {
        try Self.checkAuditBatchSize(events.count)
        // prepareAudit checks each event as it builds its row.
        return PreparedAuditEvents(events: events, work: try prepareAudit(events))
    }

    public func appendAuditEvents(_ prepared: PreparedAuditEvents) async throws(StoreError) -> Range<UInt64> {
        // Work another store prepared (its cached name ids are its database's) is not used:
        // start again from the events.
        guard var batch = prepared.work as? PreparedAuditBatch, batch.store == ObjectIdentifier(self) else {
            return try await appendAuditEvents(try prepareAuditEvents(prepared.events))
        }
        if batch.events.isEmpty {
            let size = try await auditSize()
            return size..<size
        }
        // In one piece where the backend can (SQLite: one job on its thread, statements kept
        // prepared), else statement by statement.
        let work = batch
        let done = try await run("write", "append audit events") {
            try await backend.writeSynchronously { transaction in
                var batch = work
                var names: [String: Int64] = [:]
                let range = try self.appendAudit(&batch, in: transaction, learning: &names)
                try self.fault(.beforeCommit)
                return (range, names)
            }
        }
        let (range, names): (Range<UInt64>, [String: Int64])
        if let done {
            (range, names) = done
        } else {
            (range, names) = try await write("append audit events") { db in
                var names: [String: Int64] = [:]
                let range = try await self.appendAudit(&batch, in: db, learning: &names)
                try self.fault(.beforeCommit)
                return (range, names)
            }
        }
        // Committed: these ids are in the table for good.
        auditNames.learn(names)
        return range
    }

    static func checkAuditEvents(_ events: [AuditEventRecord]) throws(StoreError) {
        try checkAuditBatchSize(events.count)
        for event in events { _ = try checkAuditEvent(event) }
    }

    private static func checkAuditBatchSize(_ count: Int) throws(StoreError) {
        guard count <= maximumAuditBatch else { throw StoreError(.invalidArgument, "at most \(maximumAuditBatch) audit events per append, given \(count)") }
    }

    /// The events a removal's ``AuditEventsForRemoved`` built for `ids`, checked (one removal
    /// may remove more records than one append takes, so only the events themselves are).
    static func auditEvents(removing ids: [String], _ audit: AuditEventsForRemoved) throws(StoreError) -> [AuditEventRecord] {
        guard !ids.isEmpty else { return [] }
        let events: [AuditEventRecord]
        do { events = try audit(ids) } catch {
            throw StoreError(.invalidArgument, "the audit events of the removal could not be built", cause: error)
        }
        for event in events { _ = try checkAuditEvent(event) }
        return events
    }

    /// Checks one event; returns its body as text (what its row stores).
    private static func checkAuditEvent(_ event: AuditEventRecord) throws(StoreError) -> String {
        guard !event.body.isEmpty else { throw StoreError(.invalidArgument, "an audit event needs a body") }
        guard let text = String(validating: event.body, as: UTF8.self), !event.body.contains(0) else {
            throw StoreError(.invalidArgument, "an audit event body is UTF-8 JSON without NUL bytes")
        }
        guard !event.type.isEmpty, !event.actor.isEmpty else { throw StoreError(.invalidArgument, "an audit event needs a type and an actor") }
        return text
    }

    /// Appends inside the caller's write transaction (so an operation and its event commit
    /// together); the write lock makes the size read here the size at commit.
    func appendAudit(_ events: [AuditEventRecord], in db: any SQLDatabase) async throws -> Range<UInt64> {
        var prepared = try prepareAudit(events)
        var names: [String: Int64] = [:]
        return try await appendAudit(&prepared, in: db, learning: &names)
    }

    /// An append's work that needs no lock: each event's leaf hash and row (its index still to
    /// be filled in), with the name ids the cache knows.
    struct PreparedAuditBatch: Sendable {
        /// The store that prepared it.
        let store: ObjectIdentifier
        var events: [AuditEventRecord]
        var leaves: [MerkleHash]
        /// `leaf_index` (0 until appended), body, type, actor and target ids (0 when not
        /// cached), `at_ms`, `leaf_hash`.
        var rows: [[SQLRowValue]]
        /// Names the cache does not know.
        var missing: Set<String>
    }

    /// Checks each event (``checkAuditEvent``) as it builds its row.
    func prepareAudit(_ events: [AuditEventRecord]) throws(StoreError) -> PreparedAuditBatch {
        let ids = auditNames.ids(for: events)
        var prepared = PreparedAuditBatch(store: ObjectIdentifier(self), events: events, leaves: [], rows: [], missing: [])
        prepared.leaves.reserveCapacity(events.count)
        prepared.rows.reserveCapacity(events.count)
        func id(_ name: String) -> SQLRowValue {
            if let id = ids[name] { return .integer(id) }
            prepared.missing.insert(name)
            return .integer(0)
        }
        for event in events {
            let leaf = MerkleHash.leaf(event.body)
            prepared.leaves.append(leaf)
            prepared.rows.append([.integer(0), .text(try Self.checkAuditEvent(event)), id(event.type), id(event.actor), id(event.target),
                                  .integer(Self.milliseconds(event.time)), .blob(leaf.bytes)])
        }
        return prepared
    }

    /// Appends a prepared batch inside the caller's write transaction, adding to `learned` the
    /// name ids it read or added: the caller that commits the transaction may cache them.
    func appendAudit(_ prepared: inout PreparedAuditBatch, in db: any SQLDatabase, learning learned: inout [String: Int64]) async throws -> Range<UInt64> {
        guard !prepared.events.isEmpty else { return 0..<0 }
        let size = try await Self.auditSize(db)
        var range = try CompactRange(size: size, lookup: try await Self.subtrees(Set(Subtree.covering(0..<size)), in: db))
        if !prepared.missing.isEmpty {
            var found = try await Self.auditNameIDs(prepared.missing, in: db)
            let new = prepared.missing.filter { found[$0] == nil }.sorted()
            if !new.isEmpty {
                let last = try await db.raw("SELECT COALESCE(MAX(id), 0) AS n FROM audit_names").first()?.decode(column: "n", as: Int64.self) ?? 0
                let (ids, rows) = Self.numberAuditNames(new, after: last)
                try await backend.insert(into: "audit_names", columns: ["id", "name"], rows: rows, in: db)
                found.merge(ids) { old, _ in old }
            }
            Self.useAuditNameIDs(found, in: &prepared, learning: &learned)
        }
        let subtreeRows = Self.placeAuditRows(&prepared, on: &range)
        try await backend.insert(into: "audit_events", columns: Self.auditEventColumns, rows: prepared.rows, in: db)
        try await backend.insert(into: "audit_subtrees", columns: Self.auditSubtreeColumns, rows: subtreeRows, in: db)
        try fault(.auditInsert)
        return size..<range.size
    }

    /// The same append through a backend's synchronous transaction: the same reads and rows,
    /// each read a lookup by key (a stored subtree, a name) with a statement kept prepared.
    func appendAudit(_ prepared: inout PreparedAuditBatch, in transaction: any SQLSyncTransaction,
                     learning learned: inout [String: Int64]) throws -> Range<UInt64> {
        guard !prepared.events.isEmpty else { return 0..<0 }
        let size = UInt64(try transaction.integer("SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM audit_events", []) ?? 0)
        var stored: [Subtree: MerkleHash] = [:]
        for subtree in Subtree.covering(0..<size) {
            let bytes = subtree.level == 0
                ? try transaction.blob("SELECT leaf_hash FROM audit_events WHERE leaf_index = ?", [.integer(Int64(subtree.index))])
                : try transaction.blob("SELECT hash FROM audit_subtrees WHERE level = ? AND subtree_index = ?",
                                       [.integer(Int64(subtree.level)), .integer(Int64(subtree.index))])
            guard let bytes else { continue }
            guard let hash = MerkleHash(bytes: bytes) else { throw StoreError(.corrupt, "the stored hash of audit subtree \(subtree) is not 32 bytes") }
            stored[subtree] = hash
        }
        var range = try CompactRange(size: size, lookup: stored)
        if !prepared.missing.isEmpty {
            var found: [String: Int64] = [:]
            for name in prepared.missing {
                if let id = try transaction.integer("SELECT id FROM audit_names WHERE name = ?", [.text(name)]) { found[name] = id }
            }
            let new = prepared.missing.filter { found[$0] == nil }.sorted()
            if !new.isEmpty {
                let (ids, rows) = Self.numberAuditNames(new, after: try transaction.integer("SELECT COALESCE(MAX(id), 0) FROM audit_names", []) ?? 0)
                try transaction.insert(into: "audit_names", columns: ["id", "name"], rows: rows)
                found.merge(ids) { old, _ in old }
            }
            Self.useAuditNameIDs(found, in: &prepared, learning: &learned)
        }
        let subtreeRows = Self.placeAuditRows(&prepared, on: &range)
        try transaction.insert(into: "audit_events", columns: Self.auditEventColumns, rows: prepared.rows)
        try transaction.insert(into: "audit_subtrees", columns: Self.auditSubtreeColumns, rows: subtreeRows)
        try fault(.auditInsert)
        return size..<range.size
    }

    static let auditEventColumns = ["leaf_index", "body", "type_id", "actor_id", "target_id", "at_ms", "leaf_hash"]
    static let auditSubtreeColumns = ["level", "subtree_index", "hash"]

    /// Ids for names `audit_names` does not hold, after its largest id `last` (names are never
    /// removed or renumbered, and appends hold the write lock), with their rows.
    static func numberAuditNames(_ names: [String], after last: Int64) -> (ids: [String: Int64], rows: [[SQLRowValue]]) {
        var ids: [String: Int64] = [:]
        var rows: [[SQLRowValue]] = []
        for (offset, name) in names.enumerated() {
            ids[name] = last + 1 + Int64(offset)
            rows.append([.integer(last + 1 + Int64(offset)), .text(name)])
        }
        return (ids, rows)
    }

    /// Puts the ids of names the cache did not know into the batch's rows, and into `learned`.
    static func useAuditNameIDs(_ found: [String: Int64], in prepared: inout PreparedAuditBatch, learning learned: inout [String: Int64]) {
        learned.merge(found) { old, _ in old }
        for (offset, event) in prepared.events.enumerated() {
            for (column, name) in [(2, event.type), (3, event.actor), (4, event.target)] {
                if let id = found[name] { prepared.rows[offset][column] = .integer(id) }
            }
        }
    }

    /// Gives each row its leaf index, appending its leaf to `range`; returns the rows of the
    /// subtrees above the leaves that the batch completes (a leaf's own hash is in its row).
    static func placeAuditRows(_ prepared: inout PreparedAuditBatch, on range: inout CompactRange) -> [[SQLRowValue]] {
        var subtreeRows: [[SQLRowValue]] = []
        subtreeRows.reserveCapacity(prepared.events.count)
        for offset in prepared.rows.indices {
            prepared.rows[offset][0] = .integer(Int64(range.size))
            for (subtree, hash) in range.append(prepared.leaves[offset]) where subtree.level > 0 {
                subtreeRows.append([.integer(Int64(subtree.level)), .integer(Int64(subtree.index)), .blob(hash.bytes)])
            }
        }
        return subtreeRows
    }

    /// The ids of those of `names` that `audit_names` holds.
    static func auditNameIDs(_ names: Set<String>, in db: any SQLDatabase) async throws -> [String: Int64] {
        var ids: [String: Int64] = [:]
        let all = Array(names)
        for chunk in stride(from: 0, to: all.count, by: 1000) {
            let part: [any Encodable & Sendable] = Array(all[chunk..<min(chunk + 1000, all.count)])
            for row in try await db.raw("SELECT id, name FROM audit_names WHERE name IN (\(binds: part))").all() {
                ids[try row.decode(column: "name", as: String.self)] = try row.decode(column: "id", as: Int64.self)
            }
        }
        return ids
    }

    static func auditSize(_ db: any SQLDatabase) async throws -> UInt64 {
        let next = try await db.raw("SELECT COALESCE(MAX(leaf_index) + 1, 0) AS n FROM audit_events").first()?.decode(column: "n", as: Int64.self) ?? 0
        return UInt64(next)
    }

    /// The stored hashes of `wanted` (those stored): leaves from `audit_events.leaf_hash`, the
    /// levels above from `audit_subtrees`, in one statement per 200 conditions (a run of
    /// consecutive leaves is one condition), so a proof is one query.
    static func subtrees(_ wanted: Set<Subtree>, in db: any SQLDatabase) async throws -> [Subtree: MerkleHash] {
        guard !wanted.isEmpty else { return [:] }
        var conditions: [(leaves: ClosedRange<UInt64>?, node: Subtree?)] = []
        var run: ClosedRange<UInt64>?
        for subtree in wanted.sorted() {
            if subtree.level == 0 {
                if let current = run, current.upperBound + 1 == subtree.index {
                    run = current.lowerBound...subtree.index
                } else {
                    if let current = run { conditions.append((current, nil)) }
                    run = subtree.index...subtree.index
                }
            } else {
                conditions.append((nil, subtree))
            }
        }
        if let current = run { conditions.append((current, nil)) }
        var out: [Subtree: MerkleHash] = [:]
        for chunk in stride(from: 0, to: conditions.count, by: 200) {
            let part = conditions[chunk..<min(chunk + 200, conditions.count)]
            let leaves: [SQLQueryString] = part.compactMap(\.leaves).map { "(leaf_index BETWEEN \(bind: Int64($0.lowerBound)) AND \(bind: Int64($0.upperBound)))" }
            let nodes: [SQLQueryString] = part.compactMap(\.node).map { "(level = \(bind: Int64($0.level)) AND subtree_index = \(bind: Int64($0.index)))" }
            var selects: [SQLQueryString] = []
            if !leaves.isEmpty {
                selects.append("SELECT 0 AS level, leaf_index AS subtree_index, leaf_hash AS hash FROM audit_events WHERE " + leaves.joined(separator: " OR "))
            }
            if !nodes.isEmpty {
                selects.append("SELECT level, subtree_index, hash FROM audit_subtrees WHERE " + nodes.joined(separator: " OR "))
            }
            for row in try await db.raw(selects.joined(separator: " UNION ALL ")).all() {
                let level = try row.decode(column: "level", as: Int64.self), index = try row.decode(column: "subtree_index", as: Int64.self)
                let subtree = Subtree(level: Int(level), index: UInt64(index))
                guard let hash = MerkleHash(bytes: Array(try row.decode(column: "hash", as: Data.self))) else {
                    throw StoreError(.corrupt, "the stored hash of audit subtree \(subtree) is not 32 bytes")
                }
                out[subtree] = hash
            }
        }
        return out
    }

    public func auditSize() async throws(StoreError) -> UInt64 {
        try await read("audit size") { db in try await Self.auditSize(db) }
    }

    public func auditEvents(_ range: Range<UInt64>) async throws(StoreError) -> [AuditEventRecord] {
        guard range.upperBound <= UInt64(Int64.max) else { throw StoreError(.invalidArgument, "audit indices are below 2^63") }
        return try await read("audit events") { db in
            try await db.raw(Self.selectAuditEvents + """
                 WHERE e.leaf_index >= \(bind: Int64(range.lowerBound)) AND e.leaf_index < \(bind: Int64(range.upperBound))
                ORDER BY e.leaf_index
                """).all().map(Self.decodeAuditEvent)
        }
    }

    public func auditSubtrees(_ subtrees: Set<Subtree>) async throws(StoreError) -> [Subtree: MerkleHash] {
        try await read("audit subtrees") { db in try await Self.subtrees(subtrees, in: db) }
    }

    public func searchAuditEvents(_ query: AuditQuery) async throws(StoreError) -> [AuditEventRecord] {
        guard query.limit > 0 else { throw StoreError(.invalidArgument, "an audit search needs a positive limit") }
        return try await read("search audit events") { db in
            var conditions: [SQLQueryString] = []
            // A name the log has never seen matches nothing; the ids found are looked up by
            // the index on (id, leaf_index).
            if let type = query.type {
                if type.hasSuffix("*") {
                    // A prefix: the type names in that range (compared as a range, so the names'
                    // index serves it and nothing needs LIKE escaping) that some event has as its type.
                    let prefix = String(type.dropLast())
                    if !prefix.isEmpty {
                        let ids = try await db.raw("""
                            SELECT n.id FROM audit_names n WHERE n.name >= \(bind: prefix) AND n.name < \(bind: prefix + "\u{10FFFF}")
                            AND EXISTS (SELECT 1 FROM audit_events e WHERE e.type_id = n.id)
                            """).all().map { try $0.decode(column: "id", as: Int64.self) }
                        guard !ids.isEmpty else { return [] }
                        conditions.append("e.type_id IN (\(binds: ids))")
                    }
                } else {
                    guard let id = try await Self.auditNameIDs([type], in: db)[type] else { return [] }
                    conditions.append("e.type_id = \(bind: id)")
                }
            }
            for (column, name) in [("actor_id", query.actor), ("target_id", query.target)] {
                guard let name else { continue }
                guard let id = try await Self.auditNameIDs([name], in: db)[name] else { return [] }
                conditions.append("e.\(unsafeRaw: column) = \(bind: id)")
            }
            if let since = query.since { conditions.append("e.at_ms >= \(bind: Self.milliseconds(since))") }
            if let until = query.until { conditions.append("e.at_ms < \(bind: Self.milliseconds(until))") }
            if let after = query.afterIndex { conditions.append("e.leaf_index > \(bind: Int64(after))") }
            var sql = Self.selectAuditEvents
            if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
            sql += " ORDER BY e.leaf_index LIMIT \(bind: Int64(query.limit))"
            return try await db.raw(sql).all().map(Self.decodeAuditEvent)
        }
    }

    /// Events with their names; a name missing from `audit_names` reads as NULL, which decoding
    /// reports as a corrupt store rather than dropping the event.
    static let selectAuditEvents: SQLQueryString = """
        SELECT e.leaf_index, e.body, e.at_ms, t.name AS type_name, a.name AS actor_name, g.name AS target_name
        FROM audit_events e LEFT JOIN audit_names t ON t.id = e.type_id LEFT JOIN audit_names a ON a.id = e.actor_id
        LEFT JOIN audit_names g ON g.id = e.target_id
        """

    static func decodeAuditEvent(_ row: any SQLRow) throws -> AuditEventRecord {
        let index = try row.decode(column: "leaf_index", as: Int64.self)
        func name(_ column: String) throws -> String {
            guard let name = try row.decode(column: column, as: String?.self) else {
                let role = column == "actor_name" ? "an actor" : column == "type_name" ? "a type" : "a target"
                throw StoreError(.corrupt, "audit event \(index) names \(role) that the audit log's names table does not hold")
            }
            return name
        }
        return AuditEventRecord(index: UInt64(index), body: Array(try row.decode(column: "body", as: String.self).utf8),
                                type: try name("type_name"), actor: try name("actor_name"), target: try name("target_name"),
                                time: Self.date(try row.decode(column: "at_ms", as: Int64.self)))
    }

    // MARK: checkpoints and keys

    public func addAuditCheckpoint(_ checkpoint: AuditCheckpointRecord) async throws(StoreError) -> AuditCheckpointRecord {
        guard !checkpoint.note.isEmpty, !checkpoint.keyName.isEmpty else { throw StoreError(.invalidArgument, "a checkpoint needs its note and key name") }
        return try await write("add audit checkpoint") { db in
            let size = try await Self.auditSize(db)
            guard checkpoint.size <= size else {
                throw StoreError(.invalidArgument, "a checkpoint of \(checkpoint.size) events for a log of \(size)")
            }
            try await db.raw("""
                INSERT INTO audit_checkpoints (tree_size, note, key_name, key_id, signed_at_ms)
                VALUES (\(bind: Int64(checkpoint.size)), \(bind: checkpoint.note), \(bind: checkpoint.keyName), \(bind: Int64(checkpoint.keyID)),
                    \(bind: Self.milliseconds(checkpoint.signedAt)))
                """).run()
            let id = try await db.raw("SELECT MAX(id) AS id FROM audit_checkpoints").first()?.decode(column: "id", as: Int64.self)
            var stored = checkpoint
            stored.id = id
            return stored
        }
    }

    public func auditCheckpoints(limit: Int) async throws(StoreError) -> [AuditCheckpointRecord] {
        guard limit > 0 else { throw StoreError(.invalidArgument, "a positive limit") }
        return try await read("audit checkpoints") { db in
            try await db.raw("SELECT * FROM audit_checkpoints ORDER BY tree_size DESC, id DESC LIMIT \(bind: Int64(limit))").all().map { row in
                AuditCheckpointRecord(id: try row.decode(column: "id", as: Int64.self), size: UInt64(try row.decode(column: "tree_size", as: Int64.self)),
                                      note: try row.decode(column: "note", as: String.self), keyName: try row.decode(column: "key_name", as: String.self),
                                      keyID: UInt32(truncatingIfNeeded: try row.decode(column: "key_id", as: Int64.self)),
                                      signedAt: Self.date(try row.decode(column: "signed_at_ms", as: Int64.self)))
            }
        }
    }

    public func registerAuditLogKey(_ key: AuditLogKeyRecord) async throws(StoreError) -> [AuditLogKeyRecord] {
        guard !key.verifierKey.isEmpty, !key.serverID.isEmpty else { throw StoreError(.invalidArgument, "a log key needs its verifier key and server id") }
        let ms = Self.milliseconds(key.createdAt)
        return try await write("register audit log key") { db in
            let existing = try await db.raw("SELECT server_id FROM audit_log_keys WHERE verifier_key = \(bind: key.verifierKey)").first()
            if let owner = try existing?.decode(column: "server_id", as: String.self) {
                guard owner == key.serverID else {
                    throw StoreError(.alreadyExists, "the log key is already registered by server `\(owner)`")
                }
            } else {
                try await db.raw("""
                    INSERT INTO audit_log_keys (verifier_key, server_id, created_at_ms) VALUES (\(bind: key.verifierKey), \(bind: key.serverID), \(bind: ms))
                    """).run()
            }
            try await db.raw("""
                UPDATE audit_log_keys SET retired_at_ms = \(bind: ms)
                WHERE server_id = \(bind: key.serverID) AND verifier_key <> \(bind: key.verifierKey) AND retired_at_ms IS NULL
                """).run()
            try await db.raw("UPDATE audit_log_keys SET retired_at_ms = NULL WHERE verifier_key = \(bind: key.verifierKey)").run()
            return try await Self.logKeys(db)
        }
    }

    public func auditLogKeys() async throws(StoreError) -> [AuditLogKeyRecord] {
        try await read("audit log keys") { db in try await Self.logKeys(db) }
    }

    static func logKeys(_ db: any SQLDatabase) async throws -> [AuditLogKeyRecord] {
        try await db.raw("SELECT * FROM audit_log_keys ORDER BY created_at_ms, verifier_key").all().map { row in
            AuditLogKeyRecord(verifierKey: try row.decode(column: "verifier_key", as: String.self), serverID: try row.decode(column: "server_id", as: String.self),
                              createdAt: Self.date(try row.decode(column: "created_at_ms", as: Int64.self)),
                              retiredAt: try row.decode(column: "retired_at_ms", as: Int64?.self).map(Self.date))
        }
    }
}
