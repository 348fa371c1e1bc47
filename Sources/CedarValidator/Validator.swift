import CedarCore

/// One validation finding: the policy, what kind, and a message.
public struct ValidationDiagnostic: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        case unrecognizedEntityType = "unrecognized_entity_type"
        case unrecognizedActionID = "unrecognized_action_id"
        case invalidActionApplication = "invalid_action_application"
        case invalidEnumEntity = "invalid_enum_entity"
        case unexpectedType = "unexpected_type"
        case incompatibleTypes = "incompatible_types"
        case unsafeAttributeAccess = "unsafe_attribute_access"
        case unsafeOptionalAttributeAccess = "unsafe_optional_attribute_access"
        case unsafeTagAccess = "unsafe_tag_access"
        case noTagsAllowed = "no_tags_allowed"
        case wrongNumberArguments = "wrong_number_arguments"
        case functionArgumentValidation = "function_argument_validation"
        case emptySetForbidden = "empty_set_forbidden"
        case nonLiteralExtensionConstructor = "non_literal_extension_constructor"
        /// A warning: the policy can never apply.
        case impossiblePolicy = "impossible_policy"
    }
    public let policyID: String
    public let kind: Kind
    public let message: String

    public var description: String { "\(policyID): \(message)" }
}

/// The outcome of validating a policy set: it passes when there are no errors (warnings do not
/// fail it).
public struct ValidationResult: Sendable {
    public let errors: [ValidationDiagnostic]
    public let warnings: [ValidationDiagnostic]
    public var passed: Bool { errors.isEmpty }
}

/// Cedar's policy validator in strict mode: scope checks against the schema (entity types,
/// action ids, enumerated ids, which actions apply to which principals and resources) and a
/// typecheck of every policy in every request environment the schema allows.
public struct Validator: Sendable {
    public let schema: Schema
    /// Each entity type with the declared types below it (itself included).
    let typesIn: [Name: Set<Name>]
    /// Each action with the actions below it (itself included).
    let actionsIn: [EntityUID: Set<EntityUID>]

    public init(schema: Schema) {
        self.schema = schema
        var typesIn: [Name: Set<Name>] = [:]
        // Ancestor types by closure of memberOf.
        var ancestors: [Name: Set<Name>] = [:]
        func closure(_ name: Name, _ visiting: inout Set<Name>) -> Set<Name> {
            if let known = ancestors[name] { return known }
            guard visiting.insert(name).inserted else { return [] }
            var out = Set<Name>()
            for parent in schema.entityTypes[name]?.memberOf ?? [] {
                out.insert(parent)
                out.formUnion(closure(parent, &visiting))
            }
            ancestors[name] = out
            return out
        }
        for name in schema.entityTypes.keys {
            var visiting = Set<Name>()
            typesIn[name, default: []].insert(name)
            for ancestor in closure(name, &visiting) { typesIn[ancestor, default: []].insert(name) }
        }
        self.typesIn = typesIn
        var actionsIn: [EntityUID: Set<EntityUID>] = [:]
        let hierarchy = (try? Entities(schema.actionEntities)) ?? Entities()
        for uid in schema.actionOrder {
            actionsIn[uid, default: []].insert(uid)
            for ancestor in hierarchy[uid]?.ancestors ?? [] { actionsIn[ancestor, default: []].insert(uid) }
        }
        self.actionsIn = actionsIn
    }

    func isKnownEntityType(_ name: Name) -> Bool { name.basename == "Action" || schema.entityTypes[name] != nil }

    /// The declared entity types at or below `name`.
    func entityTypes(in name: Name) -> Set<Name> { typesIn[name] ?? [name] }

    /// The actions of `uids` and every action below them; nil when one is not declared.
    func actions(in uids: [EntityUID]) -> Set<EntityUID>? {
        var out = Set<EntityUID>()
        for uid in uids {
            guard let below = actionsIn[uid] else { return nil }
            out.formUnion(below)
        }
        return out
    }

