import Foundation
import Logging
import ServiceLifecycle
import WritStore

/// Deletes expired entries and join tokens every `interval` until graceful shutdown.
struct Pruner: Service {
    let store: any Datastore
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            await pruneOnce()
            let interval = self.interval
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) } } catch { return }
        }
    }

    func pruneOnce() async {
        let now = Date()
        do {
            let entries = try await store.pruneExpiredEntries(at: now)
            let tokens = try await store.pruneJoinTokens(at: now)
            if !entries.isEmpty || tokens > 0 {
                logger.info("pruned expired records", metadata: ["entries": "\(entries.count)", "join_tokens": "\(tokens)",
                                                                 "entry_ids": "\(entries.prefix(20).joined(separator: ","))"])
            }
        } catch {
            logger.warning("pruning failed; will retry", metadata: ["error": "\(error)"])
        }
    }
}
