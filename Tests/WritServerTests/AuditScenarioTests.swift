import Crypto
import Foundation
import GRPCCore
import MerkleLog
import Synchronization
import Testing
import WritAgentAPI
import WritTestSupport
import X509

/// The audit log end to end through a real `writ server run` and the `writ audit` CLI: a full
/// scenario leaves exactly the expected events (checked against the JSON Schema by Python's
/// jsonschema, proofs and checkpoint re-checked by the independent Python verifier), an
/// operation whose event cannot be stored leaves nothing, and a SIGKILL in a burst loses no
/// acknowledged event.
@Suite struct AuditScenarioTests {
    /// The events as the API holds them: index, exact body, and the body parsed.
    static func events(_ server: ServerHarness, from: Int = 0) async throws -> [(index: Int, body: String, event: [String: Any])] {
        let (status, text) = try await server.curl("GET", "/v1/audit/events?from=\(from)&limit=10000")
        guard status == 200 else { throw TestFailure("GET /v1/audit/events: \(status) \(text)") }
        let items = jsonObject(text)["events"] as? [[String: Any]] ?? []
        return items.map { item in
            let body = item["body"] as? String ?? ""
            return (item["index"] as? Int ?? -1, body, jsonObject(body))
        }
    }

    /// The latest checkpoint once it covers `size` events.
    /// (A liveness bound: checkpoints are signed within a second of a change. The test's own task
    /// can be starved by CPU-bound suites running beside it, so it looks once more after the
    /// deadline before failing.)
    static func checkpoint(_ server: ServerHarness, covering size: Int) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + .seconds(60)
        var last = ""
        while true {
            let late = ContinuousClock.now >= deadline
            let run = try await server.writ(["audit", "checkpoint", "--output", "json"])
            let object = jsonObject(run.stdout)
            if run.status == 0, (object["size"] as? Int ?? -1) >= size { return object }
            last = run.summary
            if late { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestFailure("no checkpoint of \(size) events was signed within 60 s; last answer: \(last)\nserver log:\n\(server.serverLog.suffix(4000))")
    }

    /// The server's log verifier key, as `writ audit keys` lists it.
    static func logKey(_ server: ServerHarness) async throws -> String {
        let run = try await server.writ(["audit", "keys", "--output", "json"])
        let keys = jsonObject(run.stdout)["keys"] as? [[String: Any]] ?? []
        guard run.status == 0, let key = keys.first?["verifier_key"] as? String else { throw TestFailure("writ audit keys: \(run.summary)") }
        return key
    }

    static func member(_ object: [String: Any], _ path: String...) -> Any? {
        var current: Any? = object
        for key in path { current = (current as? [String: Any])?[key] }
        return current
    }

    @Test func aFullScenarioLeavesExactlyTheExpectedEventsAndVerifies() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let start = try await Self.events(server).count
        let uid = Int(getuid())

        let token = try await AgentAPITests.token(server)
        var agent = try await TestAgent(server: server)
        try await agent.attest(joinToken: token.secret)
        var intruder = try await TestAgent(server: server)
        let forged = String(repeating: "f", count: 64)
        #expect(await rpcCode { try await intruder.attest(joinToken: forged) } == .permissionDenied)
        let created = try await server.writ(["entry", "create", "--spiffe-id", "spiffe://example.org/billing", "--parent-id", agent.id,
                                       "--selector", "unix:uid:1000", "--output", "json"])
        let entry = (jsonObject(created.stdout)["results"] as? [[String: Any]])?.first?["entry"] as? [String: Any] ?? [:]
        let entryID = try #require(entry["id"] as? String, "\(created.summary)")
        let revision = try #require(entry["revision"] as? Int)
        _ = try await agent.sync { $0.last?.complete == true }
        let x509 = try await agent.x509SVIDs([entryID])
        let leaf = try Certificate(derEncoded: Array(try #require(x509.first?.svidChain.first, "\(x509)")))
        let jwt = try await agent.jwtSVID(entryID, audience: ["https://billing.example.org"])
        let jwtPayload = try #require(base64URLDecode(String(jwt.token.split(separator: ".")[1])))
        let jwtClaims = try #require(try JSONSerialization.jsonObject(with: jwtPayload) as? [String: Any])
        let updated = try await server.writ(["entry", "update", "--entry-id", entryID, "--revision", String(revision), "--owner", "team-b"])
        #expect(updated.status == 0, "\(updated.summary)")

        // Exactly these events, in this order, with these actors and targets.
        let events = Array(try await Self.events(server).dropFirst(start))
        let summary = events.map { "\($0.event["type"] ?? "?") \(Self.member($0.event, "outcome") ?? "?")" }
        #expect(summary == ["token.generate allowed", "node.attest allowed", "node.attest denied", "entry.create allowed",
                            "svid.x509.issue allowed", "svid.jwt.issue allowed", "entry.update allowed"], "\(summary)")
        guard events.count == 7 else { return }
        let unixActor: [String: Any] = ["kind": "unix", "uid": uid]
        for index in [0, 3, 6] {
            #expect(Self.member(events[index].event, "actor", "kind") as? String == "unix" && Self.member(events[index].event, "actor", "uid") as? Int == uid,
                    "\(events[index].body) should have actor \(unixActor)")
            #expect(Self.member(events[index].event, "actor", "pid") is Int, "the admin caller's pid is recorded")
        }
        #expect(Self.member(events[0].event, "target", "id") as? String == token.id)
        #expect(!events[0].body.contains(token.secret), "the join token itself is never in the log")
        #expect(Self.member(events[1].event, "actor", "kind") as? String == "node" && Self.member(events[1].event, "actor", "attestor") as? String == "join_token"
                && Self.member(events[1].event, "actor", "id") as? String == token.id)
        #expect(Self.member(events[1].event, "target", "id") as? String == agent.id)
        #expect(Self.member(events[2].event, "actor", "id") as? String == "sha256:" + AuditHex.sha256(forged), "a refused token is named by its hash")
        #expect(!events[2].body.contains(forged) && (Self.member(events[2].event, "reason") as? String)?.isEmpty == false)
        #expect(Self.member(events[3].event, "target", "id") as? String == entryID)
        #expect(Self.member(events[4].event, "actor", "id") as? String == agent.id && Self.member(events[4].event, "target", "id") as? String == "spiffe://example.org/billing")
        #expect(Self.member(events[4].event, "details", "serial") as? String == AuditHex.hex(leaf.serialNumber.bytes), "\(events[4].body)")
        // The certified key's fingerprint is the one openssl computes from the certificate.
        let keyFiles = try TemporaryDirectory(prefix: "writ-audit-spki")
        try Data(try #require(x509.first?.svidChain.first)).write(to: keyFiles.file("leaf.der"))
        let openssl = try TestEnvironment.tool("openssl")
        let pub = try await ProcessRunner.run(openssl, ["x509", "-inform", "DER", "-in", keyFiles.file("leaf.der").path, "-noout", "-pubkey", "-out", keyFiles.file("pub.pem").path])
        let der = try await ProcessRunner.run(openssl, ["pkey", "-pubin", "-in", keyFiles.file("pub.pem").path, "-outform", "DER", "-out", keyFiles.file("pub.der").path])
        let digest = try await ProcessRunner.run(openssl, ["dgst", "-sha256", "-r", keyFiles.file("pub.der").path])
        #expect(pub.status == 0 && der.status == 0 && digest.status == 0, "\(pub.summary)\n\(der.summary)\n\(digest.summary)")
        let fingerprint = String(digest.stdout.prefix { !$0.isWhitespace })
        #expect(fingerprint.count == 64 && Self.member(events[4].event, "details", "public_key_sha256") as? String == fingerprint, "\(events[4].body) vs openssl \(fingerprint)")
        #expect(Self.member(events[5].event, "details", "jti") as? String == jwtClaims["jti"] as? String, "\(events[5].body)")
        #expect(Self.member(events[5].event, "details", "audience") as? [String] == ["https://billing.example.org"])
        #expect(!events[5].body.contains(jwt.token))
        #expect(Self.member(events[6].event, "target", "id") as? String == entryID)

        // Every event is valid against the published JSON Schema and in canonical form (Python).
        let directory = try TemporaryDirectory(prefix: "writ-audit-scenario")
        let all = try await Self.events(server)
        try all.map { Data($0.body.utf8).base64EncodedString() + "\n" }.joined().write(to: directory.file("events.txt"), atomically: true, encoding: .utf8)
        let schema = try await ProcessRunner.run(try TestEnvironment.interopPython(), [TestEnvironment.interopScript("audit_event_check.py"),
                                                                                TestEnvironment.packageRoot.appendingPathComponent("docs/audit-event.v1.schema.json").path,
                                                                                directory.file("events.txt").path])
        #expect(schema.status == 0 && schema.stdout.contains("\"problems\": 0"), "\(schema.summary)")

        // Search and tail find them by type, actor, target and time; lines carry their index.
        let bySearch = try await server.writ(["audit", "search", "--type", "svid.*", "--actor", agent.id, "--since", "10m"])
        let found = bySearch.stdout.split(separator: "\n").map { jsonObject(String($0)) }
        #expect(bySearch.status == 0 && found.map { $0["index"] as? Int } == [start + 4, start + 5], "\(bySearch.summary)")
        let byTarget = try await server.writ(["audit", "search", "--target", "entry:\(entryID)"])
        #expect(byTarget.stdout.split(separator: "\n").count == 2, "\(byTarget.summary)")
        #expect(try await server.writ(["audit", "search", "--type", "svid.*", "--until", "1h"]).stdout.isEmpty, "nothing is older than an hour")
        #expect(try await server.writ(["audit", "search", "--since", "yesterday"]).status == 64)
        let tail = try await server.writ(["audit", "tail", "--from", String(start + 5)])
        let tailed = tail.stdout.split(separator: "\n").map { jsonObject(String($0)) }
        #expect(tailed.map { $0["index"] as? Int } == [start + 5, start + 6] && (tailed.first?["event"] as? [String: Any])?["type"] as? String == "svid.jwt.issue",
                "\(tail.summary)")

        // Verification: online, first trusting the server's keys (and saying so), then with the key.
        let total = all.count
        let signed = try await Self.checkpoint(server, covering: total)
        let key = try await Self.logKey(server)
        let trusting = try await server.writ(["audit", "verify"])
        #expect(trusting.status == 0 && trusting.stderr.contains("trusting the 1 log key(s) the server itself lists"), "\(trusting.summary)")
        let withKey = try await server.writ(["audit", "verify", "--log-key", key])
        #expect(withKey.status == 0 && withKey.stdout.contains("audit log verified: \(total) events") && !withKey.stderr.contains("warning"), "\(withKey.summary)")
        let wrongKey = try NoteSigner(name: "example.org/writ/audit", privateKey: Curve25519.Signing.PrivateKey()).verifier.encoded
        let refused = try await server.writ(["audit", "verify", "--log-key", wrongKey])
        #expect(refused.status == 2 && refused.stderr.contains("does not verify"), "\(refused.summary)")

        // Prometheus: the log's size and the group-commit counters.
        let (metricsStatus, metricsText) = try await server.httpGet("/metrics")
        #expect(metricsStatus == 200 && metricsText.contains("writ_audit_log_size \(total)"), "\(metricsText.split(separator: "\n").filter { $0.contains("audit") })")
        let committed = metricsText.split(separator: "\n").first { $0.hasPrefix("writ_audit_group_commit_events_total ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        #expect((committed ?? 0) >= 3, "node.attest (refused), svid.x509.issue and svid.jwt.issue went through group commit: \(String(describing: committed))")

        // Offline, from an export and a saved checkpoint.
        let note = signed["note"] as? String ?? ""
        try note.write(to: directory.file("cp.txt"), atomically: true, encoding: .utf8)
        let exported = try await server.writ(["audit", "export", "--from", "0", "--to", String(signed["size"] as? Int ?? 0), "--out", directory.file("log.jsonl").path])
        #expect(exported.status == 0, "\(exported.summary)")
        let offline = try await ProcessRunner.run(try TestEnvironment.executable("writ"), ["audit", "verify", "--export", directory.file("log.jsonl").path,
                                                                                   "--checkpoint", directory.file("cp.txt").path, "--log-key", key])
        #expect(offline.status == 0 && offline.stdout.contains("checkpoints held: 1"), "\(offline.summary)")
        let noKey = try await ProcessRunner.run(try TestEnvironment.executable("writ"), ["audit", "verify", "--export", directory.file("log.jsonl").path,
                                                                                 "--checkpoint", directory.file("cp.txt").path], environment: ["WRIT_AUDIT_LOG_KEY": ""])
        #expect(noKey.status == 64 && noKey.stderr.contains("--log-key"), "\(noKey.summary)")

        // Proofs from the CLI, and the checkpoint, agree with the independent Python verifier.
        let size = signed["size"] as? Int ?? 0
        let inclusion = jsonObject(try await server.writ(["audit", "proof", "inclusion", "--index", String(start + 4)]).stdout)
        let consistency = jsonObject(try await server.writ(["audit", "proof", "consistency", "--from", String(start + 2)]).stdout)
        #expect(inclusion["tree_size"] as? Int == size && consistency["new_size"] as? Int == size, "\(inclusion) \(consistency)")
        let cases: [String: Any] = [
            "trees": [[
                "leaves": all.prefix(size).map { Data($0.body.utf8).map { String(format: "%02x", $0) }.joined() },
                "roots": [["size": size, "root": inclusion["root_hash"] as? String ?? ""], ["size": start + 2, "root": consistency["old_root"] as? String ?? ""]],
                "inclusion": [["index": start + 4, "size": size, "path": inclusion["inclusion_path"] as? [String] ?? []]],
                "consistency": [["old": start + 2, "new": size, "path": consistency["consistency_path"] as? [String] ?? []]],
            ]],
            "checkpoint": ["note": note, "verifier": key],
        ]
        try JSONSerialization.data(withJSONObject: cases).write(to: directory.file("cases.json"))
        let python = try await ProcessRunner.run(try TestEnvironment.interopPython(), [TestEnvironment.interopScript("merkle_check.py"), directory.file("cases.json").path])
        #expect(python.status == 0 && python.stdout.contains("\"agree\": true"), "\(python.summary)")
        #expect(try await server.writ(["audit", "proof", "inclusion", "--index", String(size + 5)]).status == 1)
    }

    /// With the audit insert failing, operations fail and leave nothing: no entry, no token,
    /// no SVID handed out; once it works again, so do they.
    @Test func anOperationWhoseEventCannotBeStoredLeavesNothing() async throws {
        let directory = try TemporaryDirectory(prefix: "writ-audit-fault")
        let fault = directory.file("fail-audit").path
        let server = try await ServerHarness.start(environment: ["WRIT_TEST_AUDIT_FAULT_FILE": fault])
        defer { Task { await server.stop() } }
        let token = try await AgentAPITests.token(server)
        var agent = try await TestAgent(server: server)
        try await agent.attest(joinToken: token.secret)
        let entryID = try await AgentAPITests.entry(server, "spiffe://example.org/kept", parent: agent.id)
        _ = try await agent.sync { $0.last?.complete == true }
        let before = try await Self.events(server).count

        FileManager.default.createFile(atPath: fault, contents: nil)
        let doomed = try await server.writ(["entry", "create", "--spiffe-id", "spiffe://example.org/doomed", "--parent-id", agent.id, "--selector", "unix:uid:7"])
        #expect(doomed.status != 0, "\(doomed.summary)")
        let listed = try await server.writ(["entry", "list", "--spiffe-id", "spiffe://example.org/doomed", "--output", "json"])
        #expect((jsonObject(listed.stdout)["entries"] as? [Any])?.isEmpty == true, "the failed create left its entry: \(listed.summary)")
        let noToken = try await server.writ(["token", "generate", "--output", "json"])
        #expect(noToken.status != 0 && !noToken.stdout.contains("token"), "\(noToken.summary)")
        #expect(await rpcCode { _ = try await agent.x509SVIDs([entryID]) } == .unavailable, "no X.509-SVID without its event")
        #expect(await rpcCode { _ = try await agent.jwtSVID(entryID) } == .unavailable, "no JWT-SVID without its event")
        let backupPath = directory.file("unlogged-backup.sqlite3").path
        let backup = try await server.writ(["datastore", "backup", backupPath])
        #expect(backup.status != 0 && backup.stderr.contains("audit log"), "\(backup.summary)")
        #expect(!FileManager.default.fileExists(atPath: backupPath), "a backup the log could not record was left behind")
        let denied = try await server.writ(["audit", "verify"])
        #expect(denied.status == 0, "a log that refused events still verifies: \(denied.summary)")
        #expect(try await Self.events(server).count == before, "no event of a failed operation was stored")

        try FileManager.default.removeItem(atPath: fault)
        let x509 = try await agent.x509SVIDs([entryID])
        #expect(x509.first?.svidChain.isEmpty == false, "\(x509)")
        #expect(try await server.writ(["entry", "create", "--spiffe-id", "spiffe://example.org/doomed", "--parent-id", agent.id, "--selector", "unix:uid:7"]).status == 0)
        #expect(try await Self.events(server).dropFirst(before).map { $0.event["type"] as? String ?? "" } == ["svid.x509.issue", "entry.create"])
    }

    /// SIGKILL in the middle of a burst of SVID issuance: after a restart the log verifies, and
    /// every JWT-SVID that was handed out (acknowledged) has its event.
    @Test(arguments: ["sqlite", "postgres"])
    func aCrashDuringABurstLosesNoAcknowledgedEvent(backend: String) async throws {
        let server = try await ServerHarness.start(backend: backend)
        let acknowledged: [String]
        let restarted: ServerHarness
        do {
            acknowledged = try await Self.burstUntilKilled(server)
            restarted = try await server.restart()
        } catch {
            await server.stop()
            throw error
        }
        defer { Task { await restarted.stop() } }
        #expect(acknowledged.count >= 200, "the burst issued only \(acknowledged.count) JWT-SVIDs before the kill")
        let key = try await Self.logKey(restarted)
        let verified = try await restarted.writ(["audit", "verify", "--log-key", key])
        #expect(verified.status == 0, "\(verified.summary)")
        let logged = Set(try await Self.events(restarted).compactMap { Self.member($0.event, "details", "jti") as? String })
        let lost = acknowledged.filter { !logged.contains($0) }
        #expect(lost.isEmpty, "\(lost.count) of \(acknowledged.count) acknowledged JWT-SVIDs have no event after the crash")
        print("AuditScenarioTests(\(backend)): \(acknowledged.count) JWT-SVIDs acknowledged before SIGKILL, all with their event; the log of \(logged.count) JWT issue events verifies")
    }

    /// Eight workers mint JWT-SVIDs until the server is SIGKILLed — once 200 were handed out
    /// (however slow a loaded machine makes that), plus a random 0–300 ms so the kill lands
    /// anywhere in a batch; returns the `jti` of every one handed out.
    static func burstUntilKilled(_ server: ServerHarness) async throws -> [String] {
        let token = try await AgentAPITests.token(server)
        var agent = try await TestAgent(server: server)
        try await agent.attest(joinToken: token.secret)
        let entryID = try await AgentAPITests.entry(server, "spiffe://example.org/burst", parent: agent.id)
        _ = try await agent.sync { $0.last?.complete == true }
        let minter = agent
        let burst = Burst()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    // One connection per worker, calls back to back until the server dies (a
                    // failed connection is retried while the server lives).
                    while server.process.isRunning {
                      do {
                        _ = try await minter.withClient { client in
                        while true {
                            var request = Writ_Agent_V1_NewJWTSVIDRequest()
                            request.entryID = entryID
                            request.audience = ["aud-\(worker)"]
                            let response = try await client.newJWTSVID(request)
                            if let payload = base64URLDecode(String(response.token.split(separator: ".")[1])),
                               let claims = try? JSONSerialization.jsonObject(with: payload) as? [String: Any], let jti = claims["jti"] as? String {
                                burst.jtis.withLock { $0.append(jti) }
                            }
                        }
                        }
                      } catch {
                        if server.process.isRunning { burst.lastError.withLock { $0 = "\(error)" } }
                        try? await Task.sleep(for: .milliseconds(100))
                      }
                    }
                }
            }
            group.addTask {
                let deadline = ContinuousClock.now + .seconds(120)
                while burst.jtis.withLock({ $0.count }) < 200, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...300)))
                if let error = burst.lastError.withLock({ $0 }) { print("AuditScenarioTests: a burst call failed before the kill: \(error)") }
                kill(server.process.processIdentifier, SIGKILL)
            }
            try await group.waitForAll()
        }
        return burst.jtis.withLock { $0 }
    }
}

/// What the burst's workers share.
final class Burst: Sendable {
    let jtis = Mutex<[String]>([])
    let lastError = Mutex<String?>(nil)
}

/// Hex helpers for comparing what the log records.
enum AuditHex {
    static func hex(_ bytes: some Sequence<UInt8>) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
    static func sha256(_ text: String) -> String { hex(SHA256.hash(data: Data(text.utf8))) }
}

/// base64url without padding → bytes.
func base64URLDecode(_ text: String) -> Data? {
    var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while base64.count % 4 != 0 { base64 += "=" }
    return Data(base64Encoded: base64)
}
