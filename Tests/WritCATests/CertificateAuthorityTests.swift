import Crypto
import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import SPIFFEJWT
import SPIFFEX509
import SwiftASN1
import Testing
import WritTestSupport
import X509
@_spi(Testing) @testable import WritCA

/// Scaled-down lifetimes that keep every 6× rule: leaf 10 min, JWT-SVID 5 min, agent SVID
/// 10 min, intermediate and JWT key 1 h, root 6 h.
let fastConfiguration = CAConfiguration(rootLifetime: .seconds(6 * 3600), intermediateLifetime: .seconds(3600),
                                        jwtKeyLifetime: .seconds(3600), agentSVIDLifetime: .seconds(600),
                                        x509SVIDLifetime: .seconds(600), jwtSVIDLifetime: .seconds(300))

func makeCA(clock: ManualClock, configuration: CAConfiguration = fastConfiguration, keys: (any KeyManager)? = nil,
            store: (any CAStateStore)? = nil, upstream: UpstreamCA? = nil) async throws -> CertificateAuthority {
    try await CertificateAuthority(trustDomain: try TrustDomain(parsing: "example.org"), configuration: configuration,
                                   keyManager: keys ?? MemoryKeyManager(), store: store ?? MemoryCAStateStore(),
                                   upstream: upstream, now: clock.now)
}

func csr(for key: P256.Signing.PrivateKey) throws -> [UInt8] { try TestCSR.make(key) }

extension TrustBundle {
    /// Every published key, as `x509:<DER hex>` or `jwt:<kid>`.
    var publishedKeys: Set<String> {
        Set(x509Authorities.map { "x509:" + CertificateAuthority.der($0).map { String($0, radix: 16) }.joined() } + jwtAuthorities.map { "jwt:" + $0.keyID })
    }
}

@Suite struct CAConfigurationTests {
    @Test func defaults() throws {
        let c = CAConfiguration()
        try c.validate()
        #expect(c.rootLifetime == .seconds(365 * 86400))
        #expect(c.intermediateLifetime == .seconds(86400))
        #expect(c.jwtKeyLifetime == .seconds(86400))
        #expect(c.agentSVIDLifetime == .seconds(3600))
        #expect(c.x509SVIDLifetime == .seconds(600))
        #expect(c.jwtSVIDLifetime == .seconds(300))
        #expect(c.caKeyType == .ecP256 && c.jwtKeyType == .ecP256)
        #expect(KeyType.allCases.map(\.rawValue) == ["ec-p256", "ec-p384", "rsa-2048", "rsa-4096"])
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let change: @Sendable (inout CAConfiguration) -> Void
        /// nil: valid; else a fragment the error message must contain.
        let refusal: String?
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "ok/defaults", change: { _ in }, refusal: nil),
        Case(name: "ok/test-scale", change: { $0 = fastConfiguration }, refusal: nil),
        Case(name: "ok/intermediate-exactly-6x", change: { $0.intermediateLifetime = .seconds(6 * 3600) }, refusal: nil),
        Case(name: "ok/jwt-key-exactly-6x", change: { $0.jwtKeyLifetime = .seconds(6 * 3600) }, refusal: nil),
        Case(name: "fail/intermediate-under-6x-agent-svid", change: { $0.intermediateLifetime = .seconds(6 * 3600 - 1) }, refusal: "`intermediate_lifetime` 21599s"),
        Case(name: "fail/intermediate-under-6x-x509-svid", change: { $0.agentSVIDLifetime = .seconds(60); $0.x509SVIDLifetime = .seconds(3 * 3600); $0.intermediateLifetime = .seconds(17 * 3600) }, refusal: "intermediate_lifetime"),
        Case(name: "fail/jwt-key-under-6x-svid", change: { $0.jwtKeyLifetime = .seconds(3600) }, refusal: "`jwt_key_lifetime` 1h"),
        Case(name: "fail/jwt-key-under-6x-jwt-svid", change: { $0.jwtSVIDLifetime = .seconds(5 * 3600); $0.jwtKeyLifetime = .seconds(29 * 3600); $0.intermediateLifetime = .seconds(30 * 3600) }, refusal: "jwt_key_lifetime"),
        Case(name: "fail/root-under-6x-intermediate", change: { $0.rootLifetime = .seconds(5 * 86400) }, refusal: "`root_lifetime` 5d"),
        Case(name: "fail/zero-svid-lifetime", change: { $0.x509SVIDLifetime = .zero }, refusal: "`x509_svid_lifetime` must be positive"),
        Case(name: "fail/negative-backdate", change: { $0.backdate = .seconds(-1) }, refusal: "backdate"),
    ]

    @Test(arguments: cases)
    func validation(_ c: Case) {
        var configuration = CAConfiguration()
        c.change(&configuration)
        do {
            try configuration.validate()
            #expect(c.refusal == nil, "\(c.name): accepted")
        } catch {
            #expect(error.code == .invalidConfiguration)
            if let fragment = c.refusal {
                #expect(error.message.contains(fragment), "\(c.name): \(error.message)")
            } else {
                Issue.record("\(c.name): refused: \(error.message)")
            }
        }
    }
}

