import StrictJSON

/// Cedar's JSON policy format (the "EST"), both directions: what `cedar translate-policy` and
/// cedarpy's `policies_to_json_str` produce, object members in sorted order.
public enum PolicyJSON {
    /// Why a JSON policy was refused.
    public struct FormatError: Error, Sendable, Hashable, CustomStringConvertible {
        public let message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    // MARK: text form → JSON

    /// A policy set in JSON: `{"staticPolicies": {id: policy}, "templates": {id: policy},
    /// "templateLinks": [{"templateId", "newId", "values": {"?principal": uid}}]}`.
    public static func json(_ set: PolicySet) -> JSONValue {
        var statics: [JSONMember] = [], links: [JSONValue] = []
        for (id, policy) in set.policies {
            if let link = set.links[id] {
                let values = link.values.sorted { $0.key.rawValue < $1.key.rawValue }.map { JSONMember($0.key.rawValue, uid($0.value)) }
                links.append(.object([JSONMember("templateId", .string(link.template)), JSONMember("newId", .string(id)), JSONMember("values", .object(values))]))
            } else {
                statics.append(JSONMember(id, json(policy)))
            }
        }
        let templates = set.templates.sorted { $0.key < $1.key }.map { JSONMember($0.key, json($0.value)) }
        return .object([JSONMember("staticPolicies", .object(statics.sorted { $0.key < $1.key })), JSONMember("templates", .object(templates)),
                        JSONMember("templateLinks", .array(links))])
    }

    /// One policy or template in JSON.
    public static func json(_ policy: Policy) -> JSONValue {
        func reference(_ r: EntityReference) -> JSONMember {
            switch r {
            case .entity(let e): JSONMember("entity", uid(e))
            case .slot(let s): JSONMember("slot", .string(s.rawValue))
            }
        }
        func scope(_ c: ScopeConstraint) -> JSONValue {
            switch c {
            case .any: .object([JSONMember("op", .string("All"))])
            case .equal(let r): .object([JSONMember("op", .string("==")), reference(r)])
            case .in(let r): .object([JSONMember("op", .string("in")), reference(r)])
            case .is(let t): .object([JSONMember("op", .string("is")), JSONMember("entity_type", .string(t.qualified))])
            case .isIn(let t, let r): .object([JSONMember("op", .string("is")), JSONMember("entity_type", .string(t.qualified)), JSONMember("in", .object([reference(r)]))])
            }
        }
        let action: JSONValue = switch policy.action {
        case .any: .object([JSONMember("op", .string("All"))])
        case .equal(let e): .object([JSONMember("op", .string("==")), JSONMember("entity", uid(e))])
        case .in(let e): .object([JSONMember("op", .string("in")), JSONMember("entity", uid(e))])
        case .inSet(let es): .object([JSONMember("op", .string("in")), JSONMember("entities", .array(es.map(uid)))])
        }
        var members = [JSONMember("effect", .string(policy.effect.rawValue)), JSONMember("principal", scope(policy.principal)),
                       JSONMember("action", action), JSONMember("resource", scope(policy.resource)),
                       JSONMember("conditions", .array(policy.conditions.map { .object([JSONMember("kind", .string($0.kind.rawValue)), JSONMember("body", json($0.body))]) }))]
        if !policy.annotations.isEmpty {
            members.append(JSONMember("annotations", .object(policy.annotations.sorted { CedarString($0.key) < CedarString($1.key) }
                .map { JSONMember($0.key, $0.value.map { .string($0.text) } ?? .null) })))
        }
        return .object(members)
    }

    static func uid(_ e: EntityUID) -> JSONValue {
        .object([JSONMember("type", .string(e.type.qualified)), JSONMember("id", .string(e.id.text))])
    }

    static func node(_ key: String, _ value: JSONValue) -> JSONValue { .object([JSONMember(key, value)]) }
    static func binary(_ key: String, _ left: Expr, _ right: Expr) -> JSONValue {
        node(key, .object([JSONMember("left", json(left)), JSONMember("right", json(right))]))
    }

    static let builtinMethods: Set<String> = ["contains", "containsAll", "containsAny", "getTag", "hasTag"]

