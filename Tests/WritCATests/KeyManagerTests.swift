#if canImport(Glibc)
import Glibc
#endif
import Crypto
import _CryptoExtras
import Foundation
import Testing
import WritTestSupport
import X509
@testable import WritCA

/// Checks a DER signature from a key manager with the public key alone, over the hash given
/// (default: the key type's own).
func verifies(_ signature: [UInt8], _ message: [UInt8], _ key: ManagedKey, hash: SignatureHash? = nil) -> Bool {
    let digest: any Digest
    switch hash ?? key.type.defaultHash {
    case .sha256: digest = SHA256.hash(data: message)
    case .sha384: digest = SHA384.hash(data: message)
    case .sha512: digest = SHA512.hash(data: message)
    }
    func check<D: Digest>(_ d: D) -> Bool {
        if let p256 = P256.Signing.PublicKey(key.publicKey), let sig = try? P256.Signing.ECDSASignature(derRepresentation: signature) {
            return p256.isValidSignature(sig, for: d)
        }
        if let p384 = P384.Signing.PublicKey(key.publicKey), let sig = try? P384.Signing.ECDSASignature(derRepresentation: signature) {
            return p384.isValidSignature(sig, for: d)
        }
        if let rsa = _RSA.Signing.PublicKey(key.publicKey) {
            return rsa.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: d, padding: .insecurePKCS1v1_5)
        }
        return false
    }
    return check(digest)
}

/// One conformance suite for every key manager.
@Suite struct KeyManagerConformanceTests {
    enum Backend: String, CaseIterable, Sendable { case memory, disk }

