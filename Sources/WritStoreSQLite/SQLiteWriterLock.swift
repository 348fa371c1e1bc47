#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import WritStore

/// A first-come, first-served writer lock shared by every process (and every connection) that
/// opens one SQLite file, taken before `BEGIN IMMEDIATE` and released after `COMMIT`.
///
/// SQLite's own write lock is not fair: a connection that finds it taken polls, sleeping up to
/// 100 ms between tries, and a neighbour that commits and begins again at once holds it through
/// nearly every poll, so the waiter runs out of time while the neighbour keeps writing. The
/// kernel's file locks are no fairer (a released lock goes to whoever asks first, usually the
/// releaser again). So writers queue, using open-file-description locks (`F_OFD_*`) on
/// `<database>-writer.lock`:
///
/// - under a short lock on the file's first 8 bytes, a writer reads the ticket counter stored
///   there, writes it back plus one, and locks the byte of its own ticket;
/// - it then waits, blocked in the kernel, for the byte of the ticket before it, which that
///   writer holds until it is done;
/// - releasing closes the file description, which drops its ticket's byte and lets the next
///   writer in.
///
/// A writer that dies releases its place with its file descriptions, and one that gave up
/// waiting still passes the turn on when it comes. Writers that do not take this lock (another
/// program, an older Writ) meet SQLite's busy timeout on the database itself.
struct SQLiteWriterLock: Sendable {
    /// The lock file.
    let path: String
    /// How long ``acquire()`` waits before giving up with an `unavailable` error.
    let timeout: Duration

    /// Prepares the lock next to `databasePath`, creating its file (mode 0600) now so that a
    /// directory that cannot hold it fails at open, not at the first write.
    init(databasePath: String, timeout: Duration) throws(StoreError) {
        self.path = databasePath + "-writer.lock"
        self.timeout = timeout
        let descriptor = Self.openFile(path)
        guard descriptor >= 0 else {
            throw StoreError(.unavailable, "cannot create the SQLite writer lock `\(path)`: \(String(cString: strerror(errno)))")
        }
        _ = Glibc.close(descriptor)
    }

    /// A held lock: releasing closes its own file description, which drops the lock.
    struct Held {
        fileprivate let descriptor: Int32
        /// Drops the lock; call exactly once.
        func release() { _ = Glibc.close(descriptor) }
    }

    /// Takes the lock after every writer that asked before, waiting at most ``timeout``. Each
    /// acquisition uses a file description of its own, so a wait that timed out and is still
    /// blocked in the kernel can never release a later acquisition's lock.
    func acquire() async throws(StoreError) -> Held {
        let descriptor = Self.openFile(path)
        guard descriptor >= 0 else { throw failure("cannot open") }
        let ticket: UInt64
        do { ticket = try takeTicket(descriptor) } catch {
            _ = Glibc.close(descriptor)
            throw error
        }
        var previous = Self.lock(Int16(F_RDLCK), at: Self.slot(ticket &+ Self.tickets &- 1))
        if fcntl(descriptor, Self.setLock, &previous) == 0 { return Held(descriptor: descriptor) }
        guard errno == EAGAIN || errno == EACCES else {
            let error = failure("cannot lock")
            _ = Glibc.close(descriptor)
            throw error
        }
        return try await waitForTurn(descriptor, previous: previous)
    }

