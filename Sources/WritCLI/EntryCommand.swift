import ArgumentParser
import Foundation
import SPIFFEIdentity
import WritConfig
import WritModel

/// `writ entry …`: registration entries on the server.
struct EntryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "entry",
        abstract: "Create, show, list, count, update and delete registration entries.",
        discussion: """
            A registration entry gives a SPIFFE ID to the workloads that an agent (its parent) \
            observes with all of the entry's selectors.

            Examples:
              writ entry create --spiffe-id spiffe://example.org/api \\
                  --parent-id spiffe://example.org/writ/agent/join_token/3f2a… \\
                  --selector unix:uid:1000 --owner team-payments --label kind=service
              writ entry create --node --spiffe-id spiffe://example.org/nodes/web \\
                  --selector x509pop:subject:cn:web-1
              writ entry create --data entries.json      # {"entries": [ … ]}, or - for stdin
              writ entry list --selector unix:uid:1000 --match superset --output json
              writ entry update --entry-id ID --x509-ttl 5m
              writ entry delete --entry-id ID
            """,
        subcommands: [Create.self, Show.self, List.self, Count.self, Update.self, Delete.self]
    )

    /// The fields of an entry as flags (create and update).
    struct EntryFields: ParsableArguments {
        @Option(help: ArgumentHelp("The SPIFFE ID the entry grants.", valueName: "id")) var spiffeID: String?
        @Option(help: ArgumentHelp("The agent or node alias that may obtain it.", valueName: "id")) var parentID: String?
        @Option(name: .customLong("selector"), help: ArgumentHelp("A selector `type:value` (repeat for several).", valueName: "T:V")) var selectors: [String] = []
        @Option(name: .customLong("x509-ttl"), help: ArgumentHelp("X.509-SVID lifetime (10s to 7d; e.g. 10m).", valueName: "duration")) var x509TTL: String?
        @Option(name: .customLong("jwt-ttl"), help: ArgumentHelp("JWT-SVID lifetime (10s to 7d).", valueName: "duration")) var jwtTTL: String?
        @Option(help: "Who is accountable for this identity.") var owner: String?
        @Option(name: .customLong("label"), help: ArgumentHelp("A label `key=value` (repeat for several).", valueName: "K=V")) var labels: [String] = []
        @Option(name: .customLong("dns"), help: ArgumentHelp("A DNS SAN for the X.509-SVID (repeat for several).", valueName: "name")) var dnsNames: [String] = []
        @Option(help: "A hint telling apart several identities of one workload.") var hint: String?
        @Flag(help: "The workload may use the admin API with its X.509-SVID.") var admin = false
        @Flag(help: "The workload may mint SVIDs for others.") var downstream = false
        @Option(name: .customLong("federates-with"), help: ArgumentHelp("A trust domain whose bundle the workload also gets.", valueName: "td")) var federatesWith: [String] = []
        @Option(help: ArgumentHelp("When the entry stops existing (RFC 3339).", valueName: "time")) var expiresAt: String?
        @Flag(help: "A node alias: the parent is the server (spiffe://<td>/writ/server).") var node = false
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create one entry from flags, or a batch from --data.")
        @OptionGroup var connection: AdminOptions
        @OptionGroup var fields: EntryFields
        @Option(help: ArgumentHelp("Id of the new entry (default: generated).", valueName: "id")) var entryID: String?
        @Option(help: ArgumentHelp("A JSON file `{\"entries\": [...]}` to create in one request; - for stdin.", valueName: "file")) var data: String?

        func run() async throws {
            try await runAdmin {
                let body: Data
                if let data {
                    body = try readInput(data)
                } else {
                    guard let spiffeID = fields.spiffeID else { throw AdminFailure("--spiffe-id is required (or give --data)", exitCode: 64) }
                    guard !fields.selectors.isEmpty else { throw AdminFailure("at least one --selector is required", exitCode: 64) }
                    var object = try entryObject(fields, spiffeID: spiffeID, connection: connection)
                    if let entryID { object["id"] = entryID }
                    body = try JSONSerialization.data(withJSONObject: ["entries": [object]], options: [.sortedKeys])
                }
                try await batch("/v1/entries", body: body, connection: connection, verb: "created") { print(describe($0)) }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one entry.")
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("The entry's id.", valueName: "id")) var entryID: String

        func run() async throws {
            try await runAdmin {
                let entry = try AdminAPI.decoder().decode(RegistrationEntry.self, from: try await AdminClient(socket: connection.adminSocket).send(.GET, "/v1/entries/\(entryID)"))
                if connection.output == .json { try printJSON(entry) } else { print(describe(entry)) }
            }
        }
    }

    /// Filters shared by list and count.
    struct Filters: ParsableArguments {
        @Option(help: ArgumentHelp("Only entries granting this SPIFFE ID.", valueName: "id")) var spiffeID: String?
        @Option(help: ArgumentHelp("Only entries with this parent.", valueName: "id")) var parentID: String?
        @Option(name: .customLong("selector"), help: ArgumentHelp("Selectors compared by --match (repeat).", valueName: "T:V")) var selectors: [String] = []
        @Option(help: "How --selector compares: exact, subset, superset (default) or any.") var match: String?
        @Option(help: "Only entries with this owner.") var owner: String?
        @Option(name: .customLong("label"), help: ArgumentHelp("Only entries with this label (repeat).", valueName: "K=V")) var labels: [String] = []

        var query: [(String, String)] {
            var items: [(String, String)] = []
            if let spiffeID { items.append(("spiffe_id", spiffeID)) }
            if let parentID { items.append(("parent_id", parentID)) }
            items += selectors.map { ("selector", $0) }
            if let match { items.append(("match", match)) }
            if let owner { items.append(("owner", owner)) }
            items += labels.map { ("label", $0) }
            return items
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List entries, one page at a time (ordered by entry id).")
        @OptionGroup var connection: AdminOptions
        @OptionGroup var filters: Filters
        @Option(help: "Entries per page (1 to 1000; default 100).") var pageSize: Int?
        @Option(help: "The next_page_token of the previous page.") var pageToken: String?

        func run() async throws {
            try await runAdmin {
                var query = filters.query
                if let pageSize { query.append(("page_size", String(pageSize))) }
                if let pageToken { query.append(("page_token", pageToken)) }
                let page = try AdminAPI.decoder().decode(AdminAPI.EntryList.self,
                                                         from: try await AdminClient(socket: connection.adminSocket).send(.GET, "/v1/entries", query: query))
                if connection.output == .json {
                    try printJSON(page)
                } else {
                    print("Found \(page.entries.count) \(page.entries.count == 1 ? "entry" : "entries")")
                    for entry in page.entries { print("\n" + describe(entry)) }
                    if let token = page.nextPageToken {
                        var stderr = StandardError()
                        print("more entries: --page-token \(token)", to: &stderr)
                    }
                }
            }
        }
    }

    struct Count: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Count entries (same filters as list).")
        @OptionGroup var connection: AdminOptions
        @OptionGroup var filters: Filters

        func run() async throws {
            try await runAdmin {
                let count = try AdminAPI.decoder().decode(AdminAPI.Count.self,
                                                          from: try await AdminClient(socket: connection.adminSocket).send(.GET, "/v1/entries-count", query: filters.query))
                if connection.output == .json { try printJSON(count) } else { print(count.count) }
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change an entry: the flags given replace those fields; the rest stay. Or a batch from --data.",
            discussion: """
                Without --revision the entry is read first and updated at that revision; a concurrent change makes \
                the update fail with exit code 4. With --data FILE (`{"entries": [...]}`, - for stdin) every \
                entry is replaced as a whole at the `revision` it names, each with its own result.
                """)
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("The entry's id.", valueName: "id")) var entryID: String?
        @Option(help: "Update only if the entry is still at this revision.") var revision: Int64?
        @Option(help: ArgumentHelp("A JSON file `{\"entries\": [...]}` of whole entries with id and revision; - for stdin.", valueName: "file")) var data: String?
        @OptionGroup var fields: EntryFields

        func run() async throws {
            try await runAdmin {
                if let data {
                    try await batch("/v1/entries-batch-update", body: try readInput(data), connection: connection, verb: "updated") { print(describe($0)) }
                    return
                }
                guard let entryID else { throw AdminFailure("--entry-id is required (or give --data)", exitCode: 64) }
                let client = AdminClient(socket: connection.adminSocket)
                let current = try await client.send(.GET, "/v1/entries/\(entryID)")
                guard var object = try JSONSerialization.jsonObject(with: current) as? [String: Any] else {
                    throw AdminFailure("the server sent an entry that is not a JSON object", exitCode: 1)
                }
                for key in ["created_at", "updated_at"] { object.removeValue(forKey: key) }
                let changes = try entryObject(fields, spiffeID: nil, connection: connection, forUpdate: true)
                for (key, value) in changes { object[key] = value }
                if let revision { object["revision"] = revision }
                let body = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                let entry = try AdminAPI.decoder().decode(RegistrationEntry.self, from: try await client.send(.PUT, "/v1/entries/\(entryID)", body: body))
                if connection.output == .json { try printJSON(entry) } else { print(describe(entry)) }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete an entry, several (--entry-id repeated), or a batch from --data.",
            discussion: "With --data FILE (`{\"entries\": [{\"id\": …, \"revision\": …}]}`, - for stdin) each entry is deleted only at its revision when one is given.")
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("The entry's id (repeat for several).", valueName: "id")) var entryID: [String] = []
        @Option(help: "Delete only if the entry is still at this revision (one --entry-id only).") var revision: Int64?
        @Option(help: ArgumentHelp("A JSON file `{\"entries\": [{\"id\": …}]}`; - for stdin.", valueName: "file")) var data: String?

        func run() async throws {
            try await runAdmin {
                let describeDeleted: (RegistrationEntry) -> Void = { print("Deleted entry \($0.id) (\($0.spiffeID))") }
                if let data {
                    try await batch("/v1/entries-batch-delete", body: try readInput(data), connection: connection, verb: "deleted", describeDeleted)
                    return
                }
                guard let first = entryID.first else { throw AdminFailure("--entry-id is required (or give --data)", exitCode: 64) }
                if entryID.count > 1 {
                    guard revision == nil else { throw AdminFailure("--revision goes with a single --entry-id; use --data for revisions per entry", exitCode: 64) }
                    let body = try JSONSerialization.data(withJSONObject: ["entries": entryID.map { ["id": $0] }])
                    try await batch("/v1/entries-batch-delete", body: body, connection: connection, verb: "deleted", describeDeleted)
                    return
                }
                let entryID = first
                let query = revision.map { [("revision", String($0))] } ?? []
                let entry = try AdminAPI.decoder().decode(RegistrationEntry.self,
                                                          from: try await AdminClient(socket: connection.adminSocket).send(.DELETE, "/v1/entries/\(entryID)", query: query))
                if connection.output == .json { try printJSON(entry) } else { print("Deleted entry \(entry.id) (\(entry.spiffeID))") }
            }
        }
    }
}

