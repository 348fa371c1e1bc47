#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import NIOCore
import NIOPosix
import SQLiteKit
import SQLiteNIO
import SQLKit
import WritStore

/// The SQLite backend: one file, WAL journal, `synchronous=FULL` (a commit is on disk before it
/// is acknowledged), foreign keys on, a 32 MiB page cache, statement journals in memory and
/// checkpoints every 40 MiB of WAL, one connection whose transactions run one at a time, and a
/// second one for transactions that run in one piece (``writeSynchronously(_:)``).
/// Write transactions also take a fair writer lock shared with every other process using the
/// file (``SQLiteWriterLock``), so two writers on one file take turns rather than one starving.
public final class SQLiteBackend: SQLStoreBackend {
    public let kind = StoreBackendKind.sqlite
    /// The database file.
    public let path: String
    private let connection: SQLiteConnection
    private let writerLock: SQLiteWriterLock
    private let mutex = AsyncMutex()
    private let synchronous: SQLiteSyncConnection
    private let synchronousMutex = AsyncMutex()

    private init(path: String, connection: SQLiteConnection, writerLock: SQLiteWriterLock, synchronous: SQLiteSyncConnection) {
        self.path = path
        self.connection = connection
        self.writerLock = writerLock
        self.synchronous = synchronous
    }

