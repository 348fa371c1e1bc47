import CedarCore
import CedarParser
import CedarValidator
import Foundation
import StrictJSON
import WritTestSupport

/// The real Cedar (cedarpy, through `Tests/interop/cedar_oracle.py --serve`) for a whole run:
/// one Python process answering batches of cases written to files.
final class CedarOracle {
    let process = Process()
    let commands: FileHandle
    let replies: FileHandle
    let directory: URL
    private var batch = 0

    init(python: String, directory: URL) throws {
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let stdin = Pipe(), stdout = Pipe()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [TestEnvironment.interopScript("cedar_oracle.py"), "--serve"]
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        commands = stdin.fileHandleForWriting
        replies = stdout.fileHandleForReading
    }

    /// Cedar's answer to each case (`{"policies", "expanded", "schema", "entities", "requests"}`),
    /// in order: `{"parses", "json", "validates", "answers": [{"decision", "reasons", "errors"}]}`.
    func answers(_ cases: [JSONValue]) throws -> [JSONValue] {
        batch += 1
        let input = directory.appendingPathComponent("batch-\(batch).jsonl"), output = directory.appendingPathComponent("answers-\(batch).jsonl")
        defer {
            try? FileManager.default.removeItem(at: input)
            try? FileManager.default.removeItem(at: output)
        }
        try cases.map { $0.text + "\n" }.joined().write(to: input, atomically: true, encoding: .utf8)
        let command = JSONValue.object([JSONMember("input", .string(input.path)), JSONMember("output", .string(output.path))]).text + "\n"
        try commands.write(contentsOf: Data(command.utf8))
        var reply = Data()
        while reply.last != UInt8(ascii: "\n") {
            guard let byte = try replies.read(upToCount: 1), !byte.isEmpty else {
                throw IntegrationCorpus.Failure(description: "cedar_oracle.py ended without answering batch \(batch)")
            }
            reply.append(byte)
        }
        guard reply == Data("done\n".utf8) else { throw IntegrationCorpus.Failure(description: "cedar_oracle.py answered `\(String(decoding: reply, as: UTF8.self))`") }
        let answers = try String(contentsOf: output, encoding: .utf8).split(separator: "\n").map { try JSONParser.parse(String($0)) }
        guard answers.count == cases.count else { throw IntegrationCorpus.Failure(description: "cedar_oracle.py answered \(answers.count) of \(cases.count) cases") }
        return answers
    }

    func close() {
        try? commands.close()
        process.waitUntilExit()
    }
}

/// Narrows a disagreement with the real Cedar down to a small case that still shows it, and
/// writes that case in the format of Cedar's integration tests.
///
/// A case is policy texts, entities and at most one request. Each round proposes every one-step
/// simplification — drop a policy, an entity, a `when`/`unless` clause, a context attribute, an
/// entity's attributes or parents; widen a scope element to "any"; replace an expression by one
/// of its operands or by `true`/`false` — asks Writ and Cedar about all of them (one batch), and
/// keeps the first on which they still disagree, until none does. Every step makes the case
/// strictly smaller, so narrowing ends.
struct Minimiser {
    enum Question: String {
        /// Whether the text parses.
        case parse
        /// The policies in Cedar's JSON policy format.
        case json
        /// Whether the policies pass strict validation.
        case validation
        /// Decision, reasons and errors for the request (templates already linked, written out).
        case decision
    }

    struct Case {
        var policies: [String]
        var entities: [JSONValue]
        /// `{"principal": "T::\"id\"", "action", "resource", "context"}`; decisions only.
        var request: JSONValue?
    }

    typealias Decide = (PolicySet, Request, Entities) -> AuthorizationResponse

    let question: Question
    let schema: String
    let validator: Validator
    let reader: SchemaJSON
    let oracle: CedarOracle
    /// How Writ decides; the real authorizer (a test plants a bug here to see the minimiser work).
    let decide: Decide

    init(question: Question, schema: String, oracle: CedarOracle,
         decide: @escaping Decide = { set, request, entities in Authorizer(policies: set).isAuthorized(request, entities: entities) }) throws {
        self.question = question
        self.schema = schema
        let parsed = try CedarSchemaParser.parse(schema)
        self.validator = Validator(schema: parsed)
        self.reader = SchemaJSON(schema: parsed)
        self.oracle = oracle
        self.decide = decide
    }

