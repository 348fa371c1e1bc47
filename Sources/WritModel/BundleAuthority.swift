import Foundation

/// One public key a server contributes to its trust domain's shared bundle: an X.509 root (or
/// the upstream anchor) or a JWT signing key. Every server on a datastore publishes its own
/// before using them; the bundle is the union of all servers' unexpired contributions.
public struct BundleAuthority: Sendable, Hashable {
    /// What the key signs.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// An X.509 authority; `data` is its certificate (DER).
        case x509
        /// A JWT-SVID key; `data` is its SubjectPublicKeyInfo (DER).
        case jwt
    }

    /// The server instance that contributes it (several servers may contribute the same key).
    public var serverID: String
    public var kind: Kind
    /// x509: lowercase hex SHA-256 of the certificate DER; jwt: the key's `kid`.
    public var id: String
    /// x509: the certificate DER; jwt: the public key's SubjectPublicKeyInfo DER.
    public var data: [UInt8]
    /// When the key stops being trusted (certificate notAfter, or the JWT key's end of life).
    public var expiresAt: Date

    public init(serverID: String, kind: Kind, id: String, data: [UInt8], expiresAt: Date) {
        self.serverID = serverID
        self.kind = kind
        self.id = id
        self.data = data
        self.expiresAt = expiresAt
    }
}

/// The shared bundle as stored: every contribution and the `spiffe_sequence`, which changes in
/// the same transaction as the contributions do.
public struct SharedBundleRecord: Sendable, Hashable {
    /// Bumped by exactly one in every transaction that changes the set of authorities.
    public var sequence: Int64
    /// Every unexpired contribution, ordered by kind, id, server.
    public var authorities: [BundleAuthority]

    public init(sequence: Int64, authorities: [BundleAuthority]) {
        self.sequence = sequence
        self.authorities = authorities
    }
}
