#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import WritStorePostgres
import WritTestSupport

/// A `writ server run` process for one test, on SQLite in its data dir or on a database of its
/// own on the test PostgreSQL server.
final class ServerHarness: @unchecked Sendable {
    let directory: TemporaryDirectory
    let socket: String
    let process: Process
    let log: URL
    let arguments: [String]
    /// Variables added to the server's environment (test hooks such as WRIT_TEST_AUDIT_FAULT_FILE).
    let environment: [String: String]
    private var dropDatabase: (() async -> Void)?

    var dataDir: String { directory.file("data").path }

    /// Starts the server and waits for its `ready.json`.
    static func start(backend: String = "sqlite", extraArguments: [String] = [], socketDirectoryMode: mode_t? = nil,
                      environment: [String: String] = [:]) async throws -> ServerHarness {
        let directory = try TemporaryDirectory(prefix: "writ-srv")
        let socketDir = directory.file("admin").path
        if let mode = socketDirectoryMode {
            #expect(mkdir(socketDir, mode) == 0)
            _ = chmod(socketDir, mode)
            _ = chmod(directory.path, 0o755)
        }
        var arguments = ["server", "run", "--data-dir", directory.file("data").path, "--trust-domain", "example.org",
                         "--admin-socket", socketDir + "/admin.sock", "--http-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"] + extraArguments
        var drop: (() async -> Void)?
        if backend == "postgres" {
            let (url, dropper) = try await Self.createDatabase()
            arguments += ["--datastore", url]
            drop = dropper
        }
        let harness = try ServerHarness(directory: directory, socket: socketDir + "/admin.sock", arguments: arguments, environment: environment)
        harness.dropDatabase = drop
        do { try await harness.waitUntilReady() } catch {
            await harness.stop()
            throw error
        }
        return harness
    }

    private init(directory: TemporaryDirectory, socket: String, arguments: [String], environment: [String: String] = [:]) throws {
        self.directory = directory
        self.socket = socket
        self.arguments = arguments
        self.environment = environment
        log = directory.file("server.log")
        if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
        process = Process()
        process.executableURL = URL(fileURLWithPath: try TestEnvironment.executable("writ"))
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardError = handle
        process.standardOutput = handle
        try process.run()
        IssuedKeyLedger.current?.register(server: directory.url.lastPathComponent, adminSocket: socket, pid: process.processIdentifier)
    }

    func waitUntilReady(timeout: Duration = .seconds(60)) async throws {
        let ready = directory.file("data/ready.json").path
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if FileManager.default.fileExists(atPath: ready) { return }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        // CPU-bound suites running beside this one can starve the test's own task past the
        // deadline: look once more before declaring the server late.
        if FileManager.default.fileExists(atPath: ready) { return }
        throw TestEnvironment.MissingPrerequisite("writ server did not become ready (\(process.isRunning ? "still running" : "exit \(process.terminationStatus)")):\n\(serverLog)")
    }

    /// Starts a new server process on the same data directory and datastore (after a kill);
    /// the new harness owns the test database from then on.
    func restart() async throws -> ServerHarness {
        try? FileManager.default.removeItem(atPath: directory.file("data/ready.json").path)
        let next = try ServerHarness(directory: directory, socket: socket, arguments: arguments, environment: environment)
        next.dropDatabase = dropDatabase
        dropDatabase = nil
        do { try await next.waitUntilReady() } catch {
            await next.stop()
            throw error
        }
        return next
    }

    /// What the server wrote to `ready.json`.
    var ready: [String: Any] {
        jsonObject((try? String(contentsOfFile: directory.file("data/ready.json").path, encoding: .utf8)) ?? "")
    }

    /// GET on the HTTP listener (health and metrics) with curl; returns (status, body).
    func httpGet(_ path: String) async throws -> (Int, String) {
        try await curlGet(ready["http_listen"] as? String ?? "", path)
    }

    /// The `--datastore` URL (PostgreSQL), or nil for the SQLite file in the data dir.
    var datastoreURL: String? {
        arguments.firstIndex(of: "--datastore").map { arguments[$0 + 1] }
    }

    var serverLog: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Runs `writ` against this server's admin socket, optionally as another uid (setpriv).
    func writ(_ arguments: [String], stdin: Data? = nil, asUser uid: UInt32? = nil) async throws -> ProcessRunner.Result {
        let writ = try TestEnvironment.executable("writ")
        let full = arguments + ["--admin-socket", socket]
        if let uid {
            guard getuid() == 0 else { throw TestEnvironment.MissingPrerequisite("running the CLI as uid \(uid) needs root (setpriv)") }
            return try await ProcessRunner.run(try TestEnvironment.tool("setpriv"), ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", writ] + full, stdin: stdin)
        }
        return try await ProcessRunner.run(writ, full, stdin: stdin)
    }

    /// Sends raw HTTP with curl over the socket; returns (status, body).
    func curl(_ method: String, _ path: String, body: Data? = nil) async throws -> (Int, String) {
        var arguments = ["-s", "-o", "-", "-w", "\n%{http_code}", "--unix-socket", socket, "-X", method, "http://localhost" + path]
        if body != nil { arguments += ["-H", "content-type: application/json", "--data-binary", "@-"] }
        let result = try await ProcessRunner.run(try TestEnvironment.tool("curl"), arguments, stdin: body)
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? -1, lines.dropLast().joined(separator: "\n"))
    }

    /// Copies what the server issued to the suite's ``IssuedKeyLedger`` (a test that stops the
    /// server by other means than ``stop()`` calls it first).
    func recordIssuedKeys() async {
        await IssuedKeyLedger.current?.collect(server: directory.url.lastPathComponent, adminSocket: socket)
    }

    /// Stops the server (after ``recordIssuedKeys()``) and drops its PostgreSQL database.
    func stop() async {
        if process.isRunning {
            await recordIssuedKeys()
            process.terminate()
            let deadline = ContinuousClock.now + .seconds(20)
            while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        await dropDatabase?()
    }

    static func createDatabase() async throws -> (String, @Sendable () async -> Void) {
        guard let text = ProcessInfo.processInfo.environment["WRIT_TEST_POSTGRES_URL"], !text.isEmpty else {
            throw TestEnvironment.MissingPrerequisite("WRIT_TEST_POSTGRES_URL is not set: run the tests through scripts/test, which starts a throwaway PostgreSQL")
        }
        let admin = try PostgresURL(parsing: text)
        let name = "writ_srv_" + (0..<12).map { _ in String("abcdefghijklmnopqrstuvwxyz0123456789".randomElement()!) }.joined()
        try await PostgresBackend.withBackend(url: admin) { try await $0.execute("CREATE DATABASE \(name)") }
        let base = text.components(separatedBy: "?")[0]
        let url = base.components(separatedBy: "/").dropLast().joined(separator: "/") + "/" + name + "?sslmode=disable"
        return (url, {
            try? await PostgresBackend.withBackend(url: admin) { try await $0.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        })
    }
}

/// Decodes the JSON object a `writ … --output json` printed.
func jsonObject(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}

/// GET `http://<address><path>` with curl; returns (status, body).
func curlGet(_ address: String, _ path: String) async throws -> (Int, String) {
    let result = try await ProcessRunner.run(try TestEnvironment.tool("curl"), ["-s", "-o", "-", "-w", "\n%{http_code}", "http://\(address)\(path)"])
    let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    return (Int(lines.last ?? "") ?? -1, lines.dropLast().joined(separator: "\n"))
}
