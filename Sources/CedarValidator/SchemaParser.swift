import CedarCore
import CedarParser

/// Parses Cedar's schema syntax (`.cedarschema`) and resolves its names.
public enum CedarSchemaParser {
    public static func parse(_ text: String) throws(SchemaError) -> Schema {
        var parser: SchemaSyntaxParser
        do {
            parser = try SchemaSyntaxParser(text)
        } catch {
            throw SchemaError(error.message, position: error.position, snippet: error.snippet)
        }
        let declarations = try parser.file()
        var resolver = SchemaResolver(declarations)
        return try resolver.resolve()
    }
}

/// A schema declaration before name resolution.
struct RawDeclarations {
    indirect enum RawType {
        case path([String], SourcePosition)
        case set(RawType)
        case record([RawAttribute])
    }
    struct RawAttribute {
        let name: String
        let required: Bool
        let type: RawType
    }
    struct RawEntity {
        let namespace: [String]
        let name: String
        let memberOf: [([String], SourcePosition)]
        let shape: [RawAttribute]
        let tags: RawType?
        let enumeration: [String]?
        let position: SourcePosition
    }
    struct RawActionRef {
        let type: [String]?
        let id: String
        let position: SourcePosition
    }
    struct RawAction {
        let namespace: [String]
        let id: String
        let memberOf: [RawActionRef]
        let principals: [([String], SourcePosition)]?
        let resources: [([String], SourcePosition)]?
        let context: RawType?
        let hasAppliesTo: Bool
        let position: SourcePosition
    }
    struct RawCommonType {
        let namespace: [String]
        let name: String
        let type: RawType
        let position: SourcePosition
    }
    var entities: [RawEntity] = []
    var actions: [RawAction] = []
    var commonTypes: [RawCommonType] = []
    var source: String = ""
}

struct SchemaSyntaxParser {
    let source: String
    let tokens: [Token]
    var index = 0
    var out = RawDeclarations()

    init(_ text: String) throws(ParseError) {
        source = text
        var lexer = Lexer(text)
        tokens = try lexer.tokens()
        out.source = text
    }

    var current: Token { tokens[index] }
    func error(_ message: String, at token: Token? = nil) -> SchemaError {
        let e = ParseError.make(message, at: (token ?? current).position, in: source)
        return SchemaError(e.message, position: e.position, snippet: e.snippet)
    }
    func isPunct(_ p: String) -> Bool { if case .punct(p) = current.kind { true } else { false } }
    func isWord(_ w: String) -> Bool { if case .identifier(w) = current.kind { true } else { false } }
    var atEnd: Bool { if case .end = current.kind { true } else { false } }

    mutating func expect(_ p: String) throws(SchemaError) {
        guard isPunct(p) else { throw error("expected `\(p)`") }
        index += 1
    }
    mutating func identifier() throws(SchemaError) -> String {
        guard case .identifier(let w) = current.kind else { throw error("expected an identifier") }
        index += 1
        return w
    }
    mutating func string() throws(SchemaError) -> String {
        guard case .rawString(let raw) = current.kind else { throw error("expected a string literal") }
        guard let text = Unescape.string(raw) else { throw error("invalid escape sequence in string literal") }
        index += 1
        return text
    }
    /// An identifier or a string (attribute and action names).
    mutating func name() throws(SchemaError) -> String {
        if case .rawString = current.kind { return try string() }
        return try identifier()
    }
    mutating func path() throws(SchemaError) -> [String] {
        var parts = [try identifier()]
        while isPunct("::"), case .identifier = tokens[index + 1].kind {
            index += 1
            parts.append(try identifier())
        }
        return parts
    }

    mutating func annotations() throws(SchemaError) {
        while isPunct("@") {
            index += 1
            _ = try identifier()
            if isPunct("(") {
                index += 1
                _ = try string()
                try expect(")")
            }
        }
    }

