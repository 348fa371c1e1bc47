import Crypto
import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import SPIFFEX509
import X509

/// What the agent trusts its server by, and the check every handshake with the server passes:
/// the presented chain must be an X.509-SVID for `spiffe://<td>/writ/server` that chains to a
/// trusted authority. Nothing the server says is believed before that check.
public struct ServerTrust: Sendable {
    /// Where trust comes from.
    public enum Anchors: Sendable, Hashable {
        /// These authorities (from the bootstrap bundle file, or the bundle the server sent last).
        case authorities([Certificate])
        /// The root whose DER has this SHA-256 (lowercase hex); the server presents it.
        case rootSHA256(String)
        /// Whatever root the server presents (development only).
        case insecure
    }

    public let anchors: Anchors
    /// The trust domain, when known before the first contact.
    public let trustDomain: TrustDomain?

    public init(anchors: Anchors, trustDomain: TrustDomain?) {
        self.anchors = anchors
        self.trustDomain = trustDomain
    }

    /// Trust from a bundle file: PEM certificates or a SPIFFE bundle document, detected by its
    /// first non-blank character. The trust domain is the one the authorities name in their
    /// URI SAN (Writ roots carry `spiffe://<td>`); authorities naming different ones are refused.
    public static func bundleFile(_ path: String) throws(AgentError) -> ServerTrust {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AgentError("cannot read the trust bundle `\(path)`")
        }
        let bytes = Array(data)
        let certificates: [Certificate]
        do {
            if bytes.first(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }) == UInt8(ascii: "{") {
                // The trust domain is not in the document; any name parses the authorities.
                certificates = try TrustBundle.parseSPIFFEJSON(bytes, trustDomain: try! TrustDomain(parsing: "bootstrap.invalid")).x509Authorities
            } else {
                certificates = try TrustBundle.certificates(pem: String(decoding: bytes, as: UTF8.self))
            }
        } catch {
            throw AgentError("the trust bundle `\(path)` is neither PEM certificates nor a SPIFFE bundle document: \(error.message)")
        }
        guard !certificates.isEmpty else { throw AgentError("the trust bundle `\(path)` holds no X.509 authority") }
        let domains = Set(certificates.compactMap(Self.namedTrustDomain))
        guard domains.count <= 1 else {
            throw AgentError("the trust bundle `\(path)` mixes authorities of several trust domains: \(domains.map(\.name).sorted().joined(separator: ", "))")
        }
        return ServerTrust(anchors: .authorities(certificates), trustDomain: domains.first)
    }

    /// The trust domain a CA certificate names in a `spiffe://<td>` URI SAN, if any.
    static func namedTrustDomain(_ certificate: Certificate) -> TrustDomain? {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return nil }
        for name in names {
            if case .uniformResourceIdentifier(let uri) = name, let id = try? SPIFFEID(parsing: uri), id.isRoot { return id.trustDomain }
        }
        return nil
    }

    /// What a successful check established.
    public struct Verified: Sendable {
        public let serverID: SPIFFEID
        /// The authority the chain reached (for a pin or an insecure bootstrap: the one presented).
        public let anchor: Certificate
    }

    /// Checks a chain the server presented (leaf first; may end with its root).
    public func verify(chainDER: [[UInt8]], at time: Date) async throws(AgentError) -> Verified {
        var chain: [Certificate] = []
        for (index, der) in chainDER.enumerated() {
            guard let certificate = try? Certificate(derEncoded: der) else { throw AgentError("certificate \(index) the server presented is not DER X.509") }
            chain.append(certificate)
        }
        guard let leaf = chain.first, let claimed = X509SVIDVerifier.claimedID(leaf) else { throw AgentError("the server presented no X.509-SVID") }
        let domain = trustDomain ?? claimed.trustDomain
        guard claimed == (try? SPIFFEID(trustDomain: domain, path: "/writ/server")) else {
            throw AgentError("the server presented `\(claimed)`, not `spiffe://\(domain)/writ/server`")
        }
        let roots: [Certificate]
        switch anchors {
        case .authorities(let certificates):
            roots = certificates
        case .rootSHA256(let hex):
            guard let pinned = zip(chain, chainDER).first(where: { Self.hex(SHA256.hash(data: $0.1)) == hex })?.0 else {
                throw AgentError("the server did not present a root certificate with SHA-256 \(hex): check --trust-bundle-sha256 against `writ bundle show --format pem | openssl x509 -outform der | sha256sum`")
            }
            roots = [pinned]
        case .insecure:
            roots = [chain.last!]
        }
        // The anchor itself may be in the presented chain; the path is checked without it.
        let presented = chain.filter { certificate in !roots.contains(certificate) }
        let verifier = X509SVIDVerifier(bundle: TrustBundle(trustDomain: domain, x509Authorities: roots))
        switch await verifier.verify(chain: presented, at: time) {
        case .invalid(let failure):
            throw AgentError("the server's certificate does not verify: \(failure.message)")
        case .valid:
            let anchor = roots.first { root in
                let issuer = presented.last!
                return root.subject == issuer.issuer && root.publicKey.isValidSignature(issuer.signature, for: issuer)
            } ?? roots[0]
            if let named = Self.namedTrustDomain(anchor), named != domain {
                throw AgentError("the server's root names the trust domain `\(named)`, but the server claims `\(domain)`")
            }
            return Verified(serverID: claimed, anchor: anchor)
        }
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String { digest.map { String(format: "%02x", $0) }.joined() }
}
