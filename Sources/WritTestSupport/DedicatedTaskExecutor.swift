import Dispatch

/// A task executor on a dispatch queue of its own. A server inside a test process, started in
/// a task that prefers this executor, keeps answering even while other tests hold all of Swift
/// concurrency's few shared threads with blocking waits (its child tasks and the default actors
/// they call inherit the preference).
public final class DedicatedTaskExecutor: TaskExecutor, @unchecked Sendable {
    private let queue: DispatchQueue

    public init(label: String) {
        queue = DispatchQueue(label: label, attributes: .concurrent)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
