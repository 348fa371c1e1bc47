#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// One authority as persisted: its schedule slot, its key, and its certificate (CAs) or `kid` (JWT).
public struct AuthorityRecord: Sendable, Hashable, Codable {
    public var slot: AuthoritySlot
    /// The key's id in the key manager.
    public var keyID: String
    /// DER certificate of a root or intermediate.
    public var certificateDER: [UInt8]?
    /// The authority that signed this one (intermediates).
    public var issuerID: String?
    /// The JWT `kid` (RFC 7638 thumbprint) of a JWT key.
    public var jwtKeyID: String?
}

/// Everything the CA needs to restart: authorities, the bundle sequence, the upstream chain.
public struct CAState: Sendable, Hashable, Codable {
    /// Format version of this document.
    public var version: Int = 1
    public var trustDomain: String
    /// `spiffe_sequence` of the bundle this state publishes.
    public var sequence: UInt64
    public var authorities: [AuthorityRecord]
    /// DER certificates of the upstream CA chain (first signs intermediates, last is the
    /// trust anchor), when the root comes from an upstream CA.
    public var upstreamChainDER: [[UInt8]]?
    /// The upstream CA key's id in the key manager.
    public var upstreamKeyID: String?
}

/// Where the CA's state lives. Writes replace the whole state atomically.
public protocol CAStateStore: Sendable {
    /// The saved state, or nil if none was ever saved.
    func load() async throws(CAError) -> CAState?
    /// Replaces the saved state.
    func save(_ state: CAState) async throws(CAError)
}

/// State in memory (tests, and `writ dev` before the datastore lands).
public actor MemoryCAStateStore: CAStateStore {
    private var state: CAState?
    public init() {}
    public func load() -> CAState? { state }
    public func save(_ state: CAState) { self.state = state }
}

/// State in one JSON file, replaced atomically (temp file, fsync, rename, fsync of the
/// directory) and private to this user (0600).
public struct FileCAStateStore: CAStateStore {
    public let path: String

    public init(path: String) { self.path = path }

    public func load() async throws(CAError) -> CAState? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let bytes = try AtomicFile.readPrivate(path)
        do {
            return try JSONDecoder().decode(CAState.self, from: Data(bytes))
        } catch {
            throw CAError(.corruptFile, "CA state file `\(path)` is truncated or corrupt: \(error)")
        }
    }

    public func save(_ state: CAState) async throws(CAError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data: Data
        do { data = try encoder.encode(state) } catch { throw CAError(.io, "encoding CA state failed: \(error)") }
        try AtomicFile.write([UInt8](data), to: path)
    }
}
