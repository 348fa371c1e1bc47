import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import Synchronization

/// The X.509 identity of this workload, kept current: it follows the Workload API's
/// FetchX509SVID stream (reconnecting with backoff when the stream ends) so that every reader
/// sees the latest SVID and bundles — a rotation reaches the next TLS handshake without a
/// restart.
public final class X509Source: Sendable {
    private struct State {
        var context: X509Context?
        var generation: UInt64 = 0
        var lastError: WorkloadAPIError?
    }
    private let state = Mutex(State())
    private let task = Mutex<Task<Void, Never>?>(nil)
    public let client: WorkloadAPIClient

    private init(client: WorkloadAPIClient) {
        self.client = client
    }

    /// Starts following the Workload API and waits for the first X.509 context (up to
    /// `timeout`); the error the agent gave when none came.
    public static func start(client: WorkloadAPIClient, timeout: Duration = .seconds(30)) async throws(WorkloadAPIError) -> X509Source {
        let source = X509Source(client: client)
        source.task.withLock { $0 = Task { await source.follow() } }
        if await waitUntil(timeout: timeout, { source.current != nil }) { return source }
        source.close()
        throw source.state.withLock { $0.lastError } ?? WorkloadAPIError(.deadlineExceeded, "no X.509-SVID from `\(client.socketPath)` within \(timeout)")
    }

    /// The latest context (nil only before the first).
    public var current: X509Context? { state.withLock { $0.context } }

    /// Bumped by every new context.
    public var generation: UInt64 { state.withLock { $0.generation } }

    /// The default SVID of the latest context.
    public var svid: WorkloadX509SVID? { current?.defaultSVID }

    /// The bundle of `trustDomain` in the latest context.
    public func bundle(for trustDomain: TrustDomain) -> TrustBundle? { current?.bundles[trustDomain] }

    /// Stops following.
    public func close() {
        task.withLock { $0?.cancel() }
    }

    private func follow() async {
        await followStream({ [self] () async throws(WorkloadAPIError) in
            try await client.watchX509Contexts { [self] context in
                state.withLock {
                    $0.context = context
                    $0.generation &+= 1
                }
                return !Task.isCancelled
            }
        }, failed: { [self] error in state.withLock { $0.lastError = error } })
    }
}
