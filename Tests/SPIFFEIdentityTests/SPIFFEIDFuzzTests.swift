import Testing
import SPIFFEIdentity
import WritTestSupport

/// The SPIFFE ID parser survives 100,000 hostile inputs per seed: no crash, and everything it
/// accepts round-trips and obeys the spec's rules.
@Suite struct SPIFFEIDFuzzTests {
    static let samples: [[UInt8]] = [
        "spiffe://example.org/workload", "spiffe://example.org", "spiffe://a.b-c_d/ns/prod/sa/x",
        "spiffe://td/A.b-C_d/e", "spiffe://x/" + String(repeating: "seg/", count: 40) + "end",
    ].map { Array($0.utf8) }

    static let dictionary: [[UInt8]] = ["spiffe://", "/", "//", "/./", "/../", ":", "@", "?", "#", "%2F", ".", "SPIFFE"].map { Array($0.utf8) }

    @Test(arguments: TestEnvironment.seeds())
    func parserSurvivesHostileInput(seed: UInt64) {
        print("SPIFFEIDFuzzTests seed \(seed)")
        let mutator = FuzzMutator(samples: Self.samples, dictionary: Self.dictionary)
        var accepted = 0
        for input in mutator.inputs(count: 100_000, seed: seed) {
            let text = String(decoding: input, as: UTF8.self)
            guard let id = try? SPIFFEID(parsing: text) else { continue }
            accepted += 1
            #expect(id.uri == text)
            #expect(id.uri.utf8.count <= SPIFFEID.maximumLength)
            #expect(id.trustDomain.name.utf8.allSatisfy(TrustDomain.isNameByte))
            #expect(!id.path.hasSuffix("/"))
            #expect(!id.segments.contains(".") && !id.segments.contains(".."))
        }
        #expect(accepted > 0, "no mutated input was valid: the mutator is not exercising the accept path")
    }
}
