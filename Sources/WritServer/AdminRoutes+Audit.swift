import Foundation
import Hummingbird
import MerkleLog
import WritAudit
import WritModel
import WritStore

/// `/v1/audit/…`: reading the audit log — events by index (export, tail) or by search,
/// checkpoints, inclusion and consistency proofs (each from one datastore read of O(log n)
/// hashes) and the log keys. Nothing here writes.
extension AdminRoutes {
    /// At most this many events per page.
    static let maximumAuditPage = 10_000

    func registerAudit(on v1: RouterGroup<AdminContext>) {
        v1.get("audit/events") { request, _ in
            try await guarded(nil) {
                let query = try QueryParameters(request, allowed: ["from", "to", "limit"])
                let size = try await store.auditSize()
                let from = try query.index("from") ?? 0
                let limit = try query.limit(default: 1000, maximum: Self.maximumAuditPage)
                let asked = try query.index("to")
                let to = min(asked ?? size, size, from &+ UInt64(limit))
                guard from <= (asked ?? from) else {
                    throw AdminAPI.ErrorBody(code: "invalid_argument", message: "`from` (\(from)) is after `to`", field: "from")
                }
                return Self.json(.ok, try await eventPage(from < to ? from..<to : from..<from, size: size))
            }
        }
        v1.get("audit/search") { request, _ in
            try await guarded(nil) {
                let query = try QueryParameters(request, allowed: ["type", "actor", "target", "since", "until", "after", "limit"])
                var search = AuditQuery(limit: try query.limit(default: 1000, maximum: Self.maximumAuditPage))
                if let type = query.single("type") {
                    guard type.wholeMatch(of: /[a-z0-9_.]+\*?|\*/) != nil else {
                        throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid type `\(type.prefix(64))`: an event type (`svid.x509.issue`) or a prefix ending in * (`svid.*`)", field: "type")
                    }
                    search.type = type == "*" ? nil : type
                }
                search.actor = query.single("actor")
                search.target = query.single("target")
                search.since = try query.time("since")
                search.until = try query.time("until")
                search.afterIndex = try query.index("after")
                let size = try await store.auditSize()
                let found = try await store.searchAuditEvents(search)
                return Self.json(.ok, AdminAPI.AuditEventPage(size: size, events: found.map {
                    AdminAPI.AuditEventItem(index: $0.index ?? 0, body: String(decoding: $0.body, as: UTF8.self), leafHash: nil)
                }))
            }
        }
        v1.get("audit/checkpoint") { request, _ in
            try await guarded(nil) {
                _ = try QueryParameters(request, allowed: [])
                guard let latest = try await store.auditCheckpoints(limit: 1).first else {
                    throw AdminAPI.ErrorBody(code: "not_found", message: "no checkpoint has been signed yet")
                }
                return Self.json(.ok, Self.describe(latest))
            }
        }
        v1.get("audit/checkpoints") { request, _ in
            try await guarded(nil) {
                let query = try QueryParameters(request, allowed: ["limit"])
                let limit = try query.limit(default: 100, maximum: Self.maximumAuditPage)
                return Self.json(.ok, AdminAPI.AuditCheckpointList(checkpoints: try await store.auditCheckpoints(limit: limit).map(Self.describe)))
            }
        }
        v1.get("audit/proof/inclusion") { request, _ in
            try await guarded(nil) {
                let query = try QueryParameters(request, allowed: ["index", "size"])
                guard let index = try query.index("index") else {
                    throw AdminAPI.ErrorBody(code: "invalid_argument", message: "`index` (the event's index) is required", field: "index")
                }
                let size = try await proofSize(query.index("size"), field: "size")
                guard index < size else {
                    throw AdminAPI.ErrorBody(code: "invalid_argument", message: "index \(index) is not in a tree of \(size) events"
                                             + (query.single("size") == nil ? " (the latest checkpoint's size; pass `size` for a larger tree)" : ""), field: "index")
                }
                let proof: AuditProofs.Inclusion
                do { proof = try await AuditProofs.inclusion(in: store, index: index, size: size) } catch let error as MerkleError {
                    throw AdminAPI.ErrorBody(code: "unavailable", message: "the log cannot prove event \(index): \(error.message)")
                }
                return Self.json(.ok, AdminAPI.AuditInclusionProof(leafIndex: index, treeSize: size, leafHash: proof.leaf.base64,
                                                                   rootHash: proof.root.base64, inclusionPath: proof.path.map(\.base64)))
            }
        }
        v1.get("audit/proof/consistency") { request, _ in
            try await guarded(nil) {
                let query = try QueryParameters(request, allowed: ["from", "to"])
                guard let old = try query.index("from") else {
                    throw AdminAPI.ErrorBody(code: "invalid_argument", message: "`from` (the older tree size) is required", field: "from")
                }
                let new = try await proofSize(query.index("to"), field: "to")
                guard old <= new else {
                    throw AdminAPI.ErrorBody(code: "invalid_argument", message: "`from` (\(old)) is larger than `to` (\(new))", field: "from")
                }
                let proof: AuditProofs.Consistency
                do { proof = try await AuditProofs.consistency(in: store, oldSize: old, newSize: new) } catch let error as MerkleError {
                    throw AdminAPI.ErrorBody(code: "unavailable", message: "the log cannot prove consistency from \(old) to \(new): \(error.message)")
                }
                return Self.json(.ok, AdminAPI.AuditConsistencyProof(oldSize: old, newSize: new, oldRoot: proof.oldRoot.base64, newRoot: proof.newRoot.base64,
                                                                     consistencyPath: proof.path.map(\.base64)))
            }
        }
        v1.get("audit/keys") { request, _ in
            try await guarded(nil) {
                _ = try QueryParameters(request, allowed: [])
                return Self.json(.ok, AdminAPI.AuditLogKeyList(keys: try await store.auditLogKeys().map {
                    AdminAPI.AuditLogKey(verifierKey: $0.verifierKey, serverID: $0.serverID, createdAt: $0.createdAt, retiredAt: $0.retiredAt)
                }))
            }
        }
    }

