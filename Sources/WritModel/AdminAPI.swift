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

    /// `POST /v1/entries/batch-delete`: entries to delete, each optionally only at a revision.
    public struct DeleteEntriesRequest: Codable, Sendable {
        public struct Item: Codable, Sendable {
            public var id: String
            public var revision: Int64?
            public init(id: String, revision: Int64? = nil) {
                self.id = id
                self.revision = revision
            }
        }
        public var entries: [Item]
        public init(entries: [Item]) { self.entries = entries }
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

    /// `POST /v1/svids/x509`: an X.509-SVID for `spiffe_id` certifying the key of `csr`
    /// (base64 DER PKCS#10; only its public key is used), for operators (`writ svid mint`).
    public struct MintX509SVIDRequest: Codable, Sendable {
        public var spiffeID: String
        public var csr: String
        /// Seconds; absent: the server's default X.509-SVID lifetime.
        public var ttl: Int?
        public var dnsNames: [String]?

        public init(spiffeID: String, csr: String, ttl: Int?, dnsNames: [String]?) {
            self.spiffeID = spiffeID
            self.csr = csr
            self.ttl = ttl
            self.dnsNames = dnsNames
        }

        enum CodingKeys: String, CodingKey { case spiffeID = "spiffe_id", csr, ttl, dnsNames = "dns_names" }
    }

    /// The answer to `POST /v1/svids/x509`: the chain, leaf first, each certificate base64 DER.
    public struct MintedX509SVID: Codable, Sendable {
        public var spiffeID: String
        public var chain: [String]
        public var expiresAt: Date

        public init(spiffeID: String, chain: [String], expiresAt: Date) {
            self.spiffeID = spiffeID
            self.chain = chain
            self.expiresAt = expiresAt
        }

        enum CodingKeys: String, CodingKey { case spiffeID = "spiffe_id", chain, expiresAt = "expires_at" }
    }

    /// `POST /v1/svids/jwt`: a JWT-SVID for `spiffe_id` and these audiences.
    public struct MintJWTSVIDRequest: Codable, Sendable {
        public var spiffeID: String
        public var audience: [String]
        /// Seconds; absent: the server's default JWT-SVID lifetime.
        public var ttl: Int?

        public init(spiffeID: String, audience: [String], ttl: Int?) {
            self.spiffeID = spiffeID
            self.audience = audience
            self.ttl = ttl
        }

        enum CodingKeys: String, CodingKey { case spiffeID = "spiffe_id", audience, ttl }
    }

    /// The answer to `POST /v1/svids/jwt`.
    public struct MintedJWTSVID: Codable, Sendable {
        public var spiffeID: String
        public var token: String
        public var expiresAt: Date

        public init(spiffeID: String, token: String, expiresAt: Date) {
            self.spiffeID = spiffeID
            self.token = token
            self.expiresAt = expiresAt
        }

        enum CodingKeys: String, CodingKey { case spiffeID = "spiffe_id", token, expiresAt = "expires_at" }
    }

    /// One of the answering server's CA authorities: a root or intermediate X.509 CA, or a JWT
    /// signing key, with where it is in its life (`prepared`, `active`, `old`, `tainted`).
    public struct Authority: Codable, Sendable, Hashable {
        public var id: String
        /// `root`, `intermediate` or `jwt`.
        public var kind: String
        public var status: String
        public var notBefore: Date
        public var notAfter: Date
        /// The latest expiry of anything it signed; absent while it has signed nothing.
        public var latestIssuedExpiry: Date?

        public init(id: String, kind: String, status: String, notBefore: Date, notAfter: Date, latestIssuedExpiry: Date?) {
            self.id = id
            self.kind = kind
            self.status = status
            self.notBefore = notBefore
            self.notAfter = notAfter
            self.latestIssuedExpiry = latestIssuedExpiry
        }

        enum CodingKeys: String, CodingKey {
            case id, kind, status, notBefore = "not_before", notAfter = "not_after", latestIssuedExpiry = "latest_issued_expiry"
        }
    }

    /// `GET /v1/authorities` and the answer of every authority change: the answering server's
    /// authorities, ordered by kind and then by when they begin.
    public struct AuthorityList: Codable, Sendable {
        public var authorities: [Authority]
        public init(authorities: [Authority]) { self.authorities = authorities }
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

    /// A foreign trust domain's bundle (`GET /v1/bundles`, `GET|PUT /v1/bundles/{trust_domain}`).
    public struct FederatedBundle: Codable, Sendable, Hashable {
        public var trustDomain: String
        /// The store revision of the last change.
        public var revision: Int64
        public var updatedAt: Date
        /// The document's `spiffe_sequence`, when it has one.
        public var spiffeSequence: Int64?
        public var x509AuthorityCount: Int
        public var jwtAuthorityCount: Int
        /// The SPIFFE bundle document (JWKS JSON) as stored and sent to agents.
        public var spiffeBundle: String

        enum CodingKeys: String, CodingKey {
            case trustDomain = "trust_domain", revision, updatedAt = "updated_at", spiffeSequence = "spiffe_sequence",
                 x509AuthorityCount = "x509_authority_count", jwtAuthorityCount = "jwt_authority_count", spiffeBundle = "spiffe_bundle"
        }

        public init(trustDomain: String, revision: Int64, updatedAt: Date, spiffeSequence: Int64?, x509AuthorityCount: Int,
                    jwtAuthorityCount: Int, spiffeBundle: String) {
            self.trustDomain = trustDomain
            self.revision = revision
            self.updatedAt = updatedAt
            self.spiffeSequence = spiffeSequence
            self.x509AuthorityCount = x509AuthorityCount
            self.jwtAuthorityCount = jwtAuthorityCount
            self.spiffeBundle = spiffeBundle
        }
    }

    /// `GET /v1/bundles` answer: every federated bundle, ordered by trust domain.
    public struct FederatedBundleList: Codable, Sendable {
        public var bundles: [FederatedBundle]
        public init(bundles: [FederatedBundle]) { self.bundles = bundles }
    }

    /// `PUT /v1/bundles/{trust_domain}` body: the bundle as a SPIFFE bundle document or as PEM
    /// certificates; without `format` it is detected from the first non-blank character.
    public struct SetFederatedBundleRequest: Codable, Sendable {
        /// `spiffe` or `pem`.
        public var format: String?
        public var data: String
        public init(format: String? = nil, data: String) {
            self.format = format
            self.data = data
        }
    }

    /// `DELETE /v1/bundles/{trust_domain}` answer.
    public struct DeletedFederatedBundle: Codable, Sendable {
        public var trustDomain: String
        /// `restrict`, `dissociate` or `delete`.
        public var mode: String
        /// The entries dissociated from the trust domain or deleted with it.
        public var affectedEntryIDs: [String]
        enum CodingKeys: String, CodingKey { case trustDomain = "trust_domain", mode, affectedEntryIDs = "affected_entry_ids" }
        public init(trustDomain: String, mode: String, affectedEntryIDs: [String]) {
            self.trustDomain = trustDomain
            self.mode = mode
            self.affectedEntryIDs = affectedEntryIDs
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
    /// Times are RFC 3339 (`2026-01-02T03:04:05Z`, with or without fractional seconds, any offset).
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = parseTime(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                        debugDescription: "`\(text.prefix(64))` is not an RFC 3339 time such as 2026-01-02T03:04:05Z"))
            }
            return date
        }
        return decoder
    }

    /// Parses an RFC 3339 `date-time`; nil when `text` is not one.
    public static func parseTime(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }

    /// Decodes a batch request strictly. A malformed request — not JSON, an unknown field (at
    /// the top or in an entry), a missing required field or a wrong JSON type — fails as a
    /// whole with 400; an entry whose values do not parse (a SPIFFE ID, a selector) fails
    /// alone, with a message naming the field, and the others go on.
    /// `required` names members each entry must have besides `spiffe_id`, `parent_id` and
    /// `selectors` (an update needs `id` and `revision`).
    public static func decodeEntries(_ data: Data, required: [String] = []) throws(ErrorBody) -> [Result<RegistrationEntry, ErrorBody>] {
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
            do { entries.append(.success(try decodeEntry(item, path: "entries[\(index)]", required: required))) } catch {
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

    static func decodeEntry(_ object: Any, path: String, required: [String] = []) throws(ErrorBody) -> RegistrationEntry {
        let prefix = path.isEmpty ? "" : path + "."
        guard let fields = object as? [String: Any] else {
            throw ErrorBody(code: "invalid_argument", message: "\(path.isEmpty ? "the body" : "`\(path)`") must be a JSON object", field: path.isEmpty ? nil : path)
        }
        for key in fields.keys.sorted() where !RegistrationEntry.jsonFields.contains(key) {
            throw ErrorBody(code: "invalid_argument", message: "unknown field `\(prefix)\(key)`", field: prefix + key)
        }
        try refuseNulls(fields, prefix: prefix)
        try EntryShape.check(fields, prefix: prefix, required: required)
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

    /// Refuses an explicit JSON `null`: the API has no nullable fields, an absent field is left out.
    public static func refuseNulls(_ fields: [String: Any], prefix: String = "") throws(ErrorBody) {
        for key in fields.keys.sorted() where fields[key] is NSNull {
            throw ErrorBody(code: "invalid_argument", message: "`\(prefix)\(key)` is null: leave the field out instead", field: prefix + key)
        }
    }

    /// The field a decoding error concerns (`entries[0].ttl`) and why it failed.
    public static func describe(_ error: DecodingError) -> (String, String) {
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

/// The JSON types of an entry object as `api/admin.v1.openapi.yaml` documents them, checked
/// before any value is parsed: a field of the wrong type, a time that is not RFC 3339 or a
/// selector with other members makes the request malformed as a whole (400), whereas a value of
/// the right type that does not parse (a SPIFFE ID, a selector value) fails only its entry.
struct EntryShape: Decodable {
    struct SelectorShape: Decodable {
        let type: String
        let value: String
    }
    let id, spiffe_id, parent_id, hint, owner: String?
    let expires_at, created_at, updated_at: String?
    let x509_svid_ttl, jwt_svid_ttl, revision: Int64?
    let admin, downstream: Bool?
    let dns_names, federates_with: [String]?
    let selectors: [SelectorShape]?
    let labels: [String: String]?

    static func check(_ fields: [String: Any], prefix: String, required: [String] = []) throws(AdminAPI.ErrorBody) {
        let shape: EntryShape
        do {
            shape = try JSONDecoder().decode(EntryShape.self, from: try JSONSerialization.data(withJSONObject: fields))
        } catch let error as DecodingError {
            let (field, why) = AdminAPI.describe(error)
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid `\(prefix)\(field)`: \(why)", field: prefix + field)
        } catch {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid entry: \(error)")
        }
        for key in ["spiffe_id", "parent_id", "selectors"] + required where fields[key] == nil {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid `\(prefix)\(key)`: the field is required", field: prefix + key)
        }
        for (index, selector) in ((fields["selectors"] as? [Any]) ?? []).enumerated() {
            guard let members = selector as? [String: Any], Set(members.keys) == ["type", "value"] else {
                throw AdminAPI.ErrorBody(code: "invalid_argument", message: "`\(prefix)selectors[\(index)]` must be exactly `{\"type\": …, \"value\": …}`",
                                         field: "\(prefix)selectors[\(index)]")
            }
        }
        for (key, value) in [("expires_at", shape.expires_at), ("created_at", shape.created_at), ("updated_at", shape.updated_at)] {
            guard let value else { continue }
            guard AdminAPI.parseTime(value) != nil else {
                throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid `\(prefix)\(key)`: an RFC 3339 time such as 2026-01-02T03:04:05Z",
                                         field: prefix + key)
            }
        }
    }
}
