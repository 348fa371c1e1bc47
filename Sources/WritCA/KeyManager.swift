import Crypto
import _CryptoExtras
import Foundation
import SwiftASN1
import X509

/// The key types a CA can hold.
public enum KeyType: String, Sendable, Hashable, Codable, CaseIterable {
    case ecP256 = "ec-p256"
    case ecP384 = "ec-p384"
    case rsa2048 = "rsa-2048"
    case rsa4096 = "rsa-4096"

    /// The signature algorithm this key signs certificates with.
    public var certificateSignatureAlgorithm: Certificate.SignatureAlgorithm {
        switch self {
        case .ecP256: return .ecdsaWithSHA256
        case .ecP384: return .ecdsaWithSHA384
        case .rsa2048, .rsa4096: return .sha256WithRSAEncryption
        }
    }
}

/// The public half of a key a ``KeyManager`` holds.
public struct ManagedKey: Sendable, Hashable {
    /// The key's id inside its manager.
    public let id: String
    /// Its type.
    public let type: KeyType
    /// Its public key.
    public let publicKey: Certificate.PublicKey

    public init(id: String, type: KeyType, publicKey: Certificate.PublicKey) {
        self.id = id
        self.type = type
        self.publicKey = publicKey
    }
}

/// Holds private keys and signs with them; never hands out private-key bytes, so a KMS or
/// PKCS#11 backend can implement it.
///
/// Signatures are DER ECDSA-Sig-Value with the curve's hash (SHA-256 for P-256, SHA-384 for
/// P-384) or RSASSA-PKCS1-v1_5 with SHA-256 — the forms X.509 carries.
public protocol KeyManager: Sendable {
    /// Creates a key; refuses an id in use.
    func generateKey(id: String, type: KeyType) async throws(CAError) -> ManagedKey
    /// Takes an existing PKCS#8 key (e.g. an upstream CA key); refuses an id in use.
    func importKey(id: String, pkcs8DER: [UInt8]) async throws(CAError) -> ManagedKey
    /// The key with `id`.
    func key(id: String) async throws(CAError) -> ManagedKey
    /// Every key, ordered by id.
    func keys() async throws(CAError) -> [ManagedKey]
    /// Signs `message` with the key `id`.
    func sign(keyID: String, message: [UInt8]) async throws(CAError) -> [UInt8]
    /// Deletes the key `id` (no error if it is already gone).
    func deleteKey(id: String) async throws(CAError)
}

/// A private key in process memory, behind a manager.
enum HeldKey: Sendable {
    case p256(P256.Signing.PrivateKey)
    case p384(P384.Signing.PrivateKey)
    case rsa(_RSA.Signing.PrivateKey, KeyType)

    static func generate(_ type: KeyType) throws(CAError) -> HeldKey {
        switch type {
        case .ecP256: return .p256(P256.Signing.PrivateKey(compactRepresentable: false))
        case .ecP384: return .p384(P384.Signing.PrivateKey(compactRepresentable: false))
        case .rsa2048, .rsa4096:
            do {
                return .rsa(try _RSA.Signing.PrivateKey(keySize: type == .rsa2048 ? .bits2048 : .bits4096), type)
            } catch {
                throw CAError(.signingFailed, "generating a \(type.rawValue) key failed: \(error)")
            }
        }
    }

    /// Parses PKCS#8 DER (or PKCS#1 for RSA) of a supported type.
    static func parse(pkcs8DER der: [UInt8], what: String) throws(CAError) -> HeldKey {
        if let key = try? P256.Signing.PrivateKey(derRepresentation: der) { return .p256(key) }
        if let key = try? P384.Signing.PrivateKey(derRepresentation: der) { return .p384(key) }
        if let key = try? _RSA.Signing.PrivateKey(derRepresentation: der) {
            switch key.keySizeInBits {
            case 2048: return .rsa(key, .rsa2048)
            case 4096: return .rsa(key, .rsa4096)
            default: throw CAError(.corruptFile, "\(what) holds an RSA key of \(key.keySizeInBits) bits: only 2048 and 4096 are supported")
            }
        }
        throw CAError(.corruptFile, "\(what) is not a PKCS#8 P-256, P-384 or RSA private key (truncated or corrupt?)")
    }

    var type: KeyType {
        switch self {
        case .p256: return .ecP256
        case .p384: return .ecP384
        case .rsa(_, let type): return type
        }
    }

    var publicKey: Certificate.PublicKey {
        switch self {
        case .p256(let k): return Certificate.PublicKey(k.publicKey)
        case .p384(let k): return Certificate.PublicKey(k.publicKey)
        case .rsa(let k, _): return Certificate.PublicKey(k.publicKey)
        }
    }

