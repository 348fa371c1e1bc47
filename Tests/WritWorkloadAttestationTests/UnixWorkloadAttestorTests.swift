import Foundation
import Testing
import WritModel
import WritTestSupport
@testable import WritWorkloadAttestation
#if canImport(Glibc)
import Glibc
#endif

/// The `unix` attestor on real processes: ids and names from the kernel (including a process
/// run as another user with `setpriv`), executable and script digests checked against
/// `sha256sum`, and every way of smuggling code past a script selector refused.
@Suite(.serialized) struct UnixWorkloadAttestorTests {
    /// A process started for one test, killed at the end.
    final class Running: @unchecked Sendable {
        let process = Process()
        var pid: Int32 { process.processIdentifier }

        /// Starts `executable` with a clean environment plus `environment`, and waits until the
        /// kernel shows the process with the argument list `running` (default: `arguments`), so
        /// the exec has happened.
        init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], directory: URL? = nil, running: [String]? = nil) throws {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            process.environment = ["PATH": "/usr/bin:/bin"].merging(environment) { $1 }
            if let directory { process.currentDirectoryURL = directory }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                if let line = ProcFiles.strings("/proc/\(pid)/cmdline"), line.dropFirst() == (running ?? arguments)[...] { return }
                usleep(10_000)
            }
            throw TestFailure("`\(executable) \(arguments.joined(separator: " "))` did not start within 10 s")
        }

        func stop() {
            // A shell's children first: an orphan would keep the process's exit from being seen.
            for child in (ProcFiles.text("/proc/\(pid)/task/\(pid)/children") ?? "").split(separator: " ").compactMap({ Int32($0) }) {
                kill(child, SIGKILL)
            }
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func sha256sum(_ path: String) async throws -> String {
        let result = try await ProcessRunner.run(try TestEnvironment.tool("sha256sum"), [path])
        guard result.status == 0, let hex = result.stdout.split(separator: " ").first else { throw TestFailure("sha256sum failed: \(result.summary)") }
        return String(hex)
    }

    static func values(_ attestation: UnixWorkloadAttestor.Attestation, _ key: String) -> [String] {
        attestation.selectors.filter { $0.value.hasPrefix(key + ":") }.map { String($0.value.dropFirst(key.count + 1)) }
    }

    static func realPath(_ path: String) -> String { URL(fileURLWithPath: path).resolvingSymlinksInPath().path }

    /// The system Python (Debian's python3 package), not a wrapper such as a pyenv shim: the
    /// process must be the interpreter itself.
    static func python() throws -> String {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            throw TestEnvironment.MissingPrerequisite("/usr/bin/python3 is missing: apt-get install python3 (scripts/test installs it)")
        }
        return "/usr/bin/python3"
    }

    /// A sleeping Python script in a fresh directory; returns the directory and the script path.
    static func script(_ directory: TemporaryDirectory, _ name: String = "agent.py") throws -> String {
        let path = directory.file(name).path
        try "import time\ntime.sleep(600)\n".write(toFile: path, atomically: false, encoding: .utf8)
        // The process must start strictly after the script's last change (tick resolution).
        usleep(50_000)
        return path
    }

    @Test func idsExecutableAndDigestComeFromTheKernel() async throws {
        let sleep = try TestEnvironment.tool("sleep")
        let running = try Running(sleep, ["600"])
        defer { running.stop() }
        let attested = try await UnixWorkloadAttestor().attest(pid: running.pid)
        #expect(Self.values(attested, "uid") == [String(geteuid())])
        #expect(Self.values(attested, "gid") == [String(getegid())])
        #expect(Self.values(attested, "user") == [UnixWorkloadAttestor.userName(geteuid())].compactMap { $0 })
        #expect(Self.values(attested, "group") == [UnixWorkloadAttestor.groupName(getegid())].compactMap { $0 })
        #expect(!Self.values(attested, "user").isEmpty && !Self.values(attested, "group").isEmpty, "this test's own user and group have names")
        #expect(Self.values(attested, "supplementary_gid") == ProcFiles.text("/proc/self/status")!.split(separator: "\n")
            .first { $0.hasPrefix("Groups:") }!.dropFirst(7).split(whereSeparator: \.isWhitespace).map(String.init))
        #expect(Self.values(attested, "path") == [Self.realPath(sleep)])
        #expect(Self.values(attested, "sha256") == [try await Self.sha256sum(Self.realPath(sleep))])
        #expect(Self.values(attested, "script").isEmpty && attested.scriptRefusal == nil, "sleep is no interpreter")
        #expect(attested.process.pid == running.pid && attested.process.isStillCurrent())
    }

    @Test func aProcessOfAnotherUserIsSeenAsThatUser() async throws {
        guard geteuid() == 0 else { throw TestEnvironment.MissingPrerequisite("running a process as another user needs root (setpriv)") }
        let sleep = try TestEnvironment.tool("sleep")
        let running = try Running(try TestEnvironment.tool("setpriv"), ["--reuid=65534", "--regid=65534", "--clear-groups", sleep, "600"], running: ["600"])
        defer { running.stop() }
        let attested = try await UnixWorkloadAttestor().attest(pid: running.pid)
        #expect(Self.values(attested, "uid") == ["65534"] && Self.values(attested, "gid") == ["65534"])
        #expect(Self.values(attested, "user") == ["nobody"] && Self.values(attested, "group") == ["nogroup"])
        #expect(Self.values(attested, "supplementary_gid").isEmpty)
    }

    /// Ids without a passwd or group entry are attested by number; the names are left out
    /// rather than failing the attestation.
    @Test func idsWithoutNamesAreAttestedWithoutUserAndGroup() async throws {
        guard geteuid() == 0 else { throw TestEnvironment.MissingPrerequisite("running a process as another user needs root (setpriv)") }
        let unnamed: UInt32 = 54_321
        #expect(UnixWorkloadAttestor.userName(unnamed) == nil && UnixWorkloadAttestor.groupName(unnamed) == nil, "uid/gid \(unnamed) must have no name here")
        let sleep = try TestEnvironment.tool("sleep")
        let running = try Running(try TestEnvironment.tool("setpriv"), ["--reuid=\(unnamed)", "--regid=\(unnamed)", "--clear-groups", sleep, "600"], running: ["600"])
        defer { running.stop() }
        let attested = try await UnixWorkloadAttestor().attest(pid: running.pid)
        #expect(Self.values(attested, "uid") == ["\(unnamed)"] && Self.values(attested, "gid") == ["\(unnamed)"], "\(attested.selectors)")
        #expect(Self.values(attested, "user").isEmpty && Self.values(attested, "group").isEmpty, "\(attested.selectors)")
        #expect(Self.values(attested, "path") == [Self.realPath(sleep)])
    }

    @Test func aPlainScriptIsNamedWithItsDigest() async throws {
        let directory = try TemporaryDirectory(prefix: "writ-unix")
        let path = try Self.script(directory)
        let python = try Self.python()
        for arguments in [[path], ["-u", path, "--flag"], ["-uB", "--", path]] {
            let running = try Running(python, arguments)
            defer { running.stop() }
            let attested = try await UnixWorkloadAttestor().attest(pid: running.pid)
            #expect(Self.values(attested, "script") == [Self.realPath(path)], "\(arguments): \(attested.scriptRefusal ?? "no refusal") \(attested.selectors)")
            #expect(Self.values(attested, "script_sha256") == [try await Self.sha256sum(path)])
            #expect(Self.values(attested, "path") == [Self.realPath(python)])
        }
    }

    @Test func everySpoofLosesTheScriptSelectors() async throws {
        let directory = try TemporaryDirectory(prefix: "writ-unix-spoof")
        let path = try Self.script(directory)
        try "".write(to: directory.file("agent_module.py"), atomically: false, encoding: .utf8)
        usleep(50_000)
        let python = try Self.python()
        let cases: [(String, String, [String], [String: String], URL?, String)] = [
            ("PYTHONPATH set", python, [path], ["PYTHONPATH": "/tmp/evil"], nil, "PYTHONPATH"),
            ("LD_PRELOAD set", python, [path], ["LD_PRELOAD": "/tmp/evil.so"], nil, "LD_PRELOAD"),
            ("python3 -c … agent.py", python, ["-c", "import time; time.sleep(600)", path], [:], nil, "`-c`"),
            ("python3 -m", python, ["-m", "agent_module", path], [:], directory.url, "`-m`"),
            ("python3 -X dev", python, ["-X", "dev", path], [:], nil, "`-X`"),
            ("relative path", python, ["agent.py"], [:], directory.url, "relative"),
            ("perl -e", try TestEnvironment.tool("perl"), ["-e", "sleep 600", path], [:], nil, "`-e`"),
            // `; true` keeps bash from replacing itself with sleep.
            ("bash -c", try TestEnvironment.tool("bash"), ["-c", "sleep 600; true", path], [:], nil, "`-c`"),
        ]
        for (name, executable, arguments, environment, cwd, reason) in cases {
            let running = try Running(executable, arguments, environment: environment, directory: cwd)
            defer { running.stop() }
            let attested = try await UnixWorkloadAttestor().attest(pid: running.pid)
            #expect(Self.values(attested, "script").isEmpty && Self.values(attested, "script_sha256").isEmpty, "\(name): \(attested.selectors)")
            #expect(attested.scriptRefusal?.contains(reason) == true, "\(name): \(attested.scriptRefusal ?? "no reason")")
            #expect(!Self.values(attested, "sha256").isEmpty, "\(name): the executable is still attested")
        }
        // Every variable that makes an interpreter load code from elsewhere, each on its own
        // (values chosen so that Python still starts and runs the script).
        for name in UnixWorkloadAttestor.dangerousEnvironment.sorted() {
            let value = ["PYTHONHOME": "/usr", "PYTHONINSPECT": "1", "PYTHONSAFEPATH": "1"][name] ?? "/nonexistent/evil"
            let running = try Running(python, [path], environment: [name: value])
            defer { running.stop() }
            let attested = try await UnixWorkloadAttestor().attest(pid: running.pid)
            #expect(Self.values(attested, "script").isEmpty && attested.scriptRefusal?.contains(name) == true,
                    "\(name)=\(value): \(attested.scriptRefusal ?? "no refusal") \(attested.selectors)")
        }
        #expect(UnixWorkloadAttestor.dangerousEnvironment.isSuperset(of: [
            "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "NODE_OPTIONS", "NODE_PATH", "PERL5OPT", "PERL5LIB", "RUBYOPT", "RUBYLIB",
            "BASH_ENV", "ENV", "LD_PRELOAD", "LD_LIBRARY_PATH"]), "every variable the issue names is refused")
        // A relative path is resolved against the process's directory once allowed.
        let relative = try Running(python, ["agent.py"], directory: directory.url)
        defer { relative.stop() }
        let allowed = try await UnixWorkloadAttestor(allowRelativeScripts: true).attest(pid: relative.pid)
        #expect(Self.values(allowed, "script") == [Self.realPath(path)], "\(allowed.scriptRefusal ?? "")")
    }

    @Test func aScriptEditedAfterTheStartIsNotVouchedFor() async throws {
        let directory = try TemporaryDirectory(prefix: "writ-unix-edit")
        let path = try Self.script(directory)
        let running = try Running(try Self.python(), [path])
        defer { running.stop() }
        let attestor = UnixWorkloadAttestor()
        let before = try await attestor.attest(pid: running.pid)
        #expect(Self.values(before, "script_sha256") == [try await Self.sha256sum(path)])
        usleep(20_000)
        // Edit, then set the modification time back: the ctime still moves.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("import os\n".utf8))
        try handle.close()
        #expect(try await ProcessRunner.run(try TestEnvironment.tool("touch"), ["-d", "2000-01-01", path]).status == 0)
        let after = try await attestor.attest(pid: running.pid)
        #expect(Self.values(after, "script").isEmpty, "\(after.selectors)")
        #expect(after.scriptRefusal?.contains("changed after the process started") == true, "\(after.scriptRefusal ?? "")")
    }

    @Test func aVanishedProcessIsAnError() async throws {
        let running = try Running(try TestEnvironment.tool("sleep"), ["600"])
        let snapshot = try ProcessSnapshot(pid: running.pid)
        running.stop()
        #expect(!snapshot.isStillCurrent())
        do {
            _ = try await UnixWorkloadAttestor().attest(pid: running.pid)
            Issue.record("attesting an exited process succeeded")
        } catch {
            #expect(error.code == .processGone, "\(error)")
        }
        await #expect(throws: WorkloadAttestationError.self) { _ = try await UnixWorkloadAttestor().attest(pid: 0) }
    }

    @Test func digestsAreCachedUntilTheFileChanges() async throws {
        let directory = try TemporaryDirectory(prefix: "writ-digests")
        let path = directory.file("blob").path
        try "one".write(toFile: path, atomically: false, encoding: .utf8)
        let digests = FileDigests(maximumSize: 64)
        let first = try #require(await digests.digest(path: path))
        #expect(first.sha256 == (try await Self.sha256sum(path)))
        #expect(await digests.digest(path: path) == first)
        #expect(await digests.hits == 1)
        usleep(20_000)
        try "two".write(toFile: path, atomically: false, encoding: .utf8)
        let second = try #require(await digests.digest(path: path))
        #expect(second.sha256 == (try await Self.sha256sum(path)) && second.sha256 != first.sha256)
        #expect(await digests.hits == 1)
        try String(repeating: "x", count: 65).write(toFile: path, atomically: false, encoding: .utf8)
        #expect(await digests.digest(path: path) == nil, "a file over the size limit is not hashed")
        #expect(await digests.digest(path: directory.url.path) == nil, "a directory is not hashed")
    }
}

