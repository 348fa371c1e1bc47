import CedarCore
import CedarParser
import StrictJSON

/// Cedar's JSON schema format: `{"Namespace": {"entityTypes": {…}, "actions": {…},
/// "commonTypes": {…}}}`, resolved with the same rules as the Cedar schema syntax.
public enum CedarSchemaJSON {
    public static func parse(_ text: String) throws(SchemaError) -> Schema {
        let json: JSONValue
        do {
            json = try JSONParser.parse(text)
        } catch {
            throw SchemaError("the schema is not valid JSON: \(error)")
        }
        return try parse(json)
    }

    public static func parse(_ json: JSONValue) throws(SchemaError) -> Schema {
        guard case .object(let namespaces) = json else { throw SchemaError("a JSON schema is an object of namespaces") }
        var raw = RawDeclarations()
        let here = SourcePosition(offset: 0, line: 1, column: 1)
        for namespace in namespaces {
            let path = namespace.key.isEmpty ? [] : namespace.key.split(separator: "::", omittingEmptySubsequences: false).map(String.init)
            let at = namespace.key.isEmpty ? "the empty namespace" : "namespace `\(namespace.key)`"
            guard case .object(let sections) = namespace.value else { throw SchemaError("\(at): expected an object") }
            for section in sections where !["entityTypes", "actions", "commonTypes", "annotations"].contains(section.key) {
                throw SchemaError("\(at): unknown field `\(section.key)`")
            }
            if case .object(let types)? = namespace.value["commonTypes"] {
                for type in types {
                    raw.commonTypes.append(.init(namespace: path, name: type.key, type: try self.type(type.value, at: "\(at) common type `\(type.key)`"), position: here))
                }
            }
            if case .object(let entities)? = namespace.value["entityTypes"] {
                for entity in entities {
                    let where_ = "\(at) entity type `\(entity.key)`"
                    guard case .object = entity.value else { throw SchemaError("\(where_): expected an object") }
                    var memberOf: [([String], SourcePosition)] = []
                    if case .array(let parents)? = entity.value["memberOfTypes"] {
                        for parent in parents {
                            guard case .string(let name) = parent else { throw SchemaError("\(where_): memberOfTypes holds type names") }
                            memberOf.append((name.split(separator: "::", omittingEmptySubsequences: false).map(String.init), here))
                        }
                    }
                    var shape: [RawDeclarations.RawAttribute] = []
                    if let shapeJSON = entity.value["shape"] {
                        guard case .record(let attributes) = try type(shapeJSON, at: "\(where_) shape") else { throw SchemaError("\(where_): the shape must be a Record") }
                        shape = attributes
                    }
                    let tags = try entity.value["tags"].map { (j) throws(SchemaError) -> RawDeclarations.RawType in try type(j, at: "\(where_) tags") }
                    var enumeration: [String]? = nil
                    if case .array(let ids)? = entity.value["enum"] {
                        enumeration = []
                        for id in ids {
                            guard case .string(let s) = id else { throw SchemaError("\(where_): enum holds strings") }
                            enumeration!.append(s)
                        }
                        guard !enumeration!.isEmpty else { throw SchemaError("\(where_): an enumerated entity type needs at least one id") }
                    }
                    raw.entities.append(.init(namespace: path, name: entity.key, memberOf: memberOf, shape: shape, tags: tags, enumeration: enumeration, position: here))
                }
            }
            if case .object(let actions)? = namespace.value["actions"] {
                for action in actions {
                    let where_ = "\(at) action `\(action.key)`"
                    guard case .object = action.value else { throw SchemaError("\(where_): expected an object") }
                    var memberOf: [RawDeclarations.RawActionRef] = []
                    if case .array(let parents)? = action.value["memberOf"] {
                        for parent in parents {
                            guard case .string(let id)? = parent["id"] else { throw SchemaError("\(where_): memberOf entries are {\"id\": …, \"type\"?: …}") }
                            var type: [String]? = nil
                            if case .string(let t)? = parent["type"] { type = t.split(separator: "::", omittingEmptySubsequences: false).map(String.init) }
                            memberOf.append(.init(type: type, id: id, position: here))
                        }
                    }
                    var principals: [([String], SourcePosition)]? = nil, resources: [([String], SourcePosition)]? = nil
                    var context: RawDeclarations.RawType? = nil
                    let applies = action.value["appliesTo"]
                    if let applies, applies != .null {
                        func names(_ key: String) throws(SchemaError) -> [([String], SourcePosition)] {
                            guard let list = applies[key] else { return [] }
                            guard case .array(let items) = list else { throw SchemaError("\(where_): \(key) must be an array") }
                            var out: [([String], SourcePosition)] = []
                            for item in items {
                                guard case .string(let name) = item else { throw SchemaError("\(where_): \(key) holds type names") }
                                out.append((name.split(separator: "::", omittingEmptySubsequences: false).map(String.init), here))
                            }
                            return out
                        }
                        principals = try names("principalTypes")
                        resources = try names("resourceTypes")
                        context = try applies["context"].map { (j) throws(SchemaError) -> RawDeclarations.RawType in try type(j, at: "\(where_) context") }
                    }
                    raw.actions.append(.init(namespace: path, id: action.key, memberOf: memberOf, principals: principals, resources: resources,
                                             context: context, hasAppliesTo: applies != nil && applies != .null, position: here))
                }
            }
        }
        var resolver = SchemaResolver(raw)
        return try resolver.resolve()
    }

