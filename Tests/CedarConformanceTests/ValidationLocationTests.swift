import CedarCore
import CedarParser
import CedarValidator
import Testing

/// Validation findings point at what they are about, as a compiler's would: the operand of the
/// wrong type, the unguarded attribute access, the scope element naming an unknown type.
@Suite struct ValidationLocationTests {
    static let schema = """
        entity Group;
        entity User in [Group] = { department: String, manager?: User };
        entity Doc = { owner: User, public: Bool };
        action read, write appliesTo { principal: [User], resource: [Doc], context: { mfa: Bool } };
        """

    /// The findings of `text` as (policy, kind, line:column, the text under the span).
    static func findings(_ text: String) throws -> [(String, ValidationDiagnostic.Kind, String, String)] {
        let located = try CedarParser.locatedPolicies(text)
        var set = PolicySet()
        var spans: [String: PolicySpans] = [:]
        for (index, policy) in located.enumerated() {
            try set.add(policy.policy, id: "policy\(index)")
            spans["policy\(index)"] = policy.spans
        }
        #expect(SpanChecks.problems(located, in: text).isEmpty, "\(SpanChecks.problems(located, in: text))")
        let result = Validator(schema: try CedarSchemaParser.parse(schema)).validate(set, spans: spans)
        let scalars = Array(text.unicodeScalars)
        return (result.errors + result.warnings).map { finding in
            let span = finding.span!
            return (finding.policyID, finding.kind, span.description, SpanChecks.text(span, in: scalars))
        }
    }

    @Test func findingsPointAtTheOffendingExpression() throws {
        let found = try Self.findings("""
            permit(principal, action == Action::"read", resource)
            when { principal.department == "x" && principal.manager == resource.owner };
            forbid(
              principal == Robot::"r", action, resource);
            permit(principal, action, resource)
            unless { context.mfa || resource.public > 3 };
            permit(principal, action, resource) when { 1 + "one" == 2 && [] == [] };
            permit(principal, action, resource)
              when { principal has manager && principal.manager.department like "a*" }
              when { if context.mfa then principal.nickname == "n" else true };
            """)
        let expected: [(String, ValidationDiagnostic.Kind, String, String)] = [
            ("policy0", .unsafeOptionalAttributeAccess, "2:39", "principal.manager"),
            ("policy1", .invalidActionApplication, "3:1", "forbid(\n  principal == Robot::\"r\", action, resource);"),
            ("policy1", .unrecognizedEntityType, "4:3", #"principal == Robot::"r""#),
            ("policy2", .unexpectedType, "6:25", "resource.public"),
            ("policy3", .unexpectedType, "7:48", #""one""#),
            ("policy3", .emptySetForbidden, "7:62", "[]"),
            ("policy3", .emptySetForbidden, "7:68", "[]"),
            ("policy4", .unsafeAttributeAccess, "10:30", "principal.nickname"),
        ]
        #expect(found.count == expected.count, "\(found)")
        for (got, want) in zip(found, expected) {
            #expect(got.0 == want.0 && got.1 == want.1 && got.2 == want.2 && got.3 == want.3, "got \(got), expected \(want)")
        }
    }

    /// A policy that can never apply is flagged at the whole policy; a link at its template.
    @Test func wholePolicyFindingsAndLinks() throws {
        let found = try Self.findings("""
            permit(principal, action, resource) when { principal is Doc };
            """)
        #expect(found.count == 1 && found[0].1 == .impossiblePolicy && found[0].2 == "1:1"
                && found[0].3 == "permit(principal, action, resource) when { principal is Doc };", "\(found)")

        let text = "permit(principal == ?principal, action == Action::\"read\", resource);"
        let located = try CedarParser.locatedPolicies(text)
        var set = PolicySet()
        try set.add(located[0].policy, id: "t")
        try set.link(template: "t", id: "link0", values: [.principal: EntityUID(type: try CedarParser.name("Robot"), id: "r")])
        let result = Validator(schema: try CedarSchemaParser.parse(Self.schema)).validate(set, spans: ["t": located[0].spans])
        let link = result.errors.first { $0.policyID == "link0" }
        #expect(link?.kind == .unrecognizedEntityType && link?.span?.description == "1:8", "\(result.errors)")
    }
}
