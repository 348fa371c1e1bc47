import Foundation
import SPIFFEIdentity
import Testing
import WritModel
import WritStore
import WritStorePostgres
import WritStoreSQLite
import WritTestSupport

/// Opens a fresh store of each backend for one test: SQLite in a temporary directory, and a new
/// database on the PostgreSQL server that `scripts/test` starts (`WRIT_TEST_POSTGRES_URL`).
/// A missing PostgreSQL fails the test; it never skips.
enum StoreFixture {
    static let trustDomain = try! TrustDomain(parsing: "example.org")

    static func postgresURL() throws -> PostgresURL {
        guard let text = ProcessInfo.processInfo.environment["WRIT_TEST_POSTGRES_URL"], !text.isEmpty else {
            throw TestEnvironment.MissingPrerequisite("WRIT_TEST_POSTGRES_URL is not set: run the tests through scripts/test, which starts a throwaway PostgreSQL")
        }
        return try PostgresURL(parsing: text)
    }

    /// Runs `body` with a fresh, migrated store.
    static func withStore(_ kind: StoreBackendKind, faults: StoreFaults? = nil,
                          _ body: (SQLDatastore) async throws -> Void) async throws {
        try await withBackend(kind) { backend in
            let store = try await SQLDatastore(backend: backend, faults: faults)
            try await body(store)
        }
    }

    /// Runs `body` with a backend on an empty database.
    static func withBackend(_ kind: StoreBackendKind, _ body: (any SQLStoreBackend) async throws -> Void) async throws {
        switch kind {
        case .sqlite:
            let directory = try TemporaryDirectory(prefix: "writ-store")
            let backend = try await SQLiteBackend.open(path: directory.file("datastore.sqlite3").path)
            do { try await body(backend) } catch {
                await backend.close()
                throw error
            }
            await backend.close()
        case .postgres:
            try await withPostgresDatabase { url in
                try await PostgresBackend.withBackend(url: url) { backend in try await body(backend) }
            }
        }
    }

    /// Creates a database of its own for one test and drops it afterwards.
    static func withPostgresDatabase(_ body: (PostgresURL) async throws -> Void) async throws {
        let admin = try postgresURL()
        let name = "writ_test_" + (0..<12).map { _ in String("abcdefghijklmnopqrstuvwxyz0123456789".randomElement()!) }.joined()
        try await PostgresBackend.withBackend(url: admin) { try await $0.execute("CREATE DATABASE \(name)") }
        do { try await body(admin.with(database: name)) } catch {
            try? await PostgresBackend.withBackend(url: admin) { try await $0.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
            throw error
        }
        try await PostgresBackend.withBackend(url: admin) { try await $0.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
    }

    static func id(_ path: String) -> SPIFFEID { try! SPIFFEID(parsing: "spiffe://example.org\(path)") }
    static func selector(_ text: String) -> Selector { try! Selector(parsing: text) }

    static let agent = id("/writ/agent/join_token/t1")

    static func entry(_ path: String, parent: SPIFFEID = agent, selectors: [String] = ["unix:uid:1000"], owner: String = "team-a",
                      labels: [String: String] = [:], expiresAt: Date? = nil, federatesWith: [String] = [], id: String = RegistrationEntry.newID()) -> RegistrationEntry {
        RegistrationEntry(id: id, spiffeID: Self.id(path), parentID: parent, selectors: selectors.map(selector), x509SVIDTTL: 600,
                          jwtSVIDTTL: 300, dnsNames: ["svc.example.org"], federatesWith: federatesWith.map { try! TrustDomain(parsing: $0) },
                          hint: "h", expiresAt: expiresAt, owner: owner, labels: labels)
    }

    /// A bundle document for a foreign trust domain (the store keeps the bytes it is given).
    static func federatedBundle(_ name: String, _ marker: String = "1") -> FederatedBundleRecord {
        FederatedBundleRecord(trustDomain: try! TrustDomain(parsing: name), document: Array(#"{"keys":[],"spiffe_sequence":\#(marker)}"#.utf8))
    }

    static let now = Date(timeIntervalSince1970: 1_800_000_000)
}
