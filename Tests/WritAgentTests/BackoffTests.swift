import Testing
@testable import WritAgent

/// The agent's reconnect backoff: ceilings 0.5, 1, 2 … 30 s, each wait drawn from the upper
/// half of its ceiling (so agents that lost the server together spread out), back to 0.5 s
/// after a reset.
@Suite struct BackoffTests {
    @Test func waitsGrowToThirtySecondsWithJitterAndResetToTheStart() {
        var generator = SystemRandomNumberGenerator()
        let ceilings = [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30, 30, 30]
        // Many agents: each wait inside its band, and the waits of one step spread across it.
        var spread: [[Double]] = Array(repeating: [], count: ceilings.count)
        for _ in 0..<200 {
            var backoff = Backoff()
            for (step, ceiling) in ceilings.enumerated() {
                #expect(backoff.ceiling == ceiling)
                let wait = backoff.nextDelay(using: &generator).components
                spread[step].append(Double(wait.seconds) + Double(wait.attoseconds) / 1e18)
            }
        }
        for (step, ceiling) in ceilings.enumerated() {
            let waits = spread[step]
            #expect(waits.allSatisfy { $0 >= ceiling / 2 - 0.001 && $0 <= ceiling }, "step \(step): \(waits.min()!)…\(waits.max()!) outside \(ceiling / 2)…\(ceiling)")
            #expect(waits.max()! - waits.min()! > ceiling / 4, "step \(step): the waits of 200 agents must spread: \(waits.min()!)…\(waits.max()!)")
        }
        var backoff = Backoff()
        for _ in 0..<5 { _ = backoff.nextDelay(using: &generator) }
        backoff.reset()
        #expect(backoff.ceiling == 0.5)
    }
}
