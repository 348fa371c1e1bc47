import Foundation
import Logging
import MerkleLog
import Synchronization
import WritStore

/// The server's audit log: events are appended in group commits and each caller is answered
/// only once the batch holding its event has committed; checkpoints of the tree are signed after
/// batches, at most once per interval, and every one is stored.
///
/// A batch closes when it holds `batchLimit` events or `batchWindow` after its first event,
/// whichever comes first; while a batch commits, the next one gathers, and a full one is
/// prepared to commit right after it. A batch never splits one `record` call's events: it ends
/// before a call that would not fit, and a call of more than `batchLimit` events is a batch of
/// its own (split only past the store's largest append, 10,000). An event whose batch fails to
/// commit fails, and nothing of that batch is stored.
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

    /// What the log has done since it started.
    public var statistics: Statistics { queue.withLock { $0.statistics } }

    /// The group commit: callers queue their events here under a lock, without a hop onto the
    /// actor, and the call that fills a batch (or the window's end, or a commit's end) starts it.
    private let queue = Mutex(Queue())
    private var signing = false
    private var checkpointDue = false
    /// When a checkpoint was last signed or tried: the next waits an interval from then, so a
    /// failing store is not retried after every batch.
    private var lastAttempt: ContinuousClock.Instant?
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
        return try await withCheckedThrowingContinuation { continuation in
            let call = PendingCall(count: records.count, continuation: continuation)
            let openWindow = queue.withLock { queue in
                queue.records.append(contentsOf: records)
                queue.owners.append(contentsOf: (0..<records.count).map { PendingEvent(call: call, offset: $0) })
                if queue.records.count >= configuration.batchLimit {
                    launchBatches(&queue)
                } else if !queue.windowOpen && queue.inFlight == 0 {
                    queue.windowOpen = true
                    return true
                }
                return false
            }
            if openWindow {
                let window = configuration.batchWindow
                Task { [weak self] in
                    try? await Task.sleep(for: window)
                    self?.windowClosed()
                }
            }
        }
    }

    /// Waits until every event recorded so far is committed (or failed) and the checkpoint
    /// due after it is signed.
    public func flush() async {
        // Each batch's end starts what waits behind it; the one that leaves nothing queued or
        // committing resumes this.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let drained = queue.withLock { queue in
                launchBatches(&queue)
                guard queue.isDrained else {
                    queue.drained.append(continuation)
                    return false
                }
                return true
            }
            if drained { continuation.resume() }
        }
        while signing || checkpointDue {
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

    private nonisolated func windowClosed() {
        queue.withLock { queue in
            queue.windowOpen = false
            launchBatches(&queue)
        }
    }

    /// Starts batches: whatever is queued when none is committing; while one commits, a second
    /// only once it is full. The second's leaves are hashed and rows built (the store does that
    /// before taking its write lock) while the first's transaction runs, so the database is
    /// rarely idle; it then waits for the first to finish and takes the indices after it. Each
    /// batch is a transaction of its own. The commits run above the callers' priority: every
    /// caller waits for them, and a resumed batch of callers must not queue ahead of them.
    private nonisolated func launchBatches(_ queue: inout Queue) {
        while !queue.records.isEmpty && (queue.inFlight == 0 || (queue.inFlight < 2 && queue.records.count >= configuration.batchLimit)) {
            var count = min(configuration.batchLimit, queue.records.count)
            if count < queue.owners.count, queue.owners[count].offset > 0 {
                // The limit falls inside a call (a call's events are queued together): end the
                // batch before it, or, when it opens the batch, take all of it.
                let start = count - queue.owners[count].offset
                if start > 0 {
                    count = start
                } else {
                    let most = max(configuration.batchLimit, SQLDatastore.maximumAuditBatch)
                    while count < queue.owners.count, count < most, queue.owners[count].offset > 0 { count += 1 }
                }
            }
            let batch = Batch(records: Array(queue.records.prefix(count)), owners: Array(queue.owners.prefix(count)))
            queue.records.removeFirst(count)
            queue.owners.removeFirst(count)
            queue.inFlight += 1
            let previous = queue.lastCommit
            queue.lastCommit = Task(priority: .high) { await self.commit(batch, after: previous) }
        }
    }

    /// Prepares `batch` (off the actor, on this task's thread) and appends it once `previous`
    /// is done. Its callers are answered in a task of their own: the next batch appends as soon
    /// as this one is stored, not after a thousand callers are resumed.
    private nonisolated func commit(_ batch: Batch, after previous: Task<Void, Never>?) async {
        let prepared = Result { () throws(StoreError) in try store.prepareAuditEvents(batch.records) }
        // Also when preparing failed: the batch after this one waits for this task, and must
        // not overtake the one before.
        await previous?.value
        let outcome: Result<Range<UInt64>, any Error>
        do {
            outcome = .success(try await store.appendAuditEvents(try prepared.get()))
        } catch {
            outcome = .failure(error)
        }
        Task(priority: .high) { await self.answer(batch, outcome) }
    }

    /// Starts what waits behind a batch, then answers its callers and notes the checkpoint due;
    /// `flush` calls waiting for the queue to drain hear back only after that.
    private nonisolated func answer(_ batch: Batch, _ outcome: Result<Range<UInt64>, any Error>) async {
        queue.withLock { queue in
            // Still counted until its callers are answered, so that a flush waits for them.
            queue.inFlight -= 1
            queue.answering += 1
            if case .success = outcome {
                queue.statistics.batches += 1
                queue.statistics.events += batch.records.count
                queue.statistics.largestBatch = max(queue.statistics.largestBatch, batch.records.count)
            } else {
                queue.statistics.failedBatches += 1
            }
            launchBatches(&queue)
        }
        switch outcome {
        case .success(let range):
            for (offset, owner) in batch.owners.enumerated() { owner.call.resolve(owner.offset, index: range.lowerBound + UInt64(offset)) }
            await batchCommitted()
        case .failure(let error):
            logger.error("audit events could not be stored; their operations fail", metadata: ["events": "\(batch.records.count)", "error": "\(error)"])
            for owner in batch.owners { owner.call.fail(error) }
        }
        let drained = queue.withLock { queue -> [CheckedContinuation<Void, Never>] in
            queue.answering -= 1
            guard queue.isDrained else { return [] }
            defer { queue.drained.removeAll() }
            return queue.drained
        }
        for continuation in drained { continuation.resume() }
    }

    private func batchCommitted() {
        guard signer != nil else { return }
        checkpointDue = true
        scheduleCheckpoint()
    }

    private func scheduleCheckpoint() {
        guard checkpointDue, !signing else { return }
        signing = true
        let wait = lastAttempt.map { configuration.checkpointInterval - (ContinuousClock.now - $0) } ?? .zero
        Task {
            if wait > .zero { try? await Task.sleep(for: wait) }
            await self.signDueCheckpoint()
        }
    }

    private func signDueCheckpoint() async {
        checkpointDue = false
        lastAttempt = ContinuousClock.now
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
        lastAttempt = ContinuousClock.now
        queue.withLock { $0.statistics.checkpoints += 1 }
        logger.debug("audit checkpoint signed", metadata: ["size": "\(size)", "root": "\(root.base64)"])
        return stored
    }

    private func wakeIfIdle() {
        guard !signing, !checkpointDue else { return }
        let waiting = idle
        idle.removeAll()
        for continuation in waiting { continuation.resume() }
    }
}

