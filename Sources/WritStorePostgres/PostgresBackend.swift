import Foundation
import Logging
import NIOSSL
import PostgresKit
import PostgresNIO
import SQLKit
import WritStore

/// The PostgreSQL backend: a connection pool (PostgresNIO's `PostgresClient`); write
/// transactions take one transaction-scoped advisory lock, so writes from every server sharing
/// the database are serialized and revisions follow commit order.
public final class PostgresBackend: SQLStoreBackend {
    public let kind = StoreBackendKind.postgres
    /// Where the database is (password redacted in descriptions).
    public let url: PostgresURL
    private let client: PostgresClient

    /// The advisory lock key every Writ write transaction takes (`writ` in ASCII).
    static let writeLockKey: Int64 = 0x7772_6974

    private init(url: PostgresURL, client: PostgresClient) {
        self.url = url
        self.client = client
    }

    /// Runs `body` with a backend connected to `url`; the pool runs while `body` runs and is
    /// shut down when it returns.
    public static func withBackend<T: Sendable>(url: PostgresURL, logger: Logger = Logger(label: "writ.store.postgres"),
                                                _ body: (PostgresBackend) async throws -> T) async throws -> T {
        let client = PostgresClient(configuration: url.clientConfiguration, backgroundLogger: logger)
        let backend = PostgresBackend(url: url, client: client)
        return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
            group.addTask { await client.run() }
            // Let the pool start before the first lease (PostgresNIO warns about leases before `run()`).
            for _ in 0..<8 { await Task.yield() }
            do {
                let result = try await body(backend)
                group.cancelAll()
                return result
            } catch {
                group.cancelAll()
                throw error
            }
        }
    }

    public func write<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
        try await client.withConnection { connection in
            try await connection.sql().runTransaction(begin: "BEGIN ISOLATION LEVEL READ COMMITTED") { db in
                try await db.raw("SELECT pg_advisory_xact_lock(\(bind: Self.writeLockKey))").run()
                return try await body(db)
            }
        }
    }

    public func read<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
        try await client.withConnection { connection in
            try await connection.sql().runTransaction(begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body)
        }
    }

    /// Runs one statement outside a transaction (`CREATE DATABASE` cannot run inside one).
    public func execute(_ statement: String) async throws {
        try await client.withConnection { connection in
            try await connection.sql().raw(SQLQueryString(statement)).run()
        }
    }

    public func backup(to path: String) async throws {
        throw StoreError(.invalidArgument, "a PostgreSQL datastore is backed up with its own tools: `pg_dump --format=custom` (see docs/datastore.md)")
    }

    public func close() async {}
}

/// A `postgres://user:password@host:port/database?sslmode=…` URL, checked. `host` may also be a
/// query parameter naming a Unix socket directory (`?host=/run/postgresql`), as libpq allows.
public struct PostgresURL: Sendable, Hashable, CustomStringConvertible {
    /// How TLS is used, as libpq's `sslmode` says.
    public enum TLSMode: String, Sendable, Hashable {
        case disable, prefer, require
    }

    public var host: String
    public var port: Int
    /// A Unix socket directory; when set, `host` is ignored.
    public var socketDirectory: String?
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    /// Parses the URL; the error names the part that is wrong (never the password).
    public init(parsing text: String) throws(StoreError) {
        guard let components = URLComponents(string: text), let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme) else {
            throw StoreError(.invalidArgument, "invalid datastore URL: a PostgreSQL URL starts with `postgres://`")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        for key in query.keys where !["sslmode", "host"].contains(key) {
            throw StoreError(.invalidArgument, "invalid datastore URL: unknown parameter `\(key)` (known: sslmode, host)")
        }
        host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
        port = components.port ?? 5432
        socketDirectory = query["host"].flatMap { $0.hasPrefix("/") ? $0 : nil }
        user = components.user ?? "postgres"
        password = components.password
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? user : path
        guard let mode = TLSMode(rawValue: query["sslmode"] ?? (socketDirectory != nil || ["localhost", "127.0.0.1", "::1"].contains(host) ? "disable" : "prefer")) else {
            throw StoreError(.invalidArgument, "invalid datastore URL: sslmode must be disable, prefer or require")
        }
        tls = mode
    }

    /// The same server, another database.
    public func with(database: String) -> PostgresURL {
        var copy = self
        copy.database = database
        return copy
    }

    var clientConfiguration: PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let socketDirectory {
            configuration = .init(unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            let tlsSetting: PostgresClient.Configuration.TLS
            switch tls {
            case .disable: tlsSetting = .disable
            case .prefer: tlsSetting = .prefer(.makeClientConfiguration())
            case .require: tlsSetting = .require(.makeClientConfiguration())
            }
            configuration = .init(host: host, port: port, username: user, password: password, database: database, tls: tlsSetting)
        }
        configuration.options.maximumConnections = 16
        return configuration
    }

    /// The URL with the password replaced by `***`.
    public var description: String {
        let credentials = user + (password == nil ? "" : ":***")
        let location = socketDirectory.map { "/\(database)?host=\($0)" } ?? "\(host):\(port)/\(database)"
        return "postgres://\(credentials)@\(location.hasPrefix("/") ? location : location)"
    }
}
