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
///
/// Built once per policy set: an index from scope constraints (entity, ancestor, type and
/// wildcard, for principal, action and resource) to policies narrows each request to the
/// policies whose scope can match, so a decision does not evaluate every policy. The index only
/// ever over-approximates (each candidate is still evaluated in full), so decisions are the same
/// with and without it.
public struct Authorizer: Sendable {
    let policies: [(id: String, policy: Policy)]
    let index: PolicyIndex?

    /// An authorizer for `policies`; `indexed: false` evaluates every policy for every request
    /// (for checking the index).
    public init(policies: PolicySet, indexed: Bool = true) {
        self.policies = policies.policies
        index = indexed ? PolicyIndex(self.policies.map(\.policy)) : nil
    }

    public func isAuthorized(_ request: Request, entities: Entities) -> AuthorizationResponse {
        let evaluator = Evaluator(request: request, entities: entities)
        var permits: [String] = [], forbids: [String] = [], errors: [PolicyEvaluationError] = []
        func decide(_ position: Int) {
            let (id, policy) = policies[position]
            do {
                if try evaluator.satisfies(policy) {
                    if policy.effect == .permit { permits.append(id) } else { forbids.append(id) }
                }
            } catch {
                errors.append(PolicyEvaluationError(policyID: id, error: error))
            }
        }
        if let index {
            index.forEachCandidate(request, entities: entities, decide)
        } else {
            for position in policies.indices { decide(position) }
        }
        if !forbids.isEmpty { return AuthorizationResponse(decision: .deny, reasons: forbids, errors: errors) }
        if !permits.isEmpty { return AuthorizationResponse(decision: .allow, reasons: permits, errors: errors) }
        return AuthorizationResponse(decision: .deny, reasons: [], errors: errors)
    }
}

/// Policies by the entities, ancestors and types their scopes name, as bit sets.
struct PolicyIndex: Sendable {
    /// One dimension of the scope (principal, action or resource).
    struct Dimension: Sendable {
        var wildcard: Bits
        var byEntity: [EntityUID: Bits] = [:]
        var byAncestor: [EntityUID: Bits] = [:]
        var byType: [Name: Bits] = [:]

        init(words: Int) { wildcard = Bits(words: words) }

        mutating func add(_ position: Int, entity: EntityUID? = nil, ancestor: EntityUID? = nil, type: Name? = nil, words: Int) {
            if let entity { byEntity[entity, default: Bits(words: words)].insert(position) }
            else if let ancestor { byAncestor[ancestor, default: Bits(words: words)].insert(position) }
            else if let type { byType[type, default: Bits(words: words)].insert(position) }
            else { wildcard.insert(position) }
        }

        /// Every policy whose constraint in this dimension may match `uid`.
        func candidates(_ uid: EntityUID, entities: Entities) -> Bits {
            var bits = wildcard
            if let more = byEntity[uid] { bits.formUnion(more) }
            if let more = byType[uid.type] { bits.formUnion(more) }
            if !byAncestor.isEmpty {
                if let more = byAncestor[uid] { bits.formUnion(more) }
                if let record = entities.record(uid) {
                    for ancestor in record.ancestors {
                        if let more = byAncestor[ancestor] { bits.formUnion(more) }
                    }
                }
            }
            return bits
        }
    }

    let principal: Dimension
    let action: Dimension
    let resource: Dimension

    init(_ policies: [Policy]) {
        let words = (policies.count + 63) / 64
        var principal = Dimension(words: words), action = Dimension(words: words), resource = Dimension(words: words)
        func add(_ constraint: ScopeConstraint, _ position: Int, to dimension: inout Dimension) {
            switch constraint {
            case .equal(.entity(let uid)): dimension.add(position, entity: uid, words: words)
            case .in(.entity(let uid)), .isIn(_, .entity(let uid)): dimension.add(position, ancestor: uid, words: words)
            case .is(let type): dimension.add(position, type: type, words: words)
            case .any, .equal(.slot), .in(.slot), .isIn(_, .slot): dimension.add(position, words: words)
            }
        }
        for (position, policy) in policies.enumerated() {
            add(policy.principal, position, to: &principal)
            add(policy.resource, position, to: &resource)
            switch policy.action {
            case .any: action.add(position, words: words)
            case .equal(let uid): action.add(position, entity: uid, words: words)
            case .in(let uid): action.add(position, ancestor: uid, words: words)
            case .inSet(let uids):
                for uid in uids { action.add(position, ancestor: uid, words: words) }
            }
        }
        self.principal = principal
        self.action = action
        self.resource = resource
    }

    /// Calls `body` with the position of every policy whose scope may match, in policy order.
    func forEachCandidate(_ request: Request, entities: Entities, _ body: (Int) -> Void) {
        var bits = principal.candidates(request.principal, entities: entities)
        bits.formIntersection(action.candidates(request.action, entities: entities))
        bits.formIntersection(resource.candidates(request.resource, entities: entities))
        bits.forEach(body)
    }
}

/// A fixed-size bit set of policy positions.
struct Bits: Sendable {
    var words: [UInt64]
    init(words: Int) { self.words = Array(repeating: 0, count: words) }

    mutating func insert(_ position: Int) { words[position >> 6] |= 1 << UInt64(position & 63) }

    mutating func formUnion(_ other: Bits) {
        for i in words.indices { words[i] |= other.words[i] }
    }

    mutating func formIntersection(_ other: Bits) {
        for i in words.indices { words[i] &= other.words[i] }
    }

    func forEach(_ body: (Int) -> Void) {
        for (i, word) in words.enumerated() {
            var w = word
            while w != 0 {
                let bit = w.trailingZeroBitCount
                body(i << 6 | bit)
                w &= w - 1
            }
        }
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
        case .in(.entity(let target)): return isDescendant(uid, of: target)
        case .is(let type): return uid.type == type
        case .isIn(let type, .entity(let target)): return uid.type == type && isDescendant(uid, of: target)
        case .equal(.slot), .in(.slot), .isIn(_, .slot): return false
        }
    }

    func matches(_ constraint: ActionConstraint, _ uid: EntityUID) -> Bool {
        switch constraint {
        case .any: return true
        case .equal(let target): return uid == target
        case .in(let target): return isDescendant(uid, of: target)
        case .inSet(let targets): return targets.contains { isDescendant(uid, of: $0) }
        }
    }
}
