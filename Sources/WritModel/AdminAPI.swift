import Foundation

/// The bodies of the admin API (`/v1`, described by `api/admin.v1.openapi.yaml`), shared by the
/// server and the `writ` CLI. Field names are the JSON names; times are RFC 3339 UTC.
public enum AdminAPI {
    /// Every error response: `{code, message, field?}`.
    public struct ErrorBody: Codable, Sendable, Hashable, Error, CustomStringConvertible {
        /// A stable machine-readable code (`invalid_argument`, `not_found`, `already_exists`,
        /// `conflict`, `unauthenticated`, `permission_denied`, `payload_too_large`, `unavailable`).
        public var code: String
        /// What was wrong, for people.
        public var message: String
        /// The request field at fault, if one is.
        public var field: String?

        public init(code: String, message: String, field: String? = nil) {
            self.code = code
            self.message = message
            self.field = field
        }

        public var description: String { message }
    }

    /// `POST /v1/entries`: one or more entries to create.
    public struct CreateEntriesRequest: Codable, Sendable {
        public var entries: [RegistrationEntry]
        public init(entries: [RegistrationEntry]) { self.entries = entries }
    }

    /// The outcome for one entry of a batch: the stored entry, or why it was refused.
    public struct EntryResult: Codable, Sendable, Hashable {
        public var entry: RegistrationEntry?
        public var error: ErrorBody?
        public init(entry: RegistrationEntry? = nil, error: ErrorBody? = nil) {
            self.entry = entry
            self.error = error
        }
    }

    /// `POST /v1/entries` answer: one result per requested entry, in order.
    public struct CreateEntriesResponse: Codable, Sendable {
        public var results: [EntryResult]
        public init(results: [EntryResult]) { self.results = results }
    }

    /// `GET /v1/entries` answer.
    public struct EntryList: Codable, Sendable {
        public var entries: [RegistrationEntry]
        public var nextPageToken: String?
        enum CodingKeys: String, CodingKey {
            case entries, nextPageToken = "next_page_token"
        }
        public init(entries: [RegistrationEntry], nextPageToken: String?) {
            self.entries = entries
            self.nextPageToken = nextPageToken
        }
    }

    /// `GET /v1/entries/count` answer.
    /// `GET /v1/agents`.
    public struct AgentList: Codable, Sendable {
        public var agents: [AgentRecord]
        public init(agents: [AgentRecord]) { self.agents = agents }
    }

    /// `POST /v1/agents/purge`: the SPIFFE IDs of the purged agents.
    public struct PurgedAgents: Codable, Sendable {
        public var purged: [String]
        public init(purged: [String]) { self.purged = purged }
    }

    public struct Count: Codable, Sendable {
        public var count: Int
        public init(count: Int) { self.count = count }
    }

    /// `POST /v1/join-tokens`: a single-use join token for one node.
    public struct CreateJoinTokenRequest: Codable, Sendable {
        /// Lifetime in seconds (10 s to 7 d; default 600).
        public var ttl: Int?
        /// A node alias the agent also gets (an entry under the server, selector
        /// `join_token:id:<token id>`).
        public var spiffeID: String?
        enum CodingKeys: String, CodingKey { case ttl, spiffeID = "spiffe_id" }
        public init(ttl: Int? = nil, spiffeID: String? = nil) {
            self.ttl = ttl
            self.spiffeID = spiffeID
        }
    }

    /// `POST /v1/join-tokens` answer. The secret is shown this once; the server keeps its hash.
    public struct JoinToken: Codable, Sendable {
        public var token: String
        public var id: String
        public var agentID: String
        public var expiresAt: Date
        public var nodeAliasEntryID: String?
        enum CodingKeys: String, CodingKey {
            case token, id, agentID = "agent_id", expiresAt = "expires_at", nodeAliasEntryID = "node_alias_entry_id"
        }
        public init(token: String, id: String, agentID: String, expiresAt: Date, nodeAliasEntryID: String?) {
            self.token = token
            self.id = id
            self.agentID = agentID
            self.expiresAt = expiresAt
            self.nodeAliasEntryID = nodeAliasEntryID
        }
    }

