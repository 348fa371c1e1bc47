import Crypto
import Foundation
import SPIFFEIdentity
import SwiftASN1
import X509

/// The certificate profiles of SPIFFE X509-SVID.md §4, built with swift-certificates.
///
/// Leaf: exactly one URI SAN (the SPIFFE ID, non-critical) plus optional DNS SANs, a non-empty
/// subject, basic constraints CA=false (critical), key usage digitalSignature (+keyEncipherment
/// for RSA keys; critical), EKU serverAuth + clientAuth, SKI and AKI, a 128-bit random serial,
/// notAfter never past the issuer's. CA: URI SAN `spiffe://<td>`, basic constraints CA=true
/// (critical; pathLen 0 on intermediates), key usage keyCertSign + cRLSign (critical), SKI.
public enum X509SVIDProfile {
    /// The signature algorithm a CA key signs with: ECDSA with the curve's hash, RSA with SHA-256.
    public static func signatureAlgorithm(for key: Certificate.PublicKey) -> Certificate.SignatureAlgorithm {
        if P384.Signing.PublicKey(key) != nil { return .ecdsaWithSHA384 }
        if P521.Signing.PublicKey(key) != nil { return .ecdsaWithSHA512 }
        if SVIDKeyPolicy.isRSA(key) { return .sha256WithRSAEncryption }
        return .ecdsaWithSHA256
    }

    /// A positive 128-bit serial number from the system's secure random source.
    public static func randomSerialNumber() -> Certificate.SerialNumber {
        var rng = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        for word in [rng.next(), rng.next()] as [UInt64] {
            withUnsafeBytes(of: word) { bytes.append(contentsOf: $0) }
        }
        bytes[0] &= 0x7F  // positive
        bytes[0] |= 0x40  // exactly 16 significant bytes
        return Certificate.SerialNumber(bytes: bytes[...])
    }

