import CedarCore
import CedarParser
import CedarValidator
import Foundation
import StrictJSON

/// Cedar's integration tests (../shared/cedar-conformance: 22 hand-written tests and the
/// generated corpus), located beside the repository, unpacked once into `.build/cedar-corpus`.
enum IntegrationCorpus {
    static let handWrittenCount = 22
    static let generatedCount = 5916

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The repository root (three levels above this file).
    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// `../shared/cedar-conformance`; a missing folder is a failure, never a skip.
    static func dataRoot() throws -> URL {
        let root = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/cedar-conformance")
        guard FileManager.default.fileExists(atPath: root.appendingPathComponent("corpus-tests.tar.gz").path) else {
            throw Failure(description: "Cedar's integration tests are missing: expected \(root.path)/corpus-tests.tar.gz")
        }
        return root
    }

    /// Serializes unpacking: the suites that read the corpus run concurrently in one process,
    /// and on a fresh clone the first two would otherwise unpack into the same staging folder
    /// and move it away from each other.
    private static let unpacking = NSLock()

    /// The folder holding `corpus-tests/`, unpacked from the tarball when it is new or changed.
    static func unpackedCorpus() throws -> URL {
        unpacking.lock()
        defer { unpacking.unlock() }
        let tarball = try dataRoot().appendingPathComponent("corpus-tests.tar.gz")
        let attributes = try FileManager.default.attributesOfItem(atPath: tarball.path)
        let stamp = "\(attributes[.size] ?? 0) \((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
        let target = repositoryRoot.appendingPathComponent(".build/cedar-corpus")
        let stampFile = target.appendingPathComponent("stamp")
        if (try? String(contentsOf: stampFile, encoding: .utf8)) == stamp { return target }
        let staging = repositoryRoot.appendingPathComponent(".build/cedar-corpus.staging-\(getpid())-\(UUID().uuidString)")
        try? FileManager.default.removeItem(at: staging)
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
        tar.arguments = ["xzf", tarball.path, "-C", staging.path]
        try tar.run()
        tar.waitUntilExit()
        guard tar.terminationStatus == 0 else { throw Failure(description: "tar xzf \(tarball.path) failed (\(tar.terminationStatus))") }
        try stamp.write(to: staging.appendingPathComponent("stamp"), atomically: true, encoding: .utf8)
        try? FileManager.default.removeItem(at: target)
        try FileManager.default.moveItem(at: staging, to: target)
        return target
    }

    /// Every test file: the hand-written ones (paths relative to the data root) and the generated
    /// ones (relative to the unpacked folder), sorted.
    static func testFiles() throws -> [(file: URL, base: URL)] {
        let data = try dataRoot()
        var out: [(URL, URL)] = []
        let tests = data.appendingPathComponent("tests")
        for group in try FileManager.default.contentsOfDirectory(atPath: tests.path).sorted() {
            let folder = tests.appendingPathComponent(group)
            for name in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() where name.hasSuffix(".json") {
                out.append((folder.appendingPathComponent(name), data))
            }
        }
        let corpus = try unpackedCorpus()
        let generated = corpus.appendingPathComponent("corpus-tests")
        for name in try FileManager.default.contentsOfDirectory(atPath: generated.path).sorted()
        where name.hasSuffix(".json") && !name.hasSuffix(".entities.json") {
            out.append((generated.appendingPathComponent(name), corpus))
        }
        return out
    }
}

/// One integration test: a policy file, an entity file and a schema, with requests and the
/// answers the real Cedar gives.
struct IntegrationTest {
    struct Expected {
        let description: String
        let principal: JSONValue
        let action: JSONValue
        let resource: JSONValue
        let context: JSONValue?
        let validateRequest: Bool
        let decision: String
        let reason: Set<String>
        let errors: Set<String>
    }

    let name: String
    let policies: String
    let entities: JSONValue
    let schema: String
    let shouldValidate: Bool
    let requests: [Expected]

