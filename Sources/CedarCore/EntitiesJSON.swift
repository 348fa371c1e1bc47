import StrictJSON

/// Cedar's JSON formats for values, entities and request contexts, without a schema: entity
/// references as `{"__entity": {"type": …, "id": …}}`, extension values as
/// `{"__extn": {"fn": …, "arg": …}}`, arrays as sets, other objects as records.
public enum CedarJSON {
    /// A value in Cedar's JSON value format.
    public static func value(_ json: JSONValue, at path: String = "value") throws(EntitiesError) -> Value {
        switch json {
        case .bool(let flag): return .bool(flag)
        case .integer(let number): return .long(number)
        case .otherNumber(let text):
            throw EntitiesError(.malformed, "\(path): `\(text)` is not a 64-bit integer (Cedar has no other numbers)")
        case .string(let text): return .string(CedarString(text))
        case .null: throw EntitiesError(.malformed, "\(path): null is not a Cedar value")
        case .array(let items):
            var set = Set<Value>(minimumCapacity: items.count)
            for (index, item) in items.enumerated() { set.insert(try value(item, at: "\(path)[\(index)]")) }
            return .set(set)
        case .object(let members):
            // The single-key escapes; an escape of the wrong shape is an ordinary record.
            if members.count == 1, members[0].key == "__entity", case .object(let inner) = members[0].value, inner.count >= 2,
               case .string? = members[0].value["type"], case .string? = members[0].value["id"] {
                return .entity(try entityUID(members[0].value, at: path + ".__entity"))
            }
            if members.count == 1, members[0].key == "__extn", case .object(let inner) = members[0].value, inner.count >= 2,
               case .string? = members[0].value["fn"], members[0].value["arg"] != nil || members[0].value["args"] != nil {
                return try extensionValue(members[0].value, at: path + ".__extn")
            }
            if members.count == 1, members[0].key == "__expr" {
                throw EntitiesError(.malformed, "\(path): the __expr escape is no longer supported")
            }
            var record = [CedarString: Value](minimumCapacity: members.count)
            for member in members { record[CedarString(member.key)] = try value(member.value, at: "\(path).\(member.key)") }
            return .record(record)
        }
    }

    /// `{"fn": "decimal", "arg": "1.5"}` (or `"args": […]` for a multi-argument call).
    static func extensionValue(_ json: JSONValue, at path: String) throws(EntitiesError) -> Value {
        guard case .object = json, case .string(let function)? = json["fn"] else {
            throw EntitiesError(.malformed, "\(path): expected {\"fn\": …, \"arg\": …}")
        }
        var arguments: [Value] = []
        if let arg = json["arg"] {
            arguments = [try value(arg, at: path + ".arg")]
        } else if case .array(let items)? = json["args"] {
            for (index, item) in items.enumerated() { arguments.append(try value(item, at: "\(path).args[\(index)]")) }
        } else {
            throw EntitiesError(.malformed, "\(path): missing `arg`")
        }
        guard let name = Self.name(function) else {
            throw EntitiesError(.malformed, "\(path): `\(function)` is not a valid extension function name")
        }
        do throws(EvaluationError) {
            if Extensions.methods[name.qualified] != nil {
                // Computed values are written as method calls, e.g. `offset` with its receiver first.
                guard let receiver = arguments.first else {
                    throw EvaluationError(.extensionError, "wrong number of arguments provided to extension function `\(function)`: expected \(Extensions.methods[name.qualified]!), got 0")
                }
                return try Extensions.method(name.qualified, receiver, Array(arguments.dropFirst()))
            }
            return try Extensions.call(name, arguments)
        } catch {
            throw EntitiesError(.malformed, "\(path): \(error.message)")
        }
    }

    /// `{"type": "T", "id": "x"}` or `{"__entity": {…}}` (other members are ignored).
    public static func entityUID(_ json: JSONValue, at path: String) throws(EntitiesError) -> EntityUID {
        if case .object(let members) = json, members.count == 1, let inner = json["__entity"] { return try entityUID(inner, at: path + ".__entity") }
        guard case .object = json, case .string(let type)? = json["type"], case .string(let id)? = json["id"] else {
            throw EntitiesError(.malformed, "\(path): expected an entity reference {\"type\": …, \"id\": …}")
        }
        guard let name = Self.name(type) else {
            throw EntitiesError(.malformed, "\(path): `\(type)` is not a valid entity type name")
        }
        return EntityUID(type: name, id: CedarString(id))
    }

