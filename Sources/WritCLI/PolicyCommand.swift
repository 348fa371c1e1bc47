import ArgumentParser
import CedarCore
import CedarParser
import CedarValidator
import Foundation
import StrictJSON

/// `writ policy …`: Cedar policies, with the Cedar CLI's commands and exit codes.
struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Decide requests against Cedar policies (the Cedar language, cedarpolicy.com).",
        discussion: """
            Writ's own Cedar engine, written to Rust Cedar 4.12's semantics. The commands mirror the \
            Cedar CLI, so `writ policy authorize` takes the same files and prints the same answers.
            """,
        subcommands: [Authorize.self, Validate.self, Format.self, Translate.self, Link.self, Evaluate.self]
    )

    /// A failure of a `writ policy` command: the message (already formatted, possibly several
    /// lines) and the exit code.
    struct Failure: Error {
        let message: String
        let exitCode: Int32
    }

    struct Authorize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decide one request, or a file of requests, against policies and entities.",
            discussion: """
                One request: prints ALLOW or DENY, the policies that determined it, and the policies that \
                could not be evaluated with why. Exit codes: 0 allow, 2 deny, 1 error (a file that does not \
                parse or cannot be read, a request that does not conform to --schema), 3 the policies do not \
                validate against --schema.

                Batch (--requests FILE.jsonl): one JSON request per line in the shape of Cedar's integration \
                tests, {"principal": {"type": "User", "id": "alice"}, "action": {…}, "resource": {…}, \
                "context": {…}}; one JSON decision per line out, in order: {"decision": "allow"|"deny", \
                "reason": [policy ids], "errors": [policy ids], "diagnostics": {"errors": [{"policy": id, \
                "message": …}]}}. A line that cannot be read yields {"error": "…"} in its place; exit 0 when \
                every line was decided.

                Policy ids are positional (policy0, policy1, … in file order; annotations do not rename \
                policies) and template links use their link id.

                Example:
                  writ policy authorize --policies policies.cedar --entities entities.json \\
                    --principal 'User::"alice"' --action 'Action::"view"' --resource 'Photo::"vacation.jpg"'
                """)

        @Option(help: ArgumentHelp("Policies in Cedar syntax.", valueName: "file")) var policies: String
        @Option(help: ArgumentHelp("Entities as Cedar JSON (an array of {uid, attrs, parents, tags}).", valueName: "file")) var entities: String
        @Option(help: ArgumentHelp("A Cedar schema (.cedarschema): entities and context are read with its types and requests must conform.", valueName: "file")) var schema: String?
        @Option(name: .customLong("template-linked"), help: ArgumentHelp("Template links: [{\"template_id\": …, \"link_id\": …, \"args\": {\"?principal\": \"User::\\\"a\\\"\"}}].", valueName: "file")) var templateLinked: String?
        @Option(help: ArgumentHelp("The principal, e.g. 'User::\"alice\"'.", valueName: "entity")) var principal: String?
        @Option(help: ArgumentHelp("The action, e.g. 'Action::\"view\"'.", valueName: "entity")) var action: String?
        @Option(help: ArgumentHelp("The resource, e.g. 'Photo::\"a.jpg\"'.", valueName: "entity")) var resource: String?
        @Option(help: ArgumentHelp("The request context: a JSON object.", valueName: "file")) var context: String?
        @Option(help: ArgumentHelp("A file of requests, one JSON object per line (batch mode).", valueName: "file")) var requests: String?
        @Option(help: ArgumentHelp("text (default) or json.", valueName: "format")) var output: OutputFormat = .text
        @Option(name: .customLong("policy-format"), help: ArgumentHelp("cedar or json (default: by the file's extension).", valueName: "format")) var policyFormat: PolicyFormat?
        @Option(name: .customLong("schema-format"), help: ArgumentHelp("cedar or json (default: by the file's extension).", valueName: "format")) var schemaFormat: PolicyFormat?

        func validate() throws {
            if requests == nil {
                guard principal != nil, action != nil, resource != nil else {
                    throw ValidationError("give --principal, --action and --resource, or --requests FILE")
                }
            } else if principal != nil || action != nil || resource != nil || context != nil {
                throw ValidationError("--requests cannot be combined with --principal, --action, --resource or --context")
            }
        }

        func run() throws {
            do {
                let loaded = try PolicyInputs(policies: policies, entities: entities, schema: schema, templateLinked: templateLinked,
                                              policyFormat: policyFormat, schemaFormat: schemaFormat)
                if let schema = loaded.schema {
                    let result = Validator(schema: schema).validate(loaded.policySet, spans: loaded.source.spans)
                    guard result.passed else {
                        let lines = result.errors.map { loaded.source.describe($0, as: "error") }.joined(separator: "\n")
                        throw Failure(message: "\(lines)\nerror: the policies do not validate against \(self.schema!) (see `writ policy validate`)", exitCode: 3)
                    }
                }
                if let requests {
                    try loaded.runBatch(path: requests)
                    return
                }
                let request = try loaded.request(principal: principal!, action: action!, resource: resource!, contextPath: context)
                let response = loaded.decide(request)
                switch output {
                case .json: print(PolicyInputs.json(response).text)
                case .text:
                    print(response.decision == .allow ? "ALLOW" : "DENY")
                    if !response.reasons.isEmpty { print("determining policies: " + response.reasons.sorted().joined(separator: ", ")) }
                    if !response.errors.isEmpty {
                        print("errors:")
                        for error in response.errors { print("  \(error.policyID): \(error.error.message)") }
                    }
                }
                if response.decision == .deny { throw ExitCode(2) }
            } catch let failure as Failure {
                var stderr = StandardError()
                print(failure.message, to: &stderr)
                throw ExitCode(failure.exitCode)
            }
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check policies against a schema (Cedar's strict validation).",
            discussion: """
                Every policy and template is checked in every request environment the schema allows \
                (each action with each principal and resource type it applies to): entity types and action \
                ids must be declared, attributes must exist (optional ones guarded by `has`), operand types \
                must fit, and strict mode refuses empty set literals, comparisons of incompatible types and \
                extension constructors on non-literals. Errors fail validation (exit 3); warnings, such as a \
                policy that can never apply, are printed and do not. With --entities the entities are also \
                checked against the schema.

                Example:
                  writ policy validate --policies policies.cedar --schema schema.cedarschema
                """)
        @Option(help: ArgumentHelp("Policies in Cedar syntax.", valueName: "file")) var policies: String
        @Option(help: ArgumentHelp("The Cedar schema (.cedarschema).", valueName: "file")) var schema: String
        @Option(help: ArgumentHelp("Entities to check against the schema as well.", valueName: "file")) var entities: String?
        @Option(name: .customLong("template-linked"), help: ArgumentHelp("Template links to check as well.", valueName: "file")) var templateLinked: String?
        @Option(name: .customLong("policy-format"), help: ArgumentHelp("cedar or json (default: by the file's extension).", valueName: "format")) var policyFormat: PolicyFormat?
        @Option(name: .customLong("schema-format"), help: ArgumentHelp("cedar or json (default: by the file's extension).", valueName: "format")) var schemaFormat: PolicyFormat?

        func run() throws {
            do {
                let loaded = try PolicyInputs(policies: policies, entities: entities, schema: schema, templateLinked: templateLinked,
                                              policyFormat: policyFormat, schemaFormat: schemaFormat)
                let result = Validator(schema: loaded.schema!).validate(loaded.policySet, spans: loaded.source.spans)
                for warning in result.warnings { print(loaded.source.describe(warning, as: "warning")) }
                for error in result.errors { print(loaded.source.describe(error, as: "error")) }
                guard result.passed else {
                    print("validation failed: \(result.errors.count) error\(result.errors.count == 1 ? "" : "s")")
                    throw ExitCode(3)
                }
                print("validation passed")
            } catch let failure as Failure {
                var stderr = StandardError()
                print(failure.message, to: &stderr)
                throw ExitCode(failure.exitCode)
            }
        }
    }

    struct Translate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Translate policies (or a schema) between Cedar text and Cedar's JSON format.",
            discussion: """
                Text to JSON gives {"staticPolicies": {id: …}, "templates": {id: …}, "templateLinks": […]}, \
                as the Cedar CLI and cedarpy's policies_to_json_str write it (ids policy0, policy1, … in \
                file order). JSON to text writes each policy in Cedar syntax with a comment naming its id. \
                With --schema, a Cedar schema is translated between its two syntaxes (names fully qualified).

                Example:
                  writ policy translate --policies policies.cedar > policies.json
                """)
        @Option(help: ArgumentHelp("Policies to translate.", valueName: "file")) var policies: String?
        @Option(help: ArgumentHelp("A schema to translate instead (.cedarschema ↔ JSON).", valueName: "file")) var schema: String?
        @Option(name: .customLong("policy-format"), help: ArgumentHelp("The input's format, cedar or json (default: by extension).", valueName: "format")) var policyFormat: PolicyFormat?
        @Option(name: .customLong("template-linked"), help: ArgumentHelp("Template links to include (into JSON).", valueName: "file")) var templateLinked: String?

        func validate() throws {
            guard (policies == nil) != (schema == nil) else { throw ValidationError("give --policies FILE or --schema FILE") }
        }

        func run() throws {
            do throws(Failure) {
                if let schema {
                    let text = try PolicyInputs.read(schema)
                    let fromJSON = (policyFormat ?? (schema.hasSuffix(".json") ? .json : .cedar)) == .json
                    do {
                        let parsed = fromJSON ? try CedarSchemaJSON.parse(text) : try CedarSchemaParser.parse(text)
                        print(fromJSON ? parsed.text : parsed.json.text, terminator: fromJSON ? "" : "\n")
                    } catch {
                        let where_ = error.position.map { "\(schema):\($0): " } ?? "\(schema): "
                        throw Failure(message: "\(where_)error: \(error.message)" + (error.snippet.map { "\n" + $0 } ?? ""), exitCode: 1)
                    }
                    return
                }
                let policies = policies!
                var set = try PolicyInputs.policies(policies, format: policyFormat)
                if let templateLinked { try PolicyInputs.link(&set, path: templateLinked) }
                if (policyFormat ?? (policies.hasSuffix(".json") ? .json : .cedar)) == .cedar {
                    print(PolicyJSON.json(set).text)
                } else {
                    print(CedarText.policySet(set), terminator: "")
                }
            } catch {
                var stderr = StandardError()
                print(error.message, to: &stderr)
                throw ExitCode(error.exitCode)
            }
        }
    }

    struct Format: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print policies in one canonical layout (idempotent), or check that a file already is.",
            discussion: """
                Each policy: annotations, then `permit (` or `forbid (` with the scope one constraint per \
                line, then one `when { … }` or `unless { … }` per line; expressions with the parentheses \
                precedence needs and no others. Comments are kept: one on its own line stays before the policy \
                that follows it, one after a policy's `;` stays at the end of that policy, and a policy with a \
                comment inside it is left exactly as written (said on stderr). --check prints nothing and exits 2 \
                when the file differs from its formatted form.

                Example:
                  writ policy format --policies policies.cedar --check
                """)
        @Option(help: ArgumentHelp("Policies in Cedar syntax.", valueName: "file")) var policies: String
        @Flag(help: "Exit 2 when the file is not formatted, instead of printing it.") var check = false

        func run() throws {
            var stderr = StandardError()
            let text: String, formatted: String
            do throws(Failure) {
                text = try PolicyInputs.read(policies)
                do {
                    let result = try CedarFormatter.format(text)
                    formatted = result.text
                    if !check {
                        for index in result.keptAsWritten {
                            print("\(policies): note: policy\(index) is kept as written: it has a comment inside", to: &stderr)
                        }
                    }
                } catch {
                    throw Failure(message: "\(policies):\(error.position): error: \(error.message)\n\(error.snippet)", exitCode: 1)
                }
            } catch {
                print(error.message, to: &stderr)
                throw ExitCode(error.exitCode)
            }
            if check {
                guard formatted == text else {
                    print("\(policies): not formatted (run `writ policy format --policies \(policies)`)", to: &stderr)
                    throw ExitCode(2)
                }
            } else {
                print(formatted, terminator: "")
            }
        }
    }

    struct Link: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Link a template: print the policy it becomes for the given slot values.",
            discussion: """
                Example:
                  writ policy link --policies templates.cedar --template-id policy0 --new-id alice-docs \
                    --principal 'User::"alice"' --resource 'Folder::"docs"'
                """)
        @Option(help: ArgumentHelp("The file holding the template.", valueName: "file")) var policies: String
        @Option(name: .customLong("policy-format"), help: ArgumentHelp("cedar or json (default: by extension).", valueName: "format")) var policyFormat: PolicyFormat?
        @Option(name: .customLong("template-id"), help: ArgumentHelp("The template's id (policyN for Cedar text).", valueName: "id")) var templateID: String
        @Option(name: .customLong("new-id"), help: ArgumentHelp("The id of the linked policy.", valueName: "id")) var newID: String
        @Option(help: ArgumentHelp("The value of ?principal.", valueName: "entity")) var principal: String?
        @Option(help: ArgumentHelp("The value of ?resource.", valueName: "entity")) var resource: String?
        @Option(help: ArgumentHelp("text (default) or json: the link in the Cedar CLI's template-links format.", valueName: "format")) var output: OutputFormat = .text

        func run() throws {
            do throws(Failure) {
                var set = try PolicyInputs.policies(policies, format: policyFormat)
                var values: [Slot: EntityUID] = [:]
                for (slot, text) in [(Slot.principal, principal), (.resource, resource)] {
                    guard let text else { continue }
                    do {
                        values[slot] = try CedarParser.entityUID(text)
                    } catch {
                        throw Failure(message: "--\(slot == .principal ? "principal" : "resource"): error: `\(text)` is not an entity reference: \(error.message)", exitCode: 1)
                    }
                }
                do {
                    try set.link(template: templateID, id: newID, values: values)
                } catch {
                    throw Failure(message: "error: \(error.message)", exitCode: 1)
                }
                let linked = set.policies.first { $0.id == newID }!.policy
                switch output {
                case .text: print(CedarText.policy(linked, id: newID))
                case .json:
                    let args = values.sorted { $0.key.rawValue < $1.key.rawValue }.map { JSONMember($0.key.rawValue, .string($0.value.description)) }
                    print(JSONValue.array([.object([JSONMember("template_id", .string(templateID)), JSONMember("link_id", .string(newID)), JSONMember("args", .object(args))])]).text)
                }
            } catch {
                var stderr = StandardError()
                print(error.message, to: &stderr)
                throw ExitCode(error.exitCode)
            }
        }
    }

    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evaluate one Cedar expression and print its value.",
            discussion: """
                The request variables are bound with --principal, --action, --resource and --context; \
                entity attributes come from --entities. Exit 0 with the value, 1 when the expression does \
                not parse or its evaluation fails (the error is printed).

                Example:
                  writ policy evaluate 'ip("10.1.2.3").isInRange(ip("10.0.0.0/8")) && 3 * 4 > 11'
                """)
        @Argument(help: ArgumentHelp("The expression.", valueName: "expr")) var expression: String
        @Option(help: ArgumentHelp("Entities as Cedar JSON.", valueName: "file")) var entities: String?
        @Option(help: ArgumentHelp("The principal (default User::\"\").", valueName: "entity")) var principal: String = #"User::"""#
        @Option(help: ArgumentHelp("The action (default Action::\"\").", valueName: "entity")) var action: String = #"Action::"""#
        @Option(help: ArgumentHelp("The resource (default Resource::\"\").", valueName: "entity")) var resource: String = #"Resource::"""#
        @Option(help: ArgumentHelp("The context: a JSON object.", valueName: "file")) var context: String?

        func run() throws {
            do throws(Failure) {
                let expr: Expr
                do {
                    expr = try CedarParser.expression(expression)
                } catch {
                    throw Failure(message: "expression:\(error.position): error: \(error.message)\n\(error.snippet)", exitCode: 1)
                }
                let inputs = try PolicyInputs(emptyWithEntities: entities)
                let request = try inputs.request(principal: principal, action: action, resource: resource, contextPath: context)
                do {
                    print(CedarText.value(try Evaluator(request: request, entities: inputs.store).evaluate(expr)))
                } catch {
                    throw Failure(message: "error: \(error.message)", exitCode: 1)
                }
            } catch {
                var stderr = StandardError()
                print(error.message, to: &stderr)
                throw ExitCode(error.exitCode)
            }
        }
    }

    enum PolicyFormat: String, ExpressibleByArgument, Sendable {
        case cedar, json
    }

    enum OutputFormat: String, ExpressibleByArgument, Sendable {
        case text, json
    }
}

