import Crypto
import _CryptoExtras
import Foundation
import SPIFFEIdentity
import SwiftASN1
import Testing
import WritTestSupport
import X509
@testable import SPIFFEBundle

/// A self-signed CA certificate for bundle tests.
func makeRoot(_ key: Certificate.PrivateKey, name: String = "example.org", notAfter: Date = Date(timeIntervalSince1970: 1_900_000_000)) throws -> Certificate {
    let subject = try DistinguishedName { OrganizationName(name) }
    let algorithm: Certificate.SignatureAlgorithm = _RSA.Signing.PublicKey(key.publicKey) != nil ? .sha256WithRSAEncryption
        : (P384.Signing.PublicKey(key.publicKey) != nil ? .ecdsaWithSHA384 : .ecdsaWithSHA256)
    return try Certificate(
        version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
        notValidBefore: Date(timeIntervalSince1970: 1_800_000_000), notValidAfter: notAfter, issuer: subject, subject: subject,
        signatureAlgorithm: algorithm,
        extensions: try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://\(name)")])
        },
        issuerPrivateKey: key)
}

func der(_ certificate: Certificate) -> [UInt8] {
    var s = DER.Serializer()
    try! s.serialize(certificate)
    return s.serializedBytes
}

func object(_ bytes: [UInt8]) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
}

