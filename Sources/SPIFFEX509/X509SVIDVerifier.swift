import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import SwiftASN1
@_spi(FixedExpiryValidationTime) import X509

/// A rule of X509-SVID.md §5 (and RFC 5280) that a presented chain broke.
public struct X509SVIDVerificationFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// The broken rule.
    public enum Rule: String, Sendable, Hashable, CaseIterable {
        case emptyChain = "empty_chain"
        case malformedCertificate = "malformed_certificate"
        case leafWithoutURISAN = "leaf_without_uri_san"
        case leafWithSeveralURISANs = "leaf_with_several_uri_sans"
        case leafURINotSPIFFEID = "leaf_uri_not_spiffe_id"
        case leafIDIsTrustDomainRoot = "leaf_id_is_trust_domain_root"
        case leafIsCA = "leaf_is_ca"
        case leafHasKeyCertSign = "leaf_has_key_cert_sign"
        case leafHasCRLSign = "leaf_has_crl_sign"
        case leafWithoutDigitalSignature = "leaf_without_digital_signature"
        case signingCertificateNotCA = "signing_certificate_not_ca"
        case signingCertificateWithoutKeyCertSign = "signing_certificate_without_key_cert_sign"
        case expired
        case notYetValid = "not_yet_valid"
        case unknownCriticalExtension = "unknown_critical_extension"
        case trustDomainMismatch = "trust_domain_mismatch"
        case untrustedChain = "untrusted_chain"
    }

    public let rule: Rule
    public let message: String

    public init(_ rule: Rule, _ message: String) {
        self.rule = rule
        self.message = message
    }

    public var description: String { message }
}

/// The outcome of verifying an X.509-SVID chain: the SPIFFE ID, or the failed rule.
public enum X509SVIDVerification: Sendable, Hashable {
    case valid(SPIFFEID)
    case invalid(X509SVIDVerificationFailure)

    /// The SPIFFE ID when valid.
    public var spiffeID: SPIFFEID? {
        if case .valid(let id) = self { return id }
        return nil
    }

    /// The failure when invalid.
    public var failure: X509SVIDVerificationFailure? {
        if case .invalid(let failure) = self { return failure }
        return nil
    }
}

/// Verifies X.509-SVID chains (leaf first, then intermediates) against one trust domain's
/// bundle, as X509-SVID.md §5 says: the leaf's SPIFFE ID picks the bundle, the leaf must be a
/// non-CA end entity with exactly one SPIFFE URI SAN, every signing certificate must be a CA
/// with keyCertSign, and the path must reach an authority of the bundle (RFC 5280 path
/// validation by swift-certificates, plus the SPIFFE policy below).
public struct X509SVIDVerifier: Sendable {
    /// The bundle chains are checked against.
    public let bundle: TrustBundle
    private let roots: CertificateStore
    /// The TBSCertificate bytes of `verifiedIntermediates`: a presented issuer is one of them
    /// only when its signed content is byte for byte theirs.
    private let verifiedIssuers: [ArraySlice<UInt8>]

    /// Extensions whose criticality Writ understands and checks.
    static let understoodCriticalExtensions: Set<ASN1ObjectIdentifier> = [
        .X509ExtensionID.basicConstraints, .X509ExtensionID.keyUsage, .X509ExtensionID.extendedKeyUsage,
        .X509ExtensionID.subjectAlternativeName, .X509ExtensionID.nameConstraints,
    ]

    public init(bundle: TrustBundle) {
        self.bundle = bundle
        self.roots = CertificateStore(bundle.x509Authorities)
        verifiedIssuers = []
    }

    /// A verifier that also accepts paths ending at `verifiedIntermediates`: CA certificates
    /// the caller has itself verified against this same bundle (an issuing CA re-checking its
    /// own output), so their link to the root is not verified again for every leaf. Every
    /// SPIFFE rule is still checked on the whole presented chain.
    public init(bundle: TrustBundle, verifiedIntermediates: [Certificate]) {
        self.bundle = bundle
        self.roots = CertificateStore(bundle.x509Authorities + verifiedIntermediates)
        verifiedIssuers = verifiedIntermediates.map(\.tbsCertificateBytes)
    }

    /// Verifies DER certificates, leaf first.
    public func verify(chainDER: [[UInt8]], at time: Date) async -> X509SVIDVerification {
        var chain: [Certificate] = []
        for (index, der) in chainDER.enumerated() {
            guard let certificate = try? Certificate(derEncoded: der) else {
                return .invalid(.init(.malformedCertificate, "certificate \(index) of the chain is not DER X.509"))
            }
            chain.append(certificate)
        }
        return await verify(chain: chain, at: time)
    }

