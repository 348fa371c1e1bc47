import Foundation
import StrictJSON
import WritAudit
import WritCA
import Hummingbird
import Logging
import NIOCore
import SPIFFEBundle
import SPIFFEIdentity
import WritModel
import WritStore

/// The admin API's routes (`/v1`), as `api/admin.v1.openapi.yaml` describes them. Errors are
/// `{code, message, field?}`; store and validation errors map to HTTP status in ``status(for:)``
/// and nowhere else.
public struct AdminRoutes: Sendable {
    static let maximumBodySize = 1 << 20

    let store: any Datastore
    let rules: EntryRules
    let datastoreDescription: String
    let metrics: ServerMetrics
    let now: @Sendable () -> Date
    /// The trust bundle the server publishes right now.
    let bundle: @Sendable () async -> TrustBundle
    /// This server's CA authorities.
    let authorities: AuthorityControl
    /// Operator-minted SVIDs (`writ svid mint`).
    let minter: SVIDMinter
    /// The audit log: entry changes carry their event into the same transaction.
    let audit: AuditLog

    /// Every route as (method, path), for the test that compares them with the OpenAPI document.
    public static let routes: [(HTTPRequest.Method, String)] = [
        (.get, "/v1/health"),
        (.post, "/v1/entries"), (.get, "/v1/entries"), (.get, "/v1/entries-count"),
        (.get, "/v1/entries/{id}"), (.put, "/v1/entries/{id}"), (.delete, "/v1/entries/{id}"),
        (.post, "/v1/join-tokens"), (.post, "/v1/datastore/backup"),
        (.get, "/v1/bundle"),
        (.get, "/v1/agents"), (.get, "/v1/agents-count"), (.get, "/v1/agents/show"),
        (.post, "/v1/agents/evict"), (.post, "/v1/agents/ban"), (.post, "/v1/agents/purge"),
        (.get, "/v1/authorities"), (.post, "/v1/authorities/prepare"), (.post, "/v1/authorities/activate"),
        (.post, "/v1/authorities/taint"), (.post, "/v1/authorities/revoke"),
        (.post, "/v1/svids/x509"), (.post, "/v1/svids/jwt"),
        (.post, "/v1/entries-batch-update"), (.post, "/v1/entries-batch-delete"),
        (.get, "/v1/bundles"), (.get, "/v1/bundles/{trust_domain}"), (.put, "/v1/bundles/{trust_domain}"), (.delete, "/v1/bundles/{trust_domain}"),
        (.get, "/v1/audit/events"), (.get, "/v1/audit/search"), (.get, "/v1/audit/checkpoint"), (.get, "/v1/audit/checkpoints"),
        (.get, "/v1/audit/proof/inclusion"), (.get, "/v1/audit/proof/consistency"), (.get, "/v1/audit/keys"),
    ]