    /// The events in `range` with their stored leaf hashes.
    private func eventPage(_ range: Range<UInt64>, size: UInt64) async throws -> AdminAPI.AuditEventPage {
        guard !range.isEmpty else { return AdminAPI.AuditEventPage(size: size, events: []) }
        let events = try await store.auditEvents(range)
        let leaves = try await store.auditSubtrees(Set(range.map { Subtree(level: 0, index: $0) }))
        return AdminAPI.AuditEventPage(size: size, events: events.map { event in
            let index = event.index ?? 0
            return AdminAPI.AuditEventItem(index: index, body: String(decoding: event.body, as: UTF8.self),
                                           leafHash: leaves[Subtree(level: 0, index: index)]?.base64)
        })
    }

    /// The tree size a proof is for: the one asked for (at most the log's size), or else the
    /// latest checkpoint's, so that the proof can be checked against a signed root.
    private func proofSize(_ asked: UInt64?, field: String) async throws -> UInt64 {
        let size = try await store.auditSize()
        if let asked {
            guard asked <= size else {
                throw AdminAPI.ErrorBody(code: "invalid_argument", message: "`\(field)` is \(asked), but the log holds \(size) events", field: field)
            }
            return asked
        }
        guard let latest = try await store.auditCheckpoints(limit: 1).first else {
            throw AdminAPI.ErrorBody(code: "not_found", message: "no checkpoint has been signed yet: pass `\(field)`")
        }
        return latest.size
    }

    static func describe(_ record: AuditCheckpointRecord) -> AdminAPI.AuditCheckpoint {
        AdminAPI.AuditCheckpoint(size: record.size, note: record.note, keyName: record.keyName, keyID: record.keyID, signedAt: record.signedAt)
    }
}

extension QueryParameters {
    /// A non-negative integer index or size, or nil when absent.
    func index(_ name: String) throws -> UInt64? {
        guard let text = single(name) else { return nil }
        guard let value = UInt64(text), value < UInt64(Int64.max) else {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid \(name) `\(text.prefix(32))`: a non-negative integer", field: name)
        }
        return value
    }

    func limit(default fallback: Int, maximum: Int) throws -> Int {
        guard let text = single("limit") else { return fallback }
        guard let value = Int(text), (1...maximum).contains(value) else {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid limit `\(text.prefix(32))`: between 1 and \(maximum)", field: "limit")
        }
        return value
    }

    /// An RFC 3339 time, or nil when absent.
    func time(_ name: String) throws -> Date? {
        guard let text = single(name) else { return nil }
        guard let date = AdminAPI.parseTime(text) else {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid \(name) `\(text.prefix(64))`: an RFC 3339 time such as 2026-01-02T03:04:05Z", field: name)
        }
        return date
    }
}
