import Foundation
import MerkleLog
import SPIFFEIdentity
import WritModel

/// The server's datastore: registration entries, join tokens and the change feed, on SQLite or
/// PostgreSQL. Every write is one transaction, and writes are serialized, so revisions are
/// assigned in commit order and the change feed has no gaps a reader could skip past.
///
/// One conformance suite (`WritStoreTests`) runs every method against every backend.
public protocol Datastore: Sendable {
    /// Which backend holds the data.
    var backendKind: StoreBackendKind { get }

    /// The schema version the database is at.
    func schemaVersion() async throws(StoreError) -> Int

    /// Stores a new entry; `already_exists` when its id, or its SPIFFE ID + parent + selectors,
    /// is taken; `invalid_argument` when it federates with a trust domain that has no stored
    /// bundle. Returns the entry with its revision and times. `audit` events are appended to the
    /// audit log in the same transaction: both are stored, or neither.
    func createEntry(_ entry: RegistrationEntry, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> RegistrationEntry
    /// The entry with this id, or nil.
    func entry(id: String) async throws(StoreError) -> RegistrationEntry?
    /// Replaces an entry whose stored revision is `entry.revision`; `conflict` when it moved on,
    /// `not_found` when it is gone, `already_exists` when the change collides with another entry,
    /// `invalid_argument` when it federates with a trust domain that has no stored bundle.
    func updateEntry(_ entry: RegistrationEntry, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> RegistrationEntry
    /// Deletes an entry (at `revision`, when given); returns what was deleted. (`audit` for both,
    /// as for ``createEntry(_:at:audit:)``.)
    func deleteEntry(id: String, revision: Int64?, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> RegistrationEntry
    /// One page of the entries matching `query`, ordered by entry id.
    func listEntries(_ query: EntryQuery) async throws(StoreError) -> EntryPage
    /// How many entries match `filter`.
    func countEntries(_ filter: EntryFilter) async throws(StoreError) -> Int
    /// Deletes entries whose `expires_at` is at or before `time`; returns their ids. `audit` is
    /// given those ids inside the transaction and its events commit with the deletion.
    func pruneExpiredEntries(at time: Date, audit: @escaping AuditEventsForRemoved) async throws(StoreError) -> [String]

    /// The changes after `revision`, oldest first, at most `limit`.
    func changes(after revision: Int64, limit: Int) async throws(StoreError) -> [StoreChange]
    /// The newest revision (0 for an empty store).
    func currentRevision() async throws(StoreError) -> Int64

    /// Stores a join token (its hash only). Every write that takes `audit` appends those events
    /// to the audit log in its own transaction: the change and its events commit together, or neither.
    func createJoinToken(_ token: JoinTokenRecord, at time: Date, audit: [AuditEventRecord]) async throws(StoreError)
    /// Uses up the token whose hash is `hash`: exactly one caller ever gets it back; an unknown,
    /// used or expired token is `token_rejected`.
    func consumeJoinToken(hash: String, at time: Date) async throws(StoreError) -> JoinTokenRecord
    /// Deletes tokens that expired at or before `time`; returns how many.
    func pruneJoinTokens(at time: Date) async throws(StoreError) -> Int

    /// Records a successful attestation: creates the agent, or replaces the record of one that
    /// attested again (x509pop after an eviction or expiry). A banned agent is refused with
    /// `permission_denied` and its record is left unchanged.
    func attestAgent(_ agent: AgentRecord, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> AgentRecord
    /// The agent with this SPIFFE ID, or nil.
    func agent(id: SPIFFEID) async throws(StoreError) -> AgentRecord?
    /// Moves an agent from the SVID `fromSerial` to a renewed one: `conflict` when the stored
    /// serial is not `fromSerial` (the old SVID was already renewed), `permission_denied` when
    /// banned, `not_found` when evicted.
    func renewAgent(id: SPIFFEID, fromSerial: String, toSerial: String, expiresAt: Date, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> AgentRecord
    /// The agents matching `filter`, ordered by SPIFFE ID.
    func listAgents(_ filter: AgentFilter) async throws(StoreError) -> [AgentRecord]
    /// Deletes the agent's record: its SVID stops being accepted and it must attest again.
    func evictAgent(id: SPIFFEID, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> AgentRecord
    /// Marks the agent banned and forgets its serial: refused at once, and it cannot attest again.
    func banAgent(id: SPIFFEID, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> AgentRecord
    /// Deletes agents whose SVID expired before `time` (banned ones included); returns their
    /// ids. `audit` is given those ids inside the transaction and its events commit with the deletion.
    func purgeAgents(expiredBefore time: Date, at now: Date, audit: @escaping AuditEventsForRemoved) async throws(StoreError) -> [SPIFFEID]

    // MARK: the shared trust bundle

    /// Replaces the authorities `serverID` contributes with `authorities` (each with that
    /// server id) and drops every contribution expired at `time`, in one transaction; when
    /// the set of authorities changed, the sequence goes up by one and a `bundle.update` change
    /// is recorded. Returns the bundle as committed.
    func publishBundleAuthorities(serverID: String, _ authorities: [BundleAuthority], at time: Date) async throws(StoreError) -> SharedBundleRecord
    /// The shared bundle: every stored contribution and the sequence.
    func sharedBundle() async throws(StoreError) -> SharedBundleRecord

    // MARK: federated bundles

    /// Stores (creates or replaces) the bundle of a foreign trust domain and records a
    /// `bundle.set` change. The caller has validated the document.
    func setFederatedBundle(_ bundle: FederatedBundleRecord, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> FederatedBundleRecord
    /// The stored bundle of `trustDomain`, or nil.
    func federatedBundle(_ trustDomain: TrustDomain) async throws(StoreError) -> FederatedBundleRecord?
    /// Every federated bundle, ordered by trust domain.
    func listFederatedBundles() async throws(StoreError) -> [FederatedBundleRecord]
    /// Deletes the bundle of `trustDomain` and records a `bundle.delete` change. The entries that
    /// federate with it are handled per `mode` in the same transaction: `restrict` refuses with
    /// `conflict` while there are any; `dissociate` drops the trust domain from their
    /// `federates_with` (an `entry.update` each); `delete` deletes them (an `entry.delete` each).
    func deleteFederatedBundle(_ trustDomain: TrustDomain, mode: FederatedBundleDeleteMode, at time: Date, audit: [AuditEventRecord]) async throws(StoreError) -> FederatedBundleDeletion

    // MARK: the audit log (an RFC 6962 Merkle tree of events)

    /// Appends `events` in order at the end of the log, in one transaction under the write
    /// lock (so servers sharing a database leave no gap and no duplicate), with the hash of every
    /// subtree they complete; returns the indices given. All or nothing.
    func appendAuditEvents(_ events: [AuditEventRecord]) async throws(StoreError) -> Range<UInt64>
    /// `events` checked and made ready to append: the part of an append that needs no lock
    /// (leaf hashes, rows), done ahead so that it can overlap another append's transaction.
    /// Refuses what ``appendAuditEvents(_:)-([AuditEventRecord])`` refuses.
    func prepareAuditEvents(_ events: [AuditEventRecord]) throws(StoreError) -> PreparedAuditEvents
    /// Appends prepared events exactly as ``appendAuditEvents(_:)-([AuditEventRecord])``
    /// appends the events they were prepared from.
    func appendAuditEvents(_ prepared: PreparedAuditEvents) async throws(StoreError) -> Range<UInt64>
    /// The number of events in the log.
    func auditSize() async throws(StoreError) -> UInt64
    /// The events with indices in `range` (clamped to the log), in order.
    func auditEvents(_ range: Range<UInt64>) async throws(StoreError) -> [AuditEventRecord]
    /// The stored hashes of `subtrees` (one read; a subtree not complete yet is left out).
    func auditSubtrees(_ subtrees: Set<Subtree>) async throws(StoreError) -> [Subtree: MerkleHash]
    /// Events matching `query`, in index order.
    func searchAuditEvents(_ query: AuditQuery) async throws(StoreError) -> [AuditEventRecord]
    /// Stores a signed checkpoint (every one is kept).
    func addAuditCheckpoint(_ checkpoint: AuditCheckpointRecord) async throws(StoreError) -> AuditCheckpointRecord
    /// Stored checkpoints, newest (largest tree, then latest signed) first.
    func auditCheckpoints(limit: Int) async throws(StoreError) -> [AuditCheckpointRecord]
    /// Records a server's log verifier key (idempotent), retiring the server's other keys.
    func registerAuditLogKey(_ key: AuditLogKeyRecord) async throws(StoreError) -> [AuditLogKeyRecord]
    /// Every log key ever registered, retired ones included, oldest first.
    func auditLogKeys() async throws(StoreError) -> [AuditLogKeyRecord]

    /// Writes a consistent copy of the whole datastore to `path` (a new file) while it stays
    /// online. SQLite only: a PostgreSQL store is backed up with `pg_dump` (docs/datastore.md).
    func backup(to path: String) async throws(StoreError)

    /// Closes connections; the store is unusable afterwards.
    func close() async
}

/// The database engine behind a store.
public enum StoreBackendKind: String, Sendable, CaseIterable {
    case sqlite
    case postgres
}

/// What an entry list is filtered by. Every given condition must hold.
public struct EntryFilter: Sendable, Hashable {
    public var spiffeID: SPIFFEID?
    public var parentID: SPIFFEID?
    /// Selectors compared by ``match``; empty: no selector condition.
    public var selectors: [Selector]
    public var match: SelectorMatch
    public var owner: String?
    /// Labels the entry must carry with exactly these values.
    public var labels: [String: String]

    public init(spiffeID: SPIFFEID? = nil, parentID: SPIFFEID? = nil, selectors: [Selector] = [], match: SelectorMatch = .superset,
                owner: String? = nil, labels: [String: String] = [:]) {
        self.spiffeID = spiffeID
        self.parentID = parentID
        self.selectors = selectors
        self.match = match
        self.owner = owner
        self.labels = labels
    }

    /// Whether `entry` passes every condition.
    public func matches(_ entry: RegistrationEntry) -> Bool {
        if let spiffeID, entry.spiffeID != spiffeID { return false }
        if let parentID, entry.parentID != parentID { return false }
        if let owner, entry.owner != owner { return false }
        for (key, value) in labels where entry.labels[key] != value { return false }
        if !selectors.isEmpty, !match.matches(Set(entry.selectors), query: Set(selectors)) { return false }
        return true
    }
}

/// A page request.
public struct EntryQuery: Sendable, Hashable {
    /// The default page size.
    public static let defaultPageSize = 100
    /// The largest page size.
    public static let maximumPageSize = 1000

    public var filter: EntryFilter
    public var pageSize: Int
    /// The `next_page_token` of the previous page; nil for the first page.
    public var pageToken: String?

    public init(filter: EntryFilter = EntryFilter(), pageSize: Int = EntryQuery.defaultPageSize, pageToken: String? = nil) {
        self.filter = filter
        self.pageSize = pageSize
        self.pageToken = pageToken
    }
}

/// One page of entries.
public struct EntryPage: Sendable, Hashable {
    public var entries: [RegistrationEntry]
    /// Present when more entries may follow; pass it back for the next page. Pages are keyed
    /// by entry id, so entries inserted meanwhile never shift or repeat what later pages hold.
    public var nextPageToken: String?

    public init(entries: [RegistrationEntry], nextPageToken: String?) {
        self.entries = entries
        self.nextPageToken = nextPageToken
    }
}

/// One committed change, in revision order.
public struct StoreChange: Sendable, Hashable {
    /// What happened.
    public enum Kind: String, Sendable, Hashable {
        case entryCreated = "entry.create"
        case entryUpdated = "entry.update"
        case entryDeleted = "entry.delete"
        case joinTokenCreated = "token.generate"
        case joinTokenUsed = "token.use"
        case agentAttested = "agent.attest"
        case agentRenewed = "agent.renew"
        case agentEvicted = "agent.evict"
        case agentBanned = "agent.ban"
        case agentPurged = "agent.purge"
        case bundleUpdated = "bundle.update"
        case federatedBundleSet = "bundle.set"
        case federatedBundleDeleted = "bundle.delete"
    }

    /// The revision the change committed at; strictly increasing.
    public let revision: Int64
    public let kind: Kind
    /// The id of the record that changed.
    public let recordID: String
    public let time: Date

    public init(revision: Int64, kind: Kind, recordID: String, time: Date) {
        self.revision = revision
        self.kind = kind
        self.recordID = recordID
        self.time = time
    }
}

/// A join token as stored: never the secret itself, only its SHA-256.
public struct JoinTokenRecord: Sendable, Hashable {
    /// The token's public id (it names the agent: `/writ/agent/join_token/<id>`).
    public var id: String
    /// Lowercase hex SHA-256 of the secret.
    public var tokenHash: String
    /// A node alias the agent gets as well, if any.
    public var spiffeID: SPIFFEID?
    public var expiresAt: Date
    public var createdAt: Date?

    public init(id: String, tokenHash: String, spiffeID: SPIFFEID? = nil, expiresAt: Date, createdAt: Date? = nil) {
        self.id = id
        self.tokenHash = tokenHash
        self.spiffeID = spiffeID
        self.expiresAt = expiresAt
        self.createdAt = createdAt
    }
}

/// Audit events made ready to append by a store's ``Datastore/prepareAuditEvents(_:)``; what
/// the store precomputed is its own (another store appends them from the events). Only this
/// module pairs events with work, so the two always belong together.
public struct PreparedAuditEvents: Sendable {
    /// The events, in order.
    public let events: [AuditEventRecord]
    /// The preparing store's work, if any.
    let work: (any Sendable)?

    /// Events with no work ahead.
    public init(events: [AuditEventRecord]) {
        self.init(events: events, work: nil)
    }

    init(events: [AuditEventRecord], work: (any Sendable)?) {
        self.events = events
        self.work = work
    }
}

extension Datastore {
    /// No work ahead: the events as they are.
    public func prepareAuditEvents(_ events: [AuditEventRecord]) throws(StoreError) -> PreparedAuditEvents {
        PreparedAuditEvents(events: events)
    }

    /// Appends the events themselves.
    public func appendAuditEvents(_ prepared: PreparedAuditEvents) async throws(StoreError) -> Range<UInt64> {
        try await appendAuditEvents(prepared.events)
    }

    /// ``createEntry(_:at:audit:)`` with no audit event.
    public func createEntry(_ entry: RegistrationEntry, at time: Date) async throws(StoreError) -> RegistrationEntry {
        try await createEntry(entry, at: time, audit: [])
    }

    /// ``updateEntry(_:at:audit:)`` with no audit event.
    public func updateEntry(_ entry: RegistrationEntry, at time: Date) async throws(StoreError) -> RegistrationEntry {
        try await updateEntry(entry, at: time, audit: [])
    }

    /// ``deleteEntry(id:revision:at:audit:)`` with no audit event.
    public func deleteEntry(id: String, revision: Int64?, at time: Date) async throws(StoreError) -> RegistrationEntry {
        try await deleteEntry(id: id, revision: revision, at: time, audit: [])
    }
    /// ``createJoinToken(_:at:audit:)`` with no audit event.
    public func createJoinToken(_ token: JoinTokenRecord, at time: Date) async throws(StoreError) {
        try await createJoinToken(token, at: time, audit: [])
    }

    /// ``attestAgent(_:at:audit:)`` with no audit event.
    public func attestAgent(_ agent: AgentRecord, at time: Date) async throws(StoreError) -> AgentRecord {
        try await attestAgent(agent, at: time, audit: [])
    }

    /// ``renewAgent(id:fromSerial:toSerial:expiresAt:at:audit:)`` with no audit event.
    public func renewAgent(id: SPIFFEID, fromSerial: String, toSerial: String, expiresAt: Date, at time: Date) async throws(StoreError) -> AgentRecord {
        try await renewAgent(id: id, fromSerial: fromSerial, toSerial: toSerial, expiresAt: expiresAt, at: time, audit: [])
    }

    /// ``pruneExpiredEntries(at:audit:)`` with no audit event.
    public func pruneExpiredEntries(at time: Date) async throws(StoreError) -> [String] {
        try await pruneExpiredEntries(at: time, audit: { _ in [] })
    }

    /// ``purgeAgents(expiredBefore:at:audit:)`` with no audit event.
    public func purgeAgents(expiredBefore time: Date, at now: Date) async throws(StoreError) -> [SPIFFEID] {
        try await purgeAgents(expiredBefore: time, at: now, audit: { _ in [] })
    }

    /// ``evictAgent(id:at:audit:)`` with no audit event.
    public func evictAgent(id: SPIFFEID, at time: Date) async throws(StoreError) -> AgentRecord {
        try await evictAgent(id: id, at: time, audit: [])
    }

    /// ``banAgent(id:at:audit:)`` with no audit event.
    public func banAgent(id: SPIFFEID, at time: Date) async throws(StoreError) -> AgentRecord {
        try await banAgent(id: id, at: time, audit: [])
    }

    /// ``setFederatedBundle(_:at:audit:)`` with no audit event.
    public func setFederatedBundle(_ bundle: FederatedBundleRecord, at time: Date) async throws(StoreError) -> FederatedBundleRecord {
        try await setFederatedBundle(bundle, at: time, audit: [])
    }

    /// ``deleteFederatedBundle(_:mode:at:audit:)`` with no audit event.
    public func deleteFederatedBundle(_ trustDomain: TrustDomain, mode: FederatedBundleDeleteMode, at time: Date) async throws(StoreError) -> FederatedBundleDeletion {
        try await deleteFederatedBundle(trustDomain, mode: mode, at: time, audit: [])
    }
}
