#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import WritTestSupport

/// `writ dev`, the README's first command: the README's first-hour commands run verbatim
/// against it (with `swift run writ` standing for the built binary), one instance per
/// directory, a clean stop on SIGINT, and the same trust bundle on the next run.
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
        var directory: String { home.file(".writ/dev").path }

        init(home: TemporaryDirectory, log: String) throws {
            self.home = home
            output = home.file(log)
            _ = FileManager.default.createFile(atPath: output.path, contents: nil)
            process.executableURL = URL(fileURLWithPath: try TestEnvironment.executable("writ"))
            process.arguments = ["dev"]
            process.environment = ProcessInfo.processInfo.environment.merging(["HOME": home.path]) { $1 }
            let handle = try FileHandle(forWritingTo: output)
            process.standardOutput = handle
            process.standardError = handle
        }

        var log: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

        /// Starts it and waits for its env file; returns the time that took.
        func start() async throws -> Duration {
            let started = ContinuousClock.now
            try process.run()
            let ready = try await AgentProcessHarness.eventually(.seconds(30)) {
                FileManager.default.fileExists(atPath: home.file(".writ/dev/env").path) || !process.isRunning
            }
            guard ready, process.isRunning else { throw TestFailure("writ dev did not become ready within 30 s:\n\(log)") }
            return ContinuousClock.now - started
        }

        /// SIGINT, as Ctrl-C; the exit status.
        func interrupt() async -> Int32 {
            kill(process.processIdentifier, SIGINT)
            let deadline = ContinuousClock.now + .seconds(30)
            while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL); return -1 }
            return process.terminationStatus
        }
    }

    @Test func theReadmeCommandsWorkVerbatim() async throws {
        let home = try TemporaryDirectory(prefix: "writ-dev")
        let dev = try Dev(home: home, log: "dev.log")
        let elapsed = try await dev.start()
        print("writ dev ready after \(elapsed) (goal: under 5 s; CI bound 30 s)")
        #expect(dev.log.contains("ready in"), "\(dev.log)")

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
}
