// writ-bench-cedar: Writ's Cedar engine against cedarpy (Rust Cedar) on one agent/tool/user
// model, in the same run. Usage:
//   writ-bench-cedar --python PATH --script PATH --out FILE [--requests N]
// For 100 policies (20 of them template links) and 1,000 policies (200 links), over ~1,000
// entities, it writes the model's files, then measures on one core:
//   - Writ batch: parse the policies, links, entities and request lines, then decide them all
//     (what cedarpy's is_authorized_batch does per call);
//   - Writ engine: decide already parsed requests against the loaded store;
//   - per-decision latency (p50/p99) of the engine;
//   - cedarpy 4.12.2's is_authorized_batch on the same policies (links written out as the
//     policies they stand for), entities and requests, in a Python process started here;
// and checks that every decision agrees.
import ArgumentParser
import CedarCore
import CedarParser
import StrictJSON
import WritTestSupport
import Foundation


struct Options: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "writ-bench-cedar",
        abstract: "Writ's Cedar engine against cedarpy (Rust Cedar) on one agent/tool/user model, in the same run.")
    @Option(help: "The Python with cedarpy installed.") var python: String
    @Option(help: "cedarpy_batch.py.") var script: String
    @Option(help: "Where to write the JSON results.") var out: String
    @Option(help: "Requests per policy set.") var requests = 10_000

    func validate() throws {
        guard requests > 0 else { throw ValidationError("--requests must be positive") }
    }
}

/// The model: users in groups; agents in pools owned by users, delegated by users; tools under
/// servers and risk categories; actions in groups; a task in the context.
struct Model {
    var entities: [String] = []          // JSON objects
    var policies: [String] = []          // static policies and templates, Cedar text
    var templates: [Int: String] = [:]   // template index in `policies` -> its text
    var links: [(template: Int, id: String, principal: String, resource: String)] = []
    var requests: [String] = []          // JSON lines

    static let users = 100, groups = 10, agents = 400, pools = 40, tools = 400, servers = 20
    static let risks = ["low", "medium", "high"]
    static let actions = ["read", "list", "invoke", "write", "delete", "admin"]