/// The files `writ policy` commands read, parsed, with errors formatted like a compiler's.
struct PolicyInputs {
    let source: PolicySource
    let policySet: PolicySet
    let authorizer: Authorizer
    let store: Entities
    let schema: Schema?

    init(policies path: String, entities entitiesPath: String?, schema schemaPath: String?, templateLinked: String?,
         policyFormat: PolicyCommand.PolicyFormat? = nil, schemaFormat: PolicyCommand.PolicyFormat? = nil) throws(PolicyCommand.Failure) {
        source = try Self.source(path, format: policyFormat)
        var set = source.set
        if let templateLinked { try Self.link(&set, path: templateLinked) }
        policySet = set
        authorizer = Authorizer(policies: set)
        if let schemaPath {
            do {
                let text = try Self.read(schemaPath)
                let json = (schemaFormat ?? (schemaPath.hasSuffix(".json") ? .json : .cedar)) == .json
                schema = json ? try CedarSchemaJSON.parse(text) : try CedarSchemaParser.parse(text)
            } catch let error as SchemaError {
                let where_ = error.position.map { "\(schemaPath):\($0): " } ?? "\(schemaPath): "
                throw PolicyCommand.Failure(message: "\(where_)error: \(error.message)" + (error.snippet.map { "\n" + $0 } ?? ""), exitCode: 1)
            } catch let error as PolicyCommand.Failure {
                throw error
            } catch {
                throw PolicyCommand.Failure(message: "\(schemaPath): error: \(error)", exitCode: 1)
            }
        } else {
            schema = nil
        }
        guard let entitiesPath else {
            store = Entities()
            return
        }
        let json = try Self.json(entitiesPath)
        do throws(EntitiesError) {
            let list: [Entity]
            if let schema { list = try SchemaJSON(schema: schema).entities(json) } else { list = try CedarJSON.entities(json) }
            store = try Entities(list)
        } catch {
            throw PolicyCommand.Failure(message: "\(entitiesPath): error: \(error.message)", exitCode: 1)
        }
    }