func json(_ object: Any) -> [UInt8] {
    [UInt8](try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
}

@Suite struct TrustBundleTests {
    let td = try! TrustDomain(parsing: "example.org")

    func sampleBundle() throws -> TrustBundle {
        let rootEC = try makeRoot(Certificate.PrivateKey(P256.Signing.PrivateKey()))
        let rootRSA = try makeRoot(Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits2048)))
        let jwt256 = JWKPublicKey.p256(P256.Signing.PrivateKey().publicKey)
        let jwt384 = JWKPublicKey.p384(P384.Signing.PrivateKey().publicKey)
        let jwtRSA = JWKPublicKey.rsa(try _RSA.Signing.PrivateKey(keySize: .bits2048).publicKey)
        return TrustBundle(trustDomain: td, x509Authorities: [rootEC, rootRSA],
                           jwtAuthorities: [JWTAuthority(keyID: jwt256.thumbprint, publicKey: jwt256),
                                            JWTAuthority(keyID: "key-384", publicKey: jwt384),
                                            JWTAuthority(keyID: "key-rsa", publicKey: jwtRSA)],
                           sequenceNumber: 7, refreshHint: 60)
    }

    @Test func spiffeFormatRoundTrips() throws {
        let bundle = try sampleBundle()
        let bytes = bundle.spiffeJSON()
        let parsed = try TrustBundle.parseSPIFFEJSON(bytes, trustDomain: td)
        #expect(parsed == bundle)
        // The document's shape, per SPIFFE_Trust_Domain_and_Bundle.md §4.
        let doc = try object(bytes)
        #expect(doc["spiffe_sequence"] as? Int == 7)
        #expect(doc["spiffe_refresh_hint"] as? Int == 60)
        let keys = try #require(doc["keys"] as? [[String: Any]])
        #expect(keys.count == 5)
        let x509 = keys.filter { $0["use"] as? String == "x509-svid" }
        #expect(x509.count == 2)
        for key in x509 {
            #expect((key["x5c"] as? [String])?.count == 1)
            #expect(key["kid"] == nil)
        }
        let jwt = keys.filter { $0["use"] as? String == "jwt-svid" }
        #expect(jwt.count == 3)
        #expect(jwt.allSatisfy { ($0["kid"] as? String)?.isEmpty == false })
        #expect(jwt.contains { $0["kty"] as? String == "EC" && $0["crv"] as? String == "P-384" })
        #expect(jwt.contains { $0["kty"] as? String == "RSA" && $0["e"] as? String == "AQAB" })
    }

    @Test func refreshHintDefaultsTo300() throws {
        let bundle = TrustBundle(trustDomain: td)
        #expect(try object(bundle.spiffeJSON())["spiffe_refresh_hint"] as? Int == 300)
    }

    /// The shape of Appendix A's "Trust bundle #2" (the spec leaves the certificates as
    /// placeholders, so real RSA roots stand in for them).
    @Test func specAppendixExample() throws {
        let one = try makeRoot(Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits2048)), name: "example.com")
        let two = try makeRoot(Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits2048)), name: "example.com")
        func entry(_ c: Certificate) throws -> [String: Any] {
            var jwk = try JWKPublicKey(c.publicKey).jwkMembers
            jwk["use"] = "x509-svid"
            jwk["x5c"] = [Data(der(c)).base64EncodedString()]
            return jwk
        }
        let document: [String: Any] = ["spiffe_sequence": 2, "spiffe_refresh_hint": 2419200, "keys": [try entry(one), try entry(two)]]
        let bundle = try TrustBundle.parseSPIFFEJSON(json(document), trustDomain: try TrustDomain(parsing: "example.com"))
        #expect(bundle.sequenceNumber == 2)
        #expect(bundle.refreshHint == 2419200)
        #expect(bundle.x509Authorities == [one, two])
        #expect(bundle.jwtAuthorities.isEmpty)
    }

    @Test func unknownUseAndKeyTypeAreIgnored() throws {
        let key = JWKPublicKey.p256(P256.Signing.PrivateKey().publicKey)
        var jwt = key.jwkMembers
        jwt["use"] = "jwt-svid"; jwt["kid"] = "k1"
        var future = key.jwkMembers
        future["use"] = "wit-svid"; future["kid"] = "k2"
        let okp: [String: Any] = ["kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "use": "jwt-svid", "kid": "k3"]
        let bundle = try TrustBundle.parseSPIFFEJSON(json(["keys": [jwt, future, okp]]), trustDomain: td)
        #expect(bundle.jwtAuthorities.map(\.keyID) == ["k1"])
    }

    struct Refusal: Sendable, CustomTestStringConvertible {
        let name: String
        let code: TrustBundleError.Code
        let document: @Sendable () throws -> [UInt8]
        var testDescription: String { name }
    }

    static let refusals: [Refusal] = [
        Refusal(name: "fail/not json", code: .malformedJSON) { Array("{keys: []".utf8) },
        Refusal(name: "fail/missing keys", code: .missingKeys) { json(["spiffe_sequence": 1]) },
        Refusal(name: "fail/keys not an array", code: .missingKeys) { json(["keys": ["a": 1]]) },
        Refusal(name: "fail/top level array", code: .missingKeys) { json([["keys": []]]) },
        Refusal(name: "fail/entry not an object", code: .invalidMember) { json(["keys": [1]]) },
        Refusal(name: "fail/entry without use", code: .invalidMember) { json(["keys": [["kty": "EC"]]]) },
        Refusal(name: "fail/x509 without x5c", code: .invalidX5C) {
            var jwk = JWKPublicKey.p256(P256.Signing.PrivateKey().publicKey).jwkMembers
            jwk["use"] = "x509-svid"
            return json(["keys": [jwk]])
        },
        Refusal(name: "fail/x509 with two x5c", code: .invalidX5C) {
            let c = try makeRoot(Certificate.PrivateKey(P256.Signing.PrivateKey()))
            var jwk = try JWKPublicKey(c.publicKey).jwkMembers
            jwk["use"] = "x509-svid"
            jwk["x5c"] = [Data(der(c)).base64EncodedString(), Data(der(c)).base64EncodedString()]
            return json(["keys": [jwk]])
        },
        Refusal(name: "fail/x5c not DER", code: .invalidCertificate) {
            var jwk = JWKPublicKey.p256(P256.Signing.PrivateKey().publicKey).jwkMembers
            jwk["use"] = "x509-svid"
            jwk["x5c"] = ["AAAA"]
            return json(["keys": [jwk]])
        },
        Refusal(name: "fail/x5c key differs from jwk key", code: .invalidCertificate) {
            let c = try makeRoot(Certificate.PrivateKey(P256.Signing.PrivateKey()))
            var jwk = JWKPublicKey.p256(P256.Signing.PrivateKey().publicKey).jwkMembers
            jwk["use"] = "x509-svid"
            jwk["x5c"] = [Data(der(c)).base64EncodedString()]
            return json(["keys": [jwk]])
        },
        Refusal(name: "fail/jwt key without kid", code: .invalidKeyID) {
            var jwk = JWKPublicKey.p256(P256.Signing.PrivateKey().publicKey).jwkMembers
            jwk["use"] = "jwt-svid"
            return json(["keys": [jwk]])
        },
        Refusal(name: "fail/duplicate kid", code: .invalidKeyID) {
            var jwk = JWKPublicKey.p256(P256.Signing.PrivateKey().publicKey).jwkMembers
            jwk["use"] = "jwt-svid"; jwk["kid"] = "same"
            return json(["keys": [jwk, jwk]])
        },
        Refusal(name: "fail/point not on curve", code: .invalidKey) {
            json(["keys": [["kty": "EC", "crv": "P-256", "use": "jwt-svid", "kid": "k",
                            "x": Base64URL.encode([UInt8](repeating: 1, count: 32)), "y": Base64URL.encode([UInt8](repeating: 2, count: 32))]]])
        },
        Refusal(name: "fail/short coordinate", code: .invalidKey) {
            json(["keys": [["kty": "EC", "crv": "P-256", "use": "jwt-svid", "kid": "k", "x": "AQ", "y": "AQ"]]])
        },
        Refusal(name: "fail/bad base64url", code: .invalidKey) {
            json(["keys": [["kty": "EC", "crv": "P-256", "use": "jwt-svid", "kid": "k", "x": "a+b/", "y": "===="]]])
        },
        Refusal(name: "fail/unknown curve", code: .unsupportedKey) {
            json(["keys": [["kty": "EC", "crv": "secp256k1", "use": "jwt-svid", "kid": "k", "x": "AQ", "y": "AQ"]]])
        },
        Refusal(name: "fail/negative sequence", code: .invalidBundleMetadata) { json(["keys": [], "spiffe_sequence": -1]) },
        Refusal(name: "fail/fractional sequence", code: .invalidBundleMetadata) { json(["keys": [], "spiffe_sequence": 1.5]) },
        Refusal(name: "fail/string refresh hint", code: .invalidBundleMetadata) { json(["keys": [], "spiffe_refresh_hint": "300"]) },
        Refusal(name: "fail/boolean sequence", code: .invalidBundleMetadata) { json(["keys": [], "spiffe_sequence": true]) },
        Refusal(name: "fail/10000-deep nesting", code: .malformedJSON) {
            Array(("{\"keys\":" + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}").utf8)
        },
    ]

    @Test(arguments: refusals)
    func refuses(_ r: Refusal) throws {
        let bytes = try r.document()
        do {
            _ = try TrustBundle.parseSPIFFEJSON(bytes, trustDomain: td)
            Issue.record("\(r.name) was accepted")
        } catch {
            #expect(error.code == r.code, "\(r.name): \(error.message)")
        }
    }

    @Test func plainJWKSRoundTrips() throws {
        let bundle = try sampleBundle()
        let jwks = bundle.jwtJWKS()
        let doc = try object(jwks)
        let keys = try #require(doc["keys"] as? [[String: Any]])
        #expect(keys.count == 3)
        #expect(keys.allSatisfy { $0["kid"] is String && $0["use"] == nil && $0["x5c"] == nil })
        #expect(doc.keys.sorted() == ["keys"])
        let parsed = try TrustBundle.parseJWKS(jwks, trustDomain: td)
        #expect(parsed.jwtAuthorities == bundle.jwtAuthorities)
    }

    @Test func pemAndDERForms() throws {
        let bundle = try sampleBundle()
        let pem = bundle.x509AuthoritiesPEM()
        #expect(pem.components(separatedBy: "-----BEGIN CERTIFICATE-----").count == 3)
        #expect(try TrustBundle.parseX509Authorities(pem: pem, trustDomain: td).x509Authorities == bundle.x509Authorities)
        let concatenated = bundle.x509AuthoritiesDER()
        #expect(try TrustBundle.parseX509Authorities(der: concatenated, trustDomain: td).x509Authorities == bundle.x509Authorities)
        #expect(throws: TrustBundleError.self) { try TrustBundle.parseX509Authorities(der: Array(concatenated.dropLast()), trustDomain: td) }
        #expect(throws: TrustBundleError.self) { try TrustBundle.parseX509Authorities(pem: "nothing here", trustDomain: td) }
        #expect(throws: TrustBundleError.self) {
            try TrustBundle.parseX509Authorities(pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", trustDomain: td)
        }
    }

    /// RFC 7638 §3.1's example key and thumbprint.
    @Test func thumbprintMatchesRFC7638Example() throws {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        let key = try JWKPublicKey(jwk: ["kty": "RSA", "n": n, "e": "AQAB"])
        #expect(key.thumbprint == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
    }
}
