import Foundation
import Logging
import SPIFFEIdentity
import WritModel
import WritStore

/// The registry in memory: every entry, indexed by parent, kept current from the datastore's
/// change feed. The agent API answers from it, so serving an agent costs no datastore read;
/// changes made through another server on the same database arrive with the next catch-up
/// (polled every `pollInterval`, and run before any call that must see the latest writes).
actor RegistryCache {
    private let store: any Datastore
    private let serverID: SPIFFEID
    private let logger: Logger
    /// The revision every change up to which is applied.
    private(set) var revision: Int64 = 0
    private var entries: [String: RegistrationEntry] = [:]
    /// Entry ids by the URI of their parent.
    private var children: [String: Set<String>] = [:]
    /// Entry ids by the URI of their SPIFFE ID.
    private var bySPIFFEID: [String: Set<String>] = [:]
    /// The revision of the latest change to each agent record (attest, renew, evict, ban, purge).
    private var agentChanges: [String: Int64] = [:]
    /// Foreign trust domains' bundles, by trust domain name.
    private var federated: [String: FederatedBundleRecord] = [:]
    /// The revision of the latest change to the shared bundle (0: none since start).
    private(set) var bundleChange: Int64 = 0
    /// When a catch-up last reached the end of the change feed.
    private var lastCaughtUp: ContinuousClock.Instant?
    /// `/readyz` reports not ready when the last complete catch-up is older than this.
    static let staleAfter: Duration = .seconds(5)
    private var inFlight: Task<Void, any Error>?
    private var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]

    init(store: any Datastore, serverID: SPIFFEID, logger: Logger) {
        self.store = store
        self.serverID = serverID
        self.logger = logger
    }

    /// Loads every entry, then applies what changed while loading.
    func load() async throws {
        let start = try await store.currentRevision()
        var token: String?
        var loaded: [String: RegistrationEntry] = [:]
        repeat {
            let page = try await store.listEntries(EntryQuery(filter: EntryFilter(), pageSize: EntryQuery.maximumPageSize, pageToken: token))
            for entry in page.entries { loaded[entry.id] = entry }
            token = page.nextPageToken
        } while token != nil
        entries = [:]
        children = [:]
        bySPIFFEID = [:]
        for entry in loaded.values { insert(entry) }
        federated = Dictionary(try await store.listFederatedBundles().map { ($0.trustDomain.name, $0) }, uniquingKeysWith: { $1 })
        revision = start
        try await catchUp()
        logger.info("registry loaded", metadata: ["entries": "\(entries.count)", "revision": "\(revision)"])
    }

    /// Applies every committed change not yet applied. Calls are chained, so a caller returns
    /// only after the changes committed before its call are in memory.
    func catchUp() async throws {
        let previous = inFlight
        let task = Task {
            _ = await previous?.result
            try await self.applyPendingChanges()
        }
        inFlight = task
        try await task.value
    }

    private func applyPendingChanges() async throws {
        var advanced = false
        while true {
            let changes = try await store.changes(after: revision, limit: 1000)
            guard !changes.isEmpty else { break }
            for change in changes {
                switch change.kind {
                case .entryCreated, .entryUpdated, .entryDeleted:
                    if let old = entries[change.recordID] { remove(old) }
                    if change.kind != .entryDeleted, let current = try await store.entry(id: change.recordID) {
                        insert(current)
                    }
                case .agentAttested, .agentRenewed, .agentEvicted, .agentBanned, .agentPurged:
                    agentChanges[change.recordID] = change.revision
                case .bundleUpdated:
                    bundleChange = change.revision
                case .federatedBundleSet, .federatedBundleDeleted:
                    federated.removeValue(forKey: change.recordID)
                    if change.kind == .federatedBundleSet, let domain = try? TrustDomain(parsing: change.recordID),
                       let current = try await store.federatedBundle(domain) {
                        federated[current.trustDomain.name] = current
                    }
                case .joinTokenCreated, .joinTokenUsed:
                    break
                }
                revision = change.revision
            }
            advanced = true
            if changes.count < 1000 { break }
        }
        lastCaughtUp = .now
        if advanced {
            for (_, waiter) in waiters { waiter.resume() }
            waiters = [:]
        }
    }

    /// Returns once the revision passes `after`, after `timeout`, or when the task is cancelled.
    func waitForChange(after: Int64, timeout: Duration) async {
        guard revision <= after, !Task.isCancelled else { return }
        let id = UUID()
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.resumeWaiter(id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // Cancelled before the waiter is stored: the handler below found nothing to resume.
                if Task.isCancelled { continuation.resume() } else { waiters[id] = continuation }
            }
        } onCancel: {
            Task { await self.resumeWaiter(id) }
        }
        timer.cancel()
    }

    private func resumeWaiter(_ id: UUID) {
        waiters.removeValue(forKey: id)?.resume()
    }

    /// When the cache last reached the end of the change feed, and the revision it holds.
    func catchUpStatus() -> (ContinuousClock.Instant?, Int64) { (lastCaughtUp, revision) }

    /// The revision of the latest change to the agent's record, if any since start.
    func lastAgentChange(_ agentID: SPIFFEID) -> Int64? { agentChanges[agentID.uri] }

    /// The stored bundles of the trust domains `entries` federate with, ordered by name (a
    /// trust domain whose bundle is gone is left out).
    func federatedBundles(for entries: [RegistrationEntry]) -> [FederatedBundleRecord] {
        Set(entries.flatMap { $0.federatesWith.map(\.name) }).sorted().compactMap { federated[$0] }
    }

    /// The entry with this id, if it exists.
    func entry(id: String) -> RegistrationEntry? { entries[id] }

    /// The entries `agent` may serve at the current revision: those parented to the agent or to
    /// a node alias whose selectors the agent's all include, and, transitively, those parented to
    /// any of those entries' SPIFFE IDs. Expired entries are left out.
    func authorizedEntries(for agent: AgentRecord, at now: Date) -> (revision: Int64, entries: [RegistrationEntry]) {
        let agentSelectors = Set(agent.selectors)
        var queue: [String] = [agent.id.uri]
        var visitedParents: Set<String> = [agent.id.uri]
        for id in children[serverID.uri] ?? [] {
            guard let alias = entries[id], Set(alias.selectors).isSubset(of: agentSelectors), !isExpired(alias, now) else { continue }
            if visitedParents.insert(alias.spiffeID.uri).inserted { queue.append(alias.spiffeID.uri) }
        }
        var result: [RegistrationEntry] = []
        var index = 0
        while index < queue.count {
            let parent = queue[index]
            index += 1
            for id in children[parent] ?? [] {
                guard let entry = entries[id], !isExpired(entry, now) else { continue }
                result.append(entry)
                if visitedParents.insert(entry.spiffeID.uri).inserted { queue.append(entry.spiffeID.uri) }
            }
        }
        result.sort { $0.id < $1.id }
        return (revision, result)
    }

    /// Whether `agent` may obtain SVIDs for the entry with this id right now.
    func isAuthorized(entryID: String, for agent: AgentRecord, at now: Date) -> Bool {
        guard let entry = entries[entryID], !isExpired(entry, now) else { return false }
        // Walk up from the entry's parent to the agent or a matching node alias.
        let agentSelectors = Set(agent.selectors)
        var parents: [String] = [entry.parentID.uri]
        var seen: Set<String> = []
        while let parent = parents.popLast() {
            guard seen.insert(parent).inserted else { continue }
            if parent == agent.id.uri { return true }
            for id in bySPIFFEID[parent] ?? [] {
                guard let candidate = entries[id], !isExpired(candidate, now) else { continue }
                if candidate.parentID == serverID {
                    if Set(candidate.selectors).isSubset(of: agentSelectors) { return true }
                } else {
                    parents.append(candidate.parentID.uri)
                }
            }
        }
        return false
    }

    private func isExpired(_ entry: RegistrationEntry, _ now: Date) -> Bool {
        if let expiresAt = entry.expiresAt { return expiresAt <= now }
        return false
    }

    private func insert(_ entry: RegistrationEntry) {
        entries[entry.id] = entry
        children[entry.parentID.uri, default: []].insert(entry.id)
        bySPIFFEID[entry.spiffeID.uri, default: []].insert(entry.id)
    }

    private func remove(_ entry: RegistrationEntry) {
        entries.removeValue(forKey: entry.id)
        children[entry.parentID.uri]?.remove(entry.id)
        if children[entry.parentID.uri]?.isEmpty == true { children.removeValue(forKey: entry.parentID.uri) }
        bySPIFFEID[entry.spiffeID.uri]?.remove(entry.id)
        if bySPIFFEID[entry.spiffeID.uri]?.isEmpty == true { bySPIFFEID.removeValue(forKey: entry.spiffeID.uri) }
    }
}
