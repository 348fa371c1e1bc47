import CedarCore
import CedarParser
import Testing

/// Policy texts that the real Cedar accepts or refuses (recorded from cedarpy 4.12.2's
/// `policies_to_json_str`), and what a refusal must carry: a position and a caret under it.
@Suite struct ParserTests {
    static let recorded: [(text: String, parses: Bool)] = [
        ("permit(principal, action, resource);", true),
        ("permit(principal, action, resource,);", true),
        ("permit(principal,action,resource) when { principal.permit == 1 };", true),
        ("permit(principal,action,resource) when { {when: 1, principal: 2} has when };", true),
        ("permit(principal,action,resource) when { principal.if == 1 };", false),
        ("permit(principal,action,resource) when { {if: 1} has if };", false),
        ("permit(principal,action,resource) when { {\"if\": 1} has \"if\" };", true),
        ("permit(principal,action,resource) when { principal::\"x\" == principal };", true),
        ("permit(principal,action,resource) when { if::\"x\" == principal };", false),
        ("permit(principal,action,resource) when { __cedar::\"x\" == principal };", false),
        ("permit(principal,action,resource) when { A::__cedar::\"x\" == principal };", false),
        ("permit(principal,action,resource) when { !-1 };", false),
        ("permit(principal,action,resource) when { !!!!true };", true),
        ("permit(principal,action,resource) when { !!!!!true };", false),
        ("permit(principal,action,resource) when { ----1 == 1 };", true),
        ("permit(principal,action,resource) when { -----1 == 1 };", false),
        ("permit(principal,action,resource) when { 1 < 2 < 3 };", false),
        ("permit(principal,action,resource) when { 1 == 1 == true };", false),
        ("permit(principal,action,resource) when { principal has a == true };", false),
        ("permit(principal,action,resource) when { 1 + if true then 1 else 2 == 2 };", false),
        ("permit(principal,action,resource) when { (if true then 1 else 2) == 1 };", true),
        ("permit(principal,action,resource) when { 9223372036854775808 == 1 };", false),
        ("permit(principal,action,resource) when { -9223372036854775808 == 1 };", true),
        ("permit(principal,action,resource) when { -(9223372036854775808) == 1 };", false),
        ("permit(principal,action,resource) when { 18446744073709551616 == 1 };", false),
        ("permit(principal,action,resource) when { 007 == 7 };", true),
        ("permit(principal,action,resource) when { 1.5 == 1 };", false),
        ("permit(principal,action,resource) when { 1 / 2 == 0 };", false),
        ("permit(principal,action,resource) when { 1 % 2 == 0 };", false),
        ("permit(principal,action,resource) when { [1,] == [1] };", true),
        ("permit(principal,action,resource) when { {a: 1,} == {a: 1} };", true),
        ("permit(principal,action,resource) when { {a: 1, \"a\": 2} == {a: 1} };", false),
        ("permit(principal,action,resource) when { ip(\"1.2.3.4\",).isIpv4() };", true),
        ("permit(principal,action,resource) when { \"\\a\" == \"\" };", false),
        ("permit(principal,action,resource) when { \"\\x7f\" == \"\" };", true),
        ("permit(principal,action,resource) when { \"\\x80\" == \"\" };", false),
        ("permit(principal,action,resource) when { \"\\u{1_0}\" == \"\" };", true),
        ("permit(principal,action,resource) when { \"\\u{_10}\" == \"\" };", false),
        ("permit(principal,action,resource) when { \"\\u{}\" == \"\" };", false),
        ("permit(principal,action,resource) when { \"\\u{1000000}\" == \"\" };", false),
        ("permit(principal,action,resource) when { \"\\u{d800}\" == \"\" };", false),
        ("permit(principal,action,resource) when { \"a\" like \"\\*\" };", true),
        ("permit(principal,action,resource) when { \"a\" == \"\\*\" };", false),
        ("permit(principal,action,resource) when { [1].contains(1, 2) };", false),
        ("permit(principal,action,resource) when { [].isEmpty(1) };", false),
        ("permit(principal,action,resource) when { contains([1], 1) };", false),
        ("permit(principal,action,resource) when { \"1.0\".decimal() };", false),
        ("permit(principal,action,resource) when { foo(1) };", false),
        ("permit(principal,action,resource) when { A::ip(\"1.2.3.4\") };", false),
        ("permit(principal,action,resource) when { __cedar::ip(\"1.2.3.4\") };", false),
        ("permit(principal,action,resource) when { principal.foo() };", false),
        ("permit(principal,action,resource) when { ip(\"1.2.3.4\").isIpv4(1) };", true),
        ("permit(principal,action,resource) when { foo };", false),
        ("permit(principal,action,resource) when { ?principal == principal };", false),
        ("permit(principal == ?principal,action,resource);", true),
        ("permit(principal == ?resource,action,resource);", false),
        ("permit(principal,action == ?principal,resource);", false),
        ("permit(principal,action,resource in ?resource);", true),
        ("permit(principal is User in ?principal,action,resource);", true),
        ("permit(principal in User::\"a\" is User,action,resource);", false),
        ("permit(principal is User == User::\"a\",action,resource);", false),
        ("permit(principal,action is Action,resource);", false),
        ("permit(principal,action == User::\"a\",resource);", false),
        ("permit(principal,action in [Action::\"a\", NS::Action::\"b\"],resource);", true),
        ("permit(principal,action in [],resource);", true),
        ("permit(principal,action in Action::\"a\",resource);", true),
        ("permit(principal,action == [Action::\"a\"],resource);", false),
        ("permit(principal in [User::\"a\"],action,resource);", false),
        ("permit(principal == (User::\"a\"),action,resource);", true),
        ("permit(principal: User,action,resource);", false),
        ("permit(action,principal,resource);", false),
        ("permit(principal,action);", false),
        ("permit(principal,action,resource,context);", false),
        ("allow(principal,action,resource);", false),
        ("permit(principal,action,resource) when {};", false),
        ("permit(principal,action,resource) where { true };", false),
        ("permit(principal,action,resource)\n@id(\"a\") @id(\"b\") permit(principal,action,resource);", false),
        ("@id permit(principal,action,resource);", true),
        ("@if(\"x\") permit(principal,action,resource);", true),
        ("@a(1) permit(principal,action,resource);", false),
        ("permit(principal,action,resource) when { principal has a.b.c };", true),
        ("permit(principal,action,resource) when { principal has a.if };", false),
        ("permit(principal,action,resource) when { principal has \"a\".b };", false),
        ("permit(principal,action,resource) when { principal has (a) };", false),
        ("permit(principal,action,resource) when { \"x\" like (\"a\") };", false),
        ("permit(principal,action,resource) when { principal is principal };", true),
        ("permit(principal,action,resource) when { principal is A::B in [User::\"a\"] };", true),
        ("permit(principal,action,resource) when { principal[\"a\"][\"b\"] == 1 };", true),
        ("permit(principal,action,resource) when { principal[a] == 1 };", false),
        ("permit(principal,action,resource) when { User.foo == 1 };", false),
        ("permit(principal,action,resource) when { User::{} == 1 };", false),
        ("permit(principal,action,resource) when { principal(1) };", false),
        ("permit(principal,action,resource) when { true } unless { false };", true),
        ("permit(principal,action,resource) when { true } // comment;", false),
        ("permit(principal,action,resource) /* block */ when { true };", false),
        ("permit(principal,action,resource) when { \"a\" like \"a\" like \"b\" };", false),
    ]

