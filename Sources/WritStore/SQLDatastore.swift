import Crypto
import Foundation
import SPIFFEIdentity
import SQLKit
import WritModel

/// The datastore on any ``SQLStoreBackend``: the same statements run on SQLite and PostgreSQL.
///
/// Revisions come from the `changes` table: every write records its change first and stamps the
/// records it touched with that revision, inside the same serialized transaction.
public final class SQLDatastore: Datastore {
    let backend: any SQLStoreBackend
    let faults: StoreFaults?
    /// Audit name ids known to be committed (see ``AuditNameCache``).
    let auditNames = AuditNameCache()

    public var backendKind: StoreBackendKind { backend.kind }

    /// Opens a store on `backend`, applying missing migrations; refuses a schema newer than this
    /// binary knows with `schema_too_new`.
    public init(backend: any SQLStoreBackend, faults: StoreFaults? = nil) async throws(StoreError) {
        self.backend = backend
        self.faults = faults
        try await migrate()
    }

    // MARK: running statements

    func write<T: Sendable>(_ what: String, _ body: (any SQLDatabase) async throws -> T) async throws(StoreError) -> T {
        try await run("write", what) { try await backend.write(body) }
    }

    func read<T: Sendable>(_ what: String, _ body: (any SQLDatabase) async throws -> T) async throws(StoreError) -> T {
        try await run("read", what) { try await backend.read(body) }
    }

