import Crypto
import _CryptoExtras
import Foundation
import X509

/// A public key as a JSON Web Key (RFC 7517/7518): EC P-256/P-384/P-521 or RSA.
public enum JWKPublicKey: Sendable, Hashable {
    case p256(P256.Signing.PublicKey)
    case p384(P384.Signing.PublicKey)
    case p521(P521.Signing.PublicKey)
    case rsa(_RSA.Signing.PublicKey)

    public static func == (lhs: JWKPublicKey, rhs: JWKPublicKey) -> Bool {
        lhs.certificatePublicKey == rhs.certificatePublicKey
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(certificatePublicKey)
    }

    /// Takes the key of a certificate; Ed25519 and other types are refused.
    public init(_ key: Certificate.PublicKey) throws(TrustBundleError) {
        if let k = P256.Signing.PublicKey(key) { self = .p256(k) }
        else if let k = P384.Signing.PublicKey(key) { self = .p384(k) }
        else if let k = P521.Signing.PublicKey(key) { self = .p521(k) }
        else if let k = _RSA.Signing.PublicKey(key) { self = .rsa(k) }
        else { throw TrustBundleError(.unsupportedKey, "unsupported key type `\(key)`: only EC P-256, P-384, P-521 and RSA keys can be JWKs") }
    }

    /// The same key for swift-certificates.
    public var certificatePublicKey: Certificate.PublicKey {
        switch self {
        case .p256(let k): return Certificate.PublicKey(k)
        case .p384(let k): return Certificate.PublicKey(k)
        case .p521(let k): return Certificate.PublicKey(k)
        case .rsa(let k): return Certificate.PublicKey(k)
        }
    }

    /// `EC` or `RSA`.
    public var keyType: String {
        if case .rsa = self { return "RSA" }
        return "EC"
    }

    /// The EC curve name (`P-256`…), nil for RSA.
    public var curve: String? {
        switch self {
        case .p256: return "P-256"
        case .p384: return "P-384"
        case .p521: return "P-521"
        case .rsa: return nil
        }
    }

    /// The required key members in lexicographic order (the RFC 7638 thumbprint input).
    public var requiredMembers: [(String, String)] {
        switch self {
        case .p256(let k): return Self.ecMembers(curve: "P-256", x963: k.x963Representation, size: 32)
        case .p384(let k): return Self.ecMembers(curve: "P-384", x963: k.x963Representation, size: 48)
        case .p521(let k): return Self.ecMembers(curve: "P-521", x963: k.x963Representation, size: 66)
        case .rsa(let k):
            // getKeyPrimitives cannot fail for a key BoringSSL holds.
            let primitives = try! k.getKeyPrimitives()
            return [("e", Base64URL.encode(Self.stripZeros(primitives.publicExponent))),
                    ("kty", "RSA"),
                    ("n", Base64URL.encode(Self.stripZeros(primitives.modulus)))]
        }
    }

    /// The RFC 7638 JWK thumbprint: base64url(SHA-256(canonical JSON of the required members)).
    public var thumbprint: String {
        let json = "{" + requiredMembers.map { "\"\($0.0)\":\"\($0.1)\"" }.joined(separator: ",") + "}"
        return Base64URL.encode(SHA256.hash(data: Array(json.utf8)))
    }

    private static func ecMembers(curve: String, x963: Data, size: Int) -> [(String, String)] {
        let bytes = [UInt8](x963)  // 0x04 ‖ X ‖ Y
        return [("crv", curve), ("kty", "EC"),
                ("x", Base64URL.encode(bytes[1..<(1 + size)])),
                ("y", Base64URL.encode(bytes[(1 + size)...]))]
    }

    private static func stripZeros(_ data: Data) -> [UInt8] {
        let bytes = [UInt8](data)
        let first = bytes.firstIndex(where: { $0 != 0 }) ?? (bytes.count - 1)
        return Array(bytes[max(0, first)...])
    }

    /// Parses the key members of a JWK object (`kty`, `crv`, `x`, `y`, `n`, `e`).
    public init(jwk: [String: Any]) throws(TrustBundleError) {
        guard let kty = jwk["kty"] as? String else {
            throw TrustBundleError(.invalidMember, "jwk has no `kty` string")
        }
        func member(_ name: String) throws(TrustBundleError) -> [UInt8] {
            guard let text = jwk[name] as? String else {
                throw TrustBundleError(.invalidKey, "\(kty) jwk has no `\(name)` string")
            }
            guard let bytes = Base64URL.decode(text) else {
                throw TrustBundleError(.invalidKey, "jwk member `\(name)` is not unpadded base64url")
            }
            return bytes
        }
        switch kty {
        case "EC":
            guard let crv = jwk["crv"] as? String else { throw TrustBundleError(.invalidKey, "EC jwk has no `crv` string") }
            let x = try member("x"), y = try member("y")
            let size: Int
            switch crv {
            case "P-256": size = 32
            case "P-384": size = 48
            case "P-521": size = 66
            default: throw TrustBundleError(.unsupportedKey, "unsupported EC curve `\(crv)`: P-256, P-384 and P-521 are accepted")
            }
            guard x.count == size, y.count == size else {
                throw TrustBundleError(.invalidKey, "\(crv) jwk coordinates must be \(size) bytes each, got \(x.count) and \(y.count)")
            }
            let point = [0x04] + x + y
            do {
                switch crv {
                case "P-256": self = .p256(try P256.Signing.PublicKey(x963Representation: point))
                case "P-384": self = .p384(try P384.Signing.PublicKey(x963Representation: point))
                default: self = .p521(try P521.Signing.PublicKey(x963Representation: point))
                }
            } catch {
                throw TrustBundleError(.invalidKey, "\(crv) jwk is not a point on the curve")
            }
        case "RSA":
            let n = try member("n"), e = try member("e")
            guard !n.isEmpty, !e.isEmpty else { throw TrustBundleError(.invalidKey, "RSA jwk has an empty `n` or `e`") }
            do {
                self = .rsa(try _RSA.Signing.PublicKey(n: n, e: e))
            } catch {
                throw TrustBundleError(.invalidKey, "RSA jwk is not a usable key: \(error)")
            }
        default:
            throw TrustBundleError(.unsupportedKey, "unsupported jwk key type `\(kty)`: EC and RSA are accepted")
        }
    }

    /// The key members as a JSON object (plus whatever the caller adds: `kid`, `use`, …).
    public var jwkMembers: [String: Any] {
        var object: [String: Any] = [:]
        for (name, value) in requiredMembers { object[name] = value }
        return object
    }
}