    /// The case as cedar_oracle.py reads it.
    func oracleCase(_ c: Case) -> JSONValue {
        let text = c.policies.joined(separator: "\n")
        return .object([JSONMember("policies", .string(text)), JSONMember("expanded", .string(text)), JSONMember("schema", .string(schema)),
                        JSONMember("entities", .array(c.entities)), JSONMember("requests", .array(c.request.map { [$0] } ?? []))])
    }

    /// How Writ and Cedar disagree on the question for `c`, or nil when they agree (or the case
    /// does not reach the question, such as a decision on text that does not parse).
    func disagreement(_ c: Case, cedar: JSONValue) -> String? {
        let text = c.policies.joined(separator: "\n")
        let parsed = try? CedarParser.policies(text)
        if question == .parse {
            guard case .bool(let parses)? = cedar["parses"], parses != (parsed != nil) else { return nil }
            return "Writ \(parsed != nil ? "parses" : "refuses") the text, Cedar \(parses ? "parses" : "refuses") it"
        }
        guard let parsed, cedar["parses"] == .bool(true), let set = try? Self.policySet(parsed) else { return nil }
        switch question {
        case .parse:
            return nil
        case .json:
            let ours = DifferentialTests.canonical(PolicyJSON.json(set)), theirs = DifferentialTests.canonical(cedar["json"] ?? .null)
            return ours == theirs ? nil : "JSON form: Writ \(ours), Cedar \(theirs)"
        case .validation:
            guard case .bool(let validates)? = cedar["validates"] else { return nil }
            let ours = validator.validate(set)
            return ours.passed == validates ? nil
                : "validation: Writ \(ours.passed ? "passes" : "fails: \(ours.errors.map(\.description).joined(separator: "; "))"), Cedar \(validates ? "passes" : "fails")"
        case .decision:
            guard let request = c.request, case .array(let answers)? = cedar["answers"], let expected = answers.first,
                  let uids = Self.uids(request), let store = try? Entities(try CedarJSON.entities(.array(c.entities))),
                  let context = try? CedarJSON.context(request["context"]) else { return nil }
            let response = decide(set, Request(principal: uids.0, action: uids.1, resource: uids.2, context: context), store)
            let ours = Self.describe(response.decision.rawValue, response.reasons, response.errors.map(\.policyID))
            let theirs = Self.describe(expected["decision"].flatMap { if case .string(let s) = $0 { s } else { nil } } ?? "?",
                                       Self.strings(expected["reasons"]), Self.strings(expected["errors"]))
            return ours == theirs ? nil : "decision: Writ \(ours) (\(response.errors.map { "\($0.policyID): \($0.error.message)" })), Cedar \(theirs)"
        }
    }

    /// Whether Cedar's integration-test harness can read the case: entities and the request's
    /// context conform to the schema (it reads both through it).
    func loadsAsIntegrationTest(_ c: Case) -> Bool {
        guard (try? Entities(try reader.entities(.array(c.entities)))) != nil else { return false }
        guard let request = c.request else { return true }
        guard let (_, action, _) = Self.uids(request) else { return false }
        return (try? reader.context(request["context"], action: action)) != nil
    }

    static func policySet(_ policies: [Policy]) throws -> PolicySet {
        var set = PolicySet()
        for (index, policy) in policies.enumerated() { try set.add(policy, id: "policy\(index)") }
        return set
    }

    static func uids(_ request: JSONValue) -> (EntityUID, EntityUID, EntityUID)? {
        guard case .string(let p)? = request["principal"], case .string(let a)? = request["action"], case .string(let r)? = request["resource"],
              let principal = try? CedarParser.entityUID(p), let action = try? CedarParser.entityUID(a), let resource = try? CedarParser.entityUID(r) else { return nil }
        return (principal, action, resource)
    }

    static func strings(_ value: JSONValue?) -> [String] {
        guard case .array(let items)? = value else { return [] }
        return items.compactMap { if case .string(let s) = $0 { s } else { nil } }
    }

    static func describe(_ decision: String, _ reasons: [String], _ errors: [String]) -> String {
        "\(decision) reasons \(reasons.sorted()) errors \(errors.sorted())"
    }

    // MARK: simplifications

