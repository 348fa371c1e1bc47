/// Why bytes are not a valid trust bundle or JWK.
public struct TrustBundleError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The rule that was broken.
    public enum Code: String, Sendable, Hashable {
        /// The document is not JSON, or nests deeper than ``JSONDepth/maximum``.
        case malformedJSON = "malformed_json"
        /// The top level is not an object with a `keys` array.
        case missingKeys = "missing_keys"
        /// A key entry is not an object or a member has the wrong JSON type.
        case invalidMember = "invalid_member"
        /// An `x509-svid` entry does not carry exactly one `x5c` certificate.
        case invalidX5C = "invalid_x5c"
        /// The certificate in `x5c` is not DER, or the key parameters do not match it.
        case invalidCertificate = "invalid_certificate"
        /// A `jwt-svid` entry has no `kid`, or two entries share one.
        case invalidKeyID = "invalid_key_id"
        /// The key parameters are missing, not base64url, or not a point/modulus of the curve/type.
        case invalidKey = "invalid_key"
        /// A key type or curve Writ does not accept in this position.
        case unsupportedKey = "unsupported_key"
        /// `spiffe_sequence` or `spiffe_refresh_hint` is not a non-negative integer.
        case invalidBundleMetadata = "invalid_bundle_metadata"
        /// PEM text without a certificate, or a block that does not parse.
        case invalidPEM = "invalid_pem"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