    /// An expression in JSON (`has a.b` written out as `has` joined by `&&`, as Cedar does).
    public static func json(_ expr: Expr) -> JSONValue {
        switch expr {
        case .value(let value):
            switch value {
            case .bool(let b): return node("Value", .bool(b))
            case .long(let n): return node("Value", .integer(n))
            case .string(let s): return node("Value", .string(s.text))
            case .entity(let e): return node("Value", node("__entity", uid(e)))
            default: return node("Value", .null)
            }
        case .variable(let v): return node("Var", .string(v.rawValue))
        case .slot(let s): return node("Slot", .string(s.rawValue))
        case .not(let e): return node("!", node("arg", json(e)))
        case .negate(let e): return node("neg", node("arg", json(e)))
        case .binary(let op, let l, let r): return binary(op.rawValue, l, r)
        case .and(let l, let r): return binary("&&", l, r)
        case .or(let l, let r): return binary("||", l, r)
        case .ifThenElse(let c, let t, let e):
            return node("if-then-else", .object([JSONMember("if", json(c)), JSONMember("then", json(t)), JSONMember("else", json(e))]))
        case .getAttribute(let e, let a): return node(".", .object([JSONMember("left", json(e)), JSONMember("attr", .string(a.text))]))
        case .hasAttribute(let e, let path):
            var result = node("has", .object([JSONMember("left", json(e)), JSONMember("attr", .string(path[0].text))]))
            var target = json(e)
            for index in 1..<max(1, path.count) {
                target = node(".", .object([JSONMember("left", target), JSONMember("attr", .string(path[index - 1].text))]))
                result = node("&&", .object([JSONMember("left", result),
                                             JSONMember("right", node("has", .object([JSONMember("left", target), JSONMember("attr", .string(path[index].text))])))]))
            }
            return result
        case .like(let e, let p):
            let pattern: [JSONValue] = p.elements.map {
                switch $0 {
                case .wildcard: .string("Wildcard")
                case .scalar(let s): node("Literal", .string(String(Character(s))))
                }
            }
            return node("like", .object([JSONMember("left", json(e)), JSONMember("pattern", .array(pattern))]))
        case .isType(let e, let t, let container):
            var members = [JSONMember("left", json(e)), JSONMember("entity_type", .string(t.qualified))]
            if let container { members.append(JSONMember("in", json(container))) }
            return node("is", .object(members))
        case .set(let items): return node("Set", .array(items.map(json)))
        case .record(let fields):
            return node("Record", .object(fields.sorted { $0.key < $1.key }.map { JSONMember($0.key.text, json($0.value)) }))
        case .call(let name, let args): return node(name.qualified, .array(args.map(json)))
        case .method(let receiver, let name, let args):
            if name == "isEmpty" { return node("isEmpty", node("arg", json(receiver))) }
            if builtinMethods.contains(name), args.count == 1 { return binary(name, receiver, args[0]) }
            return node(name, .array(([receiver] + args).map(json)))
        }
    }

    // MARK: JSON → policies

    /// A policy set from its JSON form: static policies, templates (both by id) and links.
    public static func policySet(_ json: JSONValue) throws(FormatError) -> PolicySet {
        guard case .object(let members) = json else { throw FormatError("a JSON policy set must be an object") }
        for member in members where !["staticPolicies", "templates", "templateLinks"].contains(member.key) {
            throw FormatError("unknown field `\(member.key)` in a policy set")
        }
        var set = PolicySet()
        do {
            if case .object(let statics)? = json["staticPolicies"] {
                for member in statics {
                    let policy = try policy(member.value, at: member.key)
                    guard !policy.isTemplate else { throw FormatError("static policy `\(member.key)` has slots") }
                    try set.add(policy, id: member.key)
                }
            }
            if case .object(let templates)? = json["templates"] {
                for member in templates {
                    let policy = try policy(member.value, at: member.key)
                    try set.add(policy, id: member.key)
                }
            }
            if case .array(let links)? = json["templateLinks"] {
                for (index, link) in links.enumerated() {
                    guard case .string(let template)? = link["templateId"], case .string(let id)? = link["newId"], case .object(let values)? = link["values"] else {
                        throw FormatError("templateLinks[\(index)]: needs templateId, newId and values")
                    }
                    var slots: [Slot: EntityUID] = [:]
                    for value in values {
                        guard let slot = Slot(rawValue: value.key) else { throw FormatError("templateLinks[\(index)]: `\(value.key)` is not a slot") }
                        slots[slot] = try entity(value.value, at: "templateLinks[\(index)].values.\(value.key)")
                    }
                    try set.link(template: template, id: id, values: slots)
                }
            }
        } catch let error as FormatError {
            throw error
        } catch let error as PolicySetError {
            throw FormatError(error.message)
        } catch {
            throw FormatError("\(error)")
        }
        return set
    }

    static func entity(_ json: JSONValue, at path: String) throws(FormatError) -> EntityUID {
        do {
            return try CedarJSON.entityUID(json, at: path)
        } catch {
            throw FormatError(error.message)
        }
    }

