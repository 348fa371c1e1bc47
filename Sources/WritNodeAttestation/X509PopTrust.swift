import Crypto
import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import SwiftASN1
import WritModel
import X509

/// A node that proved, by its certificate chain, who it is: the facts an `x509pop` attestation
/// yields once the chain is verified (the proof of possession is checked separately, see
/// ``X509PopChallenge``).
public struct X509PopNode: Sendable {
    /// The node certificate.
    public let certificate: Certificate
    /// Lowercase hex SHA-256 of the node certificate's DER: the last segment of the agent ID.
    public let fingerprint: String
    /// `x509pop:subject:cn:…`, `x509pop:ca:fingerprint:…` (one per CA on the verified path, root
    /// included), `x509pop:san:dns:…` (one per DNS SAN) and `x509pop:serialnumber:…`, sorted.
    public let selectors: [Selector]

    /// The agent's SPIFFE ID: `spiffe://<td>/writ/agent/x509pop/<fingerprint>`.
    public func agentID(in trustDomain: TrustDomain) -> SPIFFEID {
        // A fixed prefix and 64 hex digits always make a valid path.
        try! SPIFFEID(trustDomain: trustDomain, path: "/writ/agent/x509pop/\(fingerprint)")
    }
}

/// The CA certificates a server trusts to vouch for nodes in `x509pop` attestation (SPIRE's
/// `ca_bundle_path`), and the chain verification against them.
public struct X509PopTrust: Sendable {
    /// The trusted CA certificates.
    public let authorities: [Certificate]

    /// Trusts `authorities`; each must be a CA certificate (basic constraints CA=true).
    public init(authorities: [Certificate]) throws(NodeAttestationError) {
        guard !authorities.isEmpty else { throw NodeAttestationError(.invalidConfiguration, "the x509pop CA bundle holds no certificate") }
        for (index, authority) in authorities.enumerated() {
            guard case .isCertificateAuthority? = try? authority.extensions.basicConstraints else {
                throw NodeAttestationError(.invalidConfiguration,
                                           "certificate \(index) of the x509pop CA bundle (\(authority.subject)) is not a CA (basic constraints CA=true)")
            }
        }
        self.authorities = authorities
    }

    /// Reads a PEM file of CA certificates.
    public init(pemFile path: String) throws(NodeAttestationError) {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw NodeAttestationError(.invalidConfiguration, "cannot read the x509pop CA bundle `\(path)`: \(error.localizedDescription)")
        }
        let certificates: [Certificate]
        do { certificates = try TrustBundle.certificates(pem: text) } catch {
            throw NodeAttestationError(.invalidConfiguration, "the x509pop CA bundle `\(path)`: \(error.message)")
        }
        try self.init(authorities: certificates)
    }

    /// Verifies a node's chain (concatenated DER, node certificate first, then any
    /// intermediates) at `time`: RFC 5280 path validation to one of ``authorities``, the node
    /// certificate an end entity allowed to sign (no CA=true; digitalSignature if it has a key
    /// usage). Returns the node's facts; the failure names the rule broken.
    public func verify(chainDER: [UInt8], at time: Date) async throws(NodeAttestationError) -> X509PopNode {
        let chain: [Certificate]
        do { chain = try TrustBundle.certificates(concatenatedDER: chainDER) } catch {
            throw NodeAttestationError(.malformedEvidence, "the x509pop payload must be the node certificate chain as concatenated DER: \(error.message)")
        }
        let leaf = chain[0]
        if case .isCertificateAuthority? = try? leaf.extensions.basicConstraints {
            throw NodeAttestationError(.unsuitableCertificate, "the node certificate is a CA (basic constraints CA=true); present the node's own end-entity certificate")
        }
        if let usage = try? leaf.extensions.keyUsage, !usage.digitalSignature {
            throw NodeAttestationError(.unsuitableCertificate, "the node certificate's key usage lacks digitalSignature, so its key may not sign the challenge")
        }
        for (index, certificate) in chain.enumerated() {
            let what = index == 0 ? "the node certificate" : "intermediate \(index) of the node chain"
            if time < certificate.notValidBefore {
                throw NodeAttestationError(.certificateNotValidNow, "\(what) is not valid before \(certificate.notValidBefore)")
            }
            if time > certificate.notValidAfter {
                throw NodeAttestationError(.certificateNotValidNow, "\(what) expired at \(certificate.notValidAfter)")
            }
        }
        var verifier = Verifier(rootCertificates: CertificateStore(authorities)) {
            RFC5280Policy(validationTime: time)
        }
        let path: [Certificate]
        switch await verifier.validate(leaf: leaf, intermediates: CertificateStore(chain.dropFirst())) {
        case .validCertificate(let validated):
            path = Array(validated)
        case .couldNotValidate(let failures):
            let reasons = failures.map { "\($0.policyFailureReason)" }.joined(separator: "; ")
            throw NodeAttestationError(.untrustedCertificate,
                                       "the node certificate (\(leaf.subject)) does not chain to a CA of the x509pop CA bundle\(reasons.isEmpty ? "" : ": " + reasons)")
        }
        return X509PopNode(certificate: leaf, fingerprint: Self.fingerprint(leaf), selectors: Self.selectors(leaf: leaf, path: path))
    }

    /// Lowercase hex SHA-256 of a certificate's DER.
    public static func fingerprint(_ certificate: Certificate) -> String {
        var serializer = DER.Serializer()
        // Serialising a parsed certificate cannot fail.
        try! serializer.serialize(certificate)
        return hex(SHA256.hash(data: serializer.serializedBytes))
    }

    static func selectors(leaf: Certificate, path: [Certificate]) -> [Selector] {
        var values: [String] = []
        for rdn in leaf.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                values.append("subject:cn:\(attribute.value)")
            }
        }
        for authority in path.dropFirst() {
            values.append("ca:fingerprint:\(fingerprint(authority))")
        }
        for name in (try? leaf.extensions.subjectAlternativeNames) ?? SubjectAlternativeNames() {
            if case .dnsName(let dns) = name { values.append("san:dns:\(dns)") }
        }
        let serial = hex(leaf.serialNumber.bytes).drop { $0 == "0" }
        values.append("serialnumber:\(serial.isEmpty ? "0" : String(serial))")
        // A value the selector grammar refuses (a CN with control characters, say) is left out
        // rather than failing the attestation: it could never be matched anyway.
        return Set(values.compactMap { try? Selector(type: "x509pop", value: $0) }).sorted()
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
