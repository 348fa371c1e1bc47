// writ-bench-audit: the audit log on real datastores. Usage:
//   writ-bench-audit --dir DIR --out FILE --peer sqlite_peer.py [--python PATH] [--postgres URL] [--events N] [--max-leaves N]
// Measures, in one run:
//   - committed appends per second through AuditLog's group commit (what SVID issuance waits
//     for: each caller is answered once its batch committed), on SQLite and PostgreSQL, with
//     the store's own limit beside it (the same events appended directly in 1,000-event
//     batches, no group commit), SQLite's own limit (sqlite_peer.py: the same rows through the C
//     API into the same tables and indexes, without hash rows) and the SHA-256 leaf-hashing rate;
//   - bytes per event on disk, over N (100,000) realistic events (SVID issuance, JWTs,
//     attestations, entry changes);
//   - inclusion and consistency proof time and the datastore reads per proof at 10^4, 10^5,
//     10^6 and 10^7 leaves (synthetic small events in the real tables; the free disk is checked
//     first and the largest size dropped when it would not fit);
//   - AuditVerifier's full verification rate at 10^6 events.
import ArgumentParser
import Crypto
import Foundation
import Logging
import MerkleLog
import SPIFFEIdentity
import SQLKit
import StrictJSON
import WritAudit
import WritStore
import WritStorePostgres
import WritStoreSQLite

struct Options: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "writ-bench-audit",
        abstract: "The audit log on real datastores: committed appends, bytes per event, proofs at 10^4–10^7 leaves, full verification.")
    @Option(help: "A directory for the benchmark's databases (emptied first).") var dir: String
    @Option(help: "Where to write the JSON results.") var out: String
    @Option(help: "sqlite_peer.py, SQLite's own limit through its C API.") var peer: String
    @Option(help: "The Python that runs the peer.") var python = "python3"
    @Option(help: "A PostgreSQL server URL; without it only SQLite is measured.") var postgres: String?
    @Option(help: "Realistic events to append.") var events = 100_000
    @Option(help: "The largest tree for the proof measurements.") var maxLeaves: UInt64 = 10_000_000

    mutating func validate() throws {
        guard events > 0 else { throw ValidationError("--events must be positive") }
        if postgres?.isEmpty == true { postgres = nil }
    }
}

func progress(_ text: String) { FileHandle.standardError.write(Data("writ-bench-audit: \(text)\n".utf8)) }

let logger = Logger(label: "writ-bench-audit")
let origin = "bench.example.org/writ/audit"
let trustDomain = try! TrustDomain(parsing: "bench.example.org")

/// A mix like a busy server's: most events are SVID issuance.
func realisticEvent(_ n: Int, at time: Date) -> AuditEvent {
    let agent = try! SPIFFEID(trustDomain: trustDomain, path: "/writ/agent/join_token/\(String(format: "%016x", n % 500))")
    let workload = "spiffe://bench.example.org/ns/team-\(n % 40)/sa/agent-\(n % 2000)"
    let serial = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    switch n % 20 {
    case 0..<12:
        return AuditEvent(time: time, type: "svid.x509.issue", actor: .spiffe(agent), target: AuditTarget(kind: "spiffe_id", id: workload), action: "issue",
                          outcome: .allowed, details: [JSONMember("purpose", .string("entry")), JSONMember("entry_id", .string(UUID().uuidString.lowercased())),
                                                       JSONMember("serial", .string(serial)), JSONMember("not_after", .string(AuditEvent.timestamp(time.addingTimeInterval(3600))))])
    case 12..<17:
        return AuditEvent(time: time, type: "svid.jwt.issue", actor: .spiffe(agent), target: AuditTarget(kind: "spiffe_id", id: workload), action: "issue",
                          outcome: .allowed, details: [JSONMember("purpose", .string("entry")), JSONMember("audience", .array([.string("https://tools.example.org/mcp")])),
                                                       JSONMember("entry_id", .string(UUID().uuidString.lowercased())), JSONMember("jti", .string(serial)),
                                                       JSONMember("expires_at", .string(AuditEvent.timestamp(time.addingTimeInterval(300))))])
    case 17..<19:
        return AuditEvent(time: time, type: "node.attest", actor: .node(attestor: "join_token", id: String(format: "%016x", n)),
                          target: AuditTarget(kind: "agent", id: agent.uri), action: "attest", outcome: .allowed,
                          details: [JSONMember("source", .string("10.0.\(n % 256).\(n % 200)")), JSONMember("serial", .string(serial)),
                                    JSONMember("selectors", .array([.string("join_token:id:\(String(format: "%016x", n))")]))])
    default:
        return AuditEvent(time: time, type: "entry.update", actor: .unix(uid: 1000, gid: 1000, pid: Int32(4000 + n % 1000)),
                          target: AuditTarget(kind: "entry", id: UUID().uuidString.lowercased()), action: "update", outcome: .allowed,
                          details: [JSONMember("spiffe_id", .string(workload)), JSONMember("parent_id", .string(agent.uri))])
    }
}

