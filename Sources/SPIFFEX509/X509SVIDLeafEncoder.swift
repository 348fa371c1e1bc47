import Crypto
import Foundation
import SPIFFEIdentity
import SwiftASN1
import X509

/// Encodes X.509-SVID leaves of one issuer straight to DER: byte for byte the certificate that
/// ``X509SVIDProfile/leaf(id:publicKey:dnsNames:notBefore:notAfter:issuer:issuerKey:serialNumber:)``
/// builds through swift-certificates' model (same profile, same checks, same encoding of
/// every field), without building that model. The issuer's name, key identifier and signature
/// algorithm are encoded once; the subject's key once per leaf (its SubjectKeyIdentifier is
/// hashed from that encoding). An issuing CA's hot path: the caller signs ``tbsCertificate``
/// and joins the two with ``certificate(tbs:signature:)``.
public struct X509SVIDLeafEncoder: Sendable {
    /// The issuing certificate.
    public let issuer: Certificate
    /// The algorithm the issuer's key signs with (the leaf's `signature` and `signatureAlgorithm`).
    public let signatureAlgorithm: Certificate.SignatureAlgorithm
    private let issuerName: [UInt8]
    private let algorithmIdentifier: [UInt8]
    private let authorityKeyIdentifier: [UInt8]
    private let subject: [UInt8]
    private let fixedExtensions: (ec: [UInt8], rsa: [UInt8])

    /// An encoder for leaves `issuer` signs with `signatureAlgorithm` (ECDSA with SHA-256/384/512
    /// or RSA PKCS#1 v1.5 with SHA-256/384/512).
    public init(issuer: Certificate, signatureAlgorithm: Certificate.SignatureAlgorithm) throws(X509SVIDError) {
        self.issuer = issuer
        self.signatureAlgorithm = signatureAlgorithm
        guard let identifier = Self.algorithmIdentifier(signatureAlgorithm) else {
            throw X509SVIDError(.signingFailed, "leaves are not encoded for the signature algorithm \(signatureAlgorithm)")
        }
        algorithmIdentifier = identifier
        do {
            var name = DER.Serializer()
            try name.serialize(issuer.subject)
            issuerName = name.serializedBytes
            var leafSubject = DER.Serializer()
            try leafSubject.serialize(try X509SVIDProfile.leafSubject())
            subject = leafSubject.serializedBytes
            fixedExtensions = (try Self.fixedExtensions(rsa: false), try Self.fixedExtensions(rsa: true))
            authorityKeyIdentifier = try issuer.extensions.subjectKeyIdentifier.map {
                try Self.der(try AuthorityKeyIdentifier(keyIdentifier: $0.keyIdentifier).makeCertificateExtension())
            } ?? []
        } catch {
            throw X509SVIDError(.signingFailed, "the issuer certificate or the leaf profile cannot be encoded: \(error)")
        }
    }

