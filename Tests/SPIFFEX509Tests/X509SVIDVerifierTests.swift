import Crypto
import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import SwiftASN1
import Testing
import X509
@testable import SPIFFEX509

/// X509-SVID.md §5: good chains verify for every key type; each bad chain is refused with the
/// rule it breaks.
@Suite struct X509SVIDVerifierTests {
    @Test(arguments: TestKeyType.allCases)
    func goodChainVerifies(_ keyType: TestKeyType) async throws {
        let t = try await TestChain.make(keyType: keyType)
        let result = await X509SVIDVerifier(bundle: t.bundle).verify(chain: t.chain, at: t.now)
        #expect(result == .valid(try SPIFFEID(parsing: "spiffe://example.org/workload")))
        // The same through DER.
        let der = await X509SVIDVerifier(bundle: t.bundle).verify(chainDER: t.chain.map(TestChain.der), at: t.now)
        #expect(der.spiffeID?.path == "/workload")
    }

    @Test func leafProfile() async throws {
        let t = try await TestChain.make()
        let leaf = t.leaf
        #expect(leaf.version == .v3)
        #expect(!leaf.subject.isEmpty)
        let bc = try #require(try leaf.extensions.basicConstraints)
        #expect(bc == .notCertificateAuthority)
        let bcExt = try #require(leaf.extensions[oid: .X509ExtensionID.basicConstraints])
        #expect(bcExt.critical)
        let ku = try #require(try leaf.extensions.keyUsage)
        #expect(ku.digitalSignature && !ku.keyCertSign && !ku.cRLSign && !ku.keyEncipherment)
        #expect(try #require(leaf.extensions[oid: .X509ExtensionID.keyUsage]).critical)
        let eku = try #require(try leaf.extensions.extendedKeyUsage)
        #expect(Array(eku) == [.serverAuth, .clientAuth])
        #expect(try leaf.extensions.subjectKeyIdentifier != nil)
        #expect(try leaf.extensions.authorityKeyIdentifier?.keyIdentifier == (try t.intermediate.extensions.subjectKeyIdentifier?.keyIdentifier))
        let san = try #require(leaf.extensions[oid: .X509ExtensionID.subjectAlternativeName])
        #expect(!san.critical)
        let names = Array(try #require(try leaf.extensions.subjectAlternativeNames))
        #expect(names == [.uniformResourceIdentifier("spiffe://example.org/workload"), .dnsName("api.example.org")])
        // 128-bit random serial.
        #expect(leaf.serialNumber.bytes.count == 16)
        #expect(leaf.serialNumber.bytes.first! & 0x80 == 0)
        // CA profiles.
        #expect(try t.intermediate.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        #expect(try t.root.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: nil))
        for ca in [t.root, t.intermediate] {
            let caUsage = try #require(try ca.extensions.keyUsage)
            #expect(caUsage.keyCertSign && caUsage.cRLSign)
            #expect(try #require(ca.extensions[oid: .X509ExtensionID.keyUsage]).critical)
            #expect(try #require(ca.extensions[oid: .X509ExtensionID.basicConstraints]).critical)
            #expect(Array(try #require(try ca.extensions.subjectAlternativeNames)) == [.uniformResourceIdentifier("spiffe://example.org")])
            #expect(try ca.extensions.subjectKeyIdentifier != nil)
        }
    }

    @Test func rsaLeafGetsKeyEncipherment() async throws {
        let t = try await TestChain.make(keyType: .rsa2048)
        let ku = try #require(try t.leaf.extensions.keyUsage)
        #expect(ku.digitalSignature && ku.keyEncipherment)
    }

    @Test func leafNeverOutlivesItsIssuer() async throws {
        let t = try await TestChain.make()
        let late = try await X509SVIDProfile.leaf(
            id: try SPIFFEID(parsing: "spiffe://example.org/w"), publicKey: t.leafKey.publicKey,
            notBefore: t.now, notAfter: t.now + 86400 * 365, issuer: t.intermediate, issuerKey: t.intermediateKey)
        #expect(late.notValidAfter == t.intermediate.notValidAfter)
    }

    @Test func rootIDCannotBeIssued() async throws {
        let t = try await TestChain.make()
        await #expect(throws: X509SVIDError.self) {
            _ = try await X509SVIDProfile.leaf(id: t.trustDomain.id, publicKey: t.leafKey.publicKey,
                                               notBefore: t.now, notAfter: t.now + 60, issuer: t.intermediate, issuerKey: t.intermediateKey)
        }
    }