/// Runs `body` on a fresh store of `kind` with a function that measures the log's bytes on disk.
func withStore<T: Sendable>(_ kind: String, _ options: Options, name: String,
                            _ body: (SQLDatastore, @escaping () async throws -> Int64) async throws -> T) async throws -> T {
    if kind == "sqlite" {
        let path = (options.dir as NSString).appendingPathComponent("\(name).sqlite3")
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        let backend = try await SQLiteBackend.open(path: path, logger: logger)
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let store = try await SQLDatastore(backend: backend)
        // The whole database as the connection sees it (WAL frames included): every table.
        let size: () async throws -> Int64 = {
            try await backend.read { db in
                let pages = try await db.raw("PRAGMA page_count").first()?.decode(column: "page_count", as: Int64.self) ?? 0
                let pageSize = try await db.raw("PRAGMA page_size").first()?.decode(column: "page_size", as: Int64.self) ?? 0
                return pages * pageSize
            }
        }
        let result = try await body(store, size)
        await store.close()
        return result
    }
    guard let url = options.postgres else { throw BenchError("no --postgres URL") }
    // A database of its own on the server.
    let admin = try PostgresURL(parsing: url)
    let database = "writ_bench_audit_\(name)"
    try await PostgresBackend.withBackend(url: admin, logger: logger) { backend in
        try await backend.execute("DROP DATABASE IF EXISTS \(database)")
        try await backend.execute("CREATE DATABASE \(database)")
    }
    let own = url.components(separatedBy: "?")[0].components(separatedBy: "/").dropLast().joined(separator: "/") + "/" + database + "?sslmode=disable"
    let result = try await PostgresBackend.withBackend(url: try PostgresURL(parsing: own), logger: logger) { backend in
        let store = try await SQLDatastore(backend: backend)
        let size: () async throws -> Int64 = {
            try await backend.read { db in
                try await db.raw("SELECT pg_total_relation_size('audit_events') + pg_total_relation_size('audit_subtrees') + pg_total_relation_size('audit_names') AS n").first()?
                    .decode(column: "n", as: Int64.self) ?? 0
            }
        }
        return try await body(store, size)
    }
    try await PostgresBackend.withBackend(url: admin, logger: logger) { backend in try await backend.execute("DROP DATABASE IF EXISTS \(database)") }
    return result
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Committed appends through AuditLog: `concurrency` callers each record events one after the
/// other (as SVID requests would), every one answered only after its batch committed.
func groupCommit(_ kind: String, _ options: Options, events: [AuditEvent]) async throws -> [String: Double] {
    try await withStore(kind, options, name: "append_\(kind)") { store, size in
        let signer = try NoteSigner(name: origin, privateKey: Curve25519.Signing.PrivateKey())
        let log = AuditLog(store: store, signer: signer, configuration: .init(origin: origin), logger: logger)
        let concurrency = 2000
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var n = worker
                    while n < events.count {
                        _ = try await log.record(events[n])
                        n += concurrency
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        await log.flush()
        let statistics = await log.statistics
        let bytes = try await size()
        // The store's own limit: the same events appended directly in 1,000-event batches.
        let direct = try await withStore(kind, options, name: "direct_\(kind)") { directStore, _ in
            let records = try events.map { try $0.record() }
            let start = ContinuousClock.now
            for chunk in stride(from: 0, to: records.count, by: 1000) {
                _ = try await directStore.appendAuditEvents(Array(records[chunk..<min(chunk + 1000, records.count)]))
            }
            return seconds(ContinuousClock.now - start)
        }
        let rate = Double(events.count) / seconds(elapsed)
        progress("\(kind): \(Int(rate)) committed appends/s through group commit (\(statistics.batches) batches, largest \(statistics.largestBatch)); "
                 + "direct 1,000-event appends \(Int(Double(events.count) / direct))/s; \(bytes / Int64(events.count)) bytes/event")
        return ["events": Double(events.count), "concurrency": Double(concurrency), "seconds": seconds(elapsed), "committed_per_second": rate,
                "batches": Double(statistics.batches), "largest_batch": Double(statistics.largestBatch), "checkpoints": Double(statistics.checkpoints),
                "direct_per_second": Double(events.count) / direct, "bytes": Double(bytes), "bytes_per_event": Double(bytes) / Double(events.count)]
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// SHA-256 leaf hashes per second over the same bodies: the work verification cannot avoid.
func hashingRate(_ bodies: [[UInt8]]) -> Double {
    let start = ContinuousClock.now
    var range = CompactRange()
    for body in bodies { range.append(MerkleHash.leaf(body)) }
    precondition(range.size == UInt64(bodies.count))
    return Double(bodies.count) / seconds(ContinuousClock.now - start)
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

/// Proofs at each size, growing one SQLite log with small synthetic events.
func proofs(_ options: Options) async throws -> [[String: Double]] {
    var sizes: [UInt64] = [10_000, 100_000, 1_000_000, 10_000_000].filter { $0 <= options.maxLeaves }
    // About 400 bytes per synthetic leaf on SQLite (body, indices, subtree rows); keep 2× spare.
    var stats = statvfs()
    if statvfs(options.dir, &stats) == 0 {
        let free = UInt64(stats.f_bavail) * UInt64(stats.f_frsize)
        while let largest = sizes.last, largest * 400 * 2 > free {
            progress("only \(free >> 20) MiB free in \(options.dir): leaving out \(largest) leaves")
            sizes.removeLast()
        }
    }
    return try await withStore("sqlite", options, name: "proofs", { store, fileSize in
        var results: [[String: Double]] = []
        var appended: UInt64 = 0
        let start = ContinuousClock.now
        for size in sizes {
            while appended < size {
                let count = Int(min(10_000, size - appended))
                let records = (0..<count).map { offset -> AuditEventRecord in
                    let n = appended + UInt64(offset)
                    return AuditEventRecord(body: Array(#"{"n":\#(n),"type":"bench.synthetic"}"#.utf8), type: "bench.synthetic", actor: "bench", target: "",
                                            time: Date(timeIntervalSince1970: 1_800_000_000 + Double(n) / 1000))
                }
                _ = try await store.appendAuditEvents(records)
                appended += UInt64(count)
                if appended % 1_000_000 == 0 {
                    progress("proofs: \(appended) synthetic leaves appended (\(Int(Double(appended) / seconds(ContinuousClock.now - start)))/s)")
                }
            }
            let root = try MerkleProofs.root(size: size, try await store.auditSubtrees(MerkleProofs.rootPlan(size: size).subtrees))
            var inclusion: [Double] = [], consistency: [Double] = []
            var inclusionReads = 0, consistencyReads = 0
            for _ in 0..<1000 {
                let index = UInt64.random(in: 0..<size)
                let t0 = ContinuousClock.now
                let proof = try await AuditProofs.inclusion(in: store, index: index, size: size)
                inclusion.append(seconds(ContinuousClock.now - t0) * 1e6)
                inclusionReads += proof.hashesRead
                try MerkleProofs.verifyInclusion(leaf: proof.leaf, index: index, size: size, proof: proof.path, root: root)
                let old = UInt64.random(in: 1..<size)
                let t1 = ContinuousClock.now
                let step = try await AuditProofs.consistency(in: store, oldSize: old, newSize: size)
                consistency.append(seconds(ContinuousClock.now - t1) * 1e6)
                consistencyReads += step.hashesRead
                try MerkleProofs.verifyConsistency(oldSize: old, newSize: size, oldRoot: step.oldRoot, newRoot: root, proof: step.path)
            }
            var row: [String: Double] = [
                "leaves": Double(size), "queries_per_proof": 1,
                "inclusion_p50_us": percentile(inclusion, 0.5), "inclusion_p99_us": percentile(inclusion, 0.99),
                "inclusion_hashes_read": Double(inclusionReads) / 1000,
                "consistency_p50_us": percentile(consistency, 0.5), "consistency_p99_us": percentile(consistency, 0.99),
                "consistency_hashes_read": Double(consistencyReads) / 1000,
                "database_bytes": Double(try await fileSize()),
            ]
            if size == 1_000_000 {
                let t0 = ContinuousClock.now
                let verified = try await AuditVerifier.verify(store: store, checkpoints: [try Checkpoint(origin: origin, size: size, root: root)], pageSize: 10_000)
                precondition(verified.size == size)
                row["verify_per_second"] = Double(size) / seconds(ContinuousClock.now - t0)
            }
            progress("proofs at \(size) leaves: inclusion p50 \(Int(percentile(inclusion, 0.5))) µs (\(inclusionReads / 1000) hashes, 1 query), "
                     + "consistency p50 \(Int(percentile(consistency, 0.5))) µs" + (row["verify_per_second"].map { "; full verification \(Int($0)) events/s" } ?? ""))
            results.append(row)
        }
        return results
    })
}

/// SQLite's own limit on the same rows (sqlite_peer.py), in a database made by Writ's migrations.
func sqlitePeer(_ options: Options, events: [AuditEvent]) async throws -> Double {
    let path = (options.dir as NSString).appendingPathComponent("peer.sqlite3")
    let rowsPath = (options.dir as NSString).appendingPathComponent("peer-rows.jsonl")
    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    defer { for file in [path, path + "-wal", path + "-shm", rowsPath] { try? FileManager.default.removeItem(atPath: file) } }
    let store = try await SQLDatastore(backend: try await SQLiteBackend.open(path: path, logger: logger))
    await store.close()
    var lines = ""
    var names: [String: Int64] = [:]
    for (index, event) in events.enumerated() {
        let record = try event.record()
        var new: [JSONValue] = []
        func id(_ name: String) -> JSONValue {
            if let id = names[name] { return .integer(id) }
            let id = Int64(names.count + 1)
            names[name] = id
            new.append(.array([.integer(id), .string(name)]))
            return .integer(id)
        }
        let row: JSONValue = .array([.integer(Int64(index)), .string(String(decoding: record.body, as: UTF8.self)), id(record.type), id(record.actor),
                                     id(record.target), .integer(Int64((record.time.timeIntervalSince1970 * 1000).rounded(.down))), .array(new),
                                     .string(MerkleHash.leaf(record.body).hex)])
        lines += try row.canonical() + "\n"
    }
    try lines.write(toFile: rowsPath, atomically: true, encoding: .utf8)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [options.python, options.peer, path, rowsPath]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0, let object = try JSONSerialization.jsonObject(with: output) as? [String: Any],
          let rate = object["per_second"] as? Double else {
        throw BenchError("sqlite_peer.py failed: \(String(decoding: output, as: UTF8.self))")
    }
    progress("SQLite's own limit (same rows: names, events with leaf hashes; same tables, indexes and settings; C API; no hashes above the leaves): \(Int(rate)) rows/s")
    return rate
}

let options = Options.parseOrExit()
try FileManager.default.createDirectory(atPath: options.dir, withIntermediateDirectories: true)
do {
    let now = Date()
    progress("building \(options.events) realistic events")
    let events = (0..<options.events).map { realisticEvent($0, at: now.addingTimeInterval(Double($0) / 1000)) }
    let bodies = try events.map { try $0.canonicalBody() }
    var report: [String: Any] = ["events": options.events, "leaf_hash_per_second": hashingRate(bodies),
                                 "body_bytes_per_event": Double(bodies.reduce(0) { $0 + $1.count }) / Double(bodies.count)]
    report["sqlite"] = try await groupCommit("sqlite", options, events: events)
    report["sqlite_peer_per_second"] = try await sqlitePeer(options, events: events)
    if options.postgres != nil { report["postgres"] = try await groupCommit("postgres", options, events: events) }
    report["proofs"] = try await proofs(options)
    let data = try JSONSerialization.data(withJSONObject: ["audit": report], options: [.prettyPrinted, .sortedKeys])
    try data.write(to: URL(fileURLWithPath: options.out))
} catch {
    FileHandle.standardError.write(Data("writ-bench-audit: \(error)\n".utf8))
    exit(1)
}
