import Crypto
import _CryptoExtras
import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import Testing
import WritTestSupport
@testable import SPIFFEJWT

/// A signing key for tests, with its JWT authority entry.
struct TestSigner: Sendable {
    enum Kind: Sendable { case p256, p384, p521, rsa }
    let kind: Kind
    let p256: P256.Signing.PrivateKey?
    let p384: P384.Signing.PrivateKey?
    let p521: P521.Signing.PrivateKey?
    let rsa: _RSA.Signing.PrivateKey?
    let keyID: String

    init(_ kind: Kind, keyID: String? = nil) throws {
        self.kind = kind
        p256 = kind == .p256 ? P256.Signing.PrivateKey() : nil
        p384 = kind == .p384 ? P384.Signing.PrivateKey() : nil
        p521 = kind == .p521 ? P521.Signing.PrivateKey() : nil
        rsa = kind == .rsa ? try _RSA.Signing.PrivateKey(keySize: .bits2048) : nil
        self.keyID = keyID ?? "placeholder"
    }

    var publicKey: JWKPublicKey {
        switch kind {
        case .p256: return .p256(p256!.publicKey)
        case .p384: return .p384(p384!.publicKey)
        case .p521: return .p521(p521!.publicKey)
        case .rsa: return .rsa(rsa!.publicKey)
        }
    }

    var authority: JWTAuthority { JWTAuthority(keyID: keyID, publicKey: publicKey) }

    var privateKeyPEM: String {
        switch kind {
        case .p256: return p256!.pemRepresentation
        case .p384: return p384!.pemRepresentation
        case .p521: return p521!.pemRepresentation
        case .rsa: return rsa!.pemRepresentation
        }
    }

    func sign(_ input: [UInt8], algorithm: JWTSVIDAlgorithm) throws -> [UInt8] {
        switch (kind, algorithm) {
        case (.p256, _): return Array(try p256!.signature(for: input).rawRepresentation)
        case (.p384, _): return Array(try p384!.signature(for: input).rawRepresentation)
        case (.p521, _): return Array(try p521!.signature(for: input).rawRepresentation)
        case (.rsa, .ps256): return Array(try rsa!.signature(for: SHA256.hash(data: input), padding: .PSS).rawRepresentation)
        case (.rsa, .rs384): return Array(try rsa!.signature(for: SHA384.hash(data: input), padding: .insecurePKCS1v1_5).rawRepresentation)
        case (.rsa, _): return Array(try rsa!.signature(for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5).rawRepresentation)
        }
    }

    /// A token with the given header and payload JSON, signed as `algorithm`.
    func token(header: String, payload: String, algorithm: JWTSVIDAlgorithm) throws -> String {
        let input = Array((Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))).utf8)
        return JWTSVIDEncoder.token(signingInput: input, signature: try sign(input, algorithm: algorithm))
    }

    func mint(_ claims: JWTSVIDClaims, algorithm: JWTSVIDAlgorithm? = nil) throws -> String {
        let alg = algorithm ?? .default(for: publicKey)
        let input = JWTSVIDEncoder.signingInput(claims: claims, keyID: keyID, algorithm: alg)
        return JWTSVIDEncoder.token(signingInput: input, signature: try sign(input, algorithm: alg))
    }
}

func decodeJSON(_ part: Substring) throws -> [String: Any] {
    let bytes = try #require(Base64URL.decode(part))
    return try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
}

@Suite struct JWTSVIDTests {
    static let now = Date(timeIntervalSince1970: 1_893_456_000)
    static let t = Int64(1_893_456_000)
    let td = try! TrustDomain(parsing: "example.org")
    let id = try! SPIFFEID(parsing: "spiffe://example.org/agent")

    func setup(_ kind: TestSigner.Kind = .p256) async throws -> (TestSigner, JWTSVIDValidator) {
        var signer = try TestSigner(kind)
        signer = TestSigner(copying: signer, keyID: signer.publicKey.thumbprint)
        let bundle = TrustBundle(trustDomain: td, jwtAuthorities: [signer.authority])
        return (signer, await JWTSVIDValidator(bundle: bundle))
    }

    func claims(aud: [String] = ["api"], exp: Int64 = t + 300, iat: Int64 = t) -> JWTSVIDClaims {
        JWTSVIDClaims(subject: id, audience: aud, expiresAt: exp, issuedAt: iat, jwtID: "j-1")
    }

