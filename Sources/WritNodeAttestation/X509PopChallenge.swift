import Crypto
import Foundation
import SPIFFEX509
import X509

/// The proof of possession of an `x509pop` node attestation: the server sends a fresh nonce,
/// the node signs ``signedMessage(nonce:)`` with its certificate's private key, and the server
/// checks that signature against the certificate's public key.
///
/// The signed bytes are the ASCII context `writ x509pop challenge v1`, a zero byte and the
/// nonce, so that a node key can never be made to sign something that passes for another
/// protocol's message. The signature algorithm follows the key: ECDSA with SHA-256 (P-256),
/// SHA-384 (P-384) or SHA-512 (P-521), DER-encoded; RSA PKCS#1 v1.5 with SHA-256; Ed25519.
public struct X509PopChallenge: Sendable, Equatable {
    /// The random bytes to sign.
    public let nonce: [UInt8]
    /// When the server made the challenge.
    public let issuedAt: ContinuousClock.Instant

    /// Nonces are this many random bytes.
    public static let nonceLength = 32
    /// A response later than this after the challenge is refused.
    public static let lifetime: Duration = .seconds(60)
    /// The domain-separation prefix of every signed message.
    public static let context = Array("writ x509pop challenge v1".utf8) + [0]

    /// A fresh challenge of ``nonceLength`` bytes from the system's CSPRNG.
    public init() {
        var generator = SystemRandomNumberGenerator()
        nonce = (0..<Self.nonceLength).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        issuedAt = .now
    }

    /// The bytes a node signs to answer `nonce`.
    public static func signedMessage(nonce: [UInt8]) -> [UInt8] {
        context + nonce
    }

    /// Checks `signature` over this challenge by the key of `certificate`. Refuses a response
    /// that comes later than ``lifetime`` after the challenge.
    public func verify(signature: [UInt8], by certificate: Certificate, at now: ContinuousClock.Instant = .now) throws(NodeAttestationError) {
        guard now - issuedAt <= Self.lifetime else {
            throw NodeAttestationError(.challengeExpired, "the challenge response came \(now - issuedAt) after the challenge; it is valid for \(Self.lifetime)")
        }
        guard !signature.isEmpty else {
            throw NodeAttestationError(.badChallengeResponse, "the challenge response is empty: it must be a signature over the challenge")
        }
        let algorithm = Self.signatureAlgorithm(for: certificate.publicKey)
        guard certificate.publicKey.isValidSignature(signature, for: Self.signedMessage(nonce: nonce), signatureAlgorithm: algorithm) else {
            throw NodeAttestationError(.badChallengeResponse,
                                       "the challenge response is not a valid \(algorithm) signature over this challenge by the node certificate's key")
        }
    }

    /// The algorithm a response by `key` must use.
    static func signatureAlgorithm(for key: Certificate.PublicKey) -> Certificate.SignatureAlgorithm {
        if Curve25519.Signing.PublicKey(key) != nil { return .ed25519 }
        return X509SVIDProfile.signatureAlgorithm(for: key)
    }

    /// Signs `nonce` with a P-256 key, as a node answers a challenge (DER ECDSA, SHA-256).
    public static func sign(nonce: [UInt8], with key: P256.Signing.PrivateKey) throws -> [UInt8] {
        Array(try key.signature(for: signedMessage(nonce: nonce)).derRepresentation)
    }

    /// Signs `nonce` with a P-384 key (DER ECDSA, SHA-384).
    public static func sign(nonce: [UInt8], with key: P384.Signing.PrivateKey) throws -> [UInt8] {
        Array(try key.signature(for: signedMessage(nonce: nonce)).derRepresentation)
    }
}
