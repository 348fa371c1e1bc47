import Crypto
import Foundation
import Logging
import MerkleLog
import WritAudit
import WritCA
import WritStore

/// The server's side of the audit log: its own Ed25519 log key (`<data-dir>/audit-log.key`,
/// 0600, in Go's `PRIVATE+KEY+…` note-signer form, made at first start), registered in the
/// datastore so that every server's key — retired ones included — is listed, and the
/// ``AuditLog`` that signs checkpoints with it.
enum ServerAudit {
    static let keyFile = "audit-log.key"

    static func open(options: ServerOptions, store: any Datastore, serverInstance: String, logger: Logger) async throws -> AuditLog {
        let origin = "\(options.trustDomain.name)/writ/audit"
        let path = (options.dataDirectory as NSString).appendingPathComponent(keyFile)
        let signer: NoteSigner
        if let text = FileManager.default.contents(atPath: path) {
            signer = try NoteSigner(encoded: String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
            guard signer.name == origin else {
                throw AuditError("`\(path)` is a log key for `\(signer.name)`, not `\(origin)`")
            }
        } else {
            signer = try NoteSigner(name: origin, privateKey: Curve25519.Signing.PrivateKey())
            try AtomicFile.write(Array((signer.encoded + "\n").utf8), to: path, mode: 0o600)
            logger.notice("audit log key created", metadata: ["path": "\(path)", "verifier_key": "\(signer.verifier.encoded)"])
        }
        _ = try await store.registerAuditLogKey(AuditLogKeyRecord(verifierKey: signer.verifier.encoded, serverID: serverInstance, createdAt: Date()))
        let log = AuditLog(store: store, signer: signer, configuration: .init(origin: origin), logger: logger)
        try await log.checkpointNow()
        return log
    }
}

extension AdminCaller {
    /// The caller as an audit actor (uid, gid and pid from SO_PEERCRED, or the SVID's ID).
    var auditActor: AuditActor {
        switch self {
        case .unix(let peer): .unix(uid: peer.uid, gid: peer.gid, pid: peer.pid)
        case .svid(let id): .spiffe(id)
        }
    }
}