@Suite struct AuthorityRotationTests {
    let start = Date(timeIntervalSince1970: 1_000_000)

    func slot(_ status: AuthorityStatus, kind: AuthorityKind = .jwt, id: String = "a", latest: Date? = nil) -> AuthoritySlot {
        AuthoritySlot(id: id, kind: kind, status: status, notBefore: start, notAfter: start + 600, latestIssuedExpiry: latest)
    }

    @Test func schedule() {
        let machine = AuthorityRotation()
        let active = slot(.active)
        let others = [AuthoritySlot(id: "r", kind: .root, status: .active, notBefore: start, notAfter: start + 100_000),
                      AuthoritySlot(id: "i", kind: .intermediate, status: .active, notBefore: start, notAfter: start + 100_000)]
        #expect(machine.actions(for: others + [active], now: start + 299).isEmpty)
        #expect(machine.actions(for: others + [active], now: start + 300) == [.prepare(.jwt)])
        let prepared = slot(.prepared, id: "b")
        #expect(machine.actions(for: others + [active, prepared], now: start + 499).isEmpty)
        #expect(machine.actions(for: others + [active, prepared], now: start + 500) == [.activate(id: "b")])
        let old = slot(.old, latest: start + 700)
        let fresh = AuthoritySlot(id: "b", kind: .jwt, status: .active, notBefore: start + 500, notAfter: start + 1100)
        #expect(machine.actions(for: others + [old, fresh], now: start + 700).isEmpty)  // its last credential is valid until then
        #expect(machine.actions(for: others + [old, fresh], now: start + 701) == [.remove(id: "a")])
        #expect(machine.actions(for: [], now: start).first == .prepare(.root))
    }
}

@Suite struct CertificateAuthorityTests {
    @Test func issuesVerifiableCredentials() async throws {
        let clock = ManualClock()
        let ca = try await makeCA(clock: clock)
        let id = try SPIFFEID(parsing: "spiffe://example.org/agent")
        let key = P256.Signing.PrivateKey()
        let svid = try await ca.issueX509SVID(csrDER: try csr(for: key), id: id, dnsNames: ["agent.example.org"])
        #expect(svid.chain.count == 2)
        #expect(svid.leaf.notValidBefore == clock.date.addingTimeInterval(-10))
        #expect(svid.leaf.notValidAfter == clock.date.addingTimeInterval(600))
        let bundle = await ca.bundle()
        #expect(await X509SVIDVerifier(bundle: bundle).verify(chainDER: svid.chainDER, at: clock.date) == .valid(id))
        let jwt = try await ca.mintJWTSVID(id: id, audience: ["api"])
        #expect(jwt.claims.expiresAt - jwt.claims.issuedAt == 300)
        #expect(await JWTSVIDValidator(bundle: bundle).validate(jwt.token, audience: "api", now: clock.date).svid?.claims.subject == id)
        // Requests outside the trust domain or for its root are refused.
        await #expect(throws: CAError.self) { try await ca.mintJWTSVID(id: try SPIFFEID(parsing: "spiffe://other.org/x"), audience: ["a"]) }
        await #expect(throws: CAError.self) { try await ca.issueX509SVID(csrDER: try csr(for: key), id: try SPIFFEID(parsing: "spiffe://example.org")) }
        await #expect(throws: CAError.self) { try await ca.issueX509SVID(csrDER: [0x30, 0x00], id: id) }
    }

