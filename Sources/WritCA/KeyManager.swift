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

    /// The signature algorithm this key signs certificates with by default.
    public var certificateSignatureAlgorithm: Certificate.SignatureAlgorithm {
        certificateSignatureAlgorithm(hash: defaultHash)
    }

    /// The hash this key signs with unless told otherwise: the curve's own hash for EC keys
    /// (SHA-256 for P-256, SHA-384 for P-384), SHA-256 for RSA.
    public var defaultHash: SignatureHash {
        switch self {
        case .ecP256: return .sha256
        case .ecP384: return .sha384
        case .rsa2048, .rsa4096: return .sha256
        }
    }

    /// The X.509 signature algorithm of this key type with `hash`.
    public func certificateSignatureAlgorithm(hash: SignatureHash) -> Certificate.SignatureAlgorithm {
        switch (self, hash) {
        case (.ecP256, .sha256), (.ecP384, .sha256): return .ecdsaWithSHA256
        case (.ecP256, .sha384), (.ecP384, .sha384): return .ecdsaWithSHA384
        case (.ecP256, .sha512), (.ecP384, .sha512): return .ecdsaWithSHA512
        case (.rsa2048, .sha256), (.rsa4096, .sha256): return .sha256WithRSAEncryption
        case (.rsa2048, .sha384), (.rsa4096, .sha384): return .sha384WithRSAEncryption
        case (.rsa2048, .sha512), (.rsa4096, .sha512): return .sha512WithRSAEncryption
        }
    }
}

/// The hash a ``KeyManager`` signature is computed over.
public enum SignatureHash: String, Sendable, Hashable, Codable, CaseIterable {
    case sha256, sha384, sha512

