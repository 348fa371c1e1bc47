import CedarCore
import CedarParser

/// What a `has` or `hasTag` proved: that `target` has the attribute (or tag).
struct Capability: Hashable {
    enum Key: Hashable {
        case attribute(CedarString)
        case tag(Expr)
    }
    let target: Expr
    let key: Key
}

/// A typechecked expression: its type (nil when unknown after a failure), the capabilities it
/// proves when true, and whether checking failed somewhere inside.
struct Answer {
    var type: CType?
    var caps: Set<Capability> = []
    var failed = false

    static func ok(_ type: CType, _ caps: Set<Capability> = []) -> Answer { Answer(type: type, caps: caps) }
    static func fail(_ type: CType? = nil) -> Answer { Answer(type: type, caps: [], failed: true) }
}

/// Cedar's strict-mode typechecker for one request environment.
struct TypeChecker {
    let validator: Validator
    let environment: Validator.Environment
    var errors: [(kind: ValidationDiagnostic.Kind, message: String, span: SourceSpan?)] = []

    /// Where the expression being checked was written, when known: the root's spans, then for
    /// each expression being checked its spans and which of its children have been checked.
    let root: ExprSpans?
    var located: [(expr: Expr, spans: ExprSpans, checked: [Bool])] = []
    /// The span of the expression checked last (for a finding about it made by its parent).
    var lastChecked: SourceSpan?

    init(validator: Validator, environment: Validator.Environment, spans: ExprSpans? = nil) {
        self.validator = validator
        self.environment = environment
        self.root = spans
    }

    var schema: Schema { validator.schema }

    /// Records a finding about the expression being checked (or at `span`).
    mutating func report(_ kind: ValidationDiagnostic.Kind, _ message: String, at span: SourceSpan? = nil) {
        errors.append((kind, message, span ?? located.last?.spans.span))
    }

    /// The spans of `expr` as a child of the expression being checked: the first child equal to
    /// it not yet checked (else the first equal one); the parent's own for an expression the
    /// checker made up.
    mutating func spans(of expr: Expr) -> ExprSpans? {
        guard let parent = located.last else { return located.isEmpty ? root : nil }
        let children = parent.expr.children
        var found: Int? = nil
        for (index, child) in children.enumerated() where index < parent.spans.children.count && child == expr {
            if !parent.checked[index] { found = index; break }
            if found == nil { found = index }
        }
        guard let index = found else { return parent.spans }
        located[located.count - 1].checked[index] = true
        return parent.spans.children[index]
    }

    mutating func expect(_ expr: Expr, _ expected: CType, caps: Set<Capability>) -> Answer {
        expectOneOf(expr, [expected], caps: caps)
    }

    mutating func expectOneOf(_ expr: Expr, _ expected: [CType], caps: Set<Capability>) -> Answer {
        var answer = typecheck(expr, caps)
        guard let type = answer.type else {
            answer.failed = true
            return answer
        }
        guard expected.contains(where: { type.isSubtype(of: $0, strict: false) }) else {
            report(.unexpectedType, "unexpected type: expected \(expected.map(\.description).joined(separator: " or ")), got \(type)", at: lastChecked)
            return Answer(type: nil, caps: [], failed: true)
        }
        return answer
    }

    /// The literal an expression is, with `action` standing for this environment's action.
    func literal(_ expr: Expr) -> Value? {
        switch expr {
        case .value(let value): value
        case .variable(.action): .entity(environment.action)
        default: nil
        }
    }

    /// Typechecks `expr`, keeping track of where it was written when that is known.
    mutating func typecheck(_ expr: Expr, _ caps: Set<Capability>) -> Answer {
        guard root != nil, let spans = spans(of: expr) else { return check(expr, caps) }
        located.append((expr, spans, Array(repeating: false, count: spans.children.count)))
        let answer = check(expr, caps)
        located.removeLast()
        lastChecked = spans.span
        return answer
    }

