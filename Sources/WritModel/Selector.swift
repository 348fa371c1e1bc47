/// A selector: a fact about a node or a workload that an attestor observed, written
/// `type:value` where the type is the text before the first colon (`unix:uid:1000` is type
/// `unix`, value `uid:1000`). Constructed values are valid: the type is known and the value
/// follows that type's grammar.
public struct Selector: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The attestor that produces the selector (`unix`, `x509pop`, `join_token`).
    public let type: String
    /// What the attestor observed, in the type's own grammar (`uid:1000`).
    public let value: String

    /// The longest selector value accepted, in bytes.
    public static let maximumValueLength = 1024

    /// Parses `type:value`.
    public init(parsing text: String) throws(ModelError) {
        guard let colon = text.firstIndex(of: ":") else {
            throw ModelError(.invalidSelector, "invalid selector `\(text)`: it must be `type:value`, e.g. `unix:uid:1000`")
        }
        try self.init(type: String(text[..<colon]), value: String(text[text.index(after: colon)...]))
    }

    /// Checks `type` and `value` separately (the JSON form `{"type": …, "value": …}`).
    public init(type: String, value: String) throws(ModelError) {
        guard let kind = SelectorType(rawValue: type) else {
            let known = SelectorType.allCases.map(\.rawValue).joined(separator: ", ")
            throw ModelError(.invalidSelector, "invalid selector `\(type):\(value)`: unknown type `\(type)` (known types: \(known))")
        }
        try kind.check(value)
        self.type = type
        self.value = value
    }

    public var description: String { "\(type):\(value)" }

    public static func < (lhs: Selector, rhs: Selector) -> Bool {
        (lhs.type, lhs.value) < (rhs.type, rhs.value)
    }

    enum CodingKeys: String, CodingKey { case type, value }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let type = try container.decode(String.self, forKey: .type)
        let value = try container.decode(String.self, forKey: .value)
        do { try self.init(type: type, value: value) } catch {
            throw DecodingError.dataCorruptedError(forKey: .value, in: container, debugDescription: error.message)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(type, forKey: .type)
        try container.encode(value, forKey: .value)
    }
}

/// The selector types Writ's attestors produce, each with the grammar of its values.
public enum SelectorType: String, Sendable, CaseIterable {
    /// Workload attestation from the Unix socket peer: `uid:N`, `gid:N`, `user:NAME`,
    /// `group:NAME`, `supplementary_gid:N`, `path:/ABS/PATH`, `sha256:HEX`, and for an
    /// interpreter's script `script:/ABS/PATH`, `script_sha256:HEX`.
    case unix
    /// Node attestation by proof of possession of an X.509 key: `subject:cn:CN`,
    /// `ca:fingerprint:HEX`, `san:dns:NAME`, `serialnumber:HEX`.
    case x509pop
    /// Node attestation by join token: `id:TOKEN-ID`.
    case joinToken = "join_token"

    func check(_ value: String) throws(ModelError) {
        let shown = "\(rawValue):\(value)"
        guard !value.isEmpty else {
            throw ModelError(.invalidSelector, "invalid selector `\(shown)`: the value is empty")
        }
        guard value.utf8.count <= Selector.maximumValueLength else {
            throw ModelError(.invalidSelector, "invalid selector `\(shown.prefix(64))…`: the value is longer than \(Selector.maximumValueLength) bytes")
        }
        guard value.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            throw ModelError(.invalidSelector, "invalid selector `\(shown.debugDescription)`: control characters are not allowed")
        }
        func fail(_ rule: String) -> ModelError {
            ModelError(.invalidSelector, "invalid selector `\(shown)`: \(rule)")
        }
        let (key, rest) = Self.split(value)
        switch self {
        case .unix:
            switch key {
            case "uid", "gid", "supplementary_gid":
                guard let rest, !rest.isEmpty, rest.utf8.count <= 10, rest.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), UInt32(rest) != nil else {
                    throw fail("`unix:\(key):` takes a decimal id between 0 and 4294967295")
                }
            case "user", "group":
                guard let rest, !rest.isEmpty, !rest.contains(":") else { throw fail("`unix:\(key):` takes a name") }
            case "path", "script":
                guard let rest, rest.hasPrefix("/") else { throw fail("`unix:\(key):` takes an absolute path") }
            case "sha256", "script_sha256":
                guard let rest, Self.isLowercaseHex(rest, length: 64) else { throw fail("`unix:\(key):` takes 64 lowercase hex digits") }
            default:
                throw fail("unknown unix selector `\(key)` (known: uid, gid, user, group, supplementary_gid, path, sha256, script, script_sha256)")
            }
        case .x509pop:
            switch key {
            case "subject":
                guard let rest, rest.hasPrefix("cn:"), rest.count > 3 else { throw fail("`x509pop:subject:` takes `cn:NAME`") }
            case "ca":
                guard let rest, rest.hasPrefix("fingerprint:"), Self.isLowercaseHex(String(rest.dropFirst(12)), length: 64) else {
                    throw fail("`x509pop:ca:` takes `fingerprint:` and 64 lowercase hex digits (SHA-256 of the CA certificate)")
                }
            case "san":
                guard let rest, rest.hasPrefix("dns:"), rest.count > 4 else { throw fail("`x509pop:san:` takes `dns:NAME`") }
            case "serialnumber":
                guard let rest, !rest.isEmpty, Self.isLowercaseHex(rest, length: nil) else {
                    throw fail("`x509pop:serialnumber:` takes lowercase hex digits")
                }
            default:
                throw fail("unknown x509pop selector `\(key)` (known: subject, ca, san, serialnumber)")
            }
        case .joinToken:
            guard key == "id", let rest, !rest.isEmpty else { throw fail("`join_token:` takes `id:TOKEN-ID`") }
        }
    }

    private static func split(_ value: String) -> (String, String?) {
        guard let colon = value.firstIndex(of: ":") else { return (value, nil) }
        return (String(value[..<colon]), String(value[value.index(after: colon)...]))
    }

    private static func isLowercaseHex(_ text: String, length: Int?) -> Bool {
        if let length, text.utf8.count != length { return false }
        return text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }
}

/// How a list of selectors is compared with an entry's selectors.
public enum SelectorMatch: String, Sendable, CaseIterable, Codable {
    /// The entry has exactly these selectors.
    case exact
    /// The entry's selectors are a subset of these (what a workload with these selectors may get).
    case subset
    /// The entry's selectors include all of these.
    case superset
    /// The entry has at least one of these.
    case any

    /// Whether `entrySelectors` matches `query` under this rule.
    public func matches(_ entrySelectors: Set<Selector>, query: Set<Selector>) -> Bool {
        switch self {
        case .exact: return entrySelectors == query
        case .subset: return entrySelectors.isSubset(of: query)
        case .superset: return entrySelectors.isSuperset(of: query)
        case .any: return !entrySelectors.isDisjoint(with: query)
        }
    }
}
