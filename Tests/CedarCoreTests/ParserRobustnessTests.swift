import CedarCore
import CedarParser
import Testing
import WritTestSupport

/// 100,000 random and mutated policy texts per run: the parser never crashes, every rejection
/// carries a position inside the text and a caret, and whatever parses can be evaluated.
@Suite struct ParserRobustnessTests {

    static let seeds: [String] = ParserTests.recorded.map(\.text) + CedarpyRecordedTests.recorded.map {
        "permit(principal, action, resource) when { \($0.condition) };"
    } + [
        "@id(\"a\") permit(principal == ?principal, action in [Action::\"a\", Action::\"b\"], resource is Doc in ?resource) unless { context.x.y has z };",
        "forbid(principal is User in Group::\"g\", action == NS::Action::\"x\", resource) when { if principal.a then [1, -2, {k: \"v\"}] else {} }",
    ]

    static let fragments: [String] = [
        "(", ")", "[", "]", "{", "}", ",", ";", ".", "::", "@", "?principal", "?resource", "?x", "==", "!=", "<", "<=", ">", ">=",
        "&&", "||", "!", "-", "+", "*", "/", "%", "=", "in", "has", "like", "is", "if", "then", "else", "true", "false",
        "principal", "action", "resource", "context", "permit", "forbid", "when", "unless", "User", "Action", "\"", "\\", "\"a\"",
        "\"\\u{", "\"\\*\"", "9223372036854775808", "-9223372036854775808", "0", "ip(", "decimal(", ".contains(", ".getTag(",
        "__cedar", "//", "\n", "\r", "\t", " ", "é", "\u{0}", "\u{200B}", "𝔘",
    ]

    static func mutate(_ text: String, _ rng: inout SeededRandom) -> String {
        var scalars = Array(text.unicodeScalars)
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let position = scalars.isEmpty ? 0 : Int.random(in: 0...scalars.count, using: &rng)
            switch Int.random(in: 0..<6, using: &rng) {
            case 0 where !scalars.isEmpty:
                let end = min(scalars.count, position + Int.random(in: 1...8, using: &rng))
                if position < end { scalars.removeSubrange(position..<end) }
            case 1:
                scalars.insert(contentsOf: fragments.randomElement(using: &rng)!.unicodeScalars, at: position)
            case 2 where scalars.count > 1:
                let other = Int.random(in: 0..<scalars.count, using: &rng)
                if position < scalars.count { scalars.swapAt(position, other) }
            case 3:
                let scalar = Unicode.Scalar(UInt32.random(in: 0...0x2FF, using: &rng)) ?? "x"
                scalars.insert(scalar, at: position)
            case 4 where position < scalars.count:
                let end = min(scalars.count, position + Int.random(in: 1...12, using: &rng))
                scalars.insert(contentsOf: scalars[position..<end], at: end)
            default:
                scalars = Array(scalars.prefix(position))
            }
        }
        return String(String.UnicodeScalarView(scalars))
    }

    static func soup(_ rng: inout SeededRandom) -> String {
        (0..<Int.random(in: 1...40, using: &rng)).map { _ in fragments.randomElement(using: &rng)! }.joined(separator: Bool.random(using: &rng) ? " " : "")
    }

    @Test func hundredThousandInputsNeverCrashTheParser() {
        let request = Request(principal: EntityUID(type: Name("User"), id: "a"), action: EntityUID(type: Name("Action"), id: "a"),
                              resource: EntityUID(type: Name("Doc"), id: "d"))
        for seed in TestEnvironment.seeds(fixed: [1]) {
            print("ParserRobustnessTests seed \(seed)")
            var rng = SeededRandom(seed: seed)
            var accepted = 0, refused = 0
            for round in 0..<100_000 {
                let text = round % 5 == 4 ? Self.soup(&rng) : Self.mutate(Self.seeds.randomElement(using: &rng)!, &rng)
                do {
                    var set = PolicySet()
                    for (index, policy) in try CedarParser.policies(text).enumerated() { try? set.add(policy, id: "policy\(index)") }
                    _ = Authorizer(policies: set).isAuthorized(request, entities: Entities())
                    accepted += 1
                } catch {
                    refused += 1
                    let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).count
                    let ok = error.position.line >= 1 && error.position.line <= lines && error.position.column >= 1 && error.snippet.contains("^") && !error.message.isEmpty
                    if !ok { Issue.record("seed \(seed) round \(round): unpositioned rejection of \(text.debugDescription): \(error)") }
                }
            }
            print("ParserRobustnessTests seed \(seed): \(accepted) parsed, \(refused) refused with a position")
            #expect(accepted > 1_000 && refused > 1_000)
        }
    }
}
