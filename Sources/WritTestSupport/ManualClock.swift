import Foundation
import Synchronization

/// A clock that moves only when a test advances it; pass `clock.now` wherever production code
/// takes a `now` closure.
public final class ManualClock: Sendable {
    private let current: Mutex<Date>

    /// Starts at `start` (default 2030-01-01T00:00:00Z, a fixed instant).
    public init(start: Date = Date(timeIntervalSince1970: 1_893_456_000)) {
        current = Mutex(start)
    }

    /// The current instant.
    public var date: Date { current.withLock { $0 } }

    /// A closure reading the clock, for code that takes `now: @Sendable () -> Date`.
    public var now: @Sendable () -> Date { { [self] in self.date } }

    /// Moves the clock forward by `seconds`.
    public func advance(by seconds: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }

    /// Sets the clock to `date`.
    public func set(_ date: Date) { current.withLock { $0 = date } }
}