    mutating func check(_ expr: Expr, _ caps: Set<Capability>) -> Answer {
        switch expr {
        case .value(let value):
            switch value {
            case .bool(let flag): return .ok(.bool(flag ? .true : .false))
            case .long: return .ok(.long)
            case .string: return .ok(.string)
            case .entity(let uid):
                if uid.type.basename == "Action" { return schema.actions[uid] != nil ? .ok(.entity(uid.type)) : .fail() }
                return schema.entityTypes[uid.type] != nil ? .ok(.entity(uid.type)) : .fail()
            default: return .fail()
            }
        case .variable(let variable):
            switch variable {
            case .principal: return .ok(.entity(environment.principal))
            case .resource: return .ok(.entity(environment.resource))
            case .action: return .ok(.entity(environment.action.type))
            case .context: return .ok(environment.context)
            }
        case .slot(let slot):
            let linked = slot == .principal ? environment.principalSlot : environment.resourceSlot
            return .ok(linked.map { .entity($0) } ?? .anyEntity)
        case .ifThenElse(let condition, let then, let otherwise):
            let c = expect(condition, .anyBool, caps: caps)
            switch c.type {
            case .bool(.true)?:
                let a = typecheck(then, caps.union(c.caps))
                return Answer(type: a.type, caps: a.caps.union(c.caps), failed: a.failed || c.failed)
            case .bool(.false)?:
                let b = typecheck(otherwise, caps)
                return Answer(type: b.type, caps: b.caps, failed: b.failed || c.failed)
            default:
                let a = typecheck(then, caps.union(c.caps)), b = typecheck(otherwise, caps)
                guard let ta = a.type, let tb = b.type else { return .fail() }
                guard let type = ta.leastUpperBound(tb) else {
                    report(.incompatibleTypes, "the branches of `if` have incompatible types \(ta) and \(tb)")
                    return .fail()
                }
                return Answer(type: type, caps: b.caps.intersection(a.caps.union(c.caps)), failed: a.failed || b.failed || c.failed)
            }
        case .and(let left, let right):
            let a = expect(left, .anyBool, caps: caps)
            if a.type == .bool(.false) { return Answer(type: .bool(.false), caps: [], failed: a.failed) }
            let b = expect(right, .anyBool, caps: caps.union(a.caps))
            let failed = a.failed || b.failed
            guard a.type != nil, b.type != nil else { return Answer(type: .anyBool, caps: [], failed: true) }
            if b.type == .bool(.false) { return Answer(type: .bool(.false), caps: [], failed: failed) }
            if b.type == .bool(.true) { return Answer(type: a.type, caps: a.caps.union(b.caps), failed: failed) }
            if a.type == .bool(.true) { return Answer(type: b.type, caps: b.caps, failed: failed) }
            return Answer(type: .anyBool, caps: a.caps.union(b.caps), failed: failed)
        case .or(let left, let right):
            let a = expect(left, .anyBool, caps: caps)
            if a.type == .bool(.true) { return Answer(type: .bool(.true), caps: a.caps, failed: a.failed) }
            let b = expect(right, .anyBool, caps: caps)
            let failed = a.failed || b.failed
            guard a.type != nil, b.type != nil else { return Answer(type: .anyBool, caps: [], failed: true) }
            if b.type == .bool(.true) { return Answer(type: .bool(.true), caps: b.caps, failed: failed) }
            if b.type == .bool(.false) { return Answer(type: a.type, caps: a.caps, failed: failed) }
            if a.type == .bool(.false) { return Answer(type: b.type, caps: b.caps, failed: failed) }
            return Answer(type: .anyBool, caps: a.caps.intersection(b.caps), failed: failed)
        case .not(let operand):
            let a = expect(operand, .anyBool, caps: caps)
            let type: CType? = switch a.type {
            case .bool(.true)?: .bool(.false)
            case .bool(.false)?: .bool(.true)
            case nil: nil
            default: .anyBool
            }
            return Answer(type: type ?? .anyBool, caps: [], failed: a.failed)
        case .negate(let operand):
            let a = expect(operand, .long, caps: caps)
            return Answer(type: .long, caps: [], failed: a.failed)
        case .binary(let op, let left, let right):
            return binary(op, left, right, caps)
        case .getAttribute(let base, let attribute):
            let a = expectOneOf(base, [.anyEntity, .anyRecord], caps: caps)
            guard let type = a.type else { return .fail() }
            if let found = attributes(of: type)?[attribute] {
                if found.required || caps.contains(Capability(target: base, key: .attribute(attribute))) {
                    return Answer(type: found.type, caps: [], failed: a.failed)
                }
                report(.unsafeOptionalAttributeAccess, "attribute `\(attribute)` of \(type) is optional: guard the access with `has`")
                return .fail(found.type)
            }
            report(.unsafeAttributeAccess, "attribute `\(attribute)` does not exist on \(type)")
            return .fail()
        case .hasAttribute(let base, let path):
            let attribute = path[0]
            let a = expectOneOf(base, [.anyEntity, .anyRecord], caps: caps)
            guard let type = a.type else { return .fail(.anyBool) }
            let capability = Capability(target: base, key: .attribute(attribute))
            if let found = attributes(of: type)?[attribute] {
                let known: Bool
                if case .record = type, found.required { known = true } else { known = caps.contains(capability) }
                return Answer(type: known ? .bool(.true) : .anyBool, caps: [capability], failed: a.failed)
            }
            return Answer(type: mayHave(type, attribute) ? .anyBool : .bool(.false), caps: [], failed: a.failed)
        case .like(let operand, _):
            let a = expect(operand, .string, caps: caps)
            return Answer(type: .anyBool, caps: [], failed: a.failed)
        case .isType(let operand, let type, _):
            let a = expect(operand, .anyEntity, caps: caps)
            guard case .entity(let names)? = a.type else { return Answer(type: .anyBool, caps: [], failed: true) }
            guard let names else { return Answer(type: .anyBool, caps: [], failed: a.failed) }
            if !names.contains(type) { return Answer(type: .bool(.false), caps: [], failed: a.failed) }
            return Answer(type: names == [type] ? .bool(.true) : .anyBool, caps: [], failed: a.failed)
        case .set(let items):
            guard !items.isEmpty else {
                report(.emptySetForbidden, "empty set literals are forbidden in strict mode")
                return .fail()
            }
            var element: CType = .never
            var failed = false
            var types: [CType] = []
            for item in items {
                let answer = typecheck(item, caps)
                failed = failed || answer.failed
                guard let type = answer.type else { failed = true; continue }
                types.append(type)
            }
            guard types.count == items.count else { return .fail() }
            for type in types {
                guard let lub = element.leastUpperBound(type) else {
                    report(.incompatibleTypes, "the elements of a set literal have incompatible types")
                    return .fail()
                }
                element = lub
            }
            return Answer(type: .set(element), caps: [], failed: failed)
        case .record(let fields):
            var attributes: [CedarString: CType.Attribute] = [:]
            var failed = false, known = true
            for field in fields {
                let answer = typecheck(field.value, caps)
                failed = failed || answer.failed
                if let type = answer.type { attributes[field.key] = .init(type: type, required: true) } else { known = false }
            }
            guard known else { return .fail() }
            return Answer(type: .record(attributes, open: false), caps: [], failed: failed)
        case .call(let name, let arguments):
            return call(name.qualified, arguments, caps)
        case .method(let receiver, let name, let arguments):
            return method(receiver, name, arguments, caps)
        }
    }