    /// The leaf X.509-SVID for `id`. `notBefore` is used as given (callers backdate it);
    /// `notAfter` is clamped to the issuer's notAfter.
    public static func leaf(
        id: SPIFFEID, publicKey: Certificate.PublicKey, dnsNames: [String] = [],
        notBefore: Date, notAfter: Date, issuer: Certificate, issuerKey: Certificate.PrivateKey,
        serialNumber: Certificate.SerialNumber? = nil
    ) async throws(X509SVIDError) -> Certificate {
        let end = try leafNotAfter(id: id, publicKey: publicKey, dnsNames: dnsNames, notBefore: notBefore, notAfter: notAfter, issuer: issuer)
        do {
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: SVIDKeyPolicy.isRSA(publicKey)))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectKeyIdentifier(hash: publicKey)
                if let aki = try issuer.extensions.subjectKeyIdentifier {
                    AuthorityKeyIdentifier(keyIdentifier: aki.keyIdentifier)
                }
                SubjectAlternativeNames([.uniformResourceIdentifier(id.uri)] + dnsNames.map { .dnsName($0) })
            }
            return try await Certificate(
                version: .v3, serialNumber: serialNumber ?? randomSerialNumber(), publicKey: publicKey,
                notValidBefore: notBefore, notValidAfter: end, issuer: issuer.subject, subject: try leafSubject(),
                signatureAlgorithm: signatureAlgorithm(for: issuerKey.publicKey), extensions: extensions,
                issuerAsyncPrivateKey: issuerKey)
        } catch {
            throw X509SVIDError(.signingFailed, "building the leaf certificate failed: \(error)")
        }
    }

    /// The profile's checks of a leaf's inputs (a workload ID, an accepted key, valid DNS names,
    /// a non-empty validity window); returns `notAfter` clamped to the issuer's notAfter.
    static func leafNotAfter(id: SPIFFEID, publicKey: Certificate.PublicKey, dnsNames: [String], notBefore: Date, notAfter: Date,
                             issuer: Certificate) throws(X509SVIDError) -> Date {
        do { try id.requireWorkload() } catch {
            throw X509SVIDError(.invalidIdentity, error.message)
        }
        try SVIDKeyPolicy.check(publicKey)
        for name in dnsNames { try DNSName.check(name) }
        let end = min(notAfter, issuer.notValidAfter)
        guard end > notBefore else {
            throw X509SVIDError(.invalidValidity, "validity window is empty: notBefore \(notBefore) is not before notAfter \(end)")
        }
        return end
    }

    /// The subject of every leaf (X509-SVID.md leaves it free; Writ names itself and the profile).
    static func leafSubject() throws -> DistinguishedName {
        try DistinguishedName {
            OrganizationName("Writ")
            OrganizationalUnitName("x509-svid")
        }
    }

    /// A self-signed root CA for `trustDomain` certifying `publicKey` (which must be `key`'s
    /// public key), optionally with the caller's subject (e.g. from an upstream configuration).
    public static func rootCA(
        trustDomain: TrustDomain, publicKey: Certificate.PublicKey, notBefore: Date, notAfter: Date,
        key: Certificate.PrivateKey, subject: DistinguishedName? = nil
    ) async throws(X509SVIDError) -> Certificate {
        guard publicKey == key.publicKey else {
            throw X509SVIDError(.signingFailed, "a self-signed root needs the public key of its signing key")
        }
        return try await authority(trustDomain: trustDomain, publicKey: publicKey, notBefore: notBefore, notAfter: notAfter,
                                   issuer: nil, issuerKey: key, pathLength: nil, role: "root", serialNumber: nil, subject: subject)
    }

    /// A self-signed root CA for `trustDomain`.
    public static func rootCA(
        trustDomain: TrustDomain, key: Certificate.PrivateKey, notBefore: Date, notAfter: Date,
        serialNumber: Certificate.SerialNumber? = nil
    ) async throws(X509SVIDError) -> Certificate {
        try await authority(trustDomain: trustDomain, publicKey: key.publicKey, notBefore: notBefore, notAfter: notAfter,
                            issuer: nil, issuerKey: key, pathLength: nil, role: "root", serialNumber: serialNumber, subject: nil)
    }

    /// An intermediate CA (pathLen 0) signed by `issuer`, clamped to the issuer's notAfter.
    public static func intermediateCA(
        trustDomain: TrustDomain, publicKey: Certificate.PublicKey, notBefore: Date, notAfter: Date,
        issuer: Certificate, issuerKey: Certificate.PrivateKey, serialNumber: Certificate.SerialNumber? = nil
    ) async throws(X509SVIDError) -> Certificate {
        try await authority(trustDomain: trustDomain, publicKey: publicKey, notBefore: notBefore,
                            notAfter: min(notAfter, issuer.notValidAfter), issuer: issuer, issuerKey: issuerKey,
                            pathLength: 0, role: "intermediate", serialNumber: serialNumber, subject: nil)
    }

    private static func authority(
        trustDomain: TrustDomain, publicKey: Certificate.PublicKey, notBefore: Date, notAfter: Date,
        issuer: Certificate?, issuerKey: Certificate.PrivateKey, pathLength: Int?, role: String,
        serialNumber: Certificate.SerialNumber?, subject explicitSubject: DistinguishedName?
    ) async throws(X509SVIDError) -> Certificate {
        guard notAfter > notBefore else {
            throw X509SVIDError(.invalidValidity, "\(role) validity window is empty: \(notBefore) to \(notAfter)")
        }
        do {
            let ski = SubjectKeyIdentifier(hash: publicKey)
            let hex = ski.keyIdentifier.prefix(8).map { String(format: "%02x", $0) }.joined()
            let subject = try explicitSubject ?? DistinguishedName {
                OrganizationName("Writ")
                CommonName("\(trustDomain.name.prefix(32)) \(role) \(hex)")
            }
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: pathLength))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                ski
                if let issuer, let aki = try issuer.extensions.subjectKeyIdentifier {
                    AuthorityKeyIdentifier(keyIdentifier: aki.keyIdentifier)
                }
                SubjectAlternativeNames([.uniformResourceIdentifier(trustDomain.id.uri)])
            }
            return try await Certificate(
                version: .v3, serialNumber: serialNumber ?? randomSerialNumber(), publicKey: publicKey,
                notValidBefore: notBefore, notValidAfter: notAfter, issuer: issuer?.subject ?? subject, subject: subject,
                signatureAlgorithm: signatureAlgorithm(for: issuerKey.publicKey), extensions: extensions,
                issuerAsyncPrivateKey: issuerKey)
        } catch {
            throw X509SVIDError(.signingFailed, "building the \(role) certificate failed: \(error)")
        }
    }
}

/// RFC 1123 host names for DNS SANs, optionally with a leading `*.` wildcard label.
public enum DNSName {
    /// Refuses anything but LDH labels of 1–63 bytes, 253 bytes in all.
    public static func check(_ name: String) throws(X509SVIDError) {
        var body = Substring(name)
        if body.hasPrefix("*.") { body = body.dropFirst(2) }
        guard !body.isEmpty, body.utf8.count <= 253 else {
            throw X509SVIDError(.invalidDNSName, "invalid dns name `\(name)`: it must be 1 to 253 bytes long")
        }
        for label in body.split(separator: ".", omittingEmptySubsequences: false) {
            let bytes = label.utf8
            guard !bytes.isEmpty, bytes.count <= 63 else {
                throw X509SVIDError(.invalidDNSName, "invalid dns name `\(name)`: labels must be 1 to 63 bytes long")
            }
            guard bytes.first != UInt8(ascii: "-"), bytes.last != UInt8(ascii: "-") else {
                throw X509SVIDError(.invalidDNSName, "invalid dns name `\(name)`: a label must not begin or end with '-'")
            }
            for byte in bytes {
                let ok = (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39) || byte == UInt8(ascii: "-")
                guard ok else {
                    throw X509SVIDError(.invalidDNSName, "invalid dns name `\(name)`: only letters, digits and '-' are allowed in a label")
                }
            }
        }
    }
}
