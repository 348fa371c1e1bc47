import CedarCore
import CedarParser
import CedarValidator
import Foundation
import StrictJSON
import Testing
import WritTestSupport

/// Writ against the real Cedar (cedarpy 4.12.2 in one Python process per run) on random policy
/// sets, entity graphs and requests: well-typed and ill-typed policies, templates with links,
/// hierarchies deeper than five levels, references to entities that do not exist. Compared:
/// parse success, the JSON policy form (and its round trip), validation, decision, reasons and
/// errors. Two fixed seeds and one derived from the commit run each time (printed). The first
/// mismatches of a seed are narrowed by ``Minimiser`` to a small case that still shows them and
/// printed (and written under `.build/cedar-reproducers`) as an integration test, ready for
/// `Tests/CedarRegression`.
@Suite struct DifferentialTests {

    static let schema = """
        entity Group in [Group] = { name: String };
        entity User in [Group] = { name: String, age: Long, nicknames: Set<String>, manager?: User, home?: ipaddr } tags Long;
        entity Folder in [Folder] = { owner: User };
        entity Doc in [Folder] = { owner: User, public: Bool, level: Long, readers: Set<User>, created: datetime, price: decimal, meta: { kind: String, size?: Long } };
        action read, list;
        action write in [read];
        action delete appliesTo { principal: [User], resource: [Doc, Folder], context: { mfa: Bool, ip: ipaddr, amount: Long, note: String, ttl: duration } };
        action view in [read] appliesTo { principal: [User], resource: [Doc], context: { mfa: Bool, ip: ipaddr, amount: Long, note: String, ttl: duration } };
        action edit in [write] appliesTo { principal: [User, Group], resource: [Doc], context: { mfa: Bool, ip: ipaddr, amount: Long, note: String, ttl: duration } };
        """

    /// Generates policies as text, counting every construct it writes.
    struct Generator {
        var rng: SeededRandom
        var counts: [String: Int] = [:]
        /// The chance of writing something of the wrong type.
        var illTyped = 0.06

        init(seed: UInt64) { rng = SeededRandom(seed: seed) }

        mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
        mutating func pick<T>(_ items: [T]) -> T { items.randomElement(using: &rng)! }
        mutating func count(_ construct: String) { counts[construct, default: 0] += 1 }

        mutating func user() -> String { "User::\"u\(Int.random(in: 0..<7, using: &rng))\"" }
        mutating func group() -> String { "Group::\"g\(Int.random(in: 0..<7, using: &rng))\"" }
        mutating func doc() -> String { "Doc::\"d\(Int.random(in: 0..<7, using: &rng))\"" }
        mutating func folder() -> String { "Folder::\"f\(Int.random(in: 0..<7, using: &rng))\"" }

        enum Kind: CaseIterable { case bool, long, string, user, doc, group, setLong, setString, setUser, ip, decimal, datetime, duration }

