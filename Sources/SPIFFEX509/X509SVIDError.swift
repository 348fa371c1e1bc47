/// Why a certificate request, key or certificate cannot become an X.509-SVID.
public struct X509SVIDError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The rule that was broken.
    public enum Code: String, Sendable, Hashable {
        /// The CSR is not DER/PEM PKCS#10.
        case malformedRequest = "malformed_request"
        /// The CSR's signature does not verify with its own public key.
        case badRequestSignature = "bad_request_signature"
        /// The key type or size is not accepted for an SVID.
        case unsupportedKey = "unsupported_key"
        /// The SPIFFE ID cannot name a workload (a root ID) or is outside the issuer's trust domain.
        case invalidIdentity = "invalid_identity"
        /// A DNS name is not an RFC 1123 host name (optionally `*.`-prefixed).
        case invalidDNSName = "invalid_dns_name"
        /// The validity window is empty or ends after the issuer's.
        case invalidValidity = "invalid_validity"
        /// Building or signing the certificate failed.
        case signingFailed = "signing_failed"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
