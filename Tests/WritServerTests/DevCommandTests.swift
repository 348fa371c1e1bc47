#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import WritTestSupport

/// `writ dev`, the README's first command: the README's first-hour commands run verbatim
/// against it (with `swift run writ` standing for the built binary), one instance per
/// directory, a clean stop on SIGINT and SIGTERM, the same trust bundle on the next run, and
/// `--trust-domain` / `--data-dir`.
@Suite(.serialized) struct DevCommandTests {
    /// The lines of the README block marked `readme-commands`.
    static func readmeCommands() throws -> [String] {
        let text = try String(contentsOf: TestEnvironment.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        guard let marker = text.range(of: "<!-- readme-commands:") else { throw TestFailure("README.md has no readme-commands block") }
        let rest = text[marker.upperBound...]
        guard let open = rest.range(of: "```sh\n"), let close = rest[open.upperBound...].range(of: "```") else { throw TestFailure("the readme-commands block has no ```sh fence") }
        return rest[open.upperBound..<close.lowerBound].split(separator: "\n").map(String.init)
    }

    final class Dev: @unchecked Sendable {
        let process = Process()
        let home: TemporaryDirectory
        let output: URL

        let dataDir: String?
        var directory: String { dataDir ?? home.file(".writ/dev").path }

        init(home: TemporaryDirectory, log: String, arguments: [String] = [], dataDir: String? = nil) throws {
            self.home = home
            self.dataDir = dataDir
            output = home.file(log)
            _ = FileManager.default.createFile(atPath: output.path, contents: nil)
            process.executableURL = URL(fileURLWithPath: try TestEnvironment.executable("writ"))
            process.arguments = ["dev"] + arguments + (dataDir.map { ["--data-dir", $0] } ?? [])
            process.environment = ProcessInfo.processInfo.environment.merging(["HOME": home.path]) { $1 }
            let handle = try FileHandle(forWritingTo: output)
            process.standardOutput = handle
            process.standardError = handle
        }

        /// The name this run has in the suite's ``IssuedKeyLedger`` (runs in one home share a directory).
        private var ledgerName: String { home.url.lastPathComponent }

        var log: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

        /// Starts it and waits for its env file; returns the time that took.
        func start() async throws -> Duration {
            let started = ContinuousClock.now
            try process.run()
            let ready = try await AgentProcessHarness.eventually(.seconds(30)) {
                FileManager.default.fileExists(atPath: directory + "/env") || !process.isRunning
            }
            guard ready, process.isRunning else { throw TestFailure("writ dev did not become ready within 30 s:\n\(log)") }
            IssuedKeyLedger.current?.register(server: ledgerName, adminSocket: directory + "/admin.sock", pid: process.processIdentifier)
            return ContinuousClock.now - started
        }

        /// SIGINT, as Ctrl-C (or `signal`); the exit status.
        func interrupt(_ signal: Int32 = SIGINT) async -> Int32 {
            if process.isRunning { await IssuedKeyLedger.current?.collect(server: ledgerName, adminSocket: directory + "/admin.sock") }
            kill(process.processIdentifier, signal)
            let deadline = ContinuousClock.now + .seconds(30)
            while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL); return -1 }
            return process.terminationStatus
        }
    }

    @Test func theReadmeCommandsWorkVerbatim() async throws {
        let home = try TemporaryDirectory(prefix: "writ-dev", keptForKeyScan: .dev)
        let dev = try Dev(home: home, log: "dev.log")
        let elapsed = try await dev.start()
        // writ dev's own figure (its start to ready): the test's view adds however long this
        // task waited for a thread behind the suites running beside it.
        let reported = dev.log.firstMatch(of: /ready in ([0-9.]+) s/).flatMap { Double($0.1) }
        print("writ dev reported ready in \(reported.map { String($0) } ?? "?") s; the test saw the env file after \(elapsed) (goal under 5 s, measured by scripts/bench; CI bound 30 s)")
        #expect(reported.map { $0 <= 30 } == true, "writ dev must be ready within 30 s: \(dev.log)")

        // The README's lines, verbatim; `swift run writ …` runs the built binary.
        let script = ["set -e", "swift() { shift 2; \"$WRIT\" \"$@\"; }"] + (try Self.readmeCommands())
        let run = try await ProcessRunner.run("/bin/bash", ["-c", script.joined(separator: "\n")],
                                                      environment: ["HOME": home.path, "WRIT": try TestEnvironment.executable("writ")])
        #expect(run.status == 0, "the README's commands failed:\n\(run.summary)\n\(dev.log)")
        let login = String(cString: getpwuid(getuid())!.pointee.pw_name)
        #expect(run.stdout.contains("SPIFFE ID        : spiffe://writ.test/user/\(login) (default)"), "\(run.stdout)")
        #expect(run.stdout.split(separator: "\n").contains { $0.hasPrefix("eyJ") && $0.split(separator: ".").count == 3 }, "no JWT-SVID printed:\n\(run.stdout)")
        #expect(run.stdout.contains("Found 1 entry"), "\(run.stdout)")

        // The directory's shape: 0711, the Workload API open to all, the admin socket 0600.
        func mode(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1 }
        #expect(mode(dev.directory) == 0o711)
        #expect(mode(dev.directory + "/agent.sock") == 0o777)
        #expect(mode(dev.directory + "/admin.sock") == 0o600)
        let env = try String(contentsOfFile: dev.directory + "/env", encoding: .utf8)
        for name in ["SPIFFE_ENDPOINT_SOCKET=unix://\(dev.directory)/agent.sock", "WRIT_ADMIN_SOCKET=", "WRIT_TRUST_DOMAIN=writ.test", "WRIT_AGENT_ID=spiffe://writ.test/writ/agent/"] {
            #expect(env.contains("export \(name)"), "\(env)")
        }

        // One instance per directory.
        let second = try await ProcessRunner.run(try TestEnvironment.executable("writ"), ["dev", "--data-dir", dev.directory])
        #expect(second.status == 1 && second.stderr.contains("already running") && second.stderr.contains("(pid \(dev.process.processIdentifier))"), "\(second.summary)")

        // Ctrl-C stops both; the next run reuses the data (same bundle) and serves again.
        let bundle = try String(contentsOfFile: dev.directory + "/bundle.pem", encoding: .utf8)
        #expect(await dev.interrupt() == 0, "\(dev.log)")
        #expect(!FileManager.default.fileExists(atPath: dev.directory + "/agent.sock"))
        let again = try Dev(home: home, log: "dev2.log")
        _ = try await again.start()
        #expect(try String(contentsOfFile: again.directory + "/bundle.pem", encoding: .utf8) == bundle, "a second run must keep the trust bundle")
        let fetch = try await ProcessRunner.run("/bin/bash", ["-c", script.joined(separator: "\n")],
                                                        environment: ["HOME": home.path, "WRIT": try TestEnvironment.executable("writ")])
        #expect(fetch.status == 0 && fetch.stdout.contains("Found 1 entry"), "\(fetch.summary)\n\(again.log)")
        #expect(await again.interrupt() == 0, "\(again.log)")
    }

    /// `--trust-domain` and `--data-dir`: the identity printed and granted is under that trust
    /// domain, owned by the login that ran it; the printed lines say how to use it (and work);
    /// SIGTERM stops it as cleanly as Ctrl-C.
    @Test func aNamedTrustDomainInAChosenDirectoryAndSIGTERM() async throws {
        let home = try TemporaryDirectory(prefix: "writ-dev-td", keptForKeyScan: .dev)
        let dev = try Dev(home: home, log: "dev.log", arguments: ["--trust-domain", "demo.example"], dataDir: home.file("elsewhere").path)
        _ = try await dev.start()
        let login = String(cString: getpwuid(getuid())!.pointee.pw_name)
        let printed = dev.log
        for line in ["writ dev: trust domain demo.example, ready in", "you     spiffe://demo.example/user/\(login) (uid \(getuid()), \(login))",
                     "source \(dev.directory)/env", "writ api fetch x509", "writ api fetch jwt --audience demo", "Stop with Ctrl-C."] {
            #expect(printed.contains(line), "`\(line)` missing from:\n\(printed)")
        }
        // The printed commands, in a shell that sourced the env file.
        func sourced(_ command: String) async throws -> ProcessRunner.Result {
            try await ProcessRunner.run("/bin/bash", ["-c", "set -e; source \(dev.directory)/env; \"$WRIT\" \(command)"],
                                        environment: ["WRIT": try TestEnvironment.executable("writ")])
        }
        let fetched = try await sourced("api fetch x509")
        #expect(fetched.status == 0 && fetched.stdout.contains("spiffe://demo.example/user/\(login)"), "\(fetched.summary)")
        let listed = try await sourced("entry list --output json")
        let entries = jsonObject(listed.stdout)["entries"] as? [[String: Any]] ?? []
        let mine = entries.first { $0["spiffe_id"] as? String == "spiffe://demo.example/user/\(login)" }
        #expect(mine?["owner"] as? String == login, "\(entries)")
        #expect(await dev.interrupt(SIGTERM) == 0, "\(dev.log)")
        #expect(!FileManager.default.fileExists(atPath: dev.directory + "/agent.sock") && !FileManager.default.fileExists(atPath: dev.directory + "/admin.sock"))
        #expect(!FileManager.default.fileExists(atPath: home.file(".writ").path), "nothing is written to the default directory")
    }
}
