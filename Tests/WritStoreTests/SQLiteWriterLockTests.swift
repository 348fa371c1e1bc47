import Foundation
import SQLKit
import Synchronization
import Testing
import WritStore
import WritStoreSQLite
import WritTestSupport

/// Two connections writing one SQLite file (two servers, or a server and a tool) take turns: the
/// writer lock is fair where SQLite's own busy polling is not.
@Suite struct SQLiteWriterLockTests {
    /// A neighbour that commits back to back from four tasks, each transaction holding the lock
    /// 20 ms, until the second connection is done. The second connection gets all twenty of its
    /// writes through, each waiting for at most the one neighbour transaction queued before it.
    /// SQLite's lock alone starves it until its busy timeout: its busy handler polls up to 100 ms
    /// apart and finds the lock taken again every time. (The timeout is long because suites
    /// running beside this one can keep the process's threads busy for seconds.)
    @Test func aBusyNeighbourDoesNotStarveASecondWriter() async throws {
        let directory = try TemporaryDirectory(prefix: "writ-sqlite-lock")
        let path = directory.file("datastore.sqlite3").path
        let neighbour = try await SQLiteBackend.open(path: path, busyTimeout: .seconds(30))
        let writer = try await SQLiteBackend.open(path: path, busyTimeout: .seconds(30))
        defer { Task { await neighbour.close(); await writer.close() } }
        try await neighbour.write { try await $0.raw("CREATE TABLE rows (who TEXT NOT NULL, n INTEGER NOT NULL)").run() }

        let writerDone = DoneFlag()
        let giveUp = ContinuousClock.now + .seconds(60)
        let neighbourWrites = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    var count = 0
                    while !writerDone.isSet, ContinuousClock.now < giveUp {
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
                defer { writerDone.set() }
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

    /// Writers queue in the order they asked: five connections, each asking once the one before
    /// it has drawn its ticket (the counter in the lock file's first 8 bytes), while the first
    /// holds the lock, get it in that order. (The wait limit is generous: what is tested is the
    /// order, and a loaded machine can delay the five commits in the queue by seconds.)
    @Test func writersGetTheLockInTheOrderTheyAsked() async throws {
        let directory = try TemporaryDirectory(prefix: "writ-sqlite-lock")
        let path = directory.file("datastore.sqlite3").path
        var backends: [SQLiteBackend] = []
        for _ in 0..<6 { backends.append(try await SQLiteBackend.open(path: path, busyTimeout: .seconds(120))) }
        defer { let all = backends; Task { for backend in all { await backend.close() } } }
        try await backends[0].write { try await $0.raw("CREATE TABLE arrivals (n INTEGER NOT NULL)").run() }
        let first = backends[0]
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await first.write { _ in try await Task.sleep(for: .seconds(1)) } }
            try await Task.sleep(for: .milliseconds(100))
            for n in 1..<6 {
                let backend = backends[n], drawn = try Self.ticketCounter(path)
                group.addTask { try await backend.write { try await $0.raw("INSERT INTO arrivals (n) VALUES (\(bind: n))").run() } }
                let deadline = ContinuousClock.now + .seconds(30)
                while try Self.ticketCounter(path) == drawn, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            }
            try await group.waitForAll()
        }
        let order = try await first.read { db in
            try await db.raw("SELECT n FROM arrivals ORDER BY rowid").all().map { try $0.decode(column: "n", as: Int.self) }
        }
        #expect(order == [1, 2, 3, 4, 5])
    }

    /// The next ticket, as stored in the lock file.
    static func ticketCounter(_ databasePath: String) throws -> UInt64 {
        let data = try Data(contentsOf: URL(fileURLWithPath: databasePath + "-writer.lock"))
        guard data.count >= 8 else { return 0 }
        return data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
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

        let drawn = try Self.ticketCounter(path)
        async let held: Void = holder.write { db in
            try await db.raw("INSERT INTO rows (n) VALUES (1)").run()
            try await Task.sleep(for: .seconds(1))
        }
        // The holder is first in line once it has drawn its ticket.
        let deadline = ContinuousClock.now + .seconds(30)
        while try Self.ticketCounter(path) == drawn, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
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

/// A flag one task sets and others read.
private final class DoneFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}