    // MARK: operators

    mutating func binary(_ op: BinaryOperator, _ left: Expr, _ right: Expr, _ caps: Set<Capability>) -> Answer {
        switch op {
        case .equal:
            let a = typecheck(left, caps), b = typecheck(right, caps)
            var failed = a.failed || b.failed
            var type: CType = .anyBool
            if case .entity(let x?)? = a.type, case .entity(let y?)? = b.type, x.isDisjoint(with: y) {
                type = .bool(.false)
            } else if let x = literal(left), let y = literal(right) {
                type = .bool(x == y ? .true : .false)
            }
            if type == .anyBool, let ta = a.type, let tb = b.type, ta.leastUpperBound(tb) == nil {
                report(.incompatibleTypes, "`==` compares incompatible types \(ta) and \(tb)")
                failed = true
            }
            return Answer(type: type, caps: [], failed: failed)
        case .less, .lessOrEqual:
            let a = typecheck(left, caps)
            let leftSpan = lastChecked
            let b = typecheck(right, caps)
            let rightSpan = lastChecked
            var failed = a.failed || b.failed
            guard let ta = a.type, let tb = b.type else { return .fail(.anyBool) }
            func valid(_ t: CType) -> Bool { t == .long || t == .extension("datetime") || t == .extension("duration") }
            func unexpected(_ t: CType, _ expected: String, _ span: SourceSpan?) {
                report(.unexpectedType, "unexpected type: expected \(expected), got \(t)", at: span)
                failed = true
            }
            switch (ta, tb) {
            case (.never, .never): failed = true
            case (.never, let x): if !valid(x) { unexpected(x, "Long, datetime or duration", rightSpan) }
            case (let x, .never): if !valid(x) { unexpected(x, "Long, datetime or duration", leftSpan) }
            case _ where ta == tb && valid(ta): break
            case (.long, _): unexpected(tb, "Long", rightSpan)
            case (_, .long): unexpected(ta, "Long", leftSpan)
            case _ where valid(ta): unexpected(tb, ta.description, rightSpan)
            case _ where valid(tb): unexpected(ta, tb.description, leftSpan)
            default:
                unexpected(ta, "Long, datetime or duration", leftSpan)
                unexpected(tb, "Long, datetime or duration", rightSpan)
            }
            return Answer(type: .anyBool, caps: [], failed: failed)
        case .add, .subtract, .multiply:
            let a = expect(left, .long, caps: caps)
            let b = expect(right, .long, caps: caps)
            return Answer(type: .long, caps: [], failed: a.failed || b.failed)
        case .in:
            let a = expect(left, .anyEntity, caps: caps)
            let b = expectOneOf(right, [.set(.anyEntity), .anyEntity], caps: caps)
            if a.failed || b.failed { return .fail(.anyBool) }
            if isActionOperand(left), let rightLiterals = literalActions(right) {
                let actions = rightLiterals.filter { $0.type.basename == "Action" }
                guard !actions.isEmpty else { return .ok(.bool(.false)) }
                guard let below = validator.actions(in: actions) else { return .fail(.anyBool) }
                let lhs: EntityUID = if case .value(.entity(let uid)) = left { uid } else { environment.action }
                return .ok(.bool(below.contains(lhs) ? .true : .false))
            }
            guard case .entity(let lhs?)? = a.type else { return .ok(.anyBool) }
            let rhs: Set<Name>?
            switch b.type {
            case .entity(let names)?: rhs = names
            case .set(.entity(let names)?)?: rhs = names
            default: rhs = nil
            }
            guard let rhs else { return .ok(.anyBool) }
            return .ok(anyDescendant(lhs, rhs) ? .anyBool : .bool(.false))
        case .notEqual, .greater, .greaterOrEqual:
            // Desugared before typechecking; kept total.
            return typecheck(Validator.desugar(.binary(op, left, right), nil).0, caps)
        }
    }

