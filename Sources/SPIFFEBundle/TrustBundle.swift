import Crypto
import Foundation
import SPIFFEIdentity
import SwiftASN1
import X509

/// A JWT signing authority of a trust domain: a public key and its `kid`.
public struct JWTAuthority: Sendable, Hashable {
    /// The key ID tokens name in their `kid` header.
    public let keyID: String
    /// The public key.
    public let publicKey: JWKPublicKey

    public init(keyID: String, publicKey: JWKPublicKey) {
        self.keyID = keyID
        self.publicKey = publicKey
    }
}

/// The trust bundle of one trust domain: its X.509 authorities (root certificates) and JWT
/// authorities, in the SPIFFE bundle format of SPIFFE_Trust_Domain_and_Bundle.md §4.
///
/// The SPIFFE form is a JWKS where `x509-svid` keys carry exactly one `x5c` certificate and
/// `jwt-svid` keys always a `kid`; entries of an unknown `use` or `kty` are ignored as the spec
/// requires; `spiffe_sequence` and `spiffe_refresh_hint` are carried through.
public struct TrustBundle: Sendable, Hashable {
    /// The trust domain the bundle belongs to.
    public let trustDomain: TrustDomain
    /// The X.509 authorities (roots), in order.
    public var x509Authorities: [Certificate]
    /// The JWT authorities, in order.
    public var jwtAuthorities: [JWTAuthority]
    /// `spiffe_sequence`: increases on every change of content.
    public var sequenceNumber: UInt64?
    /// `spiffe_refresh_hint` in seconds; writers default to ``defaultRefreshHint``.
    public var refreshHint: Int?

    /// The refresh hint written when none is set, in seconds.
    public static let defaultRefreshHint = 300

    public init(trustDomain: TrustDomain, x509Authorities: [Certificate] = [], jwtAuthorities: [JWTAuthority] = [],
                sequenceNumber: UInt64? = nil, refreshHint: Int? = nil) {
        self.trustDomain = trustDomain
        self.x509Authorities = x509Authorities
        self.jwtAuthorities = jwtAuthorities
        self.sequenceNumber = sequenceNumber
        self.refreshHint = refreshHint
    }

    /// The JWT authority with `keyID`, if any.
    public func jwtAuthority(keyID: String) -> JWTAuthority? {
        jwtAuthorities.first { $0.keyID == keyID }
    }

    // MARK: SPIFFE bundle format

    /// Parses a bundle in the SPIFFE format; the trust domain is not in the document, so the
    /// caller names it.
    public static func parseSPIFFEJSON(_ bytes: [UInt8], trustDomain: TrustDomain) throws(TrustBundleError) -> TrustBundle {
        let document = try JSONDocument.parse(bytes, what: "trust bundle")
        guard let object = document as? [String: Any] else {
            throw TrustBundleError(.missingKeys, "trust bundle is not a JSON object")
        }
        guard let keys = object["keys"] else {
            throw TrustBundleError(.missingKeys, "trust bundle has no `keys` member")
        }
        guard let entries = keys as? [Any] else {
            throw TrustBundleError(.missingKeys, "trust bundle member `keys` is not an array")
        }
        var bundle = TrustBundle(trustDomain: trustDomain)
        bundle.sequenceNumber = try unsignedInteger(object["spiffe_sequence"], name: "spiffe_sequence")
        if let hint = try unsignedInteger(object["spiffe_refresh_hint"], name: "spiffe_refresh_hint") {
            guard hint <= UInt64(Int32.max) else {
                throw TrustBundleError(.invalidBundleMetadata, "`spiffe_refresh_hint` \(hint) is out of range")
            }
            bundle.refreshHint = Int(hint)
        }
        for (index, entry) in entries.enumerated() {
            guard let jwk = entry as? [String: Any] else {
                throw TrustBundleError(.invalidMember, "`keys[\(index)]` is not a JSON object")
            }
            guard let use = jwk["use"] as? String else {
                throw TrustBundleError(.invalidMember, "`keys[\(index)]` has no `use` string")
            }
            guard let kty = jwk["kty"] as? String else {
                throw TrustBundleError(.invalidMember, "`keys[\(index)]` has no `kty` string")
            }
            // §4.1: entries of an unknown use or key type are ignored.
            guard kty == "EC" || kty == "RSA" else { continue }
            switch use {
            case "x509-svid":
                bundle.x509Authorities.append(try x509Authority(jwk, index: index))
            case "jwt-svid":
                guard let kid = jwk["kid"] as? String, !kid.isEmpty else {
                    throw TrustBundleError(.invalidKeyID, "`keys[\(index)]` is a jwt-svid key without a `kid`")
                }
                if bundle.jwtAuthority(keyID: kid) != nil {
                    throw TrustBundleError(.invalidKeyID, "`keys[\(index)]` repeats the kid `\(kid)`")
                }
                let key: JWKPublicKey
                do { key = try JWKPublicKey(jwk: jwk) } catch {
                    throw TrustBundleError(error.code, "`keys[\(index)]`: \(error.message)")
                }
                bundle.jwtAuthorities.append(JWTAuthority(keyID: kid, publicKey: key))
            default:
                continue
            }
        }
        return bundle
    }

