import Benchmark
import Crypto
import Foundation

/// Writ's hot paths, each beside the raw operation it is judged against (scripts/bench computes
/// the ratios). Every iteration works on a distinct input: nothing is cached that a real caller
/// would not get.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        // Every benchmark does 1,000 operations per sample (scripts/bench-report.py divides the
        // wall clock by that): one operation per sample would mostly measure the harness.
        metrics: [.throughput, .wallClock],
        scalingFactor: .kilo,
        maxDuration: .seconds(8),
        maxIterations: 10_000
    )
    rawBaselines()
    writBenchmarks()
    issuanceParts()
    storeBenchmarks()
}

/// Distinct messages so that no signature or verification is repeated.
func distinctMessages(_ count: Int) -> [[UInt8]] {
    (0..<count).map { i in Array("writ benchmark message \(i) \(UUID().uuidString)".utf8) }
}

/// The floor: P-256 ECDSA with SHA-256 through swift-crypto, one operation per iteration.
func rawBaselines() {
    Benchmark("Raw P-256 sign") { benchmark in
        let key = P256.Signing.PrivateKey(compactRepresentable: false)
        let messages = distinctMessages(4096)
        var i = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try key.signature(for: messages[i & 4095]))
            i &+= 1
        }
    }

    Benchmark("Raw P-256 verify") { benchmark in
        let key = P256.Signing.PrivateKey(compactRepresentable: false)
        let messages = distinctMessages(4096)
        let signed = try messages.map { ($0, try key.signature(for: $0)) }
        let publicKey = key.publicKey
        var i = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let (message, signature) = signed[i & 4095]
            precondition(publicKey.isValidSignature(signature, for: message))
            i &+= 1
        }
    }
}

