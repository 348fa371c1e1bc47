/// How the SDK's sources keep a Workload API stream open: `watch` runs again whenever it ends
/// or fails, after a pause that doubles from 100 ms to 5 s on failures (back to 100 ms after a
/// clean end); each failure goes to `failed`. Returns when the task is cancelled.
func followStream(_ watch: () async throws(WorkloadAPIError) -> Void, failed: (WorkloadAPIError) -> Void) async {
    var delay = Duration.milliseconds(100)
    while !Task.isCancelled {
        do {
            try await watch()
            delay = .milliseconds(100)
        } catch {
            failed(error)
        }
        try? await Task.sleep(for: delay)
        delay = min(delay * 2, .seconds(5))
    }
}

/// Polls `ready` every 20 ms until it holds (true) or `timeout` passes (false).
func waitUntil(timeout: Duration, _ ready: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if ready() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return ready()
}
