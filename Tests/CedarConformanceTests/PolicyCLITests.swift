import CedarCore
import Foundation
import StrictJSON
import Testing
import WritTestSupport

/// `writ policy authorize` as a process: Cedar's hand-written integration tests in batch mode
/// (entities and contexts read with their schemas), one request with its exit code, and the
/// errors a user sees.
@Suite struct PolicyCLITests {
    static func writ(_ arguments: [String]) async throws -> ProcessRunner.Result {
        try await ProcessRunner.run(try TestEnvironment.executable("writ"), ["policy", "authorize"] + arguments)
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("writ-policy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func batchModeAnswersCedarsHandWrittenTests() async throws {
        let data = try IntegrationCorpus.dataRoot()
        let files = try IntegrationCorpus.testFiles().filter { !$0.file.path.contains("corpus-tests") }
        #expect(files.count == IntegrationCorpus.handWrittenCount)
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for (file, _) in files {
            let test = try JSONParser.parse(Array(try Data(contentsOf: file)))
            guard case .array(let requests)? = test["requests"], case .string(let policies)? = test["policies"],
                  case .string(let entities)? = test["entities"], case .string(let schema)? = test["schema"] else {
                Issue.record("\(file.lastPathComponent): unexpected shape")
                continue
            }
            var lines = ""
            for request in requests {
                var fields: [JSONMember] = []
                for key in ["principal", "action", "resource", "context"] { if let value = request[key] { fields.append(JSONMember(key, value)) } }
                lines += JSONValue.object(fields).text + "\n"
            }
            lines += "{\"principal\": 1}\n"
            let requestsFile = directory.appendingPathComponent("requests.jsonl")
            try lines.write(to: requestsFile, atomically: true, encoding: .utf8)
            let run = try await Self.writ(["--policies", data.appendingPathComponent(policies).path, "--entities", data.appendingPathComponent(entities).path,
                                     "--schema", data.appendingPathComponent(schema).path, "--requests", requestsFile.path])
            #expect(run.status == 0, "\(file.lastPathComponent): \(run.summary)")
            let answers = run.stdout.split(separator: "\n").map { try? JSONParser.parse(String($0)) }
            #expect(answers.count == requests.count + 1, "\(file.lastPathComponent): \(run.stdout)")
            for (index, request) in requests.enumerated() where index < answers.count {
                let answer = answers[index]
                #expect(answer?["decision"] == request["decision"], "\(file.lastPathComponent) #\(index): \(String(describing: answer?.text))")
                for key in ["reason", "errors"] {
                    guard case .array(let got)? = answer?[key], case .array(let want)? = request[key] else {
                        Issue.record("\(file.lastPathComponent) #\(index): no `\(key)`")
                        continue
                    }
                    #expect(Set(got.map(\.text)) == Set(want.map(\.text)), "\(file.lastPathComponent) #\(index) \(key)")
                }
            }
            if case .string(let message)? = answers.last??["error"] {
                #expect(message.contains("principal"), "\(message)")
            } else {
                Issue.record("\(file.lastPathComponent): a bad line must yield {\"error\": …} in its place: \(run.stdout)")
            }
        }
    }

    @Test func oneRequestPrintsTheDecisionAndExitsWithIt() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let policies = directory.appendingPathComponent("p.cedar"), entities = directory.appendingPathComponent("e.json")
        try """
            permit(principal in Group::"staff", action == Action::"read", resource) when { resource.public || context.mfa };
            forbid(principal, action, resource) when { principal.suspended };
            permit(principal == ?principal, action, resource in ?resource);
            """.write(to: policies, atomically: true, encoding: .utf8)
        try """
            [{"uid": {"type": "User", "id": "alice"}, "attrs": {"suspended": false}, "parents": [{"type": "Group", "id": "staff"}]},
             {"uid": {"type": "User", "id": "bob"}, "attrs": {}, "parents": []},
             {"uid": {"type": "Doc", "id": "d"}, "attrs": {"public": false}, "parents": [{"type": "Folder", "id": "f"}]}]
            """.write(to: entities, atomically: true, encoding: .utf8)
        let context = directory.appendingPathComponent("c.json")
        try #"{"mfa": true}"#.write(to: context, atomically: true, encoding: .utf8)
        let base = ["--policies", policies.path, "--entities", entities.path, "--action", #"Action::"read""#, "--resource", #"Doc::"d""#]

        let allowed = try await Self.writ(base + ["--principal", #"User::"alice""#, "--context", context.path])
        #expect(allowed.status == 0 && allowed.stdout == "ALLOW\ndetermining policies: policy0\n", "\(allowed.summary)")
        let denied = try await Self.writ(base + ["--principal", #"User::"alice""#])
        #expect(denied.status == 2 && denied.stdout.hasPrefix("DENY\nerrors:\n  policy0: record does not have the attribute `mfa`"), "\(denied.summary)")
        let erroring = try await Self.writ(base + ["--principal", #"User::"bob""#, "--output", "json"])
        #expect(erroring.status == 2, "\(erroring.summary)")
        let json = try JSONParser.parse(erroring.stdout)
        #expect(json["decision"] == .string("deny"))
        #expect(json["errors"] == .array([.string("policy1")]), "bob has no `suspended`: \(erroring.stdout)")

        let links = directory.appendingPathComponent("links.json")
        try #"[{"template_id": "policy2", "link_id": "bob-folder", "args": {"?principal": "User::\"bob\"", "?resource": "Folder::\"f\""}}]"#
            .write(to: links, atomically: true, encoding: .utf8)
        let linked = try await Self.writ(base + ["--principal", #"User::"bob""#, "--template-linked", links.path])
        // The link permits; the forbid errors for bob (no `suspended`) and is skipped, so it cannot deny.
        #expect(linked.status == 0 && linked.stdout == "ALLOW\ndetermining policies: bob-folder\nerrors:\n  policy1: `User::\"bob\"` does not have the attribute `suspended`\n", "\(linked.summary)")
    }

    @Test func brokenInputIsReportedLikeACompiler() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let policies = directory.appendingPathComponent("p.cedar"), entities = directory.appendingPathComponent("e.json")
        try "permit(principal, action, resource)\nwhen { principal.if == 1 };\n".write(to: policies, atomically: true, encoding: .utf8)
        try "[]".write(to: entities, atomically: true, encoding: .utf8)
        let request = ["--principal", #"User::"a""#, "--action", #"Action::"a""#, "--resource", #"R::"r""#]
        let broken = try await Self.writ(["--policies", policies.path, "--entities", entities.path] + request)
        #expect(broken.status == 1, "\(broken.summary)")
        #expect(broken.stderr == "\(policies.path):2:18: error: this identifier is reserved and cannot be used: if\n  | when { principal.if == 1 };\n  |                  ^\n", "\(broken.summary)")

        try "permit(principal, action, resource);".write(to: policies, atomically: true, encoding: .utf8)
        try #"[{"uid": {"type": "User", "id": "a"}, "attrs": {"n": 1.5}, "parents": []}]"#.write(to: entities, atomically: true, encoding: .utf8)
        let float = try await Self.writ(["--policies", policies.path, "--entities", entities.path] + request)
        #expect(float.status == 1 && float.stderr.contains("`1.5` is not a 64-bit integer"), "\(float.summary)")
        try #"[{"uid": {"type": "User", "id": "a"}, "attrs": {"n": 1, "n": 2}, "parents": []}]"#.write(to: entities, atomically: true, encoding: .utf8)
        let duplicate = try await Self.writ(["--policies", policies.path, "--entities", entities.path] + request)
        #expect(duplicate.status == 1 && duplicate.stderr.contains("duplicate key `n`"), "\(duplicate.summary)")
        try #"[{"uid": {"type": "User", "id": "a"}, "attrs": {"n": 9007199254740993}, "parents": []}]"#.write(to: entities, atomically: true, encoding: .utf8)
        let big = try await Self.writ(["--policies", policies.path, "--entities", entities.path] + request)
        #expect(big.status == 0, "integers beyond 2^53 are exact Cedar longs: \(big.summary)")
        let badEntity = try await Self.writ(["--policies", policies.path, "--entities", entities.path, "--principal", "User:a", "--action", #"Action::"a""#, "--resource", #"R::"r""#])
        #expect(badEntity.status == 1 && badEntity.stderr.contains("--principal"), "\(badEntity.summary)")
    }

    @Test func validateChecksPoliciesAgainstTheSchema() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let schema = directory.appendingPathComponent("s.cedarschema"), policies = directory.appendingPathComponent("p.cedar")
        try """
            entity Group;
            entity User in [Group] = { department: String, manager?: User };
            entity Doc = { owner: User, public: Bool };
            action read, write appliesTo { principal: [User], resource: [Doc], context: { mfa: Bool } };
            """.write(to: schema, atomically: true, encoding: .utf8)
        func validate(_ text: String) async throws -> ProcessRunner.Result {
            try text.write(to: policies, atomically: true, encoding: .utf8)
            return try await ProcessRunner.run(try TestEnvironment.executable("writ"), ["policy", "validate", "--policies", policies.path, "--schema", schema.path])
        }
        let good = try await validate("""
            permit(principal in Group::"staff", action == Action::"read", resource) when { resource.public || context.mfa };
            permit(principal, action, resource) when { principal has manager && principal.manager == resource.owner };
            """)
        #expect(good.status == 0 && good.stdout.hasSuffix("validation passed\n"), "\(good.summary)")
        // The schema in Cedar's JSON format (writ policy translate --schema) validates the same way.
        let translated = try await ProcessRunner.run(try TestEnvironment.executable("writ"), ["policy", "translate", "--schema", schema.path])
        #expect(translated.status == 0 && translated.stdout.contains("\"appliesTo\""), "\(translated.summary)")
        let schemaJSON = directory.appendingPathComponent("s.json")
        try translated.stdout.write(to: schemaJSON, atomically: true, encoding: .utf8)
        let viaJSON = try await ProcessRunner.run(try TestEnvironment.executable("writ"), ["policy", "validate", "--policies", policies.path, "--schema", schemaJSON.path])
        #expect(viaJSON.status == 0 && viaJSON.stdout.hasSuffix("validation passed\n"), "\(viaJSON.summary)")
        let backToText = try await ProcessRunner.run(try TestEnvironment.executable("writ"), ["policy", "translate", "--schema", schemaJSON.path])
        #expect(backToText.status == 0 && backToText.stdout.contains("entity User in [Group] = {\"department\": __cedar::String, \"manager\"?: User};"), "\(backToText.summary)")
        let cases: [(String, String)] = [
            ("permit(principal, action, resource) when { principal.manager == resource.owner };", "optional"),
            ("permit(principal, action, resource) when { principal.age > 3 };", "does not exist"),
            ("permit(principal == Robot::\"r\", action, resource);", "unrecognized entity type `Robot`"),
            ("permit(principal, action == Action::\"delete\", resource);", "unrecognized action"),
            ("permit(principal, action, resource) when { principal == \"alice\" };", "incompatible"),
            ("permit(principal, action, resource) when { [].isEmpty() };", "empty set"),
            ("permit(principal, action, resource) when { decimal(\"1.00000\") == decimal(\"1.0\") };", "invalid argument"),
            ("permit(principal, action in [Action::\"read\"], resource == Group::\"g\");", "no action in the scope applies"),
        ]
        for (text, reason) in cases {
            let run = try await validate(text)
            #expect(run.status == 3 && run.stdout.contains("\(policies.path):1:") && run.stdout.contains(": error: policy0: ")
                    && run.stdout.contains(reason), "\(text)\n\(run.summary)")
        }
        // Findings are printed like a compiler's: file:line:column, then the line with carets
        // under the offending expression.
        let located = try await validate("""
            permit(principal, action, resource)
              when { principal.department == "it" && principal.age > 3 };
            """)
        let expected = """
            \(policies.path):2:42: error: policy0: attribute `age` does not exist on User
              |   when { principal.department == "it" && principal.age > 3 };
              |                                          ^^^^^^^^^^^^^
            """
        #expect(located.status == 3 && located.stdout.hasPrefix(expected), "\(located.summary)")
        // A policy that can never apply is a warning, not a failure.
        let impossible = try await validate("permit(principal, action, resource) when { principal is Doc };")
        #expect(impossible.status == 0 && impossible.stdout.contains("\(policies.path):1:1: warning: policy0: "), "\(impossible.summary)")
        // authorize --schema refuses policies that do not validate (exit 3).
        let entities = directory.appendingPathComponent("e.json")
        try "[]".write(to: entities, atomically: true, encoding: .utf8)
        try "permit(principal, action, resource) when { principal.age > 3 };".write(to: policies, atomically: true, encoding: .utf8)
        let authorize = try await Self.writ(["--policies", policies.path, "--entities", entities.path, "--schema", schema.path,
                                       "--principal", #"User::"a""#, "--action", #"Action::"read""#, "--resource", #"Doc::"d""#, "--context", "/dev/null"])
        #expect(authorize.status == 3, "\(authorize.summary)")
    }

    /// The `writ` binary carries its own Cedar: it links no other implementation (no shared
    /// library whose name mentions Cedar, no Python) and decides with an empty environment, where
    /// it could not find another program to run.
    @Test func writNeitherLinksNorSpawnsAnotherCedar() async throws {
        let writ = try TestEnvironment.executable("writ")
        let ldd = try await ProcessRunner.run(try TestEnvironment.tool("ldd"), [writ])
        #expect(ldd.status == 0, "\(ldd.summary)")
        for line in ldd.stdout.split(separator: "\n") {
            #expect(!line.lowercased().contains("cedar") && !line.lowercased().contains("python"), "\(line)")
        }
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let policies = directory.appendingPathComponent("p.cedar"), entities = directory.appendingPathComponent("e.json")
        try #"permit(principal == User::"a", action, resource) when { ip("10.0.0.1").isInRange(ip("10.0.0.0/8")) };"#.write(to: policies, atomically: true, encoding: .utf8)
        try "[]".write(to: entities, atomically: true, encoding: .utf8)
        let run = try await ProcessRunner.run(writ, ["policy", "authorize", "--policies", policies.path, "--entities", entities.path,
                                               "--principal", #"User::"a""#, "--action", #"Action::"a""#, "--resource", #"R::"r""#], environment: [:])
        #expect(run.status == 0 && run.stdout == "ALLOW\ndetermining policies: policy0\n", "\(run.summary)")
    }

    static func policy(_ arguments: [String]) async throws -> ProcessRunner.Result {
        try await ProcessRunner.run(try TestEnvironment.executable("writ"), ["policy"] + arguments)
    }

    /// translate (text → JSON → text, and authorize from the JSON form with its ids), format
    /// (idempotent, --check), link and evaluate.
    @Test func translateFormatLinkAndEvaluate() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let text = directory.appendingPathComponent("p.cedar"), entities = directory.appendingPathComponent("e.json")
        try """
            @id("owner") permit(principal, action == Action::"read", resource) when { resource.owner == principal };   // a comment
            forbid(principal, action, resource) unless { context has mfa && context.mfa } ;
            permit(principal == ?principal, action in [Action::"read", Action::"list"], resource in ?resource);
            """.write(to: text, atomically: true, encoding: .utf8)
        try #"[{"uid": {"type": "User", "id": "a"}, "attrs": {}, "parents": []}, {"uid": {"type": "Doc", "id": "d"}, "attrs": {"owner": {"__entity": {"type": "User", "id": "a"}}}, "parents": []}]"#
            .write(to: entities, atomically: true, encoding: .utf8)

        let json = try await Self.policy(["translate", "--policies", text.path])
        #expect(json.status == 0, "\(json.summary)")
        let document = try JSONParser.parse(json.stdout)
        #expect(document["templates"]?["policy2"] != nil && document["staticPolicies"]?["policy0"]?["annotations"]?["id"] == .string("owner"), "\(json.stdout)")
        let jsonFile = directory.appendingPathComponent("p.json")
        try json.stdout.write(to: jsonFile, atomically: true, encoding: .utf8)
        let request = ["--entities", entities.path, "--principal", #"User::"a""#, "--action", #"Action::"read""#, "--resource", #"Doc::"d""#]
        let fromJSON = try await Self.writ(["--policies", jsonFile.path] + request)
        #expect(fromJSON.status == 2 && fromJSON.stdout == "DENY\ndetermining policies: policy1\n", "JSON ids are its keys: \(fromJSON.summary)")
        let back = try await Self.policy(["translate", "--policies", jsonFile.path])
        #expect(back.status == 0 && back.stdout.contains("// policy2\npermit (\n  principal == ?principal,"), "\(back.summary)")

        let formatted = try await Self.policy(["format", "--policies", text.path])
        #expect(formatted.status == 0 && formatted.stdout.hasPrefix("@id(\"owner\")\npermit (\n  principal,\n  action == Action::\"read\",\n  resource\n)\nwhen { resource.owner == principal }; // a comment\n"), "\(formatted.summary)")
        let unformatted = try await Self.policy(["format", "--policies", text.path, "--check"])
        #expect(unformatted.status == 2, "\(unformatted.summary)")
        try formatted.stdout.write(to: text, atomically: true, encoding: .utf8)
        let clean = try await Self.policy(["format", "--policies", text.path, "--check"])
        #expect(clean.status == 0 && clean.stdout.isEmpty, "formatting is idempotent: \(clean.summary)")

        let link = try await Self.policy(["link", "--policies", text.path, "--template-id", "policy2", "--new-id", "a-docs", "--principal", #"User::"a""#, "--resource", #"Folder::"f""#])
        #expect(link.status == 0 && link.stdout.contains("principal == User::\"a\",") && link.stdout.contains("resource in Folder::\"f\""), "\(link.summary)")
        let badLink = try await Self.policy(["link", "--policies", text.path, "--template-id", "policy2", "--new-id", "x", "--principal", #"User::"a""#])
        #expect(badLink.status == 1 && badLink.stderr.contains("slots"), "\(badLink.summary)")

        let value = try await Self.policy(["evaluate", #"[decimal("1.50"), ip("10.1.2.3/8")].contains(decimal("1.5")) && 3 * 4 > 11"#])
        #expect(value.status == 0 && value.stdout == "true\n", "\(value.summary)")
        let record = try await Self.policy(["evaluate", #"{b: [2, 1], "a": principal.owner}"#, "--entities", entities.path, "--principal", #"Doc::"d""#])
        #expect(record.status == 0 && record.stdout == "{\"a\": User::\"a\", \"b\": [1, 2]}\n", "\(record.summary)")
        let overflow = try await Self.policy(["evaluate", "9223372036854775807 + 1"])
        #expect(overflow.status == 1 && overflow.stderr.contains("integer overflow"), "\(overflow.summary)")
    }
}
