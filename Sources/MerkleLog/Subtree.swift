/// A complete, aligned subtree of a log's Merkle tree: the `2^level` leaves from
/// `index << level`. Every hash a proof or a root needs is a fold of such subtrees, and a log
/// stores each one's hash once it is complete, so a proof costs one lookup of O(log n) of them.
public struct Subtree: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// 0 for a single leaf.
    public let level: Int
    public let index: UInt64

    public init(level: Int, index: UInt64) {
        precondition(level >= 0 && level < 64, "a subtree level is within 0..<64")
        self.level = level
        self.index = index
    }

    /// The leaves it covers.
    public var leaves: Range<UInt64> { (index << UInt64(level))..<((index + 1) << UInt64(level)) }

    /// The two halves (nil for a leaf).
    public var children: (Subtree, Subtree)? {
        level == 0 ? nil : (Subtree(level: level - 1, index: index * 2), Subtree(level: level - 1, index: index * 2 + 1))
    }

    public var description: String { "\(level)/\(index)" }

    public static func < (lhs: Subtree, rhs: Subtree) -> Bool { (lhs.level, lhs.index) < (rhs.level, rhs.index) }

    /// The complete subtrees that make up `range`, largest first, as RFC 6962's recursive split
    /// meets them: the hash of the range is their hashes folded from the right,
    /// `node(s0, node(s1, … node(s_{k-1}, s_k)))`. `range` must start at a multiple of the
    /// largest power of two not above its length, as every range in the tree's definition does
    /// (the whole log `0..<n` among them).
    public static func covering(_ range: Range<UInt64>) -> [Subtree] {
        var out: [Subtree] = []
        var start = range.lowerBound
        while start < range.upperBound {
            var level = 63 - (range.upperBound - start).leadingZeroBitCount
            while level > 0, start & ((UInt64(1) << UInt64(level)) - 1) != 0 { level -= 1 }
            out.append(Subtree(level: level, index: start >> UInt64(level)))
            start += UInt64(1) << UInt64(level)
        }
        return out
    }
}

/// The largest power of two strictly below `n` (n ≥ 2): RFC 6962's split point `k`.
func splitPoint(_ n: UInt64) -> UInt64 {
    UInt64(1) << UInt64(63 - (n - 1).leadingZeroBitCount)
}