    /// Validates every static policy and template of `policies`, and the links.
    public func validate(_ policies: PolicySet) -> ValidationResult {
        var errors: [ValidationDiagnostic] = [], warnings: [ValidationDiagnostic] = []
        var templates = Array(policies.templates).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let statics = policies.policies.filter { policies.links[$0.id] == nil }
        templates = statics.map { ($0.id, $0.policy) } + templates
        for (id, policy) in templates {
            let (e, w) = validate(policy, id: id)
            errors += e
            warnings += w
        }
        for (id, policy) in policies.policies where policies.links[id] != nil {
            for constraint in [policy.principal, policy.resource] {
                if case .equal(.entity(let uid)) = constraint, !isKnownEntityType(uid.type) {
                    errors.append(.init(policyID: id, kind: .unrecognizedEntityType, message: "unrecognized entity type `\(uid.type)`"))
                }
                if case .in(.entity(let uid)) = constraint, !isKnownEntityType(uid.type) {
                    errors.append(.init(policyID: id, kind: .unrecognizedEntityType, message: "unrecognized entity type `\(uid.type)`"))
                }
                if case .isIn(_, .entity(let uid)) = constraint, !isKnownEntityType(uid.type) {
                    errors.append(.init(policyID: id, kind: .unrecognizedEntityType, message: "unrecognized entity type `\(uid.type)`"))
                }
            }
            if !actionApplies(policy) {
                errors.append(.init(policyID: id, kind: .invalidActionApplication, message: "no action in the scope applies to the principal and resource types the scope allows"))
            }
        }
        return ValidationResult(errors: errors, warnings: warnings)
    }

    func validate(_ policy: Policy, id: String) -> ([ValidationDiagnostic], [ValidationDiagnostic]) {
        var errors = Set<ValidationDiagnostic>()
        func report(_ kind: ValidationDiagnostic.Kind, _ message: String) {
            errors.insert(ValidationDiagnostic(policyID: id, kind: kind, message: message))
        }
        // Scope and literal checks.
        var uids: [EntityUID] = [], types: [Name] = []
        for constraint in [policy.principal, policy.resource] {
            switch constraint {
            case .equal(.entity(let uid)), .in(.entity(let uid)): uids.append(uid); types.append(uid.type)
            case .isIn(let type, .entity(let uid)): uids.append(uid); types.append(uid.type); types.append(type)
            case .is(let type), .isIn(let type, .slot): types.append(type)
            default: break
            }
        }
        switch policy.action {
        case .any: break
        case .equal(let uid), .in(let uid): uids.append(uid); types.append(uid.type)
        case .inSet(let list): uids += list; types += list.map(\.type)
        }
        for condition in policy.conditions {
            Self.walk(condition.body) { expr in
                if case .value(.entity(let uid)) = expr { uids.append(uid); types.append(uid.type) }
                if case .isType(_, let type, _) = expr { types.append(type) }
            }
        }
        for type in Set(types) where !isKnownEntityType(type) {
            report(.unrecognizedEntityType, "unrecognized entity type `\(type)`")
        }
        for uid in Set(uids) where uid.type.basename == "Action" && schema.actions[uid] == nil {
            report(.unrecognizedActionID, "unrecognized action `\(uid)`")
        }
        for uid in Set(uids) where uid.type.basename != "Action" {
            if let ids = schema.entityTypes[uid.type]?.enumeration, !ids.contains(uid.id) {
                report(.invalidEnumEntity, "`\(uid)` is not one of the enumerated ids of `\(uid.type)`")
            }
        }
        if !actionApplies(policy) {
            report(.invalidActionApplication, "no action in the scope applies to the principal and resource types the scope allows")
        }
        // The typecheck, environment by environment.
        let condition = Self.condition(of: policy)
        var relevant = false
        for environment in environments(for: policy) {
            var checker = TypeChecker(validator: self, environment: environment)
            let answer = checker.expect(condition, .anyBool, caps: [])
            for (kind, message) in checker.errors { report(kind, message) }
            if answer.type != .bool(.false) { relevant = true }
        }
        var warnings: [ValidationDiagnostic] = []
        if !relevant {
            warnings.append(ValidationDiagnostic(policyID: id, kind: .impossiblePolicy, message: "the policy can never apply to any request the schema allows"))
        }
        return (errors.sorted { $0.message < $1.message }, warnings)
    }