/// The group commit's state.
private struct Queue {
    /// Events recorded and not yet in a batch, in order, and the call each belongs to.
    var records: [AuditEventRecord] = []
    var owners: [PendingEvent] = []
    /// Batches committing now (at most two).
    var inFlight = 0
    /// Batches committed (or failed) whose callers are still being answered.
    var answering = 0
    var windowOpen = false
    /// The batch started last: the next one appends only after it, so indices follow the
    /// order events were recorded in.
    var lastCommit: Task<Void, Never>?
    /// `flush` calls waiting for nothing to be queued or committing.
    var drained: [CheckedContinuation<Void, Never>] = []
    var statistics = AuditLog.Statistics()

    /// Nothing queued, committing or being answered.
    var isDrained: Bool { records.isEmpty && inFlight == 0 && answering == 0 }
}

/// A batch's events and the calls waiting for them.
private struct Batch: Sendable {
    let records: [AuditEventRecord]
    let owners: [PendingEvent]
}

/// One queued event: the call it belongs to, and its place in that call.
private struct PendingEvent: Sendable {
    let call: PendingCall
    let offset: Int
}

/// One `record` call waiting for the indices of its events, which may be committed in more
/// than one batch: answered once, when the last is committed or the first batch fails.
private final class PendingCall: Sendable {
    private struct State {
        var indices: [UInt64]
        var remaining: Int
        var continuation: CheckedContinuation<[UInt64], any Error>?
    }

    private let state: Mutex<State>

    init(count: Int, continuation: CheckedContinuation<[UInt64], any Error>) {
        state = Mutex(State(indices: Array(repeating: 0, count: count), remaining: count, continuation: continuation))
    }

    /// The event at `offset` in the call was committed at `index`.
    func resolve(_ offset: Int, index: UInt64) {
        let done = state.withLock { state -> (CheckedContinuation<[UInt64], any Error>, [UInt64])? in
            guard let continuation = state.continuation else { return nil }
            state.indices[offset] = index
            state.remaining -= 1
            guard state.remaining == 0 else { return nil }
            state.continuation = nil
            return (continuation, state.indices)
        }
        if let (continuation, indices) = done { continuation.resume(returning: indices) }
    }

    /// A batch holding one of the call's events failed.
    func fail(_ error: any Error) {
        let continuation = state.withLock { state in
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(throwing: error)
    }
}
