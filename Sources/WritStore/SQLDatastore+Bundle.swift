import Foundation
import SQLKit
import WritModel

/// The shared trust bundle: each server's contributions in `bundle_authorities`, the sequence in
/// `bundle_state` (one row), both changed in one transaction.
extension SQLDatastore {
    public func publishBundleAuthorities(serverID: String, _ authorities: [BundleAuthority], at time: Date) async throws(StoreError) -> SharedBundleRecord {
        guard !serverID.isEmpty else { throw StoreError(.invalidArgument, "a bundle contribution needs a server id") }
        for authority in authorities where authority.serverID != serverID {
            throw StoreError(.invalidArgument, "authority `\(authority.id)` is contributed by `\(authority.serverID)`, not `\(serverID)`")
        }
        let ms = Self.milliseconds(time)
        let wanted = Dictionary(authorities.filter { $0.expiresAt >= time }.map { ("\($0.kind.rawValue):\($0.id)", $0) }, uniquingKeysWith: { first, _ in first })
        return try await write("publish bundle authorities") { db in
            let mine = try await db.raw("SELECT * FROM bundle_authorities WHERE server_id = \(bind: serverID)").all().map(Self.decodeAuthority)
            let have = Dictionary(mine.map { ("\($0.kind.rawValue):\($0.id)", $0) }, uniquingKeysWith: { first, _ in first })
            let expired = try await db.raw("SELECT COUNT(*) AS n FROM bundle_authorities WHERE expires_at_ms < \(bind: ms)").first()?
                .decode(column: "n", as: Int64.self) ?? 0
            let changed = expired > 0 || Set(have.keys) != Set(wanted.keys)
                || wanted.contains { key, value in have[key].map { $0.data != value.data || abs($0.expiresAt.timeIntervalSince(value.expiresAt)) >= 0.002 } ?? true }
            if changed {
                _ = try await self.recordChange(.bundleUpdated, recordID: serverID, at: ms, in: db)
                try await db.raw("DELETE FROM bundle_authorities WHERE expires_at_ms < \(bind: ms)").run()
                try await db.raw("DELETE FROM bundle_authorities WHERE server_id = \(bind: serverID)").run()
                for authority in wanted.values.sorted(by: { ($0.kind.rawValue, $0.id) < ($1.kind.rawValue, $1.id) }) {
                    try await db.raw("""
                        INSERT INTO bundle_authorities (server_id, kind, authority_id, data, expires_at_ms, created_at_ms)
                        VALUES (\(bind: serverID), \(bind: authority.kind.rawValue), \(bind: authority.id),
                            \(bind: Data(authority.data).base64EncodedString()), \(bind: Self.milliseconds(authority.expiresAt)), \(bind: ms))
                        """).run()
                }
                try await db.raw("UPDATE bundle_state SET sequence = sequence + 1, updated_at_ms = \(bind: ms) WHERE id = 1").run()
                try self.fault(.beforeCommit)
            }
            return try await Self.loadSharedBundle(db)
        }
    }

    public func sharedBundle() async throws(StoreError) -> SharedBundleRecord {
        try await read("shared bundle") { db in try await Self.loadSharedBundle(db) }
    }

    static func loadSharedBundle(_ db: any SQLDatabase) async throws -> SharedBundleRecord {
        guard let sequence = try await db.raw("SELECT sequence FROM bundle_state WHERE id = 1").first()?.decode(column: "sequence", as: Int64.self) else {
            throw StoreError(.corrupt, "the bundle_state row is missing")
        }
        let rows = try await db.raw("SELECT * FROM bundle_authorities ORDER BY kind, authority_id, server_id").all()
        return SharedBundleRecord(sequence: sequence, authorities: try rows.map(Self.decodeAuthority))
    }

    static func decodeAuthority(_ row: any SQLRow) throws -> BundleAuthority {
        let id = try row.decode(column: "authority_id", as: String.self)
        let kindText = try row.decode(column: "kind", as: String.self)
        guard let kind = BundleAuthority.Kind(rawValue: kindText) else {
            throw StoreError(.corrupt, "bundle authority `\(id)` has an unknown kind `\(kindText)`")
        }
        guard let data = Data(base64Encoded: try row.decode(column: "data", as: String.self)) else {
            throw StoreError(.corrupt, "bundle authority `\(id)` has stored data that is not base64")
        }
        return BundleAuthority(serverID: try row.decode(column: "server_id", as: String.self), kind: kind, id: id, data: Array(data),
                               expiresAt: Self.date(try row.decode(column: "expires_at_ms", as: Int64.self)))
    }
}
