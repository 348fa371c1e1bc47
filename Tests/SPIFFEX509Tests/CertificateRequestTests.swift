import Crypto
import _CryptoExtras
import Foundation
import SPIFFEIdentity
import SwiftASN1
import Testing
import WritTestSupport
import X509
@testable import SPIFFEX509

/// PKCS#10 requests: only the public key of a request whose signature verifies is used.
@Suite struct CertificateRequestTests {
    @Test(arguments: [TestKeyType.ecP256, .ecP384, .rsa2048])
    func acceptsAndIssues(_ keyType: TestKeyType) async throws {
        let key = try keyType.makeKey()
        let algorithm: Certificate.SignatureAlgorithm = keyType == .ecP384 ? .ecdsaWithSHA384 : (keyType == .rsa2048 ? .sha256WithRSAEncryption : .ecdsaWithSHA256)
        let request = try SVIDCertificateRequest(derEncoded: try TestCSR.make(key, algorithm: algorithm))
        #expect(request.publicKey == key.publicKey)
        let pem = PEMDocument(type: "CERTIFICATE REQUEST", derBytes: try TestCSR.make(key, algorithm: algorithm)).pemString
        #expect(try SVIDCertificateRequest(pemEncoded: pem).publicKey == key.publicKey)
    }

    @Test func requestedExtensionsAreIgnored() async throws {
        let t = try await TestChain.make()
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let greedy = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            Critical(KeyUsage(keyCertSign: true))
            SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://example.org/admin"), .dnsName("evil.example")])
            Certificate.Extension(oid: [1, 3, 6, 1, 4, 1, 55555, 9], critical: false, value: [0x05, 0x00])
        }
        let request = try SVIDCertificateRequest(derEncoded: try TestCSR.make(key, asking: greedy))
        let leaf = try await X509SVIDProfile.leaf(id: try SPIFFEID(parsing: "spiffe://example.org/worker"), publicKey: request.publicKey,
                                                  notBefore: t.now, notAfter: t.now + 600, issuer: t.intermediate, issuerKey: t.intermediateKey)
        #expect(Array(try #require(try leaf.extensions.subjectAlternativeNames)) == [.uniformResourceIdentifier("spiffe://example.org/worker")])
        #expect(try leaf.extensions.basicConstraints == .notCertificateAuthority)
        #expect(try leaf.extensions.keyUsage?.keyCertSign == false)
        #expect(leaf.extensions[oid: [1, 3, 6, 1, 4, 1, 55555, 9]] == nil)
        #expect(leaf.subject != (try DistinguishedName { CommonName("request") }))
        let verified = await X509SVIDVerifier(bundle: t.bundle).verify(chain: [leaf, t.intermediate], at: t.now + 1)
        #expect(verified.spiffeID?.path == "/worker")
    }

    @Test func badSignatureIsRefused() throws {
        var der = try TestCSR.make(Certificate.PrivateKey(P256.Signing.PrivateKey()))
        der[der.count - 2] ^= 0x01  // inside the ECDSA signature's s
        let error = #expect(throws: X509SVIDError.self) { try SVIDCertificateRequest(derEncoded: der) }
        #expect(error?.code == .badRequestSignature || error?.code == .malformedRequest)
    }

    @Test func keyOfAnotherRequestIsRefused() throws {
        // The info of request A with the signature of request B.
        let a = try CertificateSigningRequest(derEncoded: try TestCSR.make(Certificate.PrivateKey(P256.Signing.PrivateKey())))
        let b = try CertificateSigningRequest(derEncoded: try TestCSR.make(Certificate.PrivateKey(P256.Signing.PrivateKey())))
        let forged = try CertificateSigningRequest(version: a.version, subject: a.subject, publicKey: a.publicKey,
                                                   attributes: a.attributes, signatureAlgorithm: b.signatureAlgorithm, signature: b.signature)
        let error = #expect(throws: X509SVIDError.self) { try SVIDCertificateRequest(forged) }
        #expect(error?.code == .badRequestSignature)
    }

    @Test func unsupportedKeysAreRefusedWithTheReason() throws {
        let p521 = Certificate.PrivateKey(P521.Signing.PrivateKey())
        let e1 = #expect(throws: X509SVIDError.self) { try SVIDCertificateRequest(derEncoded: try TestCSR.make(p521, algorithm: .ecdsaWithSHA512)) }
        #expect(e1?.code == .unsupportedKey)
        #expect(e1?.message.contains("P-521") == true)

        let ed = Certificate.PrivateKey(Curve25519.Signing.PrivateKey())
        let e2 = #expect(throws: X509SVIDError.self) { try SVIDCertificateRequest(derEncoded: try TestCSR.make(ed, algorithm: .ed25519)) }
        #expect(e2?.code == .unsupportedKey)

        let small = Certificate.PrivateKey(try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024)))
        let e3 = #expect(throws: X509SVIDError.self) { try SVIDCertificateRequest(derEncoded: try TestCSR.make(small, algorithm: .sha256WithRSAEncryption)) }
        #expect(e3?.code == .unsupportedKey)
        #expect(e3?.message.contains("1024") == true)
    }

    @Test(arguments: [[UInt8](), [0x30], [0x30, 0x00], Array("not a csr".utf8)])
    func garbageIsMalformed(_ bytes: [UInt8]) {
        let error = #expect(throws: X509SVIDError.self) { try SVIDCertificateRequest(derEncoded: bytes) }
        #expect(error?.code == .malformedRequest)
    }

    @Test func pemOfTheWrongTypeIsRefused() throws {
        let pem = PEMDocument(type: "CERTIFICATE", derBytes: [0x30, 0x00]).pemString
        #expect(throws: X509SVIDError.self) { try SVIDCertificateRequest(pemEncoded: pem) }
        #expect(throws: X509SVIDError.self) { try SVIDCertificateRequest(pemEncoded: "-----BEGIN CERTIFICATE REQUEST-----\n%%%\n") }
    }
}