    /// Verifies certificates, leaf first.
    public func verify(chain: [Certificate], at time: Date) async -> X509SVIDVerification {
        let id: SPIFFEID
        switch checkRules(chain, at: time) {
        case .success(let found): id = found
        case .failure(let failure): return .invalid(failure)
        }
        guard let leaf = chain.first else { return .invalid(.init(.emptyChain, "the chain is empty")) }
        var verifier = Verifier(rootCertificates: roots) {
            RFC5280Policy(fixedExpiryValidationTime: time)
            SPIFFEChainPolicy()
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(chain.dropFirst()))
        switch result {
        case .validCertificate:
            return .valid(id)
        case .couldNotValidate(let failures):
            let reasons = failures.map { "\($0.policyFailureReason)" }.joined(separator: "; ")
            return .invalid(.init(.untrustedChain, "no path from `\(id)` to an authority of the `\(bundle.trustDomain)` bundle\(reasons.isEmpty ? "" : ": " + reasons)"))
        }
    }

    /// Checks a leaf that `issuer` signed, where `issuer` is one of the `verifiedIntermediates`
    /// this verifier was made with (an issuing CA re-checking its own output): every SPIFFE rule
    /// of ``verify(chain:at:)`` on the chain `[leaf, issuer] + above`, an X.509 v3 leaf, the
    /// leaf's issuer name, and the leaf's signature under `issuer`'s key — on the calling thread,
    /// without path building, since the one path is known. The answer is nil, for the caller to
    /// use ``verify(chain:at:)``, when `issuer` is not byte for byte one of the verified
    /// intermediates, or when it or a certificate of `above` carries name constraints (not
    /// evaluated here).
    public func verify(leaf: Certificate, issuedBy issuer: Certificate, above: [Certificate] = [], at time: Date) -> X509SVIDVerification? {
        guard verifiedIssuers.contains(issuer.tbsCertificateBytes) else { return nil }
        let chain = [leaf, issuer] + above
        if chain.dropFirst().contains(where: { $0.extensions[oid: .X509ExtensionID.nameConstraints] != nil }) { return nil }
        let id: SPIFFEID
        switch checkRules(chain, at: time) {
        case .success(let found): id = found
        case .failure(let failure): return .invalid(failure)
        }
        guard leaf.version == .v3 else {
            return .invalid(.init(.untrustedChain, "the leaf `\(id)` is an X.509 \(leaf.version) certificate: an X.509-SVID is v3"))
        }
        guard leaf.issuer == issuer.subject else {
            return .invalid(.init(.untrustedChain, "the leaf `\(id)` names the issuer `\(leaf.issuer)`, not `\(issuer.subject)`"))
        }
        guard issuer.publicKey.isValidSignature(leaf.signature, for: leaf) else {
            return .invalid(.init(.untrustedChain, "the signature of the leaf `\(id)` does not verify under its issuer's key"))
        }
        return .valid(id)
    }

    /// The SPIFFE rules that need no path: the leaf's identity, leaf and signing-certificate
    /// constraints, validity at `time`, critical extensions, and the bundle's trust domain.
    private func checkRules(_ chain: [Certificate], at time: Date) -> Result<SPIFFEID, X509SVIDVerificationFailure> {
        guard let leaf = chain.first else { return .failure(.init(.emptyChain, "the chain is empty")) }
        let id: SPIFFEID
        switch Self.leafIdentity(leaf) {
        case .success(let found): id = found
        case .failure(let failure): return .failure(failure)
        }
        if let failure = Self.checkLeaf(leaf) ?? Self.checkSigningCertificates(chain.dropFirst()) ?? Self.checkValidity(chain, at: time)
            ?? Self.checkCriticalExtensions(chain) {
            return .failure(failure)
        }
        guard id.trustDomain == bundle.trustDomain else {
            return .failure(.init(.trustDomainMismatch, "`\(id)` is in the trust domain `\(id.trustDomain)`, but the bundle is for `\(bundle.trustDomain)`"))
        }
        return .success(id)
    }

    /// The SPIFFE ID a leaf claims in its one URI SAN, before any verification (to pick the
    /// bundle to verify it with); nil when it claims none or several.
    public static func claimedID(_ leaf: Certificate) -> SPIFFEID? {
        try? leafIdentity(leaf).get()
    }

    // MARK: the SPIFFE rules, checked one by one so the failure names its rule

