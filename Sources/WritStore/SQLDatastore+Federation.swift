import Foundation
import SPIFFEIdentity
import SQLKit
import WritModel

/// Federated bundles: one row per foreign trust domain in `federated_bundles`. Entries name
/// them in `federates_with`, and the store keeps the two consistent: an entry cannot name a trust
/// domain without a bundle, and a bundle cannot go while entries name it (unless the delete
/// mode says what becomes of them).
extension SQLDatastore {
    public func setFederatedBundle(_ bundle: FederatedBundleRecord, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> FederatedBundleRecord {
        try Self.checkAuditEvents(audit)
        guard let text = String(bytes: bundle.document, encoding: .utf8), !text.isEmpty else {
            throw StoreError(.invalidArgument, "the bundle document of `\(bundle.trustDomain)` must be non-empty UTF-8 JSON")
        }
        let ms = Self.milliseconds(time)
        let name = bundle.trustDomain.name
        return try await write("set federated bundle") { db in
            let revision = try await self.recordChange(.federatedBundleSet, recordID: name, at: ms, in: db)
            try await db.raw("DELETE FROM federated_bundles WHERE trust_domain = \(bind: name)").run()
            try await db.raw("""
                INSERT INTO federated_bundles (trust_domain, document, revision, updated_at_ms)
                VALUES (\(bind: name), \(bind: text), \(bind: revision), \(bind: ms))
                """).run()
            _ = try await self.appendAudit(audit, in: db)
            try self.fault(.beforeCommit)
            return FederatedBundleRecord(trustDomain: bundle.trustDomain, document: bundle.document, revision: revision, updatedAt: Self.date(ms))
        }
    }

    public func federatedBundle(_ trustDomain: TrustDomain) async throws(StoreError) -> FederatedBundleRecord? {
        try await read("get federated bundle") { db in
            try await db.raw("SELECT * FROM federated_bundles WHERE trust_domain = \(bind: trustDomain.name)").first().map(Self.decodeFederatedBundle)
        }
    }

    public func listFederatedBundles() async throws(StoreError) -> [FederatedBundleRecord] {
        try await read("list federated bundles") { db in
            try await db.raw("SELECT * FROM federated_bundles ORDER BY trust_domain").all().map(Self.decodeFederatedBundle)
        }
    }

    public func deleteFederatedBundle(_ trustDomain: TrustDomain, mode: FederatedBundleDeleteMode, at time: Date,
                                      audit: [AuditEventRecord]) async throws(StoreError) -> FederatedBundleDeletion {
        try Self.checkAuditEvents(audit)
        let ms = Self.milliseconds(time)
        let name = trustDomain.name
        return try await write("delete federated bundle") { db in
            guard let existing = try await db.raw("SELECT * FROM federated_bundles WHERE trust_domain = \(bind: name)").first().map(Self.decodeFederatedBundle) else {
                throw StoreError(.notFound, "no federated bundle for trust domain `\(name)`")
            }
            let federating = try await self.entriesFederating(with: trustDomain, in: db)
            switch mode {
            case .restrict:
                if !federating.isEmpty {
                    let shown = federating.prefix(5).map { "`\($0.id)`" }.joined(separator: ", ") + (federating.count > 5 ? ", …" : "")
                    throw StoreError(.conflict, "\(federating.count) entr\(federating.count == 1 ? "y federates" : "ies federate") with `\(name)` (\(shown)): "
                                     + "delete with mode dissociate (drop it from their federates_with) or delete (delete them)")
                }
            case .dissociate:
                for entry in federating {
                    let revision = try await self.recordChange(.entryUpdated, recordID: entry.id, at: ms, in: db)
                    try await db.raw("""
                        UPDATE entries SET federates_with = \(bind: Self.json(entry.federatesWith.filter { $0 != trustDomain }.map(\.name))),
                            revision = \(bind: revision), updated_at_ms = \(bind: ms) WHERE id = \(bind: entry.id)
                        """).run()
                }
            case .delete:
                for entry in federating {
                    _ = try await self.recordChange(.entryDeleted, recordID: entry.id, at: ms, in: db)
                    try await db.raw("DELETE FROM entry_selectors WHERE entry_id = \(bind: entry.id)").run()
                    try await db.raw("DELETE FROM entries WHERE id = \(bind: entry.id)").run()
                }
            }
            _ = try await self.recordChange(.federatedBundleDeleted, recordID: name, at: ms, in: db)
            try await db.raw("DELETE FROM federated_bundles WHERE trust_domain = \(bind: name)").run()
            _ = try await self.appendAudit(audit, in: db)
            try self.fault(.beforeCommit)
            return FederatedBundleDeletion(bundle: existing, affectedEntryIDs: federating.map(\.id))
        }
    }

    /// Refuses an entry naming a trust domain in `federates_with` that has no stored bundle.
    func requireFederatedBundles(_ entry: RegistrationEntry, in db: any SQLDatabase) async throws {
        for domain in Set(entry.federatesWith).sorted(by: { $0.name < $1.name }) {
            if try await db.raw("SELECT trust_domain FROM federated_bundles WHERE trust_domain = \(bind: domain.name)").first() == nil {
                throw StoreError(.invalidArgument, "invalid federates_with `\(domain.name)`: no bundle is stored for that trust domain (add it with `writ bundle set`)")
            }
        }
    }

    /// The entries whose `federates_with` names `trustDomain`, ordered by id.
    private func entriesFederating(with trustDomain: TrustDomain, in db: any SQLDatabase) async throws -> [RegistrationEntry] {
        // The JSON array holds the name quoted; LIKE narrows the scan (`_` may match more, never
        // less), and the decoded list decides.
        let rows = try await db.raw("SELECT * FROM entries WHERE federates_with LIKE \(bind: "%\"\(trustDomain.name)\"%") ORDER BY id").all()
        return try await loadEntries(rows, in: db).filter { $0.federatesWith.contains(trustDomain) }
    }

    static func decodeFederatedBundle(_ row: any SQLRow) throws -> FederatedBundleRecord {
        let name = try row.decode(column: "trust_domain", as: String.self)
        guard let domain = try? TrustDomain(parsing: name) else {
            throw StoreError(.corrupt, "federated bundle row has an invalid trust domain `\(name.prefix(64))`")
        }
        return FederatedBundleRecord(trustDomain: domain, document: Array(try row.decode(column: "document", as: String.self).utf8),
                                     revision: try row.decode(column: "revision", as: Int64.self),
                                     updatedAt: Self.date(try row.decode(column: "updated_at_ms", as: Int64.self)))
    }
}
