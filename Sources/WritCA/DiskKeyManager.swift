#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import X509

/// Keys kept as PKCS#8 files of mode 0600, one per key (`<dir>/<id>.key`; written as DER, read
/// as DER or PEM), written atomically (temp file, fsync, rename, fsync of the directory). A key file readable by others, owned by another user, truncated or corrupt is
/// refused with an error naming the file.
public actor DiskKeyManager: KeyManager {
    /// The directory holding the key files (created 0700 if missing).
    public let directory: String
    private var cache: [String: HeldKey] = [:]

    /// Opens (or creates) the key directory.
    public init(directory: String) throws(CAError) {
        self.directory = directory
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw CAError(.io, "cannot create key directory `\(directory)`: \(error)")
            }
        } else if !isDirectory.boolValue {
            throw CAError(.io, "`\(directory)` is not a directory")
        } else {
            // Temp files of writes a crash interrupted never became keys: drop them.
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            for name in names where name.hasPrefix(".") && name.contains(".key.tmp-") {
                unlink("\(directory)/\(name)")
            }
        }
    }

    static func validID(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 128 && id.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F }
    }

    private func path(_ id: String) throws(CAError) -> String {
        guard Self.validID(id) else { throw CAError(.invalidRequest, "key id `\(id)` may only hold letters, digits, '-' and '_'") }
        return "\(directory)/\(id).key"
    }

    private func load(_ id: String) throws(CAError) -> HeldKey {
        if let key = cache[id] { return key }
        let file = try path(id)
        let bytes = try AtomicFile.readPrivate(file)
        let key = try HeldKey.parse(pkcs8DER: bytes, what: "key file `\(file)`")
        cache[id] = key
        return key
    }

    public func generateKey(id: String, type: KeyType) throws(CAError) -> ManagedKey {
        let file = try path(id)
        guard !FileManager.default.fileExists(atPath: file) else { throw CAError(.keyExists, "key `\(id)` exists already") }
        let key = try HeldKey.generate(type)
        try AtomicFile.write(key.pkcs8DER, to: file)
        cache[id] = key
        return ManagedKey(id: id, type: type, publicKey: key.publicKey)
    }

    public func importKey(id: String, pkcs8DER: [UInt8]) throws(CAError) -> ManagedKey {
        let file = try path(id)
        guard !FileManager.default.fileExists(atPath: file) else { throw CAError(.keyExists, "key `\(id)` exists already") }
        let key = try HeldKey.parse(pkcs8DER: pkcs8DER, what: "imported key `\(id)`")
        try AtomicFile.write(key.pkcs8DER, to: file)
        cache[id] = key
        return ManagedKey(id: id, type: key.type, publicKey: key.publicKey)
    }

    public func key(id: String) throws(CAError) -> ManagedKey {
        let key = try load(id)
        return ManagedKey(id: id, type: key.type, publicKey: key.publicKey)
    }

    public func keyIDs() throws(CAError) -> [String] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw CAError(.io, "cannot list `\(directory)`: \(error)")
        }
        return names.filter { $0.hasSuffix(".key") && !$0.hasPrefix(".") }.map { String($0.dropLast(4)) }
            .filter(Self.validID).sorted()
    }

    public func keys() throws(CAError) -> [ManagedKey] {
        var out: [ManagedKey] = []
        for id in try keyIDs() {
            out.append(try key(id: id))
        }
        return out
    }

    public func sign(keyID: String, message: [UInt8], hash: SignatureHash) throws(CAError) -> [UInt8] {
        try load(keyID).sign(message, hash: hash)
    }

    public func inProcessSigner(keyID: String) throws(CAError) -> Certificate.PrivateKey? {
        Certificate.PrivateKey(InProcessKeySigner(id: keyID, key: try load(keyID)))
    }

    public func deleteKey(id: String) throws(CAError) {
        let file = try path(id)
        cache[id] = nil
        if unlink(file) != 0 && errno != ENOENT {
            throw CAError(.io, "cannot delete `\(file)`: \(String(cString: strerror(errno)))")
        }
        try AtomicFile.syncDirectory(directory)
    }
}