        mutating func expr(_ kind: Kind, _ depth: Int) -> String {
            if chance(illTyped) {
                let other = pick(Kind.allCases)
                if other != kind { count("ill-typed"); return expr(other, max(0, depth - 1)) }
            }
            let leaf = depth <= 0 || chance(0.3)
            switch kind {
            case .bool:
                if depth <= 0 || chance(0.15) { return pick(["true", "true", "false", "context.mfa", "resource.public", "principal has manager", "context has mfa"]) }
                // Every construct equally likely, so each is exercised hundreds of times a run.
                let constructs = ["&&", "||", "!", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "neg", "in", "has", "like", "is", "is-in", "if",
                                  "contains", "containsAll", "containsAny", "isEmpty", "hasTag", "getTag", "lessThan", "lessThanOrEqual", "greaterThan",
                                  "greaterThanOrEqual", "isIpv4", "isIpv6", "isLoopback", "isMulticast", "isInRange", "has-path", "offset", "toDate",
                                  "toTime", "durationSince", "toMilliseconds", "toSeconds", "toMinutes", "toHours", "toDays"]
                let construct = pick(constructs)
                let d = depth - 1
                switch construct {
                case "&&", "||": count(construct); return "(\(expr(.bool, d)) \(construct) \(expr(.bool, d)))"
                case "!": count("!"); return "!(\(expr(.bool, d)))"
                case "==", "!=": let k = pick([Kind.long, .string, .user, .bool, .setLong, .decimal, .ip]); count(construct); return "(\(expr(k, d)) \(construct) \(expr(k, d)))"
                case "<", "<=", ">", ">=": count(construct); let k = pick([Kind.long, .long, .datetime, .duration]); return "(\(expr(k, d)) \(construct) \(expr(k, d)))"
                case "+", "-", "*": count(construct); return "((\(expr(.long, d)) \(construct) \(expr(.long, d))) \(pick(["==", "<", ">="])) \(expr(.long, d)))"
                case "neg": count("neg"); return "((-\(expr(.long, d))) < \(expr(.long, d)))"
                case "in": count("in"); return "(\(expr(pick([.user, .doc]), d)) in \(pick([group(), folder(), "[\(group()), \(folder())]", "principal", "resource"])))"
                case "has": count("has"); return "(\(pick(["principal", "resource", "context", "resource.meta", user()])) has \(pick(["name", "manager", "age", "size", "kind", "mfa", "owner", "home", "\"nicknames\""])))"
                case "like": count("like"); return "(\(expr(.string, d)) like \(pick(["\"a*\"", "\"*\"", "\"\"", "\"*b*c\"", "\"a\\\\*\"", "\"u\\u{e9}*\""])))"
                case "is": count("is"); return "(\(expr(pick([.user, .doc, .group]), d)) is \(pick(["User", "Doc", "Group", "Folder"])))"
                case "is-in": count("is-in"); return "(\(pick(["principal", "resource", user()])) is \(pick(["User", "Doc"])) in \(pick([group(), folder()])))"
                case "if": count("if"); return "(if \(expr(.bool, d)) then \(expr(.bool, d)) else \(expr(.bool, d)))"
                case "contains": count("contains"); let (set, element) = pick([(Kind.setLong, Kind.long), (.setString, .string), (.setUser, .user)]); return "\(expr(set, d)).contains(\(expr(element, d)))"
                case "containsAll", "containsAny": count(construct); let set = pick([Kind.setLong, .setString, .setUser]); return "\(expr(set, d)).\(construct)(\(expr(set, d)))"
                case "isEmpty": count("isEmpty"); return "\(expr(pick([.setLong, .setString, .setUser]), d)).isEmpty()"
                case "hasTag": count("hasTag"); return "\(expr(.user, d)).hasTag(\(pick(["\"t1\"", "\"t2\"", "context.note"])))"
                case "getTag": count("getTag"); return "(principal.hasTag(\"t1\") && principal.getTag(\"t1\") > \(Int.random(in: -2...2, using: &rng)))"
                case "lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual": count(construct); return "\(expr(.decimal, d)).\(construct)(\(expr(.decimal, d)))"
                case "isIpv4", "isIpv6", "isLoopback", "isMulticast": count(construct); return "\(expr(.ip, d)).\(construct)()"
                case "isInRange": count("isInRange"); return "\(expr(.ip, d)).isInRange(\(expr(.ip, d)))"
                case "has-path": count("has-path"); return pick(["(resource has meta.size)", "(context has ttl)", "(principal has manager.name)"])
                case "offset", "toDate": count(construct); let dt = construct == "offset" ? "\(expr(.datetime, d)).offset(\(expr(.duration, d)))" : "\(expr(.datetime, d)).toDate()"; return "(\(dt) \(pick(["<", "==", ">="])) \(expr(.datetime, d)))"
                case "toTime", "durationSince": count(construct); let du = construct == "toTime" ? "\(expr(.datetime, d)).toTime()" : "\(expr(.datetime, d)).durationSince(\(expr(.datetime, d)))"; return "(\(du) \(pick(["<", "==", ">"])) \(expr(.duration, d)))"
                default: count(construct); return "(\(expr(.duration, d)).\(construct)() \(pick(["<", "==", ">="])) \(expr(.long, d)))"
                }
            case .long:
                if depth <= 0 || chance(0.25) { return pick(["0", "1", "-3", "9223372036854775807", "-9223372036854775808", "principal.age", "resource.level", "context.amount", "resource.meta.size"]) }
                switch Int.random(in: 0..<5, using: &rng) {
                case 0: let op = pick(["+", "-", "*"]); count(op); return "(\(expr(.long, depth - 1)) \(op) \(expr(.long, depth - 1)))"
                case 1: count("neg"); return "(-\(expr(.long, depth - 1)))"
                case 2: count("if"); return "(if \(expr(.bool, depth - 1)) then \(expr(.long, depth - 1)) else \(expr(.long, depth - 1)))"
                case 3: let m = pick(["toMilliseconds", "toSeconds", "toMinutes", "toHours", "toDays"]); count(m); return "\(expr(.duration, depth - 1)).\(m)()"
                case 4: count("getTag"); return "principal.getTag(\"t1\")"
                default: return pick(["principal.age", "resource.level", "context.amount", "\(Int.random(in: -100...100, using: &rng))"])
                }
            case .string:
                if leaf || chance(0.5) { return pick(["\"a\"", "\"abc\"", "\"u\\u{e9}\"", "\"ue\\u{301}\"", "principal.name", "context.note", "resource.meta.kind", "\"\""]) }
                count("if"); return "(if \(expr(.bool, depth - 1)) then \(expr(.string, depth - 1)) else \(expr(.string, depth - 1)))"
            case .user:
                return pick(["principal", user(), "resource.owner", "principal.manager", "User::\"ghost\""])
            case .doc:
                return pick(["resource", doc(), "Doc::\"missing\""])
            case .group:
                return pick([group(), "Group::\"nowhere\""])
            case .setLong:
                if chance(0.2) { count("set-empty"); return "[]" }
                count("set"); return "[\(expr(.long, depth - 1)), \(expr(.long, depth - 1))]"
            case .setString:
                return pick(["principal.nicknames", "[\"a\", \"b\"]", "[\(expr(.string, depth - 1))]"])
            case .setUser:
                return pick(["resource.readers", "[principal, \(user())]", "[\(user())]"])
            case .ip:
                count("ip"); return pick(["ip(\"10.0.0.1\")", "ip(\"10.0.0.0/8\")", "ip(\"127.0.0.1\")", "ip(\"::1\")", "ip(\"ff00::/8\")", "context.ip", "principal.home", "ip(\"01.2.3.4\")"])
            case .decimal:
                count("decimal"); return pick(["decimal(\"1.5\")", "decimal(\"-0.25\")", "decimal(\"922337203685477.5807\")", "resource.price", "decimal(\"1.23456\")"])
            case .datetime:
                if !leaf && chance(0.5) {
                    let m = pick(["offset", "toDate"]); count(m)
                    return m == "offset" ? "\(expr(.datetime, depth - 1)).offset(\(expr(.duration, depth - 1)))" : "\(expr(.datetime, depth - 1)).toDate()"
                }
                count("datetime"); return pick(["datetime(\"2024-10-28\")", "datetime(\"2024-10-28T10:12:13.456-0700\")", "resource.created", "datetime(\"1969-12-31T12:00:00Z\")"])
            case .duration:
                if !leaf && chance(0.5) {
                    let m = pick(["durationSince", "toTime"]); count(m)
                    return m == "durationSince" ? "\(expr(.datetime, depth - 1)).durationSince(\(expr(.datetime, depth - 1)))" : "\(expr(.datetime, depth - 1)).toTime()"
                }
                count("duration"); return pick(["duration(\"1h\")", "duration(\"-3d2h\")", "context.ttl", "duration(\"9223372036854775807ms\")"])
            }
        }

        mutating func scope() -> (String, String, String) {
            let principal = pick(["principal", "principal", "principal", "principal == \(user())", "principal in \(group())", "principal is User", "principal is User in \(group())", "principal is Group"])
            let action = pick(["action", "action", "action", "action == Action::\"view\"", "action in [Action::\"read\", Action::\"delete\"]", "action in Action::\"write\"", "action == Action::\"edit\""])
            let resource = pick(["resource", "resource", "resource", "resource == \(doc())", "resource in \(folder())", "resource is Doc", "resource is Folder in \(folder())"])
            return (principal, action, resource)
        }

        mutating func policy() -> String {
            let (principal, action, resource) = scope()
            var text = chance(0.12) ? "forbid" : "permit"
            text += "(\(principal), \(action), \(resource))"
            for _ in 0..<Int.random(in: 0...2, using: &rng) {
                text += " \(pick(["when", "when", "unless"])) { \(expr(.bool, Int.random(in: 2...4, using: &rng))) }"
            }
            return text + ";"
        }

        mutating func template() -> String {
            count("template")
            let principal = pick(["principal == ?principal", "principal in ?principal"])
            let resource = pick(["resource", "resource in ?resource", "resource == ?resource"])
            return "permit(\(principal), action, \(resource)) when { \(expr(.bool, 2)) };"
        }
    }

    /// A random entity graph: groups and folders in chains of more than five levels, users with
    /// optional attributes and tags, parents that do not exist.
    static func entities(_ rng: inout SeededRandom) -> [JSONValue] {
        func uid(_ type: String, _ id: String) -> JSONValue { .object([JSONMember("type", .string(type)), JSONMember("id", .string(id))]) }
        func ref(_ type: String, _ id: String) -> JSONValue { .object([JSONMember("__entity", uid(type, id))]) }
        func extn(_ fn: String, _ arg: String) -> JSONValue { .object([JSONMember("__extn", .object([JSONMember("fn", .string(fn)), JSONMember("arg", .string(arg))]))]) }
        func entity(_ type: String, _ id: String, _ attrs: [JSONMember], _ parents: [JSONValue], tags: [JSONMember] = []) -> JSONValue {
            var members = [JSONMember("uid", uid(type, id)), JSONMember("attrs", .object(attrs)), JSONMember("parents", .array(parents))]
            if !tags.isEmpty { members.append(JSONMember("tags", .object(tags))) }
            return .object(members)
        }
        var out: [JSONValue] = []
        for g in 0..<7 { out.append(entity("Group", "g\(g)", [JSONMember("name", .string("group \(g)"))], g < 6 ? [uid("Group", "g\(g + 1)")] : [uid("Group", "gone")])) }
        for f in 0..<7 { out.append(entity("Folder", "f\(f)", [JSONMember("owner", ref("User", "u\(f)"))], f < 6 ? [uid("Folder", "f\(f + 1)")] : [])) }
        for u in 0..<7 {
            var attrs = [JSONMember("name", .string(["a", "abc", "u\u{e9}", "ue\u{301}"].randomElement(using: &rng)!)), JSONMember("age", .integer(Int64.random(in: -5...90, using: &rng))),
                         JSONMember("nicknames", .array([.string("a"), .string(["b", "abc"].randomElement(using: &rng)!)]))]
            if Bool.random(using: &rng) { attrs.append(JSONMember("manager", ref("User", "u\(Int.random(in: 0..<7, using: &rng))"))) }
            if Bool.random(using: &rng) { attrs.append(JSONMember("home", extn("ip", ["10.1.2.3", "127.0.0.1", "::1"].randomElement(using: &rng)!))) }
            let tags = Bool.random(using: &rng) ? [JSONMember("t1", .integer(Int64.random(in: -2...2, using: &rng)))] : []
            out.append(entity("User", "u\(u)", attrs, [uid("Group", "g\(Int.random(in: 0..<7, using: &rng))")], tags: tags))
        }
        for d in 0..<7 {
            var meta = [JSONMember("kind", .string(["a", "abc"].randomElement(using: &rng)!))]
            if Bool.random(using: &rng) { meta.append(JSONMember("size", .integer(Int64.random(in: 0...9, using: &rng)))) }
            out.append(entity("Doc", "d\(d)", [
                JSONMember("owner", ref("User", "u\(Int.random(in: 0..<7, using: &rng))")), JSONMember("public", .bool(Bool.random(using: &rng))),
                JSONMember("level", .integer(Int64.random(in: 0...5, using: &rng))), JSONMember("readers", .array([ref("User", "u\(d)"), ref("User", "ghost")])),
                JSONMember("created", extn("datetime", ["2024-10-28", "1970-01-01T00:00:01Z"].randomElement(using: &rng)!)),
                JSONMember("price", extn("decimal", ["1.5", "-0.25"].randomElement(using: &rng)!)), JSONMember("meta", .object(meta)),
            ], [uid("Folder", "f\(Int.random(in: 0..<7, using: &rng))")]))
        }
        return out
    }

    static func request(_ rng: inout SeededRandom) -> JSONValue {
        let principal = ["User::\"u\(Int.random(in: 0..<7, using: &rng))\"", "User::\"u\(Int.random(in: 0..<7, using: &rng))\"", "User::\"ghost\"", "Group::\"g1\""].randomElement(using: &rng)!
        let action = ["view", "edit", "delete", "read", "write"].map { "Action::\"\($0)\"" }.randomElement(using: &rng)!
        let resource = ["Doc::\"d\(Int.random(in: 0..<7, using: &rng))\"", "Doc::\"d\(Int.random(in: 0..<7, using: &rng))\"", "Folder::\"f2\"", "Doc::\"missing\""].randomElement(using: &rng)!
        var context: [JSONMember] = [JSONMember("mfa", .bool(Bool.random(using: &rng))), JSONMember("amount", .integer(Int64.random(in: -3...3, using: &rng))),
                                     JSONMember("note", .string(["t1", "a", "abc"].randomElement(using: &rng)!))]
        if Int.random(in: 0..<4, using: &rng) > 0 { context.append(JSONMember("ip", .object([JSONMember("__extn", .object([JSONMember("fn", .string("ip")), JSONMember("arg", .string("10.0.0.7"))]))]))) }
        if Int.random(in: 0..<4, using: &rng) > 0 { context.append(JSONMember("ttl", .object([JSONMember("__extn", .object([JSONMember("fn", .string("duration")), JSONMember("arg", .string("90m"))]))]))) }
        return .object([JSONMember("principal", .string(principal)), JSONMember("action", .string(action)), JSONMember("resource", .string(resource)), JSONMember("context", .object(context))])
    }

    struct Case {
        /// The policies and templates, one text each, and joined.
        let texts: [String]
        let policies: String
        /// The static policies and the links written out, one text each, and joined.
        let expandedTexts: [String]
        let expanded: String
        /// Writ's id for each policy id of the expanded text.
        let idMap: [String: String]
        let links: [(template: String, id: String, principal: String, resource: String?)]
        let entities: [JSONValue]
        let requests: [JSONValue]
    }

    /// JSON text with every object's members sorted, for comparing structure.
    static func canonical(_ json: JSONValue) -> String {
        func sorted(_ j: JSONValue) -> JSONValue {
            switch j {
            case .array(let items): return .array(items.map(sorted))
            case .object(let members): return .object(members.sorted { CedarString($0.key) < CedarString($1.key) }.map { JSONMember($0.key, sorted($0.value)) })
            default: return j
            }
        }
        return sorted(json).text
    }

    @Test func writAgreesWithTheRealCedar() throws {
        let python = try TestEnvironment.interopPython()
        let schema = try CedarSchemaParser.parse(Self.schema)
        // Writ's JSON form of the schema: read back to the same schema here, and used by cedarpy
        // to validate each case a second time.
        let schemaJSON = schema.json.text
        #expect(try CedarSchemaJSON.parse(schemaJSON) == schema)
        #expect(try CedarSchemaParser.parse(schema.text) == schema)
        let setsPerSeed = 2_000, requestsPerSet = 10
        for seed in TestEnvironment.seeds(fixed: [7, 11]) {
            print("DifferentialTests seed \(seed)")
            var generator = Generator(seed: seed)
            var rng = SeededRandom(seed: seed ^ 0xA5A5)
            var cases: [Case] = []
            for _ in 0..<setsPerSeed {
                var texts: [String] = []
                var templates: [(index: Int, text: String)] = []
                for _ in 0..<Int.random(in: 1...5, using: &rng) { texts.append(generator.policy()) }
                if generator.chance(0.3) {
                    templates.append((texts.count, generator.template()))
                    texts.append(templates[0].text)
                }
                if generator.chance(0.05) {
                    // A syntax error somewhere: both must refuse it.
                    generator.count("parse-error")
                    let index = Int.random(in: 0..<texts.count, using: &rng)
                    texts[index] = String(texts[index].dropLast(Int.random(in: 1...4, using: &rng)))
                }
                var links: [(String, String, String, String?)] = []
                var expanded: [String] = [], idMap: [String: String] = [:]
                for (index, text) in texts.enumerated() where !templates.contains(where: { $0.index == index }) {
                    idMap["policy\(expanded.count)"] = "policy\(index)"
                    expanded.append(text)
                }
                for template in templates {
                    for l in 0..<2 {
                        let principal = ["User::\"u\(Int.random(in: 0..<7, using: &rng))\"", "Group::\"g\(Int.random(in: 0..<7, using: &rng))\""].randomElement(using: &rng)!
                        let resource: String? = template.text.contains("?resource") ? "Folder::\"f\(Int.random(in: 0..<7, using: &rng))\"" : nil
                        let id = "link\(l)"
                        links.append(("policy\(template.index)", id, principal, resource))
                        var text = template.text.replacingOccurrences(of: "?principal", with: principal)
                        if let resource { text = text.replacingOccurrences(of: "?resource", with: resource) }
                        idMap["policy\(expanded.count)"] = id
                        expanded.append(text)
                    }
                }
                let entities = Self.entities(&rng)
                let requests = (0..<requestsPerSet).map { _ in Self.request(&rng) }
                cases.append(Case(texts: texts, policies: texts.joined(separator: "\n"), expandedTexts: expanded, expanded: expanded.joined(separator: "\n"),
                                  idMap: idMap, links: links, entities: entities, requests: requests))
            }
            // The real Cedar, in one process for the run (the batch, then any minimising).
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("writ-cedar-diff-\(seed)-\(getpid())")
            let oracle = try CedarOracle(python: python, directory: directory)
            defer {
                oracle.close()
                try? FileManager.default.removeItem(at: directory)
            }
            let answers = try oracle.answers(cases.map { c in
                JSONValue.object([JSONMember("policies", .string(c.policies)), JSONMember("expanded", .string(c.expanded)), JSONMember("schema", .string(Self.schema)),
                                  JSONMember("schema_json", .string(schemaJSON)), JSONMember("entities", .array(c.entities)), JSONMember("requests", .array(c.requests))])
            })

            var mismatches: [String] = []
            // The first few disagreements are narrowed down to small integration tests, written
            // under .build/cedar-reproducers (for Tests/CedarRegression once fixed) and printed.
            var minimised = 0
            func reproducer(_ question: Minimiser.Question, _ c: Minimiser.Case) -> String {
                guard minimised < 3 else { return "(not minimised: only the first 3 mismatches of a seed are)" }
                minimised += 1
                let name = "seed\(seed)-\(minimised)-\(question.rawValue)"
                do {
                    let minimiser = try Minimiser(question: question, schema: Self.schema, oracle: oracle)
                    guard let result = try minimiser.minimise(c) else {
                        return "(not minimised: without the template links, written out as static policies, Writ and Cedar agree)"
                    }
                    let folder = IntegrationCorpus.repositoryRoot.appendingPathComponent(".build/cedar-reproducers")
                    let files = try minimiser.writeIntegrationTest(result.case, cedar: result.cedar, name: name, to: folder)
                    return "minimised in \(result.rounds) rounds (\(result.disagreement)); written to \(folder.path)/\(name).*\n\(files)"
                } catch {
                    return "(minimising failed: \(error))"
                }
            }
            var allow = 0, deny = 0, erroring = 0, invalid = 0, decided = 0
            for (c, answer) in zip(cases, answers) {
                let parsed = try? CedarParser.policies(c.policies)
                guard case .bool(let cedarParses)? = answer["parses"] else { continue }
                if (parsed != nil) != cedarParses {
                    mismatches.append("parse: Writ \(parsed != nil), Cedar \(cedarParses)\n\(c.policies)\n" + reproducer(.parse, .init(policies: c.texts, entities: [], request: nil)))
                    continue
                }
                guard let parsed else { continue }
                // The text printer: what it writes parses back to the same policy.
                for policy in parsed {
                    let printed = CedarText.policy(policy)
                    if (try? CedarParser.policies(printed)) != [policy] { mismatches.append("printing does not round-trip:\n\(printed)") }
                }
                var set = PolicySet()
                for (index, policy) in parsed.enumerated() { try set.add(policy, id: "policy\(index)") }
                for link in c.links {
                    var values: [Slot: EntityUID] = [.principal: try CedarParser.entityUID(link.principal)]
                    if let resource = link.resource { values[.resource] = try CedarParser.entityUID(resource) }
                    try set.link(template: link.template, id: link.id, values: values)
                }
                // cedarpy validated and translated the text: templates, not their links.
                var unlinked = PolicySet()
                for (index, policy) in parsed.enumerated() { try unlinked.add(policy, id: "policy\(index)") }
                let ours = PolicyJSON.json(unlinked)
                if Self.canonical(ours) != Self.canonical(answer["json"] ?? .null) {
                    mismatches.append("JSON form: Writ \(ours.text)\nCedar \(answer["json"]?.text ?? "?")\n\(c.policies)\n" + reproducer(.json, .init(policies: c.texts, entities: [], request: nil)))
                } else {
                    // And back: the JSON form reads as the same policies.
                    do {
                        let again = PolicyJSON.json(try PolicyJSON.policySet(ours))
                        if Self.canonical(again) != Self.canonical(ours) { mismatches.append("JSON round trip changed\n\(ours.text)\n\(again.text)") }
                    } catch {
                        mismatches.append("JSON round trip refused: \(error)\n\(ours.text)")
                    }
                }
                let validates = Validator(schema: schema).validate(unlinked).passed
                if !validates { invalid += 1 }
                if answer["validates_json_schema"] != answer["validates"] {
                    mismatches.append("cedarpy validated differently with Writ's JSON form of the schema: \(answer["validates_json_schema"]?.text ?? "?")\n\(c.policies)")
                }
                if answer["validates"] != .bool(validates) {
                    mismatches.append("validation: Writ \(validates), Cedar \(answer["validates"]?.text ?? "?")\n\(c.policies)\n" + reproducer(.validation, .init(policies: c.texts, entities: [], request: nil)))
                }
                let store = try Entities(try CedarJSON.entities(.array(c.entities)))
                let authorizer = Authorizer(policies: set)
                guard case .array(let cedarAnswers)? = answer["answers"] else {
                    mismatches.append("cedarpy could not decide the requests: \(answer["answers"]?.text ?? "?")\n\(c.expanded)")
                    continue
                }
                for (request, cedar) in zip(c.requests, cedarAnswers) {
                    guard case .string(let p)? = request["principal"], case .string(let a)? = request["action"], case .string(let r)? = request["resource"] else { continue }
                    let response = authorizer.isAuthorized(Request(principal: try CedarParser.entityUID(p), action: try CedarParser.entityUID(a),
                                                                   resource: try CedarParser.entityUID(r), context: try CedarJSON.context(request["context"])), entities: store)
                    decided += 1
                    if response.decision == .allow { allow += 1 } else { deny += 1 }
                    if !response.errors.isEmpty { erroring += 1 }
                    func ids(_ key: String) -> Set<String> {
                        guard case .array(let list)? = cedar[key] else { return [] }
                        return Set(list.compactMap { if case .string(let id) = $0 { c.idMap[id] ?? id } else { nil } })
                    }
                    let decision = cedar["decision"] == .string(response.decision.rawValue)
                    if !decision || ids("reasons") != Set(response.reasons) || ids("errors") != Set(response.errors.map(\.policyID)) {
                        let links = c.links.map { "\($0.id): \($0.template)(\($0.principal), \($0.resource ?? "-"))" }.joined(separator: "; ")
                        mismatches.append("decision: Writ \(response.decision.rawValue) \(response.reasons) errors \(response.errors.map { "\($0.policyID): \($0.error.message)" }), Cedar \(cedar.text)\n"
                                          + "policies:\n\(c.policies)\nlinks: \(links)\nrequest: \(request.text)\n"
                                          + reproducer(.decision, .init(policies: c.expandedTexts, entities: c.entities, request: request)))
                    }
                }
            }
            let total = Double(max(decided, 1))
            print("DifferentialTests seed \(seed): \(cases.count) policy sets, \(decided) requests; allow \(allow), deny \(deny), erroring \(erroring), invalid sets \(invalid); \(mismatches.count) mismatches")
            print("coverage: " + generator.counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            for mismatch in mismatches.prefix(5) { print("MISMATCH \(mismatch)") }
            #expect(mismatches.isEmpty, "\(mismatches.count) mismatches with Cedar (seed \(seed)); first: \(mismatches.first ?? "")")
            #expect(decided >= 5_000)
            #expect(Double(allow) / total >= 0.2 && Double(deny) / total >= 0.2, "allow \(allow), deny \(deny)")
            #expect(Double(erroring) / total >= 0.1, "erroring \(erroring) of \(decided)")
            #expect(Double(invalid) / Double(cases.count) >= 0.1, "invalid \(invalid) of \(cases.count)")
            let constructs = ["&&", "||", "!", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "neg", "in", "has", "like", "is", "is-in", "if",
                              "contains", "containsAll", "containsAny", "isEmpty", "hasTag", "getTag", "ip", "decimal", "datetime", "duration",
                              "lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual", "isIpv4", "isIpv6", "isLoopback", "isMulticast", "isInRange",
                              "offset", "toDate", "toTime", "durationSince", "toMilliseconds", "toSeconds", "toMinutes", "toHours", "toDays", "template"]
            for construct in constructs {
                #expect(generator.counts[construct, default: 0] >= 100, "`\(construct)` appeared \(generator.counts[construct, default: 0]) times (at least 100 needed)")
            }
        }
    }
}
