import CedarCore
import CedarParser
import CedarValidator

/// Checks that what the parser says about where things were written is true: every expression
/// node has a span, shaped like the tree, whose text parses back to that very node; the policy's
/// span parses back to the policy; the scope spans start with their keyword.
enum SpanChecks {
    static func text(_ span: SourceSpan, in scalars: [Unicode.Scalar]) -> String {
        String(String.UnicodeScalarView(scalars[span.start.offset..<span.end.offset]))
    }

    /// Problems with the spans of `located`, parsed from `source`; empty when all hold.
    static func problems(_ located: [LocatedPolicy], in source: String) -> [String] {
        let scalars = Array(source.unicodeScalars)
        var problems: [String] = []
        func check(_ expr: Expr, _ spans: ExprSpans, _ where_: String) {
            let written = text(spans.span, in: scalars)
            if (try? CedarParser.expression(written)) != expr {
                problems.append("\(where_): the span \(spans.span) `\(written)` does not parse back to its node")
            }
            let children = expr.children
            guard children.count == spans.children.count else {
                problems.append("\(where_): \(children.count) children but \(spans.children.count) spans at \(spans.span)")
                return
            }
            for (index, child) in children.enumerated() {
                let inner = spans.children[index]
                if inner.span.start < spans.span.start || inner.span.end > spans.span.end {
                    problems.append("\(where_): a child's span \(inner.span) lies outside its parent's \(spans.span)")
                }
                check(child, inner, where_)
            }
        }
        for (index, policy) in located.enumerated() {
            let where_ = "policy\(index)"
            let written = text(policy.spans.policy, in: scalars)
            if (try? CedarParser.policies(written)) != [policy.policy] {
                problems.append("\(where_): the policy's span \(policy.spans.policy) does not parse back to it")
            }
            for (span, keyword) in [(policy.spans.principal, "principal"), (policy.spans.action, "action"), (policy.spans.resource, "resource")]
            where !text(span, in: scalars).hasPrefix(keyword) {
                problems.append("\(where_): the \(keyword) scope's span \(span) reads `\(text(span, in: scalars))`")
            }
            guard policy.spans.conditions.count == policy.policy.conditions.count else {
                problems.append("\(where_): \(policy.policy.conditions.count) conditions but \(policy.spans.conditions.count) spans")
                continue
            }
            for (condition, spans) in zip(policy.policy.conditions, policy.spans.conditions) { check(condition.body, spans, where_) }
        }
        return problems
    }

    /// Validation findings that are not located inside the policy (or, for a link, the
    /// template) they are about.
    static func unlocated(_ result: ValidationResult, _ spans: [String: PolicySpans], _ set: PolicySet) -> [String] {
        (result.errors + result.warnings).compactMap { finding in
            let owner = set.links[finding.policyID]?.template ?? finding.policyID
            guard let policy = spans[owner]?.policy else { return nil }
            guard let span = finding.span else { return "\(finding): no location" }
            return span.start >= policy.start && span.end <= policy.end ? nil : "\(finding): at \(span), outside its policy \(policy)"
        }
    }
}
