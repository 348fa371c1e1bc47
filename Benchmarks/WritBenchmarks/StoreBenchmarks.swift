import Benchmark
import Foundation
import SPIFFEIdentity
import SQLKit
import WritModel
import WritStore
import WritStorePostgres
import WritStoreSQLite

/// Entry creation on each backend, beside the peer baseline in the same run: a transaction that
/// inserts one row through the same driver and commits durably (SQLite `synchronous=FULL`,
/// PostgreSQL `fsync=on`). The ratio says what Writ's entry write (duplicate checks, change
/// record, entry row, selectors) costs over the bare commit.
func storeBenchmarks() {
    let configuration = Benchmark.Configuration(metrics: [.throughput, .wallClock], scalingFactor: .kilo,
                                                maxDuration: .seconds(20), maxIterations: 3)
    // PostgreSQL commits take ~1–3 ms: samples of 1,000 would run past 2 s, and package-benchmark
    // drops a throughput that rounds to 0 samples/s (the JMH export then drops the whole
    // benchmark). One operation per sample; scripts/bench-report.py knows the size.
    let postgres = Benchmark.Configuration(metrics: [.throughput, .wallClock], scalingFactor: .one,
                                           maxDuration: .seconds(15), maxIterations: 3000)

    Benchmark("Entry create (SQLite)", configuration: configuration) { benchmark in
        let directory = try BenchDirectory()
        let store = try await SQLDatastore(backend: try await SQLiteBackend.open(path: directory.path + "/datastore.sqlite3"))
        try await createEntries(store, benchmark)
        await store.close()
    }

    Benchmark("Raw SQLite insert transaction", configuration: configuration) { benchmark in
        let directory = try BenchDirectory()
        let backend = try await SQLiteBackend.open(path: directory.path + "/raw.sqlite3")
        try await rawInserts(backend, benchmark)
        await backend.close()
    }

    Benchmark("Entry create (PostgreSQL)", configuration: postgres) { benchmark in
        try await withBenchDatabase { url in
            try await PostgresBackend.withBackend(url: url) { backend in
                try await createEntries(try await SQLDatastore(backend: backend), benchmark)
            }
        }
    }

    Benchmark("Raw PostgreSQL insert transaction", configuration: postgres) { benchmark in
        try await withBenchDatabase { url in
            try await PostgresBackend.withBackend(url: url) { backend in try await rawInserts(backend, benchmark) }
        }
    }
}

func createEntries(_ store: SQLDatastore, _ benchmark: Benchmark) async throws {
    let parent = try SPIFFEID(parsing: "spiffe://example.org/writ/agent/join_token/bench")
    let run = UUID().uuidString.prefix(8)
    var n = 0
    benchmark.startMeasurement()
    for _ in benchmark.scaledIterations {
        let entry = RegistrationEntry(spiffeID: try SPIFFEID(parsing: "spiffe://example.org/bench/\(run)/\(n)"), parentID: parent,
                                      selectors: [try Selector(parsing: "unix:uid:\(n % 60000)"), try Selector(parsing: "unix:gid:\(n % 7)")],
                                      owner: "bench", labels: ["kind": "service"])
        blackHole(try await store.createEntry(entry, at: Date()))
        n += 1
    }
    benchmark.stopMeasurement()
}

func rawInserts(_ backend: any SQLStoreBackend, _ benchmark: Benchmark) async throws {
    try await backend.write { db in try await db.raw("CREATE TABLE IF NOT EXISTS raw_rows (id BIGINT PRIMARY KEY, body TEXT NOT NULL)").run() }
    let base = Int64(Date().timeIntervalSince1970 * 1000) * 1000
    var n: Int64 = 0
    benchmark.startMeasurement()
    for _ in benchmark.scaledIterations {
        let id = base + n
        try await backend.write { db in try await db.raw("INSERT INTO raw_rows (id, body) VALUES (\(bind: id), \(bind: "row \(id)"))").run() }
        n += 1
    }
    benchmark.stopMeasurement()
}

/// A temporary directory removed when the benchmark ends.
final class BenchDirectory {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "writ-bench-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A database of its own on the PostgreSQL that scripts/bench starts (WRIT_BENCH_POSTGRES_URL).
func withBenchDatabase(_ body: (PostgresURL) async throws -> Void) async throws {
    guard let text = ProcessInfo.processInfo.environment["WRIT_BENCH_POSTGRES_URL"] else {
        struct Missing: Error, CustomStringConvertible { var description: String { "WRIT_BENCH_POSTGRES_URL is not set: run scripts/bench, which starts PostgreSQL" } }
        throw Missing()
    }
    let admin = try PostgresURL(parsing: text)
    let name = "writ_bench_" + UUID().uuidString.prefix(8).lowercased()
    try await PostgresBackend.withBackend(url: admin) { try await $0.execute("CREATE DATABASE \(name)") }
    try await body(admin.with(database: name))
    try? await PostgresBackend.withBackend(url: admin) { try await $0.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
}
