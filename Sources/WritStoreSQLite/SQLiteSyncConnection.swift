import Foundation
import VaporCSQLite
import WritStore

/// A second connection to the datastore file, driven through SQLite's C interface (the library
/// SQLiteNIO links, so one SQLite in the process), for write transactions that run in one piece
/// on a thread that may block (``SQLiteBackend/writeSynchronously(_:)``).
///
/// SQLiteNIO runs each statement as a job of its own on its thread pool and hands the result
/// back through an event loop, and prepares every statement again each time. An audit batch
/// made eight such round trips, each waiting for a thread on a busy machine, and parsed an
/// `INSERT` of 7,000 placeholders per batch. Here a transaction is one job and each statement
/// is prepared once and kept.
///
/// Not thread-safe by itself: ``SQLiteBackend`` runs one transaction at a time on it.
final class SQLiteSyncConnection: @unchecked Sendable {
    private let path: String
    private let busyTimeoutMilliseconds: Int64
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]

    /// Opens `path` (an existing database the main connection has put in WAL mode) with the
    /// backend's settings: `synchronous=FULL`, foreign keys, statement journals in memory, a
    /// 32 MiB page cache, checkpoints every 10,000 WAL pages and the busy timeout.
    init(path: String, busyTimeoutMilliseconds: Int64) throws(SQLiteSyncError) {
        self.path = path
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        try open()
    }

    private func open() throws(SQLiteSyncError) {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_EXRESCODE
        let status = sqlite_nio_sqlite3_open_v2(path, &handle, flags, nil)
        guard status == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "code \(status)"
            sqlite_nio_sqlite3_close(handle)
            handle = nil
            throw SQLiteSyncError("cannot open `\(path)`: \(message)")
        }
        do {
            try execute("""
                PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768;
                PRAGMA wal_autocheckpoint = 10000; PRAGMA busy_timeout = \(busyTimeoutMilliseconds);
                """)
        } catch {
            close()
            throw error
        }
    }

    /// Runs `body` between `BEGIN IMMEDIATE` and `COMMIT`; rolls back when it throws (or the
    /// commit fails) and rethrows its error. A transaction that cannot be rolled back is ended
    /// by closing the connection (SQLite then rolls it back) and opening it again, so that it
    /// does not keep SQLite's write lock from every other writer.
    func transaction<T>(_ body: (any SQLSyncTransaction) throws -> T) throws -> T {
        if handle == nil { try open() }
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body(Transaction(connection: self))
            try execute("COMMIT")
            return result
        } catch {
            if inTransaction { try? execute("ROLLBACK") }
            if inTransaction {
                close()
                try? open()
            }
            throw error
        }
    }

    private var inTransaction: Bool {
        handle != nil && sqlite_nio_sqlite3_get_autocommit(handle) == 0
    }

    /// Finalizes the kept statements and closes the connection.
    func close() {
        for statement in statements.values { sqlite_nio_sqlite3_finalize(statement) }
        statements.removeAll()
        sqlite_nio_sqlite3_close(handle)
        handle = nil
    }

    deinit {
        if handle != nil { close() }
    }

    private func execute(_ sql: String) throws(SQLiteSyncError) {
        var message: UnsafeMutablePointer<CChar>?
        guard sqlite_nio_sqlite3_exec(handle, sql, nil, nil, &message) == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? errorMessage
            sqlite_nio_sqlite3_free(message)
            throw SQLiteSyncError("`\(sql.prefix(60))` failed: \(text)")
        }
    }

    private var errorMessage: String {
        handle.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "the connection is closed"
    }

    /// The kept statement for `sql`, reset and bound to `binds`.
    fileprivate func statement(_ sql: String, _ binds: [SQLRowValue]) throws(SQLiteSyncError) -> OpaquePointer {
        let statement = try prepared(sql)
        try bind(statement, binds, sql)
        return statement
    }

    /// The kept statement for `sql` (prepared the first time).
    fileprivate func prepared(_ sql: String) throws(SQLiteSyncError) -> OpaquePointer {
        if let kept = statements[sql] { return kept }
        var prepared: OpaquePointer?
        guard sqlite_nio_sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &prepared, nil) == SQLITE_OK, let prepared else {
            throw SQLiteSyncError("cannot prepare `\(sql)`: \(errorMessage)")
        }
        statements[sql] = prepared
        return prepared
    }

    /// Resets `statement` (of `sql`) and binds `binds` to it.
    fileprivate func bind(_ statement: OpaquePointer, _ binds: [SQLRowValue], _ sql: String) throws(SQLiteSyncError) {
        sqlite_nio_sqlite3_reset(statement)
        sqlite_nio_sqlite3_clear_bindings(statement)
        for (offset, value) in binds.enumerated() {
            let position = Int32(offset + 1)
            let status: Int32
            switch value {
            case .integer(let number):
                status = sqlite_nio_sqlite3_bind_int64(statement, position, number)
            case .text(var text):
                status = text.withUTF8 { bytes in
                    bytes.withMemoryRebound(to: CChar.self) { chars in
                        // An empty text still needs a non-null pointer to be text, not NULL.
                        sqlite_nio_sqlite3_bind_text64(statement, position, chars.baseAddress ?? UnsafePointer(bitPattern: 1), UInt64(chars.count), transient,
                                                       UInt8(SQLITE_UTF8))
                    }
                }
            case .blob(let bytes):
                status = bytes.withUnsafeBytes { raw in
                    // A zero-length blob still needs a non-null pointer to be a blob, not NULL.
                    sqlite_nio_sqlite3_bind_blob64(statement, position, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1), UInt64(raw.count), transient)
                }
            }
            guard status == SQLITE_OK else { throw SQLiteSyncError("cannot bind value \(position) of `\(sql)`: \(errorMessage)") }
        }
    }

    /// Steps `statement` once: true when it returned a row, false when done.
    fileprivate func step(_ statement: OpaquePointer, _ sql: String) throws(SQLiteSyncError) -> Bool {
        switch sqlite_nio_sqlite3_step(statement) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let message = errorMessage
            sqlite_nio_sqlite3_reset(statement)
            throw SQLiteSyncError("`\(sql)` failed: \(message)")
        }
    }
}

