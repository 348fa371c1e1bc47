import Crypto
import Foundation
import JWTKit
import SPIFFEBundle
import SPIFFEIdentity

/// A validated JWT-SVID.
public struct JWTSVID: Sendable, Hashable {
    /// The compact token as presented.
    public let token: String
    /// Its claims.
    public let claims: JWTSVIDClaims
    /// The `kid` it was signed under.
    public let keyID: String
    /// The algorithm it was signed with.
    public let algorithm: JWTSVIDAlgorithm
}

/// The outcome of validating a JWT-SVID: the token, or the rule it broke.
public enum JWTSVIDValidation: Sendable, Hashable {
    case valid(JWTSVID)
    case invalid(JWTSVIDError)

    /// The token when valid.
    public var svid: JWTSVID? {
        if case .valid(let svid) = self { return svid }
        return nil
    }

    /// The error when invalid.
    public var error: JWTSVIDError? {
        if case .invalid(let error) = self { return error }
        return nil
    }
}

/// Validates JWT-SVIDs against one trust domain's bundle, per JWT-SVID.md §4–§5.
///
/// The header is checked strictly first (compact serialization only; `alg` one of
/// ES256/384/512, RS256/384/512, PS256/384/512 and fitting the key; `kid` present and naming a
/// JWT authority; `typ` absent, `JWT` or `JOSE`; no `crit`), the signature is checked by jwt-kit
/// with key collections built once per validator, and the claims are checked against `now`
/// with the leeway: `exp` required and not past, `nbf`/`iat` not in the future, `aud` required
/// and containing the expected audience, `sub` a workload SPIFFE ID of the bundle's trust domain.
public struct JWTSVIDValidator: Sendable {
    /// The bundle tokens are checked against.
    public let bundle: TrustBundle
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    public let leeway: Duration
    private let collections: [JWTSVIDAlgorithm: JWTKeyCollection]
    private let x509KeyIDs: Set<String>
    private let headerDecoder = JSONDecoder()

    /// Builds the key collections for every JWT authority of `bundle` (once).
    public init(bundle: TrustBundle, leeway: Duration = .seconds(30)) async {
        self.bundle = bundle
        self.leeway = leeway
        var collections: [JWTSVIDAlgorithm: JWTKeyCollection] = [:]
        for algorithm in JWTSVIDAlgorithm.allCases {
            let collection = JWTKeyCollection()
            for authority in bundle.jwtAuthorities where algorithm.fits(authority.publicKey) {
                await Self.add(authority, algorithm: algorithm, to: collection)
            }
            collections[algorithm] = collection
        }
        self.collections = collections
        self.x509KeyIDs = Set(bundle.x509Authorities.compactMap { try? JWKPublicKey($0.publicKey).thumbprint })
    }

    private static func add(_ authority: JWTAuthority, algorithm: JWTSVIDAlgorithm, to collection: JWTKeyCollection) async {
        let kid = JWKIdentifier(string: authority.keyID)
        do {
            switch (authority.publicKey, algorithm) {
            case (.p256(let key), _): await collection.add(ecdsa: try ES256PublicKey(backing: key), kid: kid)
            case (.p384(let key), _): await collection.add(ecdsa: try ES384PublicKey(backing: key), kid: kid)
            case (.p521(let key), _): await collection.add(ecdsa: try ES512PublicKey(backing: key), kid: kid)
            case (.rsa(let key), .rs256): await collection.add(rsa: try Insecure.RSA.PublicKey(backing: key), digestAlgorithm: .sha256, kid: kid)
            case (.rsa(let key), .rs384): await collection.add(rsa: try Insecure.RSA.PublicKey(backing: key), digestAlgorithm: .sha384, kid: kid)
            case (.rsa(let key), .rs512): await collection.add(rsa: try Insecure.RSA.PublicKey(backing: key), digestAlgorithm: .sha512, kid: kid)
            case (.rsa(let key), .ps256): await collection.add(pss: try Insecure.RSA.PublicKey(backing: key), digestAlgorithm: .sha256, kid: kid)
            case (.rsa(let key), .ps384): await collection.add(pss: try Insecure.RSA.PublicKey(backing: key), digestAlgorithm: .sha384, kid: kid)
            case (.rsa(let key), .ps512): await collection.add(pss: try Insecure.RSA.PublicKey(backing: key), digestAlgorithm: .sha512, kid: kid)
            default: return
            }
        } catch {
            // A key jwt-kit cannot take (e.g. RSA below its minimum) verifies nothing: tokens
            // under it fail with bad_signature.
        }
    }