    @Test func mintedTokenFormat() async throws {
        let (signer, validator) = try await setup()
        let token = try signer.mint(claims())
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        #expect(parts.count == 3)
        let header = try decodeJSON(parts[0])
        #expect(header.keys.sorted() == ["alg", "kid", "typ"])
        #expect(header["alg"] as? String == "ES256")
        #expect(header["typ"] as? String == "JWT")
        #expect(header["kid"] as? String == signer.keyID)
        let payloadBytes = try #require(Base64URL.decode(parts[1]))
        let payloadText = String(decoding: payloadBytes, as: UTF8.self)
        let payload = try decodeJSON(parts[1])
        #expect(payload["aud"] as? [String] == ["api"])  // an array even for one audience
        #expect(payloadText.contains("\"exp\":\(Self.t + 300)"))  // an integer, no fraction
        #expect(payloadText.contains("\"iat\":\(Self.t)"))
        #expect(!payloadText.contains("\"exp\":\(Self.t + 300)."))  // no fractional seconds
        #expect(payload["exp"] is Int && payload["iat"] is Int)
        #expect(payload["sub"] as? String == "spiffe://example.org/agent")
        #expect(payload["jti"] as? String == "j-1")
        let result = await validator.validate(token, audience: "api", now: Self.now)
        #expect(result.svid?.claims.subject == id)
        #expect(result.svid?.claims.expiresAt == Self.t + 300)
    }

    @Test(arguments: [TestSigner.Kind.p256, .p384, .p521, .rsa])
    func validatesEveryKeyType(_ kind: TestSigner.Kind) async throws {
        let (signer, validator) = try await setup(kind)
        let token = try signer.mint(claims(aud: ["a", "b"]))
        #expect(await validator.validate(token, audience: "b", now: Self.now).svid != nil)
    }

    @Test func validatesPS256AndRS384() async throws {
        let (signer, validator) = try await setup(.rsa)
        for alg in [JWTSVIDAlgorithm.ps256, .rs384] {
            let token = try signer.mint(claims(), algorithm: alg)
            let result = await validator.validate(token, audience: "api", now: Self.now)
            #expect(result.svid?.algorithm == alg, "\(alg): \(String(describing: result.error))")
        }
    }

    @Test func leewayIsApplied() async throws {
        let (signer, validator) = try await setup()
        let token = try signer.mint(claims(exp: Self.t))
        #expect(await validator.validate(token, audience: "api", now: Self.now + 29).svid != nil)
        #expect(await validator.validate(token, audience: "api", now: Self.now + 31).error?.code == .expired)
        let strict = await JWTSVIDValidator(bundle: validator.bundle, leeway: .zero)
        #expect(await strict.validate(token, audience: "api", now: Self.now + 1).error?.code == .expired)
    }

    // MARK: every refusal

    struct Refusal: Sendable, CustomTestStringConvertible {
        let name: String
        let code: JWTSVIDError.Code
        let make: @Sendable (TestSigner) throws -> String
        var testDescription: String { name }
    }

    static func header(_ kid: String, alg: String = "ES256", typ: String? = "JWT") -> String {
        "{\"alg\":\"\(alg)\",\"kid\":\"\(kid)\"" + (typ.map { ",\"typ\":\"\($0)\"" } ?? "") + "}"
    }

    static let goodPayload = "{\"sub\":\"spiffe://example.org/agent\",\"aud\":[\"api\"],\"exp\":\(t + 300),\"iat\":\(t)}"

