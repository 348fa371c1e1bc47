import Synchronization

/// The ids of audit names (types, actors, targets) known to be committed in `audit_names`.
/// Writ never removes or renumbers a name, so a committed id stays right for the life of the
/// database, whichever server added it; an append then reads the names table only for names it
/// has not met. Only ids a committed transaction read or wrote are learned. Bounded: past
/// `capacity` names it starts over rather than grow with every target a log has seen.
final class AuditNameCache: Sendable {
    private let names = Mutex<[String: Int64]>([:])
    let capacity: Int

    init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    /// The cached ids of the names `events` use (those not cached are absent).
    func ids(for events: [AuditEventRecord]) -> [String: Int64] {
        names.withLock { names in
            var found: [String: Int64] = [:]
            func look(_ name: String) {
                if let id = names[name] { found[name] = id }
            }
            for event in events {
                look(event.type)
                look(event.actor)
                look(event.target)
            }
            return found
        }
    }

    /// Remembers ids that a committed transaction read or added.
    func learn(_ learned: [String: Int64]) {
        guard !learned.isEmpty else { return }
        names.withLock { names in
            if names.count + learned.count > capacity { names.removeAll(keepingCapacity: true) }
            names.merge(learned) { _, new in new }
        }
    }
}
