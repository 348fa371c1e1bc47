#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import Testing
import WritTestSupport

/// `unix:script_sha256` on a real agent: `python agent.py` and `node agent.js` receive the
/// identity whose entry names their script's digest, and every spoof the issue lists is refused.
@Suite(.serialized) struct AgentScriptSelectorTests {
    static func sha256(_ path: URL) throws -> String {
        SHA256.hash(data: try Data(contentsOf: path)).map { String(format: "%02x", $0) }.joined()
    }

    /// Runs an interpreter with a clean environment (plus `extra`), as an agent would be started.
    static func run(_ arguments: [String], extra: [String: String] = [:]) async throws -> [String: Any] {
        let environment = ["PATH=/usr/bin:/bin", "HOME=/tmp"] + extra.map { "\($0.key)=\($0.value)" }
        let result = try await ProcessRunner.run("/usr/bin/env", ["-i"] + environment + arguments)
        let object = jsonObject(result.stdout.split(separator: "\n").last.map(String.init) ?? "")
        if object.isEmpty { throw TestFailure("no answer from \(arguments): \(result.summary)") }
        return object
    }

    @Test func scriptDigestsMatchOnlyThatScriptAndSpoofsAreRefused() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let agent = try await AgentProcessHarness.start(server: server)
        defer { Task { await agent.stop() } }
        let work = try TemporaryDirectory(prefix: "writ-script")
        let script = work.file("agent.py"), nodeScript = work.file("agent.js"), evil = work.file("evil.js")
        let original = try Data(contentsOf: URL(fileURLWithPath: TestEnvironment.interopScript("script_agent.py")))
        try original.write(to: script)
        try Data(contentsOf: URL(fileURLWithPath: TestEnvironment.interopScript("script_agent.js"))).write(to: nodeScript)
        try Data("// loaded before the agent script\n".utf8).write(to: evil)
        try await AgentAPITests.entry(server, "spiffe://example.org/agents/python", parent: agent.agentID, selector: "unix:uid:\(geteuid())",
                                ["--selector", "unix:script_sha256:\(try Self.sha256(script))"])
        try await AgentAPITests.entry(server, "spiffe://example.org/agents/node", parent: agent.agentID, selector: "unix:uid:\(geteuid())",
                                ["--selector", "unix:script_sha256:\(try Self.sha256(nodeScript))"])
        let python = try TestEnvironment.interopPython()
        let node = try TestEnvironment.tool("node")

        // The script as it was registered: served (poll until the entry reached the agent).
        var answer: [String: Any] = [:]
        let served = try await AgentProcessHarness.eventually(.seconds(30)) {
            answer = try await Self.run([python, script.path, agent.socket])
            return answer["code"] as? String == "OK"
        }
        #expect(served && answer["ids"] as? [String] == ["spiffe://example.org/agents/python"], "\(answer)\n\(agent.agentLog)")

        // Code loaded from elsewhere, or not from the script at all: refused.
        let pythonPath = try await Self.run([python, script.path, agent.socket], extra: ["PYTHONPATH": "/evil"])
        #expect(pythonPath["code"] as? String == "PERMISSION_DENIED", "PYTHONPATH: \(pythonPath)")
        let inline = try await Self.run([python, "-c", "import sys; sys.argv = sys.argv[1:]; exec(open(sys.argv[0]).read())", script.path, agent.socket])
        #expect(inline["code"] as? String == "PERMISSION_DENIED", "python -c: \(inline)")

        // An edited script: refused; the registered content again: served.
        try (original + Data("# edited\n".utf8)).write(to: script)
        let edited = try await Self.run([python, script.path, agent.socket])
        #expect(edited["code"] as? String == "PERMISSION_DENIED", "edited script: \(edited)")
        try original.write(to: script)
        // The kernel stamps a process's start in clock ticks (10 ms): a script changed within the
        // same tick as the start cannot be shown older than the process and is refused.
        try await Task.sleep(for: .milliseconds(50))
        let restored = try await Self.run([python, script.path, agent.socket])
        #expect(restored["code"] as? String == "OK", "restored script: \(restored)")

        // A process started from other content, after which the registered content is put back
        // with its mtime touched into the past: the ctime gives it away.
        try (original + Data("# something else ran\n".utf8)).write(to: script)
        let go = work.file("go")
        async let swapped = Self.run([python, script.path, agent.socket, go.path])
        try await Task.sleep(for: .milliseconds(500))
        try original.write(to: script)
        let touch = try await ProcessRunner.run(try TestEnvironment.tool("touch"), ["-m", "-d", "2 hours ago", script.path])
        #expect(touch.status == 0, "\(touch.summary)")
        #expect(try Self.sha256(script) == SHA256.hash(data: original).map { String(format: "%02x", $0) }.joined())
        _ = FileManager.default.createFile(atPath: go.path, contents: nil)
        let swappedAnswer = try await swapped
        #expect(swappedAnswer["code"] as? String == "PERMISSION_DENIED", "script replaced under a running process: \(swappedAnswer)")

        // Node: the script alone is served; with --require, refused.
        let plain = try await Self.run([node, nodeScript.path, agent.socket])
        #expect(plain["code"] as? Int == 0, "node agent.js: \(plain)\n\(agent.agentLog)")
        let required = try await Self.run([node, "--require", evil.path, nodeScript.path, agent.socket])
        #expect(required["code"] as? Int == 7, "node --require: \(required)")
    }
}