    mutating func file() throws(SchemaError) -> RawDeclarations {
        while !atEnd {
            try annotations()
            if isWord("namespace") {
                index += 1
                let namespace = try path()
                try expect("{")
                while !isPunct("}") {
                    guard !atEnd else { throw error("expected `}` to close namespace") }
                    try annotations()
                    try declaration(namespace)
                }
                index += 1
            } else {
                try declaration([])
            }
        }
        return out
    }

    mutating func declaration(_ namespace: [String]) throws(SchemaError) {
        let start = current
        let keyword = try identifier()
        switch keyword {
        case "entity":
            var names = [try identifier()]
            while isPunct(",") { index += 1; names.append(try identifier()) }
            if isWord("enum") {
                index += 1
                try expect("[")
                var ids: [String] = []
                while !isPunct("]") {
                    ids.append(try string())
                    guard isPunct(",") else { break }
                    index += 1
                }
                try expect("]")
                guard !ids.isEmpty else { throw error("an enumerated entity type needs at least one id", at: start) }
                try expect(";")
                for name in names {
                    out.entities.append(.init(namespace: namespace, name: name, memberOf: [], shape: [], tags: nil, enumeration: ids, position: start.position))
                }
                return
            }
            var memberOf: [([String], SourcePosition)] = []
            if isWord("in") {
                index += 1
                memberOf = try typeList()
            }
            var shape: [RawDeclarations.RawAttribute] = []
            if isPunct("=") { index += 1 }
            if isPunct("{") { shape = try recordBody() }
            var tags: RawDeclarations.RawType? = nil
            if isWord("tags") {
                index += 1
                tags = try type()
            }
            try expect(";")
            for name in names {
                out.entities.append(.init(namespace: namespace, name: name, memberOf: memberOf, shape: shape, tags: tags, enumeration: nil, position: start.position))
            }
        case "action":
            var names = [try name()]
            while isPunct(",") { index += 1; names.append(try name()) }
            var memberOf: [RawDeclarations.RawActionRef] = []
            if isWord("in") {
                index += 1
                if isPunct("[") {
                    index += 1
                    while !isPunct("]") {
                        memberOf.append(try actionRef())
                        guard isPunct(",") else { break }
                        index += 1
                    }
                    try expect("]")
                } else {
                    memberOf.append(try actionRef())
                }
            }
            var principals: [([String], SourcePosition)]? = nil
            var resources: [([String], SourcePosition)]? = nil
            var context: RawDeclarations.RawType? = nil
            var hasAppliesTo = false
            if isWord("appliesTo") {
                hasAppliesTo = true
                index += 1
                try expect("{")
                while !isPunct("}") {
                    let keyToken = current
                    let key = try identifier()
                    try expect(":")
                    switch key {
                    case "principal":
                        guard principals == nil else { throw error("duplicate `principal`", at: keyToken) }
                        principals = try typeList()
                    case "resource":
                        guard resources == nil else { throw error("duplicate `resource`", at: keyToken) }
                        resources = try typeList()
                    case "context":
                        guard context == nil else { throw error("duplicate `context`", at: keyToken) }
                        context = try type()
                    default:
                        throw error("expected `principal`, `resource` or `context`, found `\(key)`", at: keyToken)
                    }
                    guard isPunct(",") else { break }
                    index += 1
                }
                try expect("}")
            }
            if isWord("attributes") { throw error("action attributes are not supported") }
            try expect(";")
            for id in names {
                out.actions.append(.init(namespace: namespace, id: id, memberOf: memberOf, principals: principals, resources: resources,
                                         context: context, hasAppliesTo: hasAppliesTo, position: start.position))
            }
        case "type":
            let name = try identifier()
            try expect("=")
            let type = try type()
            try expect(";")
            out.commonTypes.append(.init(namespace: namespace, name: name, type: type, position: start.position))
        default:
            throw error("expected `entity`, `action`, `type` or `namespace`, found `\(keyword)`", at: start)
        }
    }