    /// Whether some action of the scope applies to a principal type and a resource type the
    /// scope allows.
    func actionApplies(_ policy: Policy) -> Bool {
        let actions: Set<EntityUID>
        switch policy.action {
        case .any: actions = Set(schema.actionOrder)
        case .equal(let uid): actions = schema.actions[uid] == nil ? [] : [uid]
        case .in(let uid): actions = self.actions(in: [uid]) ?? []
        case .inSet(let list): actions = self.actions(in: list) ?? []
        }
        let principals = scopeTypes(policy.principal), resources = scopeTypes(policy.resource)
        for action in actions {
            guard let applies = schema.actions[action]?.appliesTo else { continue }
            if !principals.isDisjoint(with: applies.principals), !resources.isDisjoint(with: applies.resources) { return true }
        }
        return false
    }

    func scopeTypes(_ constraint: ScopeConstraint) -> Set<Name> {
        let all = Set(schema.entityTypes.keys)
        switch constraint {
        case .any, .equal(.slot), .in(.slot): return all
        case .equal(.entity(let uid)): return [uid.type]
        case .in(.entity(let uid)): return entityTypes(in: uid.type)
        case .is(let type), .isIn(let type, .slot): return schema.entityTypes[type] != nil ? [type] : []
        case .isIn(let type, .entity(let uid)): return entityTypes(in: uid.type).filter { $0 == type }
        }
    }

    /// One request environment: principal, action and resource types, the context, and the
    /// types template slots stand for.
    struct Environment {
        let principal: Name
        let action: EntityUID
        let resource: Name
        let context: CType
        let principalSlot: Name?
        let resourceSlot: Name?
    }

    func environments(for policy: Policy) -> [Environment] {
        var out: [Environment] = []
        for action in schema.actionOrder {
            guard let applies = schema.actions[action]?.appliesTo else { continue }
            let context = CType.record(CType.attributes(applies.context), open: false)
            for principal in applies.principals {
                for resource in applies.resources {
                    let principalSlots = slotTypes(policy.principal, .principal, principal)
                    let resourceSlots = slotTypes(policy.resource, .resource, resource)
                    for p in principalSlots {
                        for r in resourceSlots {
                            out.append(Environment(principal: principal, action: action, resource: resource, context: context, principalSlot: p, resourceSlot: r))
                        }
                    }
                }
            }
        }
        return out
    }

    /// The types a slot may be linked with in an environment whose variable has type `type`.
    func slotTypes(_ constraint: ScopeConstraint, _ slot: Slot, _ type: Name) -> [Name?] {
        switch constraint {
        case .equal(.slot(slot)): return [type]
        case .in(.slot(slot)), .isIn(_, .slot(slot)):
            var out: [Name?] = [type]
            for candidate in schema.entityTypes.keys.sorted() where candidate != type && entityTypes(in: candidate).contains(type) {
                out.append(candidate)
            }
            return out
        default: return [nil]
        }
    }