    var pkcs8DER: [UInt8] {
        switch self {
        case .p256(let k): return [UInt8](k.derRepresentation)
        case .p384(let k): return [UInt8](k.derRepresentation)
        case .rsa(let k, _): return [UInt8](k.pkcs8DERRepresentation)
        }
    }

    func sign(_ message: [UInt8]) throws(CAError) -> [UInt8] {
        do {
            switch self {
            case .p256(let k): return [UInt8](try k.signature(for: message).derRepresentation)
            case .p384(let k): return [UInt8](try k.signature(for: message).derRepresentation)
            case .rsa(let k, _): return [UInt8](try k.signature(for: message, padding: .insecurePKCS1v1_5).rawRepresentation)
            }
        } catch {
            throw CAError(.signingFailed, "signing failed: \(error)")
        }
    }
}

/// Keys held in memory only; lost when the process ends.
public actor MemoryKeyManager: KeyManager {
    private var held: [String: HeldKey] = [:]

    public init() {}

    public func generateKey(id: String, type: KeyType) throws(CAError) -> ManagedKey {
        guard held[id] == nil else { throw CAError(.keyExists, "key `\(id)` exists already") }
        let key = try HeldKey.generate(type)
        held[id] = key
        return ManagedKey(id: id, type: type, publicKey: key.publicKey)
    }

    public func importKey(id: String, pkcs8DER: [UInt8]) throws(CAError) -> ManagedKey {
        guard held[id] == nil else { throw CAError(.keyExists, "key `\(id)` exists already") }
        let key = try HeldKey.parse(pkcs8DER: pkcs8DER, what: "imported key `\(id)`")
        held[id] = key
        return ManagedKey(id: id, type: key.type, publicKey: key.publicKey)
    }

    public func key(id: String) throws(CAError) -> ManagedKey {
        guard let key = held[id] else { throw CAError(.keyNotFound, "no key `\(id)`") }
        return ManagedKey(id: id, type: key.type, publicKey: key.publicKey)
    }

    public func keys() -> [ManagedKey] {
        held.keys.sorted().map { ManagedKey(id: $0, type: held[$0]!.type, publicKey: held[$0]!.publicKey) }
    }

    public func sign(keyID: String, message: [UInt8]) throws(CAError) -> [UInt8] {
        guard let key = held[keyID] else { throw CAError(.keyNotFound, "no key `\(keyID)`") }
        return try key.sign(message)
    }

    public func deleteKey(id: String) {
        held[id] = nil
    }
}

/// Signs certificates through a ``KeyManager`` (swift-certificates' custom-key hook); its
/// private key cannot be serialised.
public struct ManagedKeySigner: CustomPrivateKey {
    public let key: ManagedKey
    public let manager: any KeyManager

    public init(key: ManagedKey, manager: any KeyManager) {
        self.key = key
        self.manager = manager
    }

    public var publicKey: Certificate.PublicKey { key.publicKey }
    public var defaultSignatureAlgorithm: Certificate.SignatureAlgorithm { key.type.certificateSignatureAlgorithm }
    public var supportedSignatureAlgorithms: [Certificate.SignatureAlgorithm] { [key.type.certificateSignatureAlgorithm] }

    public func signSynchronously(bytes: some DataProtocol, signatureAlgorithm: Certificate.SignatureAlgorithm) throws -> Certificate.Signature {
        throw CAError(.signingFailed, "managed keys sign asynchronously only")
    }

    public func signAsynchronously(bytes: some DataProtocol & Sendable, signatureAlgorithm: Certificate.SignatureAlgorithm) async throws -> Certificate.Signature {
        guard signatureAlgorithm == key.type.certificateSignatureAlgorithm else {
            throw CAError(.signingFailed, "key `\(key.id)` (\(key.type.rawValue)) does not sign with \(signatureAlgorithm)")
        }
        let signature = try await manager.sign(keyID: key.id, message: Array(bytes))
        return try Certificate.Signature(signatureAlgorithm: signatureAlgorithm, signatureBytes: ASN1BitString(bytes: signature[...]))
    }

    public static func == (lhs: ManagedKeySigner, rhs: ManagedKeySigner) -> Bool { lhs.key == rhs.key }
    public func hash(into hasher: inout Hasher) { hasher.combine(key) }

    public static var defaultPEMDiscriminator: String { "PRIVATE KEY" }

    public func serialize(into coder: inout DER.Serializer) throws {
        throw CAError(.signingFailed, "the private key of `\(key.id)` never leaves its key manager")
    }
}
