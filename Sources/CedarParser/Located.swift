import CedarCore

/// Where each node of an expression was written: a tree shaped like the ``Expr`` it describes,
/// with the children of a node in ``Expr/children`` order. A parenthesised expression spans its
/// inside; every span's text parses back to the node it belongs to.
public struct ExprSpans: Sendable, Hashable {
    public let span: SourceSpan
    public let children: [ExprSpans]

    public init(span: SourceSpan, children: [ExprSpans]) {
        self.span = span
        self.children = children
    }
}

/// Where the parts of a policy were written.
public struct PolicySpans: Sendable, Hashable {
    /// From the first annotation (or the effect) to the closing `;`.
    public let policy: SourceSpan
    /// `principal …`, `action …` and `resource …` of the scope.
    public let principal: SourceSpan
    public let action: SourceSpan
    public let resource: SourceSpan
    /// The body of each `when`/`unless` clause, in order.
    public let conditions: [ExprSpans]

    public init(policy: SourceSpan, principal: SourceSpan, action: SourceSpan, resource: SourceSpan, conditions: [ExprSpans]) {
        self.policy = policy
        self.principal = principal
        self.action = action
        self.resource = resource
        self.conditions = conditions
    }
}

/// A policy as parsed from text, with where its parts were written (for diagnostics).
public struct LocatedPolicy: Sendable, Hashable {
    public let policy: Policy
    public let spans: PolicySpans

    public init(policy: Policy, spans: PolicySpans) {
        self.policy = policy
        self.spans = spans
    }
}