    /// Policies from Cedar text (ids policy0, policy1, …) or Cedar's JSON policy format (ids are
    /// its keys); the format follows the extension unless given.
    static func policies(_ path: String, format: PolicyCommand.PolicyFormat?) throws(PolicyCommand.Failure) -> PolicySet {
        try source(path, format: format).set
    }

    /// The policies of `path` with where each was written (Cedar text only).
    static func source(_ path: String, format: PolicyCommand.PolicyFormat?) throws(PolicyCommand.Failure) -> PolicySource {
        let format = format ?? (path.hasSuffix(".json") ? .json : .cedar)
        switch format {
        case .json:
            do {
                return PolicySource(path: path, text: nil, set: try PolicyJSON.policySet(try json(path)), spans: [:])
            } catch let error as PolicyJSON.FormatError {
                throw PolicyCommand.Failure(message: "\(path): error: \(error.message)", exitCode: 1)
            } catch let error as PolicyCommand.Failure {
                throw error
            } catch {
                throw PolicyCommand.Failure(message: "\(path): error: \(error)", exitCode: 1)
            }
        case .cedar:
            let text = try read(path)
            var set = PolicySet()
            var spans: [String: PolicySpans] = [:]
            do {
                for (index, located) in try CedarParser.locatedPolicies(text).enumerated() {
                    try? set.add(located.policy, id: "policy\(index)")
                    spans["policy\(index)"] = located.spans
                }
            } catch {
                throw PolicyCommand.Failure(message: "\(path):\(error.position): error: \(error.message)\n\(error.snippet)", exitCode: 1)
            }
            return PolicySource(path: path, text: text, set: set, spans: spans)
        }
    }

