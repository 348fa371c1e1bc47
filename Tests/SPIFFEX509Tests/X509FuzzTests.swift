import Crypto
import _CryptoExtras
import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import SwiftASN1
import Testing
import WritTestSupport
import X509
@testable import SPIFFEX509

/// The PEM and certificate-chain parsers survive 100,000 hostile inputs per seed (the CSR parser
/// has its own suite, `CertificateRequestFuzzTests`).
@Suite struct X509FuzzTests {
    static func samples() async throws -> (csrs: [[UInt8]], chain: TestChain) {
        let chain = try await TestChain.make()
        var csrs: [[UInt8]] = []
        for key in [Certificate.PrivateKey(P256.Signing.PrivateKey()), Certificate.PrivateKey(P384.Signing.PrivateKey())] {
            let algorithm: Certificate.SignatureAlgorithm = P384.Signing.PublicKey(key.publicKey) != nil ? .ecdsaWithSHA384 : .ecdsaWithSHA256
            let extensions = try Certificate.Extensions { SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://example.org/x")]) }
            var attributes = CertificateSigningRequest.Attributes()
            attributes.insert(try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: extensions)))
            let request = try CertificateSigningRequest(version: .v1, subject: try DistinguishedName { CommonName("fuzz") },
                                                        privateKey: key, attributes: attributes, signatureAlgorithm: algorithm)
            var serializer = DER.Serializer()
            try serializer.serialize(request)
            csrs.append(serializer.serializedBytes)
        }
        return (csrs, chain)
    }

    @Test(arguments: TestEnvironment.seeds())
    func pemParsersSurviveHostileInput(seed: UInt64) async throws {
        print("X509FuzzTests pem seed \(seed)")
        let (csrs, chain) = try await Self.samples()
        let td = chain.trustDomain
        let pems = [PEMDocument(type: "CERTIFICATE REQUEST", derBytes: csrs[0]).pemString,
                    TestChain.pem(chain.root) + TestChain.pem(chain.intermediate)].map { Array($0.utf8) }
        let mutator = FuzzMutator(samples: pems, dictionary: ["-----BEGIN ", "-----END ", "CERTIFICATE", "-----\n", "=", "\n", "\r\n"].map { Array($0.utf8) })
        for input in mutator.inputs(count: 100_000, seed: seed) {
            let text = String(decoding: input, as: UTF8.self)
            _ = try? SVIDCertificateRequest(pemEncoded: text)
            _ = try? TrustBundle.parseX509Authorities(pem: text, trustDomain: td)
        }
    }

    @Test func chainVerifierSurvivesMutatedCertificates() async throws {
        let (_, chain) = try await Self.samples()
        let verifier = X509SVIDVerifier(bundle: chain.bundle)
        let mutator = FuzzMutator(samples: [TestChain.der(chain.leaf), TestChain.der(chain.intermediate)])
        var valid = 0
        for input in mutator.inputs(count: 5_000, seed: TestEnvironment.seeds().last!) {
            if case .valid = await verifier.verify(chainDER: [input, TestChain.der(chain.intermediate)], at: chain.now) { valid += 1 }
        }
        #expect(valid < 5_000)
    }
}
