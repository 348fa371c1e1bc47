import Foundation
import SPIFFEIdentity
import SPIFFEX509

/// A registration entry: which SPIFFE ID a workload (or, for a node alias, a node) gets when an
/// agent that is `parentID` — or that matches the node alias `parentID` — observes all of
/// `selectors`. Every entry has an accountable `owner` and free `labels`.
///
/// A value says nothing about validity by itself; ``EntryRules/check(_:)`` decides whether a
/// trust domain accepts it, and the store keeps only entries that passed.
public struct RegistrationEntry: Sendable, Hashable, Codable {
    /// The entry's id: 1–128 bytes of `[A-Za-z0-9._-]`, chosen by the caller or generated.
    public var id: String
    /// The identity this entry grants.
    public var spiffeID: SPIFFEID
    /// The agent (or node alias) that may obtain it; the server's own ID for a node alias.
    public var parentID: SPIFFEID
    /// What must be observed, sorted and without repeats.
    public var selectors: [Selector]
    /// Lifetime of X.509-SVIDs for this entry, in seconds; nil: the server's default.
    public var x509SVIDTTL: Int?
    /// Lifetime of JWT-SVIDs for this entry, in seconds; nil: the server's default.
    public var jwtSVIDTTL: Int?
    /// DNS SANs of the X.509-SVID (RFC 1123 names, optionally with a leading `*.`).
    public var dnsNames: [String]
    /// Trust domains whose bundles the workload also receives.
    public var federatesWith: [TrustDomain]
    /// The workload may call the admin API with its X.509-SVID.
    public var admin: Bool
    /// The workload may mint SVIDs for others (a downstream server).
    public var downstream: Bool
    /// A hint that tells apart several identities of one workload.
    public var hint: String
    /// When the entry stops existing; nil: never.
    public var expiresAt: Date?
    /// Who is accountable for the identity (a person or team).
    public var owner: String
    /// Free labels such as `kind=agent`, `purpose=…`, `model=…`.
    public var labels: [String: String]
    /// The store's revision of the last write; 0 for an entry not yet stored.
    public var revision: Int64
    /// When the store first saved it.
    public var createdAt: Date?
    /// When the store last changed it.
    public var updatedAt: Date?

