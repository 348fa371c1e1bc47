import Benchmark
import Crypto
import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import SPIFFEJWT
import SwiftASN1
import WritCA
import X509

/// Writ's own hot paths, each iteration on a distinct input.
func writBenchmarks() {
    Benchmark("X.509-SVID issue from CSR (verify CSR + sign + re-check)") { benchmark in
        let ca = try await makeBenchmarkCA()
        let csrs = try (0..<512).map { _ in try makeCSR() }
        let ids = try (0..<512).map { try SPIFFEID(parsing: "spiffe://example.org/bench/workload-\($0)") }
        var i = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await ca.issueX509SVID(csrDER: csrs[i & 511], id: ids[i & 511]))
            i &+= 1
        }
    }

    Benchmark("JWT-SVID mint (sign + re-check)") { benchmark in
        let ca = try await makeBenchmarkCA()
        let ids = try (0..<512).map { try SPIFFEID(parsing: "spiffe://example.org/bench/agent-\($0)") }
        var i = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await ca.mintJWTSVID(id: ids[i & 511], audience: ["api-\(i & 7)"]))
            i &+= 1
        }
    }

    Benchmark("JWT-SVID validate (distinct token, ES256)") { benchmark in
        let ca = try await makeBenchmarkCA()
        var tokens: [String] = []
        for n in 0..<2048 {
            tokens.append(try await ca.mintJWTSVID(id: try SPIFFEID(parsing: "spiffe://example.org/bench/agent-\(n)"), audience: ["api"]).token)
        }
        let validator = await JWTSVIDValidator(bundle: ca.bundle())
        let now = Date()
        var i = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let result = await validator.validate(tokens[i & 2047], audience: "api", now: now)
            precondition(result.svid != nil)
            i &+= 1
        }
    }
}

func makeBenchmarkCA() async throws -> CertificateAuthority {
    try await CertificateAuthority(trustDomain: try TrustDomain(parsing: "example.org"), keyManager: MemoryKeyManager(),
                                   store: MemoryCAStateStore(), now: { Date() })
}

func makeCSR() throws -> [UInt8] {
    let key = P256.Signing.PrivateKey(compactRepresentable: false)
    let request = try CertificateSigningRequest(version: .v1, subject: try DistinguishedName { CommonName("bench") },
                                                privateKey: .init(key), attributes: .init(), signatureAlgorithm: .ecdsaWithSHA256)
    var serializer = DER.Serializer()
    try serializer.serialize(request)
    return serializer.serializedBytes
}