    func isActionOperand(_ expr: Expr) -> Bool {
        switch expr {
        case .variable(.action): true
        case .value(.entity(let uid)): uid.type.basename == "Action"
        default: false
        }
    }

    /// The entity uids of a literal, `action`, or a set literal of only those; nil otherwise.
    func literalActions(_ expr: Expr) -> [EntityUID]? {
        func one(_ e: Expr) -> [EntityUID]? {
            switch e {
            case .variable(.action): [environment.action]
            case .value(.entity(let uid)): [uid]
            case .value: []
            default: nil
            }
        }
        if case .set(let items) = expr {
            var out: [EntityUID] = []
            for item in items {
                guard let uids = one(item) else { return nil }
                out += uids
            }
            return out
        }
        return one(expr)
    }

    func anyDescendant(_ lhs: Set<Name>, _ rhs: Set<Name>) -> Bool {
        for l in lhs {
            for r in rhs {
                if l == r || validator.entityTypes(in: r).contains(l) { return true }
                // An action of type r with a descendant action of type l.
                for action in schema.actionOrder where action.type == r {
                    if validator.actionsIn[action]?.contains(where: { $0.type == l }) ?? false { return true }
                }
            }
        }
        return false
    }

    /// The attributes a type is known to have: a record's, or an entity type's declared ones
    /// (none for actions and unknown types); nil for any entity.
    func attributes(of type: CType) -> [CedarString: CType.Attribute]? {
        switch type {
        case .record(let attributes, _): return attributes
        case .entity(nil): return nil
        case .entity(let names?):
            guard names.count == 1, let name = names.first else { return nil }
            return schema.entityTypes[name].map { CType.attributes($0.shape) } ?? [:]
        default: return nil
        }
    }