    @Test func injectedBuilderFaultFailsIssuance() async throws {
        let clock = ManualClock()
        let ca = try await makeCA(clock: clock)
        await ca.setLeafBuilderForTesting { id, publicKey, _, notBefore, notAfter, encoder, issuerKey in
            // A builder bug: the leaf comes out as a CA.
            let issuer = encoder.issuer
            return CertificateAuthority.der(try Certificate(
                version: .v3, serialNumber: X509SVIDProfile.randomSerialNumber(), publicKey: publicKey,
                notValidBefore: notBefore, notValidAfter: notAfter, issuer: issuer.subject,
                subject: try DistinguishedName { OrganizationName("Writ") }, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                    Critical(KeyUsage(digitalSignature: true))
                    SubjectAlternativeNames([.uniformResourceIdentifier(id.uri)])
                },
                issuerPrivateKey: issuerKey))
        }
        do {
            _ = try await ca.issueX509SVID(publicKey: .init(P256.Signing.PrivateKey().publicKey), id: try SPIFFEID(parsing: "spiffe://example.org/w"))
            Issue.record("a CA=true leaf was handed out")
        } catch let error as CAError {
            #expect(error.code == .recheckFailed)
            #expect(error.message.contains("leaf_is_ca"))
        }
    }

    /// A key manager holding its keys in this process signs leaves on the CA's own thread (its
    /// `sign` is never called for them); one without an in-process signer (as a KMS or HSM
    /// would be) signs every leaf through `sign`. Both issue SVIDs that verify.
    @Test(arguments: [true, false])
    func issuesThroughEitherKindOfSigner(inProcess: Bool) async throws {
        let clock = ManualClock()
        let keys = CountingKeyManager(inProcess: inProcess)
        let ca = try await makeCA(clock: clock, keys: keys)
        let before = await keys.signs
        let bundle = await ca.bundle()
        for n in 0..<3 {
            let id = try SPIFFEID(parsing: "spiffe://example.org/w\(n)")
            let svid = try await ca.issueX509SVID(csrDER: try csr(for: P256.Signing.PrivateKey()), id: id)
            #expect(await X509SVIDVerifier(bundle: bundle).verify(chainDER: svid.chainDER, at: clock.date) == .valid(id))
        }
        let signed = await keys.signs - before
        #expect(signed == (inProcess ? 0 : 3), "the key manager signed \(signed) times for 3 leaves")
    }

    @Test func injectedWrongIdentityFailsIssuance() async throws {
        let clock = ManualClock()
        let ca = try await makeCA(clock: clock)
        await ca.setLeafBuilderForTesting { _, publicKey, dns, notBefore, notAfter, encoder, issuerKey in
            let tbs = try encoder.tbsCertificate(id: try SPIFFEID(parsing: "spiffe://example.org/someone-else"), publicKey: publicKey, dnsNames: dns,
                                                 notBefore: notBefore, notAfter: notAfter)
            return encoder.certificate(tbs: tbs, signature: try issuerKey.sign(bytes: tbs, signatureAlgorithm: encoder.signatureAlgorithm).rawRepresentation)
        }
        await #expect(throws: CAError.self) {
            try await ca.issueX509SVID(publicKey: .init(P256.Signing.PrivateKey().publicKey), id: try SPIFFEID(parsing: "spiffe://example.org/w"))
        }
    }

    @Test func svidNotAfterNeverPassesTheIntermediates() async throws {
        let clock = ManualClock()
        let ca = try await makeCA(clock: clock)
        let svid = try await ca.issueX509SVID(publicKey: .init(P256.Signing.PrivateKey().publicKey), id: try SPIFFEID(parsing: "spiffe://example.org/w"),
                                              ttl: .seconds(7200))
        #expect(svid.leaf.notValidAfter == svid.chain[1].notValidAfter)
        #expect(svid.leaf.notValidAfter < clock.date.addingTimeInterval(7200))
        #expect(await X509SVIDVerifier(bundle: ca.bundle()).verify(chainDER: svid.chainDER, at: svid.leaf.notValidAfter) == .valid(svid.id))
    }

    @Test func jwtExpiryNeverPassesTheKeysEndOfLife() async throws {
        let clock = ManualClock()
        let ca = try await makeCA(clock: clock)
        let jwtSlot = try #require(await ca.authorities().first { $0.kind == .jwt && $0.status == .active })
        let jwt = try await ca.mintJWTSVID(id: try SPIFFEID(parsing: "spiffe://example.org/w"), audience: ["a"], ttl: .seconds(7200))
        #expect(TimeInterval(jwt.claims.expiresAt) <= jwtSlot.notAfter.timeIntervalSince1970)
    }

    /// Two full rotations of root, intermediate and JWT key, in steps of a tenth of the leaf
    /// lifetime: at every step every unexpired credential issued so far validates against the
    /// bundle of that moment, and no authority leaves the bundle early.
    @Test func twoFullRotations() async throws {
        let clock = ManualClock()
        let ca = try await makeCA(clock: clock)
        let step: TimeInterval = 60  // leaf lifetime 600 s / 10
        let id = try SPIFFEID(parsing: "spiffe://example.org/rotating")
        var x509: [IssuedX509SVID] = []
        var jwts: [JWTSVID] = []
        var rootsSeen = Set<String>(), intermediatesSeen = Set<String>(), jwtKeysSeen = Set<String>()
        var removals = 0
        let end = clock.date.addingTimeInterval(2 * 6 * 3600 + 2 * 3600)  // two root lives and then some
        var steps = 0
        // Published roots and JWT keys (authority id -> step first published), the latest
        // expiry of anything issued under each, and the bundle sequence seen last.
        var firstPublished: [String: Int] = [:]
        var removedKeys = 0
        var issuedUntil: [String: Date] = [:]
        var lastSequence = await ca.bundle().sequenceNumber ?? 0
        var previousContent = await ca.bundle()
        for slot in await ca.authorities() where slot.kind != .intermediate { firstPublished[slot.id] = 0 }
        while clock.date < end {
            clock.advance(by: step)
            steps += 1
            let before = await ca.bundle().publishedKeys
            let actions = try await ca.rotate()
            removals += actions.filter { if case .remove = $0 { return true } else { return false } }.count
            let slots = await ca.authorities()
            let after = await ca.bundle().publishedKeys
            // No root or JWT key leaves the bundle while anything issued under it is unexpired.
            for gone in before.subtracting(after) {
                let until = issuedUntil[gone] ?? .distantPast
                #expect(until < clock.date, "step \(steps): a key left the bundle while a credential under it is valid until \(until)")
                removedKeys += 1
            }
            for slot in slots where slot.kind != .intermediate && firstPublished[slot.id] == nil { firstPublished[slot.id] = steps }
            for slot in slots where slot.status == .active {
                switch slot.kind {
                case .root: rootsSeen.insert(slot.id)
                case .intermediate: intermediatesSeen.insert(slot.id)
                case .jwt: jwtKeysSeen.insert(slot.id)
                }
                // A root or JWT key signs only after it has been published for a while: relying
                // parties had a bundle with it before they meet credentials under it.
                if slot.kind != .intermediate, let published = firstPublished[slot.id] {
                    #expect(published == 0 || published < steps, "step \(steps): `\(slot.id)` became active in the step it was published")
                }
            }
            // Every change of bundle content bumps spiffe_sequence.
            let current = await ca.bundle()
            let sequence = current.sequenceNumber ?? 0
            #expect(sequence >= lastSequence)
            if current.x509Authorities != previousContent.x509Authorities || current.jwtAuthorities != previousContent.jwtAuthorities {
                #expect(sequence > lastSequence, "step \(steps): the bundle changed without a new sequence number")
            }
            lastSequence = sequence
            previousContent = current
            let issuedSVID = try await ca.issueX509SVID(publicKey: .init(P256.Signing.PrivateKey(compactRepresentable: false).publicKey), id: id)
            x509.append(issuedSVID)
            let issuedJWT = try await ca.mintJWTSVID(id: id, audience: ["api"])
            jwts.append(issuedJWT)
            // Which published root the leaf chains to: the one whose key signed its intermediate.
            let intermediate = issuedSVID.chain[1]
            let anchor = try #require(current.x509Authorities.first {
                $0.subject == intermediate.issuer && $0.publicKey.isValidSignature(intermediate.signature, for: intermediate)
            })
            let rootKey = "x509:" + CertificateAuthority.der(anchor).map { String($0, radix: 16) }.joined()
            issuedUntil[rootKey] = max(issuedUntil[rootKey] ?? .distantPast, issuedSVID.leaf.notValidAfter)
            let jwtKey = "jwt:" + issuedJWT.keyID
            issuedUntil[jwtKey] = max(issuedUntil[jwtKey] ?? .distantPast, Date(timeIntervalSince1970: TimeInterval(issuedJWT.claims.expiresAt)))
            let bundle = await ca.bundle()
            let now = clock.date
            x509.removeAll { $0.leaf.notValidAfter < now }
            jwts.removeAll { TimeInterval($0.claims.expiresAt) < now.timeIntervalSince1970 }
            let verifier = X509SVIDVerifier(bundle: bundle)
            for svid in x509 {
                let result = await verifier.verify(chainDER: svid.chainDER, at: now)
                #expect(result == .valid(id), "step \(steps): an unexpired X.509-SVID stopped validating: \(String(describing: result.failure))")
            }
            let validator = await JWTSVIDValidator(bundle: bundle, leeway: .zero)
            for jwt in jwts {
                let result = await validator.validate(jwt.token, audience: "api", now: now)
                #expect(result.svid != nil, "step \(steps): an unexpired JWT-SVID stopped validating: \(String(describing: result.error))")
            }
        }
        // Two full rotations of each kind happened, and old authorities did leave the bundle.
        #expect(rootsSeen.count >= 3, "roots: \(rootsSeen.count)")
        #expect(intermediatesSeen.count >= 3 && jwtKeysSeen.count >= 3)
        #expect(removals > 0)
        #expect(removedKeys >= 4, "roots and JWT keys removed from the bundle: \(removedKeys)")
        let bundle = await ca.bundle()
        #expect(bundle.x509Authorities.count <= 2 && bundle.jwtAuthorities.count <= 3)
    }

    @Test func bundleSequenceIncreasesOnEveryChange() async throws {
        let clock = ManualClock()
        let ca = try await makeCA(clock: clock)
        let first = await ca.bundle()
        try await ca.prepare(.jwt)
        let second = await ca.bundle()
        #expect(second.sequenceNumber! > first.sequenceNumber!)
        #expect(second.jwtAuthorities.count == first.jwtAuthorities.count + 1)
        try await ca.activate(.jwt)
        #expect(await ca.bundle().jwtAuthorities.count == 2)  // the old key stays published
    }

    @Test func taintReplacesAndRevokeUnpublishes() async throws {
        let clock = ManualClock()
        let ca = try await makeCA(clock: clock)
        let id = try SPIFFEID(parsing: "spiffe://example.org/w")
        let before = try await ca.mintJWTSVID(id: id, audience: ["a"])
        let tainted = try #require(await ca.authorities().first { $0.kind == .jwt && $0.status == .active })
        try await ca.taint(id: tainted.id)
        let after = try await ca.mintJWTSVID(id: id, audience: ["a"])
        #expect(after.keyID != before.keyID)
        // Still published until revoked: the earlier token keeps validating.
        #expect(await JWTSVIDValidator(bundle: ca.bundle()).validate(before.token, audience: "a", now: clock.date).svid != nil)
        try await ca.revoke(id: tainted.id)
        #expect(await JWTSVIDValidator(bundle: ca.bundle()).validate(before.token, audience: "a", now: clock.date).error?.code == .unknownKeyID)
        // Only tainted authorities can be revoked.
        let active = try #require(await ca.authorities().first { $0.kind == .jwt && $0.status == .active })
        await #expect(throws: CAError.self) { try await ca.revoke(id: active.id) }
    }

    @Test func taintedRootReplacesTheIntermediateToo() async throws {
        let clock = ManualClock()
        let ca = try await makeCA(clock: clock)
        let root = try #require(await ca.authorities().first { $0.kind == .root && $0.status == .active })
        try await ca.taint(id: root.id)
        try await ca.revoke(id: root.id)
        let svid = try await ca.issueX509SVID(publicKey: .init(P256.Signing.PrivateKey().publicKey), id: try SPIFFEID(parsing: "spiffe://example.org/w"))
        #expect(await X509SVIDVerifier(bundle: ca.bundle()).verify(chainDER: svid.chainDER, at: clock.date).spiffeID != nil)
    }

    @Test func upstreamCASignsTheIntermediate() async throws {
        let clock = ManualClock()
        let keys = MemoryKeyManager()
        let upstreamKey = P256.Signing.PrivateKey()
        let upstreamRoot = try await X509SVIDProfile.rootCA(trustDomain: try TrustDomain(parsing: "example.org"), key: .init(upstreamKey),
                                                            notBefore: clock.date - 60, notAfter: clock.date + 365 * 86400)
        _ = try await keys.importKey(id: "upstream", pkcs8DER: [UInt8](upstreamKey.derRepresentation))
        let ca = try await makeCA(clock: clock, keys: keys, upstream: UpstreamCA(chain: [upstreamRoot], keyID: "upstream"))
        let bundle = await ca.bundle()
        #expect(bundle.x509Authorities == [upstreamRoot])
        let svid = try await ca.issueX509SVID(publicKey: .init(P256.Signing.PrivateKey().publicKey), id: try SPIFFEID(parsing: "spiffe://example.org/w"))
        #expect(svid.chain[1].issuer == upstreamRoot.subject)
        #expect(await X509SVIDVerifier(bundle: bundle).verify(chainDER: svid.chainDER, at: clock.date).spiffeID != nil)
    }

    @Test func stateSurvivesARestart() async throws {
        let clock = ManualClock()
        let dir = try TemporaryDirectory(prefix: "writ-ca")
        let store = FileCAStateStore(path: dir.path + "/state.json")
        let ca = try await makeCA(clock: clock, keys: try DiskKeyManager(directory: dir.path + "/keys"), store: store)
        let bundle = await ca.bundle()
        let reopened = try await makeCA(clock: clock, keys: try DiskKeyManager(directory: dir.path + "/keys"), store: store)
        #expect(await reopened.bundle() == bundle)
        try await reopened.verifyIntegrity()
        let svid = try await reopened.issueX509SVID(publicKey: .init(P256.Signing.PrivateKey().publicKey), id: try SPIFFEID(parsing: "spiffe://example.org/w"))
        #expect(await X509SVIDVerifier(bundle: bundle).verify(chainDER: svid.chainDER, at: clock.date).spiffeID != nil)
        // Another trust domain's state is refused.
        do {
            _ = try await CertificateAuthority(trustDomain: try TrustDomain(parsing: "other.org"), configuration: fastConfiguration,
                                               keyManager: try DiskKeyManager(directory: dir.path + "/keys"), store: store, now: clock.now)
            Issue.record("opened another trust domain's state")
        } catch let error as CAError {
            #expect(error.code == .invalidConfiguration)
        }
    }

    @Test func missingKeyFileIsACleanError() async throws {
        let clock = ManualClock()
        let dir = try TemporaryDirectory(prefix: "writ-ca")
        let store = FileCAStateStore(path: dir.path + "/state.json")
        _ = try await makeCA(clock: clock, keys: try DiskKeyManager(directory: dir.path + "/keys"), store: store)
        let victim = try #require(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/keys").first)
        try FileManager.default.removeItem(atPath: dir.path + "/keys/" + victim)
        do {
            _ = try await makeCA(clock: clock, keys: try DiskKeyManager(directory: dir.path + "/keys"), store: store)
            Issue.record("loaded a state naming a missing key")
        } catch let error as CAError {
            #expect(error.code == .keyNotFound)
        }
    }
}

