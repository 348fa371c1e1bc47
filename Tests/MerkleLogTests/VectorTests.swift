import Foundation
import MerkleLog
import Testing
import WritTestSupport

/// The C2SP/CCTV Merkle test vectors (Vectors/cctv-merkle, BSD-2, source commit in SOURCE.md):
/// tree heads, and inclusion and consistency proofs that must be accepted or refused.
@Suite struct VectorTests {
    static let folder = TestEnvironment.packageRoot.appendingPathComponent("Tests/MerkleLogTests/Vectors/cctv-merkle")

    static func cases(_ name: String) throws -> [[String: Any]] {
        let data = try Data(contentsOf: folder.appendingPathComponent(name))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]], "\(name) is a JSON array of objects")
    }

    static func hash(_ value: Any?) throws -> MerkleHash {
        try #require(MerkleHash(base64: value as? String ?? ""), "not a base64 SHA-256 hash: \(String(describing: value))")
    }

    static func hashes(_ value: Any?) throws -> [MerkleHash] {
        try ((value as? [Any]) ?? []).map { try hash($0) }
    }

    static func size(_ value: Any?) throws -> UInt64 {
        try #require((value as? NSNumber).map { $0.uint64Value }, "not a size: \(String(describing: value))")
    }

    @Test func treeHeads() throws {
        let heads = try Self.cases("merkle_tree.json")
        #expect(heads.count == 16)
        var range = CompactRange()
        for head in heads {
            let data = try #require(head["leaf_data"] as? String)
            let leaf = MerkleHash.leaf(Array(data.utf8))
            #expect(leaf == (try Self.hash(head["leaf_hash"])), "leaf \(data)")
            range.append(leaf)
            #expect(range.root == (try Self.hash(head["root_hash"])), "root of \(range.size)")
        }
    }

    @Test func inclusionProofs() throws {
        for (file, valid) in [("inclusion-valid.json", true), ("inclusion-invalid.json", false)] {
            let cases = try Self.cases(file)
            #expect(cases.count == 4, "\(file)")
            for item in cases {
                let check = {
                    try MerkleProofs.verifyInclusion(leaf: try Self.hash(item["leaf_hash"]), index: try Self.size(item["leaf_index"]), size: try Self.size(item["tree_size"]),
                                                     proof: try Self.hashes(item["inclusion_path"]), root: try Self.hash(item["root_hash"]))
                }
                if valid { #expect(throws: Never.self, "\(item)") { try check() } } else { #expect(throws: MerkleError.self, "\(item)") { try check() } }
            }
        }
        // The valid paths are the ones Writ's own plans produce for the CCTV tree.
        var store = SubtreeStore()
        for letter in "abcdefghij" { store.append(Array(String(letter).utf8)) }
        var reads = 0
        for item in try Self.cases("inclusion-valid.json") {
            let plan = try MerkleProofs.inclusionPlan(index: try Self.size(item["leaf_index"]), size: try Self.size(item["tree_size"]))
            #expect(try store.answer(plan, reads: &reads) == (try Self.hashes(item["inclusion_path"])), "\(item)")
        }
    }

    @Test func consistencyProofs() throws {
        for (file, valid, count) in [("consistency-valid.json", true, 4), ("consistency-invalid.json", false, 16)] {
            let cases = try Self.cases(file)
            #expect(cases.count == count, "\(file)")
            for item in cases {
                let check = {
                    try MerkleProofs.verifyConsistency(oldSize: try Self.size(item["old_size"]), newSize: try Self.size(item["new_size"]),
                                                       oldRoot: try Self.hash(item["old_root"]), newRoot: try Self.hash(item["new_root"]),
                                                       proof: try Self.hashes(item["consistency_path"]))
                }
                if valid { #expect(throws: Never.self, "\(item)") { try check() } } else { #expect(throws: MerkleError.self, "\(item)") { try check() } }
            }
        }
        var store = SubtreeStore()
        for letter in "abcdefghij" { store.append(Array(String(letter).utf8)) }
        var reads = 0
        for item in try Self.cases("consistency-valid.json") {
            let plan = try MerkleProofs.consistencyPlan(oldSize: try Self.size(item["old_size"]), newSize: try Self.size(item["new_size"]))
            #expect(try store.answer(plan, reads: &reads) == (try Self.hashes(item["consistency_path"])), "\(item)")
        }
    }
}