/// Sends a batch request and reports each result: the entries on stdout (or the answer as
/// JSON), each error on stderr. One failed entry of one gives that error's exit code; failures
/// in a larger batch exit 1 after every result is shown.
func batch(_ path: String, body: Data, connection: AdminOptions, verb: String, _ show: (RegistrationEntry) -> Void) async throws {
    let answer = try AdminAPI.decoder().decode(AdminAPI.CreateEntriesResponse.self,
                                               from: try await AdminClient(socket: connection.adminSocket).send(.POST, path, body: body))
    if connection.output == .json { try printJSON(answer) }
    var failures: [AdminAPI.ErrorBody] = []
    for result in answer.results {
        if let entry = result.entry, connection.output == .text { show(entry) }
        if let error = result.error {
            failures.append(error)
            var stderr = StandardError()
            print("error: \(error.message)", to: &stderr)
        }
    }
    if failures.count == 1, answer.results.count == 1 { throw AdminFailure(failures[0]) }
    if !failures.isEmpty { throw AdminFailure("\(failures.count) of \(answer.results.count) entries were not \(verb)", exitCode: 1) }
}

/// The JSON object of an entry built from flags. For updates only the flags given appear.
func entryObject(_ fields: EntryCommand.EntryFields, spiffeID: String?, connection: AdminOptions, forUpdate: Bool = false) throws -> [String: Any] {
    var object: [String: Any] = [:]
    if let spiffeID = spiffeID ?? fields.spiffeID { object["spiffe_id"] = spiffeID }
    if fields.node {
        guard let text = object["spiffe_id"] as? String, let id = try? SPIFFEID(parsing: text) else {
            throw AdminFailure("--node needs a valid --spiffe-id to find the trust domain", exitCode: 64)
        }
        object["parent_id"] = "spiffe://\(id.trustDomain.name)/writ/server"
    } else if let parentID = fields.parentID {
        object["parent_id"] = parentID
    } else if !forUpdate {
        throw AdminFailure("--parent-id is required (or --node for a node alias)", exitCode: 64)
    }
    if !fields.selectors.isEmpty {
        object["selectors"] = try fields.selectors.map { text -> [String: String] in
            guard let colon = text.firstIndex(of: ":") else { throw AdminFailure("invalid selector `\(text)`: it must be `type:value`", exitCode: 64) }
            return ["type": String(text[..<colon]), "value": String(text[text.index(after: colon)...])]
        }
    }
    if let ttl = fields.x509TTL { object["x509_svid_ttl"] = try parseDuration(ttl, flag: "--x509-ttl") }
    if let ttl = fields.jwtTTL { object["jwt_svid_ttl"] = try parseDuration(ttl, flag: "--jwt-ttl") }
    if let owner = fields.owner { object["owner"] = owner }
    if !fields.labels.isEmpty {
        var labels: [String: String] = [:]
        for text in fields.labels {
            guard let eq = text.firstIndex(of: "=") else { throw AdminFailure("invalid label `\(text)`: it must be `key=value`", exitCode: 64) }
            labels[String(text[..<eq])] = String(text[text.index(after: eq)...])
        }
        object["labels"] = labels
    }
    if !fields.dnsNames.isEmpty { object["dns_names"] = fields.dnsNames }
    if let hint = fields.hint { object["hint"] = hint }
    if fields.admin { object["admin"] = true }
    if fields.downstream { object["downstream"] = true }
    if !fields.federatesWith.isEmpty { object["federates_with"] = fields.federatesWith }
    if let expiresAt = fields.expiresAt { object["expires_at"] = expiresAt }
    return object
}