    /// A type: `{"type": "Long"|"String"|"Boolean"|"Set"|"Record"|"Entity"|"Extension"|
    /// "EntityOrCommon"|<common type>, …}`.
    static func type(_ json: JSONValue, at path: String) throws(SchemaError) -> RawDeclarations.RawType {
        let here = SourcePosition(offset: 0, line: 1, column: 1)
        guard case .string(let kind)? = json["type"] else { throw SchemaError("\(path): a type is an object with a `type`") }
        func name(_ key: String) throws(SchemaError) -> [String] {
            guard case .string(let n)? = json[key] else { throw SchemaError("\(path): `\(kind)` needs `\(key)`") }
            return n.split(separator: "::", omittingEmptySubsequences: false).map(String.init)
        }
        switch kind {
        case "Long": return .path(["__cedar", "Long"], here)
        case "String": return .path(["__cedar", "String"], here)
        case "Boolean", "Bool": return .path(["__cedar", "Bool"], here)
        case "Set":
            guard let element = json["element"] else { throw SchemaError("\(path): a Set needs `element`") }
            return .set(try type(element, at: path + " element"))
        case "Record":
            if case .bool(true)? = json["additionalAttributes"] { throw SchemaError("\(path): records with additionalAttributes are not supported") }
            var attributes: [RawDeclarations.RawAttribute] = []
            if case .object(let members)? = json["attributes"] {
                for member in members {
                    var required = true
                    if case .bool(let flag)? = member.value["required"] { required = flag }
                    attributes.append(.init(name: member.key, required: required, type: try type(member.value, at: "\(path).\(member.key)")))
                }
            }
            return .record(attributes)
        case "Entity", "EntityOrCommon": return .path(try name("name"), here)
        case "Extension": return .path(["__cedar"] + (try name("name")), here)
        default: return .path(kind.split(separator: "::", omittingEmptySubsequences: false).map(String.init), here)
        }
    }
}

