import Foundation
import Hummingbird
import MerkleLog
import Prometheus
import SPIFFEIdentity
import Synchronization
import WritAudit
import WritModel
import WritStore

/// The server's Prometheus metrics, served on `GET /metrics` of the HTTP listener.
public final class ServerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let entries: Gauge
    let joinTokens: Counter
    let auditSize: Gauge
    let auditLargestBatch: Gauge
    let auditEvents: Counter
    let auditBatches: Counter
    let auditFailedBatches: Counter
    let auditCheckpoints: Counter
    /// The audit log's statistics at the last scrape (counters advance by the difference).
    private let auditSeen = Mutex(AuditLog.Statistics())

    public init() {
        entries = registry.makeGauge(descriptor: .init(namespace: "writ", metricName: "entries", unitName: "", helpText: "Registration entries in the datastore (counted at scrape)."))
        joinTokens = registry.makeCounter(descriptor: .init(namespace: "writ", metricName: "join_tokens_generated", unitName: "total", helpText: "Join tokens generated."))
        auditSize = registry.makeGauge(descriptor: .init(namespace: "writ", metricName: "audit_log_size", unitName: "", helpText: "Events in the audit log (read at scrape)."))
        auditLargestBatch = registry.makeGauge(descriptor: .init(namespace: "writ", metricName: "audit_largest_batch", unitName: "",
                                                                 helpText: "The largest group-commit batch of audit events since start."))
        auditEvents = registry.makeCounter(descriptor: .init(namespace: "writ", metricName: "audit_group_commit_events", unitName: "total",
                                                             helpText: "Audit events committed through group commit (SVID issuance; others commit inside their own write)."))
        auditBatches = registry.makeCounter(descriptor: .init(namespace: "writ", metricName: "audit_batches", unitName: "total", helpText: "Group-commit batches of audit events stored."))
        auditFailedBatches = registry.makeCounter(descriptor: .init(namespace: "writ", metricName: "audit_failed_batches", unitName: "total",
                                                                    helpText: "Group-commit batches that could not be stored (their operations failed)."))
        auditCheckpoints = registry.makeCounter(descriptor: .init(namespace: "writ", metricName: "audit_checkpoints_signed", unitName: "total",
                                                                  helpText: "Audit checkpoints signed and stored by this server."))
    }

    /// Brings the audit metrics up to `statistics` (and the log's size, when it could be read).
    func audit(_ statistics: AuditLog.Statistics, size: UInt64?) {
        let before = auditSeen.withLock { seen in
            defer { seen = statistics }
            return seen
        }
        auditEvents.increment(by: Int64(max(0, statistics.events - before.events)))
        auditBatches.increment(by: Int64(max(0, statistics.batches - before.batches)))
        auditFailedBatches.increment(by: Int64(max(0, statistics.failedBatches - before.failedBatches)))
        auditCheckpoints.increment(by: Int64(max(0, statistics.checkpoints - before.checkpoints)))
        auditLargestBatch.set(to: Double(statistics.largestBatch))
        if let size { auditSize.set(to: Double(size)) }
    }

    /// Counts an admin request by route and status.
    func adminRequest(method: String, route: String, status: Int) {
        registry.makeCounter(descriptor: .init(namespace: "writ", metricName: "admin_requests", unitName: "total",
                                               helpText: "Admin API requests by route and HTTP status."),
                             labels: [("method", method), ("route", route), ("status", String(status))]).increment()
    }

    /// Counts an attestation by method and result (`ok`, or the refusal's code).
    func attestation(type: String, result: String) {
        registry.makeCounter(descriptor: .init(namespace: "writ", metricName: "attestations", unitName: "total",
                                               helpText: "Node attestations by method and result."),
                             labels: [("type", type), ("result", result)]).increment()
    }

    /// Counts SVIDs signed for agents, by kind (`x509`, `jwt`, `agent`).
    func svidSigned(kind: String, count: Int = 1) {
        guard count > 0 else { return }
        registry.makeCounter(descriptor: .init(namespace: "writ", metricName: "svids_signed", unitName: "total",
                                               helpText: "SVIDs signed, by kind."),
                             labels: [("kind", kind)]).increment(by: Int64(count))
    }

    /// Counts agent API calls by method and gRPC status code.
    func agentCall(method: String, code: String) {
        registry.makeCounter(descriptor: .init(namespace: "writ", metricName: "agent_api_calls", unitName: "total",
                                               helpText: "Agent API calls by method and gRPC status."),
                             labels: [("method", method), ("code", code)]).increment()
    }

    /// Sync streams currently open.
    var syncStreams: Gauge {
        registry.makeGauge(descriptor: .init(namespace: "writ", metricName: "sync_streams", unitName: "", helpText: "Agent sync streams open."))
    }

    /// Records how long a datastore operation took and whether it failed.
    func datastore(_ operation: String, seconds: Duration, failed: Bool) {
        registry.makeDurationHistogram(descriptor: .init(namespace: "writ", metricName: "datastore_operation", unitName: "seconds",
                                                         helpText: "Datastore operation latency."),
                                       labels: [("operation", operation)],
                                       buckets: [.microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50),
                                                 .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5)]).record(seconds)
        if failed {
            registry.makeCounter(descriptor: .init(namespace: "writ", metricName: "datastore_errors", unitName: "total",
                                                   helpText: "Datastore operations that failed."),
                                 labels: [("operation", operation)]).increment()
        }
    }
}