    /// Draws the next ticket and locks its byte, under the counter's own short lock.
    private func takeTicket(_ descriptor: Int32) throws(StoreError) -> UInt64 {
        var counterLock = Self.lock(Int16(F_WRLCK), at: 0, length: 8)
        var status: Int32
        repeat { status = fcntl(descriptor, Self.setLockWaiting, &counterLock) } while status != 0 && errno == EINTR
        guard status == 0 else { throw failure("cannot lock") }
        defer {
            var unlock = Self.lock(Int16(F_UNLCK), at: 0, length: 8)
            _ = fcntl(descriptor, Self.setLock, &unlock)
        }
        var stored: UInt64 = 0
        let read = pread(descriptor, &stored, 8, 0)
        // A new (empty) file starts at ticket 0; a short read means someone truncated it, and
        // starting over is safe: tickets only order writers that are queued right now.
        let ticket = read == 8 ? UInt64(littleEndian: stored) % Self.tickets : 0
        var next = ((ticket + 1) % Self.tickets).littleEndian
        guard pwrite(descriptor, &next, 8, 0) == 8 else { throw failure("cannot write") }
        var mine = Self.lock(Int16(F_WRLCK), at: Self.slot(ticket))
        guard fcntl(descriptor, Self.setLock, &mine) == 0 else { throw failure("cannot lock") }
        return ticket
    }

    /// Waits for the previous ticket's byte on a thread of its own (the kernel call blocks)
    /// while a timer runs; whichever finishes first decides. The thread owns `descriptor`: when
    /// the timer won, it closes it as soon as the turn comes, passing the turn on.
    private func waitForTurn(_ descriptor: Int32, previous: flock) async throws(StoreError) -> Held {
        let waiter = Waiter()
        let path = path, timeout = timeout
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Int32, StoreError>, Never>) in
            waiter.start(continuation)
            let timer = Task {
                do { try await Task.sleep(for: timeout) } catch { return }  // cancelled: the turn came
                waiter.finish(.failure(StoreError(.unavailable,
                    "the SQLite datastore is busy: other writers held `\(path)` for longer than \(timeout)")))
            }
            Thread.detachNewThread {
                var request = previous
                var status: Int32
                repeat { status = fcntl(descriptor, Self.setLockWaiting, &request) } while status != 0 && errno == EINTR
                let reason = status == 0 ? "" : String(cString: strerror(errno))
                let delivered = waiter.finish(status == 0 ? .success(descriptor)
                    : .failure(StoreError(.unavailable, "cannot lock the SQLite writer lock `\(path)`: \(reason)")))
                timer.cancel()
                if !delivered || status != 0 { _ = Glibc.close(descriptor) }
            }
        }
        return Held(descriptor: try outcome.get())
    }

    /// One blocking wait's outcome, delivered once: to the first of the kernel and the timer.
    private final class Waiter: Sendable {
        private let continuation = Mutex<CheckedContinuation<Result<Int32, StoreError>, Never>?>(nil)

        func start(_ waiting: CheckedContinuation<Result<Int32, StoreError>, Never>) {
            continuation.withLock { $0 = waiting }
        }

        /// Resumes the waiting task with `outcome` unless it was resumed already; says whether
        /// this call delivered it.
        @discardableResult
        func finish(_ outcome: Result<Int32, StoreError>) -> Bool {
            guard let waiting = continuation.withLock({ state in defer { state = nil }; return state }) else { return false }
            waiting.resume(returning: outcome)
            return true
        }
    }

    private func failure(_ what: String) -> StoreError {
        StoreError(.unavailable, "\(what) the SQLite writer lock `\(path)`: \(String(cString: strerror(errno)))")
    }

    /// Tickets wrap here, keeping every ticket's byte offset inside `off_t`.
    private static let tickets: UInt64 = 1 << 62

    /// The byte a ticket's holder locks: after the 8-byte counter.
    private static func slot(_ ticket: UInt64) -> Int64 { 8 + Int64(ticket % tickets) }

    /// Linux's open-file-description lock commands (`<fcntl.h>` declares them only under
    /// `_GNU_SOURCE`, which the Glibc module does not set); the same numbers on every architecture.
    private static let setLock: Int32 = 37, setLockWaiting: Int32 = 38

    private static func openFile(_ path: String) -> Int32 {
        Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    }

    private static func lock(_ type: Int16, at offset: Int64, length: Int64 = 1) -> flock {
        var request = flock()
        request.l_type = type
        request.l_whence = Int16(SEEK_SET)
        request.l_start = __off_t(offset)
        request.l_len = __off_t(length)
        return request
    }
}
