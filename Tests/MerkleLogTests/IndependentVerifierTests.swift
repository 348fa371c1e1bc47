import Crypto
import Foundation
import MerkleLog
import Testing
import WritTestSupport

/// Writ's roots, audit paths, consistency proofs and signed checkpoints, recomputed by an
/// independent Python implementation (Tests/interop/merkle_check.py: hashlib from RFC 6962's
/// definitions, `cryptography` for the Ed25519 note signature) for random trees.
@Suite struct IndependentVerifierTests {
    @Test func pythonRecomputesTheSameRootsAndProofs() async throws {
        for seed in TestEnvironment.seeds(fixed: [5]) {
            var rng = SeededRandom(seed: seed)
            var trees: [[String: Any]] = []
            var first: SubtreeStore? = nil
            for _ in 0..<4 {
                let size = Int.random(in: 1...2_500, using: &rng)
                var store = SubtreeStore()
                var leaves: [String] = []
                for _ in 0..<size {
                    let data = (0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                    leaves.append(data.map { String(format: "%02x", $0) }.joined())
                    store.append(data)
                }
                var reads = 0
                var roots: [[String: Any]] = [], inclusion: [[String: Any]] = [], consistency: [[String: Any]] = []
                for _ in 0..<25 {
                    let n = UInt64.random(in: 1...UInt64(size), using: &rng)
                    roots.append(["size": n, "root": try MerkleProofs.root(size: n, store.hashes).base64])
                    let index = UInt64.random(in: 0..<n, using: &rng)
                    inclusion.append(["index": index, "size": n,
                                      "path": try store.answer(try MerkleProofs.inclusionPlan(index: index, size: n), reads: &reads).map(\.base64)])
                    let old = UInt64.random(in: 0...n, using: &rng)
                    consistency.append(["old": old, "new": n,
                                        "path": try store.answer(try MerkleProofs.consistencyPlan(oldSize: old, newSize: n), reads: &reads).map(\.base64)])
                }
                trees.append(["leaves": leaves, "roots": roots, "inclusion": inclusion, "consistency": consistency])
                if first == nil { first = store }
            }
            let signer = try NoteSigner(name: "example.org/writ/audit", privateKey: Curve25519.Signing.PrivateKey())
            let head = try #require(first)
            let checkpoint = try Checkpoint(origin: "example.org/writ/audit", size: UInt64(head.leaves.count), root: try MerkleProofs.root(size: UInt64(head.leaves.count), head.hashes))
            let document: [String: Any] = ["trees": trees, "checkpoint": ["note": try signer.sign(checkpoint.text), "verifier": signer.verifier.encoded]]

            let directory = try TemporaryDirectory(prefix: "writ-merkle")
            let file = directory.file("cases.json")
            try JSONSerialization.data(withJSONObject: document).write(to: file)
            let run = try await ProcessRunner.run(try TestEnvironment.interopPython(), [TestEnvironment.interopScript("merkle_check.py"), file.path])
            print("merkle_check.py (seed \(seed)): \(run.stdout.split(separator: "\n").last ?? "")")
            #expect(run.status == 0 && run.stdout.contains("\"agree\": true"), "\(run.summary)")
        }
    }
}
