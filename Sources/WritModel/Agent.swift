import Foundation
import SPIFFEIdentity

/// An attested node agent as the server records it: who it is, what its attestation proved, and
/// which agent SVID it currently holds. Only the SVID with ``serialNumber`` is accepted on the
/// agent API; a banned agent keeps its record (so it cannot attest again) with no serial.
public struct AgentRecord: Sendable, Hashable, Codable {
    /// `spiffe://<td>/writ/agent/<attestation type>/<…>`.
    public var id: SPIFFEID
    /// `join_token` or `x509pop`.
    public var attestationType: String
    /// The node selectors the attestation produced, sorted.
    public var selectors: [Selector]
    /// Lowercase hex of the current agent SVID's serial number; empty once banned.
    public var serialNumber: String
    /// When the current agent SVID expires.
    public var expiresAt: Date
    /// A banned agent is refused on every call and cannot attest again until purged.
    public var banned: Bool
    /// Whether the node can attest again by itself after an eviction (x509pop can; a join token
    /// is single-use).
    public var canReattest: Bool
    public var createdAt: Date?
    public var updatedAt: Date?

    public init(id: SPIFFEID, attestationType: String, selectors: [Selector], serialNumber: String, expiresAt: Date,
                banned: Bool = false, canReattest: Bool, createdAt: Date? = nil, updatedAt: Date? = nil) {
        self.id = id
        self.attestationType = attestationType
        self.selectors = Array(Set(selectors)).sorted()
        self.serialNumber = serialNumber
        self.expiresAt = expiresAt
        self.banned = banned
        self.canReattest = canReattest
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, selectors, banned
        case attestationType = "attestation_type"
        case serialNumber = "serial_number"
        case expiresAt = "expires_at"
        case canReattest = "can_reattest"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

/// Which agents `writ agent list` and `count` select; every set field must hold.
public struct AgentFilter: Sendable, Hashable {
    /// The agent's selectors must include all of these.
    public var selectors: [Selector]
    public var banned: Bool?
    /// Agents whose SVID expires strictly before this time.
    public var expiresBefore: Date?
    public var attestationType: String?

    public init(selectors: [Selector] = [], banned: Bool? = nil, expiresBefore: Date? = nil, attestationType: String? = nil) {
        self.selectors = selectors
        self.banned = banned
        self.expiresBefore = expiresBefore
        self.attestationType = attestationType
    }

    /// Whether `agent` passes the filter.
    public func matches(_ agent: AgentRecord) -> Bool {
        if let banned, agent.banned != banned { return false }
        if let expiresBefore, !(agent.expiresAt < expiresBefore) { return false }
        if let attestationType, agent.attestationType != attestationType { return false }
        if !selectors.isEmpty, !Set(selectors).isSubset(of: Set(agent.selectors)) { return false }
        return true
    }
}
