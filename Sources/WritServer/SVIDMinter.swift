import Foundation
import SPIFFEIdentity
import WritCA
import SPIFFEX509
import WritModel
import SPIFFEJWT
import X509

/// Mints SVIDs for operators (`writ svid mint`, `POST /v1/svids/x509|jwt`): any workload ID
/// of the trust domain, outside the reserved `/writ/` paths, with no registration entry behind
/// it. Like every credential the CA hands out, each one is re-checked before it is returned.
struct SVIDMinter: Sendable {
    let ca: CertificateAuthority
    let rules: EntryRules
    let x509TTL: Duration
    let jwtTTL: Duration

    /// The minted SVID and its leaf (for the audit event).
    func x509(_ request: AdminAPI.MintX509SVIDRequest) async throws -> (AdminAPI.MintedX509SVID, Certificate) {
        let id = try workload(request.spiffeID)
        let ttl = try lifetime(request.ttl, default: x509TTL)
        guard let csr = Data(base64Encoded: request.csr), !csr.isEmpty else {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "`csr` must be a base64 DER PKCS#10 request", field: "csr")
        }
        let dnsNames = request.dnsNames ?? []
        guard dnsNames.count <= 100 else {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "at most 100 dns_names, not \(dnsNames.count)", field: "dns_names")
        }
        for name in dnsNames {
            do { try DNSName.check(name) } catch { throw AdminAPI.ErrorBody(code: "invalid_argument", message: error.message, field: "dns_names") }
        }
        do {
            let issued = try await ca.issueX509SVID(csrDER: Array(csr), id: id, ttl: ttl, dnsNames: dnsNames)
            return (AdminAPI.MintedX509SVID(spiffeID: id.uri, chain: issued.chainDER.map { Data($0).base64EncodedString() }, expiresAt: issued.leaf.notValidAfter),
                    issued.leaf)
        } catch {
            throw Self.failure(error, field: "csr")
        }
    }

    /// The minted token and its claims (for the audit event).
    func jwt(_ request: AdminAPI.MintJWTSVIDRequest) async throws -> (AdminAPI.MintedJWTSVID, JWTSVIDClaims) {
        let id = try workload(request.spiffeID)
        let ttl = try lifetime(request.ttl, default: jwtTTL)
        guard !request.audience.isEmpty, request.audience.count <= 32, request.audience.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 512 }) else {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "`audience` must hold 1 to 32 non-empty values of at most 512 bytes", field: "audience")
        }
        do {
            let minted = try await ca.mintJWTSVID(id: id, audience: request.audience, ttl: ttl)
            return (AdminAPI.MintedJWTSVID(spiffeID: id.uri, token: minted.token,
                                           expiresAt: Date(timeIntervalSince1970: TimeInterval(minted.claims.expiresAt))), minted.claims)
        } catch {
            throw Self.failure(error, field: "audience")
        }
    }

    private func workload(_ text: String) throws -> SPIFFEID {
        let id: SPIFFEID
        do { id = try SPIFFEID(parsing: text) } catch {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid spiffe_id: \(error.message)", field: "spiffe_id")
        }
        try rules.checkWorkload(id)
        return id
    }

    private func lifetime(_ seconds: Int?, default fallback: Duration) throws -> Duration {
        guard let seconds else { return fallback }
        guard (EntryRules.minimumTTL...EntryRules.maximumTTL).contains(seconds) else {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid ttl `\(seconds)s`: between 10s and 7d", field: "ttl")
        }
        return .seconds(seconds)
    }

    private static func failure(_ error: CAError, field: String) -> AdminAPI.ErrorBody {
        switch error.code {
        case .invalidRequest: return AdminAPI.ErrorBody(code: "invalid_argument", message: error.message, field: field)
        default: return AdminAPI.ErrorBody(code: "unavailable", message: "the CA failed: \(error.message)")
        }
    }
}
