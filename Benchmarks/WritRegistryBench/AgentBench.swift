// The agent benchmarks of writ-bench-registry: a `writ server run` and a `writ agent run`
// process; this process is the workload, over the agent's Unix socket.
//
// 1. FetchX509SVID latency for a cached identity: a new connection and the first stream
//    message, as a client that fetches once does it (the Swift SDK); baseline in the same run:
//    the same call without the security header, which the agent refuses before attesting (the
//    transport's floor: connect, HTTP/2, one stream).
// 2. A forced root rotation reaching 1,000 open FetchX509SVID watchers: from the admin API's
//    acknowledgement of `authorities/prepare` (kind root) until every watcher has received the
//    message with the new bundle.
// 3. The agent's resident memory with 10,000 entries (1,000 SVIDs minted: the cache limit).
// 4. A full sync of N entries from the server into a real agent: from the agent's start until
//    its debug endpoint reports all N entries.
// 5. `writ dev` time to ready (goal under 5 s): from the spawn until it prints "ready in",
//    on a fresh directory (a new CA, keys, a join token) and again on the same directory.
#if canImport(Glibc)
import Glibc
#endif
import AsyncHTTPClient
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import SPIFFEWorkloadAPI
import SPIFFEWorkloadProto
import Synchronization
import WritTestSupport

/// A `writ agent run` child process.
final class AgentChild: Sendable {
    let process: Process
    let socket: String
    let adminSocket: String
    let data: String

    init(writ: String, directory: TemporaryDirectory, server: ServerProcess, token: String, bundlePEM: String, readyTimeout: Duration = .seconds(600),
         extra: [String] = []) async throws {
        data = directory.file("agent/data").path
        socket = directory.file("agent/api.sock").path
        adminSocket = directory.file("agent/admin.sock").path
        let bundle = directory.file("bundle.pem")
        try Data(bundlePEM.utf8).write(to: bundle)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: writ)
        process.arguments = ["agent", "run", "--server", server.ready["listen"] ?? "", "--data-dir", data, "--socket", socket,
                             "--agent-admin-socket", adminSocket, "--http-listen", "127.0.0.1:0", "--join-token", token,
                             "--trust-bundle", bundle.path, "--log-level", ProcessInfo.processInfo.environment["WRIT_BENCH_AGENT_LOG_LEVEL"] ?? "warning"] + extra
        process.standardOutput = FileHandle.standardError
        process.standardError = FileHandle.standardError
        try process.run()
        self.process = process
        let deadline = ContinuousClock.now + readyTimeout
        while !FileManager.default.fileExists(atPath: data + "/ready.json") {
            guard process.isRunning, ContinuousClock.now < deadline else { throw BenchFailure("the agent did not become ready") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    var agentID: String {
        let object = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: data + "/ready.json")))) as? [String: Any]
        return object?["agent_id"] as? String ?? ""
    }

    /// Resident memory in KiB.
    var rssKiB: Int {
        let text = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first { !$0.isEmpty } ?? "") ?? 0
    }

    /// The agent's debug report (entries, SVIDs, …).
    func debug(client: HTTPClient) async throws -> [String: Any] {
        try await Admin(client: client, socket: adminSocket).json(.GET, "/v1/debug")
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

func percentiles(_ samples: [Double]) -> [String: Double] {
    let sorted = samples.sorted()
    func at(_ p: Double) -> Double { sorted[min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))] }
    return ["p50": at(0.50), "p99": at(0.99), "max": sorted.last ?? 0, "mean": sorted.reduce(0, +) / Double(max(1, sorted.count))]
}

