import Benchmark
import Crypto
import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import SPIFFEX509
import SwiftASN1
import WritCA
import X509

/// The parts of X.509-SVID issuance, measured alone so that the issuance benchmark's overhead
/// over its raw baseline can be attributed. Not judged against a target.
func issuanceParts() {
    Benchmark("Part: CSR parse + signature check") { benchmark in
        let csrs = try (0..<512).map { _ in try makeCSR() }
        var i = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try SVIDCertificateRequest(derEncoded: csrs[i & 511]))
            i &+= 1
        }
    }

    Benchmark("Part: leaf build + sign + DER") { benchmark in
        let issuerKey = P256.Signing.PrivateKey(compactRepresentable: false)
        let td = try TrustDomain(parsing: "example.org")
        let issuer = try await X509SVIDProfile.rootCA(trustDomain: td, key: Certificate.PrivateKey(issuerKey), notBefore: Date(),
                                                     notAfter: Date().addingTimeInterval(86400))
        let keys = (0..<512).map { _ in Certificate.PublicKey(P256.Signing.PrivateKey(compactRepresentable: false).publicKey) }
        let ids = try (0..<512).map { try SPIFFEID(parsing: "spiffe://example.org/bench/workload-\($0)") }
        var i = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let leaf = try await X509SVIDProfile.leaf(id: ids[i & 511], publicKey: keys[i & 511], notBefore: Date(),
                                                      notAfter: Date().addingTimeInterval(600), issuer: issuer,
                                                      issuerKey: Certificate.PrivateKey(issuerKey))
            var serializer = DER.Serializer()
            try serializer.serialize(leaf)
            blackHole(serializer.serializedBytes)
            i &+= 1
        }
    }

    Benchmark("Part: certificate parse") { benchmark in
        let ca = try await makeBenchmarkCA()
        var chains: [[UInt8]] = []
        for n in 0..<512 {
            chains.append(try await ca.issueX509SVID(csrDER: try makeCSR(), id: try SPIFFEID(parsing: "spiffe://example.org/bench/w-\(n)")).chainDER[0])
        }
        var i = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try Certificate(derEncoded: chains[i & 511]))
            i &+= 1
        }
    }

    Benchmark("Part: chain verify (leaf + intermediate, bundle)") { benchmark in
        let ca = try await makeBenchmarkCA()
        var chains: [[[UInt8]]] = []
        for n in 0..<512 {
            chains.append(try await ca.issueX509SVID(csrDER: try makeCSR(), id: try SPIFFEID(parsing: "spiffe://example.org/bench/w-\(n)")).chainDER)
        }
        let chainsParsed = try chains.map { try $0.map { try Certificate(derEncoded: $0) } }
        let intermediate = chainsParsed[0][1]
        let verifier = X509SVIDVerifier(bundle: await ca.bundle(), verifiedIntermediates: [intermediate])
        let now = Date()
        var i = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let result = await verifier.verify(chain: chainsParsed[i & 511], at: now)
            precondition(result.spiffeID != nil)
            i &+= 1
        }
    }
}