    /// Every one-step simplification of `c`, the biggest steps first.
    func candidates(_ c: Case) -> [Case] {
        var out: [Case] = []
        func with(_ change: (inout Case) -> Void) {
            var copy = c
            change(&copy)
            out.append(copy)
        }
        if c.policies.count > 1 {
            for index in c.policies.indices { with { $0.policies.remove(at: index) } }
        }
        for index in c.entities.indices { with { $0.entities.remove(at: index) } }
        guard question != .parse else { return out }
        for (index, text) in c.policies.enumerated() {
            guard let parsed = try? CedarParser.policies(text), parsed.count == 1 else { continue }
            for simpler in Self.simplifications(of: parsed[0]) {
                with { $0.policies[index] = CedarText.policy(simpler) }
            }
        }
        for (index, entity) in c.entities.enumerated() {
            guard case .object(let members) = entity else { continue }
            for (position, member) in members.enumerated() {
                switch member.value {
                case .object(let items) where !items.isEmpty:
                    with { $0.entities[index] = Self.replacing(members, at: position, with: .object([])) }
                    if items.count > 1 {
                        for drop in items.indices {
                            var fewer = items
                            fewer.remove(at: drop)
                            with { $0.entities[index] = Self.replacing(members, at: position, with: .object(fewer)) }
                        }
                    }
                case .array(let items) where !items.isEmpty:
                    with { $0.entities[index] = Self.replacing(members, at: position, with: .array([])) }
                default: break
                }
            }
        }
        if let request = c.request, case .object(let members) = request, let position = members.firstIndex(where: { $0.key == "context" }),
           case .object(let context) = members[position].value {
            for drop in context.indices {
                var fewer = context
                fewer.remove(at: drop)
                with { $0.request = Self.replacing(members, at: position, with: .object(fewer)) }
            }
        }
        return out
    }

    static func replacing(_ members: [JSONMember], at position: Int, with value: JSONValue) -> JSONValue {
        var copy = members
        copy[position] = JSONMember(members[position].key, value)
        return .object(copy)
    }

    /// A policy with one clause dropped, one scope element widened, or one expression replaced by
    /// an operand of it or by `true`/`false`.
    static func simplifications(of policy: Policy) -> [Policy] {
        var out: [Policy] = []
        if !policy.annotations.isEmpty { var p = policy; p.annotations = []; out.append(p) }
        for index in policy.conditions.indices { var p = policy; p.conditions.remove(at: index); out.append(p) }
        if policy.principal != .any, !policy.isTemplate { var p = policy; p.principal = .any; out.append(p) }
        if policy.action != .any { var p = policy; p.action = .any; out.append(p) }
        if policy.resource != .any, !policy.isTemplate { var p = policy; p.resource = .any; out.append(p) }
        for (index, condition) in policy.conditions.enumerated() {
            for body in simplifications(of: condition.body) {
                var p = policy
                p.conditions[index] = Condition(condition.kind, body)
                out.append(p)
            }
        }
        return out
    }

    /// `expr` with one node replaced by one of its children, or by `true` or `false`.
    static func simplifications(of expr: Expr) -> [Expr] {
        var out: [Expr] = expr.children
        if expr != .value(.bool(true)) { out.append(.value(.bool(true))) }
        if expr != .value(.bool(false)) { out.append(.value(.bool(false))) }
        let children = expr.children
        for (index, child) in children.enumerated() {
            for simpler in simplifications(of: child) {
                var replaced = children
                replaced[index] = simpler
                out.append(expr.withChildren(replaced))
            }
        }
        return out
    }

    // MARK: narrowing

    /// The smallest case reached from `c` on which Writ and Cedar still disagree, with Cedar's
    /// answer to it, the disagreement and the number of rounds; nil when they agree on `c`.
    func minimise(_ c: Case, maximumRounds: Int = 200) throws -> (case: Case, cedar: JSONValue, disagreement: String, rounds: Int)? {
        var current = c
        if question != .decision {
            // Only the policies matter.
            current.entities = []
            current.request = nil
        }
        var cedar = try oracle.answers([oracleCase(current)])[0]
        guard var found = disagreement(current, cedar: cedar) else { return nil }
        // A case the integration-test harness can read stays readable.
        let keepLoadable = loadsAsIntegrationTest(current)
        var rounds = 0
        while rounds < maximumRounds {
            rounds += 1
            // Only strictly smaller cases: no step can be undone, so narrowing ends.
            let size = Self.size(current)
            let proposals = candidates(current).filter { Self.size($0) < size && (!keepLoadable || loadsAsIntegrationTest($0)) }
            guard !proposals.isEmpty else { break }
            let answers = try oracle.answers(proposals.map(oracleCase))
            guard let next = zip(proposals, answers).lazy.compactMap({ proposal, answer in
                self.disagreement(proposal, cedar: answer).map { (proposal, answer, $0) }
            }).first else { break }
            (current, cedar, found) = next
        }
        return (current, cedar, found, rounds)
    }