    mutating func actionRef() throws(SchemaError) -> RawDeclarations.RawActionRef {
        let start = current
        if case .rawString = current.kind { return .init(type: nil, id: try string(), position: start.position) }
        let type = try path()
        if isPunct("::") {
            index += 1
            return .init(type: type, id: try string(), position: start.position)
        }
        guard type.count == 1 else { throw error("expected an action name or `Type::\"id\"`", at: start) }
        return .init(type: nil, id: type[0], position: start.position)
    }

    mutating func typeList() throws(SchemaError) -> [([String], SourcePosition)] {
        if isPunct("[") {
            index += 1
            var list: [([String], SourcePosition)] = []
            while !isPunct("]") {
                let position = current.position
                list.append((try path(), position))
                guard isPunct(",") else { break }
                index += 1
            }
            try expect("]")
            return list
        }
        let position = current.position
        return [(try path(), position)]
    }

    mutating func type() throws(SchemaError) -> RawDeclarations.RawType {
        if isPunct("{") { return .record(try recordBody()) }
        let position = current.position
        let p = try path()
        if p == ["Set"], isPunct("<") {
            index += 1
            let element = try type()
            try expect(">")
            return .set(element)
        }
        return .path(p, position)
    }

    mutating func recordBody() throws(SchemaError) -> [RawDeclarations.RawAttribute] {
        try expect("{")
        var attributes: [RawDeclarations.RawAttribute] = []
        var seen = Set<CedarString>()
        while !isPunct("}") {
            try annotations()
            let token = current
            let name = try name()
            guard seen.insert(CedarString(name)).inserted else { throw error("duplicate attribute `\(name)`", at: token) }
            var required = true
            if case .slot("?") = current.kind { index += 1; required = false }
            try expect(":")
            attributes.append(.init(name: name, required: required, type: try type()))
            guard isPunct(",") else { break }
            index += 1
        }
        try expect("}")
        return attributes
    }
}

/// Resolves names in raw declarations (Cedar's rules: in namespace `N`, a name `T` is the common
/// type `N::T`, else the entity type `N::T`, else the common type `T` of the empty namespace,
/// else its entity type `T`, else the built-in `__cedar::T`).
struct SchemaResolver {
    let raw: RawDeclarations
    var commonTypes: [Name: RawDeclarations.RawCommonType] = [:]
    var entityNames: Set<Name> = []

    static let builtins: [String: SchemaType] = [
        "Bool": .bool, "Boolean": .bool, "Long": .long, "String": .string,
        "ipaddr": .extension("ipaddr"), "decimal": .extension("decimal"), "datetime": .extension("datetime"), "duration": .extension("duration"),
    ]

    init(_ raw: RawDeclarations) { self.raw = raw }

    func error(_ message: String, at position: SourcePosition) -> SchemaError {
        let e = ParseError.make(message, at: position, in: raw.source)
        return SchemaError(e.message, position: e.position, snippet: e.snippet)
    }

