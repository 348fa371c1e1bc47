// writ-bench-registry: the registry benchmarks that need whole server processes, run by
// scripts/bench (never by scripts/test).
//
// 1. Full sync: a `writ server run` (SQLite) holds N entries for one agent; this process is the
//    agent, in another process, over mTLS. Measured: from the start of attestation until the
//    last entry of the snapshot is received, and the server's resident memory before and after.
// 2. Cross-server propagation: two servers on one PostgreSQL database; an agent keeps a sync
//    stream open on server B while entries are created one by one through server A's admin
//    API. Measured: from A's acknowledgement to the entry's arrival on B's stream (p50/p99/max).
//
// 3. The agent (AgentBench.swift): Workload API latency, rotation to 1,000 watchers, memory with
//    10,000 entries, a real agent's full sync.
//
// usage: writ-bench-registry --writ PATH [--postgres URL] [--entries N] [--samples M] --out FILE
#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import WritAgentAPI
import WritStore
import WritStorePostgres
import WritTestSupport

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Command-line options.
struct Options: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "writ-bench-registry",
        abstract: "Full sync, cross-server propagation and the agent's Workload API against whole writ processes.")
    @Option(help: "The writ binary to run.") var writ: String
    @Option(help: "Where to write the JSON results.") var out: String
    @Option(help: "A PostgreSQL server URL; without it propagation is not measured.") var postgres: String?
    @Option(help: "Registration entries in the full-sync measurement.") var entries = 100_000
    @Option(help: "Propagation samples.") var samples = 200

    mutating func validate() throws {
        guard entries > 0, samples > 0 else { throw ValidationError("--entries and --samples must be positive") }
        if postgres?.isEmpty == true { postgres = nil }
    }
}

/// A `writ server run` child process with its admin socket and `ready.json`.
final class ServerProcess: Sendable {
    let process: Process
    let socket: String
    let ready: [String: String]

    init(writ: String, directory: TemporaryDirectory, name: String, extra: [String]) async throws {
        let data = directory.file("\(name)/data").path
        socket = directory.file("\(name)/admin/admin.sock").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: writ)
        process.arguments = ["server", "run", "--data-dir", data, "--trust-domain", "bench.example", "--admin-socket", socket,
                             "--http-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--log-level", ProcessInfo.processInfo.environment["WRIT_BENCH_SERVER_LOG_LEVEL"] ?? "warning"] + extra
        process.standardOutput = FileHandle.standardError
        process.standardError = FileHandle.standardError
        try process.run()
        self.process = process
        let readyFile = data + "/ready.json"
        let deadline = ContinuousClock.now + .seconds(120)
        while !FileManager.default.fileExists(atPath: readyFile) {
            guard process.isRunning, ContinuousClock.now < deadline else { throw BenchFailure("server \(name) did not become ready") }
            try await Task.sleep(for: .milliseconds(50))
        }
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: readyFile))) as? [String: Any] ?? [:]
        ready = object.compactMapValues { $0 as? String }
    }

    var agentPort: Int { Int(ready["listen"]?.split(separator: ":").last ?? "") ?? 0 }

    /// Resident and peak resident memory in KiB (`VmRSS`, `VmHWM`).
    func memory() -> (rss: Int, peak: Int) {
        let text = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Int {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return Int(line.split(separator: " ").dropFirst().first { !$0.isEmpty }.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

/// The admin API over a server's Unix socket.
struct Admin {
    let client: HTTPClient
    let socket: String

    func call(_ method: HTTPMethod, _ path: String, _ body: Any? = nil) async throws -> Data {
        let encoded = socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? socket
        var request = HTTPClientRequest(url: "http+unix://\(encoded)\(path)")
        request.method = method
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        }
        let response = try await client.execute(request, timeout: .seconds(120))
        let data = Data(buffer: try await response.body.collect(upTo: 64 << 20))
        guard response.status == .ok else { throw BenchFailure("\(method) \(path): \(response.status.code) \(String(decoding: data, as: UTF8.self).prefix(300))") }
        return data
    }

    func json(_ method: HTTPMethod, _ path: String, _ body: Any? = nil) async throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: try await call(method, path, body)) as? [String: Any] ?? [:]
    }

    /// Creates entries under `parent`, 1000 per request; fails on any refused entry.
    func createEntries(_ ids: [String], parent: String) async throws {
        for start in stride(from: 0, to: ids.count, by: 1000) {
            let batch = ids[start..<min(start + 1000, ids.count)].enumerated().map { offset, id -> [String: Any] in
                ["spiffe_id": id, "parent_id": parent, "selectors": [["type": "unix", "value": "uid:\((start + offset) % 60000)"]]]
            }
            let answer = try await json(.POST, "/v1/entries", ["entries": batch])
            let results = answer["results"] as? [[String: Any]] ?? []
            guard results.count == batch.count, results.allSatisfy({ $0["error"] == nil }) else {
                throw BenchFailure("entry creation refused: \(String(describing: results.first { $0["error"] != nil }))")
            }
        }
    }

    func agent(_ server: ServerProcess) async throws -> (token: String, id: String, bundlePEM: String) {
        let token = try await json(.POST, "/v1/join-tokens", ["ttl": 3600])
        let pem = String(decoding: try await call(.GET, "/v1/bundle?format=pem"), as: UTF8.self)
        return (token["token"] as? String ?? "", token["agent_id"] as? String ?? "", pem)
    }
}

