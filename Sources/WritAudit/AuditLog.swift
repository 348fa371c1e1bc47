import Foundation
import Logging
import MerkleLog
import WritStore

/// The server's audit log: events are appended in group commits and each caller is answered
/// only once the batch holding its event has committed; checkpoints of the tree are signed after
/// batches, at most once per interval, and every one is stored.
///
/// A batch closes when it holds `batchLimit` events or `batchWindow` after its first event,
/// whichever comes first; while a batch commits, the next one gathers, and a full one is
/// prepared to commit right after it. An event whose batch fails to commit fails, and nothing
/// of that batch is stored.
public actor AuditLog {
    public struct Configuration: Sendable {
        /// The checkpoint origin, `<trust-domain>/writ/audit`.
        public var origin: String
        public var batchLimit: Int
        public var batchWindow: Duration
        /// The shortest time between two signed checkpoints.
        public var checkpointInterval: Duration

        public init(origin: String, batchLimit: Int = 1000, batchWindow: Duration = .milliseconds(5), checkpointInterval: Duration = .seconds(1)) {
            self.origin = origin
            self.batchLimit = batchLimit
            self.batchWindow = batchWindow
            self.checkpointInterval = checkpointInterval
        }
    }

    let store: any Datastore
    let signer: NoteSigner?
    let configuration: Configuration
    let now: @Sendable () -> Date
    let logger: Logger

    /// What the log has done since it started (for metrics).
    public struct Statistics: Sendable, Hashable {
        public var batches = 0
        public var events = 0
        public var largestBatch = 0
        public var failedBatches = 0
        public var checkpoints = 0
        public init() {}
    }

    public private(set) var statistics = Statistics()

    private var pending: [(record: AuditEventRecord, waiter: Waiter)] = []
    /// Batches committing now (at most two).
    private var inFlight = 0
    /// The batch started last: the next one appends only after it, so indices follow the
    /// order events were recorded in.
    private var lastCommit: Task<Void, Never>?
    private var flushing: Bool { inFlight > 0 }
    private var windowOpen = false
    private var signing = false
    private var checkpointDue = false
    private var lastSigned: ContinuousClock.Instant?
    private var signedSize: UInt64?
    private var idle: [CheckedContinuation<Void, Never>] = []

    /// `signer` signs checkpoints (no checkpoints without one); its name should be the origin.
    public init(store: any Datastore, signer: NoteSigner?, configuration: Configuration, now: @escaping @Sendable () -> Date = Date.init,
                logger: Logger) {
        self.store = store
        self.signer = signer
        self.configuration = configuration
        self.now = now
        self.logger = logger
    }

    /// Records `event`; returns its index in the log once it is committed. Throws when the event
    /// is malformed (``AuditError``) or its batch could not be stored (the store's error).
    public nonisolated func record(_ event: AuditEvent) async throws -> UInt64 {
        try await record([event])[0]
    }

    /// Records `events` (the events of one operation, in order); returns their indices once
    /// every one is committed. All are checked before any is queued: a malformed one fails the
    /// call with nothing recorded. They may span batches; a failed batch fails the call.
    public nonisolated func record(_ events: [AuditEvent]) async throws -> [UInt64] {
        guard !events.isEmpty else { return [] }
        // Canonicalised on the caller's thread, so that many callers do it in parallel rather
        // than one after another on the log's actor.
        let records = try events.map { event throws(AuditError) in try event.record() }
        return try await enqueue(records)
    }

    private func enqueue(_ records: [AuditEventRecord]) async throws -> [UInt64] {
        let waiters = records.map { _ in Waiter() }
        pending.append(contentsOf: zip(records, waiters).map { ($0, $1) })
        if pending.count >= configuration.batchLimit {
            launchBatches()
        } else if !windowOpen && !flushing {
            windowOpen = true
            let window = configuration.batchWindow
            Task { [weak self] in
                try? await Task.sleep(for: window)
                await self?.windowClosed()
            }
        }
        var indices: [UInt64] = []
        indices.reserveCapacity(waiters.count)
        for waiter in waiters { indices.append(try await waiter.value()) }
        return indices
    }

    /// Waits until every event recorded so far is committed (or failed) and the checkpoint
    /// due after it is signed.
    public func flush() async {
        launchBatches()
        while flushing || signing || !pending.isEmpty || checkpointDue {
            await withCheckedContinuation { idle.append($0) }
        }
    }

    /// Signs a checkpoint of the log as it is now, whatever the interval (at start, at
    /// shutdown); nil without a signer or when the last one already covers the log.
    @discardableResult
    public func checkpointNow() async throws -> AuditCheckpointRecord? {
        try await signCheckpoint()
    }

    /// Notes that events were committed outside the log (inside another datastore write), so
    /// that a checkpoint covering them is signed (at most once per interval).
    public func committedElsewhere() {
        guard signer != nil else { return }
        checkpointDue = true
        scheduleCheckpoint()
    }

    private func windowClosed() {
        windowOpen = false
        launchBatches()
    }

    /// Starts batches: whatever is pending when none is committing; while one commits, a
    /// second only once it is full. The second's leaves are hashed and rows built (the store
    /// does that before taking its write lock) while the first's transaction runs, so the
    /// database is rarely idle; it then waits for the lock and takes the indices after. Each
    /// batch is a transaction of its own. The commits run above the callers' priority: every
    /// caller waits for them, and a resumed batch of callers must not queue ahead of them.
    private func launchBatches() {
        while !pending.isEmpty && (inFlight == 0 || (inFlight < 2 && pending.count >= configuration.batchLimit)) {
            let batch = Array(pending.prefix(configuration.batchLimit))
            pending.removeFirst(batch.count)
            inFlight += 1
            let previous = lastCommit
            lastCommit = Task(priority: .high) { await self.commit(batch, after: previous) }
        }
    }

    /// Prepares `batch` off the actor, then appends it once `previous` is done.
    private func commit(_ batch: [(record: AuditEventRecord, waiter: Waiter)], after previous: Task<Void, Never>?) async {
        do {
            let prepared = try await Self.prepare(batch.map(\.record), in: store)
            await previous?.value
            let range = try await store.appendAuditEvents(prepared)
            for (offset, item) in batch.enumerated() { item.waiter.resolve(.success(range.lowerBound + UInt64(offset))) }
            checkpointDue = signer != nil
            statistics.batches += 1
            statistics.events += batch.count
            statistics.largestBatch = max(statistics.largestBatch, batch.count)
        } catch {
            statistics.failedBatches += 1
            logger.error("audit events could not be stored; their operations fail", metadata: ["events": "\(batch.count)", "error": "\(error)"])
            for item in batch { item.waiter.resolve(.failure(error)) }
        }
        inFlight -= 1
        launchBatches()
        if !flushing {
            scheduleCheckpoint()
            wakeIfIdle()
        }
    }

    @concurrent
    private static func prepare(_ records: [AuditEventRecord], in store: any Datastore) async throws(StoreError) -> PreparedAuditEvents {
        try store.prepareAuditEvents(records)
    }

    private func scheduleCheckpoint() {
        guard checkpointDue, !signing else { return }
        signing = true
        let wait = lastSigned.map { configuration.checkpointInterval - (ContinuousClock.now - $0) } ?? .zero
        Task {
            if wait > .zero { try? await Task.sleep(for: wait) }
            await self.signDueCheckpoint()
        }
    }

    private func signDueCheckpoint() async {
        checkpointDue = false
        do { _ = try await signCheckpoint() } catch {
            logger.error("the audit checkpoint could not be signed or stored", metadata: ["error": "\(error)"])
        }
        signing = false
        if checkpointDue { scheduleCheckpoint() }
        wakeIfIdle()
    }

    private func signCheckpoint() async throws -> AuditCheckpointRecord? {
        guard let signer else { return nil }
        let size = try await store.auditSize()
        if let signedSize, signedSize == size { return nil }
        let root = try MerkleProofs.root(size: size, try await store.auditSubtrees(MerkleProofs.rootPlan(size: size).subtrees))
        let checkpoint = try Checkpoint(origin: configuration.origin, size: size, root: root)
        let note = try signer.sign(checkpoint.text)
        let stored = try await store.addAuditCheckpoint(AuditCheckpointRecord(size: size, note: note, keyName: signer.name, keyID: signer.keyID, signedAt: now()))
        signedSize = size
        lastSigned = ContinuousClock.now
        statistics.checkpoints += 1
        logger.debug("audit checkpoint signed", metadata: ["size": "\(size)", "root": "\(root.base64)"])
        return stored
    }

    private func wakeIfIdle() {
        guard !flushing, !signing, pending.isEmpty, !checkpointDue else { return }
        let waiting = idle
        idle.removeAll()
        for continuation in waiting { continuation.resume() }
    }
}

/// One caller waiting for its event's batch: resolved once, awaited once, in either order.
final class Waiter: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<UInt64, any Error>?
    private var continuation: CheckedContinuation<UInt64, any Error>?

    func resolve(_ outcome: Result<UInt64, any Error>) {
        lock.lock()
        if let continuation {
            self.continuation = nil
            lock.unlock()
            continuation.resume(with: outcome)
        } else {
            result = outcome
            lock.unlock()
        }
    }

    func value() async throws -> UInt64 {
        try await withCheckedThrowingContinuation { continuation in
            lock.lock()
            if let result {
                lock.unlock()
                continuation.resume(with: result)
            } else {
                self.continuation = continuation
                lock.unlock()
            }
        }
    }
}