    /// Identifiers that cannot appear in a name.
    static let reservedIdentifiers: Set<String> = ["true", "false", "if", "then", "else", "in", "is", "like", "has", "__cedar"]

    /// A `::`-separated name of identifiers in normalised form (no spaces), or nil.
    public static func name(_ text: String) -> Name? {
        // One pass over the bytes: identifiers of [_a-zA-Z][_a-zA-Z0-9]* separated by `::`.
        var segmentStart = true
        var segment = 0
        var colons = 0
        var segments: [Substring] = []
        var start = text.utf8.startIndex
        var index = start
        let utf8 = text.utf8
        while index != utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: ":") {
                colons += 1
                guard !segmentStart, colons <= 2 else { return nil }
                if colons == 2 {
                    segments.append(text[start..<utf8.index(before: index)])
                    segmentStart = true
                    segment = 0
                    start = utf8.index(after: index)
                }
            } else {
                guard colons == 0 || colons == 2 else { return nil }
                colons = 0
                let letter = (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || byte == 0x5F
                let digit = byte >= 0x30 && byte <= 0x39
                guard letter || (digit && !segmentStart) else { return nil }
                segmentStart = false
                segment += 1
            }
            index = utf8.index(after: index)
        }
        guard !segmentStart, colons == 0 else { return nil }
        segments.append(text[start...])
        for part in segments where reservedIdentifiers.contains(String(part)) { return nil }
        return segments.count == 1 ? Name(qualified: text) : Name(path: segments.map(String.init))
    }

    /// An entity list: `[{"uid": …, "attrs": {…}, "parents": […], "tags": {…}}, …]`.
    public static func entities(_ json: JSONValue) throws(EntitiesError) -> [Entity] {
        guard case .array(let items) = json else { throw EntitiesError(.malformed, "entities: expected a JSON array, got \(json.typeName)") }
        var out: [Entity] = []
        out.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            let path = "entities[\(index)]"
            guard case .object = item else { throw EntitiesError(.malformed, "\(path): expected an object") }
            guard let uidJSON = item["uid"] else { throw EntitiesError(.malformed, "\(path): missing field `uid`") }
            let uid = try entityUID(uidJSON, at: path + ".uid")
            var attributes: [CedarString: Value] = [:]
            guard let attrs = item["attrs"] else { throw EntitiesError(.malformed, "\(path): missing field `attrs`") }
            guard case .object(let attributePairs) = attrs else { throw EntitiesError(.malformed, "\(path).attrs: expected an object") }
            for pair in attributePairs { attributes[CedarString(pair.key)] = try value(pair.value, at: "\(path).attrs.\(pair.key)") }
            var tags: [CedarString: Value] = [:]
            if let tagsJSON = item["tags"] {
                guard case .object(let pairs) = tagsJSON else { throw EntitiesError(.malformed, "\(path).tags: expected an object") }
                for pair in pairs { tags[CedarString(pair.key)] = try value(pair.value, at: "\(path).tags.\(pair.key)") }
            }
            var parents = Set<EntityUID>()
            guard let parentsJSON = item["parents"] else { throw EntitiesError(.malformed, "\(path): missing field `parents`") }
            guard case .array(let list) = parentsJSON else { throw EntitiesError(.malformed, "\(path).parents: expected an array") }
            for (p, parent) in list.enumerated() { parents.insert(try entityUID(parent, at: "\(path).parents[\(p)]")) }
            if uid.type.basename == "Action", let other = parents.first(where: { $0.type.basename != "Action" }) {
                throw EntitiesError(.malformed, "\(path): action `\(uid)` has a non-action parent `\(other)`")
            }
            out.append(Entity(uid: uid, attributes: attributes, parents: parents, tags: tags))
        }
        return out
    }

    /// A request context: a JSON object (or nothing, for an empty context).
    public static func context(_ json: JSONValue?) throws(EntitiesError) -> [CedarString: Value] {
        guard let json else { return [:] }
        guard case .record(let record) = try value(json, at: "context"), case .object = json else {
            throw EntitiesError(.malformed, "context: expected a JSON object, got \(json.typeName)")
        }
        return record
    }
}