    @Test(arguments: recorded.indices)
    func acceptsExactlyWhatCedarAccepts(index: Int) {
        let (text, parses) = Self.recorded[index]
        do {
            _ = try CedarParser.policies(text)
            #expect(parses, "Cedar refuses this policy but Writ accepted it: \(text)")
        } catch {
            #expect(!parses, "Cedar accepts this policy but Writ refused it: \(text)\n\(error)")
            #expect(error.position.line >= 1 && error.position.column >= 1)
            #expect(error.snippet.contains("^"))
        }
    }

    @Test func errorsPointAtTheProblem() throws {
        let text = "permit(principal, action, resource)\nwhen { principal.if == 1 };"
        do {
            _ = try CedarParser.policies(text)
            Issue.record("accepted a reserved attribute name")
        } catch {
            #expect(error.position.line == 2)
            #expect(error.position.column == 18)
            #expect(error.message == "this identifier is reserved and cannot be used: if")
            #expect(error.snippet == "  | when { principal.if == 1 };\n  |                  ^")
        }
    }

    @Test func deepNestingIsAPositionedErrorNotACrash() {
        for opener in ["(", "[", "{a: ", "!(", "if true then ("] {
            let depth = 100_000
            let text = "permit(principal, action, resource) when { " + String(repeating: opener, count: depth) + "true"
            do {
                _ = try CedarParser.policies(text)
                Issue.record("\(opener): accepted")
            } catch {
                #expect(error.message.contains("nested more than"), "\(opener): \(error.message)")
                #expect(error.position.line == 1)
            }
        }
    }

