#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import SwiftASN1
import Testing
import WritTestSupport
import X509

/// A `writ agent run` process for one test, attached to a ``ServerHarness``: its data dir, its
/// Workload API socket and its admin socket live in a temporary directory of its own.
final class AgentProcessHarness: @unchecked Sendable {
    let directory: TemporaryDirectory
    let server: ServerHarness
    private(set) var process: Process
    let log: URL
    let baseArguments: [String]
    let environment: [String: String]

    var dataDir: String { directory.file("data").path }
    var socket: String { directory.file("public/api.sock").path }
    var adminSocket: String { directory.file("private/admin.sock").path }

    /// Starts an agent and waits for ready.json. By default it trusts the server's PEM bundle
    /// (`--trust-bundle`) and attests with a fresh join token; `trust` replaces the first (given
    /// the bundle's directory) and `attestation` the second. With `waitForReady` false it
    /// returns once the process has started.
    static func start(server: ServerHarness, extraArguments: [String] = [], joinToken: String? = nil,
                      environment: [String: String] = [:], trust: ((TemporaryDirectory) throws -> [String])? = nil,
                      attestation: [String]? = nil, waitForReady: Bool = true) async throws -> AgentProcessHarness {
        let directory = try TemporaryDirectory(prefix: "writ-agt", keptForKeyScan: .agent)
        _ = chmod(directory.path, 0o755)
        let bundle = try await server.writ(["bundle", "show", "--format", "pem"])
        guard bundle.status == 0 else { throw TestFailure("writ bundle show: \(bundle.summary)") }
        try Data(bundle.stdout.utf8).write(to: directory.file("bundle.pem"))
        var attest: [String]
        if let attestation { attest = attestation } else if let joinToken { attest = ["--join-token", joinToken] } else {
            let generated = try await server.writ(["token", "generate", "--output", "json"])
            guard generated.status == 0, let text = jsonObject(generated.stdout)["token"] as? String else { throw TestFailure("writ token generate: \(generated.summary)") }
            attest = ["--join-token", text]
        }
        let listen = server.ready["listen"] as? String ?? ""
        let trusted = try trust?(directory) ?? ["--trust-bundle", directory.file("bundle.pem").path]
        let arguments = ["agent", "run", "--server", listen, "--data-dir", directory.file("data").path,
                         "--socket", directory.file("public/api.sock").path, "--agent-admin-socket", directory.file("private/admin.sock").path,
                         "--http-listen", "127.0.0.1:0"] + trusted + extraArguments
        let harness = try AgentProcessHarness(directory: directory, server: server, arguments: arguments, environment: environment)
        try harness.launch(extra: attest)
        guard waitForReady else { return harness }
        do { try await harness.waitUntilReady() } catch {
            await harness.stop()
            throw error
        }
        return harness
    }

    private init(directory: TemporaryDirectory, server: ServerHarness, arguments: [String], environment: [String: String]) throws {
        self.environment = environment
        self.directory = directory
        self.server = server
        baseArguments = arguments
        log = directory.file("agent.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process = Process()
    }

    private func launch(extra: [String]) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: try TestEnvironment.executable("writ"))
        process.arguments = baseArguments + extra
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardError = handle
        process.standardOutput = handle
        try process.run()
        IssuedKeyLedger.current?.register(process: directory.url.lastPathComponent, pid: process.processIdentifier)
    }

    func waitUntilReady(timeout: Duration = .seconds(60)) async throws {
        let ready = directory.file("data/ready.json").path
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if FileManager.default.fileExists(atPath: ready) { return }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        if FileManager.default.fileExists(atPath: ready) { return }
        throw TestFailure("writ agent did not become ready (\(process.isRunning ? "still running" : "exit \(process.terminationStatus)")):\n\(agentLog)")
    }

    /// Stops the agent (SIGTERM) and starts it again on the same data dir, without a join token.
    func restart() async throws {
        await stop()
        try? FileManager.default.removeItem(atPath: directory.file("data/ready.json").path)
        try launch(extra: [])
        try await waitUntilReady()
    }

    var ready: [String: Any] {
        jsonObject((try? String(contentsOfFile: directory.file("data/ready.json").path, encoding: .utf8)) ?? "")
    }

    var agentID: String { ready["agent_id"] as? String ?? "" }
    var pid: Int32 { Int32(ready["pid"] as? Int ?? 0) }

    /// Open file descriptors of the agent process.
    var openFiles: Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1 }

    /// The value of one Prometheus sample line (`name{labels}`), 0 when absent.
    func metric(_ sample: String) async throws -> Double {
        let (_, text) = try await httpGet("/metrics")
        for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.split(separator: " ").last ?? "") ?? 0
        }
        return 0
    }
    var agentLog: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
    var isRunning: Bool { process.isRunning }

    /// Runs `writ` with the agent's admin socket.
    func writ(_ arguments: [String]) async throws -> ProcessRunner.Result {
        try await ProcessRunner.run(try TestEnvironment.executable("writ"), arguments + ["--agent-admin-socket", adminSocket])
    }

    /// Runs the interop client (py-spiffe, grpcio, PyJWT) against the agent's socket.
    func client(_ arguments: [String]) async throws -> ProcessRunner.Result {
        try await ProcessRunner.run(try TestEnvironment.interopPython(), [TestEnvironment.interopScript("workload_client.py")] + arguments)
    }

    /// `GET` on the agent's HTTP listener.
    func httpGet(_ path: String) async throws -> (Int, String) {
        try await curlGet(ready["http_listen"] as? String ?? "", path)
    }

    /// Polls `condition` every 100 ms until it holds or `timeout` passes.
    static func eventually(_ timeout: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }

    func stop() async {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = ContinuousClock.now + .seconds(20)
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// The files an agent keeps in its data dir; nothing else may be there.
    static let dataFiles: Set<String> = ["agent-svid.pem", "agent-key.pem", "bundle.pem", "ready.json"]

    /// Stops the agent and checks what it left on disk: its data dir holds only ``dataFiles``,
    /// the one private key there is its own (the agent SVID's key), and no other file in its
    /// directory holds a private key — workload keys live only in the agent's memory.
    func stopAndCheckKeysOnDisk() async throws {
        await stop()
        let data = directory.file("data").path
        let names = try FileManager.default.contentsOfDirectory(atPath: data)
        #expect(Set(names).isSubset(of: Self.dataFiles), "unexpected files in the agent's data dir: \(names.sorted())")
        let keyPEM = try String(contentsOfFile: data + "/agent-key.pem", encoding: .utf8)
        let chainPEM = try String(contentsOfFile: data + "/agent-svid.pem", encoding: .utf8)
        let key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
        let leaf = try Certificate(pemDocument: try #require(try PEMDocument.parseMultiple(pemString: chainPEM).first, "agent-svid.pem is empty"))
        #expect(leaf.publicKey == Certificate.PublicKey(key.publicKey), "agent-key.pem is not the agent SVID's key")
        let everything = FileManager.default.enumerator(atPath: directory.path)?.compactMap { $0 as? String } ?? []
        for path in everything where path != "data/agent-key.pem" {
            let full = directory.file(path).path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue,
                  let bytes = FileManager.default.contents(atPath: full) else { continue }
            #expect(bytes.range(of: Data("PRIVATE KEY".utf8)) == nil && bytes.range(of: key.rawRepresentation) == nil,
                    "`\(path)` in the agent's directory holds a private key")
        }
    }
}
