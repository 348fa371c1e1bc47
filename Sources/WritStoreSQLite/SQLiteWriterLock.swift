#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import WritStore

/// A fair writer lock shared by every process (and every connection) that opens one SQLite file:
/// an open-file-description lock (`F_OFD_SETLKW`) on `<database>-writer.lock`, taken before
/// `BEGIN IMMEDIATE` and released after `COMMIT`.
///
/// SQLite's own write lock is not fair: a connection that finds it taken polls, sleeping up to
/// 100 ms between tries, and a busy neighbour that commits and begins again at once holds it
/// through nearly every poll, so the waiter runs out of time while the neighbour keeps writing.
/// The kernel wakes a writer blocked on this lock the moment it is released, so writers on one
/// file take turns instead. Writers that do not take this lock (another program, an older Writ)
/// still meet SQLite's busy timeout on the database itself.
struct SQLiteWriterLock: Sendable {
    /// The lock file.
    let path: String
    /// How long ``acquire()`` waits before giving up with a `busy` error.
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

    /// Takes the lock, waiting in line behind other writers for at most ``timeout``. Each
    /// acquisition uses a file description of its own, so a wait that timed out and is still
    /// blocked in the kernel can never release a later acquisition's lock.
    func acquire() async throws(StoreError) -> Held {
        let descriptor = Self.openFile(path)
        guard descriptor >= 0 else {
            throw StoreError(.unavailable, "cannot open the SQLite writer lock `\(path)`: \(String(cString: strerror(errno)))")
        }
        var request = Self.wholeFileWriteLock()
        if fcntl(descriptor, Self.setLock, &request) == 0 { return Held(descriptor: descriptor) }
        guard errno == EAGAIN || errno == EACCES else {
            let reason = String(cString: strerror(errno))
            _ = Glibc.close(descriptor)
            throw StoreError(.unavailable, "cannot lock the SQLite writer lock `\(path)`: \(reason)")
        }
        return try await blockingAcquire(descriptor)
    }

    /// Waits for the lock on a thread of its own (the kernel call blocks) while a timer runs;
    /// whichever finishes first decides. The thread owns `descriptor`: when the timer won, it
    /// closes it (dropping the lock) as soon as the kernel answers.
    private func blockingAcquire(_ descriptor: Int32) async throws(StoreError) -> Held {
        let waiter = Waiter()
        let path = path, timeout = timeout
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Int32, StoreError>, Never>) in
            waiter.start(continuation)
            let timer = Task {
                do { try await Task.sleep(for: timeout) } catch { return }  // cancelled: the kernel answered
                waiter.finish(.failure(StoreError(.unavailable,
                    "the SQLite datastore is busy: another writer held `\(path)` for longer than \(timeout)")))
            }
            Thread.detachNewThread {
                var request = Self.wholeFileWriteLock()
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

    /// Linux's open-file-description lock commands (`<fcntl.h>` declares them only under
    /// `_GNU_SOURCE`, which the Glibc module does not set); the same numbers on every architecture.
    private static let setLock: Int32 = 37, setLockWaiting: Int32 = 38

    private static func openFile(_ path: String) -> Int32 {
        Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    }

    private static func wholeFileWriteLock() -> flock {
        var request = flock()
        request.l_type = Int16(F_WRLCK)
        request.l_whence = Int16(SEEK_SET)
        request.l_start = 0
        request.l_len = 0
        return request
    }
}
