/// Why a token is not a valid JWT-SVID (JWT-SVID.md §3–§5); each refusal has its own code.
public struct JWTSVIDError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The rule that was broken.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// Not three base64url parts of JSON, or bad base64url/JSON inside.
        case malformed
        /// The JWS JSON serialization, or several signatures: only the compact form is accepted.
        case notCompactSerialization = "not_compact_serialization"
        /// `alg` is missing, `none`, an HMAC algorithm or otherwise not allowed.
        case algorithmNotAllowed = "algorithm_not_allowed"
        /// `alg` does not fit the key named by `kid`.
        case algorithmKeyMismatch = "algorithm_key_mismatch"
        /// No `kid` header.
        case missingKeyID = "missing_key_id"
        /// The `kid` names no JWT authority of the bundle.
        case unknownKeyID = "unknown_key_id"
        /// The `kid` names an X.509 authority, which may not sign JWT-SVIDs.
        case keyIDIsX509Authority = "key_id_is_x509_authority"
        /// `typ` is present and neither `JWT` nor `JOSE`.
        case invalidType = "invalid_type"
        /// A `crit` header names extensions this validator does not understand.
        case unsupportedCriticalHeader = "unsupported_critical_header"
        /// The signature does not verify with the key named by `kid`.
        case badSignature = "bad_signature"
        /// No `aud` claim (or an empty one).
        case missingAudience = "missing_audience"
        /// No `exp` claim.
        case missingExpiry = "missing_expiry"
        /// A time claim is not a number.
        case invalidClaim = "invalid_claim"
        /// `exp` is in the past (beyond the leeway).
        case expired
        /// `nbf` or `iat` is in the future (beyond the leeway).
        case notYetValid = "not_yet_valid"
        /// The expected audience is not in `aud`.
        case wrongAudience = "wrong_audience"
        /// `sub` is missing, not a SPIFFE ID, or a trust-domain root ID.
        case invalidSubject = "invalid_subject"
        /// `sub` is outside the bundle's trust domain.
        case subjectOutsideTrustDomain = "subject_outside_trust_domain"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
