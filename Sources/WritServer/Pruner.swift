import Foundation
import Logging
import ServiceLifecycle
import SPIFFEIdentity
import WritAudit
import WritStore

/// Deletes expired entries and join tokens every `interval` until graceful shutdown. Each
/// deleted entry gets an `entry.delete` event (actor the server, reason `expired`) in the
/// deletion's transaction; join tokens are not audited as they go (their creation was).
struct Pruner: Service {
    let store: any Datastore
    /// The server's own SPIFFE ID: the actor of the deletions.
    let serverID: SPIFFEID
    let audit: AuditLog
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
            let serverID = serverID
            let entries = try await store.pruneExpiredEntries(at: now) { ids in
                try ids.map { try ServerAuditEvents.entryExpired(at: now, id: $0, server: serverID).record() }
            }
            if !entries.isEmpty { await audit.committedElsewhere() }
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
