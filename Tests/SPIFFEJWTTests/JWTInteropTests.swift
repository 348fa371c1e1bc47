import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import Testing
import WritTestSupport
@testable import SPIFFEJWT

/// PyJWT checks Writ's JWT-SVIDs with the JWKS from Writ's bundle, and Writ checks PyJWT's.
@Suite(.serialized) struct JWTInteropTests {
    @Test(arguments: [TestSigner.Kind.p256, .p384, .rsa])
    func pyjwtVerifiesWritTokens(_ kind: TestSigner.Kind) async throws {
        let python = try TestEnvironment.interopPython()
        let base = try TestSigner(kind)
        let signer = TestSigner(copying: base, keyID: base.publicKey.thumbprint)
        let bundle = TrustBundle(trustDomain: try TrustDomain(parsing: "example.org"), jwtAuthorities: [signer.authority])
        let dir = try TemporaryDirectory(prefix: "writ-jwt")
        try Data(bundle.jwtJWKS()).write(to: dir.file("jwks.json"))
        try Data(bundle.spiffeJSON()).write(to: dir.file("bundle.json"))
        let now = Int64(Date().timeIntervalSince1970)
        let token = try signer.mint(JWTSVIDClaims(subject: try SPIFFEID(parsing: "spiffe://example.org/agent"), audience: ["api"],
                                                  expiresAt: now + 300, issuedAt: now, jwtID: "interop"))
        let script = TestEnvironment.interopScript("check_jwt.py")
        for jwks in ["jwks.json", "bundle.json"] {
            let ok = try await ProcessRunner.run(python, [script, "verify", token, dir.file(jwks).path, "api", "spiffe://example.org/agent"])
            #expect(ok.status == 0, "PyJWT refused Writ's token with \(jwks):\n\(ok.summary)")
        }
        let wrong = try await ProcessRunner.run(python, [script, "refuse-audience", token, dir.file("jwks.json").path, "not-api"])
        #expect(wrong.status == 0, "PyJWT did not refuse the wrong audience:\n\(wrong.summary)")
    }

    @Test(arguments: [TestSigner.Kind.p256, .rsa])
    func writValidatesPyJWTTokens(_ kind: TestSigner.Kind) async throws {
        let python = try TestEnvironment.interopPython()
        let base = try TestSigner(kind)
        let signer = TestSigner(copying: base, keyID: "pyjwt-key")
        let dir = try TemporaryDirectory(prefix: "writ-jwt")
        try signer.privateKeyPEM.write(to: dir.file("key.pem"), atomically: true, encoding: .utf8)
        let alg = kind == .rsa ? "RS256" : "ES256"
        let signed = try await ProcessRunner.run(python, [TestEnvironment.interopScript("check_jwt.py"), "sign", dir.file("key.pem").path,
                                                    "pyjwt-key", alg, "spiffe://example.org/agent", "api"])
        #expect(signed.status == 0, "\(signed.summary)")
        let token = signed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let bundle = TrustBundle(trustDomain: try TrustDomain(parsing: "example.org"), jwtAuthorities: [signer.authority])
        let result = await JWTSVIDValidator(bundle: bundle).validate(token, audience: "api", now: Date())
        #expect(result.svid?.claims.subject.uri == "spiffe://example.org/agent", "\(String(describing: result.error))")
        #expect(await JWTSVIDValidator(bundle: bundle).validate(token, audience: "other", now: Date()).error?.code == .wrongAudience)
    }
}

/// The JWT parser survives 100,000 hostile tokens per seed.
@Suite struct JWTSVIDFuzzTests {
    @Test(arguments: TestEnvironment.seeds())
    func validatorSurvivesHostileTokens(seed: UInt64) async throws {
        print("JWTSVIDFuzzTests seed \(seed)")
        let base = try TestSigner(.p256)
        let signer = TestSigner(copying: base, keyID: "k")
        let td = try TrustDomain(parsing: "example.org")
        let validator = await JWTSVIDValidator(bundle: TrustBundle(trustDomain: td, jwtAuthorities: [signer.authority]))
        let good = try signer.mint(JWTSVIDClaims(subject: try SPIFFEID(parsing: "spiffe://example.org/a"), audience: ["api"],
                                                 expiresAt: 1_893_456_300, issuedAt: 1_893_456_000))
        let samples = [Array(good.utf8), Array(good.split(separator: ".")[0...1].joined(separator: ".").utf8) + [0x2E]]
        let dictionary = [".", "..", "{", "}", "eyJ", "=", "-", "_", "AAAA"].map { Array($0.utf8) }
        let mutator = FuzzMutator(samples: samples, dictionary: dictionary)
        var valid = 0
        let now = Date(timeIntervalSince1970: 1_893_456_000)
        for input in mutator.inputs(count: 100_000, seed: seed) {
            if await validator.validate(String(decoding: input, as: UTF8.self), audience: "api", now: now).svid != nil { valid += 1 }
        }
        #expect(valid < 100_000)
    }
}