    /// Validates a compact JWT-SVID for `audience` at `now`.
    public func validate(_ token: String, audience: String, now: Date) async -> JWTSVIDValidation {
        do {
            return .valid(try await check(token, audience: audience, now: now))
        } catch let error as JWTSVIDError {
            return .invalid(error)
        } catch {
            return .invalid(JWTSVIDError(.malformed, "token does not parse: \(error)"))
        }
    }

    private func check(_ token: String, audience: String, now: Date) async throws -> JWTSVID {
        let bytes = Array(token.utf8)
        if let first = bytes.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }), first == UInt8(ascii: "{") {
            throw JWTSVIDError(.notCompactSerialization, "token is a JWS JSON serialization: only the compact form `header.payload.signature` is accepted")
        }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw JWTSVIDError(.malformed, "token has \(parts.count) dot-separated parts: a compact JWS has exactly 3")
        }
        guard let headerBytes = Base64URL.decode(bytes: parts[0]),
              let header = try? headerDecoder.decode(JOSEHeader.self, from: Data(headerBytes)) else {
            throw JWTSVIDError(.malformed, "token header is not a base64url-encoded JSON object")
        }
        if header.hasSignatures {
            throw JWTSVIDError(.notCompactSerialization, "token carries several signatures: only one is accepted")
        }
        guard let algName = header.alg else {
            throw JWTSVIDError(.algorithmNotAllowed, "token header has no `alg` string")
        }
        guard let algorithm = JWTSVIDAlgorithm(rawValue: algName) else {
            let why = algName.lowercased() == "none" ? "unsigned tokens are refused"
                : algName.uppercased().hasPrefix("HS") ? "symmetric (HMAC) algorithms are refused"
                : "allowed are ES256/384/512, RS256/384/512 and PS256/384/512"
            throw JWTSVIDError(.algorithmNotAllowed, "token algorithm `\(algName)` is not allowed: \(why)")
        }
        switch header.typ {
        case .absent, .string("JWT"), .string("JOSE"): break
        case .string(let other): throw JWTSVIDError(.invalidType, "token `typ` is `\(other)`: only `JWT` or `JOSE` are allowed")
        case .notAString: throw JWTSVIDError(.invalidType, "token `typ` is not a string")
        }
        if header.hasCrit {
            throw JWTSVIDError(.unsupportedCriticalHeader, "token has a `crit` header: no critical extension is supported")
        }
        guard let kid = header.kid, !kid.isEmpty else {
            throw JWTSVIDError(.missingKeyID, "token header has no `kid`")
        }
        guard let authority = bundle.jwtAuthority(keyID: kid) else {
            if x509KeyIDs.contains(kid) {
                throw JWTSVIDError(.keyIDIsX509Authority, "token `kid` `\(kid)` names an X.509 authority of `\(bundle.trustDomain)`, which may not sign JWT-SVIDs")
            }
            throw JWTSVIDError(.unknownKeyID, "token `kid` `\(kid)` names no JWT authority of `\(bundle.trustDomain)`")
        }
        guard algorithm.fits(authority.publicKey) else {
            throw JWTSVIDError(.algorithmKeyMismatch, "token algorithm `\(algName)` does not fit the \(authority.publicKey.keyType)\(authority.publicKey.curve.map { " " + $0 } ?? "") key `\(kid)`")
        }
        let payload: JWTSVIDPayload
        do {
            payload = try await collections[algorithm]!.verify(bytes, as: JWTSVIDPayload.self)
        } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
            throw JWTSVIDError(.badSignature, "token signature does not verify with key `\(kid)`")
        } catch {
            throw JWTSVIDError(.malformed, "token payload or signature does not decode: \(error)")
        }
        return try checkClaims(payload, token: token, kid: kid, algorithm: algorithm, audience: audience, now: now)
    }

    private func checkClaims(_ payload: JWTSVIDPayload, token: String, kid: String, algorithm: JWTSVIDAlgorithm,
                             audience: String, now: Date) throws -> JWTSVID {
        if let bad = payload.invalidClaim {
            throw JWTSVIDError(.invalidClaim, "claim `\(bad)` has the wrong JSON type")
        }
        guard let subjectText = payload.sub else { throw JWTSVIDError(.invalidSubject, "token has no `sub` claim") }
        let subject: SPIFFEID
        do { subject = try SPIFFEID.workload(parsing: subjectText) } catch {
            throw JWTSVIDError(.invalidSubject, "token `sub` is not a workload SPIFFE ID: \(error.message)")
        }
        guard subject.trustDomain == bundle.trustDomain else {
            throw JWTSVIDError(.subjectOutsideTrustDomain, "token `sub` `\(subject)` is outside the trust domain `\(bundle.trustDomain)`")
        }
        guard let audiences = payload.aud, !audiences.isEmpty else {
            throw JWTSVIDError(.missingAudience, "token has no `aud` claim")
        }
        guard let exp = payload.exp else { throw JWTSVIDError(.missingExpiry, "token has no `exp` claim") }
        let skew = Double(leeway.components.seconds) + Double(leeway.components.attoseconds) / 1e18
        let t = now.timeIntervalSince1970
        if t > exp + skew {
            throw JWTSVIDError(.expired, "token expired at \(Self.rfc3339(exp))")
        }
        if let nbf = payload.nbf, nbf - skew > t {
            throw JWTSVIDError(.notYetValid, "token is not valid before \(Self.rfc3339(nbf))")
        }
        if let iat = payload.iat, iat - skew > t {
            throw JWTSVIDError(.notYetValid, "token was issued in the future (\(Self.rfc3339(iat)))")
        }
        guard audiences.contains(audience) else {
            throw JWTSVIDError(.wrongAudience, "token audience \(audiences) does not include `\(audience)`")
        }
        let claims = JWTSVIDClaims(subject: subject, audience: audiences, expiresAt: Int64(exp.rounded(.down)),
                                   issuedAt: Int64((payload.iat ?? 0).rounded(.down)), jwtID: payload.jti)
        return JWTSVID(token: token, claims: claims, keyID: kid, algorithm: algorithm)
    }

    static func rfc3339(_ seconds: Double) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }
}

