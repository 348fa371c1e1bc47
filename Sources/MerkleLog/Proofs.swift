/// Why a Merkle proof, a root or a tree size was refused.
public struct MerkleError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// What a proof or a root is made of: for each hash it holds, the complete subtrees whose hashes
/// fold into it. A log answers a plan by looking up `subtrees` (O(log n) of them, at once).
public struct MerklePlan: Sendable, Hashable {
    /// One entry per hash of the result, in order; each folds its subtrees from the right.
    public let parts: [[Subtree]]

    /// Every subtree the plan needs, each once.
    public var subtrees: Set<Subtree> { Set(parts.joined()) }

    /// The hashes of the result, from the subtrees' hashes; throws when one is missing.
    public func hashes(_ lookup: [Subtree: MerkleHash]) throws(MerkleError) -> [MerkleHash] {
        var out: [MerkleHash] = []
        for part in parts {
            var folded: MerkleHash? = nil
            for subtree in part.reversed() {
                guard let hash = lookup[subtree] else { throw MerkleError("the hash of subtree \(subtree) is missing") }
                folded = folded.map { MerkleHash.node(hash, $0) } ?? hash
            }
            guard let folded else { throw MerkleError("an empty part in a Merkle plan") }
            out.append(folded)
        }
        return out
    }
}

/// RFC 6962 / RFC 9162 tree heads and proofs: what to look up to build them, and how to check
/// them (RFC 9162 §2.1.3.2 and §2.1.4.2, step by step).
public enum MerkleProofs {
    /// The root of a tree of `size` leaves: one part (the empty tree has no parts; its root is
    /// ``MerkleHash/empty``).
    public static func rootPlan(size: UInt64) -> MerklePlan {
        MerklePlan(parts: size == 0 ? [] : [Subtree.covering(0..<size)])
    }

    /// The root from the plan's lookup.
    public static func root(size: UInt64, _ lookup: [Subtree: MerkleHash]) throws(MerkleError) -> MerkleHash {
        size == 0 ? .empty : try rootPlan(size: size).hashes(lookup)[0]
    }

    /// The audit path of leaf `index` in a tree of `size` leaves (RFC 6962 §2.1.1), from the
    /// leaf's sibling up.
    public static func inclusionPlan(index: UInt64, size: UInt64) throws(MerkleError) -> MerklePlan {
        guard index < size else { throw MerkleError("leaf \(index) is not in a tree of \(size) leaves") }
        var ranges: [Range<UInt64>] = []
        var (low, high) = (UInt64(0), size)
        // Walk down from the root, noting the sibling range at each split; the path lists them
        // from the bottom.
        while high - low > 1 {
            let k = splitPoint(high - low)
            if index < low + k {
                ranges.append((low + k)..<high)
                high = low + k
            } else {
                ranges.append(low..<(low + k))
                low += k
            }
        }
        return MerklePlan(parts: ranges.reversed().map(Subtree.covering))
    }

    /// The consistency proof between trees of `oldSize` and `newSize` leaves (RFC 6962 §2.1.2);
    /// empty when the sizes are equal or the old tree is empty.
    public static func consistencyPlan(oldSize: UInt64, newSize: UInt64) throws(MerkleError) -> MerklePlan {
        guard oldSize <= newSize else { throw MerkleError("a tree of \(oldSize) leaves cannot be a prefix of one of \(newSize)") }
        guard oldSize > 0, oldSize < newSize else { return MerklePlan(parts: []) }
        var ranges: [Range<UInt64>] = []
        var (low, high) = (UInt64(0), newSize)
        var whole = true
        // SUBPROOF(m, D[low:high], whole), unrolled; the proof lists the ranges from the bottom.
        while true {
            if oldSize == high {
                if !whole { ranges.append(low..<high) }
                break
            }
            let k = splitPoint(high - low)
            if oldSize <= low + k {
                ranges.append((low + k)..<high)
                high = low + k
            } else {
                ranges.append(low..<(low + k))
                low += k
                whole = false
            }
        }
        return MerklePlan(parts: ranges.reversed().map(Subtree.covering))
    }

    /// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`
    /// (RFC 9162 §2.1.3.2).
    public static func verifyInclusion(leaf: MerkleHash, index: UInt64, size: UInt64, proof: [MerkleHash], root: MerkleHash) throws(MerkleError) {
        guard index < size else { throw MerkleError("leaf \(index) is not in a tree of \(size) leaves") }
        var fn = index, sn = size - 1
        var r = leaf
        for p in proof {
            guard sn != 0 else { throw MerkleError("the inclusion proof is too long") }
            if fn & 1 == 1 || fn == sn {
                r = .node(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 { fn >>= 1; sn >>= 1 }
                }
            } else {
                r = .node(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else { throw MerkleError("the inclusion proof is too short") }
        guard r == root else { throw MerkleError("the inclusion proof leads to \(r), not the root \(root)") }
    }

    /// Checks that the tree of `oldSize` leaves with root `oldRoot` is a prefix of the tree of
    /// `newSize` leaves with root `newRoot` (RFC 9162 §2.1.4.2). Outside the RFC's `0 < old < new`,
    /// as the C2SP/CCTV vectors have it: equal sizes need an empty proof and equal roots, and every
    /// tree extends the empty one, whose root must be ``MerkleHash/empty``.
    public static func verifyConsistency(oldSize: UInt64, newSize: UInt64, oldRoot: MerkleHash, newRoot: MerkleHash,
                                         proof: [MerkleHash]) throws(MerkleError) {
        guard oldSize <= newSize else { throw MerkleError("a tree of \(oldSize) leaves cannot be a prefix of one of \(newSize)") }
        if oldSize == 0 {
            guard oldRoot == .empty else { throw MerkleError("the root of the empty tree is \(MerkleHash.empty), not \(oldRoot)") }
        }
        if oldSize == newSize {
            guard proof.isEmpty else { throw MerkleError("a consistency proof between equal sizes must be empty") }
            guard oldRoot == newRoot else { throw MerkleError("two roots for the same tree size: \(oldRoot) and \(newRoot)") }
            return
        }
        if oldSize == 0 {
            guard proof.isEmpty else { throw MerkleError("a consistency proof from the empty tree must be empty") }
            return
        }
        guard !proof.isEmpty else { throw MerkleError("the consistency proof is empty") }
        var path = proof
        if oldSize & (oldSize - 1) == 0 { path.insert(oldRoot, at: 0) }
        var fn = oldSize - 1, sn = newSize - 1
        while fn & 1 == 1 { fn >>= 1; sn >>= 1 }
        var fr = path[0], sr = path[0]
        for c in path.dropFirst() {
            guard sn != 0 else { throw MerkleError("the consistency proof is too long") }
            if fn & 1 == 1 || fn == sn {
                fr = .node(c, fr)
                sr = .node(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 { fn >>= 1; sn >>= 1 }
                }
            } else {
                sr = .node(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else { throw MerkleError("the consistency proof is too short") }
        guard fr == oldRoot else { throw MerkleError("the consistency proof leads to \(fr), not the old root \(oldRoot)") }
        guard sr == newRoot else { throw MerkleError("the consistency proof leads to \(sr), not the new root \(newRoot)") }
    }
}
