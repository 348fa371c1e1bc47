import MerkleLog
import WritStore

/// Inclusion and consistency proofs over the log in a datastore, each from exactly one read of
/// O(log n) stored subtree hashes (the plan's subtrees and the roots', at once).
public enum AuditProofs {
    /// An inclusion proof with the hashes it is checked against.
    public struct Inclusion: Sendable, Hashable {
        public let index: UInt64
        public let size: UInt64
        public let leaf: MerkleHash
        public let root: MerkleHash
        public let path: [MerkleHash]
        /// How many stored hashes the one read returned.
        public let hashesRead: Int
    }

    /// A consistency proof with both roots.
    public struct Consistency: Sendable, Hashable {
        public let oldSize: UInt64
        public let newSize: UInt64
        public let oldRoot: MerkleHash
        public let newRoot: MerkleHash
        public let path: [MerkleHash]
        public let hashesRead: Int
    }

    /// The proof that event `index` is in the tree of `size` events (`index < size ≤` the log's
    /// size; the caller checks the bounds).
    public static func inclusion(in store: any Datastore, index: UInt64, size: UInt64) async throws -> Inclusion {
        let path = try MerkleProofs.inclusionPlan(index: index, size: size)
        let root = MerkleProofs.rootPlan(size: size)
        let leaf = Subtree(level: 0, index: index)
        let hashes = try await store.auditSubtrees(path.subtrees.union(root.subtrees).union([leaf]))
        guard let leafHash = hashes[leaf] else { throw MerkleError("the stored hash of event \(index) is missing") }
        return Inclusion(index: index, size: size, leaf: leafHash, root: try root.hashes(hashes)[0], path: try path.hashes(hashes),
                         hashesRead: hashes.count)
    }

    /// The proof that the tree of `oldSize` events is a prefix of the tree of `newSize`.
    public static func consistency(in store: any Datastore, oldSize: UInt64, newSize: UInt64) async throws -> Consistency {
        let path = try MerkleProofs.consistencyPlan(oldSize: oldSize, newSize: newSize)
        let oldRoot = MerkleProofs.rootPlan(size: oldSize), newRoot = MerkleProofs.rootPlan(size: newSize)
        let hashes = try await store.auditSubtrees(path.subtrees.union(oldRoot.subtrees).union(newRoot.subtrees))
        return Consistency(oldSize: oldSize, newSize: newSize, oldRoot: try MerkleProofs.root(size: oldSize, hashes),
                           newRoot: try MerkleProofs.root(size: newSize, hashes), path: try path.hashes(hashes), hashesRead: hashes.count)
    }
}
