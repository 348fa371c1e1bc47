/// Allow or deny.
public enum Decision: String, Sendable, Hashable {
    case allow, deny
}

/// A policy that could not be evaluated for a request, and why.
public struct PolicyEvaluationError: Sendable, Hashable {
    public let policyID: String
    public let error: EvaluationError
}

/// The answer to a request: the decision, the policies that determined it (the satisfied
/// forbids on a deny, the satisfied permits on an allow, none on a default deny) and the
/// policies that were skipped because their evaluation failed.
public struct AuthorizationResponse: Sendable, Hashable {
    public let decision: Decision
    public let reasons: [String]
    public let errors: [PolicyEvaluationError]
}

/// Why a policy set cannot be assembled.
public struct PolicySetError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case duplicateID = "duplicate_id"
        case unknownTemplate = "unknown_template"
        case linkMismatch = "link_mismatch"
        case notATemplate = "not_a_template"
    }
    public let code: Code
    public let message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}

/// Static policies, templates and template links, each under a unique id.
public struct PolicySet: Sendable {
    /// Static policies and linked templates, in insertion order: what is evaluated.
    public private(set) var policies: [(id: String, policy: Policy)] = []
    /// Templates by id.
    public private(set) var templates: [String: Policy] = [:]
    /// Template links: link id → (template id, slot values).
    public private(set) var links: [String: (template: String, values: [Slot: EntityUID])] = [:]
    private var ids: Set<String> = []

    public init() {}

    /// Adds a static policy or a template (a policy with slots).
    public mutating func add(_ policy: Policy, id: String) throws(PolicySetError) {
        guard ids.insert(id).inserted else { throw PolicySetError(.duplicateID, "duplicate policy id `\(id)`") }
        if policy.isTemplate {
            templates[id] = policy
        } else {
            policies.append((id, policy))
        }
    }

    /// Links template `templateID` with `values` for its slots under `id`.
    public mutating func link(template templateID: String, id: String, values: [Slot: EntityUID]) throws(PolicySetError) {
        guard let template = templates[templateID] else {
            if policies.contains(where: { $0.id == templateID }) {
                throw PolicySetError(.notATemplate, "`\(templateID)` is a static policy, not a template")
            }
            throw PolicySetError(.unknownTemplate, "no template with id `\(templateID)`")
        }
        guard let linked = template.linked(values) else {
            let want = template.slots.map(\.rawValue).sorted().joined(separator: ", ")
            let got = values.keys.map(\.rawValue).sorted().joined(separator: ", ")
            throw PolicySetError(.linkMismatch, "template `\(templateID)` has slots [\(want)] but the link gives [\(got)]")
        }
        guard ids.insert(id).inserted else { throw PolicySetError(.duplicateID, "duplicate policy id `\(id)`") }
        links[id] = (templateID, values)
        policies.append((id, linked))
    }
}

/// Decides requests against a policy set with Cedar's rules: default deny; a satisfied forbid
/// overrides every permit; a policy whose evaluation fails is skipped and reported.
public struct Authorizer: Sendable {
    public init() {}

    public func isAuthorized(_ request: Request, entities: Entities, policies: PolicySet) -> AuthorizationResponse {
        let evaluator = Evaluator(request: request, entities: entities)
        var permits: [String] = [], forbids: [String] = [], errors: [PolicyEvaluationError] = []
        for (id, policy) in policies.policies {
            do {
                if try evaluator.satisfies(policy) {
                    if policy.effect == .permit { permits.append(id) } else { forbids.append(id) }
                }
            } catch {
                errors.append(PolicyEvaluationError(policyID: id, error: error))
            }
        }
        if !forbids.isEmpty { return AuthorizationResponse(decision: .deny, reasons: forbids, errors: errors) }
        if !permits.isEmpty { return AuthorizationResponse(decision: .allow, reasons: permits, errors: errors) }
        return AuthorizationResponse(decision: .deny, reasons: [], errors: errors)
    }
}

extension Evaluator {
    /// Whether `policy`'s scope matches the request and every condition holds (scope first,
    /// then the conditions in order, stopping at the first that fails).
    public func satisfies(_ policy: Policy) throws(EvaluationError) -> Bool {
        guard matches(policy.principal, request.principal),
              matches(policy.action, request.action),
              matches(policy.resource, request.resource) else { return false }
        for condition in policy.conditions {
            let value = try evaluate(condition.body)
            guard case .bool(let holds) = value else { throw .type(expected: "bool", got: value) }
            if holds != (condition.kind == .when) { return false }
        }
        return true
    }

    func matches(_ constraint: ScopeConstraint, _ uid: EntityUID) -> Bool {
        switch constraint {
        case .any: return true
        case .equal(.entity(let target)): return uid == target
        case .in(.entity(let target)): return entities.isDescendant(uid, of: target)
        case .is(let type): return uid.type == type
        case .isIn(let type, .entity(let target)): return uid.type == type && entities.isDescendant(uid, of: target)
        case .equal(.slot), .in(.slot), .isIn(_, .slot): return false
        }
    }

    func matches(_ constraint: ActionConstraint, _ uid: EntityUID) -> Bool {
        switch constraint {
        case .any: return true
        case .equal(let target): return uid == target
        case .in(let target): return entities.isDescendant(uid, of: target)
        case .inSet(let targets): return targets.contains { entities.isDescendant(uid, of: $0) }
        }
    }
}
