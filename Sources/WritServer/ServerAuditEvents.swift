import Crypto
import Foundation
import SPIFFEIdentity
import SPIFFEJWT
import StrictJSON
import SwiftASN1
import WritAudit
import WritCA
import WritModel
import X509

/// The audit events the server writes, one constructor per event type, so that each type has
/// the same fields wherever it is written (docs/audit-log.md lists them). None holds a secret:
/// join tokens appear by id or by the SHA-256 of what was presented, never by value.
enum ServerAuditEvents {
    /// `node.attest`: a node attested (`allowed`, target the agent ID) or was refused
    /// (`denied`, or `error` when the server failed).
    static func nodeAttest(at time: Date, attestor: String, claimed: String, agentID: SPIFFEID?, outcome: AuditOutcome, reason: String? = nil,
                           serial: String? = nil, expiresAt: Date? = nil, selectors: [Selector] = [], source: String) -> AuditEvent {
        var details: [JSONMember] = [JSONMember("source", .string(source))]
        if let serial { details.append(JSONMember("serial", .string(serial))) }
        if let expiresAt { details.append(JSONMember("expires_at", .string(AuditEvent.timestamp(expiresAt)))) }
        if !selectors.isEmpty { details.append(JSONMember("selectors", .array(selectors.map { .string($0.description) }))) }
        return AuditEvent(time: time, type: "node.attest", actor: .node(attestor: attestor, id: claimed),
                          target: agentID.map { AuditTarget(kind: "agent", id: $0.uri) }, action: "attest", outcome: outcome, reason: reason,
                          details: details)
    }

    /// `svid.x509.issue`: an X.509-SVID was signed for `id` (for an entry, an agent's own
    /// renewal, or an operator), or refused (`denied`, no certificate, `id` nil: the target is
    /// the entry asked for).
    static func x509Issue(at time: Date, actor: AuditActor, id: String?, entryID: String? = nil, purpose: String, outcome: AuditOutcome = .allowed,
                          reason: String? = nil, leaf: Certificate? = nil) -> AuditEvent {
        var details: [JSONMember] = [JSONMember("purpose", .string(purpose))]
        if let entryID { details.append(JSONMember("entry_id", .string(entryID))) }
        if let leaf {
            details.append(JSONMember("serial", .string(AgentListenerFactory.hex(leaf.serialNumber.bytes))))
            details.append(JSONMember("not_after", .string(AuditEvent.timestamp(leaf.notValidAfter))))
            if let fingerprint = publicKeySHA256(leaf.publicKey) { details.append(JSONMember("public_key_sha256", .string(fingerprint))) }
        }
        return AuditEvent(time: time, type: "svid.x509.issue", actor: actor, target: target(id, entryID), action: "issue",
                          outcome: outcome, reason: reason, details: details)
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex: the fingerprint `openssl pkey
    /// -pubout -outform DER | sha256sum` prints for the certificate's key, which ties a key found
    /// anywhere to the issuance that certified it.
    static func publicKeySHA256(_ key: Certificate.PublicKey) -> String? {
        var serializer = DER.Serializer()
        guard (try? serializer.serialize(key)) != nil else { return nil }
        return AgentListenerFactory.hex(SHA256.hash(data: serializer.serializedBytes))
    }

    /// `svid.jwt.issue`: a JWT-SVID was minted for `id` and `audience` (its `jti` and expiry,
    /// never the token), or refused.
    static func jwtIssue(at time: Date, actor: AuditActor, id: String?, entryID: String? = nil, purpose: String, audience: [String],
                         outcome: AuditOutcome = .allowed, reason: String? = nil, claims: JWTSVIDClaims? = nil) -> AuditEvent {
        var details: [JSONMember] = [JSONMember("purpose", .string(purpose)), JSONMember("audience", .array(audience.map { .string($0) }))]
        if let entryID { details.append(JSONMember("entry_id", .string(entryID))) }
        if let claims {
            if let jti = claims.jwtID { details.append(JSONMember("jti", .string(jti))) }
            details.append(JSONMember("expires_at", .string(AuditEvent.timestamp(Date(timeIntervalSince1970: TimeInterval(claims.expiresAt))))))
        }
        return AuditEvent(time: time, type: "svid.jwt.issue", actor: actor, target: target(id, entryID), action: "issue",
                          outcome: outcome, reason: reason, details: details)
    }

    /// An operator's change (`token.generate`, `agent.evict`, `bundle.set`, `authority.taint`,
    /// …): `type` ends with the action.
    static func adminChange(at time: Date, _ type: String, actor: AuditActor, target: AuditTarget, details: [JSONMember] = []) -> AuditEvent {
        AuditEvent(time: time, type: type, actor: actor, target: target, action: String(type.split(separator: ".").last ?? ""),
                   outcome: .allowed, details: details)
    }

    /// A change the server made on its own (`actor` its SPIFFE ID), with the reason.
    static func serverChange(at time: Date, _ type: String, server: SPIFFEID, target: AuditTarget, reason: String,
                             details: [JSONMember] = []) -> AuditEvent {
        AuditEvent(time: time, type: type, actor: .spiffe(server), target: target, action: String(type.split(separator: ".").last ?? ""),
                   outcome: .allowed, reason: reason, details: details)
    }

    /// `entry.delete` of an entry the pruner removed because it expired at or before `time`.
    static func entryExpired(at time: Date, id: String, server: SPIFFEID) -> AuditEvent {
        serverChange(at: time, "entry.delete", server: server, target: AuditTarget(kind: "entry", id: id), reason: "expired",
                     details: [JSONMember("expired_at_or_before", .string(AuditEvent.timestamp(time)))])
    }

    /// `authority.prepare|activate|remove`: one step of the CA's scheduled rotation.
    static func scheduledRotation(_ action: RotationAction, server: SPIFFEID, at time: Date) -> AuditEvent {
        let (step, target): (String, AuditTarget) = switch action {
        case .prepare(let kind): ("prepare", AuditTarget(kind: "authority_kind", id: kind.rawValue))
        case .activate(let id): ("activate", AuditTarget(kind: "authority", id: id))
        case .remove(let id): ("remove", AuditTarget(kind: "authority", id: id))
        }
        return serverChange(at: time, "authority.\(step)", server: server, target: target, reason: "scheduled rotation")
    }

    /// The SPIFFE ID issued for; for a refusal (no ID was issued), the entry asked for.
    private static func target(_ id: String?, _ entryID: String?) -> AuditTarget? {
        if let id { return AuditTarget(kind: "spiffe_id", id: id) }
        return entryID.map { AuditTarget(kind: "entry", id: $0) }
    }
}
