import Foundation
import SPIFFEIdentity
import SQLKit
import WritModel

// Attested agents. The node selectors are stored as one JSON column: agents are listed and
// filtered by the admin API only, never on a hot path, so no selector index is kept.
extension SQLDatastore {
    public func attestAgent(_ agent: AgentRecord, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> AgentRecord {
        try Self.checkAuditEvents(audit)
        let ms = Self.milliseconds(time)
        let selectorsJSON = Self.json(agent.selectors.map { $0.description })
        return try await write("attest agent") { db in
            let existing = try await db.raw("SELECT * FROM agents WHERE id = \(bind: agent.id.uri)").first().map(Self.decodeAgent)
            if let existing, existing.banned {
                throw StoreError(.permissionDenied, "agent `\(agent.id)` is banned: purge it (`writ agent purge`) before it can attest again")
            }
            _ = try await self.recordChange(.agentAttested, recordID: agent.id.uri, at: ms, in: db)
            if existing != nil {
                try await db.raw("""
                    UPDATE agents SET attestation_type = \(bind: agent.attestationType), selectors = \(bind: selectorsJSON),
                        serial_number = \(bind: agent.serialNumber), expires_at_ms = \(bind: Self.milliseconds(agent.expiresAt)),
                        can_reattest = \(bind: Int64(agent.canReattest ? 1 : 0)), updated_at_ms = \(bind: ms)
                    WHERE id = \(bind: agent.id.uri)
                    """).run()
            } else {
                try await db.raw("""
                    INSERT INTO agents (id, attestation_type, selectors, serial_number, expires_at_ms, banned, can_reattest, created_at_ms, updated_at_ms)
                    VALUES (\(bind: agent.id.uri), \(bind: agent.attestationType), \(bind: selectorsJSON),
                        \(bind: agent.serialNumber), \(bind: Self.milliseconds(agent.expiresAt)), \(bind: Int64(0)),
                        \(bind: Int64(agent.canReattest ? 1 : 0)), \(bind: ms), \(bind: ms))
                    """).run()
            }
            _ = try await self.appendAudit(audit, in: db)
            try self.fault(.beforeCommit)
            guard let row = try await db.raw("SELECT * FROM agents WHERE id = \(bind: agent.id.uri)").first() else {
                throw StoreError(.unavailable, "the attested agent `\(agent.id)` was not stored")
            }
            return try Self.decodeAgent(row)
        }
    }

    public func agent(id: SPIFFEID) async throws(StoreError) -> AgentRecord? {
        try await read("get agent") { db in
            try await db.raw("SELECT * FROM agents WHERE id = \(bind: id.uri)").first().map(Self.decodeAgent)
        }
    }

    public func renewAgent(id: SPIFFEID, fromSerial: String, toSerial: String, expiresAt: Date, at time: Date,
                           audit: [AuditEventRecord]) async throws(StoreError) -> AgentRecord {
        try Self.checkAuditEvents(audit)
        let ms = Self.milliseconds(time)
        return try await write("renew agent") { db in
            guard let existing = try await db.raw("SELECT * FROM agents WHERE id = \(bind: id.uri)").first().map(Self.decodeAgent) else {
                throw StoreError(.notFound, "agent `\(id)` is not attested (evicted or purged): it must attest again")
            }
            guard !existing.banned else { throw StoreError(.permissionDenied, "agent `\(id)` is banned") }
            guard existing.serialNumber == fromSerial, !fromSerial.isEmpty else {
                throw StoreError(.conflict, "agent `\(id)` no longer holds the SVID with serial \(fromSerial): it was already renewed")
            }
            _ = try await self.recordChange(.agentRenewed, recordID: id.uri, at: ms, in: db)
            try await db.raw("""
                UPDATE agents SET serial_number = \(bind: toSerial), expires_at_ms = \(bind: Self.milliseconds(expiresAt)), updated_at_ms = \(bind: ms)
                WHERE id = \(bind: id.uri) AND serial_number = \(bind: fromSerial)
                """).run()
            _ = try await self.appendAudit(audit, in: db)
            try self.fault(.beforeCommit)
            var renewed = existing
            renewed.serialNumber = toSerial
            renewed.expiresAt = Self.date(Self.milliseconds(expiresAt))
            renewed.updatedAt = Self.date(ms)
            return renewed
        }
    }

    public func listAgents(_ filter: AgentFilter) async throws(StoreError) -> [AgentRecord] {
        try await read("list agents") { db in
            try await db.raw("SELECT * FROM agents ORDER BY id").all().map(Self.decodeAgent).filter(filter.matches)
        }
    }

    public func evictAgent(id: SPIFFEID, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> AgentRecord {
        try Self.checkAuditEvents(audit)
        let ms = Self.milliseconds(time)
        return try await write("evict agent") { db in
            guard let existing = try await db.raw("SELECT * FROM agents WHERE id = \(bind: id.uri)").first().map(Self.decodeAgent) else {
                throw StoreError(.notFound, "no agent `\(id)`")
            }
            _ = try await self.recordChange(.agentEvicted, recordID: id.uri, at: ms, in: db)
            try await db.raw("DELETE FROM agents WHERE id = \(bind: id.uri)").run()
            _ = try await self.appendAudit(audit, in: db)
            try self.fault(.beforeCommit)
            return existing
        }
    }

    public func banAgent(id: SPIFFEID, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> AgentRecord {
        try Self.checkAuditEvents(audit)
        let ms = Self.milliseconds(time)
        return try await write("ban agent") { db in
            guard var existing = try await db.raw("SELECT * FROM agents WHERE id = \(bind: id.uri)").first().map(Self.decodeAgent) else {
                throw StoreError(.notFound, "no agent `\(id)`")
            }
            _ = try await self.recordChange(.agentBanned, recordID: id.uri, at: ms, in: db)
            try await db.raw("UPDATE agents SET banned = \(bind: Int64(1)), serial_number = '', updated_at_ms = \(bind: ms) WHERE id = \(bind: id.uri)").run()
            _ = try await self.appendAudit(audit, in: db)
            try self.fault(.beforeCommit)
            existing.banned = true
            existing.serialNumber = ""
            existing.updatedAt = Self.date(ms)
            return existing
        }
    }

    public func purgeAgents(expiredBefore time: Date, at now: Date, audit: @escaping AuditEventsForRemoved) async throws(StoreError) -> [SPIFFEID] {
        let ms = Self.milliseconds(now)
        return try await write("purge agents") { db in
            let rows = try await db.raw("DELETE FROM agents WHERE expires_at_ms < \(bind: Self.milliseconds(time)) RETURNING id").all()
            var purged: [SPIFFEID] = []
            for row in rows {
                let text = try row.decode(column: "id", as: String.self)
                guard let id = try? SPIFFEID(parsing: text) else { throw StoreError(.corrupt, "agent id `\(text)` does not parse") }
                _ = try await self.recordChange(.agentPurged, recordID: text, at: ms, in: db)
                purged.append(id)
            }
            purged.sort { $0.uri < $1.uri }
            _ = try await self.appendAudit(try Self.auditEvents(removing: purged.map(\.uri), audit), in: db)
            try self.fault(.beforeCommit)
            return purged
        }
    }

    static func decodeAgent(_ row: any SQLRow) throws -> AgentRecord {
        let text = try row.decode(column: "id", as: String.self)
        func corrupt(_ what: String) -> StoreError { StoreError(.corrupt, "agent `\(text)` has a stored \(what) that does not parse") }
        guard let id = try? SPIFFEID(parsing: text) else { throw corrupt("id") }
        guard let selectorTexts = try? JSONDecoder().decode([String].self, from: Data(try row.decode(column: "selectors", as: String.self).utf8)) else {
            throw corrupt("selector list")
        }
        var selectors: [Selector] = []
        for selector in selectorTexts {
            guard let parsed = try? Selector(parsing: selector) else { throw corrupt("selector `\(selector)`") }
            selectors.append(parsed)
        }
        return AgentRecord(
            id: id, attestationType: try row.decode(column: "attestation_type", as: String.self), selectors: selectors,
            serialNumber: try row.decode(column: "serial_number", as: String.self),
            expiresAt: date(try row.decode(column: "expires_at_ms", as: Int64.self)),
            banned: try row.decode(column: "banned", as: Int64.self) != 0,
            canReattest: try row.decode(column: "can_reattest", as: Int64.self) != 0,
            createdAt: date(try row.decode(column: "created_at_ms", as: Int64.self)),
            updatedAt: date(try row.decode(column: "updated_at_ms", as: Int64.self)))
    }
}