    func mayHave(_ type: CType, _ attribute: CedarString) -> Bool {
        switch type {
        case .never: return true
        case .entity(nil): return true
        case .entity(let names?):
            return names.contains { name in
                if name.basename != "Action" && schema.entityTypes[name] == nil { return true }
                return schema.entityTypes[name]?.shape.attributes[attribute] != nil
            }
        case .record(let attributes, let open): return open || attributes[attribute] != nil
        default: return false
        }
    }

    // MARK: methods and extension functions

    static let signatures: [String: (parameters: [CType], result: CType)] = [
        "decimal": ([.string], .extension("decimal")),
        "lessThan": ([.extension("decimal"), .extension("decimal")], .anyBool),
        "lessThanOrEqual": ([.extension("decimal"), .extension("decimal")], .anyBool),
        "greaterThan": ([.extension("decimal"), .extension("decimal")], .anyBool),
        "greaterThanOrEqual": ([.extension("decimal"), .extension("decimal")], .anyBool),
        "ip": ([.string], .extension("ipaddr")),
        "isIpv4": ([.extension("ipaddr")], .anyBool),
        "isIpv6": ([.extension("ipaddr")], .anyBool),
        "isLoopback": ([.extension("ipaddr")], .anyBool),
        "isMulticast": ([.extension("ipaddr")], .anyBool),
        "isInRange": ([.extension("ipaddr"), .extension("ipaddr")], .anyBool),
        "datetime": ([.string], .extension("datetime")),
        "duration": ([.string], .extension("duration")),
        "offset": ([.extension("datetime"), .extension("duration")], .extension("datetime")),
        "durationSince": ([.extension("datetime"), .extension("datetime")], .extension("duration")),
        "toDate": ([.extension("datetime")], .extension("datetime")),
        "toTime": ([.extension("datetime")], .extension("duration")),
        "toMilliseconds": ([.extension("duration")], .long),
        "toSeconds": ([.extension("duration")], .long),
        "toMinutes": ([.extension("duration")], .long),
        "toHours": ([.extension("duration")], .long),
        "toDays": ([.extension("duration")], .long),
    ]
    static let constructors: Set<String> = ["decimal", "ip", "datetime", "duration"]

