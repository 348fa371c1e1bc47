import ArgumentParser
import Foundation
import Logging
import SPIFFEIdentity
import WritAgent
import WritConfig
import WritModel
import WritServer
#if canImport(Glibc)
import Glibc
#endif

/// `writ dev` — the whole system on one machine: a server on SQLite and an agent, listening on
/// free loopback ports, with an entry for the user who runs it.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run a server and an agent on this machine and give you an identity.",
        discussion: """
            Everything lives in --data-dir (default ~/.writ/dev, mode 0711): the server's SQLite \\
            datastore and CA, the agent's state, the Workload API socket agent.sock (any local \\
            user may ask; attestation decides), the admin socket admin.sock (0600) and an env file:
              source ~/.writ/dev/env
              writ api fetch x509                  your X.509-SVID (spiffe://<td>/user/<login>)
              writ api fetch jwt --audience demo   a JWT-SVID
              writ entry list                      the registry
            A later `writ dev` on the same directory reuses its data (same trust bundle). Ctrl-C \\
            stops both.
            """)

    @Option(help: ArgumentHelp("Where everything lives (default ~/.writ/dev).", valueName: "dir")) var dataDir: String?
    @Option(help: ArgumentHelp("The trust domain (default writ.test).", valueName: "td")) var trustDomain: String = "writ.test"
    @Option(help: "trace, debug, info, notice, warning (default), error or critical.") var logLevel: String = "warning"

    func run() async throws {
        let started = ContinuousClock.now
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        let directory = URL(fileURLWithPath: dataDir ?? (home as NSString).appendingPathComponent(".writ/dev")).standardizedFileURL.path
        let domain: TrustDomain
        do { domain = try TrustDomain(parsing: trustDomain) } catch { throw ValidationError("--trust-domain: \(error.message)") }
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("--log-level `\(logLevel)`: trace, debug, info, notice, warning, error or critical") }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "writ.dev")
        let paths = DevPaths(directory: directory)
        guard paths.adminSocket.utf8.count < 100 else { throw ValidationError("--data-dir `\(directory)` is too long for socket paths (keep it under 80 bytes)") }
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw ValidationError("cannot create `\(directory)`: \(error.localizedDescription)")
        }
        _ = chmod(directory, 0o711)
        let lock = try DevLock(path: paths.file("dev.pid"))
        defer { lock.release() }
        for stale in [paths.env, paths.file("server/ready.json"), paths.file("agent/ready.json")] { unlink(stale) }

        let serverOptions = ServerOptions(dataDirectory: paths.file("server"), trustDomain: domain, adminSocket: paths.adminSocket,
                                          httpListen: ListenAddress(host: "127.0.0.1", port: 0), listen: ListenAddress(host: "127.0.0.1", port: 0))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await WritServerProcess.run(serverOptions, logger: Logger(label: "writ.server")) }
            group.addTask {
                do { try await self.startAgent(paths: paths, domain: domain, started: started, logger: logger) } catch {
                    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                    throw error
                }
            }
            // The first to end (a failure, or both stopping on Ctrl-C) ends the whole.
            do {
                while try await group.next() != nil {}
            } catch {
                group.cancelAll()
                throw error
            }
        }
        unlink(paths.env)
    }

    /// Waits for the server, prepares the agent's bootstrap (bundle, token), runs the agent and,
    /// once it is ready, registers the user's entry and prints what is running.
    func startAgent(paths: DevPaths, domain: TrustDomain, started: ContinuousClock.Instant, logger: Logger) async throws {
        let serverReady = try await DevPaths.waitForJSON(paths.file("server/ready.json"), timeout: .seconds(120))
        _ = chmod(paths.adminSocket, 0o600)
        guard let listen = serverReady["listen"] as? String else { throw AdminFailure("the server's ready.json has no agent API address", exitCode: 1) }
        let admin = AdminClient(socket: paths.adminSocket)
        let bundle = try await admin.send(.GET, "/v1/bundle", query: [("format", "pem")])
        try bundle.write(to: URL(fileURLWithPath: paths.file("bundle.pem")))
        let token = try AdminAPI.decoder().decode(AdminAPI.JoinToken.self,
                                                  from: try await admin.send(.POST, "/v1/join-tokens", body: try AdminAPI.encoder().encode(AdminAPI.CreateJoinTokenRequest(ttl: 600))))
        let agentOptions = AgentOptions(server: try ListenAddress(parsing: listen), dataDirectory: paths.file("agent"), socket: paths.agentSocket,
                                        adminSocket: paths.file("agent-admin.sock"), httpListen: ListenAddress(host: "127.0.0.1", port: 0),
                                        bootstrap: .bundleFile(paths.file("bundle.pem")), attestation: .joinToken(token.token))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await AgentProcess.run(agentOptions, logger: Logger(label: "writ.agent")) }
            group.addTask {
                let agentReady = try await DevPaths.waitForJSON(paths.file("agent/ready.json"), timeout: .seconds(120))
                guard let agentID = agentReady["agent_id"] as? String else { throw AdminFailure("the agent's ready.json has no agent ID", exitCode: 1) }
                let (login, userID) = try await Self.ensureUserEntry(admin: admin, domain: domain, agentID: agentID)
                let env = """
                    export SPIFFE_ENDPOINT_SOCKET=unix://\(paths.agentSocket)
                    export WRIT_ADMIN_SOCKET=\(paths.adminSocket)
                    export WRIT_TRUST_DOMAIN=\(domain.name)
                    export WRIT_AGENT_ID=\(agentID)

                    """
                let temporary = paths.env + ".tmp"
                try Data(env.utf8).write(to: URL(fileURLWithPath: temporary))
                guard rename(temporary, paths.env) == 0 else { throw AdminFailure("cannot write \(paths.env)", exitCode: 1) }
                let elapsed = ContinuousClock.now - started
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                let text = """
                    writ dev: trust domain \(domain.name), ready in \(String(format: "%.1f", seconds)) s
                      server  agent API \(listen), admin socket \(paths.adminSocket)
                      agent   Workload API unix://\(paths.agentSocket)
                      you     \(userID) (uid \(getuid()), \(login))

                    In another shell:
                      source \(paths.env)
                      writ api fetch x509
                      writ api fetch jwt --audience demo
                    Stop with Ctrl-C.

                    """
                FileHandle.standardOutput.write(Data(text.utf8))
            }
            while try await group.next() != nil {}
        }
    }

    /// Makes sure `spiffe://<td>/user/<login>` is granted to this uid under the current agent
    /// (an earlier run's entry under another agent ID is replaced).
    static func ensureUserEntry(admin: AdminClient, domain: TrustDomain, agentID: String) async throws -> (String, String) {
        let uid = getuid()
        var login = ProcessInfo.processInfo.environment["USER"] ?? "uid\(uid)"
        if let entry = getpwuid(uid), let name = entry.pointee.pw_name { login = String(cString: name) }
        let segment = String(login.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-" ? $0 : "-" })
        let userID = "spiffe://\(domain.name)/user/\(segment)"
        let page = try AdminAPI.decoder().decode(AdminAPI.EntryList.self, from: try await admin.send(.GET, "/v1/entries", query: [("spiffe_id", userID)]))
        let selector = "uid:\(uid)"
        if page.entries.contains(where: { $0.parentID.uri == agentID && $0.selectors.map(\.description) == ["unix:\(selector)"] }) { return (login, userID) }
        for stale in page.entries where stale.owner == login {
            _ = try? await admin.send(.DELETE, "/v1/entries/\(stale.id)")
        }
        let object: [String: Any] = ["spiffe_id": userID, "parent_id": agentID, "owner": login,
                                     "selectors": [["type": "unix", "value": selector]], "labels": ["kind": "user", "created_by": "writ-dev"]]
        let body = try JSONSerialization.data(withJSONObject: ["entries": [object]], options: [.sortedKeys])
        let answer = try AdminAPI.decoder().decode(AdminAPI.CreateEntriesResponse.self, from: try await admin.send(.POST, "/v1/entries", body: body))
        if let error = answer.results.first?.error { throw AdminFailure(error) }
        return (login, userID)
    }
}

/// Where `writ dev` keeps things inside its directory.
struct DevPaths: Sendable {
    let directory: String
    func file(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
    var adminSocket: String { file("admin.sock") }
    var agentSocket: String { file("agent.sock") }
    var env: String { file("env") }

    /// Polls for a JSON file (a ready.json) and returns its object.
    static func waitForJSON(_ path: String, timeout: Duration) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let data = FileManager.default.contents(atPath: path), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                return object
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw AdminFailure("`\(path)` did not appear within \(timeout)", exitCode: 1)
    }
}

/// One `writ dev` per directory: an exclusive lock on `dev.pid`, which holds the owner's pid.
final class DevLock: Sendable {
    let fd: Int32

    init(path: String) throws {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ValidationError("cannot open `\(path)`: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            close(fd)
            FileHandle.standardError.write(Data("error: writ dev is already running on \((path as NSString).deletingLastPathComponent) (pid \(holder))\n".utf8))
            throw ExitCode.failure
        }
        ftruncate(fd, 0)
        let text = Array("\(getpid())\n".utf8)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    func release() {
        ftruncate(fd, 0)
        close(fd)
    }
}
