import Foundation

/// The bodies of `/v1/audit/…`: the audit log's events, checkpoints, proofs and log keys.
extension AdminAPI {
    /// One event as stored: its index, its body (the exact canonical JSON hashed into its leaf,
    /// as a string, so that a verifier hashes the very bytes the log holds) and the leaf hash
    /// the datastore keeps for it (base64; absent when missing).
    public struct AuditEventItem: Codable, Sendable, Hashable {
        public var index: UInt64
        public var body: String
        public var leafHash: String?
        enum CodingKeys: String, CodingKey { case index, body, leafHash = "leaf_hash" }
        public init(index: UInt64, body: String, leafHash: String?) {
            self.index = index
            self.body = body
            self.leafHash = leafHash
        }
    }

    /// `GET /v1/audit/events` and `GET /v1/audit/search`: events in index order, and the log's
    /// size when they were read.
    public struct AuditEventPage: Codable, Sendable {
        public var size: UInt64
        public var events: [AuditEventItem]
        public init(size: UInt64, events: [AuditEventItem]) {
            self.size = size
            self.events = events
        }
    }

    /// A stored signed checkpoint: the C2SP signed note and who signed it.
    public struct AuditCheckpoint: Codable, Sendable, Hashable {
        public var size: UInt64
        public var note: String
        public var keyName: String
        /// The signed-note key ID (the first four bytes of the key hash, big-endian).
        public var keyID: UInt32
        public var signedAt: Date
        enum CodingKeys: String, CodingKey { case size, note, keyName = "key_name", keyID = "key_id", signedAt = "signed_at" }
        public init(size: UInt64, note: String, keyName: String, keyID: UInt32, signedAt: Date) {
            self.size = size
            self.note = note
            self.keyName = keyName
            self.keyID = keyID
            self.signedAt = signedAt
        }
    }

    /// `GET /v1/audit/checkpoints`: newest (largest tree) first.
    public struct AuditCheckpointList: Codable, Sendable {
        public var checkpoints: [AuditCheckpoint]
        public init(checkpoints: [AuditCheckpoint]) { self.checkpoints = checkpoints }
    }

    /// `GET /v1/audit/proof/inclusion`: the C2SP/CCTV inclusion-proof shape (hashes base64).
    public struct AuditInclusionProof: Codable, Sendable, Hashable {
        public var leafIndex: UInt64
        public var treeSize: UInt64
        public var leafHash: String
        public var rootHash: String
        public var inclusionPath: [String]
        enum CodingKeys: String, CodingKey {
            case leafIndex = "leaf_index", treeSize = "tree_size", leafHash = "leaf_hash", rootHash = "root_hash", inclusionPath = "inclusion_path"
        }
        public init(leafIndex: UInt64, treeSize: UInt64, leafHash: String, rootHash: String, inclusionPath: [String]) {
            self.leafIndex = leafIndex
            self.treeSize = treeSize
            self.leafHash = leafHash
            self.rootHash = rootHash
            self.inclusionPath = inclusionPath
        }
    }

    /// `GET /v1/audit/proof/consistency`: the C2SP/CCTV consistency-proof shape.
    public struct AuditConsistencyProof: Codable, Sendable, Hashable {
        public var oldSize: UInt64
        public var newSize: UInt64
        public var oldRoot: String
        public var newRoot: String
        public var consistencyPath: [String]
        enum CodingKeys: String, CodingKey {
            case oldSize = "old_size", newSize = "new_size", oldRoot = "old_root", newRoot = "new_root", consistencyPath = "consistency_path"
        }
        public init(oldSize: UInt64, newSize: UInt64, oldRoot: String, newRoot: String, consistencyPath: [String]) {
            self.oldSize = oldSize
            self.newSize = newSize
            self.oldRoot = oldRoot
            self.newRoot = newRoot
            self.consistencyPath = consistencyPath
        }
    }

    /// A server's log key as `GET /v1/audit/keys` lists it (retired ones included).
    public struct AuditLogKey: Codable, Sendable, Hashable {
        /// The C2SP signed-note verifier key, `<name>+<hex key id>+<base64 key>`.
        public var verifierKey: String
        public var serverID: String
        public var createdAt: Date
        public var retiredAt: Date?
        enum CodingKeys: String, CodingKey { case verifierKey = "verifier_key", serverID = "server_id", createdAt = "created_at", retiredAt = "retired_at" }
        public init(verifierKey: String, serverID: String, createdAt: Date, retiredAt: Date?) {
            self.verifierKey = verifierKey
            self.serverID = serverID
            self.createdAt = createdAt
            self.retiredAt = retiredAt
        }
    }

    /// `GET /v1/audit/keys`.
    public struct AuditLogKeyList: Codable, Sendable {
        public var keys: [AuditLogKey]
        public init(keys: [AuditLogKey]) { self.keys = keys }
    }
}