    mutating func method(_ receiver: Expr, _ name: String, _ arguments: [Expr], _ caps: Set<Capability>) -> Answer {
        switch name {
        case "contains":
            let a = expect(receiver, .anySet, caps: caps)
            let b = typecheck(arguments[0], caps)
            var failed = a.failed || b.failed
            if case .set(let element?)? = a.type, let tb = b.type, element.leastUpperBound(tb) == nil {
                report(.incompatibleTypes, "`contains` looks for \(tb) in a set of \(element)")
                failed = true
            }
            return Answer(type: .anyBool, caps: [], failed: failed)
        case "containsAll", "containsAny":
            let a = expect(receiver, .anySet, caps: caps)
            let b = expect(arguments[0], .anySet, caps: caps)
            var failed = a.failed || b.failed
            if let ta = a.type, let tb = b.type, ta.leastUpperBound(tb) == nil {
                report(.incompatibleTypes, "`\(name)` compares sets of incompatible types \(ta) and \(tb)")
                failed = true
            }
            return Answer(type: .anyBool, caps: [], failed: failed)
        case "isEmpty":
            let a = expect(receiver, .anySet, caps: caps)
            return Answer(type: .anyBool, caps: [], failed: a.failed)
        case "hasTag", "getTag":
            let a = expect(receiver, .anyEntity, caps: caps)
            let b = expect(arguments[0], .string, caps: caps)
            let failed = a.failed || b.failed
            let capability = Capability(target: receiver, key: .tag(arguments[0]))
            let tagTypes = tagTypes(of: a.type)
            if name == "hasTag" {
                let type: CType = tagTypes.isEmpty ? .bool(.false) : (caps.contains(capability) ? .bool(.true) : .anyBool)
                return Answer(type: type, caps: [capability], failed: failed)
            }
            guard caps.contains(capability) else {
                report(.unsafeTagAccess, "tag access needs a `hasTag` guard")
                return .fail()
            }
            guard let first = tagTypes.first else {
                report(.noTagsAllowed, "the entity type declares no tags")
                return .fail()
            }
            var type = first
            for other in tagTypes.dropFirst() {
                guard let lub = type.leastUpperBound(other) else {
                    report(.incompatibleTypes, "the tags have incompatible types")
                    return .fail()
                }
                type = lub
            }
            return Answer(type: type, caps: [], failed: failed)
        default:
            return call(name, [receiver] + arguments, caps)
        }
    }

    func tagTypes(of type: CType?) -> [CType] {
        switch type {
        case .entity(nil)?: return schema.entityTypes.values.compactMap { $0.tags.map(CType.init) }
        case .entity(let names?)?: return names.sorted().compactMap { schema.entityTypes[$0]?.tags.map(CType.init) }
        default: return []
        }
    }

    mutating func call(_ name: String, _ arguments: [Expr], _ caps: Set<Capability>) -> Answer {
        guard let signature = Self.signatures[name] else {
            for argument in arguments { _ = typecheck(argument, caps) }
            return .fail()
        }
        var failed = false
        if arguments.count != signature.parameters.count {
            report(.wrongNumberArguments, "`\(name)` takes \(signature.parameters.count) argument(s), given \(arguments.count)")
            failed = true
        }
        if Self.constructors.contains(name) {
            if arguments.count == 1, case .value(.string(let text)) = arguments[0] {
                do {
                    _ = try Extensions.call(Name(name), [.string(text)])
                } catch {
                    report(.functionArgumentValidation, "invalid argument to `\(name)`: \(error.message)")
                    failed = true
                }
            }
            if arguments.contains(where: { if case .value = $0 { false } else { true } }) {
                report(.nonLiteralExtensionConstructor, "`\(name)` needs a literal argument in strict mode")
                failed = true
            }
        }
        if failed {
            for argument in arguments { _ = typecheck(argument, caps) }
            return .fail(signature.result)
        }
        for (argument, parameter) in zip(arguments, signature.parameters) {
            failed = expect(argument, parameter, caps: caps).failed || failed
        }
        return Answer(type: signature.result, caps: [], failed: failed)
    }
}
