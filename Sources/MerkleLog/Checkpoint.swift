import Foundation

/// A transparency log checkpoint (c2sp.org/tlog-checkpoint): the body a log signs as a note —
/// its origin line, the tree size in decimal, the root hash in base64, then any extension lines.
public struct Checkpoint: Sendable, Hashable {
    /// The log's name, by convention a schema-less URL (`example.org/writ/audit`).
    public let origin: String
    public let size: UInt64
    public let root: MerkleHash
    /// Extra lines after the root, each non-empty.
    public let extensions: [String]

    public init(origin: String, size: UInt64, root: MerkleHash, extensions: [String] = []) throws(NoteError) {
        guard !origin.isEmpty, !origin.contains("\n") else { throw NoteError("a checkpoint origin is one non-empty line") }
        guard extensions.allSatisfy({ !$0.isEmpty && !$0.contains("\n") }) else { throw NoteError("checkpoint extension lines are non-empty single lines") }
        self.origin = origin
        self.size = size
        self.root = root
        self.extensions = extensions
    }

    /// The note text: `origin\nsize\nbase64 root\n` and the extension lines.
    public var text: String {
        ([origin, String(size), root.base64] + extensions).map { $0 + "\n" }.joined()
    }

    /// Reads a checkpoint body (the text of a signed note).
    public init(text: String) throws(NoteError) {
        guard text.hasSuffix("\n") else { throw NoteError("a checkpoint ends with a newline") }
        let lines = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 3 else { throw NoteError("a checkpoint has an origin, a tree size and a root hash line") }
        guard let size = UInt64(lines[1]), lines[1] == String(size) else {
            throw NoteError("the checkpoint tree size is not a decimal number without leading zeros: `\(lines[1])`")
        }
        guard let root = MerkleHash(base64: lines[2]), lines[2] == root.base64 else {
            throw NoteError("the checkpoint root is not the base64 of 32 bytes: `\(lines[2])`")
        }
        try self.init(origin: lines[0], size: size, root: root, extensions: Array(lines.dropFirst(3)))
    }

    /// The checkpoint of a signed note, checked against `verifiers`: at least one must have
    /// signed it, and the origin must be `origin` when given.
    public static func open(_ note: String, verifiers: [NoteVerifier], origin: String? = nil) throws(NoteError) -> (checkpoint: Checkpoint, signedBy: [NoteVerifier]) {
        let parsed = try SignedNote(parsing: note)
        let checkpoint = try Checkpoint(text: parsed.text)
        if let origin, checkpoint.origin != origin {
            throw NoteError("the checkpoint is of `\(checkpoint.origin)`, not `\(origin)`")
        }
        let signers = try parsed.verified(by: verifiers)
        guard !signers.isEmpty else {
            throw NoteError("no signature on the checkpoint is by a trusted key (signed by: \(parsed.signatures.map { "\($0.name)/\(String(format: "%08x", $0.keyID))" }.joined(separator: ", ")))")
        }
        return (checkpoint, signers)
    }
}
