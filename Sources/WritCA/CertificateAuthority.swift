import Crypto
import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import SPIFFEJWT
import SPIFFEX509
import SwiftASN1
@_spi(FixedExpiryValidationTime) import X509

/// An X.509-SVID as handed out: the leaf first, then the intermediates up to (not including)
/// the trust anchor.
public struct IssuedX509SVID: Sendable {
    public let id: SPIFFEID
    public let chain: [Certificate]
    /// The exact DER bytes that passed the re-check, leaf first.
    public let chainDER: [[UInt8]]
    public var leaf: Certificate { chain[0] }
}

/// An upstream CA that signs Writ's intermediates instead of a self-signed root.
public struct UpstreamCA: Sendable {
    /// The upstream chain: the first certificate's key signs intermediates; the last is the
    /// trust anchor published in the bundle.
    public let chain: [Certificate]
    /// The id of the upstream key, already imported into the key manager.
    public let keyID: String

    public init(chain: [Certificate], keyID: String) {
        self.chain = chain
        self.keyID = keyID
    }
}

/// The certificate authority of one trust domain: a root (self-signed, or an upstream CA), an
/// intermediate, and a JWT signing key — each rotated on the schedule of ``AuthorityRotation``
/// — that issues X.509-SVIDs and JWT-SVIDs.
///
/// Every credential is re-checked before it is returned: the exact DER bytes are parsed again
/// and path-validated against the current bundle with ``X509SVIDVerifier``, and JWT-SVIDs are
/// validated with ``JWTSVIDValidator`` against the published key. A credential that fails is
/// never handed out.
public actor CertificateAuthority {
    nonisolated public let trustDomain: TrustDomain
    public let configuration: CAConfiguration
    private let keyManager: any KeyManager
    private let store: any CAStateStore
    private let now: @Sendable () -> Date
    private var state: CAState
    private var upstream: UpstreamCA?
    private var certificates: [String: Certificate] = [:]
    private var cachedVerifier: (UInt64, X509SVIDVerifier)?
    /// Counts ``save()``s: a cache filled across a suspension is kept only if none happened.
    private var generation: UInt64 = 0
    private var cachedValidator: (UInt64, JWTSVIDValidator)?

    /// Issuing keys by key id: signers that sign on the actor's thread where the key manager
    /// holds keys in this process, its asynchronous signer otherwise. Cleared when the
    /// authorities change.
    private var issuerKeys: [String: IssuerKey] = [:]

    /// Leaf encoders by intermediate slot id. Cleared when the authorities change.
    private var leafEncoders: [String: X509SVIDLeafEncoder] = [:]

    /// Builds the DER of a leaf certificate with an in-process issuer key; tests replace it to
    /// inject builder faults.
    @_spi(Testing) public typealias LeafBuilder = @Sendable (_ id: SPIFFEID, _ publicKey: Certificate.PublicKey, _ dnsNames: [String],
                                              _ notBefore: Date, _ notAfter: Date, _ encoder: X509SVIDLeafEncoder,
                                              _ issuerKey: Certificate.PrivateKey) throws -> [UInt8]
    private var leafBuilder: LeafBuilder = { id, key, dns, notBefore, notAfter, encoder, issuerKey in
        let tbs = try encoder.tbsCertificate(id: id, publicKey: key, dnsNames: dns, notBefore: notBefore, notAfter: notAfter)
        let signature = try issuerKey.sign(bytes: tbs, signatureAlgorithm: encoder.signatureAlgorithm)
        return encoder.certificate(tbs: tbs, signature: signature.rawRepresentation)
    }

    /// Opens the CA: loads its state (checking every key it references), or bootstraps a new
    /// root, intermediate and JWT key; then applies any rotation that is due.
    public init(trustDomain: TrustDomain, configuration: CAConfiguration = CAConfiguration(), keyManager: any KeyManager,
                store: any CAStateStore, upstream: UpstreamCA? = nil, now: @escaping @Sendable () -> Date) async throws(CAError) {
        try configuration.validate()
        self.trustDomain = trustDomain
        self.configuration = configuration
        self.keyManager = keyManager
        self.store = store
        self.now = now
        if let saved = try await store.load() {
            guard saved.trustDomain == trustDomain.name else {
                throw CAError(.invalidConfiguration, "CA state is for the trust domain `\(saved.trustDomain)`, not `\(trustDomain.name)`")
            }
            state = saved
        } else {
            state = CAState(trustDomain: trustDomain.name, sequence: 1, authorities: [])
        }
        try await attachUpstream(upstream)
        try await loadCertificates()
        try await removeOrphanKeys()
        // A key that was active when the process stopped may have signed credentials after the
        // last save: assume the worst, its whole life.
        for index in state.authorities.indices where state.authorities[index].slot.status == .active && state.authorities[index].slot.kind != .root {
            state.authorities[index].slot.latestIssuedExpiry = state.authorities[index].slot.notAfter
        }
        _ = try await rotate()
    }

    private func attachUpstream(_ upstream: UpstreamCA?) async throws(CAError) {
        if let upstream {
            guard let signer = upstream.chain.first else {
                throw CAError(.invalidUpstream, "the upstream CA chain is empty")
            }
            let key = try await keyManager.key(id: upstream.keyID)
            guard key.publicKey == signer.publicKey else {
                throw CAError(.invalidUpstream, "the upstream key `\(upstream.keyID)` does not match the first certificate of the upstream chain")
            }
            for certificate in upstream.chain {
                guard case .isCertificateAuthority = try? certificate.extensions.basicConstraints else {
                    throw CAError(.invalidUpstream, "upstream certificate `\(certificate.subject)` is not a CA")
                }
            }
            state.upstreamChainDER = upstream.chain.map(Self.der)
            state.upstreamKeyID = upstream.keyID
            self.upstream = upstream
        } else if let chainDER = state.upstreamChainDER, let keyID = state.upstreamKeyID {
            var chain: [Certificate] = []
            for der in chainDER {
                guard let certificate = try? Certificate(derEncoded: der) else {
                    throw CAError(.corruptFile, "an upstream certificate in the CA state does not parse")
                }
                chain.append(certificate)
            }
            self.upstream = UpstreamCA(chain: chain, keyID: keyID)
        }
    }

    private func loadCertificates() async throws(CAError) {
        for record in state.authorities {
            let key = try await keyManager.key(id: record.keyID)
            if let der = record.certificateDER {
                guard let certificate = try? Certificate(derEncoded: der) else {
                    throw CAError(.corruptFile, "the certificate of authority `\(record.slot.id)` does not parse")
                }
                guard certificate.publicKey == key.publicKey else {
                    throw CAError(.corruptFile, "the key `\(record.keyID)` does not match the certificate of authority `\(record.slot.id)`")
                }
                certificates[record.slot.id] = certificate
            } else if record.slot.kind == .jwt {
                guard let kid = record.jwtKeyID, let jwk = try? JWKPublicKey(key.publicKey), jwk.thumbprint == kid else {
                    throw CAError(.corruptFile, "JWT authority `\(record.slot.id)` does not match its key `\(record.keyID)`")
                }
                jwtPublicKeys[record.keyID] = jwk
            } else {
                throw CAError(.corruptFile, "authority `\(record.slot.id)` has no certificate")
            }
        }
    }

    /// Deletes authority keys (ids `root-…`, `intermediate-…`, `jwt-…`) that no authority in the
    /// state names: what a crash between writing a key and writing the state leaves behind.
    /// Other keys in the manager (e.g. an imported upstream key) are left alone.
    private func removeOrphanKeys() async throws(CAError) {
        var referenced = Set(state.authorities.map(\.keyID))
        if let keyID = state.upstreamKeyID { referenced.insert(keyID) }
        for id in try await keyManager.keyIDs() where !referenced.contains(id) {
            if AuthorityKind.allCases.contains(where: { id.hasPrefix($0.rawValue + "-") }) {
                try await keyManager.deleteKey(id: id)
            }
        }
    }

    // MARK: reading

    /// The authorities and their schedule.
    public func authorities() -> [AuthoritySlot] { state.authorities.map(\.slot) }

    /// The current trust bundle: every published root (or the upstream anchor) and JWT key.
    public func bundle() -> TrustBundle {
        var roots: [Certificate] = []
        if let anchor = upstream?.chain.last {
            roots = [anchor]
        } else {
            roots = state.authorities.filter { $0.slot.kind == .root }.compactMap { certificates[$0.slot.id] }
        }
        var jwt: [JWTAuthority] = []
        for record in state.authorities where record.slot.kind == .jwt {
            if let kid = record.jwtKeyID, let publicKey = jwtPublicKeys[record.keyID] {
                jwt.append(JWTAuthority(keyID: kid, publicKey: publicKey))
            }
        }
        return TrustBundle(trustDomain: trustDomain, x509Authorities: roots, jwtAuthorities: jwt, sequenceNumber: state.sequence)
    }

    private var jwtPublicKeys: [String: JWKPublicKey] = [:]

    /// For each JWT key in the bundle (by `kid`), when the last token it could sign expires: the
    /// end of the key's life plus the longest JWT-SVID lifetime. Past that the key may leave
    /// every copy of the bundle.
    public func jwtKeyTrustedUntil() -> [String: Date] {
        var out: [String: Date] = [:]
        for record in state.authorities where record.slot.kind == .jwt {
            if let kid = record.jwtKeyID {
                out[kid] = record.slot.notAfter.addingTimeInterval(configuration.jwtSVIDLifetime.timeInterval)
            }
        }
        return out
    }

    /// Checks that every authority's key (and the upstream key) is present, matches its
    /// certificate or `kid`, and makes signatures that verify with its public key; and that an
    /// active authority of each kind exists.
    public func verifyIntegrity() async throws(CAError) {
        try await loadCertificates()
        for kind in AuthorityKind.allCases where !(kind == .root && upstream != nil) {
            guard state.authorities.contains(where: { $0.slot.kind == kind && $0.slot.status == .active }) else {
                throw CAError(.noSuchAuthority, "no active \(kind.rawValue) authority")
            }
        }
        var keyIDs = state.authorities.map(\.keyID)
        if let upstreamKeyID = state.upstreamKeyID { keyIDs.append(upstreamKeyID) }
        let message = Array("writ ca integrity check".utf8)
        for keyID in keyIDs {
            let key = try await keyManager.key(id: keyID)
            let signature = try await keyManager.sign(keyID: keyID, message: message, hash: key.type.defaultHash)
            guard key.publicKey.isValidSignature(signature, for: message, signatureAlgorithm: key.type.certificateSignatureAlgorithm) else {
                throw CAError(.corruptFile, "key `\(keyID)` signs, but its signature does not verify with its public key")
            }
        }
    }

    // MARK: rotation

    /// Applies every rotation step due now (repeatedly, until none is left) and returns them.
    @discardableResult
    public func rotate() async throws(CAError) -> [RotationAction] {
        var applied: [RotationAction] = []
        // One action at a time, re-planning after each: an intermediate is only prepared once
        // a root is active, and so on.
        for _ in 0..<64 {
            var slots = state.authorities.map(\.slot)
            if upstream != nil { slots.removeAll { $0.kind == .root } }
            var due = AuthorityRotation().actions(for: slots, now: now())
            if upstream != nil { due.removeAll { $0 == .prepare(.root) } }
            guard let action = due.first else { break }
            try await apply(action)
            applied.append(action)
        }
        return applied
    }

    private func apply(_ action: RotationAction) async throws(CAError) {
        switch action {
        case .prepare(let kind): try await prepareAuthority(kind)
        case .activate(let id): try await activateAuthority(id)
        case .remove(let id): try await removeAuthority(id)
        }
    }

    /// Creates and publishes a successor of `kind` now (forced prepare).
    public func prepare(_ kind: AuthorityKind) async throws(CAError) {
        if let existing = state.authorities.first(where: { $0.slot.kind == kind && $0.slot.status == .prepared }) {
            throw CAError(.invalidRequest, "a \(kind.rawValue) authority is prepared already: `\(existing.slot.id)`")
        }
        try await prepareAuthority(kind)
    }

    /// Makes the prepared authority of `kind` active now (forced activate).
    public func activate(_ kind: AuthorityKind) async throws(CAError) {
        guard let prepared = state.authorities.first(where: { $0.slot.kind == kind && $0.slot.status == .prepared }) else {
            throw CAError(.noSuchAuthority, "no prepared \(kind.rawValue) authority to activate")
        }
        try await activateAuthority(prepared.slot.id)
    }

    /// Marks an authority compromised: it stops signing at once (a successor is prepared and
    /// activated if it was active) and stays published until its credentials expire or it is
    /// revoked.
    public func taint(id: String) async throws(CAError) {
        guard let index = state.authorities.firstIndex(where: { $0.slot.id == id }) else {
            throw CAError(.noSuchAuthority, "no authority `\(id)`")
        }
        let kind = state.authorities[index].slot.kind
        let wasActive = state.authorities[index].slot.status == .active
        let wasPrepared = state.authorities[index].slot.status == .prepared
        state.authorities[index].slot.status = .tainted
        if wasPrepared { state.authorities[index].slot.latestIssuedExpiry = nil }
        try await save()
        if wasActive {
            if let prepared = state.authorities.first(where: { $0.slot.kind == kind && $0.slot.status == .prepared }) {
                try await activateAuthority(prepared.slot.id)
            } else {
                try await prepareAuthority(kind)
                let successor = state.authorities.first { $0.slot.kind == kind && $0.slot.status == .prepared }!
                try await activateAuthority(successor.slot.id)
            }
        }
        if kind == .root {
            // Intermediates the tainted root signed stop signing too: a prepared one is dropped,
            // an active one replaced by a fresh intermediate under the current root.
            for record in state.authorities where record.slot.kind == .intermediate && record.issuerID == id && record.slot.status == .prepared {
                try await removeAuthority(record.slot.id, force: true)
            }
            if let active = state.authorities.first(where: { $0.slot.kind == .intermediate && $0.slot.status == .active }), active.issuerID == id {
                try await taint(id: active.slot.id)
            }
        }
    }

    /// Removes a tainted authority that is not active from the bundle now.
    public func revoke(id: String) async throws(CAError) {
        guard let record = state.authorities.first(where: { $0.slot.id == id }) else {
            throw CAError(.noSuchAuthority, "no authority `\(id)`")
        }
        guard record.slot.status == .tainted else {
            throw CAError(.invalidRequest, "authority `\(id)` is \(record.slot.status.rawValue): only a tainted authority can be revoked (taint it first)")
        }
        try await removeAuthority(id, force: true)
    }

    private func newAuthorityID(_ kind: AuthorityKind) -> String {
        let stamp = Int64(now().timeIntervalSince1970)
        var random = SystemRandomNumberGenerator()
        return "\(kind.rawValue)-\(stamp)-\(String(UInt32.random(in: 0...UInt32.max, using: &random), radix: 16))"
    }

    private func prepareAuthority(_ kind: AuthorityKind) async throws(CAError) {
        let id = newAuthorityID(kind)
        let start = now().addingTimeInterval(-configuration.backdate.timeInterval)
        var record: AuthorityRecord
        switch kind {
        case .root:
            let key = try await keyManager.generateKey(id: id, type: configuration.caKeyType)
            let signer = Certificate.PrivateKey(ManagedKeySigner(key: key, manager: keyManager))
            let certificate: Certificate
            do {
                certificate = try await X509SVIDProfile.rootCA(trustDomain: trustDomain, key: signer, notBefore: start,
                                                               notAfter: start.addingTimeInterval(configuration.rootLifetime.timeInterval))
            } catch { throw CAError(.signingFailed, "creating the root failed: \(error.message)") }
            record = AuthorityRecord(slot: AuthoritySlot(id: id, kind: .root, status: .prepared, notBefore: certificate.notValidBefore,
                                                         notAfter: certificate.notValidAfter),
                                     keyID: id, certificateDER: Self.der(certificate))
            certificates[id] = certificate
            state.sequence += 1
        case .intermediate:
            let (issuer, issuerKey, issuerID) = try await currentRootSigner()
            let key = try await keyManager.generateKey(id: id, type: configuration.caKeyType)
            let certificate: Certificate
            do {
                certificate = try await X509SVIDProfile.intermediateCA(
                    trustDomain: trustDomain, publicKey: key.publicKey, notBefore: start,
                    notAfter: start.addingTimeInterval(configuration.intermediateLifetime.timeInterval), issuer: issuer, issuerKey: issuerKey)
            } catch { throw CAError(.signingFailed, "creating the intermediate failed: \(error.message)") }
            record = AuthorityRecord(slot: AuthoritySlot(id: id, kind: .intermediate, status: .prepared, notBefore: certificate.notValidBefore,
                                                         notAfter: certificate.notValidAfter),
                                     keyID: id, certificateDER: Self.der(certificate), issuerID: issuerID)
            certificates[id] = certificate
            if let issuerID, let index = state.authorities.firstIndex(where: { $0.slot.id == issuerID }) {
                let previous = state.authorities[index].slot.latestIssuedExpiry ?? .distantPast
                state.authorities[index].slot.latestIssuedExpiry = max(previous, certificate.notValidAfter)
            }
        case .jwt:
            let key = try await keyManager.generateKey(id: id, type: configuration.jwtKeyType)
            let jwk: JWKPublicKey
            do { jwk = try JWKPublicKey(key.publicKey) } catch { throw CAError(.signingFailed, error.message) }
            jwtPublicKeys[id] = jwk
            record = AuthorityRecord(slot: AuthoritySlot(id: id, kind: .jwt, status: .prepared, notBefore: start,
                                                         notAfter: start.addingTimeInterval(configuration.jwtKeyLifetime.timeInterval)),
                                     keyID: id, jwtKeyID: jwk.thumbprint)
            state.sequence += 1
        }
        state.authorities.append(record)
        // The key file is durable before the state that names it: a crash in between leaves
        // an orphan key, never a state naming a missing key.
        try await save()
    }

    private func currentRootSigner() async throws(CAError) -> (Certificate, Certificate.PrivateKey, String?) {
        if let upstream {
            let key = try await keyManager.key(id: upstream.keyID)
            return (upstream.chain[0], Certificate.PrivateKey(ManagedKeySigner(key: key, manager: keyManager)), nil)
        }
        guard let root = state.authorities.first(where: { $0.slot.kind == .root && $0.slot.status == .active }),
              let certificate = certificates[root.slot.id] else {
            throw CAError(.noSuchAuthority, "no active root to sign an intermediate")
        }
        let key = try await keyManager.key(id: root.keyID)
        return (certificate, Certificate.PrivateKey(ManagedKeySigner(key: key, manager: keyManager)), root.slot.id)
    }

    private func activateAuthority(_ id: String) async throws(CAError) {
        guard let index = state.authorities.firstIndex(where: { $0.slot.id == id }) else {
            throw CAError(.noSuchAuthority, "no authority `\(id)`")
        }
        let kind = state.authorities[index].slot.kind
        for other in state.authorities.indices where state.authorities[other].slot.kind == kind && state.authorities[other].slot.status == .active {
            state.authorities[other].slot.status = .old
        }
        state.authorities[index].slot.status = .active
        try await save()
    }

    private func removeAuthority(_ id: String, force: Bool = false) async throws(CAError) {
        guard let index = state.authorities.firstIndex(where: { $0.slot.id == id }) else { return }
        let record = state.authorities[index]
        guard force || record.slot.status == .old || record.slot.status == .tainted else {
            throw CAError(.invalidRequest, "authority `\(id)` is \(record.slot.status.rawValue) and cannot be removed")
        }
        state.authorities.remove(at: index)
        if record.slot.kind != .intermediate { state.sequence += 1 }
        try await save()
        certificates[id] = nil
        jwtPublicKeys[record.keyID] = nil
        // The state no longer names the key: deleting it last keeps every crash point loadable.
        try await keyManager.deleteKey(id: record.keyID)
    }

    private func save() async throws(CAError) {
        try await store.save(state)
        // Authorities changed: the re-check verifier, the validator and the issuing keys are
        // rebuilt on next use.
        generation &+= 1
        cachedVerifier = nil
        cachedValidator = nil
        issuerKeys = [:]
        leafEncoders = [:]
    }

    private func leafEncoder(slot: String, issuer: Certificate, key: Certificate.PrivateKey) throws(CAError) -> X509SVIDLeafEncoder {
        if let cached = leafEncoders[slot] { return cached }
        let fresh: X509SVIDLeafEncoder
        do { fresh = try X509SVIDLeafEncoder(issuer: issuer, signatureAlgorithm: X509SVIDProfile.signatureAlgorithm(for: key.publicKey)) } catch {
            throw CAError(.signingFailed, error.message)
        }
        leafEncoders[slot] = fresh
        return fresh
    }

    /// How the CA signs with one of its keys.
    private enum IssuerKey {
        /// Held by the key manager in this process: signs without leaving the actor.
        case inProcess(Certificate.PrivateKey)
        /// Held elsewhere: signs through the key manager, asynchronously.
        case managed(Certificate.PrivateKey)
    }

    private func issuerKey(_ keyID: String) async throws(CAError) -> IssuerKey {
        if let cached = issuerKeys[keyID] { return cached }
        let before = generation
        let fresh: IssuerKey
        if let signer = try await keyManager.inProcessSigner(keyID: keyID) {
            fresh = .inProcess(signer)
        } else {
            fresh = .managed(Certificate.PrivateKey(ManagedKeySigner(key: try await keyManager.key(id: keyID), manager: keyManager)))
        }
        if generation == before { issuerKeys[keyID] = fresh }
        return fresh
    }

    // MARK: issuing

    private func activeRecord(_ kind: AuthorityKind) throws(CAError) -> AuthorityRecord {
        guard let record = state.authorities.first(where: { $0.slot.kind == kind && $0.slot.status == .active }) else {
            throw CAError(.noSuchAuthority, "no active \(kind.rawValue) authority")
        }
        return record
    }

    /// The re-check verifier for the current bundle. The CA's own intermediates are verified
    /// against the bundle once here (full path validation, as a chain of their own), so each
    /// re-check verifies the leaf against its intermediate directly and not the intermediate's
    /// path again.
    private func verifier() async -> X509SVIDVerifier {
        if let (sequence, cached) = cachedVerifier, sequence == state.sequence { return cached }
        let before = generation
        let current = bundle()
        var verified: [Certificate] = []
        for record in state.authorities where record.slot.kind == .intermediate && record.slot.status != .tainted {
            guard let certificate = certificates[record.slot.id] else { continue }
            var pathCheck = Verifier(rootCertificates: CertificateStore(current.x509Authorities)) { RFC5280Policy(fixedExpiryValidationTime: now()) }
            if case .validCertificate = await pathCheck.validate(leaf: certificate, intermediates: CertificateStore(upstream?.chain.dropLast() ?? [])) {
                verified.append(certificate)
            }
        }
        let fresh = X509SVIDVerifier(bundle: current, verifiedIntermediates: verified)
        if generation == before { cachedVerifier = (state.sequence, fresh) }
        return fresh
    }

    private func jwtValidator() async -> JWTSVIDValidator {
        if let (sequence, cached) = cachedValidator, sequence == state.sequence { return cached }
        let fresh = await JWTSVIDValidator(bundle: bundle(), leeway: .zero)
        cachedValidator = (state.sequence, fresh)
        return fresh
    }

    /// Issues an X.509-SVID for the key of a PKCS#10 request (its signature checked; nothing
    /// else of it used).
    public func issueX509SVID(csrDER: [UInt8], id: SPIFFEID, ttl: Duration? = nil, dnsNames: [String] = []) async throws(CAError) -> IssuedX509SVID {
        let request: SVIDCertificateRequest
        do { request = try SVIDCertificateRequest(derEncoded: csrDER) } catch {
            throw CAError(.invalidRequest, error.message)
        }
        return try await issueX509SVID(publicKey: request.publicKey, id: id, ttl: ttl, dnsNames: dnsNames)
    }

    /// Issues an X.509-SVID for a public key.
    public func issueX509SVID(publicKey: Certificate.PublicKey, id: SPIFFEID, ttl: Duration? = nil, dnsNames: [String] = []) async throws(CAError) -> IssuedX509SVID {
        guard id.trustDomain == trustDomain, !id.isRoot else {
            throw CAError(.invalidRequest, "`\(id)` is not a workload identity of `\(trustDomain)`")
        }
        let record = try activeRecord(.intermediate)
        guard let intermediate = certificates[record.slot.id] else { throw CAError(.noSuchAuthority, "intermediate certificate missing") }
        let issuerKey = try await issuerKey(record.keyID)
        let time = now()
        let notBefore = time.addingTimeInterval(-configuration.backdate.timeInterval)
        let notAfter = time.addingTimeInterval((ttl ?? configuration.x509SVIDLifetime).timeInterval)
        let leafDER: [UInt8]
        do {
            switch issuerKey {
            case .inProcess(let signer):
                let encoder = try leafEncoder(slot: record.slot.id, issuer: intermediate, key: signer)
                leafDER = try leafBuilder(id, publicKey, dnsNames, notBefore, notAfter, encoder, signer)
            case .managed(let signer):
                leafDER = Self.der(try await X509SVIDProfile.leaf(id: id, publicKey: publicKey, dnsNames: dnsNames, notBefore: notBefore,
                                                                  notAfter: notAfter, issuer: intermediate, issuerKey: signer))
            }
        } catch let error as X509SVIDError {
            throw CAError(error.code == .signingFailed ? .signingFailed : .invalidRequest, error.message)
        } catch let error as CAError {
            throw error
        } catch {
            throw CAError(.signingFailed, "issuing the leaf failed: \(error)")
        }
        guard let intermediateDER = record.certificateDER else { throw CAError(.noSuchAuthority, "intermediate certificate missing") }
        var chainDER = [leafDER, intermediateDER]
        if let upstream { chainDER += upstream.chain.dropLast().map(Self.der) }
        // The re-check: the exact bytes, parsed anew, against the bundle of this moment. The
        // intermediate is the CA's own, parsed when it was loaded or created.
        let leaf: Certificate
        do { leaf = try Certificate(derEncoded: leafDER) } catch {
            throw CAError(.recheckFailed, "re-check of the new X.509-SVID failed: its DER does not parse; not issued")
        }
        let above = upstream.map { Array($0.chain.dropLast()) } ?? []
        let recheck = await verifier()
        // The issuing intermediate was verified against the bundle when the verifier was built:
        // the leaf is checked against it directly (every SPIFFE rule, issuer name, signature).
        let verification: X509SVIDVerification
        if let direct = recheck.verify(leaf: leaf, issuedBy: intermediate, above: above, at: time) {
            verification = direct
        } else {
            verification = await recheck.verify(chain: [leaf, intermediate] + above, at: time)
        }
        switch verification {
        case .valid(let verified) where verified == id:
            break
        case .valid(let other):
            throw CAError(.recheckFailed, "re-check of the new X.509-SVID found `\(other)` instead of `\(id)`; not issued")
        case .invalid(let failure):
            throw CAError(.recheckFailed, "re-check of the new X.509-SVID failed (\(failure.rule.rawValue)): \(failure.message); not issued")
        }
        // The actor may have rotated, tainted or removed the intermediate while issuance was
        // suspended: a leaf it signed is then not handed out.
        guard let index = state.authorities.firstIndex(where: { $0.slot.id == record.slot.id }),
              state.authorities[index].slot.status == .active else {
            throw CAError(.noSuchAuthority, "the issuing intermediate changed while the X.509-SVID was issued; not issued (retry)")
        }
        state.authorities[index].slot.latestIssuedExpiry = max(state.authorities[index].slot.latestIssuedExpiry ?? .distantPast, leaf.notValidAfter)
        var chain = [leaf, intermediate]
        if let upstream { chain += upstream.chain.dropLast() }
        return IssuedX509SVID(id: id, chain: chain, chainDER: chainDER)
    }

    /// Mints a JWT-SVID for `audience`; its `exp` never passes the signing key's end of life.
    public func mintJWTSVID(id: SPIFFEID, audience: [String], ttl: Duration? = nil) async throws(CAError) -> JWTSVID {
        guard id.trustDomain == trustDomain, !id.isRoot else {
            throw CAError(.invalidRequest, "`\(id)` is not a workload identity of `\(trustDomain)`")
        }
        guard let first = audience.first, audience.allSatisfy({ !$0.isEmpty }) else {
            throw CAError(.invalidRequest, "a JWT-SVID needs at least one non-empty audience")
        }
        let record = try activeRecord(.jwt)
        let time = now()
        let issuedAt = Int64(time.timeIntervalSince1970.rounded(.down))
        let wanted = issuedAt + Int64((ttl ?? configuration.jwtSVIDLifetime).timeInterval)
        let expiresAt = min(wanted, Int64(record.slot.notAfter.timeIntervalSince1970.rounded(.down)))
        var random = SystemRandomNumberGenerator()
        let jti = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &random)) }.joined()
        let claims = JWTSVIDClaims(subject: id, audience: audience, expiresAt: expiresAt, issuedAt: issuedAt, jwtID: jti)
        let key = try await keyManager.key(id: record.keyID)
        let algorithm: JWTSVIDAlgorithm
        switch key.type {
        case .ecP256: algorithm = .es256
        case .ecP384: algorithm = .es384
        case .rsa2048, .rsa4096: algorithm = .rs256
        }
        let input = JWTSVIDEncoder.signingInput(claims: claims, keyID: record.jwtKeyID!, algorithm: algorithm)
        let der = try await keyManager.sign(keyID: record.keyID, message: input, hash: key.type.defaultHash)
        let signature: [UInt8]
        do {
            switch key.type {
            case .ecP256: signature = [UInt8](try P256.Signing.ECDSASignature(derRepresentation: der).rawRepresentation)
            case .ecP384: signature = [UInt8](try P384.Signing.ECDSASignature(derRepresentation: der).rawRepresentation)
            case .rsa2048, .rsa4096: signature = der
            }
        } catch { throw CAError(.signingFailed, "the key manager returned a malformed signature") }
        let token = JWTSVIDEncoder.token(signingInput: input, signature: signature)
        // The re-check: signature against the published key, and every claim.
        switch await jwtValidator().validate(token, audience: first, now: time) {
        case .valid(let svid) where svid.claims == claims:
            guard let index = state.authorities.firstIndex(where: { $0.slot.id == record.slot.id }),
                  state.authorities[index].slot.status == .active else {
                throw CAError(.noSuchAuthority, "the JWT key changed while the JWT-SVID was minted; not issued (retry)")
            }
            let expiry = Date(timeIntervalSince1970: TimeInterval(expiresAt))
            state.authorities[index].slot.latestIssuedExpiry = max(state.authorities[index].slot.latestIssuedExpiry ?? .distantPast, expiry)
            return svid
        case .valid:
            throw CAError(.recheckFailed, "re-check of the new JWT-SVID read back different claims; not issued")
        case .invalid(let error):
            throw CAError(.recheckFailed, "re-check of the new JWT-SVID failed (\(error.code.rawValue)): \(error.message); not issued")
        }
    }

    /// Replaces the leaf builder. Test-only fault injection (`@_spi(Testing)`): a faulty
    /// builder must make issuance fail at the re-check, never hand out its certificate.
    @_spi(Testing) public func setLeafBuilderForTesting(_ builder: @escaping LeafBuilder) {
        leafBuilder = builder
    }

    static func der(_ certificate: Certificate) -> [UInt8] {
        var serializer = DER.Serializer()
        try! serializer.serialize(certificate)
        return serializer.serializedBytes
    }
}