    /// The hash of an X.509 signature algorithm this module can sign with (nil for others,
    /// e.g. SHA-1 or Ed25519).
    public init?(_ algorithm: Certificate.SignatureAlgorithm) {
        switch algorithm {
        case .ecdsaWithSHA256, .sha256WithRSAEncryption: self = .sha256
        case .ecdsaWithSHA384, .sha384WithRSAEncryption: self = .sha384
        case .ecdsaWithSHA512, .sha512WithRSAEncryption: self = .sha512
        default: return nil
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
/// Signatures are DER ECDSA-Sig-Value or RSASSA-PKCS1-v1_5 over the chosen ``SignatureHash`` of
/// the message — the forms X.509 carries. No method returns private-key bytes.
public protocol KeyManager: Sendable {
    /// Creates a key; refuses an id in use.
    func generateKey(id: String, type: KeyType) async throws(CAError) -> ManagedKey
    /// Takes an existing PKCS#8 key (e.g. an upstream CA key); refuses an id in use.
    func importKey(id: String, pkcs8DER: [UInt8]) async throws(CAError) -> ManagedKey
    /// The key with `id`.
    func key(id: String) async throws(CAError) -> ManagedKey
    /// Every key, ordered by id (each one loaded: a bad key fails the call).
    func keys() async throws(CAError) -> [ManagedKey]
    /// The ids of every key, ordered, without loading them.
    func keyIDs() async throws(CAError) -> [String]
    /// Signs the `hash` of `message` with the key `keyID`: DER ECDSA-Sig-Value for EC keys,
    /// RSASSA-PKCS1-v1_5 for RSA keys.
    func sign(keyID: String, message: [UInt8], hash: SignatureHash) async throws(CAError) -> [UInt8]
    /// Deletes the key `id` (no error if it is already gone).
    func deleteKey(id: String) async throws(CAError)
    /// A signer for the key `keyID` that signs on the calling thread without suspending, from a
    /// manager that holds its keys in this process; nil for keys held elsewhere (a KMS, an HSM),
    /// which sign through ``sign(keyID:message:hash:)``. The signer cannot be serialised, so its
    /// key still never leaves the process; it keeps signing after ``deleteKey(id:)`` (callers
    /// drop it when the key is retired). There is deliberately no default implementation: a
    /// default `async` one would be chosen over a manager's own synchronous method in `await`
    /// calls, silently disabling it.
    func inProcessSigner(keyID: String) async throws(CAError) -> Certificate.PrivateKey?
}

extension KeyManager {
    /// Signs `message` with the key's default hash (``KeyType/defaultHash``).
    public func sign(keyID: String, message: [UInt8]) async throws(CAError) -> [UInt8] {
        let type = try await key(id: keyID).type
        return try await sign(keyID: keyID, message: message, hash: type.defaultHash)
    }
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

    /// Parses PKCS#8 DER or PEM (or PKCS#1 for RSA) of a supported type.
    static func parse(pkcs8DER input: [UInt8], what: String) throws(CAError) -> HeldKey {
        var der = input
        if input.starts(with: Array("-----BEGIN".utf8)) {
            guard let document = try? PEMDocument(pemString: String(decoding: input, as: UTF8.self)) else {
                throw CAError(.corruptFile, "\(what) is not valid PEM (truncated or corrupt?)")
            }
            guard document.discriminator == "PRIVATE KEY" else {
                throw CAError(.corruptFile, "\(what) holds a PEM `\(document.discriminator)`: a PKCS#8 `PRIVATE KEY` is required")
            }
            der = document.derBytes
        }
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

    func sign(_ message: [UInt8], hash: SignatureHash) throws(CAError) -> [UInt8] {
        do {
            switch (self, hash) {
            case (.p256(let k), .sha256): return [UInt8](try k.signature(for: SHA256.hash(data: message)).derRepresentation)
            case (.p256(let k), .sha384): return [UInt8](try k.signature(for: SHA384.hash(data: message)).derRepresentation)
            case (.p256(let k), .sha512): return [UInt8](try k.signature(for: SHA512.hash(data: message)).derRepresentation)
            case (.p384(let k), .sha256): return [UInt8](try k.signature(for: SHA256.hash(data: message)).derRepresentation)
            case (.p384(let k), .sha384): return [UInt8](try k.signature(for: SHA384.hash(data: message)).derRepresentation)
            case (.p384(let k), .sha512): return [UInt8](try k.signature(for: SHA512.hash(data: message)).derRepresentation)
            case (.rsa(let k, _), .sha256): return [UInt8](try k.signature(for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5).rawRepresentation)
            case (.rsa(let k, _), .sha384): return [UInt8](try k.signature(for: SHA384.hash(data: message), padding: .insecurePKCS1v1_5).rawRepresentation)
            case (.rsa(let k, _), .sha512): return [UInt8](try k.signature(for: SHA512.hash(data: message), padding: .insecurePKCS1v1_5).rawRepresentation)
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

    public func keyIDs() -> [String] { held.keys.sorted() }

    public func keys() -> [ManagedKey] {
        held.keys.sorted().map { ManagedKey(id: $0, type: held[$0]!.type, publicKey: held[$0]!.publicKey) }
    }

    public func sign(keyID: String, message: [UInt8], hash: SignatureHash) throws(CAError) -> [UInt8] {
        guard let key = held[keyID] else { throw CAError(.keyNotFound, "no key `\(keyID)`") }
        return try key.sign(message, hash: hash)
    }

    public func inProcessSigner(keyID: String) throws(CAError) -> Certificate.PrivateKey? {
        guard let key = held[keyID] else { throw CAError(.keyNotFound, "no key `\(keyID)`") }
        return Certificate.PrivateKey(InProcessKeySigner(id: keyID, key: key))
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
    public var supportedSignatureAlgorithms: [Certificate.SignatureAlgorithm] {
        SignatureHash.allCases.map { key.type.certificateSignatureAlgorithm(hash: $0) }
    }

    public func signSynchronously(bytes: some DataProtocol, signatureAlgorithm: Certificate.SignatureAlgorithm) throws -> Certificate.Signature {
        throw CAError(.signingFailed, "managed keys sign asynchronously only")
    }

    public func signAsynchronously(bytes: some DataProtocol & Sendable, signatureAlgorithm: Certificate.SignatureAlgorithm) async throws -> Certificate.Signature {
        let hash = try key.type.hash(signing: signatureAlgorithm, keyID: key.id)
        let signature = try await manager.sign(keyID: key.id, message: Array(bytes), hash: hash)
        return try Certificate.Signature(signatureAlgorithm: signatureAlgorithm, signatureBytes: ASN1BitString(bytes: signature[...]))
    }

    public static func == (lhs: ManagedKeySigner, rhs: ManagedKeySigner) -> Bool { lhs.key == rhs.key }
    public func hash(into hasher: inout Hasher) { hasher.combine(key) }

    public static var defaultPEMDiscriminator: String { "PRIVATE KEY" }

    public func serialize(into coder: inout DER.Serializer) throws {
        throw CAError(.signingFailed, "the private key of `\(key.id)` never leaves its key manager")
    }
}

extension KeyType {
    /// The hash of `algorithm` when keys of this type sign with it; otherwise an error naming
    /// the key.
    func hash(signing algorithm: Certificate.SignatureAlgorithm, keyID: String) throws(CAError) -> SignatureHash {
        guard let hash = SignatureHash(algorithm), certificateSignatureAlgorithm(hash: hash) == algorithm else {
            throw CAError(.signingFailed, "key `\(keyID)` (\(rawValue)) does not sign with \(algorithm)")
        }
        return hash
    }
}

/// Signs certificates with a key its manager holds in this process, on the calling thread
/// (``KeyManager/inProcessSigner(keyID:)``); like ``ManagedKeySigner`` it cannot be serialised.
struct InProcessKeySigner: CustomPrivateKey {
    let id: String
    private let key: HeldKey
    let publicKey: Certificate.PublicKey

    init(id: String, key: HeldKey) {
        self.id = id
        self.key = key
        publicKey = key.publicKey
    }

    var defaultSignatureAlgorithm: Certificate.SignatureAlgorithm { key.type.certificateSignatureAlgorithm }
    var supportedSignatureAlgorithms: [Certificate.SignatureAlgorithm] {
        SignatureHash.allCases.map { key.type.certificateSignatureAlgorithm(hash: $0) }
    }

    func signSynchronously(bytes: some DataProtocol, signatureAlgorithm: Certificate.SignatureAlgorithm) throws -> Certificate.Signature {
        let signature = try key.sign(Array(bytes), hash: try key.type.hash(signing: signatureAlgorithm, keyID: id))
        return try Certificate.Signature(signatureAlgorithm: signatureAlgorithm, signatureBytes: ASN1BitString(bytes: signature[...]))
    }

    func signAsynchronously(bytes: some DataProtocol & Sendable, signatureAlgorithm: Certificate.SignatureAlgorithm) async throws -> Certificate.Signature {
        try signSynchronously(bytes: bytes, signatureAlgorithm: signatureAlgorithm)
    }

    static func == (lhs: InProcessKeySigner, rhs: InProcessKeySigner) -> Bool { lhs.id == rhs.id && lhs.publicKey == rhs.publicKey }
    func hash(into hasher: inout Hasher) { hasher.combine(id) }

    static var defaultPEMDiscriminator: String { "PRIVATE KEY" }

    func serialize(into coder: inout DER.Serializer) throws {
        throw CAError(.signingFailed, "the private key of `\(id)` never leaves its key manager")
    }
}
