import Foundation
import MerkleLog
import Testing
import WritTestSupport

/// RFC 6962's definitions written out literally (recursion over the leaf list), to hold the
/// subtree-planned roots and proofs of MerkleLog to.
enum Reference {
    static func mth(_ leaves: ArraySlice<MerkleHash>) -> MerkleHash {
        if leaves.isEmpty { return .empty }
        if leaves.count == 1 { return leaves.first! }
        let k = largestPowerOfTwoBelow(leaves.count)
        let start = leaves.startIndex
        return .node(mth(leaves[start..<(start + k)]), mth(leaves[(start + k)...]))
    }

    static func largestPowerOfTwoBelow(_ n: Int) -> Int {
        var k = 1
        while k * 2 < n { k *= 2 }
        return k
    }

    /// PATH(m, D[n]).
    static func path(_ m: Int, _ leaves: ArraySlice<MerkleHash>) -> [MerkleHash] {
        if leaves.count <= 1 { return [] }
        let k = largestPowerOfTwoBelow(leaves.count), start = leaves.startIndex
        if m < k { return path(m, leaves[start..<(start + k)]) + [mth(leaves[(start + k)...])] }
        return path(m - k, leaves[(start + k)...]) + [mth(leaves[start..<(start + k)])]
    }

    /// PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
    static func proof(_ m: Int, _ leaves: ArraySlice<MerkleHash>) -> [MerkleHash] { subproof(m, leaves, true) }

    static func subproof(_ m: Int, _ leaves: ArraySlice<MerkleHash>, _ whole: Bool) -> [MerkleHash] {
        let n = leaves.count, start = leaves.startIndex
        if m == n { return whole ? [] : [mth(leaves)] }
        let k = largestPowerOfTwoBelow(n)
        if m <= k { return subproof(m, leaves[start..<(start + k)], whole) + [mth(leaves[(start + k)...])] }
        return subproof(m - k, leaves[(start + k)...], false) + [mth(leaves[start..<(start + k)])]
    }
}

/// A log held in memory the way a datastore holds it: the hash of every complete subtree.
struct SubtreeStore {
    var hashes: [Subtree: MerkleHash] = [:]
    var range = CompactRange()
    var leaves: [MerkleHash] = []

    mutating func append(_ data: [UInt8]) {
        let leaf = MerkleHash.leaf(data)
        leaves.append(leaf)
        for (subtree, hash) in range.append(leaf) { hashes[subtree] = hash }
    }

    /// Looks up exactly what `plan` needs, counting the lookups.
    func answer(_ plan: MerklePlan, reads: inout Int) throws -> [MerkleHash] {
        let wanted = plan.subtrees
        reads += wanted.count
        return try plan.hashes(hashes.filter { wanted.contains($0.key) })
    }
}

@Suite struct MerkleTreeTests {
    static func store(_ count: Int) -> SubtreeStore {
        var store = SubtreeStore()
        for i in 0..<count { store.append(Array("leaf \(i)".utf8)) }
        return store
    }

    @Test func hashingIsRFC6962() {
        // SHA-256 of nothing, of 0x00, and of 0x01 ‖ two such leaves (computed independently).
        #expect(MerkleHash.empty.hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(MerkleHash.leaf([UInt8]()).hex == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        let leaf = MerkleHash.leaf([UInt8]())
        #expect(MerkleHash.node(leaf, leaf).hex == "fe43d66afa4a9a5c4f9c9da89f4ffb52635c8f342e7ffb731d68e36c5982072a")
        #expect(MerkleHash(hex: leaf.hex) == leaf && MerkleHash(base64: leaf.base64) == leaf)
        #expect(MerkleHash(hex: "00") == nil && MerkleHash(base64: "AAAA") == nil && MerkleHash(hex: String(repeating: "g", count: 64)) == nil)
    }

