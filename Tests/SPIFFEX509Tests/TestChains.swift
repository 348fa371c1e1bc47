import Crypto
import _CryptoExtras
import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import SwiftASN1
import X509
@testable import SPIFFEX509

/// Key types the tests issue for (the CA key types of issue 2).
enum TestKeyType: String, CaseIterable, Sendable {
    case ecP256 = "ec-p256", ecP384 = "ec-p384", rsa2048 = "rsa-2048", rsa4096 = "rsa-4096"

    func makeKey() throws -> Certificate.PrivateKey {
        switch self {
        case .ecP256: return Certificate.PrivateKey(P256.Signing.PrivateKey(compactRepresentable: false))
        case .ecP384: return Certificate.PrivateKey(P384.Signing.PrivateKey(compactRepresentable: false))
        case .rsa2048: return Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits2048))
        case .rsa4096: return Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits4096))
        }
    }
}

/// A good root → intermediate → leaf chain built with Writ's profiles, plus the means to build
/// deliberately broken leaves and intermediates with arbitrary extensions.
struct TestChain {
    let trustDomain: TrustDomain
    let rootKey: Certificate.PrivateKey
    let root: Certificate
    let intermediateKey: Certificate.PrivateKey
    let intermediate: Certificate
    let leafKey: Certificate.PrivateKey
    let leaf: Certificate
    let now: Date

    var bundle: TrustBundle { TrustBundle(trustDomain: trustDomain, x509Authorities: [root]) }
    var chain: [Certificate] { [leaf, intermediate] }

    static func make(trustDomain: String = "example.org", id: String = "spiffe://example.org/workload",
                     keyType: TestKeyType = .ecP256, now: Date = Date(timeIntervalSince1970: 1_893_456_000)) async throws -> TestChain {
        let td = try TrustDomain(parsing: trustDomain)
        let rootKey = try keyType.makeKey()
        let root = try await X509SVIDProfile.rootCA(trustDomain: td, key: rootKey, notBefore: now - 3600, notAfter: now + 86400 * 30)
        let intermediateKey = try keyType.makeKey()
        let intermediate = try await X509SVIDProfile.intermediateCA(
            trustDomain: td, publicKey: intermediateKey.publicKey, notBefore: now - 3600, notAfter: now + 86400,
            issuer: root, issuerKey: rootKey)
        let leafKey = try keyType.makeKey()
        let leaf = try await X509SVIDProfile.leaf(
            id: try SPIFFEID(parsing: id), publicKey: leafKey.publicKey, dnsNames: ["api.example.org"],
            notBefore: now - 10, notAfter: now + 600, issuer: intermediate, issuerKey: intermediateKey)
        return TestChain(trustDomain: td, rootKey: rootKey, root: root, intermediateKey: intermediateKey,
                         intermediate: intermediate, leafKey: leafKey, leaf: leaf, now: now)
    }

    /// A certificate signed by `issuerKey` with exactly the extensions given.
    func custom(subject: String = "custom", publicKey: Certificate.PublicKey? = nil, issuer: Certificate? = nil,
                issuerKey: Certificate.PrivateKey? = nil, notBefore: Date? = nil, notAfter: Date? = nil,
                extensions: Certificate.Extensions) throws -> Certificate {
        let issuer = issuer ?? intermediate
        let signer = issuerKey ?? intermediateKey
        return try Certificate(
            version: .v3, serialNumber: X509SVIDProfile.randomSerialNumber(), publicKey: publicKey ?? leafKey.publicKey,
            notValidBefore: notBefore ?? now - 10, notValidAfter: notAfter ?? now + 600,
            issuer: issuer.subject, subject: try DistinguishedName { OrganizationName("Writ"); CommonName(subject) },
            signatureAlgorithm: X509SVIDProfile.signatureAlgorithm(for: signer.publicKey),
            extensions: extensions, issuerPrivateKey: signer)
    }

    /// A leaf with the standard profile except for the given changes.
    func leafVariant(uris: [String] = ["spiffe://example.org/workload"], isCA: Bool = false,
                     usage: KeyUsage = KeyUsage(digitalSignature: true), extra: [Certificate.Extension] = [],
                     notBefore: Date? = nil, notAfter: Date? = nil, issuer: Certificate? = nil,
                     issuerKey: Certificate.PrivateKey? = nil) throws -> Certificate {
        var extensions = try Certificate.Extensions {
            Critical(isCA ? BasicConstraints.isCertificateAuthority(maxPathLength: nil) : BasicConstraints.notCertificateAuthority)
            Critical(usage)
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            SubjectKeyIdentifier(hash: leafKey.publicKey)
            if !uris.isEmpty { SubjectAlternativeNames(uris.map { .uniformResourceIdentifier($0) }) }
        }
        for e in extra { try extensions.append(e) }
        return try custom(issuer: issuer, issuerKey: issuerKey, notBefore: notBefore, notAfter: notAfter, extensions: extensions)
    }

    static func der(_ certificate: Certificate) -> [UInt8] {
        var serializer = DER.Serializer()
        try! serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    static func pem(_ certificate: Certificate) -> String {
        PEMDocument(type: "CERTIFICATE", derBytes: der(certificate)).pemString + "\n"
    }
}
