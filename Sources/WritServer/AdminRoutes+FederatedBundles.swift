import Foundation
import Hummingbird
import SPIFFEBundle
import SPIFFEIdentity
import StrictJSON
import WritAudit
import WritModel
import WritStore

/// `/v1/bundles`: the bundles of foreign trust domains. A bundle is validated and normalised to
/// a SPIFFE bundle document before it is stored; entries name its trust domain in
/// `federates_with`, and their workloads receive it through their agent.
extension AdminRoutes {
    func registerFederatedBundles(on v1: RouterGroup<AdminContext>) {
        v1.get("bundles") { request, _ in
            try await guarded(nil) {
                _ = try QueryParameters(request, allowed: [])
                let bundles = try await store.listFederatedBundles().map(Self.describe)
                return Self.json(.ok, AdminAPI.FederatedBundleList(bundles: bundles))
            }
        }
        v1.get("bundles/{trust_domain}") { request, context in
            try await guarded(nil) {
                _ = try QueryParameters(request, allowed: [])
                let domain = try foreignTrustDomain(context)
                guard let record = try await store.federatedBundle(domain) else {
                    throw AdminAPI.ErrorBody(code: "not_found", message: "no federated bundle for trust domain `\(domain)`")
                }
                return Self.json(.ok, Self.describe(record))
            }
        }
        v1.put("bundles/{trust_domain}") { request, context in
            try await guarded(context) {
                _ = try QueryParameters(request, allowed: [])
                let domain = try foreignTrustDomain(context)
                let parameters = try await strictBody(request, AdminAPI.SetFederatedBundleRequest.self, fields: ["format", "data"])
                let document = try Self.normalisedBundle(parameters, trustDomain: domain)
                let time = now()
                let event = try change(context, at: time, "bundle.set", AuditTarget(kind: "trust_domain", id: domain.name),
                                       details: [JSONMember("document_sha256", .string(AuditEvent.digest(document)))])
                let stored = try await store.setFederatedBundle(FederatedBundleRecord(trustDomain: domain, document: document), at: time, audit: [event])
                await audit.committedElsewhere()
                context.logger.notice("federated bundle set", metadata: ["actor": "\(context.caller!)", "trust_domain": "\(domain)",
                                                                         "revision": "\(stored.revision)"])
                return Self.json(.ok, Self.describe(stored))
            }
        }
        v1.delete("bundles/{trust_domain}") { request, context in
            try await guarded(context) {
                let query = try QueryParameters(request, allowed: ["mode"])
                let domain = try foreignTrustDomain(context)
                let modeText = query.single("mode") ?? FederatedBundleDeleteMode.restrict.rawValue
                guard let mode = FederatedBundleDeleteMode(rawValue: modeText) else {
                    throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid mode `\(modeText.prefix(32))`: restrict, dissociate or delete", field: "mode")
                }
                let time = now()
                // The entries the mode changes are named only in the response and the change
                // feed: their number can be large, and each is an entry of this trust domain.
                let event = try change(context, at: time, "bundle.delete", AuditTarget(kind: "trust_domain", id: domain.name),
                                       details: [JSONMember("mode", .string(mode.rawValue))])
                let deleted = try await store.deleteFederatedBundle(domain, mode: mode, at: time, audit: [event])
                await audit.committedElsewhere()
                context.logger.notice("federated bundle deleted", metadata: ["actor": "\(context.caller!)", "trust_domain": "\(domain)",
                                                                             "mode": "\(mode.rawValue)", "affected_entries": "\(deleted.affectedEntryIDs.count)"])
                return Self.json(.ok, AdminAPI.DeletedFederatedBundle(trustDomain: domain.name, mode: mode.rawValue, affectedEntryIDs: deleted.affectedEntryIDs))
            }
        }
    }

    /// The `{trust_domain}` of the path: a valid trust domain name other than the server's own.
    private func foreignTrustDomain(_ context: AdminContext) throws -> TrustDomain {
        let text = context.parameters.get("trust_domain") ?? ""
        let domain: TrustDomain
        do { domain = try TrustDomain(parsing: text) } catch {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid trust domain `\(text.prefix(64))`: \(error.message)", field: "trust_domain")
        }
        guard domain != rules.trustDomain else {
            throw AdminAPI.ErrorBody(code: "invalid_argument",
                                     message: "`\(domain)` is this server's own trust domain: its bundle comes from the server's CA (`writ bundle show`); federated bundles are for other trust domains",
                                     field: "trust_domain")
        }
        return domain
    }

    /// Parses the submitted bundle for `trustDomain` and returns it as a SPIFFE bundle document.
    /// Refuses a bundle with no authorities, and one with an authority the document cannot carry.
    static func normalisedBundle(_ request: AdminAPI.SetFederatedBundleRequest, trustDomain: TrustDomain) throws -> [UInt8] {
        let trimmed = request.data.drop { $0.isWhitespace }
        let format: String
        switch request.format {
        case .some("spiffe"), .some("pem"): format = request.format!
        case .none where trimmed.hasPrefix("{"): format = "spiffe"
        case .none where trimmed.hasPrefix("-----BEGIN"): format = "pem"
        case .none:
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "the bundle is neither a SPIFFE bundle document (JSON) nor PEM certificates", field: "data")
        case .some(let other):
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid format `\(other.prefix(32))`: spiffe or pem", field: "format")
        }
        let parsed: TrustBundle
        do {
            parsed = format == "spiffe" ? try TrustBundle.parseSPIFFEJSON(Array(request.data.utf8), trustDomain: trustDomain)
                                        : try TrustBundle.parseX509Authorities(pem: request.data, trustDomain: trustDomain)
        } catch {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid \(format == "spiffe" ? "SPIFFE bundle" : "PEM bundle") for `\(trustDomain)`: \(error.message)", field: "data")
        }
        guard !parsed.x509Authorities.isEmpty || !parsed.jwtAuthorities.isEmpty else {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "the bundle for `\(trustDomain)` has no X.509 or JWT authorities", field: "data")
        }
        let document = parsed.spiffeJSON()
        let reparsed = try? TrustBundle.parseSPIFFEJSON(document, trustDomain: trustDomain)
        guard let reparsed, reparsed.x509Authorities.count == parsed.x509Authorities.count, reparsed.jwtAuthorities.count == parsed.jwtAuthorities.count else {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "the bundle for `\(trustDomain)` holds an authority whose key type a SPIFFE bundle cannot carry (EC P-256, P-384, P-521 and RSA keys are supported)",
                                     field: "data")
        }
        return document
    }

    static func describe(_ record: FederatedBundleRecord) -> AdminAPI.FederatedBundle {
        let parsed = try? TrustBundle.parseSPIFFEJSON(record.document, trustDomain: record.trustDomain)
        return AdminAPI.FederatedBundle(trustDomain: record.trustDomain.name, revision: record.revision, updatedAt: record.updatedAt ?? Date(timeIntervalSince1970: 0),
                                        spiffeSequence: parsed?.sequenceNumber.map { Int64(clamping: $0) },
                                        x509AuthorityCount: parsed?.x509Authorities.count ?? 0, jwtAuthorityCount: parsed?.jwtAuthorities.count ?? 0,
                                        spiffeBundle: String(decoding: record.document, as: UTF8.self))
    }
}
