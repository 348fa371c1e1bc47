import Crypto
import _CryptoExtras
import Foundation
import SwiftASN1
import Testing
import WritTestSupport
import X509
@testable import SPIFFEX509

/// The CSR parser (DER and PEM) survives 100,000 hostile inputs per seed, most of them
/// mutations of valid requests: no crash, only `X509SVIDError`s or accepted requests whose key
/// passes the key policy.
@Suite struct CertificateRequestFuzzTests {
    static func samples() throws -> [[UInt8]] {
        let keys: [(Certificate.PrivateKey, Certificate.SignatureAlgorithm)] = [
            (Certificate.PrivateKey(P256.Signing.PrivateKey(compactRepresentable: false)), .ecdsaWithSHA256),
            (Certificate.PrivateKey(P384.Signing.PrivateKey(compactRepresentable: false)), .ecdsaWithSHA384),
            (Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits2048)), .sha256WithRSAEncryption),
        ]
        var out: [[UInt8]] = []
        for (key, algorithm) in keys {
            out.append(try TestCSR.make(key, algorithm: algorithm))
        }
        let greedy = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://example.org/admin"), .dnsName("a.example")])
        }
        out.append(try TestCSR.make(keys[0].0, asking: greedy))
        return out
    }

    static let pemDictionary: [[UInt8]] = [
        "-----BEGIN CERTIFICATE REQUEST-----\n", "-----END CERTIFICATE REQUEST-----\n", "-----", "\n", "=", "MII", "/", "+",
    ].map { Array($0.utf8) }

    @Test(arguments: TestEnvironment.seeds())
    func requestParsersSurviveHostileInput(seed: UInt64) throws {
        print("CertificateRequestFuzzTests seed \(seed)")
        let der = try Self.samples()
        let pem = der.map { Array(PEMDocument(type: "CERTIFICATE REQUEST", derBytes: $0).pemString.utf8) }
        let derMutator = FuzzMutator(samples: der, dictionary: [[0x30, 0x82], [0x30, 0x81], [0x02, 0x01, 0x00], [0x05, 0x00], [0xA0, 0x00]])
        let pemMutator = FuzzMutator(samples: pem, dictionary: Self.pemDictionary)
        let start = ContinuousClock.now
        var accepted = 0
        var refused = 0
        for input in derMutator.inputs(count: 50_000, seed: seed) {
            do {
                let request = try SVIDCertificateRequest(derEncoded: input)
                try SVIDKeyPolicy.check(request.publicKey)
                accepted += 1
            } catch {
                refused += 1
                #expect(!error.message.isEmpty)
            }
        }
        for input in pemMutator.inputs(count: 50_000, seed: seed &+ 1) {
            do {
                let request = try SVIDCertificateRequest(pemEncoded: String(decoding: input, as: UTF8.self))
                try SVIDKeyPolicy.check(request.publicKey)
                accepted += 1
            } catch {
                refused += 1
                #expect(!error.message.isEmpty)
            }
        }
        print("CertificateRequestFuzzTests seed \(seed): \(accepted) accepted, \(refused) refused in \(ContinuousClock.now - start)")
        #expect(accepted + refused == 100_000)
        #expect(refused > 50_000, "mutations should mostly be refused")
    }
}
