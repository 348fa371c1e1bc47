#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import WritTestSupport

/// Issue 4's acceptance tests on the Workload API of a real agent process: rotation reaching
/// watchers in other processes, isolation between concurrent workloads, callers that vanish
/// mid-attestation, bad input that must not disturb anyone else, and server reflection.
@Suite(.serialized) struct AgentWorkloadTests {
    static func lines(_ file: URL) -> [[String: Any]] {
        ((try? String(contentsOf: file, encoding: .utf8)) ?? "").split(separator: "\n").map { jsonObject(String($0)) }
    }

    /// Short-lived SVIDs (20 s, the server's configured default) are rotated at half-life:
    /// py-spiffe's own watcher (`stream_x509_contexts`) and a Swift SDK watcher (`writ api
    /// watch`) in other processes each receive a new serial before the old certificate expires.
    /// A forced root rotation and a JWT key rotation reach open bundle streams; after a forced
    /// intermediate rotation (prepare, activate) the watchers' next SVIDs chain through the new
    /// intermediate.
    @Test func rotationsReachWatchersInOtherProcesses() async throws {
        let server = try await ServerHarness.start(extraArguments: ["--x509-svid-ttl", "20s"])
        defer { Task { await server.stop() } }
        let agent = try await AgentProcessHarness.start(server: server)
        defer { Task { await agent.stop() } }
        try await AgentAPITests.entry(server, "spiffe://example.org/svc/rotating", parent: agent.agentID, selector: "unix:uid:\(geteuid())")
        let python = agent.directory.file("python-watch.jsonl"), swift = agent.directory.file("swift-watch.jsonl"), bundles = agent.directory.file("bundles.jsonl")
        let py = try AgentProcessTests.spawn(try TestEnvironment.interopPython(), [TestEnvironment.interopScript("workload_client.py"), "pywatch", agent.socket, "90"], stdout: python)
        let sdk = try AgentProcessTests.spawn(try TestEnvironment.executable("writ"), ["api", "watch", "--socket", agent.socket, "--timeout", "30s"], stdout: swift)
        let bundleWatch = try AgentProcessTests.spawn(try TestEnvironment.interopPython(), [TestEnvironment.interopScript("workload_client.py"), "watch-bundles", agent.socket], stdout: bundles)
        defer { for process in [py, sdk, bundleWatch] where process.isRunning { process.terminate() } }

        // Serials as each watcher saw them, and when the test first saw each.
        var firstSeen: [String: Date] = [:]
        var firstNotAfter: [String: Double] = [:]
        func observe() {
            for line in Self.lines(python) {
                if let serial = (line["serials"] as? [String])?.first, firstSeen["py:" + serial] == nil {
                    firstSeen["py:" + serial] = Date()
                    firstNotAfter["py"] = firstNotAfter["py"] ?? (line["not_after"] as? [Double])?.first
                }
            }
            for line in Self.lines(swift) {
                guard let svid = (line["svids"] as? [[String: Any]])?.first, let serial = svid["serial_number"] as? String else { continue }
                if firstSeen["swift:" + serial] == nil {
                    firstSeen["swift:" + serial] = Date()
                    if firstNotAfter["swift"] == nil, let text = svid["expires_at"] as? String, let date = ISO8601DateFormatter().date(from: text) {
                        firstNotAfter["swift"] = date.timeIntervalSince1970
                    }
                }
            }
        }
        let rotated = try await AgentProcessHarness.eventually(.seconds(60)) {
            observe()
            return firstSeen.keys.filter { $0.hasPrefix("py:") }.count >= 2 && firstSeen.keys.filter { $0.hasPrefix("swift:") }.count >= 2
        }
        #expect(rotated, "both watchers must see a rotation: \(firstSeen)\n\(Self.lines(python))\n\(Self.lines(swift))\n\(agent.agentLog)")
        for side in ["py", "swift"] {
            let times = firstSeen.filter { $0.key.hasPrefix(side + ":") }.values.sorted()
            guard times.count >= 2, let notAfter = firstNotAfter[side] else { continue }
            #expect(times[1].timeIntervalSince1970 < notAfter, "\(side): the new SVID came after the old one expired")
            print("\(side) watcher: new X.509-SVID \(String(format: "%.1f", notAfter - times[1].timeIntervalSince1970)) s before the old one expired")
        }

        // Forced rotations reach the bundle streams.
        func digests(_ kind: String) -> [String] { Self.lines(bundles).filter { $0["kind"] as? String == kind }.compactMap { $0["digest"] as? String } }
        #expect(try await AgentProcessHarness.eventually(.seconds(30)) { !digests("x509").isEmpty && !digests("jwt").isEmpty }, "\(Self.lines(bundles))")
        let (x509Before, jwtBefore) = (digests("x509").count, digests("jwt").count)
        let prepared = try await server.writ(["authority", "x509", "prepare", "--kind", "root"])
        #expect(prepared.status == 0, "\(prepared.summary)")
        #expect(try await AgentProcessHarness.eventually(.seconds(30)) { digests("x509").count > x509Before }, "a prepared root must reach X.509 bundle streams: \(Self.lines(bundles))")
        #expect(try await server.writ(["authority", "jwt", "prepare"]).status == 0)
        #expect(try await AgentProcessHarness.eventually(.seconds(30)) { digests("jwt").count > jwtBefore }, "a prepared JWT key must reach JWT bundle streams: \(Self.lines(bundles))")

        // A forced intermediate rotation (prepare, activate): the next SVID the py-spiffe watcher
        // receives chains through the new intermediate, without any restart.
        func issuers() -> [String] { Self.lines(python).compactMap { ($0["issuers"] as? [String])?.first } }
        let oldIssuer = try #require(issuers().last)
        #expect(try await server.writ(["authority", "x509", "prepare", "--kind", "intermediate"]).status == 0)
        let activated = try await server.writ(["authority", "x509", "activate", "--kind", "intermediate"])
        #expect(activated.status == 0, "\(activated.summary)")
        #expect(try await AgentProcessHarness.eventually(.seconds(60)) { issuers().contains { $0 != oldIssuer } },
                "after the intermediate's activation, watchers must receive SVIDs under it: \(Self.lines(python))")
    }

    /// Two workloads with different uids and binaries (root's python with py-spiffe, uid
    /// 65534's `writ api`) fetch 100 times each, concurrently; each only ever receives its own.
    @Test func concurrentWorkloadsOnlyEverReceiveTheirOwn() async throws {
        guard getuid() == 0 else { throw TestEnvironment.MissingPrerequisite("this test runs a workload as uid 65534 with setpriv: run it as root") }
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let agent = try await AgentProcessHarness.start(server: server)
        defer { Task { await agent.stop() } }
        try await AgentAPITests.entry(server, "spiffe://example.org/svc/root-python", parent: agent.agentID, selector: "unix:uid:0")
        try await AgentAPITests.entry(server, "spiffe://example.org/svc/nobody-writ", parent: agent.agentID, selector: "unix:uid:65534")
        let writ = try TestEnvironment.executable("writ")
        async let python = agent.client(["fetch-loop", agent.socket, "100"])
        async let nobody = ProcessRunner.run(try TestEnvironment.tool("setpriv"), [
            "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/bash", "-c",
            "for i in $(seq 100); do \"$0\" api fetch x509 --socket \"$1\" --timeout 30s --output json || exit 1; done", writ, agent.socket])
        let (pythonResult, nobodyResult) = try await (python, nobody)
        #expect(pythonResult.status == 0, "\(pythonResult.summary)")
        #expect(jsonObject(pythonResult.stdout)["ids"] as? [String] == ["spiffe://example.org/svc/root-python"], "\(pythonResult.stdout)")
        #expect(jsonObject(pythonResult.stdout)["fetches"] as? Int == 100)
        #expect(nobodyResult.status == 0, "\(nobodyResult.summary)")
        let ids = nobodyResult.stdout.split(separator: "\n").filter { $0.contains("\"spiffe_id\"") }
        #expect(ids.count == 100 && ids.allSatisfy { $0.contains("spiffe://example.org/svc/nobody-writ") }, "\(Set(ids))")
        try await agent.stopAndCheckKeysOnDisk()
    }

    /// A caller that exits while the agent attests it (a delay injected into attestation) is
    /// refused as Unauthenticated and receives nothing: the metrics count the race and no SVID.
    @Test func aCallerThatExitsMidAttestationReceivesNothing() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let agent = try await AgentProcessHarness.start(server: server, environment: ["WRIT_TEST_ATTESTATION_DELAY_MS": "1500"])
        defer { Task { await agent.stop() } }
        try await AgentAPITests.entry(server, "spiffe://example.org/svc/vanishing", parent: agent.agentID, selector: "unix:uid:\(geteuid())")
        let delivered = "writ_agent_svids_delivered_total"
        let races = "writ_agent_workload_attestation_races_total"
        let before = (try await agent.metric(delivered), try await agent.metric(races))
        let vanished = try await agent.client(["vanish", agent.socket, "0.3"])
        #expect(vanished.status == 0, "\(vanished.summary)")
        let counted = try await AgentProcessHarness.eventually(.seconds(15)) { try await agent.metric(races) > before.1 }
        let metricsText = (try? await agent.httpGet("/metrics").1) ?? ""
        #expect(counted, "the race was not counted:\n\(metricsText)")
        #expect(try await agent.metric("writ_agent_workload_api_calls_total{method=\"FetchX509SVID\",outcome=\"unauthenticated\"}") >= 1)
        #expect(try await agent.metric(delivered) == before.0, "an SVID was delivered to a vanished caller")
    }

    /// FetchX509SVID calls the agent answered with an identity.
    static let fetchesServed = "writ_agent_workload_api_calls_total{method=\"FetchX509SVID\",outcome=\"ok\"}"

    /// Garbage on the socket, requests without the security header, well-framed requests that
    /// are not protobuf (InvalidArgument), and 1,000 clients (waves of 200) that connect and
    /// vanish: a py-spiffe client fetching from before the abuse until after it never fails,
    /// and the agent's open file count returns to its baseline.

    @Test func badInputAndVanishingClientsDisturbNoOne() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let agent = try await AgentProcessHarness.start(server: server)
        defer { Task { await agent.stop() } }
        try await AgentAPITests.entry(server, "spiffe://example.org/svc/steady", parent: agent.agentID, selector: "unix:uid:\(geteuid())")
        #expect(try await AgentProcessHarness.eventually(.seconds(30)) { try await agent.client(["fetch-loop", agent.socket, "1"]).status == 0 })
        let baseline = agent.openFiles

        // grpc.health.v1 beside the Workload API.
        let health = try await agent.client(["health", agent.socket, "SpiffeWorkloadAPI"])
        #expect(jsonObject(health.stdout)["code"] as? String == "OK" && jsonObject(health.stdout)["status"] as? Int == 1, "\(health.summary)")
        let unknown = try await agent.client(["health", agent.socket, "no.such.Service"])
        #expect(jsonObject(unknown.stdout)["code"] as? String == "NOT_FOUND", "\(unknown.summary)")

        let noHeader = try await agent.client(["raw", agent.socket, "FetchX509SVID", "--no-header"])
        #expect(jsonObject(noHeader.stdout)["code"] as? String == "INVALID_ARGUMENT", "\(noHeader.summary)")

        // Well-framed calls whose request is not protobuf are refused, not crashed on.
        for method in ["FetchX509SVID", "FetchJWTBundles"] {
            let malformed = try await agent.client(["malformed", agent.socket, method])
            let code = jsonObject(malformed.stdout)["code"] as? String
            #expect(malformed.status == 0 && code == "INVALID_ARGUMENT", "\(method): \(malformed.summary)")
        }

        // A py-spiffe client fetches over and over from before the abuse until after it.
        let stop = agent.directory.file("steady.stop").path
        async let steady = agent.client(["fetch-until", agent.socket, stop])
        #expect(try await AgentProcessHarness.eventually(.seconds(30)) { try await agent.metric(Self.fetchesServed) >= 3 }, "the steady client did not start")
        let servedBefore = try await agent.metric(Self.fetchesServed)
        let socketPath = agent.socket
        let abuse = Task.detached {
            let garbage: [[UInt8]] = [Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), Array(repeating: 0xFF, count: 4096),
                                      Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 4, 1, 0, 0, 0, 0, 0], []]
            for wave in 0..<5 {
                var descriptors: [Int32] = []
                for index in 0..<200 {
                    let fd = Self.connect(socketPath)
                    guard fd >= 0 else { continue }
                    let bytes = garbage[(wave * 200 + index) % garbage.count]
                    if !bytes.isEmpty { _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
                    descriptors.append(fd)
                }
                for fd in descriptors { close(fd) }
            }
        }
        await abuse.value
        let servedAfter = try await AgentProcessHarness.eventually(.seconds(30)) { try await agent.metric(Self.fetchesServed) >= servedBefore + 3 }
        _ = FileManager.default.createFile(atPath: stop, contents: nil)
        let steadyResult = try await steady
        #expect(steadyResult.status == 0, "a well-behaved client failed while others misbehaved: \(steadyResult.summary)")
        #expect(servedAfter && (jsonObject(steadyResult.stdout)["fetches"] as? Int ?? 0) >= 6, "\(steadyResult.summary)")
        var now = agent.openFiles
        let settled = try await AgentProcessHarness.eventually(.seconds(30)) { now = agent.openFiles; return now <= baseline + 2 }
        #expect(settled, "open files: \(baseline) before, \(now) after 1,000 vanished clients")
        print("agent open files: \(baseline) before, \(now) after 1,000 vanished clients")
        #expect(try await agent.writ(["agent", "healthcheck"]).status == 0)
    }

    /// Server reflection on the Workload API socket, driven by grpcio-reflection and a generic
    /// client that imports no Workload API stubs (as grpcurl works): it lists the services,
    /// resolves SpiffeWorkloadAPI and grpc.health.v1.Health with their imports into a descriptor
    /// pool, calls FetchX509SVID and Health/Check with message classes built from those
    /// descriptors, and speaks grpc.reflection.v1 on one stream (imports sent once, unknown
    /// symbols NOT_FOUND, an empty request INVALID_ARGUMENT, the stream going on after errors).
    @Test func reflectionDescribesTheWorkloadAPIToAGenericClient() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let agent = try await AgentProcessHarness.start(server: server)
        defer { Task { await agent.stop() } }
        let id = "spiffe://example.org/svc/reflected"
        try await AgentAPITests.entry(server, id, parent: agent.agentID, selector: "unix:uid:\(geteuid())")
        #expect(try await AgentProcessHarness.eventually(.seconds(30)) { try await agent.client(["fetch-loop", agent.socket, "1"]).status == 0 })

        let run = try await ProcessRunner.run(try TestEnvironment.interopPython(), [TestEnvironment.interopScript("reflection_client.py"), agent.socket])
        try #require(run.status == 0, "\(run.summary)")
        let seen = jsonObject(run.stdout)
        #expect(seen["services"] as? [String] == ["SpiffeWorkloadAPI", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"], "\(run.stdout)")
        #expect(seen["workload_file"] as? String == "spiffe/workload/workload.proto")
        #expect(seen["workload_imports"] as? [String] == ["google/protobuf/struct.proto"])
        #expect(seen["health_file"] as? String == "grpc/health/v1/health.proto")
        let methods = seen["methods"] as? [String: [String: Any]] ?? [:]
        let expected: [(String, String, String, Bool)] = [
            ("FetchX509SVID", "X509SVIDRequest", "X509SVIDResponse", true),
            ("FetchX509Bundles", "X509BundlesRequest", "X509BundlesResponse", true),
            ("FetchJWTSVID", "JWTSVIDRequest", "JWTSVIDResponse", false),
            ("FetchJWTBundles", "JWTBundlesRequest", "JWTBundlesResponse", true),
            ("ValidateJWTSVID", "ValidateJWTSVIDRequest", "ValidateJWTSVIDResponse", false),
            ("FetchWITSVID", "WITSVIDRequest", "WITSVIDResponse", true),
            ("FetchWITBundles", "WITBundlesRequest", "WITBundlesResponse", true),
        ]
        #expect(Set(methods.keys) == Set(expected.map(\.0)), "\(methods.keys.sorted())")
        for (name, input, output, streaming) in expected {
            let method = methods[name] ?? [:]
            #expect(method["input"] as? String == input && method["output"] as? String == output, "\(name): \(method)")
            #expect(method["server_streaming"] as? Bool == streaming && method["client_streaming"] as? Bool == false, "\(name): \(method)")
        }
        let svids = seen["svids"] as? [[String: Any]] ?? []
        #expect(svids.count == 1 && svids.first?["spiffe_id"] as? String == id && svids.first?["uri_san"] as? [String] == [id], "\(svids)")
        #expect(seen["health"] as? String == "SERVING")

        let v1 = seen["v1"] as? [[String: Any]] ?? []
        try #require(v1.count == 5, "one answer per request, in order: \(v1)")
        #expect(v1[0]["files"] as? [String] == ["spiffe/workload/workload.proto", "google/protobuf/struct.proto"] && v1[0]["host"] as? String == "writ-test", "\(v1[0])")
        #expect(v1[1]["files"] as? [String] == ["spiffe/workload/workload.proto"], "imports already sent on the stream are not repeated: \(v1[1])")
        #expect(v1[2]["error_code"] as? Int == 5 && v1[2]["message"] as? String == "no file declares the symbol `no.such.Symbol`", "\(v1[2])")
        #expect(v1[3]["error_code"] as? Int == 3, "\(v1[3])")
        #expect(v1[4]["files"] as? [String] == ["google/protobuf/struct.proto"], "\(v1[4])")
    }

    /// A connected Unix socket to `path` (or -1).
    static func connect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.prefix(buffer.count - 1).enumerated() { buffer[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { close(fd); return -1 }
        return fd
    }
}