    /// One policy from its JSON form.
    public static func policy(_ json: JSONValue, at path: String = "policy") throws(FormatError) -> Policy {
        guard case .object(let members) = json else { throw FormatError("\(path): a policy must be an object") }
        for member in members where !["effect", "principal", "action", "resource", "conditions", "annotations"].contains(member.key) {
            throw FormatError("\(path): unknown field `\(member.key)`")
        }
        guard case .string(let effectText)? = json["effect"], let effect = Effect(rawValue: effectText) else { throw FormatError("\(path): `effect` must be \"permit\" or \"forbid\"") }
        func reference(_ j: JSONValue, _ slot: Slot, _ where_: String) throws(FormatError) -> EntityReference {
            if let e = j["entity"] { return .entity(try entity(e, at: where_)) }
            if case .string(let s)? = j["slot"] {
                guard s == slot.rawValue else { throw FormatError("\(where_): invalid slot name or slot used in wrong position: `\(s)`") }
                return .slot(slot)
            }
            throw FormatError("\(where_): expected `entity` or `slot`")
        }
        func scope(_ key: String, _ slot: Slot) throws(FormatError) -> ScopeConstraint {
            guard let j = json[key], case .string(let op)? = j["op"] else { throw FormatError("\(path).\(key): expected {\"op\": …}") }
            switch op {
            case "All", "all": return .any
            case "==": return .equal(try reference(j, slot, "\(path).\(key)"))
            case "in": return .in(try reference(j, slot, "\(path).\(key)"))
            case "is":
                guard case .string(let t)? = j["entity_type"], let name = CedarJSON.name(t) else { throw FormatError("\(path).\(key): `entity_type` must be an entity type name") }
                if let inner = j["in"] { return .isIn(name, try reference(inner, slot, "\(path).\(key).in")) }
                return .is(name)
            default: throw FormatError("\(path).\(key): unknown op `\(op)`")
            }
        }
        let principal = try scope("principal", .principal), resource = try scope("resource", .resource)
        guard let a = json["action"], case .string(let op)? = a["op"] else { throw FormatError("\(path).action: expected {\"op\": …}") }
        let action: ActionConstraint
        switch op {
        case "All", "all": action = .any
        case "==": action = .equal(try entity(a["entity"] ?? .null, at: "\(path).action"))
        case "in":
            if case .array(let list)? = a["entities"] {
                var uids: [EntityUID] = []
                for item in list { uids.append(try entity(item, at: "\(path).action")) }
                action = .inSet(uids)
            } else {
                action = .in(try entity(a["entity"] ?? .null, at: "\(path).action"))
            }
        default: throw FormatError("\(path).action: unknown op `\(op)`")
        }
        guard case .array(let conditionList)? = json["conditions"] else { throw FormatError("\(path): `conditions` must be an array") }
        var conditions: [Condition] = []
        for (index, c) in conditionList.enumerated() {
            guard case .string(let k)? = c["kind"], let kind = Condition.Kind(rawValue: k), let body = c["body"] else {
                throw FormatError("\(path).conditions[\(index)]: expected {\"kind\": \"when\"|\"unless\", \"body\": …}")
            }
            conditions.append(Condition(kind, try expr(body, at: "\(path).conditions[\(index)]", depth: 0)))
        }
        var annotations: [Annotation] = []
        if case .object(let list)? = json["annotations"] {
            for member in list {
                switch member.value {
                case .null: annotations.append(Annotation(key: member.key, value: nil))
                case .string(let s): annotations.append(Annotation(key: member.key, value: CedarString(s)))
                default: throw FormatError("\(path).annotations.\(member.key): must be a string or null")
                }
            }
        }
        return Policy(annotations: annotations, effect: effect, principal: principal, action: action, resource: resource, conditions: conditions)
    }

