/// The right edge of a log's tree: the complete subtrees covering leaves `0..<size`, at most one
/// per level, so O(log n) hashes. Appending a leaf merges equal subtrees like a binary counter
/// carries, and reports each subtree it completes (what a log stores); the root is their fold.
/// It is how a log appends without reading its history, and how a verifier recomputes a root
/// from the entries alone in logarithmic memory.
public struct CompactRange: Sendable, Hashable {
    /// Leaves appended so far.
    public private(set) var size: UInt64 = 0
    /// ``Subtree/covering(_:)`` of `0..<size`, with hashes, largest first.
    public private(set) var frontier: [(subtree: Subtree, hash: MerkleHash)] = []

    /// The empty tree.
    public init() {}

    /// The tree of `size` leaves, from the hashes of ``Subtree/covering(_:)`` of `0..<size`.
    public init(size: UInt64, lookup: [Subtree: MerkleHash]) throws(MerkleError) {
        self.size = size
        for subtree in Subtree.covering(0..<size) {
            guard let hash = lookup[subtree] else { throw MerkleError("the hash of subtree \(subtree) is missing") }
            frontier.append((subtree, hash))
        }
    }

    /// Appends the leaf with hash `leaf`; returns the subtrees it completed, the leaf first.
    @discardableResult
    public mutating func append(_ leaf: MerkleHash) -> [(subtree: Subtree, hash: MerkleHash)] {
        var completed = [(subtree: Subtree(level: 0, index: size), hash: leaf)]
        frontier.append(completed[0])
        while frontier.count >= 2, frontier[frontier.count - 1].subtree.level == frontier[frontier.count - 2].subtree.level {
            let right = frontier.removeLast(), left = frontier.removeLast()
            let parent = (subtree: Subtree(level: left.subtree.level + 1, index: left.subtree.index / 2), hash: MerkleHash.node(left.hash, right.hash))
            frontier.append(parent)
            completed.append(parent)
        }
        size += 1
        return completed
    }

    /// The root of the tree so far (``MerkleHash/empty`` for no leaves).
    public var root: MerkleHash {
        guard var folded = frontier.last?.hash else { return .empty }
        for entry in frontier.dropLast().reversed() { folded = .node(entry.hash, folded) }
        return folded
    }

    public static func == (lhs: CompactRange, rhs: CompactRange) -> Bool {
        lhs.size == rhs.size && lhs.frontier.map(\.hash) == rhs.frontier.map(\.hash)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(size)
        hasher.combine(frontier.map(\.hash))
    }
}
