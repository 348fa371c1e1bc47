import Foundation
import SQLKit
import Testing
import WritStore
import WritStoreSQLite
import WritTestSupport

/// Two connections writing one SQLite file (two servers, or a server and a tool) take turns: the
/// writer lock is fair where SQLite's own busy polling is not.
@Suite struct SQLiteWriterLockTests {
    /// A neighbour that commits back to back from four tasks, each transaction holding the lock
    /// 20 ms, for three seconds. A second connection with a 1 s busy timeout still gets every one
    /// of its twenty writes through. SQLite's lock alone starves it: its busy handler polls up to
    /// 100 ms apart and finds the lock taken again every time.
    @Test func aBusyNeighbourDoesNotStarveASecondWriter() async throws {
        let directory = try TemporaryDirectory(prefix: "writ-sqlite-lock")
        let path = directory.file("datastore.sqlite3").path
        let neighbour = try await SQLiteBackend.open(path: path, busyTimeout: .seconds(1))
        let writer = try await SQLiteBackend.open(path: path, busyTimeout: .seconds(1))
        defer { Task { await neighbour.close(); await writer.close() } }
        try await neighbour.write { try await $0.raw("CREATE TABLE rows (who TEXT NOT NULL, n INTEGER NOT NULL)").run() }

        let deadline = ContinuousClock.now + .seconds(3)
        let neighbourWrites = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    var count = 0
                    while ContinuousClock.now < deadline {
                        try await neighbour.write { db in
                            try await db.raw("INSERT INTO rows (who, n) VALUES ('neighbour', \(bind: count))").run()
                            try await Task.sleep(for: .milliseconds(20))
                        }
                        count += 1
                    }
                    return count
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(200))
                for n in 0..<20 {
                    try await writer.write { try await $0.raw("INSERT INTO rows (who, n) VALUES ('writer', \(bind: n))").run() }
                }
                return 0
            }
            return try await group.reduce(0, +)
        }
        let counts = try await writer.read { db in
            try await db.raw("SELECT who, COUNT(*) AS c FROM rows GROUP BY who ORDER BY who").all()
                .map { (try $0.decode(column: "who", as: String.self), try $0.decode(column: "c", as: Int.self)) }
        }
        #expect(counts.map(\.0) == ["neighbour", "writer"])
        #expect(counts.first?.1 == neighbourWrites)
        #expect(counts.last?.1 == 20)
    }

    /// A write that cannot get the lock in time fails with a message naming the lock and leaves
    /// nothing behind; the abandoned wait drops the lock when it finally gets it, so the next
    /// write goes through.
    @Test func aWriteThatWaitsTooLongFailsCleanlyAndTheLockIsNotLeaked() async throws {
        let directory = try TemporaryDirectory(prefix: "writ-sqlite-lock")
        let path = directory.file("datastore.sqlite3").path
        let holder = try await SQLiteBackend.open(path: path)
        let writer = try await SQLiteBackend.open(path: path, busyTimeout: .milliseconds(300))
        defer { Task { await holder.close(); await writer.close() } }
        try await holder.write { try await $0.raw("CREATE TABLE rows (n INTEGER NOT NULL)").run() }
        #expect(FileManager.default.fileExists(atPath: path + "-writer.lock"))
        let mode = try FileManager.default.attributesOfItem(atPath: path + "-writer.lock")[.posixPermissions] as? Int
        #expect(mode == 0o600)

        async let held: Void = holder.write { db in
            try await db.raw("INSERT INTO rows (n) VALUES (1)").run()
            try await Task.sleep(for: .seconds(1))
        }
        try await Task.sleep(for: .milliseconds(100))
        do {
            try await writer.write { try await $0.raw("INSERT INTO rows (n) VALUES (2)").run() }
            Issue.record("the write went through while another writer held the lock")
        } catch let error as StoreError {
            #expect(error.code == .unavailable)
            #expect(error.message.contains("busy") && error.message.contains("-writer.lock"), "\(error.message)")
        }
        try await held
        try await writer.write { try await $0.raw("INSERT INTO rows (n) VALUES (3)").run() }
        let rows = try await holder.read { db in try await db.raw("SELECT n FROM rows ORDER BY n").all().map { try $0.decode(column: "n", as: Int.self) } }
        #expect(rows == [1, 3])
    }
}
