/// A Cedar string. Cedar compares, hashes and orders strings by Unicode code point, where Swift's
/// `String` treats canonically equivalent strings as equal (`"\u{e9}" == "e\u{301}"` in Swift,
/// not in Cedar). Every Cedar string — string values, entity ids, record keys and attribute
/// names — is one of these, so that two code-point sequences are never merged.
public struct CedarString: Hashable, Comparable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The text; compare it only through this type.
    public let text: String

    public init(_ text: String) { self.text = text }
    public init(stringLiteral value: String) { text = value }

    public static func == (lhs: CedarString, rhs: CedarString) -> Bool {
        // UTF-8 preserves code point identity and order, and is the native storage of String.
        lhs.text.utf8.elementsEqual(rhs.text.utf8)
    }

    public static func < (lhs: CedarString, rhs: CedarString) -> Bool {
        lhs.text.utf8.lexicographicallyPrecedes(rhs.text.utf8)
    }

    public func hash(into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        hasher.combine(0xFF as UInt8)
    }

    public var description: String { text }

    /// The number of Unicode scalars (what Cedar counts).
    public var scalarCount: Int { text.unicodeScalars.count }
}