/// `90s`, `10m`, `1h`, `7d` → seconds, or a usage error naming the flag.
func parseDuration(_ text: String, flag: String) throws -> Int {
    guard let seconds = ConfigDuration.seconds(text) else {
        throw AdminFailure("invalid \(flag) `\(text)`: a duration is a number and a unit, e.g. 90s, 10m, 1h or 7d", exitCode: 64)
    }
    return seconds
}

/// Reads a file, or stdin for `-`.
func readInput(_ path: String) throws -> Data {
    if path == "-" { return FileHandle.standardInput.readDataToEndOfFile() }
    guard let data = FileManager.default.contents(atPath: path) else { throw AdminFailure("cannot read `\(path)`", exitCode: 1) }
    return data
}

/// The text form of an entry, one field per line.
func describe(_ entry: RegistrationEntry) -> String {
    var lines = [
        ("Entry ID", entry.id), ("SPIFFE ID", entry.spiffeID.uri), ("Parent ID", entry.parentID.uri), ("Revision", String(entry.revision)),
        ("X509-SVID TTL", entry.x509SVIDTTL.map { "\($0)s" } ?? "default"), ("JWT-SVID TTL", entry.jwtSVIDTTL.map { "\($0)s" } ?? "default"),
    ]
    lines += entry.selectors.map { ("Selector", $0.description) }
    if !entry.owner.isEmpty { lines.append(("Owner", entry.owner)) }
    lines += entry.labels.sorted { $0.key < $1.key }.map { ("Label", "\($0.key)=\($0.value)") }
    lines += entry.dnsNames.map { ("DNS name", $0) }
    lines += entry.federatesWith.map { ("Federates with", $0.name) }
    if entry.admin { lines.append(("Admin", "true")) }
    if entry.downstream { lines.append(("Downstream", "true")) }
    if !entry.hint.isEmpty { lines.append(("Hint", entry.hint)) }
    if let expiresAt = entry.expiresAt { lines.append(("Expires at", ISO8601DateFormatter().string(from: expiresAt))) }
    return lines.map { $0.0.padding(toLength: 16, withPad: " ", startingAt: 0) + ": " + $0.1 }.joined(separator: "\n")
}