/// Keys in memory behind a manager that counts its signatures; without `inProcess` it offers no
/// in-process signer, as a manager of keys held elsewhere would.
actor CountingKeyManager: KeyManager {
    private let inner = MemoryKeyManager()
    private let inProcess: Bool
    private(set) var signs = 0

    init(inProcess: Bool) { self.inProcess = inProcess }

    func generateKey(id: String, type: KeyType) async throws(CAError) -> ManagedKey { try await inner.generateKey(id: id, type: type) }
    func importKey(id: String, pkcs8DER: [UInt8]) async throws(CAError) -> ManagedKey { try await inner.importKey(id: id, pkcs8DER: pkcs8DER) }
    func key(id: String) async throws(CAError) -> ManagedKey { try await inner.key(id: id) }
    func keys() async throws(CAError) -> [ManagedKey] { await inner.keys() }
    func keyIDs() async throws(CAError) -> [String] { await inner.keyIDs() }
    func sign(keyID: String, message: [UInt8], hash: SignatureHash) async throws(CAError) -> [UInt8] {
        signs += 1
        return try await inner.sign(keyID: keyID, message: message, hash: hash)
    }
    func deleteKey(id: String) async throws(CAError) { await inner.deleteKey(id: id) }
    func inProcessSigner(keyID: String) async throws(CAError) -> Certificate.PrivateKey? {
        inProcess ? try await inner.inProcessSigner(keyID: keyID) : nil
    }
}