    final class Subject: @unchecked Sendable {
        let manager: any KeyManager
        let dir: TemporaryDirectory
        init(_ backend: Backend) throws {
            dir = try TemporaryDirectory(prefix: "writ-keys")
            switch backend {
            case .memory: manager = MemoryKeyManager()
            case .disk: manager = try DiskKeyManager(directory: dir.path + "/keys")
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func generatesAndSignsEveryKeyType(_ backend: Backend) async throws {
        let s = try Subject(backend)
        for type in KeyType.allCases {
            let key = try await s.manager.generateKey(id: "k-\(type.rawValue)", type: type)
            #expect(key.type == type)
            #expect(try await s.manager.key(id: key.id) == key)
            let message = Array("message for \(type.rawValue)".utf8)
            let signature = try await s.manager.sign(keyID: key.id, message: message)
            #expect(verifies(signature, message, key), "\(backend) \(type.rawValue) signature does not verify")
            #expect(!verifies(signature, message + [0], key))
        }
        #expect(try await s.manager.keys().map(\.id) == KeyType.allCases.map { "k-\($0.rawValue)" }.sorted())
    }

    /// The in-process signer signs with the managed key itself (for every key type and each
    /// algorithm of it), refuses an algorithm of another key type, cannot be serialised, and an
    /// unknown key has none.
    @Test(arguments: Backend.allCases)
    func theInProcessSignerSignsWithTheKeyAndNeverSerialises(_ backend: Backend) async throws {
        let s = try Subject(backend)
        for type in KeyType.allCases {
            let key = try await s.manager.generateKey(id: "k-\(type.rawValue)", type: type)
            let signer = try #require(try await s.manager.inProcessSigner(keyID: key.id), "\(backend) has no in-process signer")
            #expect(signer.publicKey == key.publicKey)
            let message = Array("message for \(type.rawValue)".utf8)
            for hash in SignatureHash.allCases {
                let algorithm = type.certificateSignatureAlgorithm(hash: hash)
                let signature = try signer.sign(bytes: message, signatureAlgorithm: algorithm)
                #expect(key.publicKey.isValidSignature(signature.rawRepresentation, for: message, signatureAlgorithm: algorithm), "\(backend) \(type.rawValue) \(hash)")
            }
            let foreign: Certificate.SignatureAlgorithm = type == .rsa2048 || type == .rsa4096 ? .ecdsaWithSHA256 : .sha256WithRSAEncryption
            #expect(throws: (any Error).self) { try signer.sign(bytes: message, signatureAlgorithm: foreign) }
            #expect(throws: (any Error).self) { try signer.serializeAsPEM() }
        }
        await #expect(throws: CAError.self) { try await s.manager.inProcessSigner(keyID: "missing") }
    }

    @Test(arguments: Backend.allCases)
    func signsWithEveryHash(_ backend: Backend) async throws {
        let s = try Subject(backend)
        for type in [KeyType.ecP256, .ecP384, .rsa2048] {
            let key = try await s.manager.generateKey(id: "h-\(type.rawValue)", type: type)
            for hash in SignatureHash.allCases {
                let message = Array("hash \(hash.rawValue)".utf8)
                let signature = try await s.manager.sign(keyID: key.id, message: message, hash: hash)
                #expect(verifies(signature, message, key, hash: hash), "\(backend) \(type.rawValue) \(hash.rawValue)")
                // The hash really is the one asked for: checked over another, it fails.
                let other: SignatureHash = hash == .sha256 ? .sha512 : .sha256
                #expect(!verifies(signature, message, key, hash: other), "\(backend) \(type.rawValue) \(hash.rawValue) verified as \(other.rawValue)")
            }
        }
        #expect(try await s.manager.keyIDs() == ["h-ec-p256", "h-ec-p384", "h-rsa-2048"])
    }

    @Test(arguments: Backend.allCases)
    func importsPEMKeys(_ backend: Backend) async throws {
        let s = try Subject(backend)
        let p256 = P256.Signing.PrivateKey()
        let key = try await s.manager.importKey(id: "pem", pkcs8DER: Array(p256.pemRepresentation.utf8))
        #expect(key.publicKey == Certificate.PublicKey(p256.publicKey))
        let signature = try await s.manager.sign(keyID: "pem", message: [9])
        #expect(verifies(signature, [9], key))
        // A PEM of another kind is refused with the reason.
        do {
            _ = try await s.manager.importKey(id: "cert", pkcs8DER: Array("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n".utf8))
            Issue.record("imported a certificate PEM as a key")
        } catch {
            #expect(error.code == .corruptFile)
            #expect(error.message.contains("CERTIFICATE"), "\(error.message)")
        }
    }

    @Test(arguments: Backend.allCases)
    func refusesDuplicatesAndUnknownIDs(_ backend: Backend) async throws {
        let s = try Subject(backend)
        _ = try await s.manager.generateKey(id: "a", type: .ecP256)
        await #expect(throws: CAError.self) { try await s.manager.generateKey(id: "a", type: .ecP384) }
        do {
            _ = try await s.manager.sign(keyID: "missing", message: [1])
            Issue.record("signed with a missing key")
        } catch {
            #expect(error.code == .keyNotFound)
        }
        try await s.manager.deleteKey(id: "a")
        await #expect(throws: CAError.self) { try await s.manager.key(id: "a") }
        try await s.manager.deleteKey(id: "a")  // idempotent
    }

    @Test(arguments: Backend.allCases)
    func importsPKCS8Keys(_ backend: Backend) async throws {
        let s = try Subject(backend)
        let p384 = P384.Signing.PrivateKey()
        let key = try await s.manager.importKey(id: "upstream", pkcs8DER: [UInt8](p384.derRepresentation))
        #expect(key.type == .ecP384)
        #expect(key.publicKey == Certificate.PublicKey(p384.publicKey))
        do {
            _ = try await s.manager.importKey(id: "junk", pkcs8DER: [0x30, 0x03, 0x02, 0x01, 0x00])
            Issue.record("imported junk")
        } catch {
            #expect(error.code == .corruptFile)
        }
    }

    @Test(arguments: Backend.allCases)
    func signsCertificatesThroughSwiftCertificates(_ backend: Backend) async throws {
        let s = try Subject(backend)
        let key = try await s.manager.generateKey(id: "ca", type: .ecP256)
        let signer = Certificate.PrivateKey(ManagedKeySigner(key: key, manager: s.manager))
        let name = try DistinguishedName { CommonName("managed") }
        let certificate = try await Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey, notValidBefore: Date(),
            notValidAfter: Date() + 60, issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: Certificate.Extensions(), issuerAsyncPrivateKey: signer)
        #expect(key.publicKey.isValidSignature(certificate.signature, for: certificate))
        // The private key cannot be serialised out of the manager.
        #expect(throws: (any Error).self) { _ = try signer.serializeAsPEM() }
    }
}

@Suite(.serialized) struct DiskKeyManagerTests {
    @Test func keysSurviveARestart() async throws {
        let dir = try TemporaryDirectory(prefix: "writ-disk")
        let first = try DiskKeyManager(directory: dir.path)
        let created = try await first.generateKey(id: "root", type: .ecP256)
        let second = try DiskKeyManager(directory: dir.path)
        #expect(try await second.key(id: "root") == created)
        let signature = try await second.sign(keyID: "root", message: [1, 2, 3])
        #expect(verifies(signature, [1, 2, 3], created))
        var info = stat()
        #expect(stat(dir.path + "/root.key", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        // No temp files left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["root.key"])
    }

