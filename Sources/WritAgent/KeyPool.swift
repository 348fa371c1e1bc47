import Crypto
import Foundation

/// Workload keys made ahead of need: minting an SVID for a workload is a key generation, a CSR
/// signature and a round trip, and key generation is the slow part (swift-crypto retries for a
/// compact-representable key unless told not to). The pool refills in the background up to its
/// capacity; ``take()`` never waits for a refill, it makes a key itself when the pool is empty.
/// Keys live only in memory.
public actor KeyPool {
    private var keys: [P256.Signing.PrivateKey] = []
    public let capacity: Int
    private var refilling = false

    public init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    /// A fresh key that no one else received.
    public func take() -> P256.Signing.PrivateKey {
        defer { refill() }
        return keys.popLast() ?? Self.generate()
    }

    /// Keys waiting in the pool.
    public var available: Int { keys.count }

    /// Fills the pool up to its capacity.
    public func fill() async {
        while keys.count < capacity {
            let batch = await Task.detached(priority: .utility) { (0..<min(8, self.capacity)).map { _ in Self.generate() } }.value
            keys.append(contentsOf: batch.prefix(capacity - keys.count))
        }
    }

    private func refill() {
        guard !refilling, keys.count < capacity / 2 else { return }
        refilling = true
        Task {
            await fill()
            finishRefill()
        }
    }

    private func finishRefill() { refilling = false }

    static func generate() -> P256.Signing.PrivateKey {
        P256.Signing.PrivateKey(compactRepresentable: false)
    }
}