    private static func unsignedInteger(_ value: Any?, name: String) throws(TrustBundleError) -> UInt64? {
        guard let value else { return nil }
        guard let number = value as? NSNumber, !JSONDocument.isBoolean(number) else {
            throw TrustBundleError(.invalidBundleMetadata, "`\(name)` is not a number")
        }
        let double = number.doubleValue
        guard double >= 0, double == double.rounded(), double < 18_446_744_073_709_551_616 else {
            throw TrustBundleError(.invalidBundleMetadata, "`\(name)` must be a non-negative integer, got `\(number)`")
        }
        return number.uint64Value
    }

    private static func x509Authority(_ jwk: [String: Any], index: Int) throws(TrustBundleError) -> Certificate {
        guard let x5c = jwk["x5c"] as? [Any], x5c.count == 1 else {
            throw TrustBundleError(.invalidX5C, "`keys[\(index)]` is an x509-svid key without exactly one `x5c` certificate")
        }
        guard let text = x5c[0] as? String, let der = Data(base64Encoded: text) else {
            throw TrustBundleError(.invalidX5C, "`keys[\(index)].x5c[0]` is not base64 (RFC 4648 §4, with padding)")
        }
        let certificate: Certificate
        do {
            certificate = try Certificate(derEncoded: [UInt8](der))
        } catch {
            throw TrustBundleError(.invalidCertificate, "`keys[\(index)].x5c[0]` is not a DER X.509 certificate")
        }
        // The JWK's own key members must describe the certificate's key.
        let declared: JWKPublicKey
        do { declared = try JWKPublicKey(jwk: jwk) } catch {
            throw TrustBundleError(error.code, "`keys[\(index)]`: \(error.message)")
        }
        guard declared.certificatePublicKey == certificate.publicKey else {
            throw TrustBundleError(.invalidCertificate, "`keys[\(index)]`: the jwk key parameters do not match the key of its x5c certificate")
        }
        return certificate
    }

    /// The bundle in the SPIFFE format (keys sorted within each entry; `spiffe_refresh_hint`
    /// defaults to 300 seconds).
    public func spiffeJSON() -> [UInt8] {
        var keys: [[String: Any]] = []
        for certificate in x509Authorities {
            // Authorities in a bundle were parsed or built with a JWK-able key.
            guard var jwk = (try? JWKPublicKey(certificate.publicKey))?.jwkMembers else { continue }
            jwk["use"] = "x509-svid"
            jwk["x5c"] = [Data(Self.der(certificate)).base64EncodedString()]
            keys.append(jwk)
        }
        for authority in jwtAuthorities {
            var jwk = authority.publicKey.jwkMembers
            jwk["use"] = "jwt-svid"
            jwk["kid"] = authority.keyID
            keys.append(jwk)
        }
        var object: [String: Any] = ["keys": keys, "spiffe_refresh_hint": refreshHint ?? Self.defaultRefreshHint]
        if let sequenceNumber { object["spiffe_sequence"] = NSNumber(value: sequenceNumber) }
        return JSONDocument.serialize(object)
    }

    // MARK: plain JWKS (the Workload API's JWT bundle form)

    /// The JWT authorities as a plain JWKS: every key with its `kid`, nothing else.
    public func jwtJWKS() -> [UInt8] {
        let keys: [[String: Any]] = jwtAuthorities.map { authority in
            var jwk = authority.publicKey.jwkMembers
            jwk["kid"] = authority.keyID
            return jwk
        }
        return JSONDocument.serialize(["keys": keys])
    }

    /// Parses a plain JWKS of JWT authorities; every EC/RSA key needs a `kid`, others are ignored.
    public static func parseJWKS(_ bytes: [UInt8], trustDomain: TrustDomain) throws(TrustBundleError) -> TrustBundle {
        let document = try JSONDocument.parse(bytes, what: "jwks")
        guard let object = document as? [String: Any], let entries = object["keys"] as? [Any] else {
            throw TrustBundleError(.missingKeys, "jwks has no `keys` array")
        }
        var bundle = TrustBundle(trustDomain: trustDomain)
        for (index, entry) in entries.enumerated() {
            guard let jwk = entry as? [String: Any] else {
                throw TrustBundleError(.invalidMember, "`keys[\(index)]` is not a JSON object")
            }
            guard let kty = jwk["kty"] as? String else {
                throw TrustBundleError(.invalidMember, "`keys[\(index)]` has no `kty` string")
            }
            guard kty == "EC" || kty == "RSA" else { continue }
            if let use = jwk["use"] as? String, use != "jwt-svid", use != "sig" { continue }
            guard let kid = jwk["kid"] as? String, !kid.isEmpty else {
                throw TrustBundleError(.invalidKeyID, "`keys[\(index)]` has no `kid`")
            }
            if bundle.jwtAuthority(keyID: kid) != nil {
                throw TrustBundleError(.invalidKeyID, "`keys[\(index)]` repeats the kid `\(kid)`")
            }
            let key: JWKPublicKey
            do { key = try JWKPublicKey(jwk: jwk) } catch {
                throw TrustBundleError(error.code, "`keys[\(index)]`: \(error.message)")
            }
            bundle.jwtAuthorities.append(JWTAuthority(keyID: kid, publicKey: key))
        }
        return bundle
    }