    /// The DER TBSCertificate of the leaf for `id` (checked as the profile checks it; `notAfter`
    /// clamped to the issuer's), to be signed with ``signatureAlgorithm``.
    public func tbsCertificate(id: SPIFFEID, publicKey: Certificate.PublicKey, dnsNames: [String] = [], notBefore: Date, notAfter: Date,
                               serialNumber: Certificate.SerialNumber? = nil) throws(X509SVIDError) -> [UInt8] {
        let end = try X509SVIDProfile.leafNotAfter(id: id, publicKey: publicKey, dnsNames: dnsNames, notBefore: notBefore,
                                                   notAfter: notAfter, issuer: issuer)
        do {
            var key = DER.Serializer()
            try key.serialize(publicKey)
            let spki = key.serializedBytes
            let keyIdentifier = ArraySlice(Insecure.SHA1.hash(data: try Self.subjectPublicKey(spki)))
            let subjectKeyIdentifier = try Self.der(try SubjectKeyIdentifier(keyIdentifier: keyIdentifier).makeCertificateExtension())
            let names = try Self.der(try SubjectAlternativeNames([.uniformResourceIdentifier(id.uri)] + dnsNames.map { .dnsName($0) })
                .makeCertificateExtension())
            let serial = serialNumber ?? X509SVIDProfile.randomSerialNumber()
            var tbs = DER.Serializer()
            try tbs.appendConstructedNode(identifier: .sequence) { tbs in
                try tbs.serialize(2, explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific)  // v3
                try tbs.serialize(serial.bytes)
                tbs.serializeRawBytes(algorithmIdentifier)
                tbs.serializeRawBytes(issuerName)
                try tbs.appendConstructedNode(identifier: .sequence) { validity in
                    try Self.serializeTime(notBefore, into: &validity)
                    try Self.serializeTime(end, into: &validity)
                }
                tbs.serializeRawBytes(subject)
                tbs.serializeRawBytes(spki)
                tbs.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 3, tagClass: .contextSpecific)) { tagged in
                    tagged.appendConstructedNode(identifier: .sequence) { extensions in
                        // The profile's order: basic constraints, key usage, EKU, SKI, AKI, SAN.
                        extensions.serializeRawBytes(SVIDKeyPolicy.isRSA(publicKey) ? fixedExtensions.rsa : fixedExtensions.ec)
                        extensions.serializeRawBytes(subjectKeyIdentifier)
                        extensions.serializeRawBytes(authorityKeyIdentifier)
                        extensions.serializeRawBytes(names)
                    }
                }
            }
            return tbs.serializedBytes
        } catch {
            throw X509SVIDError(.signingFailed, "building the leaf certificate failed: \(error)")
        }
    }

    /// The certificate: `tbs` (from ``tbsCertificate``) with its signature value (a DER
    /// ECDSA-Sig-Value, or the RSA signature bytes) under ``signatureAlgorithm``.
    public func certificate(tbs: [UInt8], signature: [UInt8]) -> [UInt8] {
        var certificate = DER.Serializer()
        certificate.appendConstructedNode(identifier: .sequence) { certificate in
            certificate.serializeRawBytes(tbs)
            certificate.serializeRawBytes(algorithmIdentifier)
            // BIT STRING, no unused bits.
            certificate.appendPrimitiveNode(identifier: .bitString) { bytes in
                bytes.append(0)
                bytes.append(contentsOf: signature)
            }
        }
        return certificate.serializedBytes
    }

    // MARK: fixed parts

    /// The extensions every leaf has, encoded once per encoder: critical basic constraints
    /// CA=false, critical key usage digitalSignature (with keyEncipherment for RSA keys), and EKU
    /// serverAuth + clientAuth.
    static func fixedExtensions(rsa: Bool) throws -> [UInt8] {
        var constraints = try BasicConstraints.notCertificateAuthority.makeCertificateExtension()
        constraints.critical = true
        var usage = try KeyUsage(digitalSignature: true, keyEncipherment: rsa).makeCertificateExtension()
        usage.critical = true
        let extended = try ExtendedKeyUsage([.serverAuth, .clientAuth]).makeCertificateExtension()
        return try der(constraints) + der(usage) + der(extended)
    }

    /// The DER of one extension.
    static func der(_ ext: Certificate.Extension) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(ext)
        return serializer.serializedBytes
    }

    /// AlgorithmIdentifier DER for the signature algorithms CA keys sign with: ECDSA without
    /// parameters (RFC 5758 §3.2), RSA with NULL parameters (RFC 4055 §5).
    static func algorithmIdentifier(_ algorithm: Certificate.SignatureAlgorithm) -> [UInt8]? {
        let (oid, nullParameters): (ASN1ObjectIdentifier, Bool)
        switch algorithm {
        case .ecdsaWithSHA256: (oid, nullParameters) = ([1, 2, 840, 10045, 4, 3, 2], false)
        case .ecdsaWithSHA384: (oid, nullParameters) = ([1, 2, 840, 10045, 4, 3, 3], false)
        case .ecdsaWithSHA512: (oid, nullParameters) = ([1, 2, 840, 10045, 4, 3, 4], false)
        case .sha256WithRSAEncryption: (oid, nullParameters) = ([1, 2, 840, 113549, 1, 1, 11], true)
        case .sha384WithRSAEncryption: (oid, nullParameters) = ([1, 2, 840, 113549, 1, 1, 12], true)
        case .sha512WithRSAEncryption: (oid, nullParameters) = ([1, 2, 840, 113549, 1, 1, 13], true)
        default: return nil
        }
        var serializer = DER.Serializer()
        do {
            try serializer.appendConstructedNode(identifier: .sequence) { sequence in
                try sequence.serialize(oid)
                if nullParameters { try sequence.serialize(ASN1Null()) }
            }
        } catch {
            return nil
        }
        return serializer.serializedBytes
    }

    /// The subjectPublicKey BIT STRING's bytes of a DER SubjectPublicKeyInfo (what RFC 5280
    /// §4.2.1.2 method 1 hashes into the key identifier).
    static func subjectPublicKey(_ spki: [UInt8]) throws -> ArraySlice<UInt8> {
        let root = try DER.parse(spki)
        guard case .constructed(let children) = root.content else { throw ASN1Error.unexpectedFieldType(root.identifier) }
        var iterator = children.makeIterator()
        _ = iterator.next()
        guard let key = iterator.next() else { throw ASN1Error.invalidASN1Object(reason: "SubjectPublicKeyInfo without a key") }
        return try ASN1BitString(derEncoded: key).bytes
    }

    /// A validity time as RFC 5280 §4.1.2.5 encodes it (UTCTime through 2049, GeneralizedTime
    /// from 2050), to the second (rounded, as swift-certificates rounds).
    static func serializeTime(_ date: Date, into serializer: inout DER.Serializer) throws {
        let c = Self.utcComponents(date)
        if (1950..<2050).contains(c.year) {
            try serializer.serialize(try UTCTime(year: c.year, month: c.month, day: c.day, hours: c.hours, minutes: c.minutes, seconds: c.seconds))
        } else {
            try serializer.serialize(try GeneralizedTime(year: c.year, month: c.month, day: c.day, hours: c.hours, minutes: c.minutes,
                                                         seconds: c.seconds, fractionalSeconds: 0))
        }
    }

    /// The UTC calendar fields of `date` rounded to the second (proleptic Gregorian, from the
    /// day count since 1970-01-01 by the civil-from-days method).
    static func utcComponents(_ date: Date) -> (year: Int, month: Int, day: Int, hours: Int, minutes: Int, seconds: Int) {
        let timestamp = Int64(date.timeIntervalSince1970.rounded())
        var (days, seconds) = timestamp.quotientAndRemainder(dividingBy: 86_400)
        if seconds < 0 {
            seconds += 86_400
            days -= 1
        }
        let shifted = days + 719_468  // days since 0000-03-01
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
        let month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day), Int(seconds / 3600), Int(seconds % 3600 / 60), Int(seconds % 60))
    }
}
