/// Why a node attestation was refused; the message names what was wrong with the node's
/// evidence (never a secret).
public struct NodeAttestationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The rule the evidence broke.
    public enum Code: String, Sendable, Hashable {
        /// The evidence does not parse (not concatenated DER certificates, empty).
        case malformedEvidence = "malformed_evidence"
        /// The trust configuration itself is unusable (unreadable file, no CA certificate).
        case invalidConfiguration = "invalid_configuration"
        /// The node certificate does not chain to a CA the server trusts for this attestor.
        case untrustedCertificate = "untrusted_certificate"
        /// The node certificate (or a CA on its path) is outside its validity window.
        case certificateNotValidNow = "certificate_not_valid_now"
        /// The node certificate is not an end-entity signing certificate.
        case unsuitableCertificate = "unsuitable_certificate"
        /// The challenge response came after the challenge's lifetime.
        case challengeExpired = "challenge_expired"
        /// The challenge response is not a signature over this challenge by the node's key.
        case badChallengeResponse = "bad_challenge_response"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