    static let refusals: [Refusal] = [
        Refusal(name: "fail/alg none", code: .algorithmNotAllowed) { s in
            Base64URL.encode(Array("{\"alg\":\"none\",\"kid\":\"\(s.keyID)\"}".utf8)) + "." + Base64URL.encode(Array(goodPayload.utf8)) + "."
        },
        Refusal(name: "fail/alg HS256", code: .algorithmNotAllowed) { s in
            let input = Base64URL.encode(Array(header(s.keyID, alg: "HS256").utf8)) + "." + Base64URL.encode(Array(goodPayload.utf8))
            let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: Array(s.keyID.utf8)))
            return input + "." + Base64URL.encode(Array(mac))
        },
        Refusal(name: "fail/alg EdDSA", code: .algorithmNotAllowed) { s in try s.token(header: header(s.keyID, alg: "EdDSA"), payload: goodPayload, algorithm: .es256) },
        Refusal(name: "fail/alg missing", code: .algorithmNotAllowed) { s in try s.token(header: "{\"kid\":\"\(s.keyID)\",\"typ\":\"JWT\"}", payload: goodPayload, algorithm: .es256) },
        Refusal(name: "fail/alg ES384 for a P-256 key", code: .algorithmKeyMismatch) { s in try s.token(header: header(s.keyID, alg: "ES384"), payload: goodPayload, algorithm: .es256) },
        Refusal(name: "fail/alg RS256 for an EC key", code: .algorithmKeyMismatch) { s in try s.token(header: header(s.keyID, alg: "RS256"), payload: goodPayload, algorithm: .es256) },
        Refusal(name: "fail/kid missing", code: .missingKeyID) { s in try s.token(header: "{\"alg\":\"ES256\",\"typ\":\"JWT\"}", payload: goodPayload, algorithm: .es256) },
        Refusal(name: "fail/kid unknown", code: .unknownKeyID) { s in try s.token(header: header("nobody"), payload: goodPayload, algorithm: .es256) },
        Refusal(name: "fail/typ other", code: .invalidType) { s in try s.token(header: header(s.keyID, typ: "at+jwt"), payload: goodPayload, algorithm: .es256) },
        Refusal(name: "fail/crit header", code: .unsupportedCriticalHeader) { s in
            try s.token(header: "{\"alg\":\"ES256\",\"kid\":\"\(s.keyID)\",\"crit\":[\"exp\"]}", payload: goodPayload, algorithm: .es256)
        },
        Refusal(name: "fail/bad signature", code: .badSignature) { s in
            let good = try s.token(header: header(s.keyID), payload: goodPayload, algorithm: .es256)
            let other = try TestSigner(.p256)
            let forged = try other.token(header: header(s.keyID), payload: goodPayload, algorithm: .es256)
            return String(good.split(separator: ".")[0...1].joined(separator: ".")) + "." + forged.split(separator: ".")[2]
        },
        Refusal(name: "fail/aud missing", code: .missingAudience) { s in
            try s.token(header: header(s.keyID), payload: "{\"sub\":\"spiffe://example.org/agent\",\"exp\":\(t + 300)}", algorithm: .es256)
        },
        Refusal(name: "fail/aud empty", code: .missingAudience) { s in
            try s.token(header: header(s.keyID), payload: "{\"sub\":\"spiffe://example.org/agent\",\"aud\":[],\"exp\":\(t + 300)}", algorithm: .es256)
        },
        Refusal(name: "fail/exp missing", code: .missingExpiry) { s in
            try s.token(header: header(s.keyID), payload: "{\"sub\":\"spiffe://example.org/agent\",\"aud\":\"api\"}", algorithm: .es256)
        },
        Refusal(name: "fail/exp a string", code: .invalidClaim) { s in
            try s.token(header: header(s.keyID), payload: "{\"sub\":\"spiffe://example.org/agent\",\"aud\":\"api\",\"exp\":\"soon\"}", algorithm: .es256)
        },
        Refusal(name: "fail/expired", code: .expired) { s in
            try s.token(header: header(s.keyID), payload: "{\"sub\":\"spiffe://example.org/agent\",\"aud\":\"api\",\"exp\":\(t - 31)}", algorithm: .es256)
        },
        Refusal(name: "fail/nbf in the future", code: .notYetValid) { s in
            try s.token(header: header(s.keyID), payload: "{\"sub\":\"spiffe://example.org/agent\",\"aud\":\"api\",\"exp\":\(t + 900),\"nbf\":\(t + 60)}", algorithm: .es256)
        },
        Refusal(name: "fail/iat in the future", code: .notYetValid) { s in
            try s.token(header: header(s.keyID), payload: "{\"sub\":\"spiffe://example.org/agent\",\"aud\":\"api\",\"exp\":\(t + 900),\"iat\":\(t + 60)}", algorithm: .es256)
        },
        Refusal(name: "fail/wrong audience", code: .wrongAudience) { s in
            try s.token(header: header(s.keyID), payload: "{\"sub\":\"spiffe://example.org/agent\",\"aud\":[\"other\"],\"exp\":\(t + 300)}", algorithm: .es256)
        },
        Refusal(name: "fail/sub not a SPIFFE ID", code: .invalidSubject) { s in
            try s.token(header: header(s.keyID), payload: "{\"sub\":\"agent@example.org\",\"aud\":\"api\",\"exp\":\(t + 300)}", algorithm: .es256)
        },
        Refusal(name: "fail/sub a root ID", code: .invalidSubject) { s in
            try s.token(header: header(s.keyID), payload: "{\"sub\":\"spiffe://example.org\",\"aud\":\"api\",\"exp\":\(t + 300)}", algorithm: .es256)
        },
        Refusal(name: "fail/sub missing", code: .invalidSubject) { s in
            try s.token(header: header(s.keyID), payload: "{\"aud\":\"api\",\"exp\":\(t + 300)}", algorithm: .es256)
        },
        Refusal(name: "fail/sub in another trust domain", code: .subjectOutsideTrustDomain) { s in
            try s.token(header: header(s.keyID), payload: "{\"sub\":\"spiffe://other.org/agent\",\"aud\":\"api\",\"exp\":\(t + 300)}", algorithm: .es256)
        },
        Refusal(name: "fail/JWS JSON serialization", code: .notCompactSerialization) { s in
            let compact = try s.token(header: header(s.keyID), payload: goodPayload, algorithm: .es256).split(separator: ".")
            return "{\"protected\":\"\(compact[0])\",\"payload\":\"\(compact[1])\",\"signature\":\"\(compact[2])\"}"
        },
        Refusal(name: "fail/several signatures", code: .notCompactSerialization) { s in
            let compact = try s.token(header: header(s.keyID), payload: goodPayload, algorithm: .es256).split(separator: ".")
            return "{\"payload\":\"\(compact[1])\",\"signatures\":[{\"protected\":\"\(compact[0])\",\"signature\":\"\(compact[2])\"},{\"protected\":\"\(compact[0])\",\"signature\":\"\(compact[2])\"}]}"
        },
        Refusal(name: "fail/two parts", code: .malformed) { s in
            String(try s.token(header: header(s.keyID), payload: goodPayload, algorithm: .es256).split(separator: ".")[0...1].joined(separator: "."))
        },
        Refusal(name: "fail/header not base64url", code: .malformed) { _ in "e30+.e30.AAAA" },
        Refusal(name: "fail/header not json", code: .malformed) { _ in Base64URL.encode(Array("not json".utf8)) + ".e30.AAAA" },
        Refusal(name: "fail/payload not base64url", code: .malformed) { s in
            // Signed over the broken payload, so only the base64url decoding can refuse it.
            let input = Array((Base64URL.encode(Array(header(s.keyID).utf8)) + ".e30+").utf8)
            return JWTSVIDEncoder.token(signingInput: input, signature: try s.sign(input, algorithm: .es256))
        },
        Refusal(name: "fail/payload not json", code: .malformed) { s in
            try s.token(header: header(s.keyID), payload: "[not json", algorithm: .es256)
        },
        Refusal(name: "fail/alg PS256 for an EC key", code: .algorithmKeyMismatch) { s in
            try s.token(header: header(s.keyID, alg: "PS256"), payload: goodPayload, algorithm: .es256)
        },
    ]

    struct Acceptance: Sendable, CustomTestStringConvertible {
        let name: String
        let typ: String?
        var testDescription: String { name }
    }

    /// The JWT-SVID spec makes `typ` optional; when present it is `JWT` or `JOSE`.
    static let acceptances: [Acceptance] = [
        Acceptance(name: "ok/typ JWT", typ: "JWT"),
        Acceptance(name: "ok/typ JOSE", typ: "JOSE"),
        Acceptance(name: "ok/typ absent", typ: nil),
    ]

    @Test(arguments: acceptances)
    func accepts(_ a: Acceptance) async throws {
        let (signer, validator) = try await setup()
        let token = try signer.token(header: Self.header(signer.keyID, typ: a.typ), payload: Self.goodPayload, algorithm: .es256)
        let result = await validator.validate(token, audience: "api", now: Self.now)
        #expect(result.svid?.claims.subject.uri == "spiffe://example.org/agent", "\(a.name): \(String(describing: result.error))")
    }

    @Test(arguments: refusals)
    func refuses(_ r: Refusal) async throws {
        let (signer, validator) = try await setup()
        let token = try r.make(signer)
        let result = await validator.validate(token, audience: "api", now: Self.now)
        let error = try #require(result.error, "\(r.name) was accepted")
        #expect(error.code == r.code, "\(r.name): \(error.message)")
    }

    @Test func kidOfAnX509AuthorityIsRefused() async throws {
        // The X.509 authority's key signs a token naming its own RFC 7638 thumbprint.
        let signer = try TestSigner(.p256)
        let root = try makeSelfSigned(signer.p256!)
        let bundle = TrustBundle(trustDomain: td, x509Authorities: [root])
        let validator = await JWTSVIDValidator(bundle: bundle)
        let kid = signer.publicKey.thumbprint
        let token = try signer.token(header: Self.header(kid), payload: Self.goodPayload, algorithm: .es256)
        #expect(await validator.validate(token, audience: "api", now: Self.now).error?.code == .keyIDIsX509Authority)
    }
}

extension TestSigner {
    init(copying other: TestSigner, keyID: String) {
        self.kind = other.kind
        self.p256 = other.p256; self.p384 = other.p384; self.p521 = other.p521; self.rsa = other.rsa
        self.keyID = keyID
    }
}