extension Schema {
    /// The schema in Cedar's JSON schema format, every name fully qualified.
    public var json: JSONValue {
        func type(_ t: SchemaType) -> JSONValue {
            switch t {
            case .bool: .object([JSONMember("type", .string("Boolean"))])
            case .long: .object([JSONMember("type", .string("Long"))])
            case .string: .object([JSONMember("type", .string("String"))])
            case .set(let element): .object([JSONMember("type", .string("Set")), JSONMember("element", type(element))])
            case .record(let record): recordJSON(record)
            case .entity(let name): .object([JSONMember("type", .string("Entity")), JSONMember("name", .string(name.qualified))])
            case .extension(let name): .object([JSONMember("type", .string("Extension")), JSONMember("name", .string(name))])
            }
        }
        func recordJSON(_ record: RecordType) -> JSONValue {
            let attributes = record.attributes.sorted { $0.key < $1.key }.map { key, attribute -> JSONMember in
                guard case .object(var members) = type(attribute.type) else { return JSONMember(key.text, .null) }
                if !attribute.required { members.append(JSONMember("required", .bool(false))) }
                return JSONMember(key.text, .object(members))
            }
            return .object([JSONMember("type", .string("Record")), JSONMember("attributes", .object(attributes))])
        }
        var namespaces: [String: (entities: [JSONMember], actions: [JSONMember])] = [:]
        for (name, declaration) in entityTypes.sorted(by: { $0.key < $1.key }) {
            var members: [JSONMember] = []
            if !declaration.memberOf.isEmpty { members.append(JSONMember("memberOfTypes", .array(declaration.memberOf.sorted().map { .string($0.qualified) }))) }
            if let ids = declaration.enumeration {
                members.append(JSONMember("enum", .array(ids.map { .string($0.text) })))
            } else {
                members.append(JSONMember("shape", recordJSON(declaration.shape)))
            }
            if let tags = declaration.tags { members.append(JSONMember("tags", type(tags))) }
            namespaces[name.namespace, default: ([], [])].entities.append(JSONMember(String(name.basename), .object(members)))
        }
        for uid in actionOrder {
            let action = actions[uid]!
            var members: [JSONMember] = []
            if !action.memberOf.isEmpty {
                members.append(JSONMember("memberOf", .array(action.memberOf.map {
                    .object([JSONMember("id", .string($0.id.text)), JSONMember("type", .string($0.type.qualified))])
                })))
            }
            if let applies = action.appliesTo {
                members.append(JSONMember("appliesTo", .object([
                    JSONMember("principalTypes", .array(applies.principals.map { .string($0.qualified) })),
                    JSONMember("resourceTypes", .array(applies.resources.map { .string($0.qualified) })),
                    JSONMember("context", recordJSON(applies.context)),
                ])))
            }
            namespaces[uid.type.namespace, default: ([], [])].actions.append(JSONMember(uid.id.text, .object(members)))
        }
        return .object(namespaces.sorted { $0.key < $1.key }.map { name, content in
            JSONMember(name, .object([JSONMember("entityTypes", .object(content.entities)), JSONMember("actions", .object(content.actions))]))
        })
    }
}

extension Schema: Equatable {
    public static func == (lhs: Schema, rhs: Schema) -> Bool {
        lhs.entityTypes == rhs.entityTypes && lhs.actions == rhs.actions && Set(lhs.actionOrder) == Set(rhs.actionOrder)
    }
}

extension Schema {
    /// The schema in Cedar's schema syntax, every name fully qualified.
    public var text: String {
        func type(_ t: SchemaType) -> String {
            switch t {
            case .bool: "__cedar::Bool"
            case .long: "__cedar::Long"
            case .string: "__cedar::String"
            case .set(let element): "Set<\(type(element))>"
            case .record(let record): recordText(record)
            case .entity(let name): name.qualified
            case .extension(let name): "__cedar::\(name)"
            }
        }
        func recordText(_ record: RecordType) -> String {
            "{" + record.attributes.sorted { $0.key < $1.key }.map { "\(CedarText.quoted($0.key.text))\($0.value.required ? "" : "?"): \(type($0.value.type))" }.joined(separator: ", ") + "}"
        }
        var namespaces: [String: [String]] = [:]
        for (name, declaration) in entityTypes.sorted(by: { $0.key < $1.key }) {
            var line = "entity \(name.basename)"
            if let ids = declaration.enumeration {
                line += " enum [" + ids.map { CedarText.quoted($0.text) }.joined(separator: ", ") + "];"
            } else {
                if !declaration.memberOf.isEmpty { line += " in [" + declaration.memberOf.sorted().map(\.qualified).joined(separator: ", ") + "]" }
                line += " = " + recordText(declaration.shape)
                if let tags = declaration.tags { line += " tags \(type(tags))" }
                line += ";"
            }
            namespaces[name.namespace, default: []].append(line)
        }
        for uid in actionOrder {
            let action = actions[uid]!
            var line = "action \(CedarText.quoted(uid.id.text))"
            if !action.memberOf.isEmpty { line += " in [" + action.memberOf.map(\.description).joined(separator: ", ") + "]" }
            if let applies = action.appliesTo {
                line += " appliesTo { principal: [" + applies.principals.map(\.qualified).joined(separator: ", ") + "], resource: ["
                    + applies.resources.map(\.qualified).joined(separator: ", ") + "], context: " + recordText(applies.context) + " }"
            }
            namespaces[uid.type.namespace, default: []].append(line + ";")
        }
        var out = ""
        for (name, lines) in namespaces.sorted(by: { $0.key < $1.key }) {
            if name.isEmpty {
                out += lines.joined(separator: "\n") + "\n"
            } else {
                out += "namespace \(name) {\n" + lines.map { "  " + $0 }.joined(separator: "\n") + "\n}\n"
            }
        }
        return out
    }
}