    mutating func resolve() throws(SchemaError) -> Schema {
        for common in raw.commonTypes {
            let name = Name(path: common.namespace + [common.name])
            guard commonTypes[name] == nil else { throw error("duplicate common type `\(name)`", at: common.position) }
            commonTypes[name] = common
        }
        for entity in raw.entities {
            let name = Name(path: entity.namespace + [entity.name])
            guard entityNames.insert(name).inserted else { throw error("duplicate entity type `\(name)`", at: entity.position) }
        }
        var schema = Schema()
        for entity in raw.entities {
            let name = Name(path: entity.namespace + [entity.name])
            var memberOf = Set<Name>()
            for (path, position) in entity.memberOf { memberOf.insert(try entityType(path, in: entity.namespace, at: position)) }
            let shape = try record(entity.shape, in: entity.namespace, depth: 0)
            let tags = try entity.tags.map { (t) throws(SchemaError) -> SchemaType in try type(t, in: entity.namespace, depth: 0) }
            schema.entityTypes[name] = EntityTypeDeclaration(name: name, memberOf: memberOf, shape: shape, tags: tags,
                                                             enumeration: entity.enumeration.map { ids in ids.map { CedarString($0) } })
        }
        for action in raw.actions {
            let uid = EntityUID(type: Name(path: action.namespace + ["Action"]), id: CedarString(action.id))
            guard schema.actions[uid] == nil else { throw error("duplicate action `\(uid)`", at: action.position) }
            var memberOf: [EntityUID] = []
            for ref in action.memberOf {
                let type = ref.type.map { $0.count == 1 && $0[0] == "Action" ? action.namespace + ["Action"] : $0 } ?? (action.namespace + ["Action"])
                memberOf.append(EntityUID(type: Name(path: type), id: CedarString(ref.id)))
            }
            var appliesTo: ActionDeclaration.AppliesTo? = nil
            if action.hasAppliesTo {
                var principals: [Name] = [], resources: [Name] = []
                for (path, position) in action.principals ?? [] { principals.append(try entityType(path, in: action.namespace, at: position)) }
                for (path, position) in action.resources ?? [] { resources.append(try entityType(path, in: action.namespace, at: position)) }
                var context = RecordType()
                if let raw = action.context {
                    guard case .record(let record) = try type(raw, in: action.namespace, depth: 0) else {
                        throw error("the context of `\(uid)` must be a record type", at: action.position)
                    }
                    context = record
                }
                appliesTo = .init(principals: principals, resources: resources, context: context)
            }
            schema.actions[uid] = ActionDeclaration(uid: uid, memberOf: memberOf, appliesTo: appliesTo)
            schema.actionOrder.append(uid)
        }
        for uid in schema.actionOrder {
            for parent in schema.actions[uid]!.memberOf where schema.actions[parent] == nil {
                let position = raw.actions.first { Name(path: $0.namespace + ["Action"]) == uid.type && CedarString($0.id) == uid.id }!.position
                throw error("`\(uid)` is declared a member of the undeclared action `\(parent)`", at: position)
            }
        }
        // The action hierarchy must be acyclic.
        do {
            _ = try Entities(schema.actionEntities)
        } catch {
            throw SchemaError("the action hierarchy has a cycle: \(error.message)")
        }
        return schema
    }

    func entityType(_ path: [String], in namespace: [String], at position: SourcePosition) throws(SchemaError) -> Name {
        if path.count == 1, !namespace.isEmpty, entityNames.contains(Name(path: namespace + path)) { return Name(path: namespace + path) }
        if entityNames.contains(Name(path: path)) { return Name(path: path) }
        throw error("undeclared entity type `\(path.joined(separator: "::"))`", at: position)
    }

    func type(_ raw: RawDeclarations.RawType, in namespace: [String], depth: Int) throws(SchemaError) -> SchemaType {
        switch raw {
        case .set(let element): return .set(try type(element, in: namespace, depth: depth))
        case .record(let attributes): return .record(try record(attributes, in: namespace, depth: depth))
        case .path(let path, let position):
            guard depth < 64 else { throw error("common types refer to each other in a cycle", at: position) }
            var candidates: [Name] = []
            if path.count == 1, !namespace.isEmpty { candidates.append(Name(path: namespace + path)) }
            candidates.append(Name(path: path))
            for candidate in candidates {
                if let common = commonTypes[candidate] { return try type(common.type, in: common.namespace, depth: depth + 1) }
                if entityNames.contains(candidate) { return .entity(candidate) }
            }
            if path.count == 1, let builtin = Self.builtins[path[0]], path[0] != "Boolean" { return builtin }
            if path.count == 2, path[0] == "__cedar", let builtin = Self.builtins[path[1]], path[1] != "Boolean" { return builtin }
            throw error("undeclared type `\(path.joined(separator: "::"))`", at: position)
        }
    }

    func record(_ attributes: [RawDeclarations.RawAttribute], in namespace: [String], depth: Int) throws(SchemaError) -> RecordType {
        var record = RecordType()
        for attribute in attributes {
            record.attributes[CedarString(attribute.name)] = .init(type: try type(attribute.type, in: namespace, depth: depth), required: attribute.required)
        }
        return record
    }
}