/// The JOSE header fields a JWT-SVID validator looks at.
struct JOSEHeader: Decodable {
    enum TypeField { case absent, string(String), notAString }
    var alg: String?
    var kid: String?
    var typ: TypeField = .absent
    var hasCrit = false
    var hasSignatures = false

    enum CodingKeys: String, CodingKey { case alg, kid, typ, crit, signatures }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        alg = try? c.decodeIfPresent(String.self, forKey: .alg)
        kid = try? c.decodeIfPresent(String.self, forKey: .kid)
        if c.contains(.typ) {
            if let text = try? c.decode(String.self, forKey: .typ) { typ = .string(text) } else { typ = .notAString }
        }
        hasCrit = c.contains(.crit)
        hasSignatures = c.contains(.signatures)
    }
}

/// The claims as jwt-kit decodes them; lenient so that a wrongly typed claim becomes a named
/// refusal rather than a decoding error.
struct JWTSVIDPayload: JWTPayload {
    var sub: String?
    var aud: [String]?
    var exp: Double?
    var iat: Double?
    var nbf: Double?
    var jti: String?
    var invalidClaim: String?

    enum CodingKeys: String, CodingKey { case sub, aud, exp, iat, nbf, jti }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func field<T: Decodable>(_ key: CodingKeys, _ type: T.Type) -> T? {
            guard c.contains(key) else { return nil }
            if let value = try? c.decode(T.self, forKey: key) { return value }
            if invalidClaim == nil { invalidClaim = key.rawValue }
            return nil
        }
        sub = field(.sub, String.self)
        exp = field(.exp, Double.self)
        iat = field(.iat, Double.self)
        nbf = field(.nbf, Double.self)
        jti = field(.jti, String.self)
        if c.contains(.aud) {
            // Writ and most issuers write an array: try that first (a failed decode is costly).
            if let many = try? c.decode([String].self, forKey: .aud) { aud = many }
            else if let one = try? c.decode(String.self, forKey: .aud) { aud = [one] }
            else if invalidClaim == nil { invalidClaim = "aud" }
        }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(sub, forKey: .sub)
        try c.encodeIfPresent(aud, forKey: .aud)
        try c.encodeIfPresent(exp, forKey: .exp)
        try c.encodeIfPresent(iat, forKey: .iat)
        try c.encodeIfPresent(nbf, forKey: .nbf)
        try c.encodeIfPresent(jti, forKey: .jti)
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