    /// The policy as one expression, desugared as Cedar does before typechecking:
    /// `principal && (action && (resource && body))`.
    static func condition(of policy: Policy) -> Expr {
        func scope(_ variable: Variable, _ constraint: ScopeConstraint) -> Expr {
            func reference(_ r: EntityReference) -> Expr {
                switch r {
                case .entity(let uid): .value(.entity(uid))
                case .slot(let slot): .slot(slot)
                }
            }
            switch constraint {
            case .any: return .value(.bool(true))
            case .equal(let r): return .binary(.equal, .variable(variable), reference(r))
            case .in(let r): return .binary(.in, .variable(variable), reference(r))
            case .is(let type): return .isType(.variable(variable), type, nil)
            case .isIn(let type, let r): return .and(.isType(.variable(variable), type, nil), .binary(.in, .variable(variable), reference(r)))
            }
        }
        let action: Expr
        switch policy.action {
        case .any: action = .value(.bool(true))
        case .equal(let uid): action = .binary(.equal, .variable(.action), .value(.entity(uid)))
        case .in(let uid): action = .binary(.in, .variable(.action), .set([.value(.entity(uid))]))
        case .inSet(let list): action = .binary(.in, .variable(.action), .set(list.map { .value(.entity($0)) }))
        }
        var body: Expr = .value(.bool(true))
        if !policy.conditions.isEmpty {
            let parts = policy.conditions.map { c -> Expr in
                let e = desugar(c.body)
                return c.kind == .when ? e : .not(e)
            }
            body = parts.dropLast().reversed().reduce(parts.last!) { .and($1, $0) }
        }
        return .and(scope(.principal, policy.principal), .and(action, .and(scope(.resource, policy.resource), body)))
    }

    /// Cedar's desugaring: `!=`, `>`, `>=` as negations; `has a.b` as a chain of `has`;
    /// `is T in x` as `is` and `in`.
    static func desugar(_ expr: Expr) -> Expr {
        switch expr {
        case .value, .variable, .slot: return expr
        case .not(let e): return .not(desugar(e))
        case .negate(let e): return .negate(desugar(e))
        case .binary(let op, let a, let b):
            let (x, y) = (desugar(a), desugar(b))
            switch op {
            case .notEqual: return .not(.binary(.equal, x, y))
            case .greater: return .not(.binary(.lessOrEqual, x, y))
            case .greaterOrEqual: return .not(.binary(.less, x, y))
            default: return .binary(op, x, y)
            }
        case .and(let a, let b): return .and(desugar(a), desugar(b))
        case .or(let a, let b): return .or(desugar(a), desugar(b))
        case .ifThenElse(let c, let t, let e): return .ifThenElse(desugar(c), desugar(t), desugar(e))
        case .getAttribute(let e, let a): return .getAttribute(desugar(e), a)
        case .hasAttribute(let e, let path):
            let base = desugar(e)
            var result: Expr = .hasAttribute(base, [path[0]])
            var target = base
            for index in 1..<max(1, path.count) {
                target = .getAttribute(target, path[index - 1])
                result = .and(result, .hasAttribute(target, [path[index]]))
            }
            return result
        case .like(let e, let p): return .like(desugar(e), p)
        case .isType(let e, let type, let container):
            let x = desugar(e)
            guard let container else { return .isType(x, type, nil) }
            return .and(.isType(x, type, nil), .binary(.in, x, desugar(container)))
        case .set(let items): return .set(items.map(desugar))
        case .record(let fields): return .record(fields.map { RecordField($0.key, desugar($0.value)) })
        case .call(let name, let args): return .call(name, args.map(desugar))
        case .method(let e, let name, let args): return .method(desugar(e), name, args.map(desugar))
        }
    }

    /// Calls `visit` on `expr` and every subexpression.
    static func walk(_ expr: Expr, _ visit: (Expr) -> Void) {
        visit(expr)
        switch expr {
        case .value, .variable, .slot: break
        case .not(let e), .negate(let e), .getAttribute(let e, _), .hasAttribute(let e, _), .like(let e, _): walk(e, visit)
        case .binary(_, let a, let b), .and(let a, let b), .or(let a, let b): walk(a, visit); walk(b, visit)
        case .ifThenElse(let a, let b, let c): walk(a, visit); walk(b, visit); walk(c, visit)
        case .isType(let e, _, let c): walk(e, visit); if let c { walk(c, visit) }
        case .set(let items), .call(_, let items): for item in items { walk(item, visit) }
        case .record(let fields): for field in fields { walk(field.value, visit) }
        case .method(let e, _, let args): walk(e, visit); for arg in args { walk(arg, visit) }
        }
    }
}