    /// How big a case is: the characters of its policies, entities and request.
    static func size(_ c: Case) -> Int {
        c.policies.reduce(0) { $0 + $1.unicodeScalars.count } + JSONValue.array(c.entities).text.count + (c.request?.text.count ?? 0)
    }

    /// The case as an integration test (Cedar's format; expected answers are Cedar's), written
    /// under `directory` as `<name>.cedar`, `<name>.entities.json`, `<name>.json` and
    /// `differential.cedarschema` (the schema); returns the files' contents for printing.
    func writeIntegrationTest(_ c: Case, cedar: JSONValue, name: String, to directory: URL) throws -> String {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var requests: [JSONValue] = []
        if let request = c.request, let (principal, action, resource) = Self.uids(request),
           case .array(let answers)? = cedar["answers"], let expected = answers.first {
            func uid(_ uid: EntityUID) -> JSONValue { .object([JSONMember("type", .string(uid.type.qualified)), JSONMember("id", .string(uid.id.text))]) }
            requests.append(.object([
                JSONMember("description", .string("minimised from a differential-test disagreement (\(question.rawValue))")),
                JSONMember("principal", uid(principal)), JSONMember("action", uid(action)), JSONMember("resource", uid(resource)),
                JSONMember("context", request["context"] ?? .object([])), JSONMember("validateRequest", .bool(false)),
                JSONMember("decision", expected["decision"] ?? .null), JSONMember("reason", expected["reasons"] ?? .array([])),
                JSONMember("errors", expected["errors"] ?? .array([])),
            ]))
        }
        let test = JSONValue.object([
            JSONMember("policies", .string("\(name).cedar")), JSONMember("entities", .string("\(name).entities.json")),
            JSONMember("schema", .string("differential.cedarschema")), JSONMember("shouldValidate", cedar["validates"] == .bool(true) ? .bool(true) : .bool(false)),
            JSONMember("requests", .array(requests)),
        ])
        let files = [("\(name).cedar", c.policies.joined(separator: "\n") + "\n"), ("\(name).entities.json", JSONValue.array(c.entities).text + "\n"),
                     ("\(name).json", test.text + "\n"), ("differential.cedarschema", schema + "\n")]
        for (file, content) in files { try content.write(to: directory.appendingPathComponent(file), atomically: true, encoding: .utf8) }
        var printed = files.dropLast().map { "--- \($0.0)\n\($0.1)" }.joined()
        if !loadsAsIntegrationTest(c) {
            printed += "(the entities or the context do not conform to the schema, so an integration-test harness refuses this case; the request: \(c.request?.text ?? "-"))\n"
        }
        if question == .json { printed += "--- Cedar's JSON form\n\(cedar["json"]?.text ?? "?")\n" }
        return printed
    }
}

extension Expr {
    /// The same node with its children replaced (in ``Expr/children`` order).
    func withChildren(_ children: [Expr]) -> Expr {
        switch self {
        case .value, .variable, .slot: self
        case .not: .not(children[0])
        case .negate: .negate(children[0])
        case .binary(let op, _, _): .binary(op, children[0], children[1])
        case .and: .and(children[0], children[1])
        case .or: .or(children[0], children[1])
        case .ifThenElse: .ifThenElse(children[0], children[1], children[2])
        case .getAttribute(_, let attribute): .getAttribute(children[0], attribute)
        case .hasAttribute(_, let path): .hasAttribute(children[0], path)
        case .like(_, let pattern): .like(children[0], pattern)
        case .isType(_, let type, let container): .isType(children[0], type, container == nil ? nil : children[1])
        case .set: .set(children)
        case .record(let fields): .record(zip(fields, children).map { RecordField($0.key, $1) })
        case .call(let name, _): .call(name, children)
        case .method(_, let name, _): .method(children[0], name, Array(children.dropFirst()))
        }
    }
}
