import Crypto
import Foundation
import SwiftASN1
import X509

/// A small non-SPIFFE PKI as an organisation's node CA would look: a root, optionally an
/// intermediate, and node certificates with a common name, DNS names and a serial, for x509pop
/// attestation tests. Built in code so no key material is checked in.
public struct TestNodePKI: Sendable {
    public let rootKey: P256.Signing.PrivateKey
    public let root: Certificate
    public let intermediateKey: P256.Signing.PrivateKey?
    public let intermediate: Certificate?

    /// A root named `name`, valid from an hour ago for a year, and an intermediate below it
    /// when `withIntermediate`.
    public init(name: String = "Test Node CA", withIntermediate: Bool = false) throws {
        let now = Date()
        let rootKey = P256.Signing.PrivateKey()
        self.rootKey = rootKey
        let rootName = try DistinguishedName { CommonName(name) }
        root = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(rootKey.publicKey),
            notValidBefore: now - 3600, notValidAfter: now + 365 * 86400, issuer: rootName, subject: rootName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(rootKey.publicKey))
            },
            issuerPrivateKey: .init(rootKey))
        if withIntermediate {
            let key = P256.Signing.PrivateKey()
            intermediateKey = key
            intermediate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
                notValidBefore: now - 3600, notValidAfter: now + 365 * 86400, issuer: rootName,
                subject: try DistinguishedName { CommonName(name + " Intermediate") },
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: .init(key.publicKey))
                },
                issuerPrivateKey: .init(rootKey))
        } else {
            intermediateKey = nil
            intermediate = nil
        }
    }

    /// A node certificate for `key`, issued by the intermediate if there is one, else the root.
    public func node(commonName: String, dnsNames: [String] = [], key: P256.Signing.PrivateKey,
                     notBefore: Date = Date() - 600, notAfter: Date = Date() + 86400,
                     serial: [UInt8] = [0x01, 0x2a, 0xbc], isCA: Bool = false) throws -> Certificate {
        let issuer = intermediate ?? root
        let issuerKey = intermediateKey ?? rootKey
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(bytes: serial[...]), publicKey: .init(key.publicKey),
            notValidBefore: notBefore, notValidAfter: notAfter, issuer: issuer.subject,
            subject: try DistinguishedName { CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(isCA ? BasicConstraints.isCertificateAuthority(maxPathLength: nil) : BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                if !dnsNames.isEmpty { SubjectAlternativeNames(dnsNames.map { .dnsName($0) }) }
            },
            issuerPrivateKey: .init(issuerKey))
    }

    /// The chain a node presents: its certificate, then the intermediate if any, as
    /// concatenated DER.
    public func chainDER(_ node: Certificate) -> [UInt8] {
        ([node] + (intermediate.map { [$0] } ?? [])).flatMap(Self.der)
    }

    /// The root as PEM (the server's x509pop CA bundle).
    public var rootPEM: String {
        get throws { try root.serializeAsPEM().pemString + "\n" }
    }

    public static func der(_ certificate: Certificate) -> [UInt8] {
        var serializer = DER.Serializer()
        try! serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    /// Lowercase hex SHA-256 of a certificate's DER.
    public static func sha256Hex(_ certificate: Certificate) -> String {
        SHA256.hash(data: der(certificate)).map { String(format: "%02x", $0) }.joined()
    }
}