    @Test(arguments: ["ok.example", "*.example.org", "a-b.c", "x"])
    func acceptsDNSNames(_ name: String) throws { try DNSName.check(name) }

    @Test(arguments: ["", "-a.b", "a-.b", "a..b", "a_b.c", "*.", "a.*.b", String(repeating: "a", count: 64) + ".b", "a b"])
    func refusesDNSNames(_ name: String) {
        #expect(throws: X509SVIDError.self) { try DNSName.check(name) }
    }

    // MARK: the bad chains

    struct BadChain: Sendable, CustomTestStringConvertible {
        let name: String
        let rule: X509SVIDVerificationFailure.Rule
        let build: @Sendable (TestChain) async throws -> (chain: [Certificate], bundle: TrustBundle)
        var testDescription: String { name }
    }

    static let badChains: [BadChain] = [
        BadChain(name: "fail/leaf CA=true", rule: .leafIsCA) { t in
            ([try t.leafVariant(isCA: true), t.intermediate], t.bundle)
        },
        BadChain(name: "fail/leaf keyCertSign", rule: .leafHasKeyCertSign) { t in
            ([try t.leafVariant(usage: KeyUsage(digitalSignature: true, keyCertSign: true)), t.intermediate], t.bundle)
        },
        BadChain(name: "fail/leaf cRLSign", rule: .leafHasCRLSign) { t in
            ([try t.leafVariant(usage: KeyUsage(digitalSignature: true, cRLSign: true)), t.intermediate], t.bundle)
        },
        BadChain(name: "fail/no digitalSignature", rule: .leafWithoutDigitalSignature) { t in
            ([try t.leafVariant(usage: KeyUsage(keyEncipherment: true)), t.intermediate], t.bundle)
        },
        BadChain(name: "fail/two URI SANs", rule: .leafWithSeveralURISANs) { t in
            ([try t.leafVariant(uris: ["spiffe://example.org/a", "spiffe://example.org/b"]), t.intermediate], t.bundle)
        },
        BadChain(name: "fail/no URI SAN", rule: .leafWithoutURISAN) { t in
            ([try t.leafVariant(uris: []), t.intermediate], t.bundle)
        },
        BadChain(name: "fail/root-path ID", rule: .leafIDIsTrustDomainRoot) { t in
            ([try t.leafVariant(uris: ["spiffe://example.org"]), t.intermediate], t.bundle)
        },
        BadChain(name: "fail/non-spiffe URI", rule: .leafURINotSPIFFEID) { t in
            ([try t.leafVariant(uris: ["https://example.org/workload"]), t.intermediate], t.bundle)
        },
        BadChain(name: "fail/expired", rule: .expired) { t in
            ([try t.leafVariant(notBefore: t.now - 7200, notAfter: t.now - 3600), t.intermediate], t.bundle)
        },
        BadChain(name: "fail/not yet valid", rule: .notYetValid) { t in
            ([try t.leafVariant(notBefore: t.now + 3600, notAfter: t.now + 7200), t.intermediate], t.bundle)
        },
        BadChain(name: "fail/signed by a key absent from the bundle", rule: .untrustedChain) { t in
            let other = try await TestChain.make()
            return (other.chain, t.bundle)
        },
        BadChain(name: "fail/intermediate not a CA", rule: .signingCertificateNotCA) { t in
            let fake = try t.custom(subject: "not a ca", publicKey: t.intermediateKey.publicKey, issuer: t.root, issuerKey: t.rootKey,
                                    notBefore: t.now - 60, notAfter: t.now + 3600, extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
                SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://example.org")])
            })
            return ([try t.leafVariant(issuer: fake, issuerKey: t.intermediateKey), fake], t.bundle)
        },
        BadChain(name: "fail/intermediate without keyCertSign", rule: .signingCertificateWithoutKeyCertSign) { t in
            let fake = try t.custom(subject: "no certsign", publicKey: t.intermediateKey.publicKey, issuer: t.root, issuerKey: t.rootKey,
                                    notBefore: t.now - 60, notAfter: t.now + 3600, extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(cRLSign: true))
                SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://example.org")])
            })
            return ([try t.leafVariant(issuer: fake, issuerKey: t.intermediateKey), fake], t.bundle)
        },
        BadChain(name: "fail/bundle of another trust domain", rule: .trustDomainMismatch) { t in
            let other = try await TestChain.make(trustDomain: "other.org", id: "spiffe://other.org/w")
            return (t.chain, other.bundle)
        },
        BadChain(name: "fail/unknown critical extension", rule: .unknownCriticalExtension) { t in
            let unknown = Certificate.Extension(oid: [1, 3, 6, 1, 4, 1, 55555, 1], critical: true, value: [0x05, 0x00])
            return ([try t.leafVariant(extra: [unknown]), t.intermediate], t.bundle)
        },
        BadChain(name: "fail/empty chain", rule: .emptyChain) { t in ([], t.bundle) },
        BadChain(name: "fail/intermediate expired", rule: .expired) { t in
            let old = try await X509SVIDProfile.intermediateCA(trustDomain: t.trustDomain, publicKey: t.intermediateKey.publicKey,
                                                               notBefore: t.now - 7200, notAfter: t.now - 1, issuer: t.root, issuerKey: t.rootKey)
            return ([try t.leafVariant(notBefore: t.now - 7000, notAfter: t.now - 2, issuer: old, issuerKey: t.intermediateKey), old], t.bundle)
        },
        BadChain(name: "fail/leaf swapped onto a foreign intermediate", rule: .untrustedChain) { t in
            let other = try await TestChain.make()
            return ([t.leaf, other.intermediate], t.bundle)
        },
    ]

    @Test(arguments: badChains)
    func refusesBadChain(_ bad: BadChain) async throws {
        let t = try await TestChain.make()
        let (chain, bundle) = try await bad.build(t)
        let result = await X509SVIDVerifier(bundle: bundle).verify(chain: chain, at: t.now)
        let failure = try #require(result.failure, "\(bad.name) was accepted")
        #expect(failure.rule == bad.rule, "\(bad.name): \(failure.message)")
        #expect(!failure.message.isEmpty)
    }

    // MARK: the direct check of a leaf from a known issuer (an issuing CA's re-check)

    /// For every key type, a good leaf (built by the profile, and encoded directly) passes the
    /// direct check with the identity the full path validation finds.
    @Test(arguments: TestKeyType.allCases)
    func aLeafFromItsKnownIssuerPassesTheDirectCheck(_ keyType: TestKeyType) async throws {
        let t = try await TestChain.make(keyType: keyType)
        let id = try SPIFFEID(parsing: "spiffe://example.org/workload")
        let verifier = X509SVIDVerifier(bundle: t.bundle, verifiedIntermediates: [t.intermediate])
        #expect(verifier.verify(leaf: t.leaf, issuedBy: t.intermediate, at: t.now) == .valid(id))
        let encoder = try X509SVIDLeafEncoder(issuer: t.intermediate, signatureAlgorithm: X509SVIDProfile.signatureAlgorithm(for: t.intermediateKey.publicKey))
        let tbs = try encoder.tbsCertificate(id: id, publicKey: t.leafKey.publicKey, dnsNames: ["api.example.org"], notBefore: t.now - 10, notAfter: t.now + 600)
        let encoded = try Certificate(derEncoded: encoder.certificate(
            tbs: tbs, signature: try t.intermediateKey.sign(bytes: tbs, signatureAlgorithm: encoder.signatureAlgorithm).rawRepresentation))
        #expect(verifier.verify(leaf: encoded, issuedBy: t.intermediate, at: t.now) == .valid(id))
        #expect(await verifier.verify(chain: [encoded, t.intermediate], at: t.now) == .valid(id))
    }

    /// Every bad leaf under the good intermediate is refused by the direct check for the same
    /// rule as by full path validation; a leaf another key signed, or one naming another issuer,
    /// is untrusted; an issuer with name constraints is left to full path validation.
    @Test func theDirectCheckRefusesWhatPathValidationRefuses() async throws {
        let t = try await TestChain.make()
        let verifier = X509SVIDVerifier(bundle: t.bundle, verifiedIntermediates: [t.intermediate])
        var compared = 0
        for bad in Self.badChains {
            let (chain, bundle) = try await bad.build(t)
            guard chain.count == 2, chain[1] == t.intermediate, bundle == t.bundle else { continue }
            let full = await verifier.verify(chain: chain, at: t.now)
            let direct = try #require(verifier.verify(leaf: chain[0], issuedBy: t.intermediate, at: t.now), "\(bad.name)")
            #expect(direct.failure?.rule == bad.rule && full.failure?.rule == bad.rule, "\(bad.name): direct \(direct), full \(full)")
            compared += 1
        }
        #expect(compared >= 10, "only \(compared) bad leaves were compared")

        let forger = try TestKeyType.ecP256.makeKey()
        let forged = try t.leafVariant(issuer: t.intermediate, issuerKey: forger)
        #expect(verifier.verify(leaf: forged, issuedBy: t.intermediate, at: t.now)?.failure?.rule == .untrustedChain)
        #expect(await verifier.verify(chain: [forged, t.intermediate], at: t.now).failure?.rule == .untrustedChain)
        let other = try await TestChain.make()
        let foreign = verifier.verify(leaf: other.leaf, issuedBy: t.intermediate, at: t.now)
        #expect(foreign?.failure?.rule == .untrustedChain && foreign?.failure?.message.contains("names the issuer") == true, "\(String(describing: foreign))")

        let constrained = try t.custom(subject: "constrained", publicKey: t.intermediateKey.publicKey, issuer: t.root, issuerKey: t.rootKey,
                                       notBefore: t.now - 60, notAfter: t.now + 3600, extensions: try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            Critical(NameConstraints(permittedURIDomains: ["example.org"]))
            SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://example.org")])
        })
        let underConstraint = try t.leafVariant(issuer: constrained, issuerKey: t.intermediateKey)
        let alsoConstrained = X509SVIDVerifier(bundle: t.bundle, verifiedIntermediates: [t.intermediate, constrained])
        #expect(alsoConstrained.verify(leaf: underConstraint, issuedBy: constrained, at: t.now) == nil)

        // An issuer that is not one of the verified intermediates is left to path validation:
        // another chain's intermediate, and a look-alike with the same name and key but other content.
        #expect(verifier.verify(leaf: other.leaf, issuedBy: other.intermediate, at: t.now) == nil)
        let lookalike = try await X509SVIDProfile.intermediateCA(trustDomain: t.trustDomain, publicKey: t.intermediateKey.publicKey,
                                                                 notBefore: t.now - 60, notAfter: t.now + 3600, issuer: t.root, issuerKey: t.rootKey)
        #expect(lookalike.subject == t.intermediate.subject)
        #expect(verifier.verify(leaf: t.leaf, issuedBy: lookalike, at: t.now) == nil)
        #expect(X509SVIDVerifier(bundle: t.bundle).verify(leaf: t.leaf, issuedBy: t.intermediate, at: t.now) == nil)
    }

    @Test func garbageDERIsMalformed() async throws {
        let t = try await TestChain.make()
        let result = await X509SVIDVerifier(bundle: t.bundle).verify(chainDER: [[0x30, 0x03, 0x01, 0x01, 0xFF]], at: t.now)
        #expect(result.failure?.rule == .malformedCertificate)
    }
}