    func expectLoadError(_ dir: TemporaryDirectory, _ code: CAError.Code, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let manager = try DiskKeyManager(directory: dir.path)
        do {
            _ = try await manager.key(id: "root")
            Issue.record("a bad key file loaded", sourceLocation: sourceLocation)
        } catch {
            #expect(error.code == code, "\(error.message)", sourceLocation: sourceLocation)
            #expect(error.message.contains(fragment), "\(error.message)", sourceLocation: sourceLocation)
        }
    }

    @Test func wideModeIsRefused() async throws {
        let dir = try TemporaryDirectory(prefix: "writ-disk")
        _ = try await DiskKeyManager(directory: dir.path).generateKey(id: "root", type: .ecP256)
        chmod(dir.path + "/root.key", 0o644)
        try await expectLoadError(dir, .insecureKeyFile, "644")
    }

    @Test func otherOwnerIsRefused() async throws {
        try #require(geteuid() == 0, "this test needs root to chown a file to another user (scripts/test runs as root in CI)")
        let dir = try TemporaryDirectory(prefix: "writ-disk")
        _ = try await DiskKeyManager(directory: dir.path).generateKey(id: "root", type: .ecP256)
        #expect(chown(dir.path + "/root.key", 65534, 65534) == 0)
        try await expectLoadError(dir, .insecureKeyFile, "uid 65534")
    }

    @Test func truncationIsRefused() async throws {
        let dir = try TemporaryDirectory(prefix: "writ-disk")
        _ = try await DiskKeyManager(directory: dir.path).generateKey(id: "root", type: .ecP256)
        let path = dir.path + "/root.key"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: path))
        try await expectLoadError(dir, .corruptFile, "root.key")
    }

    @Test func corruptionIsRefused() async throws {
        let dir = try TemporaryDirectory(prefix: "writ-disk")
        _ = try await DiskKeyManager(directory: dir.path).generateKey(id: "root", type: .ecP256)
        let path = dir.path + "/root.key"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        for i in stride(from: 0, to: bytes.count, by: 7) { bytes[i] ^= 0x5A }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        try await expectLoadError(dir, .corruptFile, "root.key")
    }

    @Test func emptyFileIsRefused() async throws {
        let dir = try TemporaryDirectory(prefix: "writ-disk")
        _ = FileManager.default.createFile(atPath: dir.path + "/root.key", contents: Data(), attributes: [.posixPermissions: 0o600])
        try await expectLoadError(dir, .corruptFile, "root.key")
    }

    @Test func pemKeyFileLoads() async throws {
        let dir = try TemporaryDirectory(prefix: "writ-disk")
        let p384 = P384.Signing.PrivateKey()
        #expect(FileManager.default.createFile(atPath: dir.path + "/root.key", contents: Data(p384.pemRepresentation.utf8),
                                               attributes: [.posixPermissions: 0o600]))
        let key = try await DiskKeyManager(directory: dir.path).key(id: "root")
        #expect(key.type == .ecP384)
        #expect(key.publicKey == Certificate.PublicKey(p384.publicKey))
    }

    @Test func leftoverTempFilesAreIgnoredAndCleaned() async throws {
        let dir = try TemporaryDirectory(prefix: "writ-disk")
        _ = try await DiskKeyManager(directory: dir.path).generateKey(id: "root", type: .ecP256)
        // What a crash between create and rename leaves: a partial temp file.
        #expect(FileManager.default.createFile(atPath: dir.path + "/.next.key.tmp-1234", contents: Data([0x30, 0x81]),
                                               attributes: [.posixPermissions: 0o600]))
        let manager = try DiskKeyManager(directory: dir.path)
        #expect(try await manager.keyIDs() == ["root"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["root.key"])
    }

    @Test func badKeyIDsAreRefused() async throws {
        let dir = try TemporaryDirectory(prefix: "writ-disk")
        let manager = try DiskKeyManager(directory: dir.path)
        await #expect(throws: CAError.self) { try await manager.generateKey(id: "../escape", type: .ecP256) }
    }
}