    init(file: URL, base: URL) throws {
        name = file.lastPathComponent
        let json = try JSONParser.parse(Array(try Data(contentsOf: file)))
        func string(_ value: JSONValue?, _ what: String) throws -> String {
            guard case .string(let text)? = value else { throw IntegrationCorpus.Failure(description: "\(file.lastPathComponent): `\(what)` is not a string") }
            return text
        }
        func read(_ relative: String) throws -> String {
            try String(contentsOf: base.appendingPathComponent(relative), encoding: .utf8)
        }
        policies = try read(try string(json["policies"], "policies"))
        entities = try JSONParser.parse(Array(try Data(contentsOf: base.appendingPathComponent(try string(json["entities"], "entities")))))
        schema = try read(try string(json["schema"], "schema"))
        guard case .bool(let validates)? = json["shouldValidate"] else { throw IntegrationCorpus.Failure(description: "\(name): no shouldValidate") }
        shouldValidate = validates
        guard case .array(let items)? = json["requests"] else { throw IntegrationCorpus.Failure(description: "\(name): no requests") }
        requests = try items.map { item in
            func ids(_ key: String) throws -> Set<String> {
                guard case .array(let list)? = item[key] else { throw IntegrationCorpus.Failure(description: "\(file.lastPathComponent): `\(key)` missing") }
                return Set(try list.map { (entry: JSONValue) throws -> String in try string(entry, key) })
            }
            var validate = false
            if case .bool(let flag)? = item["validateRequest"] { validate = flag }
            return Expected(description: (try? string(item["description"], "description")) ?? "",
                            principal: item["principal"] ?? .null, action: item["action"] ?? .null, resource: item["resource"] ?? .null,
                            context: item["context"], validateRequest: validate,
                            decision: try string(item["decision"], "decision"), reason: try ids("reason"), errors: try ids("errors"))
        }
    }

    /// Runs every request; returns one line per disagreement with the real Cedar, and whether
    /// the policies passed validation.
    func run() -> (mismatches: [String], validated: Bool?) {
        var validated: Bool? = nil
        let mismatches = run(validated: &validated)
        return (mismatches, validated)
    }

    func run(validated: inout Bool?) -> [String] {
        var mismatches: [String] = []
        let policySet: PolicySet
        var spans: [String: PolicySpans] = [:]
        do {
            var set = PolicySet()
            let located = try CedarParser.locatedPolicies(policies)
            for (index, policy) in located.enumerated() {
                try set.add(policy.policy, id: "policy\(index)")
                spans["policy\(index)"] = policy.spans
            }
            policySet = set
            mismatches += SpanChecks.problems(located, in: policies).map { "\(name): \($0)" }
        } catch {
            return ["\(name): policies do not parse: \(error)"]
        }
        let schemaValue: Schema
        do {
            schemaValue = try CedarSchemaParser.parse(schema)
        } catch {
            return ["\(name): schema does not parse: \(error)"]
        }
        // The schema's other forms read back to the same schema.
        if (try? CedarSchemaJSON.parse(schemaValue.json)) != schemaValue { mismatches.append("\(name): the schema's JSON form reads back differently") }
        if (try? CedarSchemaParser.parse(schemaValue.text)) != schemaValue { mismatches.append("\(name): the schema printed as text reads back differently") }
        let validation = Validator(schema: schemaValue).validate(policySet, spans: spans)
        validated = validation.passed
        mismatches += SpanChecks.unlocated(validation, spans, policySet).map { "\(name): \($0)" }
        if validation.passed != shouldValidate {
            mismatches.append("\(name): validation \(validation.passed ? "passed" : "failed") but Cedar says shouldValidate \(shouldValidate): \(validation.errors.map(\.description).joined(separator: "; "))")
        }
        let reader = SchemaJSON(schema: schemaValue)
        let indexed = Authorizer(policies: policySet), everyPolicy = Authorizer(policies: policySet, indexed: false)
        let store: Entities
        do {
            store = try Entities(try reader.entities(entities))
        } catch {
            return ["\(name): entities are refused: \(error)"]
        }
        for (index, expected) in requests.enumerated() {
            let label = "\(name) request \(index) (\(expected.description))"
            do {
                let action = try CedarJSON.entityUID(expected.action, at: "action")
                let request = Request(principal: try CedarJSON.entityUID(expected.principal, at: "principal"), action: action,
                                      resource: try CedarJSON.entityUID(expected.resource, at: "resource"),
                                      context: try reader.context(expected.context, action: action))
                if expected.validateRequest, let problem = reader.requestError(request) {
                    mismatches.append("\(label): the request fails validation: \(problem)")
                    continue
                }
                let response = indexed.isAuthorized(request, entities: store)
                let unindexed = everyPolicy.isAuthorized(request, entities: store)
                if unindexed.decision != response.decision || unindexed.reasons != response.reasons || unindexed.errors != response.errors {
                    mismatches.append("\(label): the index changed the answer: \(response) without it \(unindexed)")
                }
                let reasons = Set(response.reasons), errors = Set(response.errors.map(\.policyID))
                if response.decision.rawValue != expected.decision || reasons != expected.reason || errors != expected.errors {
                    let details = response.errors.map { "\($0.policyID): \($0.error.message)" }.joined(separator: "; ")
                    mismatches.append("\(label): got \(response.decision.rawValue) reasons \(reasons.sorted()) errors \(errors.sorted()) [\(details)], Cedar says \(expected.decision) reasons \(expected.reason.sorted()) errors \(expected.errors.sorted())")
                }
            } catch {
                mismatches.append("\(label): the request is refused: \(error)")
            }
        }
        return mismatches
    }
}