    /// Roots, audit paths and consistency proofs from subtree lookups equal RFC 6962's recursive
    /// definitions for every size, index and pair up to 70 leaves; each is accepted by the
    /// RFC 9162 verifiers, and each mutation of it refused.
    @Test func plansMatchTheRecursiveDefinitions() throws {
        let store = Self.store(70)
        var reads = 0
        for n in 0...70 {
            let leaves = store.leaves[0..<n]
            let root = try MerkleProofs.root(size: UInt64(n), store.hashes)
            #expect(root == Reference.mth(leaves), "root of \(n)")
            for m in 0..<n {
                let path = try store.answer(try MerkleProofs.inclusionPlan(index: UInt64(m), size: UInt64(n)), reads: &reads)
                #expect(path == Reference.path(m, leaves), "PATH(\(m), \(n))")
                try MerkleProofs.verifyInclusion(leaf: leaves[m], index: UInt64(m), size: UInt64(n), proof: path, root: root)
                #expect(throws: MerkleError.self) { try MerkleProofs.verifyInclusion(leaf: leaves[m], index: UInt64(m), size: UInt64(n), proof: path, root: .leaf([1])) }
                if n > 1 {
                    #expect(throws: MerkleError.self) { try MerkleProofs.verifyInclusion(leaf: leaves[(m + 1) % n], index: UInt64(m), size: UInt64(n), proof: path, root: root) }
                    #expect(throws: MerkleError.self) { try MerkleProofs.verifyInclusion(leaf: leaves[m], index: UInt64(m), size: UInt64(n), proof: path.dropLast(), root: root) }
                    var flipped = path
                    var bytes = flipped[0].bytes
                    bytes[31] ^= 1
                    flipped[0] = MerkleHash(bytes: bytes)!
                    #expect(throws: MerkleError.self) { try MerkleProofs.verifyInclusion(leaf: leaves[m], index: UInt64(m), size: UInt64(n), proof: flipped, root: root) }
                }
                #expect(throws: MerkleError.self) { try MerkleProofs.verifyInclusion(leaf: leaves[m], index: UInt64(m), size: UInt64(n), proof: path + [root], root: root) }
            }
            for m in 0...n {
                let proof = try store.answer(try MerkleProofs.consistencyPlan(oldSize: UInt64(m), newSize: UInt64(n)), reads: &reads)
                let expected = m == 0 ? [] : Reference.proof(m, leaves)
                #expect(proof == expected, "PROOF(\(m), \(n))")
                let old = Reference.mth(store.leaves[0..<m])
                try MerkleProofs.verifyConsistency(oldSize: UInt64(m), newSize: UInt64(n), oldRoot: old, newRoot: root, proof: proof)
                if m > 0 && m < n {
                    #expect(throws: MerkleError.self) { try MerkleProofs.verifyConsistency(oldSize: UInt64(m), newSize: UInt64(n), oldRoot: .leaf([9]), newRoot: root, proof: proof) }
                    #expect(throws: MerkleError.self) { try MerkleProofs.verifyConsistency(oldSize: UInt64(m), newSize: UInt64(n), oldRoot: old, newRoot: .leaf([9]), proof: proof) }
                    #expect(throws: MerkleError.self) { try MerkleProofs.verifyConsistency(oldSize: UInt64(m), newSize: UInt64(n), oldRoot: old, newRoot: root, proof: Array(proof.dropLast())) }
                    #expect(throws: MerkleError.self) { try MerkleProofs.verifyConsistency(oldSize: UInt64(m), newSize: UInt64(n), oldRoot: old, newRoot: root, proof: proof + [root]) }
                }
            }
        }
        #expect(throws: MerkleError.self) { try MerkleProofs.inclusionPlan(index: 5, size: 5) }
        #expect(throws: MerkleError.self) { try MerkleProofs.consistencyPlan(oldSize: 6, newSize: 5) }
    }

    /// A proof needs O(log n) subtree hashes: at most 2·log2(n) + 2 lookups at any size.
    @Test func proofsNeedLogarithmicallyManyLookups() throws {
        for exponent in [10, 20, 30, 40, 62] {
            for size in [UInt64(1) << UInt64(exponent), (UInt64(1) << UInt64(exponent)) - 1, (UInt64(1) << UInt64(exponent)) + 12_345] {
                let bound = 2 * (64 - size.leadingZeroBitCount) + 2
                for index in [UInt64(0), size / 3, size - 1] {
                    let plan = try MerkleProofs.inclusionPlan(index: index, size: size)
                    #expect(plan.subtrees.count <= bound, "inclusion \(index) of \(size): \(plan.subtrees.count) lookups")
                }
                for old in [UInt64(1), size / 2 + 1, size - 1] where old <= size {
                    let plan = try MerkleProofs.consistencyPlan(oldSize: old, newSize: size)
                    #expect(plan.subtrees.count <= bound, "consistency \(old)→\(size): \(plan.subtrees.count) lookups")
                }
                #expect(MerkleProofs.rootPlan(size: size).subtrees.count <= 64)
            }
        }
    }

    /// The right edge appends like a binary counter: its root is the tree's at every size, each
    /// subtree it reports complete has the hash of its leaves, and it resumes from stored hashes.
    @Test func theCompactRangeFollowsTheTree() throws {
        var range = CompactRange()
        #expect(range.root == .empty)
        var leaves: [MerkleHash] = []
        var stored: [Subtree: MerkleHash] = [:]
        for i in 0..<300 {
            let leaf = MerkleHash.leaf(Array("entry \(i)".utf8))
            leaves.append(leaf)
            for (subtree, hash) in range.append(leaf) {
                let covered = subtree.leaves
                #expect(hash == Reference.mth(leaves[Int(covered.lowerBound)..<Int(covered.upperBound)]), "\(subtree)")
                #expect(stored.updateValue(hash, forKey: subtree) == nil, "\(subtree) completed twice")
            }
            #expect(range.root == Reference.mth(leaves[...]), "root at \(i + 1)")
            #expect(range.frontier.count == (i + 1).nonzeroBitCount)
            if i % 37 == 0 {
                #expect(try CompactRange(size: range.size, lookup: stored) == range)
            }
        }
        #expect(stored.count == 2 * 300 - 300.nonzeroBitCount, "a log of n leaves stores 2n − popcount(n) subtrees")
        #expect(throws: MerkleError.self) { try CompactRange(size: 301, lookup: stored) }
    }
}