    // MARK: PEM and DER forms of the X.509 authorities

    /// Parses PEM text holding one or more `CERTIFICATE` blocks (other blocks are refused).
    public static func parseX509Authorities(pem: String, trustDomain: TrustDomain) throws(TrustBundleError) -> TrustBundle {
        TrustBundle(trustDomain: trustDomain, x509Authorities: try certificates(pem: pem))
    }

    /// Parses PEM text holding one or more `CERTIFICATE` blocks (other blocks are refused); at
    /// least one certificate, in file order.
    public static func certificates(pem: String) throws(TrustBundleError) -> [Certificate] {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: pem)
        } catch {
            throw TrustBundleError(.invalidPEM, "x509 authorities are not valid PEM")
        }
        guard !documents.isEmpty else { throw TrustBundleError(.invalidPEM, "no PEM certificate found") }
        var certificates: [Certificate] = []
        for (index, document) in documents.enumerated() {
            guard document.discriminator == "CERTIFICATE" else {
                throw TrustBundleError(.invalidPEM, "PEM block \(index) is `\(document.discriminator)`, expected `CERTIFICATE`")
            }
            do {
                certificates.append(try Certificate(derEncoded: document.derBytes))
            } catch {
                throw TrustBundleError(.invalidCertificate, "PEM block \(index) is not a DER X.509 certificate")
            }
        }
        return certificates
    }

    /// Parses concatenated DER certificates (the Workload API's bundle encoding).
    public static func parseX509Authorities(der: [UInt8], trustDomain: TrustDomain) throws(TrustBundleError) -> TrustBundle {
        TrustBundle(trustDomain: trustDomain, x509Authorities: try certificates(concatenatedDER: der))
    }

    /// Parses concatenated DER certificates (how the Workload API and the agent API encode
    /// chains and bundles); at least one, in order.
    public static func certificates(concatenatedDER der: [UInt8]) throws(TrustBundleError) -> [Certificate] {
        var certificates: [Certificate] = []
        var rest = der[...]
        while !rest.isEmpty {
            do {
                let (first, remainder) = try Self.splitFirstElement(rest)
                certificates.append(try Certificate(derEncoded: Array(first)))
                rest = remainder
            } catch {
                throw TrustBundleError(.invalidCertificate, "certificate \(certificates.count) of the DER sequence does not parse")
            }
        }
        guard !certificates.isEmpty else { throw TrustBundleError(.invalidCertificate, "no DER certificate found") }
        return certificates
    }

    /// The X.509 authorities as PEM `CERTIFICATE` blocks.
    public func x509AuthoritiesPEM() -> String {
        x509Authorities.map { certificate in
            PEMDocument(type: "CERTIFICATE", derBytes: Self.der(certificate)).pemString + "\n"
        }.joined()
    }

    /// The X.509 authorities as concatenated DER.
    public func x509AuthoritiesDER() -> [UInt8] {
        x509Authorities.flatMap { Self.der($0) }
    }

    /// The DER encoding of `certificate` (serialising a parsed or built certificate cannot fail).
    public static func der(_ certificate: Certificate) -> [UInt8] {
        var serializer = DER.Serializer()
        // Serialising a parsed or built certificate cannot fail.
        try! serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    /// Splits the first DER TLV off a byte sequence.
    static func splitFirstElement(_ bytes: ArraySlice<UInt8>) throws -> (ArraySlice<UInt8>, ArraySlice<UInt8>) {
        var index = bytes.startIndex
        guard bytes.count >= 2 else { throw TrustBundleError(.invalidCertificate, "truncated DER") }
        index += 1  // tag (certificates use a single-byte SEQUENCE tag)
        let first = bytes[index]
        index += 1
        var length = 0
        if first < 0x80 {
            length = Int(first)
        } else {
            let count = Int(first & 0x7F)
            guard count >= 1, count <= 4, bytes.endIndex - index >= count else {
                throw TrustBundleError(.invalidCertificate, "bad DER length")
            }
            for _ in 0..<count {
                length = length << 8 | Int(bytes[index])
                index += 1
            }
        }
        guard bytes.endIndex - index >= length else { throw TrustBundleError(.invalidCertificate, "truncated DER") }
        let end = index + length
        return (bytes[bytes.startIndex..<end], bytes[end...])
    }
}