    /// An expression from its JSON form.
    public static func expr(_ json: JSONValue, at path: String, depth: Int) throws(FormatError) -> Expr {
        guard depth < 200 else { throw FormatError("\(path): nested more than 200 levels deep") }
        guard case .object(let members) = json else { throw FormatError("\(path): an expression must be a JSON object") }
        guard members.count == 1 else {
            throw FormatError(members.isEmpty ? "\(path): empty map is not a valid expression" : "\(path): an expression object has exactly one key, found \(members.count)")
        }
        let key = members[0].key, body = members[0].value
        func sub(_ j: JSONValue?, _ name: String) throws(FormatError) -> Expr {
            guard let j else { throw FormatError("\(path).\(key): missing `\(name)`") }
            return try expr(j, at: "\(path).\(key).\(name)", depth: depth + 1)
        }
        func list(_ j: JSONValue) throws(FormatError) -> [Expr] {
            guard case .array(let items) = j else { throw FormatError("\(path).\(key): expected an array") }
            var out: [Expr] = []
            for (i, item) in items.enumerated() { out.append(try expr(item, at: "\(path).\(key)[\(i)]", depth: depth + 1)) }
            return out
        }
        func attr(_ j: JSONValue?) throws(FormatError) -> String {
            guard case .string(let s)? = j else { throw FormatError("\(path).\(key): `attr` must be a string") }
            return s
        }
        switch key {
        case "Value":
            do {
                let value = try CedarJSON.value(body, at: path)
                switch value {
                case .bool, .long, .string, .entity: return .value(value)
                default: throw FormatError("\(path): only booleans, longs, strings and entities are literal values")
                }
            } catch let error as FormatError {
                throw error
            } catch {
                throw FormatError("\(path): \(error)")
            }
        case "Var":
            guard case .string(let v) = body, let variable = Variable(rawValue: v) else { throw FormatError("\(path): unknown variable") }
            return .variable(variable)
        case "Slot":
            guard case .string(let s) = body, let slot = Slot(rawValue: s) else { throw FormatError("\(path): unknown slot") }
            return .slot(slot)
        case "!": return .not(try sub(body["arg"], "arg"))
        case "neg": return .negate(try sub(body["arg"], "arg"))
        case "isEmpty": return .method(try sub(body["arg"], "arg"), "isEmpty", [])
        case "&&": return .and(try sub(body["left"], "left"), try sub(body["right"], "right"))
        case "||": return .or(try sub(body["left"], "left"), try sub(body["right"], "right"))
        case "contains", "containsAll", "containsAny", "getTag", "hasTag":
            return .method(try sub(body["left"], "left"), key, [try sub(body["right"], "right")])
        case ".": return .getAttribute(try sub(body["left"], "left"), CedarString(try attr(body["attr"])))
        case "has":
            if case .array(let path_)? = body["attr"] {
                var names: [CedarString] = []
                for item in path_ { guard case .string(let s) = item else { throw FormatError("\(path).has: attr path must be strings") }; names.append(CedarString(s)) }
                guard !names.isEmpty else { throw FormatError("\(path).has: empty attr path") }
                return .hasAttribute(try sub(body["left"], "left"), names)
            }
            return .hasAttribute(try sub(body["left"], "left"), [CedarString(try attr(body["attr"]))])
        case "like":
            guard case .array(let parts)? = body["pattern"] else { throw FormatError("\(path).like: `pattern` must be an array") }
            var elements: [PatternElement] = []
            for part in parts {
                if case .string("Wildcard") = part { elements.append(.wildcard); continue }
                guard case .string(let literal)? = part["Literal"] else { throw FormatError("\(path).like: a pattern element is \"Wildcard\" or {\"Literal\": …}") }
                elements += literal.unicodeScalars.map { .scalar($0) }
            }
            return .like(try sub(body["left"], "left"), Pattern(elements))
        case "is":
            guard case .string(let t)? = body["entity_type"], let name = CedarJSON.name(t) else { throw FormatError("\(path).is: `entity_type` must be an entity type name") }
            return .isType(try sub(body["left"], "left"), name, try body["in"].map { (j) throws(FormatError) -> Expr in try expr(j, at: "\(path).is.in", depth: depth + 1) })
        case "if-then-else": return .ifThenElse(try sub(body["if"], "if"), try sub(body["then"], "then"), try sub(body["else"], "else"))
        case "Set": return .set(try list(body))
        case "Record":
            guard case .object(let fields) = body else { throw FormatError("\(path).Record: expected an object") }
            var out: [RecordField] = []
            for field in fields { out.append(RecordField(CedarString(field.key), try expr(field.value, at: "\(path).Record.\(field.key)", depth: depth + 1))) }
            return .record(out)
        default:
            if let op = BinaryOperator(rawValue: key) { return .binary(op, try sub(body["left"], "left"), try sub(body["right"], "right")) }
            if Extensions.functions[key] != nil { return .call(Name(key), try list(body)) }
            if Extensions.methods[key] != nil {
                let args = try list(body)
                guard let receiver = args.first else { throw FormatError("\(path).\(key): a method call needs its receiver") }
                return .method(receiver, key, Array(args.dropFirst()))
            }
            throw FormatError("\(path): unknown expression `\(key)`")
        }
    }
}
