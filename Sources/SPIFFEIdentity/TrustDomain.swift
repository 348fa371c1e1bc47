/// A SPIFFE trust domain name, valid by construction.
///
/// Per SPIFFE-ID.md §2.1 the name consists only of lowercase letters, digits, `.`, `-` and `_`,
/// is not empty and is at most 255 bytes long.
public struct TrustDomain: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    /// The trust domain name, e.g. `example.org`.
    public let name: String

    /// The largest trust domain name the specification allows, in bytes.
    public static let maximumLength = 255

    /// Parses a trust domain name (`example.org`) or takes the trust domain of a SPIFFE ID
    /// (`spiffe://example.org/anything`).
    public init(parsing text: String) throws(SPIFFEIDError) {
        if text.utf8.starts(with: SPIFFEID.schemePrefix.utf8) {
            self = try SPIFFEID(parsing: text).trustDomain
            return
        }
        if text.isEmpty { throw SPIFFEIDError(.missingTrustDomain, "trust domain is empty") }
        if text.utf8.contains(UInt8(ascii: ":")) && !text.utf8.contains(where: { !Self.isNameByte($0) && $0 != UInt8(ascii: ":") }) {
            // `example.org:8080` — a port is never part of a trust domain.
            throw SPIFFEIdentityRules.portError(text)
        }
        try SPIFFEIdentityRules.checkTrustDomain(text.utf8[...], in: text)
        self.name = text
    }

    /// Creates a trust domain from bytes already checked by the ID parser.
    init(validatedName: String) { self.name = validatedName }

    /// The root SPIFFE ID of this trust domain, `spiffe://<name>`; it names the trust domain and
    /// is never a workload identity.
    public var id: SPIFFEID { SPIFFEID(validatedTrustDomain: self, path: "") }

    /// The name, e.g. `example.org`.
    public var description: String { name }

    /// Whether a byte may appear in a trust domain name.
    @inlinable
    public static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    public static func < (lhs: TrustDomain, rhs: TrustDomain) -> Bool { lhs.name < rhs.name }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(parsing: text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}