    /// Passes `StoreError`s through and reports any driver error as `unavailable`.
    func run<T: Sendable>(_ kind: String, _ what: String, _ body: () async throws -> T) async throws(StoreError) -> T {
        do {
            return try await body()
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.unavailable, "datastore \(kind) failed (\(what))", cause: error)
        }
    }

    func fault(_ point: StoreFaultPoint) throws(StoreError) {
        try faults?.hook(point)
    }

    // MARK: schema

    private func migrate() async throws(StoreError) {
        let kind = backend.kind
        try await write("migrate") { db in
            try await db.raw("CREATE TABLE IF NOT EXISTS writ_schema (id BIGINT PRIMARY KEY, version BIGINT NOT NULL)").run()
            let current = try await db.raw("SELECT version FROM writ_schema WHERE id = 1").first()?.decode(column: "version", as: Int64.self) ?? 0
            guard current <= Migration.latestVersion else {
                throw StoreError(.schemaTooNew, "the datastore's schema is at version \(current), but this writ knows versions up to \(Migration.latestVersion): upgrade writ")
            }
            for migration in Migration.all where migration.version > current {
                for statement in migration.statements(for: kind) {
                    try await db.raw(SQLQueryString(statement)).run()
                }
            }
            if current == 0 {
                try await db.raw("INSERT INTO writ_schema (id, version) VALUES (1, \(bind: Int64(Migration.latestVersion)))").run()
            } else if current < Migration.latestVersion {
                try await db.raw("UPDATE writ_schema SET version = \(bind: Int64(Migration.latestVersion)) WHERE id = 1").run()
            }
        }
    }

    public func schemaVersion() async throws(StoreError) -> Int {
        try await read("schema version") { db in
            Int(try await db.raw("SELECT version FROM writ_schema WHERE id = 1").first()?.decode(column: "version", as: Int64.self) ?? 0)
        }
    }

    // MARK: entries

    public func createEntry(_ entry: RegistrationEntry, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> RegistrationEntry {
        let ms = Self.milliseconds(time)
        try Self.checkAuditEvents(audit)
        return try await write("create entry") { db in
            if try await db.raw("SELECT id FROM entries WHERE id = \(bind: entry.id)").first() != nil {
                throw StoreError(.alreadyExists, "an entry with id `\(entry.id)` exists")
            }
            try await self.refuseDuplicate(entry, in: db)
            try await self.requireFederatedBundles(entry, in: db)
            let revision = try await self.recordChange(.entryCreated, recordID: entry.id, at: ms, in: db)
            var stored = entry
            stored.revision = revision
            stored.createdAt = Self.date(ms)
            stored.updatedAt = Self.date(ms)
            try await self.insertRow(stored, in: db)
            try self.fault(.afterEntryRow)
            try await self.insertSelectors(stored, in: db)
            try self.fault(.afterSelectors)
            _ = try await self.appendAudit(audit, in: db)
            try self.fault(.beforeCommit)
            return stored
        }
    }

    public func entry(id: String) async throws(StoreError) -> RegistrationEntry? {
        try await read("get entry") { db in
            try await self.loadEntries(try await db.raw("SELECT * FROM entries WHERE id = \(bind: id)").all(), in: db).first
        }
    }

    public func updateEntry(_ entry: RegistrationEntry, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> RegistrationEntry {
        let ms = Self.milliseconds(time)
        try Self.checkAuditEvents(audit)
        return try await write("update entry") { db in
            guard let row = try await db.raw("SELECT revision, created_at_ms FROM entries WHERE id = \(bind: entry.id)").first() else {
                throw StoreError(.notFound, "no entry with id `\(entry.id)`")
            }
            let storedRevision = try row.decode(column: "revision", as: Int64.self)
            guard storedRevision == entry.revision else {
                throw StoreError(.conflict, "entry `\(entry.id)` is at revision \(storedRevision), not \(entry.revision): read it again and retry")
            }
            try await self.refuseDuplicate(entry, in: db)
            try await self.requireFederatedBundles(entry, in: db)
            let revision = try await self.recordChange(.entryUpdated, recordID: entry.id, at: ms, in: db)
            var stored = entry
            stored.revision = revision
            stored.createdAt = Self.date(try row.decode(column: "created_at_ms", as: Int64.self))
            stored.updatedAt = Self.date(ms)
            try await db.raw("DELETE FROM entry_selectors WHERE entry_id = \(bind: entry.id)").run()
            try await db.raw("DELETE FROM entries WHERE id = \(bind: entry.id)").run()
            try await self.insertRow(stored, in: db)
            try self.fault(.afterEntryRow)
            try await self.insertSelectors(stored, in: db)
            try self.fault(.afterSelectors)
            _ = try await self.appendAudit(audit, in: db)
            try self.fault(.beforeCommit)
            return stored
        }
    }

    public func deleteEntry(id: String, revision: Int64?, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> RegistrationEntry {
        let ms = Self.milliseconds(time)
        try Self.checkAuditEvents(audit)
        return try await write("delete entry") { db in
            guard let existing = try await self.loadEntries(try await db.raw("SELECT * FROM entries WHERE id = \(bind: id)").all(), in: db).first else {
                throw StoreError(.notFound, "no entry with id `\(id)`")
            }
            if let revision, revision != existing.revision {
                throw StoreError(.conflict, "entry `\(id)` is at revision \(existing.revision), not \(revision): read it again and retry")
            }
            _ = try await self.recordChange(.entryDeleted, recordID: id, at: ms, in: db)
            try await db.raw("DELETE FROM entry_selectors WHERE entry_id = \(bind: id)").run()
            try self.fault(.afterSelectors)
            try await db.raw("DELETE FROM entries WHERE id = \(bind: id)").run()
            _ = try await self.appendAudit(audit, in: db)
            try self.fault(.beforeCommit)
            return existing
        }
    }

    public func listEntries(_ query: EntryQuery) async throws(StoreError) -> EntryPage {
        guard (1...EntryQuery.maximumPageSize).contains(query.pageSize) else {
            throw StoreError(.invalidArgument, "invalid page size \(query.pageSize): it must be between 1 and \(EntryQuery.maximumPageSize)")
        }
        let after = try query.pageToken.map { (token: String) throws(StoreError) -> String in try Self.decodePageToken(token) }
        let wanted = query.pageSize + 1
        let found = try await read("list entries") { db in
            try await self.scan(query.filter, after: after, limit: wanted, in: db)
        }
        guard found.count == wanted else { return EntryPage(entries: found, nextPageToken: nil) }
        let page = Array(found.prefix(query.pageSize))
        return EntryPage(entries: page, nextPageToken: Self.encodePageToken(page.last!.id))
    }

    public func countEntries(_ filter: EntryFilter) async throws(StoreError) -> Int {
        try await read("count entries") { db in
            if filter.selectors.isEmpty, filter.labels.isEmpty {
                let sql = "SELECT COUNT(*) AS n FROM entries" + self.conditions(filter, after: nil)
                return Int(try await db.raw(sql).first()?.decode(column: "n", as: Int64.self) ?? 0)
            }
            return try await self.scan(filter, after: nil, limit: nil, in: db).count
        }
    }

    public func pruneExpiredEntries(at time: Date, audit: @escaping AuditEventsForRemoved) async throws(StoreError) -> [String] {
        let ms = Self.milliseconds(time)
        return try await write("prune entries") { db in
            let ids = try await db.raw("SELECT id FROM entries WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= \(bind: ms) ORDER BY id")
                .all().map { try $0.decode(column: "id", as: String.self) }
            for id in ids {
                _ = try await self.recordChange(.entryDeleted, recordID: id, at: ms, in: db)
                try await db.raw("DELETE FROM entry_selectors WHERE entry_id = \(bind: id)").run()
                try await db.raw("DELETE FROM entries WHERE id = \(bind: id)").run()
            }
            _ = try await self.appendAudit(try Self.auditEvents(removing: ids, audit), in: db)
            try self.fault(.beforeCommit)
            return ids
        }
    }

    // MARK: changes

    public func changes(after revision: Int64, limit: Int) async throws(StoreError) -> [StoreChange] {
        guard limit > 0 else { throw StoreError(.invalidArgument, "invalid limit \(limit): it must be positive") }
        return try await read("changes") { db in
            try await db.raw("SELECT revision, kind, record_id, at_ms FROM changes WHERE revision > \(bind: revision) ORDER BY revision LIMIT \(bind: Int64(limit))")
                .all().map { row in
                    let kindText = try row.decode(column: "kind", as: String.self)
                    guard let kind = StoreChange.Kind(rawValue: kindText) else {
                        throw StoreError(.corrupt, "change has unknown kind `\(kindText)`")
                    }
                    return StoreChange(revision: try row.decode(column: "revision", as: Int64.self), kind: kind,
                                       recordID: try row.decode(column: "record_id", as: String.self),
                                       time: Self.date(try row.decode(column: "at_ms", as: Int64.self)))
                }
        }
    }

    public func currentRevision() async throws(StoreError) -> Int64 {
        try await read("current revision") { db in
            try await db.raw("SELECT MAX(revision) AS r FROM changes").first()?.decode(column: "r", as: Int64?.self) ?? 0
        }
    }

    // MARK: join tokens

    public func createJoinToken(_ token: JoinTokenRecord, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) {
        try Self.checkAuditEvents(audit)
        let ms = Self.milliseconds(time)
        try await write("create join token") { db in
            if try await db.raw("SELECT id FROM join_tokens WHERE id = \(bind: token.id) OR token_hash = \(bind: token.tokenHash)").first() != nil {
                throw StoreError(.alreadyExists, "a join token with id `\(token.id)` or the same secret exists")
            }
            _ = try await self.recordChange(.joinTokenCreated, recordID: token.id, at: ms, in: db)
            try await db.raw("""
                INSERT INTO join_tokens (id, token_hash, spiffe_id, expires_at_ms, created_at_ms)
                VALUES (\(bind: token.id), \(bind: token.tokenHash), \(bind: token.spiffeID?.uri), \(bind: Self.milliseconds(token.expiresAt)), \(bind: ms))
                """).run()
            _ = try await self.appendAudit(audit, in: db)
            try self.fault(.beforeCommit)
        }
    }

    public func consumeJoinToken(hash: String, at time: Date) async throws(StoreError) -> JoinTokenRecord {
        let ms = Self.milliseconds(time)
        return try await write("use join token") { db in
            guard let row = try await db.raw("SELECT * FROM join_tokens WHERE token_hash = \(bind: hash)").first() else {
                throw StoreError(.tokenRejected, "join token is unknown or was already used")
            }
            let record = try Self.decodeToken(row)
            guard Self.milliseconds(record.expiresAt) > ms else {
                throw StoreError(.tokenRejected, "join token `\(record.id)` expired at \(record.expiresAt)")
            }
            let deleted = try await db.raw("DELETE FROM join_tokens WHERE token_hash = \(bind: hash) RETURNING id").all()
            guard deleted.count == 1 else { throw StoreError(.tokenRejected, "join token is unknown or was already used") }
            _ = try await self.recordChange(.joinTokenUsed, recordID: record.id, at: ms, in: db)
            try self.fault(.beforeCommit)
            return record
        }
    }

    public func pruneJoinTokens(at time: Date) async throws(StoreError) -> Int {
        let ms = Self.milliseconds(time)
        return try await write("prune join tokens") { db in
            try await db.raw("DELETE FROM join_tokens WHERE expires_at_ms <= \(bind: ms) RETURNING id").all().count
        }
    }

    public func backup(to path: String) async throws(StoreError) {
        guard path.hasPrefix("/") else { throw StoreError(.invalidArgument, "invalid backup path `\(path)`: it must be absolute") }
        guard !FileManager.default.fileExists(atPath: path) else {
            throw StoreError(.alreadyExists, "`\(path)` exists: a backup never overwrites a file")
        }
        try await run("backup", "backup") { try await backend.backup(to: path) }
    }

    public func close() async {
        await backend.close()
    }

    // MARK: rows

    func recordChange(_ kind: StoreChange.Kind, recordID: String, at ms: Int64, in db: any SQLDatabase) async throws -> Int64 {
        guard let row = try await db.raw("INSERT INTO changes (kind, record_id, at_ms) VALUES (\(bind: kind.rawValue), \(bind: recordID), \(bind: ms)) RETURNING revision").first() else {
            throw StoreError(.unavailable, "recording the change returned no revision")
        }
        return try row.decode(column: "revision", as: Int64.self)
    }

    private func refuseDuplicate(_ entry: RegistrationEntry, in db: any SQLDatabase) async throws {
        let hash = Self.uniquenessHash(entry)
        if let row = try await db.raw("SELECT id FROM entries WHERE uniqueness_hash = \(bind: hash) AND id <> \(bind: entry.id)").first() {
            let other = try row.decode(column: "id", as: String.self)
            throw StoreError(.alreadyExists, "entry `\(other)` already has spiffe_id `\(entry.spiffeID)`, parent_id `\(entry.parentID)` and the same selectors")
        }
    }

    func insertRow(_ entry: RegistrationEntry, in db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO entries (id, spiffe_id, parent_id, uniqueness_hash, x509_svid_ttl, jwt_svid_ttl, dns_names, federates_with,
                admin, downstream, hint, expires_at_ms, owner, labels, revision, created_at_ms, updated_at_ms)
            VALUES (\(bind: entry.id), \(bind: entry.spiffeID.uri), \(bind: entry.parentID.uri), \(bind: Self.uniquenessHash(entry)),
                \(bind: entry.x509SVIDTTL.map(Int64.init)), \(bind: entry.jwtSVIDTTL.map(Int64.init)), \(bind: Self.json(entry.dnsNames)),
                \(bind: Self.json(entry.federatesWith.map(\.name))), \(bind: Int64(entry.admin ? 1 : 0)), \(bind: Int64(entry.downstream ? 1 : 0)),
                \(bind: entry.hint), \(bind: entry.expiresAt.map(Self.milliseconds)), \(bind: entry.owner), \(bind: Self.json(entry.labels)),
                \(bind: entry.revision), \(bind: Self.milliseconds(entry.createdAt ?? Date())), \(bind: Self.milliseconds(entry.updatedAt ?? Date())))
            """).run()
    }

    func insertSelectors(_ entry: RegistrationEntry, in db: any SQLDatabase) async throws {
        for selector in entry.selectors {
            try await db.raw("INSERT INTO entry_selectors (entry_id, type, value) VALUES (\(bind: entry.id), \(bind: selector.type), \(bind: selector.value))").run()
        }
    }

    /// The SQL conditions for what SQL can filter (ids, owner, and a selector pre-filter);
    /// ``EntryFilter/matches(_:)`` decides the rest in memory.
    private func conditions(_ filter: EntryFilter, after: String?) -> SQLQueryString {
        var parts: [SQLQueryString] = []
        if let after { parts.append("id > \(bind: after)") }
        if let spiffeID = filter.spiffeID { parts.append("spiffe_id = \(bind: spiffeID.uri)") }
        if let parentID = filter.parentID { parts.append("parent_id = \(bind: parentID.uri)") }
        if let owner = filter.owner { parts.append("owner = \(bind: owner)") }
        if !filter.selectors.isEmpty {
            // Every match mode needs at least one shared selector: entries have at least one.
            var any: SQLQueryString = "EXISTS (SELECT 1 FROM entry_selectors s WHERE s.entry_id = entries.id AND ("
            for (index, selector) in filter.selectors.enumerated() {
                if index > 0 { any += " OR " }
                any += "(s.type = \(bind: selector.type) AND s.value = \(bind: selector.value))"
            }
            any += "))"
            parts.append(any)
        }
        guard !parts.isEmpty else { return "" }
        var sql: SQLQueryString = " WHERE "
        for (index, part) in parts.enumerated() {
            if index > 0 { sql += " AND " }
            sql += part
        }
        return sql
    }

    /// Entries matching `filter` with ids after `after`, in id order, at most `limit` (nil: all).
    private func scan(_ filter: EntryFilter, after: String?, limit: Int?, in db: any SQLDatabase) async throws -> [RegistrationEntry] {
        var found: [RegistrationEntry] = []
        var cursor = after
        let batch = 500
        while true {
            let sql = "SELECT * FROM entries" + conditions(filter, after: cursor) + " ORDER BY id LIMIT \(bind: Int64(batch))"
            let rows = try await db.raw(sql).all()
            if rows.isEmpty { break }
            for entry in try await loadEntries(rows, in: db) where filter.matches(entry) {
                found.append(entry)
                if let limit, found.count == limit { return found }
            }
            cursor = try rows.last!.decode(column: "id", as: String.self)
            if rows.count < batch { break }
        }
        return found
    }

    /// Decodes entry rows, with their selectors read in one query.
    func loadEntries(_ rows: [any SQLRow], in db: any SQLDatabase) async throws -> [RegistrationEntry] {
        guard !rows.isEmpty else { return [] }
        let ids = try rows.map { try $0.decode(column: "id", as: String.self) }
        var selectors: [String: [Selector]] = [:]
        for chunk in stride(from: 0, to: ids.count, by: 500) {
            let slice = Array(ids[chunk..<min(chunk + 500, ids.count)])
            for row in try await db.raw("SELECT entry_id, type, value FROM entry_selectors WHERE entry_id IN (\(binds: slice))").all() {
                let id = try row.decode(column: "entry_id", as: String.self)
                let type = try row.decode(column: "type", as: String.self)
                let value = try row.decode(column: "value", as: String.self)
                do { selectors[id, default: []].append(try Selector(type: type, value: value)) } catch {
                    throw StoreError(.corrupt, "entry `\(id)` has a stored selector that does not parse: \(error.message)")
                }
            }
        }
        return try rows.map { try Self.decodeEntry($0, selectors: selectors[try $0.decode(column: "id", as: String.self)] ?? []) }
    }

    static func decodeEntry(_ row: any SQLRow, selectors: [Selector]) throws -> RegistrationEntry {
        let id = try row.decode(column: "id", as: String.self)
        func corrupt(_ what: String) -> StoreError { StoreError(.corrupt, "entry `\(id)` has a stored \(what) that does not parse") }
        guard let spiffeID = try? SPIFFEID(parsing: try row.decode(column: "spiffe_id", as: String.self)) else { throw corrupt("spiffe_id") }
        guard let parentID = try? SPIFFEID(parsing: try row.decode(column: "parent_id", as: String.self)) else { throw corrupt("parent_id") }
        guard let dnsNames = try? JSONDecoder().decode([String].self, from: Data(try row.decode(column: "dns_names", as: String.self).utf8)) else { throw corrupt("dns_names") }
        guard let federates = try? JSONDecoder().decode([TrustDomain].self, from: Data(try row.decode(column: "federates_with", as: String.self).utf8)) else { throw corrupt("federates_with") }
        guard let labels = try? JSONDecoder().decode([String: String].self, from: Data(try row.decode(column: "labels", as: String.self).utf8)) else { throw corrupt("labels") }
        return RegistrationEntry(
            id: id, spiffeID: spiffeID, parentID: parentID, selectors: selectors,
            x509SVIDTTL: try row.decode(column: "x509_svid_ttl", as: Int64?.self).map(Int.init),
            jwtSVIDTTL: try row.decode(column: "jwt_svid_ttl", as: Int64?.self).map(Int.init),
            dnsNames: dnsNames, federatesWith: federates,
            admin: try row.decode(column: "admin", as: Int64.self) != 0,
            downstream: try row.decode(column: "downstream", as: Int64.self) != 0,
            hint: try row.decode(column: "hint", as: String.self),
            expiresAt: try row.decode(column: "expires_at_ms", as: Int64?.self).map(date),
            owner: try row.decode(column: "owner", as: String.self), labels: labels,
            revision: try row.decode(column: "revision", as: Int64.self),
            createdAt: date(try row.decode(column: "created_at_ms", as: Int64.self)),
            updatedAt: date(try row.decode(column: "updated_at_ms", as: Int64.self)))
    }

    static func decodeToken(_ row: any SQLRow) throws -> JoinTokenRecord {
        let id = try row.decode(column: "id", as: String.self)
        let spiffeID = try row.decode(column: "spiffe_id", as: String?.self).map { (text: String) throws -> SPIFFEID in
            guard let parsed = try? SPIFFEID(parsing: text) else { throw StoreError(.corrupt, "join token `\(id)` has a stored spiffe_id that does not parse") }
            return parsed
        }
        return JoinTokenRecord(id: id, tokenHash: try row.decode(column: "token_hash", as: String.self), spiffeID: spiffeID,
                               expiresAt: date(try row.decode(column: "expires_at_ms", as: Int64.self)),
                               createdAt: date(try row.decode(column: "created_at_ms", as: Int64.self)))
    }

    // MARK: encodings

    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }
    static func date(_ milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self)
    }

    static func uniquenessHash(_ entry: RegistrationEntry) -> String {
        SHA256.hash(data: Data(entry.uniquenessKey.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func encodePageToken(_ id: String) -> String {
        Data(("entry:" + id).utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decodePageToken(_ token: String) throws(StoreError) -> String {
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard token.utf8.count <= 256, let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8),
              text.hasPrefix("entry:"), (try? EntryRules.checkID(String(text.dropFirst(6)))) != nil else {
            throw StoreError(.invalidArgument, "invalid page token `\(token.prefix(64))`: pass back a next_page_token exactly as it was returned")
        }
        return String(text.dropFirst(6))
    }
}
