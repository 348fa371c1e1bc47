import CedarCore
import CedarParser

/// One validation finding: the policy, what kind, a message, and where it was written when the
/// policy came from text.
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
    /// The offending expression or scope element (the whole policy for findings about it as a
    /// whole); nil for policies that were not parsed from text.
    public let span: SourceSpan?

    public init(policyID: String, kind: Kind, message: String, span: SourceSpan? = nil) {
        self.policyID = policyID
        self.kind = kind
        self.message = message
        self.span = span
    }

    public var description: String { "\(policyID): \(message)" }

    /// Findings in source order (unlocated ones last), then by message.
    static func ordered(_ lhs: ValidationDiagnostic, _ rhs: ValidationDiagnostic) -> Bool {
        let l = lhs.span.map { ($0.start.offset, $0.end.offset) } ?? (Int.max, Int.max)
        let r = rhs.span.map { ($0.start.offset, $0.end.offset) } ?? (Int.max, Int.max)
        if l != r { return l < r }
        return lhs.message < rhs.message
    }
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

    /// Validates every static policy and template of `policies`, and the links. `spans` holds,
    /// by policy or template id, where each was written (``CedarParser/locatedPolicies(_:)``);
    /// findings in those policies carry the span of what they are about.
    public func validate(_ policies: PolicySet, spans: [String: PolicySpans] = [:]) -> ValidationResult {
        var errors: [ValidationDiagnostic] = [], warnings: [ValidationDiagnostic] = []
        var templates = Array(policies.templates).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let statics = policies.policies.filter { policies.links[$0.id] == nil }
        templates = statics.map { ($0.id, $0.policy) } + templates
        for (id, policy) in templates {
            let (e, w) = validate(policy, id: id, spans: spans[id])
            errors += e
            warnings += w
        }
        for (id, policy) in policies.policies {
            guard let link = policies.links[id] else { continue }
            // A link is located at its template's scope.
            let located = spans[link.template]
            for (constraint, span) in [(policy.principal, located?.principal), (policy.resource, located?.resource)] {
                switch constraint {
                case .equal(.entity(let uid)), .in(.entity(let uid)), .isIn(_, .entity(let uid)):
                    if !isKnownEntityType(uid.type) {
                        errors.append(.init(policyID: id, kind: .unrecognizedEntityType, message: "unrecognized entity type `\(uid.type)`", span: span))
                    }
                default: break
                }
            }
            if !actionApplies(policy) {
                errors.append(.init(policyID: id, kind: .invalidActionApplication,
                                    message: "no action in the scope applies to the principal and resource types the scope allows", span: located?.policy))
            }
        }
        return ValidationResult(errors: errors, warnings: warnings)
    }

    func validate(_ policy: Policy, id: String, spans: PolicySpans?) -> ([ValidationDiagnostic], [ValidationDiagnostic]) {
        var errors = Set<ValidationDiagnostic>()
        func report(_ kind: ValidationDiagnostic.Kind, _ message: String, _ span: SourceSpan?) {
            errors.insert(ValidationDiagnostic(policyID: id, kind: kind, message: message, span: span))
        }
        // Scope and literal checks, each finding at the first place its entity or type is written.
        var uids: [(EntityUID, SourceSpan?)] = [], types: [(Name, SourceSpan?)] = []
        for (constraint, span) in [(policy.principal, spans?.principal), (policy.resource, spans?.resource)] {
            switch constraint {
            case .equal(.entity(let uid)), .in(.entity(let uid)): uids.append((uid, span)); types.append((uid.type, span))
            case .isIn(let type, .entity(let uid)): uids.append((uid, span)); types.append((uid.type, span)); types.append((type, span))
            case .is(let type), .isIn(let type, .slot): types.append((type, span))
            default: break
            }
        }
        switch policy.action {
        case .any: break
        case .equal(let uid), .in(let uid): uids.append((uid, spans?.action)); types.append((uid.type, spans?.action))
        case .inSet(let list): uids += list.map { ($0, spans?.action) }; types += list.map { ($0.type, spans?.action) }
        }
        for (index, condition) in policy.conditions.enumerated() {
            Self.walk(condition.body, spans?.conditions[safe: index]) { expr, span in
                if case .value(.entity(let uid)) = expr { uids.append((uid, span)); types.append((uid.type, span)) }
                if case .isType(_, let type, _) = expr { types.append((type, span)) }
            }
        }
        var seenTypes = Set<Name>(), seenUIDs = Set<EntityUID>()
        for (type, span) in types where seenTypes.insert(type).inserted && !isKnownEntityType(type) {
            report(.unrecognizedEntityType, "unrecognized entity type `\(type)`", span)
        }
        for (uid, span) in uids where seenUIDs.insert(uid).inserted {
            if uid.type.basename == "Action" {
                if schema.actions[uid] == nil { report(.unrecognizedActionID, "unrecognized action `\(uid)`", span) }
            } else if let ids = schema.entityTypes[uid.type]?.enumeration, !ids.contains(uid.id) {
                report(.invalidEnumEntity, "`\(uid)` is not one of the enumerated ids of `\(uid.type)`", span)
            }
        }
        if !actionApplies(policy) {
            report(.invalidActionApplication, "no action in the scope applies to the principal and resource types the scope allows", spans?.policy)
        }
        // The typecheck, environment by environment.
        let (condition, conditionSpans) = Self.condition(of: policy, spans: spans)
        var relevant = false
        for environment in environments(for: policy) {
            var checker = TypeChecker(validator: self, environment: environment, spans: conditionSpans)
            let answer = checker.expect(condition, .anyBool, caps: [])
            for finding in checker.errors { report(finding.kind, finding.message, finding.span) }
            if answer.type != .bool(.false) { relevant = true }
        }
        var warnings: [ValidationDiagnostic] = []
        if !relevant {
            warnings.append(ValidationDiagnostic(policyID: id, kind: .impossiblePolicy, message: "the policy can never apply to any request the schema allows", span: spans?.policy))
        }
        return (errors.sorted(by: ValidationDiagnostic.ordered), warnings)
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
    /// `principal && (action && (resource && body))`; with `spans`, the tree of where each node
    /// of it was written (a scope test at its scope element, a desugared node at what it came from).
    static func condition(of policy: Policy, spans: PolicySpans? = nil) -> (Expr, ExprSpans?) {
        func leaf(_ span: SourceSpan?) -> ExprSpans? { span.map { ExprSpans(span: $0, children: []) } }
        func node(_ span: SourceSpan?, _ children: [ExprSpans?]) -> ExprSpans? {
            span.map { span in ExprSpans(span: span, children: children.map { $0 ?? ExprSpans(span: span, children: []) }) }
        }
        func scope(_ variable: Variable, _ constraint: ScopeConstraint, _ span: SourceSpan?) -> (Expr, ExprSpans?) {
            func reference(_ r: EntityReference) -> Expr {
                switch r {
                case .entity(let uid): .value(.entity(uid))
                case .slot(let slot): .slot(slot)
                }
            }
            let pair = node(span, [leaf(span), leaf(span)])
            switch constraint {
            case .any: return (.value(.bool(true)), leaf(span))
            case .equal(let r): return (.binary(.equal, .variable(variable), reference(r)), pair)
            case .in(let r): return (.binary(.in, .variable(variable), reference(r)), pair)
            case .is(let type): return (.isType(.variable(variable), type, nil), node(span, [leaf(span)]))
            case .isIn(let type, let r):
                return (.and(.isType(.variable(variable), type, nil), .binary(.in, .variable(variable), reference(r))),
                        node(span, [node(span, [leaf(span)]), pair]))
            }
        }
        let action: Expr, actionSpans: ExprSpans?
        let at = spans?.action
        switch policy.action {
        case .any: (action, actionSpans) = (.value(.bool(true)), leaf(at))
        case .equal(let uid): (action, actionSpans) = (.binary(.equal, .variable(.action), .value(.entity(uid))), node(at, [leaf(at), leaf(at)]))
        case .in(let uid): (action, actionSpans) = (.binary(.in, .variable(.action), .set([.value(.entity(uid))])), node(at, [leaf(at), node(at, [leaf(at)])]))
        case .inSet(let list):
            (action, actionSpans) = (.binary(.in, .variable(.action), .set(list.map { .value(.entity($0)) })),
                                     node(at, [leaf(at), node(at, list.map { _ in leaf(at) })]))
        }
        var body: Expr = .value(.bool(true))
        var bodySpans = leaf(spans?.policy)
        if !policy.conditions.isEmpty {
            let parts = policy.conditions.enumerated().map { index, c -> (Expr, ExprSpans?) in
                let (e, located) = desugar(c.body, spans?.conditions[safe: index])
                return c.kind == .when ? (e, located) : (.not(e), located.map { ExprSpans(span: $0.span, children: [$0]) })
            }
            (body, bodySpans) = parts.dropLast().reversed().reduce(parts.last!) { inner, part in
                (.and(part.0, inner.0), node(spans?.policy, [part.1, inner.1]))
            }
        }
        let (principal, principalSpans) = scope(.principal, policy.principal, spans?.principal)
        let (resource, resourceSpans) = scope(.resource, policy.resource, spans?.resource)
        let whole = spans?.policy
        return (.and(principal, .and(action, .and(resource, body))),
                node(whole, [principalSpans, node(whole, [actionSpans, node(whole, [resourceSpans, bodySpans])])]))
    }

    /// Cedar's desugaring: `!=`, `>`, `>=` as negations; `has a.b` as a chain of `has`;
    /// `is T in x` as `is` and `in`. The spans follow: a node made by desugaring is located
    /// where the node it came from was written.
    static func desugar(_ expr: Expr, _ at: ExprSpans?) -> (Expr, ExprSpans?) {
        func child(_ index: Int) -> ExprSpans? { at?.children[safe: index] }
        func located(_ children: [ExprSpans?]) -> ExprSpans? {
            at.map { at in ExprSpans(span: at.span, children: children.map { $0 ?? ExprSpans(span: at.span, children: []) }) }
        }
        func each(_ items: [Expr], from offset: Int = 0) -> ([Expr], [ExprSpans?]) {
            var exprs: [Expr] = [], spans: [ExprSpans?] = []
            for (index, item) in items.enumerated() {
                let (e, s) = desugar(item, child(offset + index))
                exprs.append(e)
                spans.append(s)
            }
            return (exprs, spans)
        }
        switch expr {
        case .value, .variable, .slot: return (expr, at)
        case .not(let e):
            let (x, s) = desugar(e, child(0))
            return (.not(x), located([s]))
        case .negate(let e):
            let (x, s) = desugar(e, child(0))
            return (.negate(x), located([s]))
        case .binary(let op, let a, let b):
            let (x, sx) = desugar(a, child(0)), (y, sy) = desugar(b, child(1))
            switch op {
            case .notEqual: return (.not(.binary(.equal, x, y)), located([located([sx, sy])]))
            case .greater: return (.not(.binary(.lessOrEqual, x, y)), located([located([sx, sy])]))
            case .greaterOrEqual: return (.not(.binary(.less, x, y)), located([located([sx, sy])]))
            default: return (.binary(op, x, y), located([sx, sy]))
            }
        case .and(let a, let b):
            let (x, sx) = desugar(a, child(0)), (y, sy) = desugar(b, child(1))
            return (.and(x, y), located([sx, sy]))
        case .or(let a, let b):
            let (x, sx) = desugar(a, child(0)), (y, sy) = desugar(b, child(1))
            return (.or(x, y), located([sx, sy]))
        case .ifThenElse(let c, let t, let e):
            let (items, spans) = each([c, t, e])
            return (.ifThenElse(items[0], items[1], items[2]), located(spans))
        case .getAttribute(let e, let a):
            let (x, s) = desugar(e, child(0))
            return (.getAttribute(x, a), located([s]))
        case .hasAttribute(let e, let path):
            let (base, baseSpans) = desugar(e, child(0))
            var result: Expr = .hasAttribute(base, [path[0]])
            var resultSpans = located([baseSpans])
            var target = base
            var targetSpans = baseSpans
            for index in 1..<max(1, path.count) {
                target = .getAttribute(target, path[index - 1])
                targetSpans = located([targetSpans])
                result = .and(result, .hasAttribute(target, [path[index]]))
                resultSpans = located([resultSpans, located([targetSpans])])
            }
            return (result, resultSpans)
        case .like(let e, let p):
            let (x, s) = desugar(e, child(0))
            return (.like(x, p), located([s]))
        case .isType(let e, let type, let container):
            let (x, sx) = desugar(e, child(0))
            guard let container else { return (.isType(x, type, nil), located([sx])) }
            let (y, sy) = desugar(container, child(1))
            return (.and(.isType(x, type, nil), .binary(.in, x, y)), located([located([sx]), located([sx, sy])]))
        case .set(let items):
            let (exprs, spans) = each(items)
            return (.set(exprs), located(spans))
        case .record(let fields):
            let (exprs, spans) = each(fields.map(\.value))
            return (.record(zip(fields, exprs).map { RecordField($0.key, $1) }), located(spans))
        case .call(let name, let args):
            let (exprs, spans) = each(args)
            return (.call(name, exprs), located(spans))
        case .method(let e, let name, let args):
            let (receiver, sr) = desugar(e, child(0))
            let (exprs, spans) = each(args, from: 1)
            return (.method(receiver, name, exprs), located([sr] + spans))
        }
    }

    /// Calls `visit` on `expr` and every subexpression, with where each was written.
    static func walk(_ expr: Expr, _ spans: ExprSpans?, _ visit: (Expr, SourceSpan?) -> Void) {
        visit(expr, spans?.span)
        for (index, child) in expr.children.enumerated() {
            walk(child, spans?.children[safe: index] ?? spans, visit)
        }
    }
}

extension Array {
    /// The element at `index`, or nil past the ends.
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
