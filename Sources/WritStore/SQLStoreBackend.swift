import Foundation
import SQLKit

/// A SQL engine under ``SQLDatastore``: it hands out a database handle inside a transaction.
/// Backends live in their own modules (`WritStoreSQLite`, `WritStorePostgres`).
public protocol SQLStoreBackend: Sendable {
    /// Which engine this is (for the few statements that differ).
    var kind: StoreBackendKind { get }
    /// Runs `body` in one write transaction, committed when it returns and rolled back when it
    /// throws. Write transactions never run concurrently (SQLite: `BEGIN IMMEDIATE` on the one
    /// connection; PostgreSQL: a transaction-scoped advisory lock), so revisions follow commit
    /// order.
    func write<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T
    /// Runs `body` in a read-only transaction that sees one consistent snapshot.
    func read<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T
    /// Inserts `rows` (each one value per column, in order) into `table` with as few statements
    /// as the engine allows. Called only inside this backend's ``write(_:)``, with its `db`;
    /// a failure leaves the transaction to roll back. The default builds the statements with
    /// SQLKit; a backend may bind the values straight to its driver (SQLite does: the audit
    /// events of a write that carries them spent as long in SQLKit's statement building as in
    /// SQLite).
    func insert(into table: String, columns: [String], rows: [[SQLRowValue]], in db: any SQLDatabase) async throws
    /// Runs `body` as one write transaction, in one piece on a thread of the backend's that may
    /// block (no round trip per statement; each statement prepared once per connection), and
    /// commits it when `body` returns; rolls back when it throws. Write transactions still never
    /// run concurrently with ``write(_:)``'s. Nil when the backend has no such path: the caller
    /// then uses ``write(_:)``. The default has none; SQLite has one, for audit batches.
    func writeSynchronously<T: Sendable>(_ body: @escaping @Sendable (any SQLSyncTransaction) throws -> T) async throws -> T?
    /// Copies the database to a new file at `path`, online and consistent.
    func backup(to path: String) async throws
    /// Closes the connections.
    func close() async
}

/// A write transaction driven synchronously through the engine's own interface (for
/// ``SQLStoreBackend/writeSynchronously(_:)``): statements use `?` placeholders and are prepared
/// once per connection, so `sql` should be one of a few fixed texts.
public protocol SQLSyncTransaction {
    /// The first column of the first row `sql` returns as an integer; nil without a row or for
    /// NULL.
    func integer(_ sql: String, _ binds: [SQLRowValue]) throws -> Int64?
    /// The first column of the first row `sql` returns as bytes; nil without a row or for NULL.
    func blob(_ sql: String, _ binds: [SQLRowValue]) throws -> [UInt8]?
    /// Inserts `rows` (each one value per column, in order) into `table`.
    func insert(into table: String, columns: [String], rows: [[SQLRowValue]]) throws
}

/// One value of a row for ``SQLStoreBackend/insert(into:columns:rows:in:)``.
public enum SQLRowValue: Sendable, Hashable {
    case integer(Int64)
    case text(String)
    case blob([UInt8])
}

extension SQLStoreBackend {
    public func writeSynchronously<T: Sendable>(_ body: @escaping @Sendable (any SQLSyncTransaction) throws -> T) async throws -> T? {
        nil
    }

    public func insert(into table: String, columns: [String], rows: [[SQLRowValue]], in db: any SQLDatabase) async throws {
        guard !columns.isEmpty else { return }
        // PostgreSQL takes at most 65,535 parameters per statement.
        let perStatement = max(1, 30_000 / columns.count)
        for start in stride(from: 0, to: rows.count, by: perStatement) {
            let insert = db.insert(into: table).columns(columns)
            for row in rows[start..<min(start + perStatement, rows.count)] {
                insert.values(row.map { value -> any Encodable & Sendable in
                    switch value {
                    case .integer(let number): number
                    case .text(let text): text
                    case .blob(let bytes): Data(bytes)
                    }
                })
            }
            try await insert.run()
        }
    }
}

/// Points inside a write where tests inject failures to prove that nothing of a failed write
/// remains. Production stores have no faults.
public enum StoreFaultPoint: String, Sendable, CaseIterable {
    /// After the entry's row, before its selectors.
    case afterEntryRow = "after_entry_row"
    /// After the selectors, before the change is recorded.
    case afterSelectors = "after_selectors"
    /// After an operation's audit events are inserted (in every write that carries events).
    case auditInsert = "audit_insert"
    /// After everything, just before commit.
    case beforeCommit = "before_commit"
}

/// A fault injector: called at each ``StoreFaultPoint``; throwing aborts the transaction.
public struct StoreFaults: Sendable {
    let hook: @Sendable (StoreFaultPoint) throws(StoreError) -> Void

    public init(_ hook: @escaping @Sendable (StoreFaultPoint) throws(StoreError) -> Void) {
        self.hook = hook
    }
}

extension SQLDatabase {
    /// Runs `body` between `begin` and `COMMIT` on this connection, and rolls back when it
    /// throws. The caller guarantees nothing else uses the connection meanwhile.
    public func runTransaction<T: Sendable>(isolation: isolated (any Actor)? = #isolation, begin: SQLQueryString,
                                            _ body: (any SQLDatabase) async throws -> T) async throws -> T {
        try await raw(begin).run()
        do {
            let result = try await body(self)
            try await raw("COMMIT").run()
            return result
        } catch {
            try? await raw("ROLLBACK").run()
            throw error
        }
    }
}
