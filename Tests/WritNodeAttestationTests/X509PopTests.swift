import Crypto
import Foundation
import SPIFFEIdentity
import Testing
import WritModel
import WritNodeAttestation
import WritTestSupport
import X509

@Suite struct X509PopTests {
    @Test func aNodeChainingToTheCAYieldsItsIDAndSelectors() async throws {
        let pki = try TestNodePKI(withIntermediate: true)
        let key = P256.Signing.PrivateKey()
        let node = try pki.node(commonName: "node-1.example", dnsNames: ["node-1.example", "n1.internal"], key: key, serial: [0x00, 0x0a, 0xbc])
        let trust = try X509PopTrust(authorities: [pki.root])
        let verified = try await trust.verify(chainDER: pki.chainDER(node), at: Date())
        #expect(verified.fingerprint == TestNodePKI.sha256Hex(node))
        #expect(verified.agentID(in: try TrustDomain(parsing: "example.org")).uri == "spiffe://example.org/writ/agent/x509pop/\(TestNodePKI.sha256Hex(node))")
        let expected = try [
            "x509pop:subject:cn:node-1.example",
            "x509pop:san:dns:node-1.example", "x509pop:san:dns:n1.internal",
            "x509pop:serialnumber:abc",
            "x509pop:ca:fingerprint:\(TestNodePKI.sha256Hex(pki.intermediate!))",
            "x509pop:ca:fingerprint:\(TestNodePKI.sha256Hex(pki.root))",
        ].map { try Selector(parsing: $0) }.sorted()
        #expect(verified.selectors == expected)
    }

    @Test func untrustedExpiredAndCANodeCertificatesAreRefusedWithTheirReason() async throws {
        let pki = try TestNodePKI()
        let other = try TestNodePKI(name: "Someone Else's CA")
        let trust = try X509PopTrust(authorities: [pki.root])
        let key = P256.Signing.PrivateKey()

        func code(_ chain: [UInt8]) async -> NodeAttestationError.Code? {
            do { _ = try await trust.verify(chainDER: chain, at: Date()); return nil } catch { return error.code }
        }
        #expect(await code(other.chainDER(try other.node(commonName: "n", key: key))) == .untrustedCertificate)
        #expect(await code(pki.chainDER(try pki.node(commonName: "n", key: key, notBefore: Date() - 7200, notAfter: Date() - 60))) == .certificateNotValidNow)
        #expect(await code(pki.chainDER(try pki.node(commonName: "n", key: key, notBefore: Date() + 3600))) == .certificateNotValidNow)
        #expect(await code(pki.chainDER(try pki.node(commonName: "n", key: key, isCA: true))) == .unsuitableCertificate)
        #expect(await code([0x30, 0x03, 0x02, 0x01]) == .malformedEvidence)
        #expect(await code([]) == .malformedEvidence)
        // The root itself presented as the node certificate is a CA.
        #expect(await code(TestNodePKI.der(pki.root)) == .unsuitableCertificate)
    }

    @Test func theCABundleMustHoldCACertificates() async throws {
        let pki = try TestNodePKI()
        let leaf = try pki.node(commonName: "n", key: P256.Signing.PrivateKey())
        #expect(throws: NodeAttestationError.self) { try X509PopTrust(authorities: []) }
        do { _ = try X509PopTrust(authorities: [leaf]); Issue.record("a leaf was accepted as a CA") } catch {
            #expect(error.code == .invalidConfiguration && error.message.contains("not a CA"))
        }
        let directory = try TemporaryDirectory(prefix: "x509pop")
        let file = directory.file("ca.pem")
        try "not pem".write(to: file, atomically: true, encoding: .utf8)
        do { _ = try X509PopTrust(pemFile: file.path); Issue.record("garbage was accepted") } catch {
            #expect(error.code == .invalidConfiguration && error.message.contains(file.path))
        }
        try pki.rootPEM.write(to: file, atomically: true, encoding: .utf8)
        #expect(try X509PopTrust(pemFile: file.path).authorities == [pki.root])
        do { _ = try X509PopTrust(pemFile: directory.file("missing.pem").path); Issue.record("a missing file was accepted") } catch {
            #expect(error.message.contains("cannot read"))
        }
    }

    @Test func theChallengeResponseMustBeTheNodeKeysSignatureOverThisNonceInTime() async throws {
        let pki = try TestNodePKI()
        let key = P256.Signing.PrivateKey()
        let node = try pki.node(commonName: "n", key: key)
        let challenge = X509PopChallenge()
        #expect(challenge.nonce.count >= 32)
        #expect(X509PopChallenge().nonce != challenge.nonce, "nonces are fresh")

        let good = try X509PopChallenge.sign(nonce: challenge.nonce, with: key)
        try challenge.verify(signature: good, by: node)

        func code(_ body: () throws -> Void) -> NodeAttestationError.Code? {
            do { try body(); return nil } catch let error as NodeAttestationError { return error.code } catch { return nil }
        }
        // Another key, another nonce (a replay from another stream), the bare nonce without the
        // context, an empty or garbled signature, and a late answer are all refused.
        let otherKey = try X509PopChallenge.sign(nonce: challenge.nonce, with: P256.Signing.PrivateKey())
        #expect(code { try challenge.verify(signature: otherKey, by: node) } == .badChallengeResponse)
        let replay = try X509PopChallenge.sign(nonce: X509PopChallenge().nonce, with: key)
        #expect(code { try challenge.verify(signature: replay, by: node) } == .badChallengeResponse)
        let bare = Array(try key.signature(for: challenge.nonce).derRepresentation)
        #expect(code { try challenge.verify(signature: bare, by: node) } == .badChallengeResponse)
        #expect(code { try challenge.verify(signature: [], by: node) } == .badChallengeResponse)
        #expect(code { try challenge.verify(signature: good.dropLast() + [good.last! ^ 1], by: node) } == .badChallengeResponse)
        #expect(code { try challenge.verify(signature: good, by: node, at: challenge.issuedAt + .seconds(61)) } == .challengeExpired)
        // A P-384 node key signs with SHA-384.
        let key384 = P384.Signing.PrivateKey()
        let node384 = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key384.publicKey), notValidBefore: Date() - 60, notValidAfter: Date() + 3600,
            issuer: pki.root.subject, subject: try DistinguishedName { CommonName("n384") }, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { Critical(BasicConstraints.notCertificateAuthority) }, issuerPrivateKey: .init(pki.rootKey))
        try challenge.verify(signature: try X509PopChallenge.sign(nonce: challenge.nonce, with: key384), by: node384)
    }
}
