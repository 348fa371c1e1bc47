import CedarCore

/// The validator's types (Cedar's type language): singleton booleans so that short-circuits are
/// seen statically, entity types as least upper bounds, and "any set" for expectations.
indirect enum CType: Hashable, Sendable, CustomStringConvertible {
    enum BoolKind: Hashable, Sendable { case any, `true`, `false` }
    struct Attribute: Hashable, Sendable {
        var type: CType
        var required: Bool
    }

    case never
    case bool(BoolKind)
    case long
    case string
    /// nil: any entity.
    case entity(Set<Name>?)
    /// nil element: any set (only as an expectation).
    case set(CType?)
    case record([CedarString: Attribute], open: Bool)
    case `extension`(String)

    static let anyBool = CType.bool(.any)
    static let anyEntity = CType.entity(nil)
    static let anyRecord = CType.record([:], open: true)
    static let anySet = CType.set(nil)

    static func entity(_ name: Name) -> CType { .entity([name]) }

    var description: String {
        switch self {
        case .never: "Never"
        case .bool(.any): "Bool"
        case .bool(.true): "True"
        case .bool(.false): "False"
        case .long: "Long"
        case .string: "String"
        case .entity(nil): "Entity"
        case .entity(let names?): names.map(\.qualified).sorted().joined(separator: " | ")
        case .set(nil): "Set"
        case .set(let element?): "Set<\(element)>"
        case .record(let attributes, _):
            "{" + attributes.keys.sorted().map { "\($0.text)\(attributes[$0]!.required ? "" : "?"): \(attributes[$0]!.type)" }.joined(separator: ", ") + "}"
        case .extension(let name): name
        }
    }

    init(_ type: SchemaType) {
        switch type {
        case .bool: self = .anyBool
        case .long: self = .long
        case .string: self = .string
        case .set(let element): self = .set(CType(element))
        case .record(let record): self = .record(CType.attributes(record), open: record.additionalAttributes)
        case .entity(let name): self = .entity([name])
        case .extension(let name): self = .extension(name)
        }
    }

    static func attributes(_ record: RecordType) -> [CedarString: Attribute] {
        record.attributes.mapValues { Attribute(type: CType($0.type), required: $0.required) }
    }

    /// Subtyping; `strict` is Cedar's strict mode (entity types and record shapes must match
    /// exactly), otherwise permissive (width subtyping, entity types by inclusion).
    func isSubtype(of other: CType, strict: Bool) -> Bool {
        switch (self, other) {
        case (.never, _): return true
        case (.bool(let a), .bool(let b)): return a == b || b == .any
        case (.long, .long), (.string, .string): return true
        case (.set(_), .set(nil)): return true
        case (.set(nil), .set(_?)): return false
        case (.set(let a?), .set(let b?)): return a.isSubtype(of: b, strict: strict)
        case (.record(let a, let openA), .record(let b, let openB)):
            guard !openA || openB else { return false }
            func attributeSubtype(_ x: Attribute, _ y: Attribute) -> Bool {
                guard x.type.isSubtype(of: y.type, strict: strict) else { return false }
                return strict ? x.required == y.required : (x.required || !y.required)
            }
            if openB && !strict {
                // Width: every attribute of the wider type is present (with a subtype) in this one.
                return b.allSatisfy { key, attribute in a[key].map { attributeSubtype($0, attribute) } ?? false }
            }
            guard Set(a.keys) == Set(b.keys) else { return false }
            return a.allSatisfy { key, attribute in attributeSubtype(attribute, b[key]!) }
        case (.entity(let a), .entity(let b)):
            if strict { return a == b }
            guard let b else { return true }
            guard let a else { return false }
            return a.isSubset(of: b)
        case (.extension(let a), .extension(let b)): return a == b
        default: return false
        }
    }

    /// Cedar's least upper bound in strict mode, or nil when the two types have none.
    func leastUpperBound(_ other: CType) -> CType? {
        if isSubtype(of: other, strict: true) { return other }
        if other.isSubtype(of: self, strict: true) { return self }
        switch (self, other) {
        case (.bool, .bool): return .anyBool
        case (.set(nil), .set), (.set, .set(nil)): return .anySet
        case (.set(let a?), .set(let b?)):
            return a.leastUpperBound(b).map { .set($0) }
        case (.record(let a, let openA), .record(let b, let openB)):
            guard Set(a.keys) == Set(b.keys) else { return nil }
            var out: [CedarString: Attribute] = [:]
            for (key, x) in a {
                let y = b[key]!
                guard x.required == y.required, let type = x.type.leastUpperBound(y.type) else { return nil }
                out[key] = Attribute(type: type, required: x.required)
            }
            return .record(out, open: openA || openB)
        default:
            return nil
        }
    }
}