    static func leafIdentity(_ leaf: Certificate) -> Result<SPIFFEID, X509SVIDVerificationFailure> {
        let names: SubjectAlternativeNames?
        do { names = try leaf.extensions.subjectAlternativeNames } catch {
            return .failure(.init(.malformedCertificate, "the leaf's subject alternative name extension does not parse"))
        }
        var uris: [String] = []
        for name in names ?? SubjectAlternativeNames() {
            if case .uniformResourceIdentifier(let uri) = name { uris.append(uri) }
        }
        guard !uris.isEmpty else { return .failure(.init(.leafWithoutURISAN, "the leaf has no URI SAN: an X.509-SVID carries its SPIFFE ID as exactly one URI SAN")) }
        guard uris.count == 1 else { return .failure(.init(.leafWithSeveralURISANs, "the leaf has \(uris.count) URI SANs: an X.509-SVID has exactly one")) }
        let id: SPIFFEID
        do { id = try SPIFFEID(parsing: uris[0]) } catch {
            return .failure(.init(.leafURINotSPIFFEID, "the leaf's URI SAN is not a SPIFFE ID: \(error.message)"))
        }
        guard !id.isRoot else {
            return .failure(.init(.leafIDIsTrustDomainRoot, "the leaf's SPIFFE ID `\(id)` names a trust domain, not a workload"))
        }
        return .success(id)
    }

    static func checkLeaf(_ leaf: Certificate) -> X509SVIDVerificationFailure? {
        do {
            if case .isCertificateAuthority = try leaf.extensions.basicConstraints {
                return .init(.leafIsCA, "the leaf has CA=true: an X.509-SVID leaf must not be a CA")
            }
            guard let usage = try leaf.extensions.keyUsage else {
                return .init(.leafWithoutDigitalSignature, "the leaf has no key usage: digitalSignature is required")
            }
            if usage.keyCertSign { return .init(.leafHasKeyCertSign, "the leaf's key usage has keyCertSign, which a leaf must not have") }
            if usage.cRLSign { return .init(.leafHasCRLSign, "the leaf's key usage has cRLSign, which a leaf must not have") }
            if !usage.digitalSignature { return .init(.leafWithoutDigitalSignature, "the leaf's key usage lacks digitalSignature") }
        } catch {
            return .init(.malformedCertificate, "an extension of the leaf does not parse: \(error)")
        }
        return nil
    }

    static func checkSigningCertificates(_ certificates: ArraySlice<Certificate>) -> X509SVIDVerificationFailure? {
        for (offset, certificate) in certificates.enumerated() {
            let position = "certificate \(offset + 1) of the chain"
            do {
                guard case .isCertificateAuthority = try certificate.extensions.basicConstraints else {
                    return .init(.signingCertificateNotCA, "\(position) signs others but is not a CA (basic constraints CA=false or absent)")
                }
                guard let usage = try certificate.extensions.keyUsage, usage.keyCertSign else {
                    return .init(.signingCertificateWithoutKeyCertSign, "\(position) signs others but its key usage lacks keyCertSign")
                }
            } catch {
                return .init(.malformedCertificate, "an extension of \(position) does not parse: \(error)")
            }
        }
        return nil
    }

    static func checkValidity(_ chain: [Certificate], at time: Date) -> X509SVIDVerificationFailure? {
        for (index, certificate) in chain.enumerated() {
            let what = index == 0 ? "the leaf" : "certificate \(index) of the chain"
            if time < certificate.notValidBefore {
                return .init(.notYetValid, "\(what) is not valid before \(certificate.notValidBefore)")
            }
            if time > certificate.notValidAfter {
                return .init(.expired, "\(what) expired at \(certificate.notValidAfter)")
            }
        }
        return nil
    }

    static func checkCriticalExtensions(_ chain: [Certificate]) -> X509SVIDVerificationFailure? {
        for (index, certificate) in chain.enumerated() {
            for ext in certificate.extensions where ext.critical && !understoodCriticalExtensions.contains(ext.oid) {
                let what = index == 0 ? "the leaf" : "certificate \(index) of the chain"
                return .init(.unknownCriticalExtension, "\(what) has an unknown critical extension `\(ext.oid)`")
            }
        }
        return nil
    }
}

/// The SPIFFE part of path validation for swift-certificates: declares the extensions this
/// verifier checks itself, so a critical SAN, key usage or EKU is not treated as unknown, and
/// requires the leaf to be a non-CA end entity.
struct SPIFFEChainPolicy: VerifierPolicy {
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [
        .X509ExtensionID.subjectAlternativeName, .X509ExtensionID.keyUsage, .X509ExtensionID.extendedKeyUsage,
    ]

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        if let failure = X509SVIDVerifier.checkLeaf(chain.leaf) {
            return .failsToMeetPolicy(reason: failure.message)
        }
        return .meetsPolicy
    }
}
