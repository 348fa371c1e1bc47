import CedarCore
import StrictJSON

/// Cedar's JSON formats read with a schema: attribute values take their declared types (an
/// entity reference may be written `{"type": …, "id": …}`, an extension value as its plain
/// string), entities and contexts are checked against their declarations, and the schema's
/// action entities join the store.
public struct SchemaJSON: Sendable {
    public let schema: Schema

    public init(schema: Schema) { self.schema = schema }

    /// A value of declared type `type`.
    public func value(_ json: JSONValue, type: SchemaType, at path: String) throws(EntitiesError) -> Value {
        func mismatch(_ expected: String) -> EntitiesError {
            EntitiesError(.schemaMismatch, "\(path): expected \(expected), got \(json.typeName)")
        }
        // Explicit escapes are accepted wherever they produce the declared type.
        if case .object(let members) = json, members.count == 1, members[0].key == "__extn" || members[0].key == "__entity" {
            let explicit = try CedarJSON.value(json, at: path)
            try check(explicit, against: type, at: path)
            return explicit
        }
        switch type {
        case .bool:
            guard case .bool(let flag) = json else { throw mismatch("a boolean") }
            return .bool(flag)
        case .long:
            guard case .integer(let number) = json else {
                if case .otherNumber(let text) = json { throw EntitiesError(.schemaMismatch, "\(path): `\(text)` is not a 64-bit integer") }
                throw mismatch("a long")
            }
            return .long(number)
        case .string:
            guard case .string(let text) = json else { throw mismatch("a string") }
            return .string(CedarString(text))
        case .set(let element):
            guard case .array(let items) = json else { throw mismatch("a set (JSON array)") }
            var set = Set<Value>(minimumCapacity: items.count)
            for (index, item) in items.enumerated() { set.insert(try value(item, type: element, at: "\(path)[\(index)]")) }
            return .set(set)
        case .record(let record):
            guard case .object(let members) = json else { throw mismatch("a record (JSON object)") }
            return .record(try self.record(members, type: record, at: path))
        case .entity(let expected):
            let uid = try CedarJSON.entityUID(json, at: path)
            guard uid.type == expected else {
                throw EntitiesError(.schemaMismatch, "\(path): expected an entity of type `\(expected)`, got `\(uid)`")
            }
            return .entity(uid)
        case .extension(let name):
            guard case .string(let text) = json else { throw mismatch("\(name) (a string or {\"__extn\": …})") }
            let constructor = name == "ipaddr" ? "ip" : name
            do {
                return try Extensions.call(Name(constructor), [.string(CedarString(text))])
            } catch {
                throw EntitiesError(.schemaMismatch, "\(path): \(error.message)")
            }
        }
    }

    func record(_ members: [JSONMember], type: RecordType, at path: String) throws(EntitiesError) -> [CedarString: Value] {
        var out = [CedarString: Value](minimumCapacity: members.count)
        for member in members {
            let key = CedarString(member.key)
            if let attribute = type.attributes[key] {
                out[key] = try value(member.value, type: attribute.type, at: "\(path).\(member.key)")
            } else if type.additionalAttributes {
                out[key] = try CedarJSON.value(member.value, at: "\(path).\(member.key)")
            } else {
                throw EntitiesError(.schemaMismatch, "\(path): attribute `\(member.key)` is not declared")
            }
        }
        for (key, attribute) in type.attributes where attribute.required && out[key] == nil {
            throw EntitiesError(.schemaMismatch, "\(path): required attribute `\(key)` is missing")
        }
        return out
    }

    /// Checks an already built value against a declared type.
    public func check(_ value: Value, against type: SchemaType, at path: String) throws(EntitiesError) {
        func mismatch() -> EntitiesError {
            EntitiesError(.schemaMismatch, "\(path): expected \(Self.describe(type)), got \(value.typeName)")
        }
        switch (type, value) {
        case (.bool, .bool), (.long, .long), (.string, .string): return
        case (.set(let element), .set(let items)):
            for item in items { try check(item, against: element, at: path + "[]") }
        case (.record(let record), .record(let fields)):
            for (key, field) in fields {
                if let attribute = record.attributes[key] { try check(field, against: attribute.type, at: "\(path).\(key)") }
                else if !record.additionalAttributes { throw EntitiesError(.schemaMismatch, "\(path): attribute `\(key)` is not declared") }
            }
            for (key, attribute) in record.attributes where attribute.required && fields[key] == nil {
                throw EntitiesError(.schemaMismatch, "\(path): required attribute `\(key)` is missing")
            }
        case (.entity(let expected), .entity(let uid)):
            guard uid.type == expected else { throw mismatch() }
        case (.extension("decimal"), .decimal), (.extension("ipaddr"), .ipaddr), (.extension("datetime"), .datetime), (.extension("duration"), .duration):
            return
        default:
            throw mismatch()
        }
    }

    static func describe(_ type: SchemaType) -> String {
        switch type {
        case .bool: "bool"
        case .long: "long"
        case .string: "string"
        case .set(let element): "set of \(describe(element))"
        case .record: "record"
        case .entity(let name): "(entity of type `\(name)`)"
        case .extension(let name): name
        }
    }