    init(policyCount: Int, linkCount: Int, requestCount: Int, seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        func uid(_ type: String, _ id: String) -> String { #"{"type": "\#(type)", "id": "\#(id)"}"# }
        for g in 0..<Self.groups { entities.append(#"{"uid": \#(uid("Group", "g\(g)")), "attrs": {}, "parents": []}"#) }
        for u in 0..<Self.users {
            let gs = Set((0..<Int.random(in: 1...2, using: &rng)).map { _ in Int.random(in: 0..<Self.groups, using: &rng) })
            entities.append(#"{"uid": \#(uid("User", "u\(u)")), "attrs": {"clearance": \#(Int.random(in: 0...5, using: &rng)), "mfa_enrolled": \#(Bool.random(using: &rng))}, "parents": [\#(gs.map { uid("Group", "g\($0)") }.joined(separator: ", "))]}"#)
        }
        for p in 0..<Self.pools {
            entities.append(#"{"uid": \#(uid("Pool", "p\(p)")), "attrs": {"owner": {"__entity": \#(uid("User", "u\(Int.random(in: 0..<Self.users, using: &rng))"))}}, "parents": []}"#)
        }
        for a in 0..<Self.agents {
            let owner = Int.random(in: 0..<Self.users, using: &rng)
            let delegators = Set((0..<Int.random(in: 0...3, using: &rng)).map { _ in Int.random(in: 0..<Self.users, using: &rng) })
            entities.append(#"{"uid": \#(uid("Agent", "a\(a)")), "attrs": {"owner": {"__entity": \#(uid("User", "u\(owner)"))}, "delegated_by": [\#(delegators.map { #"{"__entity": \#(uid("User", "u\($0)"))}"# }.joined(separator: ", "))], "trust": \#(Int.random(in: 0...10, using: &rng))}, "parents": [\#(uid("Pool", "p\(a % Self.pools)"))]}"#)
        }
        for s in 0..<Self.servers { entities.append(#"{"uid": \#(uid("Server", "s\(s)")), "attrs": {"vendor": "v\#(s % 5)"}, "parents": []}"#) }
        for r in Self.risks { entities.append(#"{"uid": \#(uid("Risk", r)), "attrs": {}, "parents": []}"#) }
        for t in 0..<Self.tools {
            let risk = Int.random(in: 0..<3, using: &rng)
            entities.append(#"{"uid": \#(uid("Tool", "t\(t)")), "attrs": {"risk": \#(risk), "name": "tool-\#(t)", "tags": ["mcp", "\#(Self.risks[risk])"]}, "parents": [\#(uid("Server", "s\(t % Self.servers)")), \#(uid("Risk", Self.risks[risk]))]}"#)
        }
        entities.append(#"{"uid": \#(uid("Action", "readOnly")), "attrs": {}, "parents": []}"#)
        entities.append(#"{"uid": \#(uid("Action", "mutating")), "attrs": {}, "parents": []}"#)
        for action in Self.actions {
            let group = ["read", "list", "invoke"].contains(action) ? "readOnly" : "mutating"
            entities.append(#"{"uid": \#(uid("Action", action)), "attrs": {}, "parents": [\#(uid("Action", group))]}"#)
        }

        let staticCount = policyCount - linkCount
        let templateCount = max(1, linkCount / 10)
        // A few organisation-wide rules, then rules scoped to pools, servers, groups and agents
        // (each distinct: a real policy set does not repeat one policy a hundred times).
        policies.append(#"forbid(principal, action == Action::"admin", resource) unless { principal is User && principal.clearance >= 5 };"#)
        policies.append(#"forbid(principal is Agent, action in Action::"mutating", resource in Risk::"high") unless { context.mfa && context.task.purpose like "approved-*" };"#)
        policies.append(#"permit(principal is Agent, action == Action::"invoke", resource in Risk::"low") when { principal.trust > 3 && context.task has id };"#)
        for i in 0..<(staticCount - templateCount - 3) {
            let pool = Int.random(in: 0..<Self.pools, using: &rng), server = Int.random(in: 0..<Self.servers, using: &rng)
            let group = Int.random(in: 0..<Self.groups, using: &rng), agent = Int.random(in: 0..<Self.agents, using: &rng)
            let tool = Int.random(in: 0..<Self.tools, using: &rng), user = Int.random(in: 0..<Self.users, using: &rng)
            let risk = Self.risks[Int.random(in: 0..<3, using: &rng)]
            switch i % 8 {
            case 0: policies.append(#"permit(principal in Pool::"p\#(pool)", action in Action::"readOnly", resource in Server::"s\#(server)") when { context.task.risk_budget >= resource.risk };"#)
            case 1: policies.append(#"permit(principal is Agent in Pool::"p\#(pool)", action == Action::"invoke", resource in Risk::"\#(risk)") when { principal.owner in Group::"g\#(group)" && principal.trust > 3 };"#)
            case 2: policies.append(#"forbid(principal is Agent in Pool::"p\#(pool)", action in Action::"mutating", resource in Server::"s\#(server)") unless { context.mfa && context.task.purpose like "approved-*" };"#)
            case 3: policies.append(#"permit(principal == Agent::"a\#(agent)", action, resource == Tool::"t\#(tool)");"#)
            case 4: policies.append(#"permit(principal is Agent in Pool::"p\#(pool)", action in [Action::"read", Action::"list"], resource is Tool) when { resource.tags.contains("mcp") && context.task has id };"#)
            case 5: policies.append(#"permit(principal is Agent, action == Action::"write", resource in Server::"s\#(server)") when { principal.delegated_by.contains(User::"u\#(user)") && context.task.risk_budget > 2 };"#)
            case 6: policies.append(#"forbid(principal in Group::"g\#(group)", action == Action::"delete", resource in Server::"s\#(server)") unless { principal is User && principal.clearance >= 4 };"#)
            default: policies.append(#"permit(principal in Group::"g\#(group)", action, resource in Server::"s\#(server)") when { principal.mfa_enrolled && context.time < 1700000000 + \#(i) };"#)
            }
        }
        for t in 0..<templateCount {
            templates[policies.count] = t % 2 == 0
                ? #"permit(principal == ?principal, action in Action::"readOnly", resource in ?resource) when { context.task has id };"#
                : #"permit(principal in ?principal, action == Action::"invoke", resource in ?resource) when { context.task.risk_budget >= 1 };"#
            policies.append(templates[policies.count]!)
        }
        let templateIndices = templates.keys.sorted()
        for l in 0..<linkCount {
            let template = templateIndices[l % templateIndices.count]
            let isPoolLink = templates[template]!.contains("principal in ?principal")
            let principal = isPoolLink ? #"Pool::"p\#(Int.random(in: 0..<Self.pools, using: &rng))""# : #"Agent::"a\#(Int.random(in: 0..<Self.agents, using: &rng))""#
            links.append((template, "link\(l)", principal, #"Server::"s\#(Int.random(in: 0..<Self.servers, using: &rng))""#))
        }
        for _ in 0..<requestCount {
            let principal = Int.random(in: 0..<10, using: &rng) == 0 ? uid("User", "u\(Int.random(in: 0..<Self.users, using: &rng))") : uid("Agent", "a\(Int.random(in: 0..<Self.agents, using: &rng))")
            let action = uid("Action", Self.actions.randomElement(using: &rng)!)
            let resource = uid("Tool", "t\(Int.random(in: 0..<Self.tools, using: &rng))")
            let purpose = Bool.random(using: &rng) ? "approved-\(Int.random(in: 0..<100, using: &rng))" : "adhoc"
            let task = Int.random(in: 0..<5, using: &rng) == 0 ? #"{"purpose": "\#(purpose)", "risk_budget": \#(Int.random(in: 0...3, using: &rng))}"#
                                                                : #"{"id": "task-\#(Int.random(in: 0..<1000, using: &rng))", "purpose": "\#(purpose)", "risk_budget": \#(Int.random(in: 0...3, using: &rng))}"#
            requests.append(#"{"principal": \#(principal), "action": \#(action), "resource": \#(resource), "context": {"task": \#(task), "mfa": \#(Bool.random(using: &rng)), "time": \#(1_699_999_900 + Int.random(in: 0...200, using: &rng))}}"#)
        }
    }

    var policyText: String { policies.joined(separator: "\n") }
    var entitiesJSON: String { "[\n" + entities.joined(separator: ",\n") + "\n]" }

    /// The links as static policies (for cedarpy, whose batch API takes policy text only).
    var expandedPolicyText: String {
        var out = policies.enumerated().filter { templates[$0.offset] == nil }.map(\.element)
        for link in links {
            out.append(templates[link.template]!.replacingOccurrences(of: "?principal", with: link.principal).replacingOccurrences(of: "?resource", with: link.resource))
        }
        return out.joined(separator: "\n")
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// Loads the model the way a caller of is_authorized_batch hands it over (text and JSON).
func load(_ model: Model) throws -> (Authorizer, Entities) {
    var set = PolicySet()
    for (index, policy) in try CedarParser.policies(model.policyText).enumerated() { try set.add(policy, id: "policy\(index)") }
    for link in model.links {
        try set.link(template: "policy\(link.template)", id: link.id,
                     values: [.principal: try CedarParser.entityUID(link.principal), .resource: try CedarParser.entityUID(link.resource)])
    }
    let store = try Entities(try CedarJSON.entities(try JSONParser.parse(model.entitiesJSON)))
    return (Authorizer(policies: set), store)
}

func parseRequest(_ line: String) throws -> Request {
    let json = try JSONParser.parse(line)
    return Request(principal: try CedarJSON.entityUID(json["principal"]!, at: "principal"), action: try CedarJSON.entityUID(json["action"]!, at: "action"),
                   resource: try CedarJSON.entityUID(json["resource"]!, at: "resource"), context: try CedarJSON.context(json["context"]))
}

let options = Options.parseOrExit()
let directory = FileManager.default.temporaryDirectory.appendingPathComponent("writ-bench-cedar-\(getpid())")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: directory) }
var results: [String: Any] = [:]
let clock = ContinuousClock()

for (policyCount, linkCount) in [(100, 20), (1000, 200)] {
    FileHandle.standardError.write(Data("writ-bench-cedar: \(policyCount) policies (\(linkCount) links)…\n".utf8))
    let model = Model(policyCount: policyCount, linkCount: linkCount, requestCount: options.requests, seed: UInt64(policyCount))
    // Writ, batch: everything from text, as is_authorized_batch receives it.
    var batchBest = Double.infinity
    var decisions: [Decision] = []
    for _ in 0..<3 {
        let start = clock.now
        let (authorizer, store) = try load(model)
        var out: [Decision] = []
        out.reserveCapacity(model.requests.count)
        for line in model.requests { out.append(authorizer.isAuthorized(try parseRequest(line), entities: store).decision) }
        batchBest = min(batchBest, seconds(clock.now - start))
        decisions = out
    }
    // Loading alone, and requests arriving as JSON against a loaded policy set (a service).
    var loadBest = Double.infinity
    for _ in 0..<3 {
        let start = clock.now
        _ = try load(model)
        loadBest = min(loadBest, seconds(clock.now - start))
    }
    let (authorizer, store) = try load(model)
    var serviceBest = Double.infinity
    for _ in 0..<3 {
        let start = clock.now
        for line in model.requests { _ = authorizer.isAuthorized(try parseRequest(line), entities: store) }
        serviceBest = min(serviceBest, seconds(clock.now - start))
    }
    // Writ, engine only: parsed requests against the loaded store; then per-decision latency.
    let parsed = try model.requests.map(parseRequest)
    var engineBest = Double.infinity
    var allowed = 0
    for _ in 0..<5 {
        allowed = 0
        let start = clock.now
        for request in parsed where authorizer.isAuthorized(request, entities: store).decision == .allow { allowed += 1 }
        engineBest = min(engineBest, seconds(clock.now - start))
    }
    var latencies: [Double] = []
    latencies.reserveCapacity(parsed.count * 3)
    for _ in 0..<3 {
        for request in parsed {
            let start = clock.now
            _ = authorizer.isAuthorized(request, entities: store)
            latencies.append(seconds(clock.now - start) * 1e6)
        }
    }
    latencies.sort()
    // cedarpy on the same files.
    let policies = directory.appendingPathComponent("policies-\(policyCount).cedar"), entities = directory.appendingPathComponent("entities-\(policyCount).json")
    let requests = directory.appendingPathComponent("requests-\(policyCount).jsonl"), decided = directory.appendingPathComponent("decisions-\(policyCount).json")
    try model.expandedPolicyText.write(to: policies, atomically: true, encoding: .utf8)
    try model.entitiesJSON.write(to: entities, atomically: true, encoding: .utf8)
    try model.requests.joined(separator: "\n").write(to: requests, atomically: true, encoding: .utf8)
    let python = Process()
    python.executableURL = URL(fileURLWithPath: options.python)
    python.arguments = [options.script, policies.path, entities.path, requests.path, decided.path]
    try python.run()
    python.waitUntilExit()
    guard python.terminationStatus == 0 else { fatalError("writ-bench-cedar: the cedarpy run failed (\(python.terminationStatus))") }
    let peer = try JSONSerialization.jsonObject(with: Data(contentsOf: decided)) as! [String: Any]
    let peerDecisions = peer["decisions"] as! [String]
    let disagreements = zip(decisions, peerDecisions).filter { $0.0.rawValue != $0.1 }.count + abs(decisions.count - peerDecisions.count)
    let n = Double(model.requests.count)
    results["policies_\(policyCount)"] = [
        "policies": policyCount, "links": linkCount, "entities": model.entities.count, "requests": model.requests.count,
        "allowed": allowed,
        "writ_batch_per_second": n / batchBest,
        "writ_service_per_second": n / serviceBest,
        "writ_load_seconds": loadBest,
        "writ_engine_per_second": n / engineBest,
        "latency_p50_us": latencies[latencies.count / 2], "latency_p99_us": latencies[latencies.count * 99 / 100],
        "cedarpy_batch_per_second": n / (peer["seconds"] as! Double),
        "cedarpy_version": peer["version"] as! String,
        "disagreements": disagreements,
    ] as [String: Any]
    FileHandle.standardError.write(Data("writ-bench-cedar: \(results["policies_\(policyCount)"]!)\n".utf8))
}
try JSONSerialization.data(withJSONObject: ["cedar": results], options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: options.out))
