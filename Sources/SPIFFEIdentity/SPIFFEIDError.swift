/// Why a string is not a valid SPIFFE ID or trust domain name.
///
/// Every rule of the SPIFFE ID specification (SPIFFE-ID.md, sections 2 and 2.1–2.3) that a parse
/// can break has its own ``Code``; ``message`` names the rule and quotes the offending input.
public struct SPIFFEIDError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The rule that was broken.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// The input is empty.
        case empty
        /// The scheme is missing, not `spiffe`, or not lowercase.
        case wrongScheme = "wrong_scheme"
        /// Nothing between `spiffe://` and the path.
        case missingTrustDomain = "missing_trust_domain"
        /// A trust-domain byte outside `[a-z0-9.-_]`.
        case invalidTrustDomainCharacter = "invalid_trust_domain_character"
        /// The trust domain is longer than 255 bytes.
        case trustDomainTooLong = "trust_domain_too_long"
        /// A path-segment byte outside `[A-Za-z0-9.-_]`.
        case invalidPathCharacter = "invalid_path_character"
        /// Two consecutive slashes (`//`) in the path.
        case emptySegment = "empty_segment"
        /// A `.` or `..` segment.
        case dotSegment = "dot_segment"
        /// The path ends with `/`.
        case trailingSlash = "trailing_slash"
        /// A path given on its own does not begin with `/`.
        case pathNotAbsolute = "path_not_absolute"
        /// The whole ID is longer than 2048 bytes.
        case idTooLong = "id_too_long"
        /// A `:port` after the trust domain.
        case portNotAllowed = "port_not_allowed"
        /// A `user@` before the trust domain.
        case userInfoNotAllowed = "userinfo_not_allowed"
        /// A `?query`.
        case queryNotAllowed = "query_not_allowed"
        /// A `#fragment`.
        case fragmentNotAllowed = "fragment_not_allowed"
        /// A `%XX` escape anywhere.
        case percentEncodingNotAllowed = "percent_encoding_not_allowed"
        /// The root ID `spiffe://<td>` names a trust domain, not a workload.
        case rootNotAWorkload = "root_not_a_workload"
        /// The ID's trust domain is not the one required.
        case trustDomainMismatch = "trust_domain_mismatch"
    }

    /// The rule that was broken.
    public let code: Code
    /// A lowercase message naming the rule, with the offending input in backticks.
    public let message: String

    /// Creates an error with a code and a message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