/// SQLite copies a bound value before the bind returns.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// What went wrong on the synchronous connection, with SQLite's own message.
struct SQLiteSyncError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The transaction ``SQLiteSyncConnection/transaction(_:)`` hands its body.
private struct Transaction: SQLSyncTransaction {
    let connection: SQLiteSyncConnection

    func integer(_ sql: String, _ binds: [SQLRowValue]) throws -> Int64? {
        let statement = try connection.statement(sql, binds)
        defer { sqlite_nio_sqlite3_reset(statement) }
        guard try connection.step(statement, sql), sqlite_nio_sqlite3_column_type(statement, 0) != SQLITE_NULL else { return nil }
        return sqlite_nio_sqlite3_column_int64(statement, 0)
    }

    func blob(_ sql: String, _ binds: [SQLRowValue]) throws -> [UInt8]? {
        let statement = try connection.statement(sql, binds)
        defer { sqlite_nio_sqlite3_reset(statement) }
        guard try connection.step(statement, sql), sqlite_nio_sqlite3_column_type(statement, 0) != SQLITE_NULL else { return nil }
        // The pointer first, then the size (SQLite's advice: the size call cannot then move it).
        let bytes = sqlite_nio_sqlite3_column_blob(statement, 0)
        let count = Int(sqlite_nio_sqlite3_column_bytes(statement, 0))
        guard count > 0, let bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: count))
    }

    func insert(into table: String, columns: [String], rows: [[SQLRowValue]]) throws {
        guard !columns.isEmpty, !rows.isEmpty else { return }
        let sql = "INSERT INTO \"\(table)\" (" + columns.map { "\"\($0)\"" }.joined(separator: ", ") + ") VALUES ("
            + Array(repeating: "?", count: columns.count).joined(separator: ", ") + ")"
        let statement = try connection.prepared(sql)
        for row in rows {
            guard row.count == columns.count else {
                throw StoreError(.invalidArgument, "a row for `\(table)` has \(row.count) values for \(columns.count) columns")
            }
            try connection.bind(statement, row, sql)
            _ = try connection.step(statement, sql)
        }
    }
}
