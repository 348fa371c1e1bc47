/// A Cedar name: identifiers joined by `::` (`Namespace::User`), naming an entity type, an
/// extension function or a common type. Identifiers are ASCII, so `String` equality is exact.
public struct Name: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The identifiers joined by `::`.
    public let qualified: String
    let digest: UInt64

    public init(path: [String]) {
        precondition(!path.isEmpty, "a Cedar name has at least one identifier")
        qualified = path.joined(separator: "::")
        digest = CedarString.digest(qualified)
    }

    /// A name whose text is already known to be `::`-joined valid identifiers.
    init(qualified: String) {
        self.qualified = qualified
        digest = CedarString.digest(qualified)
    }

    /// The identifiers, outermost namespace first; never empty.
    public var path: [String] { qualified.split(separator: "::", omittingEmptySubsequences: false).map(String.init) }

    /// A name of one identifier.
    public init(_ identifier: String) { self.init(path: [identifier]) }

    /// The last identifier.
    public var basename: Substring {
        guard let range = qualified.utf8.lastIndex(of: UInt8(ascii: ":")) else { return qualified[...] }
        return qualified[qualified.utf8.index(after: range)...]
    }
    /// Everything before the last identifier, joined by `::` (empty when there is none).
    public var namespace: String { path.dropLast().joined(separator: "::") }

    public static func == (lhs: Name, rhs: Name) -> Bool { lhs.digest == rhs.digest && lhs.qualified == rhs.qualified }
    public func hash(into hasher: inout Hasher) { hasher.combine(digest) }
    public static func < (lhs: Name, rhs: Name) -> Bool { lhs.qualified < rhs.qualified }
    public var description: String { qualified }
}

/// An entity's identity: its type and its id (`User::"alice"`).
public struct EntityUID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let type: Name
    public let id: CedarString

    public init(type: Name, id: CedarString) {
        self.type = type
        self.id = id
    }

    public static func == (lhs: EntityUID, rhs: EntityUID) -> Bool { lhs.id == rhs.id && lhs.type == rhs.type }
    public func hash(into hasher: inout Hasher) { hasher.combine(id.digest &+ type.digest &* 31) }

    public static func < (lhs: EntityUID, rhs: EntityUID) -> Bool {
        lhs.type == rhs.type ? lhs.id < rhs.id : lhs.type < rhs.type
    }

    /// The Cedar literal form, `Type::"id"` with the id escaped.
    public var description: String { "\(type.qualified)::\(CedarText.quoted(id.text))" }
}

/// A Cedar value. Equality is Cedar's `==`: structural, order-free for sets and records, false
/// (never an error) between values of different types.
public enum Value: Hashable, Sendable {
    case bool(Bool)
    case long(Int64)
    case string(CedarString)
    case entity(EntityUID)
    case set(Set<Value>)
    case record([CedarString: Value])
    case decimal(CedarDecimal)
    case ipaddr(CedarIPAddr)
    case datetime(CedarDatetime)
    case duration(CedarDuration)

    /// The type's name as Cedar's messages spell it.
    public var typeName: String {
        switch self {
        case .bool: "bool"
        case .long: "long"
        case .string: "string"
        case .entity(let uid): "(entity of type `\(uid.type)`)"
        case .set: "set"
        case .record: "record"
        case .decimal: "decimal"
        case .ipaddr: "ipaddr"
        case .datetime: "datetime"
        case .duration: "duration"
        }
    }

    /// The kind of value, for type checks and messages.
    public var kind: ValueKind {
        switch self {
        case .bool: .bool
        case .long: .long
        case .string: .string
        case .entity: .entity
        case .set: .set
        case .record: .record
        case .decimal: .decimal
        case .ipaddr: .ipaddr
        case .datetime: .datetime
        case .duration: .duration
        }
    }
}

/// The kinds of Cedar values.
public enum ValueKind: String, Sendable, Hashable, CustomStringConvertible {
    case bool, long, string, entity, set, record, decimal, ipaddr, datetime, duration
    public var description: String { rawValue }
}

/// Cedar's textual forms of strings.
public enum CedarText {
    /// `text` as a Cedar string literal: double-quoted, with `\"`, `\\`, `\n`, `\r`, `\t`, `\0`
    /// escaped and other control characters as `\u{…}` (the form Cedar prints).
    public static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars { escape(scalar, into: &out) }
        out.unicodeScalars.append("\"")
        return out
    }

    /// Appends `scalar` as it is written inside a Cedar string literal (scalar by scalar: a
    /// combining mark stays itself, whatever it follows).
    static func escape(_ scalar: Unicode.Scalar, into out: inout String) {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\0": out += "\\0"
        case "'": out += "\\'"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
}