/// Counts every admin request (after authentication and routing).
struct AdminMetricsMiddleware: RouterMiddleware {
    typealias Context = AdminContext
    let metrics: ServerMetrics

    func handle(_ request: Request, context: AdminContext, next: (Request, AdminContext) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            metrics.adminRequest(method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: response.status.code)
            return response
        } catch let error as HTTPError {
            metrics.adminRequest(method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: error.status.code)
            throw error
        }
    }
}

/// A datastore that times every call into ``ServerMetrics``.
struct MeasuredDatastore: Datastore {
    let inner: any Datastore
    let metrics: ServerMetrics

    var backendKind: StoreBackendKind { inner.backendKind }

    private func measure<T>(_ operation: String, _ body: () async throws(StoreError) -> T) async throws(StoreError) -> T {
        let start = ContinuousClock.now
        do {
            let result = try await body()
            metrics.datastore(operation, seconds: ContinuousClock.now - start, failed: false)
            return result
        } catch {
            metrics.datastore(operation, seconds: ContinuousClock.now - start, failed: error.code == .unavailable || error.code == .corrupt)
            throw error
        }
    }

    func schemaVersion() async throws(StoreError) -> Int { try await measure("schema_version") { () async throws(StoreError) in try await inner.schemaVersion() } }
    func createEntry(_ entry: RegistrationEntry, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> RegistrationEntry {
        try await measure("create_entry") { () async throws(StoreError) in try await inner.createEntry(entry, at: time, audit: audit) }
    }
    func entry(id: String) async throws(StoreError) -> RegistrationEntry? { try await measure("get_entry") { () async throws(StoreError) in try await inner.entry(id: id) } }
    func updateEntry(_ entry: RegistrationEntry, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> RegistrationEntry {
        try await measure("update_entry") { () async throws(StoreError) in try await inner.updateEntry(entry, at: time, audit: audit) }
    }
    func deleteEntry(id: String, revision: Int64?, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> RegistrationEntry {
        try await measure("delete_entry") { () async throws(StoreError) in try await inner.deleteEntry(id: id, revision: revision, at: time, audit: audit) }
    }
    func listEntries(_ query: EntryQuery) async throws(StoreError) -> EntryPage { try await measure("list_entries") { () async throws(StoreError) in try await inner.listEntries(query) } }
    func countEntries(_ filter: EntryFilter) async throws(StoreError) -> Int { try await measure("count_entries") { () async throws(StoreError) in try await inner.countEntries(filter) } }
    func pruneExpiredEntries(at time: Date, audit: @escaping AuditEventsForRemoved) async throws(StoreError) -> [String] {
        try await measure("prune_entries") { () async throws(StoreError) in try await inner.pruneExpiredEntries(at: time, audit: audit) }
    }
    func changes(after revision: Int64, limit: Int) async throws(StoreError) -> [StoreChange] {
        try await measure("changes") { () async throws(StoreError) in try await inner.changes(after: revision, limit: limit) }
    }
    func currentRevision() async throws(StoreError) -> Int64 { try await measure("current_revision") { () async throws(StoreError) in try await inner.currentRevision() } }
    func createJoinToken(_ token: JoinTokenRecord, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) {
        try await measure("create_join_token") { () async throws(StoreError) in try await inner.createJoinToken(token, at: time, audit: audit) }
    }
    func consumeJoinToken(hash: String, at time: Date) async throws(StoreError) -> JoinTokenRecord {
        try await measure("consume_join_token") { () async throws(StoreError) in try await inner.consumeJoinToken(hash: hash, at: time) }
    }
    func pruneJoinTokens(at time: Date) async throws(StoreError) -> Int { try await measure("prune_join_tokens") { () async throws(StoreError) in try await inner.pruneJoinTokens(at: time) } }
    func attestAgent(_ agent: AgentRecord, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> AgentRecord {
        try await measure("attest_agent") { () async throws(StoreError) in try await inner.attestAgent(agent, at: time, audit: audit) }
    }
    func agent(id: SPIFFEID) async throws(StoreError) -> AgentRecord? { try await measure("get_agent") { () async throws(StoreError) in try await inner.agent(id: id) } }
    func renewAgent(id: SPIFFEID, fromSerial: String, toSerial: String, expiresAt: Date, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> AgentRecord {
        try await measure("renew_agent") { () async throws(StoreError) in
            try await inner.renewAgent(id: id, fromSerial: fromSerial, toSerial: toSerial, expiresAt: expiresAt, at: time, audit: audit)
        }
    }
    func listAgents(_ filter: AgentFilter) async throws(StoreError) -> [AgentRecord] { try await measure("list_agents") { () async throws(StoreError) in try await inner.listAgents(filter) } }
    func evictAgent(id: SPIFFEID, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> AgentRecord {
        try await measure("evict_agent") { () async throws(StoreError) in try await inner.evictAgent(id: id, at: time, audit: audit) }
    }
    func banAgent(id: SPIFFEID, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> AgentRecord {
        try await measure("ban_agent") { () async throws(StoreError) in try await inner.banAgent(id: id, at: time, audit: audit) }
    }
    func purgeAgents(expiredBefore time: Date, at now: Date, audit: @escaping AuditEventsForRemoved) async throws(StoreError) -> [SPIFFEID] {
        try await measure("purge_agents") { () async throws(StoreError) in try await inner.purgeAgents(expiredBefore: time, at: now, audit: audit) }
    }
    func publishBundleAuthorities(serverID: String, _ authorities: [BundleAuthority], at time: Date) async throws(StoreError) -> SharedBundleRecord {
        try await measure("publish_bundle") { () async throws(StoreError) in try await inner.publishBundleAuthorities(serverID: serverID, authorities, at: time) }
    }
    func sharedBundle() async throws(StoreError) -> SharedBundleRecord {
        try await measure("shared_bundle") { () async throws(StoreError) in try await inner.sharedBundle() }
    }
    func setFederatedBundle(_ bundle: FederatedBundleRecord, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> FederatedBundleRecord {
        try await measure("set_federated_bundle") { () async throws(StoreError) in try await inner.setFederatedBundle(bundle, at: time, audit: audit) }
    }
    func federatedBundle(_ trustDomain: TrustDomain) async throws(StoreError) -> FederatedBundleRecord? {
        try await measure("get_federated_bundle") { () async throws(StoreError) in try await inner.federatedBundle(trustDomain) }
    }
    func listFederatedBundles() async throws(StoreError) -> [FederatedBundleRecord] {
        try await measure("list_federated_bundles") { () async throws(StoreError) in try await inner.listFederatedBundles() }
    }
    func deleteFederatedBundle(_ trustDomain: TrustDomain, mode: FederatedBundleDeleteMode, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> FederatedBundleDeletion {
        try await measure("delete_federated_bundle") { () async throws(StoreError) in try await inner.deleteFederatedBundle(trustDomain, mode: mode, at: time, audit: audit) }
    }
    func appendAuditEvents(_ events: [AuditEventRecord]) async throws(StoreError) -> Range<UInt64> {
        try await measure("append_audit_events") { () async throws(StoreError) in try await inner.appendAuditEvents(events) }
    }
    func prepareAuditEvents(_ events: [AuditEventRecord]) throws(StoreError) -> PreparedAuditEvents {
        try inner.prepareAuditEvents(events)
    }
    func appendAuditEvents(_ prepared: PreparedAuditEvents) async throws(StoreError) -> Range<UInt64> {
        try await measure("append_audit_events") { () async throws(StoreError) in try await inner.appendAuditEvents(prepared) }
    }
    func auditSize() async throws(StoreError) -> UInt64 { try await measure("audit_size") { () async throws(StoreError) in try await inner.auditSize() } }
    func auditEvents(_ range: Range<UInt64>) async throws(StoreError) -> [AuditEventRecord] {
        try await measure("audit_events") { () async throws(StoreError) in try await inner.auditEvents(range) }
    }
    func auditSubtrees(_ subtrees: Set<Subtree>) async throws(StoreError) -> [Subtree: MerkleHash] {
        try await measure("audit_subtrees") { () async throws(StoreError) in try await inner.auditSubtrees(subtrees) }
    }
    func searchAuditEvents(_ query: AuditQuery) async throws(StoreError) -> [AuditEventRecord] {
        try await measure("search_audit_events") { () async throws(StoreError) in try await inner.searchAuditEvents(query) }
    }
    func addAuditCheckpoint(_ checkpoint: AuditCheckpointRecord) async throws(StoreError) -> AuditCheckpointRecord {
        try await measure("add_audit_checkpoint") { () async throws(StoreError) in try await inner.addAuditCheckpoint(checkpoint) }
    }
    func auditCheckpoints(limit: Int) async throws(StoreError) -> [AuditCheckpointRecord] {
        try await measure("audit_checkpoints") { () async throws(StoreError) in try await inner.auditCheckpoints(limit: limit) }
    }
    func registerAuditLogKey(_ key: AuditLogKeyRecord) async throws(StoreError) -> [AuditLogKeyRecord] {
        try await measure("register_audit_log_key") { () async throws(StoreError) in try await inner.registerAuditLogKey(key) }
    }
    func auditLogKeys() async throws(StoreError) -> [AuditLogKeyRecord] { try await measure("audit_log_keys") { () async throws(StoreError) in try await inner.auditLogKeys() } }
    func backup(to path: String) async throws(StoreError) { try await measure("backup") { () async throws(StoreError) in try await inner.backup(to: path) } }
    func close() async { await inner.close() }
}
