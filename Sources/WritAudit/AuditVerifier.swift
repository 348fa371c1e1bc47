import MerkleLog
import WritStore

/// What verification found wrong, at the first index it could name.
public struct AuditVerificationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The first bad index when it can be named; nil when the damage lies somewhere before
    /// `checkpointSize` but the stored hashes were rewritten to match.
    public let index: UInt64?
    public let message: String
    public var description: String { index.map { "index \($0): \(message)" } ?? message }

    public init(index: UInt64?, message: String) {
        self.index = index
        self.message = message
    }
}

/// Recomputes a log's tree from its event bodies, streamed in index order, and holds it to
/// checkpoints (opened and signature-checked by the caller) and, where the datastore's own leaf
/// hashes are given, to those — so that the first damaged index can be named. Memory stays
/// logarithmic in the log's size: only the right edge of the tree is kept.
public struct AuditVerifier: Sendable {
    /// Checkpoints to hold the log to, smallest first.
    let checkpoints: [Checkpoint]
    private var next = 0
    private var range = CompactRange()
    public private(set) var verifiedCheckpoints: [Checkpoint] = []

    public init(checkpoints: [Checkpoint]) {
        self.checkpoints = checkpoints.sorted { $0.size < $1.size }
    }

    /// The events seen so far.
    public var size: UInt64 { range.size }
    /// The root of the events seen so far, recomputed from their bodies.
    public var root: MerkleHash { range.root }

    /// Takes the next event. `storedLeaf` is the leaf hash the datastore holds for it, when known.
    public mutating func add(index: UInt64, body: [UInt8], storedLeaf: MerkleHash? = nil) throws(AuditVerificationError) {
        guard index == range.size else {
            throw AuditVerificationError(index: range.size, message: index > range.size
                                         ? "missing: the next event has index \(index)" : "index \(index) appears again")
        }
        let leaf = MerkleHash.leaf(body)
        if let storedLeaf, storedLeaf != leaf {
            throw AuditVerificationError(index: index, message: "the event's body does not hash to its stored leaf hash (the body or the hash was changed)")
        }
        range.append(leaf)
        try checkReached()
    }

    /// Checks that every checkpoint was reached; call after the last event.
    public mutating func finish() throws(AuditVerificationError) {
        try checkReached()
        if let beyond = checkpoints.first(where: { $0.size > range.size }) {
            throw AuditVerificationError(index: range.size, message: "the log ends after \(range.size) events, but a checkpoint of \(beyond.size) was signed: events from here were removed")
        }
    }

    private mutating func checkReached() throws(AuditVerificationError) {
        while next < checkpoints.count, checkpoints[next].size <= range.size {
            let checkpoint = checkpoints[next]
            if checkpoint.size == range.size {
                guard checkpoint.root == range.root else {
                    throw AuditVerificationError(index: nil, message: "the first \(checkpoint.size) events do not reproduce the root of the checkpoint of that size: an event before index \(checkpoint.size) was changed, removed or reordered (with its stored hashes rewritten to match)")
                }
                verifiedCheckpoints.append(checkpoint)
            }
            next += 1
        }
    }
}

extension AuditVerifier {
    /// Verifies the log in `store` from its bodies: index continuity, every body against its
    /// stored leaf hash, and the recomputed tree against `checkpoints` (each already opened and
    /// signature-checked). Reads `pageSize` events at a time; holds O(log n) hashes.
    public static func verify(store: any Datastore, checkpoints: [Checkpoint], pageSize: Int = 1000) async throws -> AuditVerifier {
        var verifier = AuditVerifier(checkpoints: checkpoints)
        let size = try await store.auditSize()
        var from: UInt64 = 0
        while from < size {
            let to = min(from + UInt64(max(1, pageSize)), size)
            let events = try await store.auditEvents(from..<to)
            let leaves = try await store.auditSubtrees(Set((from..<to).map { Subtree(level: 0, index: $0) }))
            for event in events {
                let index = event.index ?? verifier.size
                guard let stored = leaves[Subtree(level: 0, index: index)] else {
                    throw AuditVerificationError(index: index, message: "the event's stored leaf hash is missing")
                }
                try verifier.add(index: index, body: event.body, storedLeaf: stored)
            }
            if verifier.size < to {
                throw AuditVerificationError(index: verifier.size, message: "missing: no event with this index in a log of \(size)")
            }
            from = to
        }
        try verifier.finish()
        return verifier
    }
}
