import Foundation
import SPIFFEBundle
import SPIFFEIdentity

/// The JWS algorithms a JWT-SVID may be signed with (JWT-SVID.md §3: RFC 7518 asymmetric).
public enum JWTSVIDAlgorithm: String, Sendable, Hashable, CaseIterable {
    case es256 = "ES256", es384 = "ES384", es512 = "ES512"
    case rs256 = "RS256", rs384 = "RS384", rs512 = "RS512"
    case ps256 = "PS256", ps384 = "PS384", ps512 = "PS512"

    /// Whether `key` can verify this algorithm.
    public func fits(_ key: JWKPublicKey) -> Bool {
        switch (self, key) {
        case (.es256, .p256), (.es384, .p384), (.es512, .p521): return true
        case (.rs256, .rsa), (.rs384, .rsa), (.rs512, .rsa), (.ps256, .rsa), (.ps384, .rsa), (.ps512, .rsa): return true
        default: return false
        }
    }

    /// The algorithm a key signs with by default: ES256/384/512 by curve, RS256 for RSA.
    public static func `default`(for key: JWKPublicKey) -> JWTSVIDAlgorithm {
        switch key {
        case .p256: return .es256
        case .p384: return .es384
        case .p521: return .es512
        case .rsa: return .rs256
        }
    }
}

/// The claims of a JWT-SVID.
public struct JWTSVIDClaims: Sendable, Hashable {
    /// `sub`: the workload's SPIFFE ID.
    public var subject: SPIFFEID
    /// `aud`: always written as an array.
    public var audience: [String]
    /// `exp`, whole seconds since the epoch.
    public var expiresAt: Int64
    /// `iat`, whole seconds since the epoch.
    public var issuedAt: Int64
    /// `jti`, when set.
    public var jwtID: String?

    public init(subject: SPIFFEID, audience: [String], expiresAt: Int64, issuedAt: Int64, jwtID: String? = nil) {
        self.subject = subject
        self.audience = audience
        self.expiresAt = expiresAt
        self.issuedAt = issuedAt
        self.jwtID = jwtID
    }
}

/// Builds compact JWS JWT-SVIDs. Signing is the caller's (a key manager signs the signing
/// input and never hands out its key): the header is exactly `{"alg","kid","typ":"JWT"}`, the
/// claims `sub`, `aud` (array), `exp` and `iat` (integers) and `jti` when set.
public enum JWTSVIDEncoder {
    /// `base64url(header) . base64url(claims)`, the bytes to sign.
    public static func signingInput(claims: JWTSVIDClaims, keyID: String, algorithm: JWTSVIDAlgorithm) -> [UInt8] {
        let header = "{\"alg\":\(json(algorithm.rawValue)),\"kid\":\(json(keyID)),\"typ\":\"JWT\"}"
        var payload = "{\"sub\":\(json(claims.subject.uri)),\"aud\":[\(claims.audience.map(json).joined(separator: ","))],"
        payload += "\"exp\":\(claims.expiresAt),\"iat\":\(claims.issuedAt)"
        if let jti = claims.jwtID { payload += ",\"jti\":\(json(jti))" }
        payload += "}"
        return Array((Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))).utf8)
    }

    /// The compact token: signing input, `.`, base64url of the JWS signature (raw `r‖s` for
    /// ECDSA, RFC 7518 §3.4).
    public static func token(signingInput: [UInt8], signature: [UInt8]) -> String {
        String(decoding: signingInput, as: UTF8.self) + "." + Base64URL.encode(signature)
    }

    /// A JSON string literal.
    static func json(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