    /// No policies; entities from `path` when given (for `writ policy evaluate`).
    init(emptyWithEntities path: String?) throws(PolicyCommand.Failure) {
        source = PolicySource(path: "", text: nil, set: PolicySet(), spans: [:])
        policySet = PolicySet()
        authorizer = Authorizer(policies: policySet)
        schema = nil
        guard let path else {
            store = Entities()
            return
        }
        let json = try Self.json(path)
        do throws(EntitiesError) {
            store = try Entities(try CedarJSON.entities(json))
        } catch {
            throw PolicyCommand.Failure(message: "\(path): error: \(error.message)", exitCode: 1)
        }
    }

    static func read(_ path: String) throws(PolicyCommand.Failure) -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw PolicyCommand.Failure(message: "\(path): error: cannot read the file (\(error.localizedDescription))", exitCode: 1)
        }
    }

    static func json(_ path: String) throws(PolicyCommand.Failure) -> JSONValue {
        let text = try read(path)
        do {
            return try JSONParser.parse(text)
        } catch {
            throw PolicyCommand.Failure(message: "\(path): error: not valid JSON: \(error)", exitCode: 1)
        }
    }

    /// Template links in the Cedar CLI's format.
    static func link(_ set: inout PolicySet, path: String) throws(PolicyCommand.Failure) {
        guard case .array(let links) = try json(path) else {
            throw PolicyCommand.Failure(message: "\(path): error: expected a JSON array of template links", exitCode: 1)
        }
        for (index, link) in links.enumerated() {
            guard case .string(let template)? = link["template_id"], case .string(let id)? = link["link_id"], case .object(let args)? = link["args"] else {
                throw PolicyCommand.Failure(message: "\(path): error: link \(index) needs template_id, link_id and args", exitCode: 1)
            }
            var values: [Slot: EntityUID] = [:]
            for arg in args {
                guard let slot = Slot(rawValue: arg.key) else {
                    throw PolicyCommand.Failure(message: "\(path): error: link \(index): `\(arg.key)` is not a slot (?principal or ?resource)", exitCode: 1)
                }
                do {
                    if case .string(let text) = arg.value { values[slot] = try CedarParser.entityUID(text) }
                    else { values[slot] = try CedarJSON.entityUID(arg.value, at: "args.\(arg.key)") }
                } catch {
                    throw PolicyCommand.Failure(message: "\(path): error: link \(index): \(arg.key): \(error)", exitCode: 1)
                }
            }
            do {
                try set.link(template: template, id: id, values: values)
            } catch {
                throw PolicyCommand.Failure(message: "\(path): error: link \(index): \(error.message)", exitCode: 1)
            }
        }
    }

    func context(_ json: JSONValue?, action: EntityUID) throws(EntitiesError) -> [CedarString: Value] {
        if let schema { return try SchemaJSON(schema: schema).context(json, action: action) }
        return try CedarJSON.context(json)
    }

    func request(principal: String, action: String, resource: String, contextPath: String?) throws(PolicyCommand.Failure) -> Request {
        func uid(_ text: String, _ flag: String) throws(PolicyCommand.Failure) -> EntityUID {
            do {
                return try CedarParser.entityUID(text)
            } catch {
                throw PolicyCommand.Failure(message: "\(flag): error: `\(text)` is not an entity reference like 'User::\"alice\"': \(error.message)", exitCode: 1)
            }
        }
        let actionUID = try uid(action, "--action")
        let contextJSON = try contextPath.map { (path) throws(PolicyCommand.Failure) -> JSONValue in try Self.json(path) }
        let request: Request
        do {
            request = Request(principal: try uid(principal, "--principal"), action: actionUID, resource: try uid(resource, "--resource"),
                              context: try context(contextJSON, action: actionUID))
        } catch let error as PolicyCommand.Failure {
            throw error
        } catch {
            throw PolicyCommand.Failure(message: "--context: error: \(error)", exitCode: 1)
        }
        if let schema, let problem = SchemaJSON(schema: schema).requestError(request) {
            throw PolicyCommand.Failure(message: "error: the request does not conform to the schema: \(problem)", exitCode: 1)
        }
        return request
    }

    func decide(_ request: Request) -> AuthorizationResponse {
        authorizer.isAuthorized(request, entities: store)
    }

    /// A request line in the integration tests' shape, decided; or why it could not be.
    func decide(line: String) -> JSONValue {
        do {
            let json = try JSONParser.parse(line)
            guard case .object = json else { return .object([JSONMember("error", .string("a request must be a JSON object"))]) }
            guard let principal = json["principal"], let action = json["action"], let resource = json["resource"] else {
                return .object([JSONMember("error", .string("a request needs principal, action and resource"))])
            }
            let actionUID = try CedarJSON.entityUID(action, at: "action")
            let request = Request(principal: try CedarJSON.entityUID(principal, at: "principal"), action: actionUID,
                                  resource: try CedarJSON.entityUID(resource, at: "resource"), context: try context(json["context"], action: actionUID))
            if let schema, let problem = SchemaJSON(schema: schema).requestError(request) {
                return .object([JSONMember("error", .string("the request does not conform to the schema: \(problem)"))])
            }
            return Self.json(decide(request))
        } catch let error as JSONError {
            return .object([JSONMember("error", .string("not valid JSON: \(error)"))])
        } catch let error as EntitiesError {
            return .object([JSONMember("error", .string(error.message))])
        } catch {
            return .object([JSONMember("error", .string("\(error)"))])
        }
    }

    func runBatch(path: String) throws(PolicyCommand.Failure) {
        let text = try Self.read(path)
        var out = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) where !line.allSatisfy(\.isWhitespace) {
            out += decide(line: String(line)).text + "\n"
            if out.utf8.count > 1 << 16 {
                FileHandle.standardOutput.write(Data(out.utf8))
                out = ""
            }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }

    /// A decision in the integration tests' JSON shape, with messages under `diagnostics`.
    static func json(_ response: AuthorizationResponse) -> JSONValue {
        let errors = response.errors.sorted { $0.policyID < $1.policyID }
        return .object([
            JSONMember("decision", .string(response.decision.rawValue)),
            JSONMember("reason", .array(response.reasons.sorted().map { .string($0) })),
            JSONMember("errors", .array(errors.map { .string($0.policyID) })),
            JSONMember("diagnostics", .object([JSONMember("errors", .array(errors.map {
                .object([JSONMember("policy", .string($0.policyID)), JSONMember("message", .string($0.error.message))])
            }))])),
        ])
    }
}

/// A policy file as read: its set and, for Cedar text, where each policy was written.
struct PolicySource {
    let path: String
    let text: String?
    let set: PolicySet
    let spans: [String: PolicySpans]

    /// A validation finding as compilers print one: `file:line:column: error: policy0: message`
    /// and the line with carets under the offending part when its place is known.
    func describe(_ finding: ValidationDiagnostic, as severity: String) -> String {
        guard let span = finding.span, let text else { return "\(path): \(severity): \(finding.policyID): \(finding.message)" }
        return "\(path):\(span): \(severity): \(finding.policyID): \(finding.message)\n\(span.snippet(in: text))"
    }
}