    func register(on router: Router<AdminContext>) {
        let v1 = router.group("v1")
        v1.get("health") { _, _ in
            Self.json(.ok, AdminAPI.Health(status: "serving", trustDomain: rules.trustDomain.name, datastore: datastoreDescription))
        }
        v1.post("entries") { request, context in try await guarded(context) { try await create(request, context) } }
        v1.get("entries") { request, context in try await guarded(context) { try await list(request) } }
        v1.post("entries-batch-update") { request, context in try await guarded(context) { try await batchUpdate(request, context) } }
        v1.post("entries-batch-delete") { request, context in try await guarded(context) { try await batchDelete(request, context) } }
        v1.get("entries-count") { request, context in try await guarded(context) { try await count(request) } }
        v1.get("entries/{id}") { _, context in
            try await guarded(context) {
                let id = try entryID(context)
                guard let entry = try await store.entry(id: id) else {
                    throw AdminAPI.ErrorBody(code: "not_found", message: "no entry with id `\(id)`")
                }
                return Self.json(.ok, entry)
            }
        }
        v1.put("entries/{id}") { request, context in try await guarded(context) { try await update(request, context) } }
        v1.delete("entries/{id}") { request, context in try await guarded(context) { try await delete(request, context) } }
        v1.post("join-tokens") { request, context in try await guarded(context) { try await createJoinToken(request, context) } }
        v1.get("bundle") { request, _ in
            try await guarded(nil) {
                let query = try QueryParameters(request, allowed: ["format"])
                let current = await bundle()
                switch query.single("format") ?? "spiffe" {
                case "spiffe":
                    return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: current.spiffeJSON())))
                case "pem":
                    return Response(status: .ok, headers: [.contentType: "application/x-pem-file"],
                                    body: .init(byteBuffer: ByteBuffer(string: current.x509AuthoritiesPEM())))
                case let other:
                    throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid format `\(other.prefix(32))`: spiffe or pem", field: "format")
                }
            }
        }
        registerFederatedBundles(on: v1)
        registerAudit(on: v1)
        v1.get("agents") { request, _ in
            try await guarded(nil) {
                let query = try QueryParameters(request, allowed: ["selector", "banned", "expires_before", "attestation_type"])
                return Self.json(.ok, AdminAPI.AgentList(agents: try await store.listAgents(try query.agentFilter())))
            }
        }
        v1.get("agents-count") { request, _ in
            try await guarded(nil) {
                let query = try QueryParameters(request, allowed: ["selector", "banned", "expires_before", "attestation_type"])
                return Self.json(.ok, AdminAPI.Count(count: try await store.listAgents(try query.agentFilter()).count))
            }
        }
        v1.get("agents/show") { request, _ in
            try await guarded(nil) {
                let query = try QueryParameters(request, allowed: ["id"])
                let id = try Self.agentID(query.single("id"))
                guard let agent = try await store.agent(id: id) else { throw AdminAPI.ErrorBody(code: "not_found", message: "no agent `\(id)`") }
                return Self.json(.ok, agent)
            }
        }
        v1.post("agents/evict") { request, context in
            try await guarded(context) {
                let id = try Self.agentID(try await stringMember(request, key: "id"))
                let time = now()
                let event = try change(context, at: time, "agent.evict", AuditTarget(kind: "agent", id: id.uri))
                let agent = try await store.evictAgent(id: id, at: time, audit: [event])
                await audit.committedElsewhere()
                context.logger.notice("agent evicted", metadata: ["actor": "\(context.caller!)", "agent_id": "\(id)"])
                return Self.json(.ok, agent)
            }
        }
        v1.post("agents/ban") { request, context in
            try await guarded(context) {
                let id = try Self.agentID(try await stringMember(request, key: "id"))
                let time = now()
                let event = try change(context, at: time, "agent.ban", AuditTarget(kind: "agent", id: id.uri))
                let agent = try await store.banAgent(id: id, at: time, audit: [event])
                await audit.committedElsewhere()
                context.logger.notice("agent banned", metadata: ["actor": "\(context.caller!)", "agent_id": "\(id)"])
                return Self.json(.ok, agent)
            }
        }
        v1.post("agents/purge") { request, context in
            try await guarded(context) {
                let text = try await stringMember(request, key: "expired_before", optional: true)
                var before = now()
                if let text {
                    guard let parsed = AdminAPI.parseTime(text) else {
                        throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid expired_before `\(text.prefix(64))`: an RFC 3339 time such as 2026-01-02T03:04:05Z", field: "expired_before")
                    }
                    before = parsed
                }
                let time = now(), actor = try actor(context), cutoff = AuditEvent.timestamp(before)
                let purged = try await store.purgeAgents(expiredBefore: before, at: time) { ids in
                    try ids.map { id in
                        try ServerAuditEvents.adminChange(at: time, "agent.purge", actor: actor, target: AuditTarget(kind: "agent", id: id),
                                                          details: [JSONMember("expired_before", .string(cutoff))]).record()
                    }
                }
                await audit.committedElsewhere()
                context.logger.notice("agents purged", metadata: ["actor": "\(context.caller!)", "count": "\(purged.count)", "expired_before": "\(before)"])
                return Self.json(.ok, AdminAPI.PurgedAgents(purged: purged.map(\.uri)))
            }
        }
        v1.get("authorities") { _, _ in
            try await guarded(nil) { Self.json(.ok, await authorities.list()) }
        }
        for (step, member, done) in [("prepare", "kind", "prepared"), ("activate", "kind", "activated"), ("taint", "id", "tainted"), ("revoke", "id", "revoked")] {
            v1.post("authorities/\(step)") { request, context in
                try await guarded(context) {
                    let value = try await stringMember(request, key: member) ?? ""
                    let list = try await authorities.apply(step, to: value)
                    context.logger.notice("authority \(done)", metadata: ["actor": "\(context.caller!)", member: "\(value)"])
                    // The CA's change cannot be rolled back: a log that cannot record it makes the
                    // call fail (so the operator knows), but the change stands.
                    let event = try changeEvent(context, at: now(), "authority.\(step)", AuditTarget(kind: member == "kind" ? "authority_kind" : "authority", id: value),
                                                details: [JSONMember("authorities", .array(list.authorities.map { .string("\($0.kind):\($0.id):\($0.status)") }))])
                    try await recordOrRefuse([event], what: "the authority change (which took effect)")
                    return Self.json(.ok, list)
                }
            }
        }
        v1.post("svids/x509") { request, context in
            try await guarded(context) {
                let (minted, leaf) = try await minter.x509(try await strictBody(request, AdminAPI.MintX509SVIDRequest.self,
                                                                                 fields: ["spiffe_id", "csr", "ttl", "dns_names"]))
                try await recordOrRefuse([ServerAuditEvents.x509Issue(at: now(), actor: try actor(context), id: minted.spiffeID, purpose: "operator", leaf: leaf)],
                                         what: "the X.509-SVID")
                context.logger.notice("X.509-SVID minted", metadata: ["actor": "\(context.caller!)", "spiffe_id": "\(minted.spiffeID)",
                                                                      "expires_at": "\(minted.expiresAt)"])
                metrics.svidSigned(kind: "x509")
                return Self.json(.ok, minted)
            }
        }
        v1.post("svids/jwt") { request, context in
            try await guarded(context) {
                let (minted, claims) = try await minter.jwt(try await strictBody(request, AdminAPI.MintJWTSVIDRequest.self, fields: ["spiffe_id", "audience", "ttl"]))
                try await recordOrRefuse([ServerAuditEvents.jwtIssue(at: now(), actor: try actor(context), id: minted.spiffeID, purpose: "operator",
                                                                     audience: claims.audience, claims: claims)],
                                         what: "the JWT-SVID")
                context.logger.notice("JWT-SVID minted", metadata: ["actor": "\(context.caller!)", "spiffe_id": "\(minted.spiffeID)",
                                                                    "expires_at": "\(minted.expiresAt)"])
                metrics.svidSigned(kind: "jwt")
                return Self.json(.ok, minted)
            }
        }
        v1.post("datastore/backup") { request, context in
            try await guarded(context) {
                let object = (try? JSONSerialization.jsonObject(with: try await body(request))) as? [String: Any]
                guard let object, object.count == 1, let path = object["path"] as? String else {
                    throw AdminAPI.ErrorBody(code: "invalid_argument", message: "the body must be `{\"path\": \"/absolute/new/file\"}`", field: "path")
                }
                let time = now()
                try await store.backup(to: path)
                // A copy of every record is worth a line in the log; if the log cannot take it,
                // the copy is removed and the call fails.
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
                do {
                    try await recordOrRefuse([changeEvent(context, at: time, "datastore.backup", AuditTarget(kind: "file", id: path),
                                                          details: [JSONMember("bytes", .integer(Int64(size)))])], what: "the backup")
                } catch {
                    try? FileManager.default.removeItem(atPath: path)
                    throw error
                }
                context.logger.info("datastore backed up", metadata: ["actor": "\(context.caller!)", "path": "\(path)"])
                return Self.json(.ok, ["path": path])
            }
        }
    }

    // MARK: handlers

    private func create(_ request: Request, _ context: AdminContext) async throws -> Response {
        let entries = try AdminAPI.decodeEntries(try await body(request))
        return try await eachEntry(entries) { entry in
            try rules.check(entry)
            let time = now()
            let event = try entryEvent("entry.create", "create", entry, at: time, context)
            let stored = try await store.createEntry(entry, at: time, audit: [event])
            await audit.committedElsewhere()
            context.logger.info("entry created", metadata: ["actor": "\(context.caller!)", "entry_id": "\(stored.id)", "spiffe_id": "\(stored.spiffeID)"])
            return stored
        }
    }

    /// Applies `apply` to each decoded entry in order; an entry that failed to decode or to
    /// apply gets its error as its result, and the others go on.
    private func eachEntry(_ entries: [Result<RegistrationEntry, AdminAPI.ErrorBody>],
                           _ apply: (RegistrationEntry) async throws -> RegistrationEntry) async throws -> Response {
        var results: [AdminAPI.EntryResult] = []
        for decoded in entries {
            do {
                results.append(AdminAPI.EntryResult(entry: try await apply(try decoded.get())))
            } catch {
                results.append(AdminAPI.EntryResult(error: Self.body(for: error)))
            }
        }
        return Self.json(.ok, AdminAPI.CreateEntriesResponse(results: results))
    }

    /// Updates 1 to 1000 entries, each at the revision it names; one result per entry, in order.
    private func batchUpdate(_ request: Request, _ context: AdminContext) async throws -> Response {
        let entries = try AdminAPI.decodeEntries(try await body(request), required: ["id", "revision"])
        return try await eachEntry(entries) { entry in
            guard entry.revision > 0 else {
                throw AdminAPI.ErrorBody(code: "invalid_argument", message: "entry `\(entry.id)`: an update needs the `revision` it was read at", field: "revision")
            }
            try rules.check(entry)
            let time = now()
            let event = try entryEvent("entry.update", "update", entry, at: time, context)
            let stored = try await store.updateEntry(entry, at: time, audit: [event])
            await audit.committedElsewhere()
            context.logger.info("entry updated", metadata: ["actor": "\(context.caller!)", "entry_id": "\(stored.id)", "revision": "\(stored.revision)"])
            return stored
        }
    }

    /// Deletes 1 to 1000 entries, each optionally only at a revision; one result per entry (the
    /// deleted entry or why not), in order.
    private func batchDelete(_ request: Request, _ context: AdminContext) async throws -> Response {
        let raw = try await body(request)
        guard let object = (try? JSONSerialization.jsonObject(with: raw)) as? [String: Any] else {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "the request body must be a JSON object `{\"entries\": [{\"id\": …}]}`")
        }
        for key in object.keys.sorted() where key != "entries" {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "unknown field `\(key)`", field: key)
        }
        guard let list = object["entries"] as? [Any], (1...1000).contains(list.count) else {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "`entries` must be an array of 1 to 1000 `{\"id\": …, \"revision\": …}`", field: "entries")
        }
        for (index, item) in list.enumerated() {
            guard let members = item as? [String: Any], members["id"] is String,
                  Set(members.keys).isSubset(of: ["id", "revision"]), members["revision"] == nil || ((members["revision"] as? Int) ?? 0) > 0 else {
                throw AdminAPI.ErrorBody(code: "invalid_argument", message: "`entries[\(index)]` must be `{\"id\": string, \"revision\": positive integer}` (revision optional)",
                                         field: "entries[\(index)]")
            }
        }
        let items: [AdminAPI.DeleteEntriesRequest.Item]
        do { items = try AdminAPI.decoder().decode(AdminAPI.DeleteEntriesRequest.self, from: raw).entries } catch let error as DecodingError {
            let (field, why) = AdminAPI.describe(error)
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid `\(field)`: \(why)", field: field)
        }
        var results: [AdminAPI.EntryResult] = []
        for item in items {
            do {
                try EntryRules.checkID(item.id)
                let time = now()
                let event = try entryEvent("entry.delete", "delete", id: item.id, at: time, context)
                let deleted = try await store.deleteEntry(id: item.id, revision: item.revision, at: time, audit: [event])
                await audit.committedElsewhere()
                context.logger.info("entry deleted", metadata: ["actor": "\(context.caller!)", "entry_id": "\(item.id)"])
                results.append(AdminAPI.EntryResult(entry: deleted))
            } catch {
                results.append(AdminAPI.EntryResult(error: Self.body(for: error)))
            }
        }
        return Self.json(.ok, AdminAPI.CreateEntriesResponse(results: results))
    }

    private func update(_ request: Request, _ context: AdminContext) async throws -> Response {
        let id = try entryID(context)
        let raw = try await body(request)
        var entry = try AdminAPI.decodeEntry(raw)
        // The body's id, when present, must name the same entry as the path.
        if let object = try? JSONSerialization.jsonObject(with: raw) as? [String: Any], object["id"] != nil, entry.id != id {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "the body's id `\(entry.id)` differs from the path's `\(id)`", field: "id")
        }
        entry.id = id
        guard entry.revision > 0 else {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "an update needs the `revision` it was read at", field: "revision")
        }
        try rules.check(entry)
        return try await storeUpdate(entry, context)
    }

    /// Stores a checked update with its event. (A function of its own: Swift 6.3.1 crashes in
    /// release builds — LLVM coroutine splitting, `emitSetAndGetSwiftErrorValueAround` — when
    /// this sequence of throwing calls sits in `update(_:_:)` itself.)
    private func storeUpdate(_ entry: RegistrationEntry, _ context: AdminContext) async throws -> Response {
        let time = now()
        let event = try entryEvent("entry.update", "update", entry, at: time, context)
        let stored = try await store.updateEntry(entry, at: time, audit: [event])
        await audit.committedElsewhere()
        context.logger.info("entry updated", metadata: ["actor": "\(context.caller!)", "entry_id": "\(stored.id)", "revision": "\(stored.revision)"])
        return Self.json(.ok, stored)
    }

    private func delete(_ request: Request, _ context: AdminContext) async throws -> Response {
        let id = try entryID(context)
        let query = try QueryParameters(request, allowed: ["revision"])
        var revision: Int64?
        if let text = query.single("revision") {
            guard let value = Int64(text), value > 0 else {
                throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid revision `\(text)`: a positive integer", field: "revision")
            }
            revision = value
        }
        let time = now()
        let event = try entryEvent("entry.delete", "delete", id: id, at: time, context)
        let deleted = try await store.deleteEntry(id: id, revision: revision, at: time, audit: [event])
        await audit.committedElsewhere()
        context.logger.info("entry deleted", metadata: ["actor": "\(context.caller!)", "entry_id": "\(id)"])
        return Self.json(.ok, deleted)
    }

    /// The request's caller as an audit actor.
    func actor(_ context: AdminContext) throws -> AuditActor {
        guard let caller = context.caller else { throw AdminAPI.ErrorBody(code: "unauthenticated", message: "no caller") }
        return caller.auditActor
    }

    /// The event of an operator's change, as the datastore stores it.
    func change(_ context: AdminContext, at time: Date, _ type: String, _ target: AuditTarget, details: [JSONMember] = []) throws -> AuditEventRecord {
        try changeEvent(context, at: time, type, target, details: details).record()
    }

    func changeEvent(_ context: AdminContext, at time: Date, _ type: String, _ target: AuditTarget, details: [JSONMember] = []) throws -> AuditEvent {
        ServerAuditEvents.adminChange(at: time, type, actor: try actor(context), target: target, details: details)
    }

    /// Records `events` (group commit), or fails the request when they cannot be stored.
    func recordOrRefuse(_ events: [AuditEvent], what: String) async throws {
        do { _ = try await audit.record(events) } catch {
            throw AdminAPI.ErrorBody(code: "unavailable", message: "the audit log could not record \(what): \(error)")
        }
    }

    /// The audit event of an entry change by the request's caller (the SPIFFE ID and parent
    /// are recorded for creates and updates).
    private func entryEvent(_ type: String, _ action: String, _ entry: RegistrationEntry? = nil, id: String? = nil, at time: Date,
                            _ context: AdminContext) throws -> AuditEventRecord {
        var details: [JSONMember] = []
        if let entry {
            details = [JSONMember("spiffe_id", .string(entry.spiffeID.uri)), JSONMember("parent_id", .string(entry.parentID.uri))]
        }
        guard let caller = context.caller else { throw AdminAPI.ErrorBody(code: "unauthenticated", message: "no caller") }
        return try AuditEvent(time: time, type: type, actor: caller.auditActor, target: AuditTarget(kind: "entry", id: entry?.id ?? id ?? ""),
                              action: action, outcome: .allowed, details: details).record()
    }

    private func list(_ request: Request) async throws -> Response {
        let query = try QueryParameters(request, allowed: ["spiffe_id", "parent_id", "selector", "match", "owner", "label", "page_size", "page_token"])
        let filter = try query.entryFilter()
        var pageSize = EntryQuery.defaultPageSize
        if let text = query.single("page_size") {
            guard let value = Int(text), (1...EntryQuery.maximumPageSize).contains(value) else {
                throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid page_size `\(text)`: between 1 and \(EntryQuery.maximumPageSize)", field: "page_size")
            }
            pageSize = value
        }
        let page = try await store.listEntries(EntryQuery(filter: filter, pageSize: pageSize, pageToken: query.single("page_token")))
        return Self.json(.ok, AdminAPI.EntryList(entries: page.entries, nextPageToken: page.nextPageToken))
    }

    private func count(_ request: Request) async throws -> Response {
        let query = try QueryParameters(request, allowed: ["spiffe_id", "parent_id", "selector", "match", "owner", "label"])
        return Self.json(.ok, AdminAPI.Count(count: try await store.countEntries(try query.entryFilter())))
    }

    private func createJoinToken(_ request: Request, _ context: AdminContext) async throws -> Response {
        let raw = try await body(request)
        let object = (try? JSONSerialization.jsonObject(with: raw.isEmpty ? Data("{}".utf8) : raw)) as? [String: Any]
        guard let object else { throw AdminAPI.ErrorBody(code: "invalid_argument", message: "the request body must be a JSON object") }
        for key in object.keys where !["ttl", "spiffe_id"].contains(key) {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "unknown field `\(key)`", field: key)
        }
        try AdminAPI.refuseNulls(object)
        let parameters: AdminAPI.CreateJoinTokenRequest
        do { parameters = try AdminAPI.decoder().decode(AdminAPI.CreateJoinTokenRequest.self, from: raw.isEmpty ? Data("{}".utf8) : raw) } catch {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "`ttl` must be an integer and `spiffe_id` a string")
        }
        let ttl = parameters.ttl ?? 600
        guard (EntryRules.minimumTTL...EntryRules.maximumTTL).contains(ttl) else {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid ttl `\(ttl)s`: between 10s and 7d", field: "ttl")
        }
        let token = JoinTokenSecret.generate()
        var alias: RegistrationEntry?
        if let text = parameters.spiffeID {
            let id: SPIFFEID
            do { id = try SPIFFEID(parsing: text) } catch {
                throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid spiffe_id: \(error.message)", field: "spiffe_id")
            }
            let entry = RegistrationEntry(spiffeID: id, parentID: rules.serverID, selectors: [try Selector(type: "join_token", value: "id:\(token.id)")])
            try rules.check(entry)
            alias = entry
        }
        let time = now()
        let expiresAt = time.addingTimeInterval(TimeInterval(ttl))
        let agentDetails = [JSONMember("agent_id", .string("spiffe://\(rules.trustDomain.name)/writ/agent/join_token/\(token.id)")),
                            JSONMember("expires_at", .string(AuditEvent.timestamp(expiresAt)))] + (alias.map { [JSONMember("node_alias", .string($0.spiffeID.uri))] } ?? [])
        let tokenEvent = try change(context, at: time, "token.generate", AuditTarget(kind: "join_token", id: token.id), details: agentDetails)
        let aliasEvent = try alias.map { try entryEvent("entry.create", "create", $0, at: time, context) }
        try await store.createJoinToken(JoinTokenRecord(id: token.id, tokenHash: token.hash, spiffeID: alias?.spiffeID, expiresAt: expiresAt), at: time,
                                        audit: [tokenEvent])
        if let alias, let aliasEvent { _ = try await store.createEntry(alias, at: time, audit: [aliasEvent]) }
        await audit.committedElsewhere()
        let agentID = "spiffe://\(rules.trustDomain.name)/writ/agent/join_token/\(token.id)"
        metrics.joinTokens.increment()
        context.logger.info("join token generated", metadata: ["actor": "\(context.caller!)", "token_id": "\(token.id)", "expires_at": "\(expiresAt)"])
        return Self.json(.ok, AdminAPI.JoinToken(token: token.secret, id: token.id, agentID: agentID, expiresAt: expiresAt, nodeAliasEntryID: alias?.id))
    }

    // MARK: plumbing

    /// Reads a body that is a JSON object with exactly the string member `key` (or empty, when
    /// `optional`).
    private func stringMember(_ request: Request, key: String, optional: Bool = false) async throws -> String? {
        let raw = try await body(request)
        if optional, raw.isEmpty { return nil }
        let object = (try? JSONSerialization.jsonObject(with: raw)) as? [String: Any]
        guard let object, object.keys.allSatisfy({ $0 == key }), optional || object[key] is String, object[key] == nil || object[key] is String else {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "the body must be `{\"\(key)\": \"…\"}`", field: key)
        }
        return object[key] as? String
    }

    private static func agentID(_ text: String?) throws -> SPIFFEID {
        guard let text else { throw AdminAPI.ErrorBody(code: "invalid_argument", message: "an agent's SPIFFE ID is required", field: "id") }
        let id: SPIFFEID
        do { id = try SPIFFEID(parsing: text) } catch {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid agent id: \(error.message)", field: "id")
        }
        guard id.path.hasPrefix("/writ/agent/") else {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "`\(id)` is not an agent ID (`spiffe://<td>/writ/agent/…`)", field: "id")
        }
        return id
    }

    private func entryID(_ context: AdminContext) throws -> String {
        let id = context.parameters.get("id") ?? ""
        do { try EntryRules.checkID(id) } catch {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: error.message, field: "id")
        }
        return id
    }

    /// Decodes a JSON object body with exactly these known members: unknown members, explicit
    /// nulls and wrong types are refused with the member's name.
    func strictBody<T: Decodable>(_ request: Request, _ type: T.Type, fields: Set<String>) async throws -> T {
        let raw = try await body(request)
        guard let object = (try? JSONSerialization.jsonObject(with: raw)) as? [String: Any] else {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "the request body must be a JSON object")
        }
        for key in object.keys.sorted() where !fields.contains(key) {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "unknown field `\(key)`", field: key)
        }
        try AdminAPI.refuseNulls(object)
        do { return try AdminAPI.decoder().decode(T.self, from: raw) } catch let error as DecodingError {
            let (field, why) = AdminAPI.describe(error)
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid `\(field)`: \(why)", field: field)
        }
    }

    func body(_ request: Request) async throws -> Data {
        var request = request
        do {
            let buffer = try await request.collectBody(upTo: Self.maximumBodySize)
            return Data(buffer: buffer)
        } catch {
            // Hummingbird refuses a body over the limit while collecting it.
            throw AdminAPI.ErrorBody(code: "payload_too_large", message: "the request body is larger than 1 MiB (or was cut short)")
        }
    }

    /// Runs a handler and turns any error into the API's error body with its status.
    func guarded(_ context: AdminContext?, _ handler: () async throws -> Response) async throws -> Response {
        do {
            return try await handler()
        } catch {
            let body = Self.body(for: error)
            if body.code == "unavailable" || body.code == "internal" {
                context?.logger.error("admin request failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            return Self.json(Self.status(for: body.code), body)
        }
    }

    static func body(for error: any Error) -> AdminAPI.ErrorBody {
        switch error {
        case let body as AdminAPI.ErrorBody: return body
        case let error as ModelError: return AdminAPI.ErrorBody(code: "invalid_argument", message: error.message, field: error.field)
        case let error as StoreError:
            switch error.code {
            case .notFound: return .init(code: "not_found", message: error.message)
            case .alreadyExists: return .init(code: "already_exists", message: error.message)
            case .conflict: return .init(code: "conflict", message: error.message)
            case .invalidArgument: return .init(code: "invalid_argument", message: error.message)
            case .tokenRejected, .permissionDenied: return .init(code: "permission_denied", message: error.message)
            case .unavailable, .schemaTooNew, .corrupt, .injectedFault: return .init(code: "unavailable", message: "the datastore failed: \(error.message)")
            }
        default: return .init(code: "internal", message: "internal error")
        }
    }

    static func status(for code: String) -> HTTPResponse.Status {
        switch code {
        case "invalid_argument": return .badRequest
        case "unauthenticated": return .unauthorized
        case "permission_denied": return .forbidden
        case "not_found": return .notFound
        case "already_exists", "conflict": return .conflict
        case "payload_too_large": return .contentTooLarge
        case "unavailable": return .serviceUnavailable
        default: return .internalServerError
        }
    }

    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let data = (try? AdminAPI.encoder().encode(value)) ?? Data(#"{"code":"internal","message":"encoding failed"}"#.utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ status: HTTPResponse.Status, code: String, _ message: String) -> Response {
        json(status, AdminAPI.ErrorBody(code: code, message: message))
    }
}

/// A request's query parameters, checked: unknown names are refused.
struct QueryParameters {
    let values: [(String, String)]

    init(_ request: Request, allowed: Set<String>) throws {
        var values: [(String, String)] = []
        for (name, value) in request.uri.queryParameters {
            let key = String(name)
            guard allowed.contains(key) else {
                throw AdminAPI.ErrorBody(code: "invalid_argument", message: "unknown query parameter `\(key)` (known: \(allowed.sorted().joined(separator: ", ")))", field: key)
            }
            values.append((key, String(value)))
        }
        self.values = values
    }

    func single(_ name: String) -> String? { values.last { $0.0 == name }?.1 }
    func all(_ name: String) -> [String] { values.filter { $0.0 == name }.map(\.1) }

    func entryFilter() throws -> EntryFilter {
        var filter = EntryFilter()
        func id(_ name: String) throws -> SPIFFEID? {
            guard let text = single(name) else { return nil }
            do { return try SPIFFEID(parsing: text) } catch {
                throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid \(name): \(error.message)", field: name)
            }
        }
        filter.spiffeID = try id("spiffe_id")
        filter.parentID = try id("parent_id")
        filter.owner = single("owner")
        for text in all("selector") {
            do { filter.selectors.append(try Selector(parsing: text)) } catch {
                throw AdminAPI.ErrorBody(code: "invalid_argument", message: error.message, field: "selector")
            }
        }
        if let match = single("match") {
            guard let mode = SelectorMatch(rawValue: match) else {
                throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid match `\(match)`: exact, subset, superset or any", field: "match")
            }
            filter.match = mode
        }
        for text in all("label") {
            guard let eq = text.firstIndex(of: "=") else {
                throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid label `\(text)`: it must be `key=value`", field: "label")
            }
            filter.labels[String(text[..<eq])] = String(text[text.index(after: eq)...])
        }
        return filter
    }

    func agentFilter() throws -> AgentFilter {
        var filter = AgentFilter()
        for text in all("selector") {
            do { filter.selectors.append(try Selector(parsing: text)) } catch {
                throw AdminAPI.ErrorBody(code: "invalid_argument", message: error.message, field: "selector")
            }
        }
        if let text = single("banned") {
            guard let value = Bool(text) else { throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid banned `\(text)`: true or false", field: "banned") }
            filter.banned = value
        }
        if let text = single("expires_before") {
            guard let date = AdminAPI.parseTime(text) else {
                throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid expires_before `\(text.prefix(64))`: an RFC 3339 time", field: "expires_before")
            }
            filter.expiresBefore = date
        }
        if let text = single("attestation_type") {
            guard ["join_token", "x509pop"].contains(text) else {
                throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid attestation_type `\(text.prefix(64))`: join_token or x509pop", field: "attestation_type")
            }
            filter.attestationType = text
        }
        return filter
    }
}

extension AdminRoutes {
    /// The methods the admin API serves on `path` (empty: no such endpoint).
    static func methods(servingPath path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        return routes.filter { _, pattern in
            let expected = pattern.split(separator: "/", omittingEmptySubsequences: false)
            return expected.count == segments.count && zip(expected, segments).allSatisfy { want, have in
                want.hasPrefix("{") ? !have.isEmpty : want == have
            }
        }.map(\.0)
    }
}

/// Answers requests no route matches the way the routes answer errors: 405 with `Allow` when
/// the path exists under other methods, 404 otherwise, each with a `{code, message}` body.
/// It runs after authentication, so an unauthenticated caller learns nothing about the routes.
struct AdminUnmatchedMiddleware: RouterMiddleware {
    typealias Context = AdminContext

    func handle(_ request: Request, context: AdminContext, next: (Request, AdminContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let path = request.uri.path
            let allowed = AdminRoutes.methods(servingPath: path)
            if allowed.contains(request.method) { throw error }
            if allowed.isEmpty {
                return AdminRoutes.error(.notFound, code: "not_found", "no admin API endpoint `\(path.prefix(200))` (see api/admin.v1.openapi.yaml)")
            }
            let names = allowed.map(\.rawValue)
            var response = AdminRoutes.error(.methodNotAllowed, code: "method_not_allowed",
                                             "`\(request.method.rawValue.prefix(20))` is not served on `\(path.prefix(200))`: use \(names.joined(separator: " or "))")
            response.headers[.allow] = names.joined(separator: ", ")
            return response
        }
    }
}
