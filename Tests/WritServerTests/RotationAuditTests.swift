import Crypto
import Foundation
import Logging
import MerkleLog
import SPIFFEIdentity
import Synchronization
import Testing
import WritAudit
import WritCA
@testable import WritServer
import WritStore
import WritStoreSQLite
import WritTestSupport

/// The server's scheduled CA rotation (`IdentityMaintainer`) writes one audit event per step,
/// with the server as actor; steps the log refused are recorded on a later pass.
@Suite struct RotationAuditTests {
    @Test func scheduledRotationStepsAreRecordedAndRetriedWhenTheLogRefusesThem() async throws {
        let directory = try TemporaryDirectory(prefix: "writ-rotation-audit")
        let refusing = Refusal()
        let backend = try await SQLiteBackend.open(path: directory.file("datastore.sqlite3").path)
        defer { Task { await backend.close(); _ = directory } }
        let store = try await SQLDatastore(backend: backend, faults: StoreFaults { point throws(StoreError) in
            if point == .auditInsert, refusing.isOn { throw StoreError(.injectedFault, "the log refuses") }
        })
        let origin = "example.org/writ/audit"
        let log = AuditLog(store: store, signer: try NoteSigner(name: origin, privateKey: Curve25519.Signing.PrivateKey()),
                           configuration: .init(origin: origin), logger: Logger(label: "test"))
        let clock = Clock(Date())
        let ca = try await CertificateAuthority(trustDomain: try TrustDomain(parsing: "example.org"), keyManager: MemoryKeyManager(),
                                                store: MemoryCAStateStore(), now: { clock.now })
        let server = try SPIFFEID(parsing: "spiffe://example.org/writ/server")
        var unrecorded: [AuditEvent] = []

        // Nothing is due: nothing is recorded.
        #expect(try await IdentityMaintainer.rotate(ca, server: server, audit: log, unrecorded: &unrecorded, logger: Logger(label: "test")).isEmpty)
        #expect(try await store.auditSize() == 0)

        // Past half the intermediate's and the JWT key's life, successors are prepared, with the log refusing.
        clock.advance(by: 13 * 3600)
        refusing.isOn = true
        let prepared = try await IdentityMaintainer.rotate(ca, server: server, audit: log, unrecorded: &unrecorded, logger: Logger(label: "test"))
        #expect(!prepared.isEmpty)
        #expect(unrecorded.count == prepared.count, "the refused events are kept")
        #expect(try await store.auditSize() == 0)

        // Past the old ones' end, the successors are activated; the log takes everything now.
        clock.advance(by: 12 * 3600)
        refusing.isOn = false
        let activated = try await IdentityMaintainer.rotate(ca, server: server, audit: log, unrecorded: &unrecorded, logger: Logger(label: "test"))
        #expect(!activated.isEmpty)
        #expect(unrecorded.isEmpty)
        let stored = try await store.auditEvents(0..<(try await store.auditSize()))
        let expected: [(String, String)] = (prepared + activated).map { (action: RotationAction) -> (String, String) in
            switch action {
            case .prepare(let kind): ("authority.prepare", "authority_kind:\(kind.rawValue)")
            case .activate(let id): ("authority.activate", "authority:\(id)")
            case .remove(let id): ("authority.remove", "authority:\(id)")
            }
        }
        #expect(stored.map(\.type) == expected.map(\.0))
        #expect(stored.map(\.target) == expected.map(\.1))
        #expect(stored.allSatisfy { $0.actor == server.uri })
        #expect(stored.allSatisfy { String(decoding: $0.body, as: UTF8.self).contains(#""reason":"scheduled rotation""#) })
        await log.flush()  // the checkpoint due after these events, before the store closes
    }
}

/// A switch the store's fault hook reads.
private final class Refusal: Sendable {
    private let state = Mutex(false)
    var isOn: Bool {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}

/// A clock the CA reads and the test moves.
private final class Clock: Sendable {
    private let time: Mutex<Date>
    init(_ start: Date) { time = Mutex(start) }
    var now: Date { time.withLock { $0 } }
    func advance(by seconds: TimeInterval) { time.withLock { $0 = $0.addingTimeInterval(seconds) } }
}
