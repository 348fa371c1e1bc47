#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import Logging
import SPIFFEBundle
import SPIFFEIdentity
import SwiftASN1
import Synchronization
import WritCA
import WritModel
import WritStore
import X509

/// The trust domain's bundle as every server on one datastore serves it: the union of each
/// server's published roots and JWT keys, with the datastore's `spiffe_sequence`.
///
/// A server publishes its own keys (``publish(from:)``) before it uses them — at start, before
/// any listener opens, and after every rotation step, which prepares a key long before it
/// activates — and learns of other servers' keys from the change feed (``refresh()``).
final class SharedBundle: Sendable {
    let trustDomain: TrustDomain
    /// This server instance's id in the datastore (`<data-dir>/ca/server-id`).
    let serverInstance: String
    private let store: any Datastore
    private let current: Mutex<TrustBundle>
    private let logger: Logger

    private init(trustDomain: TrustDomain, serverInstance: String, store: any Datastore, logger: Logger) {
        self.trustDomain = trustDomain
        self.serverInstance = serverInstance
        self.store = store
        self.logger = logger
        current = Mutex(TrustBundle(trustDomain: trustDomain, x509Authorities: [], jwtAuthorities: [], sequenceNumber: 0))
    }

    /// Publishes `ca`'s keys and loads the shared bundle.
    static func open(ca: CertificateAuthority, store: any Datastore, instanceFile: String, logger: Logger) async throws -> SharedBundle {
        let shared = SharedBundle(trustDomain: ca.trustDomain, serverInstance: try instanceID(at: instanceFile), store: store, logger: logger)
        try await shared.publish(from: ca)
        return shared
    }

    /// The bundle to serve now.
    var bundle: TrustBundle { current.withLock { $0 } }

    /// Replaces this server's contribution with `ca`'s current keys (a no-op in the datastore
    /// when they are unchanged) and adopts the bundle as committed. Returns true when the
    /// served bundle changed.
    @discardableResult
    func publish(from ca: CertificateAuthority) async throws -> Bool {
        let own = await ca.bundle()
        let jwtUntil = await ca.jwtKeyTrustedUntil()
        var authorities: [BundleAuthority] = []
        for certificate in own.x509Authorities {
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            let der = serializer.serializedBytes
            authorities.append(BundleAuthority(serverID: serverInstance, kind: .x509, id: Self.hex(SHA256.hash(data: der)), data: der,
                                               expiresAt: certificate.notValidAfter))
        }
        for key in own.jwtAuthorities {
            var serializer = DER.Serializer()
            try serializer.serialize(key.publicKey.certificatePublicKey)
            authorities.append(BundleAuthority(serverID: serverInstance, kind: .jwt, id: key.keyID, data: serializer.serializedBytes,
                                               expiresAt: jwtUntil[key.keyID] ?? .distantFuture))
        }
        let record: SharedBundleRecord
        do { record = try await store.publishBundleAuthorities(serverID: serverInstance, authorities, at: Date()) } catch {
            throw ServerError("cannot publish this server's keys to the shared bundle: \(error.message)")
        }
        return adopt(record)
    }

    /// Reloads the bundle from the datastore (after a `bundle.update` change). Returns true when
    /// the served bundle changed.
    @discardableResult
    func refresh() async throws -> Bool {
        let record: SharedBundleRecord
        do { record = try await store.sharedBundle() } catch { throw ServerError("cannot read the shared bundle: \(error.message)") }
        return adopt(record)
    }

    /// Serves `record` if it is newer than what is served: a publish and a refresh running at
    /// once may finish in either order, and the older answer must not replace the newer.
    private func adopt(_ record: SharedBundleRecord) -> Bool {
        let bundle = Self.trustBundle(record, trustDomain: trustDomain, logger: logger)
        return current.withLock { current in
            guard (bundle.sequenceNumber ?? 0) > (current.sequenceNumber ?? 0) else { return false }
            current = bundle
            return true
        }
    }

    /// The trust bundle of a stored record: each distinct X.509 authority and JWT key once
    /// (several servers may contribute the same upstream anchor). A contribution that does not
    /// parse is logged and left out rather than poisoning the whole bundle.
    static func trustBundle(_ record: SharedBundleRecord, trustDomain: TrustDomain, logger: Logger) -> TrustBundle {
        var roots: [Certificate] = []
        var jwt: [JWTAuthority] = []
        var seen: Set<String> = []
        for authority in record.authorities where seen.insert("\(authority.kind.rawValue):\(authority.id)").inserted {
            switch authority.kind {
            case .x509:
                guard let certificate = try? Certificate(derEncoded: authority.data) else {
                    logger.error("a shared bundle certificate does not parse; left out", metadata: ["id": "\(authority.id)", "server": "\(authority.serverID)"])
                    continue
                }
                roots.append(certificate)
            case .jwt:
                guard let key = try? Certificate.PublicKey(derEncoded: authority.data), let jwk = try? JWKPublicKey(key) else {
                    logger.error("a shared bundle JWT key does not parse; left out", metadata: ["kid": "\(authority.id)", "server": "\(authority.serverID)"])
                    continue
                }
                jwt.append(JWTAuthority(keyID: authority.id, publicKey: jwk))
            }
        }
        return TrustBundle(trustDomain: trustDomain, x509Authorities: roots, jwtAuthorities: jwt, sequenceNumber: UInt64(max(0, record.sequence)))
    }

    /// Reads this server instance's id, creating a random one (0600) on first start.
    static func instanceID(at path: String) throws -> String {
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard id.count == 32, id.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                throw ServerError("`\(path)` does not hold a server instance id (32 lowercase hex digits): remove it to make a new one")
            }
            return id
        }
        var generator = SystemRandomNumberGenerator()
        let id = hex((0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data((id + "\n").utf8), attributes: [.posixPermissions: 0o600]),
              rename(temporary, path) == 0 else {
            throw ServerError("cannot write the server instance id to `\(path)`")
        }
        return id
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String { AgentListenerFactory.hex(bytes) }
}