    @Test func templatesLinkOnlyWithTheirSlots() throws {
        let template = try CedarParser.policies("permit(principal == ?principal, action, resource in ?resource);")[0]
        #expect(template.slots == [.principal, .resource])
        var set = PolicySet()
        try set.add(template, id: "t")
        let alice = EntityUID(type: Name("User"), id: "alice"), folder = EntityUID(type: Name("Folder"), id: "f")
        try set.link(template: "t", id: "link0", values: [.principal: alice, .resource: folder])
        #expect(throws: PolicySetError.self) { try set.link(template: "t", id: "link1", values: [.principal: alice]) }
        #expect(throws: PolicySetError.self) { try set.link(template: "nope", id: "link2", values: [:]) }
        #expect(throws: PolicySetError.self) { try set.link(template: "t", id: "link0", values: [.principal: alice, .resource: folder]) }
        let entities = try Entities([Entity(uid: EntityUID(type: Name("Doc"), id: "d"), parents: [folder])])
        let allowed = Authorizer(policies: set).isAuthorized(Request(principal: alice, action: EntityUID(type: Name("Action"), id: "read"),
                                                                     resource: EntityUID(type: Name("Doc"), id: "d")), entities: entities)
        #expect(allowed.decision == .allow && allowed.reasons == ["link0"])
    }

    @Test func entityGraphsWithCyclesAreRefused() {
        let a = EntityUID(type: Name("G"), id: "a"), b = EntityUID(type: Name("G"), id: "b")
        #expect(throws: EntitiesError.self) { try Entities([Entity(uid: a, parents: [b]), Entity(uid: b, parents: [a])]) }
        #expect(throws: EntitiesError.self) { try Entities([Entity(uid: a, parents: [a])]) }
        #expect(throws: EntitiesError.self) { try Entities([Entity(uid: a), Entity(uid: a, attributes: ["x": .long(1)])]) }
    }

    @Test func deepHierarchiesAreClosedTransitively() throws {
        var entities: [Entity] = []
        for level in 0..<2000 {
            entities.append(Entity(uid: EntityUID(type: Name("G"), id: CedarString("\(level)")),
                                   parents: level == 1999 ? [] : [EntityUID(type: Name("G"), id: CedarString("\(level + 1)"))]))
        }
        let store = try Entities(entities)
        #expect(store.isDescendant(EntityUID(type: Name("G"), id: "0"), of: EntityUID(type: Name("G"), id: "1999")))
        #expect(!store.isDescendant(EntityUID(type: Name("G"), id: "1999"), of: EntityUID(type: Name("G"), id: "0")))
    }
}
