import Crypto
import Foundation
import SPIFFEIdentity
import SwiftASN1
import Testing
import WritTestSupport
import X509
@testable import SPIFFEX509

/// The direct DER encoder produces exactly the bytes swift-certificates produces for the same
/// leaf, for every issuer and subject key type, with DNS names, at times on both sides of the
/// UTCTime/GeneralizedTime boundary and with fractional seconds.
@Suite struct X509SVIDLeafEncoderTests {
    /// The TBSCertificate bytes of a certificate's DER.
    static func tbs(of der: [UInt8]) throws -> ArraySlice<UInt8> {
        let root = try DER.parse(der)
        guard case .constructed(let children) = root.content, let first = children.first(where: { _ in true }) else {
            throw ASN1Error.invalidASN1Object(reason: "not a certificate")
        }
        return first.encodedBytes
    }

    @Test(arguments: TestKeyType.allCases)
    func matchesSwiftCertificatesByteForByte(_ issuerType: TestKeyType) async throws {
        let td = try TrustDomain(parsing: "example.org")
        let issuerKey = try issuerType.makeKey()
        let issuer = try await X509SVIDProfile.rootCA(trustDomain: td, key: issuerKey, notBefore: Date(timeIntervalSince1970: -400_000_000),
                                                      notAfter: Date(timeIntervalSince1970: 4_200_000_000))
        let algorithm = X509SVIDProfile.signatureAlgorithm(for: issuerKey.publicKey)
        let encoder = try X509SVIDLeafEncoder(issuer: issuer, signatureAlgorithm: algorithm)
        let times: [(Date, Date)] = [
            (Date(timeIntervalSince1970: 1_893_456_000.4), Date(timeIntervalSince1970: 1_893_456_600.6)),
            (Date(timeIntervalSince1970: 2_524_607_999.2), Date(timeIntervalSince1970: 2_524_607_999.6)),  // 2049-12-31T23:59:59 and, rounded, 2050
            (Date(timeIntervalSince1970: -1_000.5), Date(timeIntervalSince1970: 3_000_000_000)),
            (Date(timeIntervalSince1970: -300_000_000), Date(timeIntervalSince1970: 4_300_000_000)),  // 1960; clamped to the issuer's end
        ]
        for (index, subjectType) in TestKeyType.allCases.enumerated() where subjectType != .rsa4096 {
            let subjectKey = try subjectType.makeKey().publicKey
            for (notBefore, notAfter) in times {
                let id = try SPIFFEID(parsing: "spiffe://example.org/w/\(index)")
                let dns = index % 2 == 0 ? ["api.example.org", "*.svc.example.org"] : []
                let serial = X509SVIDProfile.randomSerialNumber()
                let reference = try await X509SVIDProfile.leaf(id: id, publicKey: subjectKey, dnsNames: dns, notBefore: notBefore,
                                                                        notAfter: notAfter, issuer: issuer, issuerKey: issuerKey, serialNumber: serial)
                let referenceDER = TestChain.der(reference)
                let tbs = try encoder.tbsCertificate(id: id, publicKey: subjectKey, dnsNames: dns, notBefore: notBefore, notAfter: notAfter, serialNumber: serial)
                #expect(tbs[...] == (try Self.tbs(of: referenceDER)), "\(issuerType) → \(subjectType) at \(notBefore)…\(notAfter)")
                let joined = encoder.certificate(tbs: tbs, signature: reference.signature.rawRepresentation)
                #expect(joined == referenceDER, "\(issuerType) → \(subjectType): the assembled certificate differs")
                // Signed by the encoder's caller, it is a valid X.509-SVID of the issuer.
                let signed = encoder.certificate(tbs: tbs, signature: try issuerKey.sign(bytes: tbs, signatureAlgorithm: algorithm).rawRepresentation)
                let parsed = try Certificate(derEncoded: signed)
                #expect(issuer.publicKey.isValidSignature(parsed.signature, for: parsed))
            }
        }
    }

    /// The calendar fields agree with Foundation's Gregorian calendar in UTC for dates from 1900
    /// to 2200 (fixed and seeded random instants, rounded to the second).
    @Test(arguments: TestEnvironment.seeds())
    func utcFieldsAgreeWithFoundation(seed: UInt64) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var generator = SeededRandom(seed: seed)
        let fixed: [Double] = [0, -1, -0.5, 0.5, 86_399.5, 951_782_400, 4_107_542_400, -2_208_988_800, 7_258_118_399.6]
        for seconds in fixed + (0..<2_000).map({ _ in Double.random(in: -2_208_988_800...7_258_118_400, using: &generator) }) {
            let date = Date(timeIntervalSince1970: seconds)
            let rounded = Date(timeIntervalSince1970: seconds.rounded())
            let expected = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: rounded)
            let got = X509SVIDLeafEncoder.utcComponents(date)
            #expect(got.year == expected.year && got.month == expected.month && got.day == expected.day && got.hours == expected.hour
                    && got.minutes == expected.minute && got.seconds == expected.second, "seed \(seed), \(seconds): \(got) vs \(expected)")
        }
    }

    /// An issuer without a subject key identifier gives leaves without an authority key
    /// identifier, as swift-certificates' build does.
    @Test func anIssuerWithoutAKeyIdentifier() async throws {
        let t = try await TestChain.make()
        let bare = try t.custom(subject: "bare ca", publicKey: t.intermediateKey.publicKey, issuer: t.root, issuerKey: t.rootKey,
                                notBefore: t.now - 60, notAfter: t.now + 3600, extensions: try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
        })
        let encoder = try X509SVIDLeafEncoder(issuer: bare, signatureAlgorithm: .ecdsaWithSHA256)
        let id = try SPIFFEID(parsing: "spiffe://example.org/w")
        let serial = X509SVIDProfile.randomSerialNumber()
        let reference = try await X509SVIDProfile.leaf(id: id, publicKey: t.leafKey.publicKey, notBefore: t.now, notAfter: t.now + 60,
                                                                issuer: bare, issuerKey: t.intermediateKey, serialNumber: serial)
        #expect(try reference.extensions.authorityKeyIdentifier == nil)
        let tbs = try encoder.tbsCertificate(id: id, publicKey: t.leafKey.publicKey, notBefore: t.now, notAfter: t.now + 60, serialNumber: serial)
        #expect(tbs[...] == (try Self.tbs(of: TestChain.der(reference))))
    }

    @Test func refusesWhatTheProfileRefuses() async throws {
        let t = try await TestChain.make()
        let encoder = try X509SVIDLeafEncoder(issuer: t.intermediate, signatureAlgorithm: .ecdsaWithSHA256)
        #expect(throws: X509SVIDError.self) {
            try encoder.tbsCertificate(id: try SPIFFEID(parsing: "spiffe://example.org"), publicKey: t.leafKey.publicKey, notBefore: t.now, notAfter: t.now + 60)
        }
        #expect(throws: X509SVIDError.self) {
            try encoder.tbsCertificate(id: try SPIFFEID(parsing: "spiffe://example.org/w"), publicKey: t.leafKey.publicKey, dnsNames: ["a..b"],
                                       notBefore: t.now, notAfter: t.now + 60)
        }
        #expect(throws: X509SVIDError.self) {
            try encoder.tbsCertificate(id: try SPIFFEID(parsing: "spiffe://example.org/w"), publicKey: t.leafKey.publicKey, notBefore: t.now, notAfter: t.now)
        }
        #expect(throws: X509SVIDError.self) { try X509SVIDLeafEncoder(issuer: t.intermediate, signatureAlgorithm: .ed25519) }
    }
}
