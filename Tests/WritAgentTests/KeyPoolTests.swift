import Crypto
import Foundation
import Testing
@testable import WritAgent

/// The agent's workload key pool: filled ahead of need, every key handed out once, refilled in
/// the background once it runs below half, and never in the way (an empty pool makes a key
/// on the spot).
@Suite struct KeyPoolTests {
    @Test func keysAreMadeAheadHandedOutOnceAndRefilled() async throws {
        let pool = KeyPool(capacity: 16)
        #expect(await pool.available == 0)
        await pool.fill()
        #expect(await pool.available == 16)
        var seen: Set<Data> = []
        for _ in 0..<40 {
            let key = await pool.take()
            #expect(seen.insert(key.publicKey.x963Representation).inserted, "a key was handed out twice")
        }
        // Taking below half started a background refill; it brings the pool back to capacity.
        let deadline = ContinuousClock.now + .seconds(60)
        while await pool.available < 16, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(await pool.available == 16)
        let empty = KeyPool(capacity: 0)
        let made = await empty.take()
        let left = await empty.available
        #expect(!seen.contains(made.publicKey.x963Representation) && left == 0, "an empty pool still answers")
    }
}