    public init(id: String = RegistrationEntry.newID(), spiffeID: SPIFFEID, parentID: SPIFFEID, selectors: [Selector],
                x509SVIDTTL: Int? = nil, jwtSVIDTTL: Int? = nil, dnsNames: [String] = [], federatesWith: [TrustDomain] = [],
                admin: Bool = false, downstream: Bool = false, hint: String = "", expiresAt: Date? = nil,
                owner: String = "", labels: [String: String] = [:], revision: Int64 = 0, createdAt: Date? = nil, updatedAt: Date? = nil) {
        self.id = id
        self.spiffeID = spiffeID
        self.parentID = parentID
        self.selectors = Array(Set(selectors)).sorted()
        self.x509SVIDTTL = x509SVIDTTL
        self.jwtSVIDTTL = jwtSVIDTTL
        self.dnsNames = dnsNames
        self.federatesWith = federatesWith
        self.admin = admin
        self.downstream = downstream
        self.hint = hint
        self.expiresAt = expiresAt
        self.owner = owner
        self.labels = labels
        self.revision = revision
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// A fresh random entry id (128 bits, UUID text form, lowercase).
    public static func newID() -> String { UUID().uuidString.lowercased() }

    /// The key that makes two entries duplicates: same SPIFFE ID, parent and selector set.
    public var uniquenessKey: String {
        ([spiffeID.uri, parentID.uri] + selectors.map(\.description)).joined(separator: "\n")
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, selectors, admin, downstream, hint, owner, labels, revision
        case spiffeID = "spiffe_id", parentID = "parent_id"
        case x509SVIDTTL = "x509_svid_ttl", jwtSVIDTTL = "jwt_svid_ttl"
        case dnsNames = "dns_names", federatesWith = "federates_with"
        case expiresAt = "expires_at", createdAt = "created_at", updatedAt = "updated_at"
    }

    /// The JSON fields of an entry (the admin API refuses any other).
    public static let jsonFields: Set<String> = Set(CodingKeys.allCases.map(\.rawValue))

    /// Decodes the admin API's JSON form: `spiffe_id`, `parent_id` and `selectors` are
    /// required; `id` is generated when absent; everything else has its default.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try c.decodeIfPresent(String.self, forKey: .id) ?? RegistrationEntry.newID(),
            spiffeID: try c.decode(SPIFFEID.self, forKey: .spiffeID),
            parentID: try c.decode(SPIFFEID.self, forKey: .parentID),
            selectors: try c.decode([Selector].self, forKey: .selectors),
            x509SVIDTTL: try c.decodeIfPresent(Int.self, forKey: .x509SVIDTTL),
            jwtSVIDTTL: try c.decodeIfPresent(Int.self, forKey: .jwtSVIDTTL),
            dnsNames: try c.decodeIfPresent([String].self, forKey: .dnsNames) ?? [],
            federatesWith: try c.decodeIfPresent([TrustDomain].self, forKey: .federatesWith) ?? [],
            admin: try c.decodeIfPresent(Bool.self, forKey: .admin) ?? false,
            downstream: try c.decodeIfPresent(Bool.self, forKey: .downstream) ?? false,
            hint: try c.decodeIfPresent(String.self, forKey: .hint) ?? "",
            expiresAt: try c.decodeIfPresent(Date.self, forKey: .expiresAt),
            owner: try c.decodeIfPresent(String.self, forKey: .owner) ?? "",
            labels: try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:],
            revision: try c.decodeIfPresent(Int64.self, forKey: .revision) ?? 0,
            createdAt: try c.decodeIfPresent(Date.self, forKey: .createdAt),
            updatedAt: try c.decodeIfPresent(Date.self, forKey: .updatedAt))
    }
}

/// The rules a trust domain applies to registration entries.
public struct EntryRules: Sendable {
    /// The trust domain entries must live in.
    public let trustDomain: TrustDomain
    /// The shortest SVID lifetime an entry may ask for, in seconds.
    public static let minimumTTL = 10
    /// The longest SVID lifetime an entry may ask for, in seconds (7 days).
    public static let maximumTTL = 7 * 86400

    public init(trustDomain: TrustDomain) {
        self.trustDomain = trustDomain
    }

    /// The server's own SPIFFE ID, the parent of node-alias entries.
    public var serverID: SPIFFEID { try! SPIFFEID(trustDomain: trustDomain, path: "/writ/server") }

    /// Checks that `id` may be given to a workload: inside the trust domain, not its root, and
    /// not under the reserved `/writ/` path.
    public func checkWorkload(_ id: SPIFFEID, field: String = "spiffe_id") throws(ModelError) {
        guard id.trustDomain == trustDomain else {
            throw ModelError(.invalidSPIFFEID, "invalid \(field) `\(id)`: it is outside the trust domain `\(trustDomain)`", field: field)
        }
        guard !id.isRoot else {
            throw ModelError(.invalidSPIFFEID, "invalid \(field) `\(id)`: the trust domain's root ID names no workload", field: field)
        }
        if id.segments.first == "writ" {
            throw ModelError(.invalidSPIFFEID, "invalid \(field) `\(id)`: paths under `/writ/` are reserved for Writ's own identities", field: field)
        }
    }

