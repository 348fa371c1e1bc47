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

/// The audit log on SQL: `audit_events` holds the bodies, `audit_subtrees` the hash of every
/// complete subtree (2n − popcount(n) rows for n events), so appending reads only the right
/// edge and a proof or a root reads O(log n) rows in one query.
extension SQLDatastore {
    /// The most events one append takes (a group-commit batch is at most 1,000).
    public static let maximumAuditBatch = 10_000

    public func appendAuditEvents(_ events: [AuditEventRecord]) async throws(StoreError) -> Range<UInt64> {
        try Self.checkAuditEvents(events)
        if events.isEmpty {
            let size = try await auditSize()
            return size..<size
        }
        return try await write("append audit events") { db in
            let range = try await self.appendAudit(events, in: db)
            try self.fault(.beforeCommit)
            return range
        }
    }

    static func checkAuditEvents(_ events: [AuditEventRecord]) throws(StoreError) {
        guard events.count <= maximumAuditBatch else { throw StoreError(.invalidArgument, "at most \(maximumAuditBatch) audit events per append, given \(events.count)") }
        try checkAuditEventBodies(events)
    }

    /// The events a removal's ``AuditEventsForRemoved`` built for `ids`, checked (one removal
    /// may remove more records than one append takes, so only the events themselves are).
    static func auditEvents(removing ids: [String], _ audit: AuditEventsForRemoved) throws(StoreError) -> [AuditEventRecord] {
        guard !ids.isEmpty else { return [] }
        let events: [AuditEventRecord]
        do { events = try audit(ids) } catch {
            throw StoreError(.invalidArgument, "the audit events of the removal could not be built", cause: error)
        }
        try checkAuditEventBodies(events)
        return events
    }

    private static func checkAuditEventBodies(_ events: [AuditEventRecord]) throws(StoreError) {
        for event in events {
            guard !event.body.isEmpty else { throw StoreError(.invalidArgument, "an audit event needs a body") }
            guard String(validating: event.body, as: UTF8.self) != nil, !event.body.contains(0) else {
                throw StoreError(.invalidArgument, "an audit event body is UTF-8 JSON without NUL bytes")
            }
            guard !event.type.isEmpty, !event.actor.isEmpty else { throw StoreError(.invalidArgument, "an audit event needs a type and an actor") }
        }
    }

    /// Appends inside the caller's write transaction (so an operation and its event commit
    /// together); the write lock makes the size read here the size at commit.
    func appendAudit(_ events: [AuditEventRecord], in db: any SQLDatabase) async throws -> Range<UInt64> {
        guard !events.isEmpty else { return 0..<0 }
        let size = try await Self.auditSize(db)
        var range = try CompactRange(size: size, lookup: try await Self.subtrees(Set(Subtree.covering(0..<size)), in: db))
        var eventRows: [[any Encodable & Sendable]] = [], subtreeRows: [[any Encodable & Sendable]] = []
        for event in events {
            let index = range.size
            for (subtree, hash) in range.append(MerkleHash.leaf(event.body)) {
                subtreeRows.append([Int64(subtree.level), Int64(subtree.index), Data(hash.bytes)])
            }
            eventRows.append([Int64(index), String(decoding: event.body, as: UTF8.self), event.type, event.actor, event.target, Self.milliseconds(event.time)])
        }
        for chunk in stride(from: 0, to: eventRows.count, by: 500) {
            let insert = db.insert(into: "audit_events").columns("leaf_index", "body", "event_type", "actor", "target", "at_ms")
            for row in eventRows[chunk..<min(chunk + 500, eventRows.count)] { insert.values(row) }
            try await insert.run()
        }
        for chunk in stride(from: 0, to: subtreeRows.count, by: 1000) {
            let insert = db.insert(into: "audit_subtrees").columns("level", "subtree_index", "hash")
            for row in subtreeRows[chunk..<min(chunk + 1000, subtreeRows.count)] { insert.values(row) }
            try await insert.run()
        }
        try fault(.auditInsert)
        return size..<range.size
    }

    static func auditSize(_ db: any SQLDatabase) async throws -> UInt64 {
        let next = try await db.raw("SELECT COALESCE(MAX(leaf_index) + 1, 0) AS n FROM audit_events").first()?.decode(column: "n", as: Int64.self) ?? 0
        return UInt64(next)
    }

    static func subtrees(_ wanted: Set<Subtree>, in db: any SQLDatabase) async throws -> [Subtree: MerkleHash] {
        guard !wanted.isEmpty else { return [:] }
        var out: [Subtree: MerkleHash] = [:]
        let sorted = wanted.sorted()
        for chunk in stride(from: 0, to: sorted.count, by: 200) {
            let query = db.select().columns("level", "subtree_index", "hash").from("audit_subtrees")
            for subtree in sorted[chunk..<min(chunk + 200, sorted.count)] {
                query.orWhere { $0.where("level", .equal, Int64(subtree.level)).where("subtree_index", .equal, Int64(subtree.index)) }
            }
            for row in try await query.all() {
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
            try await db.raw("""
                SELECT * FROM audit_events WHERE leaf_index >= \(bind: Int64(range.lowerBound)) AND leaf_index < \(bind: Int64(range.upperBound))
                ORDER BY leaf_index
                """).all().map(Self.decodeAuditEvent)
        }
    }

    public func auditSubtrees(_ subtrees: Set<Subtree>) async throws(StoreError) -> [Subtree: MerkleHash] {
        try await read("audit subtrees") { db in try await Self.subtrees(subtrees, in: db) }
    }

    public func searchAuditEvents(_ query: AuditQuery) async throws(StoreError) -> [AuditEventRecord] {
        guard query.limit > 0 else { throw StoreError(.invalidArgument, "an audit search needs a positive limit") }
        return try await read("search audit events") { db in
            let select = db.select().column("*").from("audit_events")
            if let type = query.type {
                if type.hasSuffix("*") {
                    // A prefix: compare as a range so the type index serves it (no LIKE escaping).
                    let prefix = String(type.dropLast())
                    if !prefix.isEmpty {
                        select.where("event_type", .greaterThanOrEqual, prefix).where("event_type", .lessThan, prefix + "\u{10FFFF}")
                    }
                } else {
                    select.where("event_type", .equal, type)
                }
            }
            if let actor = query.actor { select.where("actor", .equal, actor) }
            if let target = query.target { select.where("target", .equal, target) }
            if let since = query.since { select.where("at_ms", .greaterThanOrEqual, Self.milliseconds(since)) }
            if let until = query.until { select.where("at_ms", .lessThan, Self.milliseconds(until)) }
            if let after = query.afterIndex { select.where("leaf_index", .greaterThan, Int64(after)) }
            return try await select.orderBy("leaf_index").limit(query.limit).all().map(Self.decodeAuditEvent)
        }
    }

    static func decodeAuditEvent(_ row: any SQLRow) throws -> AuditEventRecord {
        let index = try row.decode(column: "leaf_index", as: Int64.self)
        return AuditEventRecord(index: UInt64(index), body: Array(try row.decode(column: "body", as: String.self).utf8),
                                type: try row.decode(column: "event_type", as: String.self), actor: try row.decode(column: "actor", as: String.self),
                                target: try row.decode(column: "target", as: String.self), time: Self.date(try row.decode(column: "at_ms", as: Int64.self)))
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
