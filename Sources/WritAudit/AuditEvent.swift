import Crypto
import Foundation
import SPIFFEIdentity
import StrictJSON
import WritStore

/// Why an audit event was refused.
public struct AuditError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Who acted: a workload or server by SPIFFE ID, a local user by uid (the admin socket's
/// SO_PEERCRED), or a node being attested (not yet holding an identity).
public enum AuditActor: Sendable, Hashable {
    case spiffe(SPIFFEID)
    case unix(uid: UInt32, gid: UInt32?, pid: Int32?)
    /// A node during attestation: the attestor and what it claimed (a join token's hash, a
    /// node certificate's fingerprint), never a secret.
    case node(attestor: String, id: String)

    /// The one string it is searched by: the SPIFFE ID, `unix:uid:<n>`, `node:<attestor>:<id>`.
    public var key: String {
        switch self {
        case .spiffe(let id): id.uri
        case .unix(let uid, _, _): "unix:uid:\(uid)"
        case .node(let attestor, let id): "node:\(attestor):\(id)"
        }
    }

    var json: JSONValue {
        switch self {
        case .spiffe(let id): .object([JSONMember("kind", .string("spiffe")), JSONMember("id", .string(id.uri))])
        case .unix(let uid, let gid, let pid):
            .object([JSONMember("kind", .string("unix")), JSONMember("uid", .integer(Int64(uid)))]
                    + (gid.map { [JSONMember("gid", .integer(Int64($0)))] } ?? []) + (pid.map { [JSONMember("pid", .integer(Int64($0)))] } ?? []))
        case .node(let attestor, let id): .object([JSONMember("kind", .string("node")), JSONMember("attestor", .string(attestor)), JSONMember("id", .string(id))])
        }
    }
}

/// What an event is about: a kind (`entry`, `spiffe_id`, `agent`, `bundle`, `join_token`,
/// `authority`, …) and its id.
public struct AuditTarget: Sendable, Hashable {
    public let kind: String
    public let id: String
    public init(kind: String, id: String) {
        self.kind = kind
        self.id = id
    }
}

/// How the operation ended.
public enum AuditOutcome: String, Sendable, Hashable {
    case allowed, denied, error
}

/// One audit event, schema version 1 (docs/audit-event.v1.schema.json, explained in
/// docs/audit-log.md). Its leaf in the log is its RFC 8785 canonical JSON.
public struct AuditEvent: Sendable {
    public static let schemaVersion: Int64 = 1

    public var time: Date
    /// Dotted lowercase, `svid.x509.issue`.
    public var type: String
    public var actor: AuditActor
    /// Whom the actor acted for, nearest first (an agent for a user, …).
    public var onBehalfOf: [AuditActor]
    public var target: AuditTarget?
    /// The verb (`create`, `issue`, `attest`, …).
    public var action: String
    public var outcome: AuditOutcome
    public var reason: String?
    /// The policies that decided (Cedar policy ids).
    public var policyIDs: [String]
    public var requestID: String?
    /// Type-specific fields (serials as lowercase hex strings, numbers within ±(2^53 − 1)).
    public var details: [JSONMember]

    public init(time: Date, type: String, actor: AuditActor, onBehalfOf: [AuditActor] = [], target: AuditTarget? = nil, action: String,
                outcome: AuditOutcome, reason: String? = nil, policyIDs: [String] = [], requestID: String? = nil, details: [JSONMember] = []) {
        self.time = time
        self.type = type
        self.actor = actor
        self.onBehalfOf = onBehalfOf
        self.target = target
        self.action = action
        self.outcome = outcome
        self.reason = reason
        self.policyIDs = policyIDs
        self.requestID = requestID
        self.details = details
    }

    /// Detail names that would hold a secret; an event carries a hash instead (`…_sha256`).
    public static let secretNames: Set<String> = ["token", "join_token", "key", "private_key", "secret", "password", "bearer", "authorization", "csr_key"]

    /// `SHA-256(secret)` in lowercase hex: how an event refers to a secret.
    public static func digest(_ secret: some DataProtocol) -> String {
        SHA256.hash(data: secret).map { String(format: "%02x", $0) }.joined()
    }

    /// Refuses what schema v1 does not allow: a malformed type, no action, a detail named
    /// like a secret, a repeated detail, a number beyond ±(2^53 − 1).
    func validate() throws(AuditError) {
        guard Self.isEventType(type) else {
            throw AuditError("an event type is dotted lowercase words (`svid.x509.issue`), not `\(type)`")
        }
        guard !action.isEmpty else { throw AuditError("an event needs an action") }
        for member in details {
            if Self.secretNames.contains(member.key.lowercased()) {
                throw AuditError("an event never holds a secret: give `\(member.key)_sha256` (AuditEvent.digest) instead of `\(member.key)`")
            }
            try Self.checkNumbers(member.value, at: "details.\(member.key)")
        }
        if details.count > 1 {
            var names = Set<String>(minimumCapacity: details.count)
            for member in details where !names.insert(member.key).inserted { throw AuditError("an event's details repeat a name") }
        }
    }

    /// The event as JSON (members in schema order; the canonical form sorts them).
    public func json() throws(AuditError) -> JSONValue {
        try validate()
        var members: [JSONMember] = [
            JSONMember("v", .integer(Self.schemaVersion)),
            JSONMember("time", .string(Self.timestamp(time))),
            JSONMember("type", .string(type)),
            JSONMember("actor", actor.json),
            JSONMember("on_behalf_of", .array(onBehalfOf.map(\.json))),
            JSONMember("action", .string(action)),
            JSONMember("outcome", .string(outcome.rawValue)),
            JSONMember("policy_ids", .array(policyIDs.map { .string($0) })),
        ]
        if let target { members.append(JSONMember("target", .object([JSONMember("kind", .string(target.kind)), JSONMember("id", .string(target.id))]))) }
        if let reason { members.append(JSONMember("reason", .string(reason))) }
        if let requestID { members.append(JSONMember("request_id", .string(requestID))) }
        if !details.isEmpty { members.append(JSONMember("details", .object(details))) }
        return .object(members)
    }

    /// The leaf bytes: the event's RFC 8785 canonical JSON, byte for byte
    /// `json().canonicalBytes()`, written straight out (this runs for every event the log
    /// records): the top-level names in their canonical order, everything below through
    /// StrictJSON's canonical writer.
    public func canonicalBody() throws(AuditError) -> [UInt8] {
        try validate()
        var out: [UInt8] = []
        out.reserveCapacity(512)
        func name(_ text: StaticString) {
            text.withUTF8Buffer { out.append(contentsOf: $0) }
        }
        func string(_ text: String) { JSONValue.appendString(text, to: &out) }
        do {
            name(#"{"action":"#)
            string(action)
            name(#","actor":"#)
            try actor.json.appendCanonical(to: &out)
            if !details.isEmpty {
                name(#","details":"#)
                try JSONValue.object(details).appendCanonical(to: &out)
            }
            name(#","on_behalf_of":["#)
            for (index, other) in onBehalfOf.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                try other.json.appendCanonical(to: &out)
            }
            name(#"],"outcome":"#)
            string(outcome.rawValue)
            name(#","policy_ids":["#)
            for (index, id) in policyIDs.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                string(id)
            }
            out.append(UInt8(ascii: "]"))
            if let reason {
                name(#","reason":"#)
                string(reason)
            }
            if let requestID {
                name(#","request_id":"#)
                string(requestID)
            }
            if let target {
                name(#","target":{"id":"#)
                string(target.id)
                name(#","kind":"#)
                string(target.kind)
                out.append(UInt8(ascii: "}"))
            }
            name(#","time":"#)
            string(Self.timestamp(time))
            name(#","type":"#)
            string(type)
            name(#","v":"#)
            out.append(contentsOf: String(Self.schemaVersion).utf8)
            out.append(UInt8(ascii: "}"))
        } catch {
            throw AuditError("\(error)")
        }
        return out
    }

    /// The event as the datastore keeps it (body and search columns).
    public func record() throws(AuditError) -> AuditEventRecord {
        AuditEventRecord(body: try canonicalBody(), type: type, actor: actor.key, target: target.map { "\($0.kind):\($0.id)" } ?? "", time: time)
    }

    /// `[a-z][a-z0-9_]*(\.[a-z0-9_]+)*` (checked by hand: this runs for every event).
    static func isEventType(_ type: String) -> Bool {
        var first = true, afterDot = false
        for byte in type.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): break
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"): if first { return false }
            case UInt8(ascii: "."): if first || afterDot { return false }
            default: return false
            }
            afterDot = byte == UInt8(ascii: ".")
            first = false
        }
        return !first && !afterDot
    }

    /// RFC 3339 in UTC with milliseconds, `2026-12-02T02:35:52.123Z`.
    public static func timestamp(_ date: Date) -> String {
        // Whole microseconds first (a Date is a double: 0.563 s can read as 0.56299999…), then
        // milliseconds rounded down.
        let us = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        let ms = us >= 0 ? us / 1000 : (us - 999) / 1000
        let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let millis = ms - seconds * 1000
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        var text = ""
        text.reserveCapacity(24)
        func digits(_ value: Int64, _ width: Int, then separator: String) {
            let plain = String(value)
            if plain.utf8.count < width { text += String(repeating: "0", count: width - plain.utf8.count) }
            text += plain
            text += separator
        }
        digits(year, 4, then: "-")
        digits(month, 2, then: "-")
        digits(day, 2, then: "T")
        digits(secondOfDay / 3600, 2, then: ":")
        digits(secondOfDay / 60 % 60, 2, then: ":")
        digits(secondOfDay % 60, 2, then: ".")
        digits(millis, 3, then: "Z")
        return text
    }

    static func checkNumbers(_ value: JSONValue, at path: String) throws(AuditError) {
        switch value {
        case .integer(let n):
            guard n.magnitude <= UInt64(JSONValue.maximumSafeInteger) else {
                throw AuditError("\(path): \(n) is outside ±(2^53 − 1); write large numbers (such as serials) as strings")
            }
        case .otherNumber(let text): throw AuditError("\(path): only integers within ±(2^53 − 1), not `\(text)`")
        case .array(let items): for (index, item) in items.enumerated() { try checkNumbers(item, at: "\(path)[\(index)]") }
        case .object(let members): for member in members { try checkNumbers(member.value, at: "\(path).\(member.key)") }
        default: break
        }
    }
}
