/// A Cedar string. Cedar compares, hashes and orders strings by Unicode code point, where Swift's
/// `String` treats canonically equivalent strings as equal (`"\u{e9}" == "e\u{301}"` in Swift,
/// not in Cedar). Every Cedar string — string values, entity ids, record keys and attribute
/// names — is one of these, so that two code-point sequences are never merged.
public struct CedarString: Hashable, Comparable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The text; compare it only through this type.
    public let text: String
    /// FNV-1a over the UTF-8 bytes, computed once: dictionary lookups by attribute name and entity
    /// id are on every decision's path, and rehashing the text each time dominated them.
    let digest: UInt64

    public init(_ text: String) {
        self.text = text
        digest = Self.digest(text)
    }

    public init(stringLiteral value: String) { self.init(value) }

    static func digest(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return hash
    }

    public static func == (lhs: CedarString, rhs: CedarString) -> Bool {
        // UTF-8 preserves code point identity and order, and is the native storage of String.
        guard lhs.digest == rhs.digest else { return false }
        let a = lhs.text.utf8, b = rhs.text.utf8
        guard a.count == b.count else { return false }
        let fast = a.withContiguousStorageIfAvailable { pa in
            b.withContiguousStorageIfAvailable { pb in pa.elementsEqual(pb) }
        }
        if let fast, let equal = fast { return equal }
        return a.elementsEqual(b)
    }

    public static func < (lhs: CedarString, rhs: CedarString) -> Bool {
        lhs.text.utf8.lexicographicallyPrecedes(rhs.text.utf8)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(digest)
    }

    public var description: String { text }

    /// The number of Unicode scalars (what Cedar counts).
    public var scalarCount: Int { text.unicodeScalars.count }
}