    /// `GET /v1/health` answer.
    public struct Health: Codable, Sendable {
        public var status: String
        public var trustDomain: String
        public var datastore: String
        enum CodingKeys: String, CodingKey {
            case status, trustDomain = "trust_domain", datastore
        }
        public init(status: String, trustDomain: String, datastore: String) {
            self.status = status
            self.trustDomain = trustDomain
            self.datastore = datastore
        }
    }

    /// Encodes bodies as the API sends them: sorted keys, RFC 3339 times.
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    /// Decodes bodies as the API sends them.
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// Decodes a batch request strictly. A malformed request — not JSON, an unknown field (at
    /// the top or in an entry), a missing required field or a wrong JSON type — fails as a
    /// whole with 400; an entry whose values do not parse (a SPIFFE ID, a selector) fails
    /// alone, with a message naming the field, and the others go on.
    public static func decodeEntries(_ data: Data) throws(ErrorBody) -> [Result<RegistrationEntry, ErrorBody>] {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw ErrorBody(code: "invalid_argument", message: "the request body is not valid JSON")
        }
        guard let top = object as? [String: Any] else {
            throw ErrorBody(code: "invalid_argument", message: "the request body must be a JSON object `{\"entries\": [...]}`")
        }
        for key in top.keys where key != "entries" {
            throw ErrorBody(code: "invalid_argument", message: "unknown field `\(key)`", field: key)
        }
        guard let list = top["entries"] as? [Any] else {
            throw ErrorBody(code: "invalid_argument", message: "`entries` must be an array of entries", field: "entries")
        }
        guard !list.isEmpty, list.count <= 1000 else {
            throw ErrorBody(code: "invalid_argument", message: "`entries` must hold 1 to 1000 entries, not \(list.count)", field: "entries")
        }
        var entries: [Result<RegistrationEntry, ErrorBody>] = []
        for (index, item) in list.enumerated() {
            do { entries.append(.success(try decodeEntry(item, path: "entries[\(index)]"))) } catch {
                guard error.code == "invalid_value" else { throw error }
                entries.append(.failure(ErrorBody(code: "invalid_argument", message: error.message, field: error.field)))
            }
        }
        return entries
    }

    /// Decodes one entry object (from `PUT /v1/entries/{id}`) strictly.
    public static func decodeEntry(_ data: Data) throws(ErrorBody) -> RegistrationEntry {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw ErrorBody(code: "invalid_argument", message: "the request body is not valid JSON")
        }
        return try decodeEntry(object, path: "")
    }

    static func decodeEntry(_ object: Any, path: String) throws(ErrorBody) -> RegistrationEntry {
        let prefix = path.isEmpty ? "" : path + "."
        guard let fields = object as? [String: Any] else {
            throw ErrorBody(code: "invalid_argument", message: "\(path.isEmpty ? "the body" : "`\(path)`") must be a JSON object", field: path.isEmpty ? nil : path)
        }
        for key in fields.keys.sorted() where !RegistrationEntry.jsonFields.contains(key) {
            throw ErrorBody(code: "invalid_argument", message: "unknown field `\(prefix)\(key)`", field: prefix + key)
        }
        do {
            let data = try JSONSerialization.data(withJSONObject: fields)
            return try decoder().decode(RegistrationEntry.self, from: data)
        } catch let error as DecodingError {
            let (field, why) = describe(error)
            // A value that does not parse (rather than a wrong shape) is marked so that a batch
            // can refuse that entry alone.
            var code = "invalid_argument"
            if case .dataCorrupted = error, !path.isEmpty { code = "invalid_value" }
            throw ErrorBody(code: code, message: "invalid `\(prefix)\(field)`: \(why)", field: prefix + field)
        } catch {
            throw ErrorBody(code: "invalid_argument", message: "invalid entry\(path.isEmpty ? "" : " `\(path)`"): \(error)")
        }
    }

    static func describe(_ error: DecodingError) -> (String, String) {
        func name(_ path: [any CodingKey]) -> String {
            path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context): return (name(context.codingPath + [key]), "the field is required")
        case .typeMismatch(let type, let context): return (name(context.codingPath), "expected \(type)")
        case .valueNotFound(let type, let context): return (name(context.codingPath), "expected \(type), found null")
        case .dataCorrupted(let context): return (name(context.codingPath), context.debugDescription)
        @unknown default: return ("", "\(error)")
        }
    }
}
