import Crypto
import Foundation
import SPIFFEIdentity
import Testing
import WritTestSupport
import X509
@testable import SPIFFEBundle

/// The bundle and JWKS parsers survive 100,000 hostile inputs per seed without crashing.
@Suite struct TrustBundleFuzzTests {
    @Test(arguments: TestEnvironment.seeds())
    func parsersSurviveHostileInput(seed: UInt64) throws {
        print("TrustBundleFuzzTests seed \(seed)")
        let td = try TrustDomain(parsing: "example.org")
        let root = try makeRoot(Certificate.PrivateKey(P256.Signing.PrivateKey()))
        let jwt = JWKPublicKey.p256(P256.Signing.PrivateKey().publicKey)
        let bundle = TrustBundle(trustDomain: td, x509Authorities: [root],
                                 jwtAuthorities: [JWTAuthority(keyID: "k", publicKey: jwt)], sequenceNumber: 3)
        let samples = [bundle.spiffeJSON(), bundle.jwtJWKS(), Array(#"{"keys":[],"spiffe_sequence":1}"#.utf8)]
        let dictionary = ["{", "}", "[", "]", "\"", ":", ",", "\"keys\"", "\"x5c\"", "\"use\"", "\"jwt-svid\"", "\"x509-svid\"",
                          "\"kty\"", "\"EC\"", "\"RSA\"", "1e400", "-0", "null", "true", "\\u0000"].map { Array($0.utf8) }
        let mutator = FuzzMutator(samples: samples, dictionary: dictionary)
        var accepted = 0
        for input in mutator.inputs(count: 100_000, seed: seed) {
            if (try? TrustBundle.parseSPIFFEJSON(input, trustDomain: td)) != nil { accepted += 1 }
            _ = try? TrustBundle.parseJWKS(input, trustDomain: td)
        }
        #expect(accepted > 0)
    }
}