    /// The entities of an entity list, checked against the schema, plus the schema's actions.
    public func entities(_ json: JSONValue) throws(EntitiesError) -> [Entity] {
        guard case .array(let items) = json else { throw EntitiesError(.malformed, "entities: expected a JSON array, got \(json.typeName)") }
        var out: [Entity] = []
        out.reserveCapacity(items.count + schema.actionOrder.count)
        let actionHierarchy = (try? Entities(schema.actionEntities)) ?? Entities()
        for (index, item) in items.enumerated() {
            let path = "entities[\(index)]"
            guard case .object = item else { throw EntitiesError(.malformed, "\(path): expected an object") }
            guard let uidJSON = item["uid"] else { throw EntitiesError(.malformed, "\(path): missing field `uid`") }
            let uid = try CedarJSON.entityUID(uidJSON, at: path + ".uid")
            guard item["attrs"] != nil else { throw EntitiesError(.malformed, "\(path): missing field `attrs`") }
            guard let parentsJSON = item["parents"] else { throw EntitiesError(.malformed, "\(path): missing field `parents`") }
            var parents = Set<EntityUID>()
            guard case .array(let list) = parentsJSON else { throw EntitiesError(.malformed, "\(path).parents: expected an array") }
            for (p, parent) in list.enumerated() { parents.insert(try CedarJSON.entityUID(parent, at: "\(path).parents[\(p)]")) }
            if schema.actions[uid] != nil {
                // An action listed in the data must agree with its declaration (its ancestors, the
                // data may list them transitively); the schema's copy is used.
                let declared = actionHierarchy[uid]?.ancestors ?? []
                var listed = parents
                for parent in parents { listed.formUnion(actionHierarchy[parent]?.ancestors ?? []) }
                guard listed == declared else {
                    throw EntitiesError(.schemaMismatch, "\(path): action `\(uid)` has ancestors that differ from the schema's")
                }
                continue
            }
            guard let declaration = schema.entityTypes[uid.type] else {
                if uid.type.basename == "Action" {
                    throw EntitiesError(.schemaMismatch, "\(path): action `\(uid)` is not declared in the schema")
                }
                throw EntitiesError(.schemaMismatch, "\(path): entity type `\(uid.type)` is not declared in the schema")
            }
            if let ids = declaration.enumeration, !ids.contains(uid.id) {
                throw EntitiesError(.schemaMismatch, "\(path): `\(uid)` is not one of the enumerated ids of `\(uid.type)`")
            }
            for parent in parents where !declaration.memberOf.contains(parent.type) {
                throw EntitiesError(.schemaMismatch, "\(path): `\(uid)` cannot have a parent of type `\(parent.type)`")
            }
            var attributes: [CedarString: Value] = [:]
            if let attrs = item["attrs"] {
                guard case .object(let pairs) = attrs else { throw EntitiesError(.malformed, "\(path).attrs: expected an object") }
                attributes = try record(pairs, type: declaration.shape, at: path + ".attrs")
            } else {
                attributes = try record([], type: declaration.shape, at: path + ".attrs")
            }
            var tags: [CedarString: Value] = [:]
            if let tagsJSON = item["tags"] {
                guard case .object(let pairs) = tagsJSON else { throw EntitiesError(.malformed, "\(path).tags: expected an object") }
                if !pairs.isEmpty {
                    guard let tagType = declaration.tags else {
                        throw EntitiesError(.schemaMismatch, "\(path): entity type `\(uid.type)` declares no tags")
                    }
                    for pair in pairs { tags[CedarString(pair.key)] = try value(pair.value, type: tagType, at: "\(path).tags.\(pair.key)") }
                }
            }
            out.append(Entity(uid: uid, attributes: attributes, parents: parents, tags: tags))
        }
        out.append(contentsOf: schema.actionEntities)
        return out
    }

    /// Why a request does not conform to the schema, or nil when it does.
    public func requestError(_ request: Request) -> String? {
        guard let action = schema.actions[request.action] else { return "action `\(request.action)` is not declared in the schema" }
        guard let applies = action.appliesTo else { return "action `\(request.action)` applies to no principal or resource" }
        guard applies.principals.contains(request.principal.type) else {
            return "principal type `\(request.principal.type)` is not valid for `\(request.action)`"
        }
        guard applies.resources.contains(request.resource.type) else {
            return "resource type `\(request.resource.type)` is not valid for `\(request.action)`"
        }
        for uid in [request.principal, request.resource] {
            if let ids = schema.entityTypes[uid.type]?.enumeration, !ids.contains(uid.id) {
                return "`\(uid)` is not one of the enumerated ids of `\(uid.type)`"
            }
        }
        do {
            try check(.record(request.context), against: .record(applies.context), at: "context")
        } catch {
            return error.message
        }
        return nil
    }

    /// A request context read with the declared context type of `action`.
    public func context(_ json: JSONValue?, action: EntityUID) throws(EntitiesError) -> [CedarString: Value] {
        guard let json else { return [:] }
        guard case .object(let members) = json else { throw EntitiesError(.malformed, "context: expected a JSON object, got \(json.typeName)") }
        guard let applies = schema.actions[action]?.appliesTo else { return try CedarJSON.context(json) }
        return try record(members, type: applies.context, at: "context")
    }
}