    /// Checks every field; the first broken rule is thrown with the field it concerns.
    public func check(_ entry: RegistrationEntry) throws(ModelError) {
        try Self.checkID(entry.id)
        try checkWorkload(entry.spiffeID)
        guard entry.parentID.trustDomain == trustDomain else {
            throw ModelError(.invalidSPIFFEID, "invalid parent_id `\(entry.parentID)`: it is outside the trust domain `\(trustDomain)`", field: "parent_id")
        }
        guard !entry.parentID.isRoot else {
            throw ModelError(.invalidSPIFFEID, "invalid parent_id `\(entry.parentID)`: the trust domain's root ID is no agent", field: "parent_id")
        }
        let parentSegments = entry.parentID.segments
        if parentSegments.first == "writ", entry.parentID != serverID, !(parentSegments.count >= 3 && parentSegments[1] == "agent") {
            throw ModelError(.invalidSPIFFEID, "invalid parent_id `\(entry.parentID)`: under `/writ/` only the server (`\(serverID)`) and agents (`/writ/agent/…`) can be parents", field: "parent_id")
        }
        guard entry.parentID != entry.spiffeID else {
            throw ModelError(.invalidSPIFFEID, "invalid parent_id `\(entry.parentID)`: an entry cannot be its own parent", field: "parent_id")
        }
        guard !entry.selectors.isEmpty else {
            throw ModelError(.invalidSelector, "an entry needs at least one selector", field: "selectors")
        }
        for (name, ttl) in [("x509_svid_ttl", entry.x509SVIDTTL), ("jwt_svid_ttl", entry.jwtSVIDTTL)] {
            if let ttl, !(Self.minimumTTL...Self.maximumTTL).contains(ttl) {
                throw ModelError(.invalidEntry, "invalid \(name) `\(ttl)s`: it must be between 10s and 7d", field: name)
            }
        }
        guard entry.dnsNames.count <= 100 else {
            throw ModelError(.invalidEntry, "an entry may have at most 100 dns_names, not \(entry.dnsNames.count)", field: "dns_names")
        }
        for name in entry.dnsNames {
            do { try DNSName.check(name) } catch {
                throw ModelError(.invalidEntry, error.message, field: "dns_names")
            }
        }
        for domain in entry.federatesWith where domain == trustDomain {
            throw ModelError(.invalidEntry, "invalid federates_with `\(domain)`: an entry does not federate with its own trust domain", field: "federates_with")
        }
        guard entry.hint.utf8.count <= 256 else {
            throw ModelError(.invalidEntry, "the hint is longer than 256 bytes", field: "hint")
        }
        guard entry.owner.utf8.count <= 256, !entry.owner.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw ModelError(.invalidEntry, "invalid owner: at most 256 bytes and no control characters", field: "owner")
        }
        guard entry.labels.count <= 64 else {
            throw ModelError(.invalidEntry, "an entry may have at most 64 labels, not \(entry.labels.count)", field: "labels")
        }
        for (key, value) in entry.labels {
            try Self.checkLabel(key: key, value: value)
        }
    }

    /// Entry ids: 1–128 bytes of `[A-Za-z0-9._-]`.
    public static func checkID(_ id: String) throws(ModelError) {
        guard !id.isEmpty, id.utf8.count <= 128,
              id.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2E || $0 == 0x2D || $0 == 0x5F }) else {
            throw ModelError(.invalidEntry, "invalid entry id `\(id.prefix(140))`: 1 to 128 letters, digits, '.', '-' or '_'", field: "id")
        }
    }

    /// Label keys: 1–63 bytes of `[a-z0-9._/-]`; values: at most 256 bytes, no control characters.
    public static func checkLabel(key: String, value: String) throws(ModelError) {
        guard !key.isEmpty, key.utf8.count <= 63,
              key.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2E || $0 == 0x2D || $0 == 0x5F || $0 == 0x2F }) else {
            throw ModelError(.invalidEntry, "invalid label key `\(key.prefix(80))`: 1 to 63 lowercase letters, digits, '.', '-', '_' or '/'", field: "labels")
        }
        guard value.utf8.count <= 256, !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw ModelError(.invalidEntry, "invalid value of label `\(key)`: at most 256 bytes and no control characters", field: "labels")
        }
    }
}
