import Foundation
import SPIFFEIdentity
import WritModel

// The agent API's entries and selectors in both directions: the server writes them onto sync
// streams, the agent reads them back. Reading checks every field, so an agent never holds an
// entry its server could not have stored.

extension Writ_Agent_V1_Selector {
    /// The wire form of `selector`.
    public init(_ selector: Selector) {
        self.init()
        type = selector.type
        value = selector.value
    }
}

extension Writ_Agent_V1_Entry {
    /// The wire form of `entry` (owner and labels stay on the server: agents do not need them).
    public init(_ entry: RegistrationEntry) {
        self.init()
        id = entry.id
        spiffeID = entry.spiffeID.uri
        parentID = entry.parentID.uri
        selectors = entry.selectors.map(Writ_Agent_V1_Selector.init)
        x509SvidTtl = Int32(clamping: entry.x509SVIDTTL ?? 0)
        jwtSvidTtl = Int32(clamping: entry.jwtSVIDTTL ?? 0)
        dnsNames = entry.dnsNames
        hint = entry.hint
        admin = entry.admin
        downstream = entry.downstream
        federatesWith = entry.federatesWith.map(\.name)
        revision = entry.revision
        createdAtMs = entry.createdAt.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } ?? 0
        expiresAt = entry.expiresAt.map { Int64($0.timeIntervalSince1970) } ?? 0
    }

    /// The entry this message describes; the error names the field that does not parse.
    public func registrationEntry() throws(AgentWireError) -> RegistrationEntry {
        func parseID(_ text: String, _ field: String) throws(AgentWireError) -> SPIFFEID {
            do { return try SPIFFEID(parsing: text) } catch { throw AgentWireError("entry `\(id.prefix(128))`: `\(field)`: \(error.message)") }
        }
        var parsedSelectors: [Selector] = []
        for selector in selectors {
            do { parsedSelectors.append(try Selector(type: selector.type, value: selector.value)) } catch {
                throw AgentWireError("entry `\(id.prefix(128))`: selector `\(selector.type):\(selector.value.prefix(64))`: \(error.message)")
            }
        }
        var domains: [TrustDomain] = []
        for name in federatesWith {
            do { domains.append(try TrustDomain(parsing: name)) } catch {
                throw AgentWireError("entry `\(id.prefix(128))`: `federates_with` `\(name.prefix(64))`: \(error.message)")
            }
        }
        guard !id.isEmpty else { throw AgentWireError("an entry without an `id`") }
        return RegistrationEntry(id: id, spiffeID: try parseID(spiffeID, "spiffe_id"), parentID: try parseID(parentID, "parent_id"),
                                 selectors: parsedSelectors,
                                 x509SVIDTTL: x509SvidTtl > 0 ? Int(x509SvidTtl) : nil, jwtSVIDTTL: jwtSvidTtl > 0 ? Int(jwtSvidTtl) : nil,
                                 dnsNames: dnsNames, federatesWith: domains, admin: admin, downstream: downstream, hint: hint,
                                 expiresAt: expiresAt > 0 ? Date(timeIntervalSince1970: TimeInterval(expiresAt)) : nil,
                                 revision: revision,
                                 createdAt: createdAtMs > 0 ? Date(timeIntervalSince1970: TimeInterval(createdAtMs) / 1000) : nil)
    }
}

/// A message from the other side of the agent API that does not hold what it must.
public struct AgentWireError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
