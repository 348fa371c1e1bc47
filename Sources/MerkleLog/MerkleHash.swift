import Crypto
import Foundation

/// A SHA-256 hash in a transparency log's Merkle tree (RFC 6962 §2.1 / RFC 9162 §2.1.1):
/// leaves are hashed with a 0x00 prefix and interior nodes with 0x01, so that no leaf can pass
/// for a node.
public struct MerkleHash: Sendable, Hashable, CustomStringConvertible {
    /// The 32 bytes.
    public let bytes: [UInt8]

    /// The hash as it is: exactly 32 bytes, or nil.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    init(digest: SHA256.Digest) { bytes = Array(digest) }

    /// `SHA-256(0x00 ‖ data)`: the hash of the leaf holding `data`.
    public static func leaf<D: DataProtocol>(_ data: D) -> MerkleHash {
        var hasher = SHA256()
        hasher.update(data: [0x00])
        hasher.update(data: data)
        return MerkleHash(digest: hasher.finalize())
    }

    /// `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node.
    public static func node(_ left: MerkleHash, _ right: MerkleHash) -> MerkleHash {
        var hasher = SHA256()
        hasher.update(data: [0x01])
        hasher.update(data: left.bytes)
        hasher.update(data: right.bytes)
        return MerkleHash(digest: hasher.finalize())
    }

    /// The root of the empty tree: `SHA-256()` of nothing.
    public static let empty = MerkleHash(digest: SHA256.hash(data: [UInt8]()))

    /// Lowercase hex.
    public var hex: String { bytes.map { String(format: "%02x", $0) }.joined() }
    /// Standard base64 (RFC 4648 §4), as checkpoints and proofs write hashes.
    public var base64: String { Data(bytes).base64EncodedString() }
    public var description: String { hex }

    /// A hash from lowercase or uppercase hex (64 digits), or nil.
    public init?(hex: String) {
        guard hex.utf8.count == 64 else { return nil }
        var bytes: [UInt8] = []
        var iterator = hex.utf8.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            guard let h = Self.nibble(high), let l = Self.nibble(low) else { return nil }
            bytes.append(h << 4 | l)
        }
        self.init(bytes: bytes)
    }

    /// A hash from standard base64 (exactly 32 bytes), or nil.
    public init?(base64: String) {
        guard let data = Data(base64Encoded: base64) else { return nil }
        self.init(bytes: Array(data))
    }

    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