/// Counts what a sync delivers.
final class SyncTally: Sendable {
    private struct State { var entries = 0, messages = 0, largest = 0 }
    private let state = Mutex(State())
    func add(_ message: Writ_Agent_V1_SyncResponse) throws {
        let size = (try message.serializedBytes() as [UInt8]).count
        state.withLock {
            $0.entries += message.entries.count
            $0.messages += 1
            $0.largest = max($0.largest, size)
        }
    }
    var totals: (entries: Int, messages: Int, largest: Int) { state.withLock { ($0.entries, $0.messages, $0.largest) } }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func fullSync(_ options: Options, client: HTTPClient) async throws -> [String: Any] {
    let directory = try TemporaryDirectory(prefix: "writ-bench-sync")
    let server = try await ServerProcess(writ: options.writ, directory: directory, name: "server", extra: [])
    defer { server.stop() }
    let admin = Admin(client: client, socket: server.socket)
    let (token, agentID, bundlePEM) = try await admin.agent(server)
    FileHandle.standardError.write(Data("writ-bench-registry: creating \(options.entries) entries…\n".utf8))
    let creationStart = ContinuousClock.now
    try await admin.createEntries((0..<options.entries).map { "spiffe://bench.example/workload/\($0)" }, parent: agentID)
    let creation = seconds(ContinuousClock.now - creationStart)
    try await Task.sleep(for: .seconds(1))  // let the registry cache catch up before measuring memory
    let before = server.memory()

    FileHandle.standardError.write(Data("writ-bench-registry: attesting and syncing…\n".utf8))
    let start = ContinuousClock.now
    var agent = AgentDriver(port: server.agentPort, bundlePEM: bundlePEM)
    try await agent.attest(joinToken: token)
    let attested = ContinuousClock.now
    let tally = SyncTally()
    try await agent.sync { message in
        try tally.add(message)
        return !message.complete
    }
    let elapsed = ContinuousClock.now - start
    let after = server.memory()
    let (entries, messages, largest) = tally.totals
    guard entries == options.entries else { throw BenchFailure("the sync delivered \(entries) entries, not \(options.entries)") }
    return [
        "entries": entries, "messages": messages, "largest_message_bytes": largest,
        "seconds": seconds(elapsed), "attest_seconds": seconds(attested - start),
        "entries_per_second": Double(entries) / seconds(elapsed),
        "rss_before_kib": before.rss, "rss_after_kib": after.rss, "rss_delta_kib": after.rss - before.rss,
        "peak_rss_kib": after.peak,
        "admin_create_seconds": creation, "admin_creates_per_second": Double(options.entries) / creation,
    ]
}

func propagation(_ options: Options, postgres: String, client: HTTPClient) async throws -> [String: Any] {
    let admin = try PostgresURL(parsing: postgres)
    let name = "writ_bench_" + String(UInt64.random(in: 0 ... .max), radix: 36)
    try await PostgresBackend.withBackend(url: admin) { try await $0.execute("CREATE DATABASE \(name)") }
    let url = postgres.components(separatedBy: "?")[0].components(separatedBy: "/").dropLast().joined(separator: "/") + "/" + name + "?sslmode=disable"
    let directory = try TemporaryDirectory(prefix: "writ-bench-propagation")
    let a = try await ServerProcess(writ: options.writ, directory: directory, name: "a", extra: ["--datastore", url])
    let b = try await ServerProcess(writ: options.writ, directory: directory, name: "b", extra: ["--datastore", url])
    defer {
        a.stop()
        b.stop()
    }
    let adminA = Admin(client: client, socket: a.socket)
    let adminB = Admin(client: client, socket: b.socket)
    let (token, _, bundlePEM) = try await adminB.agent(b)
    var agent = AgentDriver(port: b.agentPort, bundlePEM: bundlePEM)
    try await agent.attest(joinToken: token)
    let driver = agent

    // B's stream: every entry that arrives, with the time it arrived.
    let (arrivals, arrived) = AsyncStream.makeStream(of: (String, ContinuousClock.Instant).self)
    let (snapshotDone, snapshotSignal) = AsyncStream.makeStream(of: Void.self)
    let stream = Task {
        try await driver.sync { message in
            let now = ContinuousClock.now
            for entry in message.entries { arrived.yield((entry.spiffeID, now)) }
            if message.complete { snapshotSignal.yield() }
            return !Task.isCancelled
        }
    }
    var snapshotIterator = snapshotDone.makeAsyncIterator()
    _ = await snapshotIterator.next()

    FileHandle.standardError.write(Data("writ-bench-registry: \(options.samples) entries through A, received on B…\n".utf8))
    var latencies: [Double] = []
    var iterator = arrivals.makeAsyncIterator()
    for index in 0..<options.samples {
        let id = "spiffe://bench.example/propagated/\(index)"
        try await adminA.createEntries([id], parent: driver.id)
        let acknowledged = ContinuousClock.now
        while let (received, at) = await iterator.next() {
            if received == id {
                latencies.append(max(0, seconds(at - acknowledged)) * 1000)
                break
            }
        }
        try await Task.sleep(for: .milliseconds(Int.random(in: 0...100)))
    }
    stream.cancel()
    _ = try? await PostgresBackend.withBackend(url: admin) { try await $0.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
    let p = percentiles(latencies)
    return ["samples": latencies.count, "p50_ms": p["p50"]!, "p99_ms": p["p99"]!, "max_ms": p["max"]!, "mean_ms": p["mean"]!]
}

let options = Options.parseOrExit()
let client = HTTPClient(eventLoopGroupProvider: .singleton)
do {
    var results: [String: Any] = ["full_sync": try await fullSync(options, client: client)]
    results["agent"] = try await agentBenchmarks(options, client: client)
    if let postgres = options.postgres {
        results["propagation"] = try await propagation(options, postgres: postgres, client: client)
    }
    try JSONSerialization.data(withJSONObject: results, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: options.out))
    try? await client.shutdown().get()
} catch {
    FileHandle.standardError.write(Data("writ-bench-registry: \(error)\n".utf8))
    try? await client.shutdown().get()
    exit(1)
}
