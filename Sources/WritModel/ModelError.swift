/// Why a registry value (an entry, a selector, a query) was refused. The message names the
/// field and the rule; ``field`` is the JSON field at fault, when there is one.
public struct ModelError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was wrong.
    public enum Code: String, Sendable, Hashable {
        /// A selector is malformed or of an unknown type.
        case invalidSelector = "invalid_selector"
        /// A SPIFFE ID is malformed, outside the trust domain, or reserved.
        case invalidSPIFFEID = "invalid_spiffe_id"
        /// A field of an entry is out of range or malformed.
        case invalidEntry = "invalid_entry"
        /// A query (filter, page size, page token) is malformed.
        case invalidQuery = "invalid_query"
    }

    public let code: Code
    public let message: String
    /// The JSON field at fault (`spiffe_id`, `selectors`, `x509_svid_ttl`), if one is.
    public let field: String?

    public init(_ code: Code, _ message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String { message }
}