/// Latency of one FetchX509SVID (new connection, first message) and of the transport floor.
func fetchLatency(agent: AgentChild, samples: Int) async throws -> [String: Any] {
    let client = try WorkloadAPIClient(endpoint: "unix://" + agent.socket)
    let deadline = ContinuousClock.now + .seconds(60)
    while true {
        do { _ = try await client.fetchX509Context(); break } catch {
            guard ContinuousClock.now < deadline else { throw BenchFailure("the workload never got its identity: \(error)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
    var fetch: [Double] = [], floor: [Double] = []
    for _ in 0..<samples {
        let start = ContinuousClock.now
        _ = try await client.fetchX509Context()
        fetch.append(seconds(ContinuousClock.now - start) * 1000)

        let bare = ContinuousClock.now
        let transport = try HTTP2ClientTransport.Posix(target: .unixDomainSocket(path: agent.socket), transportSecurity: .plaintext)
        try await withGRPCClient(transport: transport) { grpc in
            do {
                try await SpiffeWorkloadAPI.Client(wrapping: grpc).fetchX509SVID(X509SVIDRequest()) { response in
                    for try await _ in response.messages { break }
                }
                throw BenchFailure("a call without the security header was answered")
            } catch let error as RPCError where error.code == .invalidArgument {}
        }
        floor.append(seconds(ContinuousClock.now - bare) * 1000)
    }
    let (f, b) = (percentiles(fetch), percentiles(floor))
    return ["samples": samples, "p50_ms": f["p50"]!, "p99_ms": f["p99"]!, "max_ms": f["max"]!,
            "floor_p50_ms": b["p50"]!, "floor_p99_ms": b["p99"]!, "ratio_p50": b["p50"]! / f["p50"]!]
}

/// What the watchers saw: how many have their first message, and when each saw the rotation.
final class WatchTally: Sendable {
    let first = Mutex(0)
    let arrivals = Mutex<[ContinuousClock.Instant]>([])
}

/// 1,000 watchers; a forced root rotation; time until each has the new bundle.
func rotationToWatchers(agent: AgentChild, admin: Admin, watchers: Int) async throws -> [String: Any] {
    let connections = 20
    let perConnection = watchers / connections
    let tally = WatchTally()
    let (allFirst, firstDone) = AsyncStream.makeStream(of: Void.self)
    let (allNew, newDone) = AsyncStream.makeStream(of: Void.self)
    let stop = Task {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<connections {
                group.addTask {
                    let transport = try HTTP2ClientTransport.Posix(target: .unixDomainSocket(path: agent.socket), transportSecurity: .plaintext)
                    try await withGRPCClient(transport: transport) { grpc in
                        let api = SpiffeWorkloadAPI.Client(wrapping: grpc)
                        try await withThrowingTaskGroup(of: Void.self) { streams in
                            for _ in 0..<perConnection {
                                streams.addTask {
                                    try await api.fetchX509SVID(X509SVIDRequest(), metadata: ["workload.spiffe.io": "true"]) { response in
                                        var firstBundle: Data?
                                        for try await message in response.messages {
                                            guard let bundle = message.svids.first?.bundle else { continue }
                                            if firstBundle == nil {
                                                firstBundle = bundle
                                                if tally.first.withLock({ $0 += 1; return $0 }) == watchers { firstDone.yield() }
                                            } else if bundle != firstBundle {
                                                let count = tally.arrivals.withLock { $0.append(.now); return $0.count }
                                                if count == watchers { newDone.yield() }
                                                return
                                            }
                                        }
                                    }
                                }
                            }
                            try await streams.waitForAll()
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }
    var first = allFirst.makeAsyncIterator()
    let setup = Task { try await Task.sleep(for: .seconds(120)); firstDone.finish() }
    _ = await first.next()
    setup.cancel()
    guard tally.first.withLock({ $0 }) == watchers else {
        stop.cancel()
        throw BenchFailure("only \(tally.first.withLock { $0 }) of \(watchers) watchers received their first message")
    }
    let start = ContinuousClock.now
    _ = try await admin.call(.POST, "/v1/authorities/prepare", ["kind": "root"])
    let acknowledged = ContinuousClock.now
    var done = allNew.makeAsyncIterator()
    let timeout = Task { try await Task.sleep(for: .seconds(120)); newDone.finish() }
    _ = await done.next()
    timeout.cancel()
    stop.cancel()
    let times = tally.arrivals.withLock { $0 }
    guard times.count == watchers else { throw BenchFailure("only \(times.count) of \(watchers) watchers saw the rotation") }
    let delays = times.map { seconds($0 - acknowledged) * 1000 }
    let p = percentiles(delays)
    return ["watchers": watchers, "all_ms": seconds((times.max() ?? acknowledged) - acknowledged) * 1000,
            "p50_ms": p["p50"]!, "p99_ms": p["p99"]!, "admin_ms": seconds(acknowledged - start) * 1000]
}

func agentBenchmarks(_ options: Options, client: HTTPClient) async throws -> [String: Any] {
    var results: [String: Any] = [:]
    do {
        // 1–3 on one server and agent: latency and rotation with one entry, then memory at 10,000.
        let directory = try TemporaryDirectory(prefix: "writ-bench-agent")
        let server = try await ServerProcess(writ: options.writ, directory: directory, name: "server", extra: [])
        defer { server.stop() }
        let admin = Admin(client: client, socket: server.socket)
        let (token, _, bundlePEM) = try await admin.agent(server)
        // 1,000 watchers of one uid connect at once: above the default per-uid rate limit (200/s),
        // which is not what is measured here.
        let agent = try await AgentChild(writ: options.writ, directory: directory, server: server, token: token, bundlePEM: bundlePEM,
                                         extra: ["--workload-rate-limit", "100000"])
        defer { agent.stop() }
        let uid = geteuid()
        _ = try await admin.json(.POST, "/v1/entries", ["entries": [["spiffe_id": "spiffe://bench.example/me", "parent_id": agent.agentID,
                                                                    "selectors": [["type": "unix", "value": "uid:\(uid)"]]]]])
        FileHandle.standardError.write(Data("writ-bench-registry: FetchX509SVID latency…\n".utf8))
        results["fetch_x509"] = try await fetchLatency(agent: agent, samples: 500)
        FileHandle.standardError.write(Data("writ-bench-registry: a forced rotation to 1,000 watchers…\n".utf8))
        results["rotation_watchers"] = try await rotationToWatchers(agent: agent, admin: admin, watchers: 1000)

        FileHandle.standardError.write(Data("writ-bench-registry: agent memory with 10,000 entries…\n".utf8))
        let before = agent.rssKiB
        // Selectors the bench does not match (uids from 100,000 up): held, minted up to the limit.
        for start in stride(from: 0, to: 10_000, by: 1000) {
            let batch = (start..<(start + 1000)).map { index -> [String: Any] in
                ["spiffe_id": "spiffe://bench.example/held/\(index)", "parent_id": agent.agentID,
                 "selectors": [["type": "unix", "value": "uid:\(100_000 + index)"]]]
            }
            _ = try await admin.json(.POST, "/v1/entries", ["entries": batch])
        }
        let deadline = ContinuousClock.now + .seconds(300)
        var report: [String: Any] = [:]
        while ContinuousClock.now < deadline {
            report = try await agent.debug(client: client)
            if report["entries"] as? Int == 10_001, report["svids"] as? Int ?? 0 >= 1000 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        guard report["entries"] as? Int == 10_001 else { throw BenchFailure("the agent holds \(report["entries"] ?? 0) entries, not 10,001") }
        try await Task.sleep(for: .seconds(2))
        results["memory_10k"] = ["entries": 10_001, "svids": report["svids"] ?? 0, "rss_before_kib": before, "rss_kib": agent.rssKiB]
    }
    do {
        // 4: a real agent's full sync of N entries.
        let directory = try TemporaryDirectory(prefix: "writ-bench-agent-sync")
        let server = try await ServerProcess(writ: options.writ, directory: directory, name: "server", extra: [])
        defer { server.stop() }
        let admin = Admin(client: client, socket: server.socket)
        let (token, agentID, bundlePEM) = try await admin.agent(server)
        FileHandle.standardError.write(Data("writ-bench-registry: \(options.entries) entries for a real agent…\n".utf8))
        try await admin.createEntries((0..<options.entries).map { "spiffe://bench.example/synced/\($0)" }, parent: agentID)
        try await Task.sleep(for: .seconds(1))
        let start = ContinuousClock.now
        let agent = try await AgentChild(writ: options.writ, directory: directory, server: server, token: token, bundlePEM: bundlePEM)
        defer { agent.stop() }
        let ready = ContinuousClock.now
        let report = try await agent.debug(client: client)
        guard report["entries"] as? Int == options.entries else { throw BenchFailure("the agent holds \(report["entries"] ?? 0) entries after its first sync") }
        results["agent_full_sync"] = ["entries": options.entries, "seconds": seconds(ready - start), "rss_kib": agent.rssKiB]
    }
    FileHandle.standardError.write(Data("writ-bench-registry: writ dev time to ready…\n".utf8))
    results["dev_ready"] = try await devReady(writ: options.writ)
    return results
}

/// `writ dev` from spawn to its "ready in" line, on a fresh directory and then on the same
/// one again (each run stopped with SIGINT, as Ctrl-C does).
func devReady(writ: String) async throws -> [String: Any] {
    let directory = try TemporaryDirectory(prefix: "writ-bench-dev")
    var runs: [Double] = []
    for _ in 0..<2 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: writ)
        process.arguments = ["dev", "--data-dir", directory.file("dev").path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let start = ContinuousClock.now
        try process.run()
        let reader = output.fileHandleForReading
        let ready: Duration? = await Task.detached {
            var text = ""
            while !text.contains("ready in") {
                let chunk = reader.availableData
                if chunk.isEmpty { return nil }
                text += String(decoding: chunk, as: UTF8.self)
            }
            return ContinuousClock.now - start
        }.value
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        guard let ready else { throw BenchFailure("writ dev exited (status \(process.terminationStatus)) before it was ready") }
        runs.append(seconds(ready))
    }
    return ["fresh_s": runs[0], "again_s": runs[1], "goal_s": 5.0]
}