/// Which command lines name a script: the allow-list decides, and anything else means none.
struct InterpreterCommandTests {
    @Test(arguments: [
        ("python3", ["python3", "/srv/agent.py"], "/srv/agent.py"),
        ("python3.11", ["python3", "-u", "-B", "/srv/agent.py", "-c", "x"], "/srv/agent.py"),
        ("python", ["python", "-uOO", "--", "/srv/agent.py"], "/srv/agent.py"),
        ("node", ["node", "--no-warnings", "app.js"], "app.js"),
        ("nodejs", ["nodejs", "app.js"], "app.js"),
        ("ruby3.1", ["ruby", "-w", "tool.rb"], "tool.rb"),
        ("perl", ["perl", "-wT", "tool.pl"], "tool.pl"),
        ("bash", ["bash", "-eux", "run.sh"], "run.sh"),
        ("dash", ["sh", "run.sh", "arg"], "run.sh"),
    ])
    func plainCommandLinesNameTheirScript(executable: String, arguments: [String], script: String) throws {
        let family = try #require(InterpreterCommand.Family(executableName: executable))
        #expect(InterpreterCommand.script(family: family, arguments: arguments) == .script(script))
    }

    @Test(arguments: [
        ("python3", ["python3", "-c", "print(1)", "/srv/agent.py"]),
        ("python3", ["python3", "-m", "agent"]),
        ("python3", ["python3", "-I", "/srv/agent.py"]),
        ("python3", ["python3", "-W", "ignore", "/srv/agent.py"]),
        ("python3", ["python3", "-uc", "print(1)"]),
        ("python3", ["python3"]),
        ("python3", ["python3", "-"]),
        ("node", ["node", "--require", "evil.js", "app.js"]),
        ("node", ["node", "-r", "evil.js", "app.js"]),
        ("node", ["node", "--import", "evil.mjs", "app.js"]),
        ("node", ["node", "-e", "1"]),
        ("ruby", ["ruby", "-e", "1", "tool.rb"]),
        ("ruby", ["ruby", "-I", "/evil", "tool.rb"]),
        ("perl", ["perl", "-Mevil", "tool.pl"]),
        ("perl", ["perl", "-I/evil", "tool.pl"]),
        ("bash", ["bash", "-c", "echo", "run.sh"]),
        ("bash", ["bash", "-s"]),
        ("bash", ["bash", "--rcfile", "evil", "run.sh"]),
    ])
    func everythingElseNamesNone(executable: String, arguments: [String]) throws {
        let family = try #require(InterpreterCommand.Family(executableName: executable))
        guard case .none(let reason) = InterpreterCommand.script(family: family, arguments: arguments) else {
            Issue.record("\(arguments) named a script")
            return
        }
        #expect(!reason.isEmpty)
    }

    @Test func onlyInterpretersHaveAFamily() {
        #expect(InterpreterCommand.Family(executableName: "python3.12") == .python)
        #expect(InterpreterCommand.Family(executableName: "perl5.36.0") == .perl)
        for name in ["pythonx", "python3-config", "sleep", "nodemon", "rubyx", "fish", ""] {
            #expect(InterpreterCommand.Family(executableName: name) == nil, "\(name)")
        }
    }
}