    /// Opens (creating if needed, mode 0600) the database file at `path`, with its writer lock
    /// `<path>-writer.lock` beside it. A write waits at most `busyTimeout` for another writer
    /// (on the writer lock, then on SQLite's own lock) before failing as unavailable.
    public static func open(path: String, busyTimeout: Duration = .seconds(10),
                            logger: Logger = Logger(label: "writ.store.sqlite")) async throws(StoreError) -> SQLiteBackend {
        let directory = (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.isEmpty ? "." : directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw StoreError(.unavailable, "cannot open the SQLite datastore `\(path)`: its directory does not exist")
        }
        let existed = FileManager.default.fileExists(atPath: path)
        let writerLock = try SQLiteWriterLock(databasePath: path, timeout: busyTimeout)
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw StoreError(.unavailable, "cannot open the SQLite datastore `\(path)`", cause: error)
        }
        let milliseconds = max(0, min(busyTimeout.components.seconds * 1000 + busyTimeout.components.attoseconds / 1_000_000_000_000_000, Int64(Int32.max)))
        do {
            let db = connection.sql()
            let mode = try await db.raw("PRAGMA journal_mode = WAL").first()?.decode(column: "journal_mode", as: String.self)
            guard mode?.lowercased() == "wal" else {
                throw StoreError(.unavailable, "the SQLite datastore `\(path)` cannot use a WAL journal (got `\(mode ?? "nothing")`)")
            }
            try await db.raw("PRAGMA synchronous = FULL").run()
            try await db.raw("PRAGMA foreign_keys = ON").run()
            // A multi-row INSERT keeps a statement journal (to undo just that statement on a
            // constraint error): in memory rather than a temporary file. A page cache of
            // 32 MiB (instead of 2) holds an audit batch's index pages without spilling them
            // into the WAL before commit. Checkpoints every 10,000 WAL pages (40 MiB) instead
            // of 1,000: a page that many commits rewrite (an index's hot pages) is copied
            // back to the database once per checkpoint, and the commit that runs the
            // checkpoint stalls a tenth as often.
            try await db.raw("PRAGMA temp_store = MEMORY").run()
            try await db.raw("PRAGMA cache_size = -32768").run()
            try await db.raw("PRAGMA wal_autocheckpoint = 10000").run()
            try await db.raw("PRAGMA busy_timeout = \(unsafeRaw: String(milliseconds))").run()
            if !existed { _ = chmod(path, 0o600) }
        } catch {
            try? await connection.close()
            if let error = error as? StoreError { throw error }
            throw StoreError(.unavailable, "the file `\(path)` is not an SQLite database or cannot be configured", cause: error)
        }
        let synchronous: SQLiteSyncConnection
        do {
            synchronous = try SQLiteSyncConnection(path: path, busyTimeoutMilliseconds: milliseconds)
        } catch {
            try? await connection.close()
            throw StoreError(.unavailable, "cannot open a second connection to the SQLite datastore `\(path)`", cause: error)
        }
        return SQLiteBackend(path: path, connection: connection, writerLock: writerLock, synchronous: synchronous)
    }

    public func write<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
        try await mutex.withLock {
            let held = try await writerLock.acquire()
            defer { held.release() }
            return try await connection.sql().runTransaction(begin: "BEGIN IMMEDIATE", body)
        }
    }

    /// Runs `body` as one job on SQLiteNIO's thread pool, on the second connection, between
    /// `BEGIN IMMEDIATE` and `COMMIT`, holding the writer lock that ``write(_:)`` takes too.
    public func writeSynchronously<T: Sendable>(_ body: @escaping @Sendable (any SQLSyncTransaction) throws -> T) async throws -> T? {
        try await synchronousMutex.withLock {
            let held = try await writerLock.acquire()
            defer { held.release() }
            return try await NIOThreadPool.singleton.runIfActive { [synchronous] in try synchronous.transaction(body) }
        }
    }

    /// Binds the values straight to SQLite (no SQLKit statement building or value encoding),
    /// on the connection whose write transaction is open, in statements of at most 32,766
    /// parameters (SQLite's limit).
    public func insert(into table: String, columns: [String], rows: [[SQLRowValue]], in db: any SQLDatabase) async throws {
        guard !columns.isEmpty, !rows.isEmpty else { return }
        let perStatement = max(1, 32_766 / columns.count)
        let head = "INSERT INTO \"\(table)\" (" + columns.map { "\"\($0)\"" }.joined(separator: ", ") + ") VALUES "
        let tuple = "(" + Array(repeating: "?", count: columns.count).joined(separator: ", ") + ")"
        for start in stride(from: 0, to: rows.count, by: perStatement) {
            let chunk = rows[start..<min(start + perStatement, rows.count)]
            var binds: [SQLiteData] = []
            binds.reserveCapacity(chunk.count * columns.count)
            for row in chunk {
                guard row.count == columns.count else {
                    throw StoreError(.invalidArgument, "a row for `\(table)` has \(row.count) values for \(columns.count) columns")
                }
                for value in row {
                    switch value {
                    case .integer(let number): binds.append(.integer(SQLiteInt64(number)))
                    case .text(let text): binds.append(.text(text))
                    case .blob(let bytes): binds.append(.blob(ByteBuffer(bytes: bytes)))
                    }
                }
            }
            _ = try await connection.query(head + Array(repeating: tuple, count: chunk.count).joined(separator: ", "), binds)
        }
    }

    public func read<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
        try await mutex.withLock {
            try await connection.sql().runTransaction(begin: "BEGIN DEFERRED", body)
        }
    }

    /// `VACUUM INTO`: a consistent, compacted copy made while the database stays in use.
    public func backup(to path: String) async throws {
        let directory = (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw StoreError(.invalidArgument, "invalid backup path `\(path)`: the directory `\(directory)` does not exist")
        }
        // SQLite writes into an empty file: create it first, readable by this user only.
        let descriptor = Glibc.open(path, O_CREAT | O_EXCL | O_WRONLY, 0o600)
        guard descriptor >= 0 else {
            throw StoreError(.invalidArgument, "cannot create the backup `\(path)`: \(String(cString: strerror(errno)))")
        }
        _ = Glibc.close(descriptor)
        try await mutex.withLock {
            try await connection.sql().raw("VACUUM INTO \(bind: path)").run()
        }
    }

    /// `PRAGMA integrity_check`: `ok` for a sound file, else SQLite's list of problems.
    public func integrityCheck() async throws -> String {
        try await mutex.withLock {
            let rows = try await connection.sql().raw("PRAGMA integrity_check").all()
            return try rows.map { try $0.decode(column: "integrity_check", as: String.self) }.joined(separator: "\n")
        }
    }

    public func close() async {
        try? await synchronousMutex.withLock { synchronous.close() }
        try? await connection.close()
    }
}
