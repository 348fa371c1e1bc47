#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import WritServer
import WritTestSupport

/// The real `writ server run` and `writ entry …` processes over the admin socket, on SQLite and
/// on PostgreSQL. Suites that start processes run serialized.
@Suite(.serialized) struct EntryCLITests {
    static let agent = "spiffe://example.org/writ/agent/join_token/t1"

    @Test(arguments: ["sqlite", "postgres"])
    func entryLifecycleThroughTheCLI(_ backend: String) async throws {
        let server = try await ServerHarness.start(backend: backend)
        defer { Task { await server.stop() } }

        // create → show
        let created = try await server.writ(["entry", "create", "--spiffe-id", "spiffe://example.org/api", "--parent-id", Self.agent,
                                       "--selector", "unix:uid:1000", "--selector", "unix:gid:50", "--x509-ttl", "10m", "--owner", "team-a",
                                       "--label", "kind=service", "--dns", "api.example.org", "--output", "json"])
        #expect(created.status == 0, "\(created.summary)")
        let result = (jsonObject(created.stdout)["results"] as? [[String: Any]])?.first?["entry"] as? [String: Any] ?? [:]
        let id = try #require(result["id"] as? String, "\(created.summary)")
        let revision = try #require(result["revision"] as? Int)
        #expect(result["x509_svid_ttl"] as? Int == 600)
        let shown = try await server.writ(["entry", "show", "--entry-id", id])
        #expect(shown.status == 0 && shown.stdout.contains("spiffe://example.org/api") && shown.stdout.contains("unix:uid:1000"), "\(shown.summary)")

        // the same identity again: already_exists, exit 4
        let duplicate = try await server.writ(["entry", "create", "--spiffe-id", "spiffe://example.org/api", "--parent-id", Self.agent,
                                         "--selector", "unix:gid:50", "--selector", "unix:uid:1000"])
        #expect(duplicate.status == 4 && duplicate.stderr.contains("already has"), "\(duplicate.summary)")

        // invalid input: exit 1 with the rule, nothing stored
        for (arguments, rule) in [
            (["--spiffe-id", "spiffe://other.org/api", "--parent-id", Self.agent, "--selector", "unix:uid:1"], "outside the trust domain"),
            (["--spiffe-id", "spiffe://example.org/writ/x", "--parent-id", Self.agent, "--selector", "unix:uid:1"], "reserved"),
            (["--spiffe-id", "spiffe://example.org/b", "--parent-id", Self.agent, "--selector", "unix:uid:abc"], "decimal id"),
            (["--spiffe-id", "spiffe://example.org/b", "--parent-id", Self.agent, "--selector", "k8s:ns:x"], "unknown type `k8s`"),
            (["--spiffe-id", "spiffe://example.org/b", "--parent-id", Self.agent, "--selector", "unix:uid:1", "--x509-ttl", "5s"], "between 10s and 7d"),
            (["--spiffe-id", "spiffe://example.org/b", "--parent-id", Self.agent, "--selector", "unix:uid:1", "--dns", "bad_name"], "dns name"),
            (["--spiffe-id", "spiffe://Example.org/b", "--parent-id", Self.agent, "--selector", "unix:uid:1"], "spiffe_id"),
        ] {
            let refused = try await server.writ(["entry", "create"] + arguments)
            #expect(refused.status == 1 && refused.stderr.contains(rule), "\(arguments): \(refused.summary)")
        }
        #expect(try await server.writ(["entry", "count"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1")

        // update: the revision moves on; a stale one is a conflict (exit 4)
        let updated = try await server.writ(["entry", "update", "--entry-id", id, "--x509-ttl", "5m", "--output", "json"])
        #expect(updated.status == 0, "\(updated.summary)")
        let newRevision = try #require(jsonObject(updated.stdout)["revision"] as? Int)
        #expect(newRevision > revision && jsonObject(updated.stdout)["x509_svid_ttl"] as? Int == 300)
        #expect((jsonObject(updated.stdout)["selectors"] as? [Any])?.count == 2, "fields not given stay")
        let stale = try await server.writ(["entry", "update", "--entry-id", id, "--revision", String(revision), "--owner", "team-b"])
        #expect(stale.status == 4 && stale.stderr.contains("revision"), "\(stale.summary)")

        // delete with a stale revision: 4; delete: 0; show again: not found, exit 3
        #expect(try await server.writ(["entry", "delete", "--entry-id", id, "--revision", String(revision)]).status == 4)
        let deleted = try await server.writ(["entry", "delete", "--entry-id", id])
        #expect(deleted.status == 0, "\(deleted.summary)")
        let gone = try await server.writ(["entry", "show", "--entry-id", id])
        #expect(gone.status == 3 && gone.stderr.contains("no entry"), "\(gone.summary)")
        #expect(try await server.writ(["entry", "update", "--entry-id", id, "--owner", "x"]).status == 3)
        await server.stop()
    }

    @Test(arguments: ["sqlite", "postgres"])
    func batchCreateFiltersAndPagination(_ backend: String) async throws {
        let server = try await ServerHarness.start(backend: backend)
        defer { Task { await server.stop() } }
        var entries: [[String: Any]] = []
        for n in 0..<7 {
            entries.append(["id": "e\(n)", "spiffe_id": "spiffe://example.org/w/\(n)", "parent_id": Self.agent,
                            "selectors": [["type": "unix", "value": "uid:\(n % 2)"], ["type": "unix", "value": "gid:9"]],
                            "owner": n < 3 ? "alice" : "bob", "labels": ["kind": n % 2 == 0 ? "agent" : "job"]])
        }
        entries.append(["id": "bad", "spiffe_id": "spiffe://example.org/x", "parent_id": Self.agent, "selectors": [["type": "nope", "value": "x"]]])
        let body = try JSONSerialization.data(withJSONObject: ["entries": entries])
        let batch = try await server.writ(["entry", "create", "--data", "-", "--output", "json"], stdin: body)
        #expect(batch.status == 1 && batch.stderr.contains("1 of 8"), "\(batch.summary)")
        let results = jsonObject(batch.stdout)["results"] as? [[String: Any]] ?? []
        #expect(results.count == 8 && results.prefix(7).allSatisfy { $0["entry"] != nil } && results[7]["error"] != nil)

        func ids(_ arguments: [String]) async throws -> [String] {
            let listed = try await server.writ(["entry", "list", "--output", "json"] + arguments)
            #expect(listed.status == 0, "\(listed.summary)")
            return (jsonObject(listed.stdout)["entries"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        }
        #expect(try await ids([]) == (0..<7).map { "e\($0)" })
        #expect(try await ids(["--selector", "unix:uid:1"]) == ["e1", "e3", "e5"])
        #expect(try await ids(["--selector", "unix:uid:1", "--selector", "unix:gid:9", "--match", "exact"]) == ["e1", "e3", "e5"])
        #expect(try await ids(["--selector", "unix:uid:0", "--selector", "unix:gid:9", "--selector", "unix:user:z", "--match", "subset"]) == ["e0", "e2", "e4", "e6"])
        #expect(try await ids(["--selector", "unix:uid:5", "--selector", "unix:uid:1", "--match", "any"]) == ["e1", "e3", "e5"])
        #expect(try await ids(["--owner", "alice", "--label", "kind=agent"]) == ["e0", "e2"])
        #expect(try await ids(["--spiffe-id", "spiffe://example.org/w/4"]) == ["e4"])
        #expect(try await ids(["--parent-id", "spiffe://example.org/writ/agent/join_token/other"]) == [])
        #expect(try await server.writ(["entry", "count", "--owner", "bob"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "4")

        // pages of 3, following next_page_token
        var seen: [String] = []
        var token: String?
        repeat {
            let page = try await server.writ(["entry", "list", "--page-size", "3", "--output", "json"] + (token.map { ["--page-token", $0] } ?? []))
            #expect(page.status == 0, "\(page.summary)")
            let object = jsonObject(page.stdout)
            seen += (object["entries"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            token = object["next_page_token"] as? String
        } while token != nil && seen.count < 20
        #expect(seen == (0..<7).map { "e\($0)" })
        let tooBig = try await server.writ(["entry", "list", "--page-size", "1001"])
        #expect(tooBig.status == 1 && tooBig.stderr.contains("page_size"), "\(tooBig.summary)")
        let badToken = try await server.writ(["entry", "list", "--page-token", "garbage!"])
        #expect(badToken.status == 1 && badToken.stderr.contains("page token"), "\(badToken.summary)")

        // Batch update: whole entries at their revisions; a stale revision fails its entry alone.
        let stored = (jsonObject(try await server.writ(["entry", "list", "--output", "json"]).stdout)["entries"] as? [[String: Any]] ?? [])
        var changed = stored.filter { ["e0", "e1", "e2"].contains($0["id"] as? String) }.map { entry -> [String: Any] in
            var entry = entry
            entry["owner"] = "carol"
            for key in ["created_at", "updated_at"] { entry.removeValue(forKey: key) }
            return entry
        }
        changed[2]["revision"] = (changed[2]["revision"] as? Int ?? 0) + 100
        let updated = try await server.writ(["entry", "update", "--data", "-", "--output", "json"], stdin: try JSONSerialization.data(withJSONObject: ["entries": changed]))
        #expect(updated.status == 1 && updated.stderr.contains("1 of 3 entries were not updated"), "\(updated.summary)")
        let updateResults = jsonObject(updated.stdout)["results"] as? [[String: Any]] ?? []
        #expect(updateResults.count == 3 && updateResults.prefix(2).allSatisfy { ($0["entry"] as? [String: Any])?["owner"] as? String == "carol" }, "\(updateResults)")
        #expect((updateResults.last?["error"] as? [String: Any])?["code"] as? String == "conflict", "\(updateResults)")
        #expect(try await ids(["--owner", "carol"]) == ["e0", "e1"])
        let noID = try await server.writ(["entry", "update", "--data", "-"], stdin: try JSONSerialization.data(withJSONObject: ["entries": [entries[0].filter { $0.key != "id" }]]))
        #expect(noID.status == 1 && noID.stderr.contains("`entries[0].id`: the field is required"), "\(noID.summary)")

        // Batch delete: by repeated --entry-id, and from --data with a revision per entry.
        let deleted = try await server.writ(["entry", "delete", "--entry-id", "e5", "--entry-id", "e6", "--entry-id", "absent"])
        #expect(deleted.status == 1 && deleted.stdout.contains("Deleted entry e5") && deleted.stdout.contains("Deleted entry e6")
                && deleted.stderr.contains("1 of 3 entries were not deleted"), "\(deleted.summary)")
        let e4 = try #require(stored.first { $0["id"] as? String == "e4" })
        let atRevisions = try JSONSerialization.data(withJSONObject: ["entries": [["id": "e3", "revision": 999_999], ["id": "e4", "revision": e4["revision"] as? Int ?? 0]]])
        let deletedAt = try await server.writ(["entry", "delete", "--data", "-", "--output", "json"], stdin: atRevisions)
        let deleteResults = jsonObject(deletedAt.stdout)["results"] as? [[String: Any]] ?? []
        #expect(deletedAt.status == 1 && (deleteResults.first?["error"] as? [String: Any])?["code"] as? String == "conflict"
                && (deleteResults.last?["entry"] as? [String: Any])?["id"] as? String == "e4", "\(deletedAt.summary)")
        #expect(try await ids([]) == ["e0", "e1", "e2", "e3"])
        let malformed = try await server.writ(["entry", "delete", "--data", "-"], stdin: Data(#"{"entries":[{"id":"e0","revision":0}]}"#.utf8))
        #expect(malformed.status == 1 && malformed.stderr.contains("positive integer"), "\(malformed.summary)")
        await server.stop()
    }

    @Test func anotherUIDIsRefusedAndAnAllowedOneServed() async throws {
        // The socket directory is traversable so that uid 65534 reaches the socket, and the
        // server's SO_PEERCRED check is what refuses it.
        let server = try await ServerHarness.start(extraArguments: ["--admin-uids", "65533"], socketDirectoryMode: 0o711)
        defer { Task { await server.stop() } }
        let refused = try await server.writ(["entry", "count"], asUser: 65534)
        #expect(refused.status == 5 && refused.stderr.contains("uid 65534 may not use the admin API"), "\(refused.summary)")
        let allowed = try await server.writ(["entry", "count"], asUser: 65533)
        #expect(allowed.status == 0 && allowed.stdout.contains("0"), "\(allowed.summary)")
        #expect(try await server.writ(["entry", "count"]).status == 0, "root is allowed")
        #expect(server.serverLog.contains("unix:uid:65534"), "the refusal is logged with its actor")
        await server.stop()
    }

    @Test func aSocketDirectoryOfAnotherUserIsRefused() async throws {
        let directory = try TemporaryDirectory(prefix: "writ-srv")
        let socketDir = directory.file("admin").path
        #expect(mkdir(socketDir, 0o700) == 0)
        #expect(chown(socketDir, 65534, 65534) == 0)
        let result = try await ProcessRunner.run(try TestEnvironment.executable("writ"), [
            "server", "run", "--data-dir", directory.file("data").path, "--trust-domain", "example.org", "--admin-socket", socketDir + "/admin.sock",
        ])
        #expect(result.status == 1 && result.stderr.contains("belongs to uid 65534"), "\(result.summary)")
    }

    @Test func theServerIsUnreachableWithExit69() async throws {
        let result = try await ProcessRunner.run(try TestEnvironment.executable("writ"), ["entry", "count", "--admin-socket", "/tmp/writ-none/admin.sock"])
        #expect(result.status == 69 && result.stderr.contains("cannot reach the writ server"), "\(result.summary)")
    }
}

/// Malformed requests straight to the admin API (curl over the socket): every one gets a 4xx
/// and a `{code, message}` body, and nothing is stored.
@Suite(.serialized) struct AdminAPIInputTests {
    @Test func badRequestsGet4xxWithAMessage() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let agent = EntryCLITests.agent
        let good: [String: Any] = ["spiffe_id": "spiffe://example.org/a", "parent_id": agent, "selectors": [["type": "unix", "value": "uid:1"]]]
        func body(_ object: Any) throws -> Data { try JSONSerialization.data(withJSONObject: object) }
        let cases: [(String, String, Data?, Int, String)] = [
            ("POST", "/v1/entries", Data("{not json".utf8), 400, "not valid JSON"),
            ("POST", "/v1/entries", try body(["entries": [good], "extra": 1]), 400, "unknown field `extra`"),
            ("POST", "/v1/entries", try body(["entries": [good.merging(["colour": "red"]) { $1 }]]), 400, "unknown field `entries[0].colour`"),
            ("POST", "/v1/entries", try body(["entries": []]), 400, "1 to 1000"),
            ("POST", "/v1/entries", try body(["entries": [["spiffe_id": "spiffe://example.org/a", "parent_id": agent]]]), 400, "selectors"),
            ("POST", "/v1/entries", try body(["entries": [good.merging(["x509_svid_ttl": "ten"]) { $1 }]]), 400, "x509_svid_ttl"),
            ("POST", "/v1/entries", Data(repeating: 0x20, count: (1 << 20) + 10), 413, "larger than 1 MiB"),
            ("GET", "/v1/entries?colour=red", nil, 400, "unknown query parameter `colour`"),
            ("GET", "/v1/entries?selector=unix", nil, 400, "type:value"),
            ("GET", "/v1/entries?match=most", nil, 400, "invalid match"),
            ("GET", "/v1/entries?spiffe_id=http://x", nil, 400, "spiffe_id"),
            ("GET", "/v1/entries/has%20space", nil, 400, "invalid entry id"),
            ("GET", "/v1/entries/absent", nil, 404, "no entry"),
            ("PUT", "/v1/entries/absent", try body(good.merging(["revision": 1]) { $1 }), 404, "no entry"),
            ("PUT", "/v1/entries/e1", try body(good), 400, "revision"),
            ("DELETE", "/v1/entries/e1?revision=-3", nil, 400, "revision"),
            // Schema-level faults refuse the whole batch even behind a value fault in an earlier field.
            ("POST", "/v1/entries", try body(["entries": [good.merging(["spiffe_id": "", "revision": [:] as [String: Any]]) { $1 }]]), 400, "revision"),
            ("POST", "/v1/entries", try body(["entries": [good.merging(["spiffe_id": "", "updated_at": "yesterday"]) { $1 }]]), 400, "RFC 3339"),
            ("POST", "/v1/entries", try body(["entries": [good.merging(["selectors": [["type": "unix", "value": "uid:1", "x": "y"]]]) { $1 }]]), 400, "selectors[0]"),
            ("POST", "/v1/entries", try body(["entries": [good.merging(["owner": NSNull()]) { $1 }]]), 400, "`entries[0].owner` is null"),
            ("POST", "/v1/join-tokens", try body(["spiffe_id": NSNull()]), 400, "`spiffe_id` is null"),
            // Unknown endpoints and methods answer in the API's error shape.
            ("GET", "/v1/nothing-here", nil, 404, "no admin API endpoint"),
            ("PATCH", "/v1/entries/e1", nil, 405, "use GET or PUT or DELETE"),
        ]
        for (method, path, payload, status, fragment) in cases {
            let (code, text) = try await server.curl(method, path, body: payload)
            #expect(code == status, "\(method) \(path): \(code) \(text)")
            let error = jsonObject(text)
            #expect(error["code"] is String && (error["message"] as? String ?? "").contains(fragment), "\(method) \(path): \(text)")
        }
        // A value that does not parse fails its entry alone; the request as a whole is answered.
        let (batchCode, batchText) = try await server.curl("POST", "/v1/entries", body: try body(["entries": [good.merging(["spiffe_id": "spiffe://example.org/a/../b"]) { $1 }]]))
        let batchError = ((jsonObject(batchText)["results"] as? [[String: Any]])?.first?["error"] as? [String: Any]) ?? [:]
        #expect(batchCode == 200 && batchError["field"] as? String == "entries[0].spiffe_id" && (batchError["message"] as? String ?? "").contains("'..' segment"), "\(batchText)")
        let (code, text) = try await server.curl("GET", "/v1/entries-count")
        #expect(code == 200 && jsonObject(text)["count"] as? Int == 0, "nothing was stored: \(text)")
        let (health, healthBody) = try await server.curl("GET", "/v1/health")
        #expect(health == 200 && jsonObject(healthBody)["status"] as? String == "serving")
        await server.stop()
    }

    /// The routes the server registers are exactly the paths of `api/admin.v1.openapi.yaml`.
    @Test func routesMatchTheOpenAPIDocument() async throws {
        let document = try String(contentsOf: TestEnvironment.packageRoot.appendingPathComponent("api/admin.v1.openapi.yaml"), encoding: .utf8)
        var documented: Set<String> = []
        var path: String?
        for line in document.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("  /"), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
            } else if let current = path, line.hasPrefix("    "), !line.hasPrefix("     "),
                      let method = ["get", "put", "post", "delete", "patch"].first(where: { line == "    \($0):" }) {
                documented.insert("\(method.uppercased()) \(current)")
            } else if !line.hasPrefix(" "), !line.isEmpty {
                path = nil
            }
        }
        let registered = Set(AdminRoutes.routes.map { "\($0.0.rawValue) \($0.1)" })
        #expect(documented == registered, "documented only: \(documented.subtracting(registered)); registered only: \(registered.subtracting(documented))")
        #expect(registered.count == 36)
    }
}

/// The server deletes expired entries and join tokens by itself, every `prune_interval`.
@Suite(.serialized) struct PruningTests {
    @Test func expiredEntriesDisappear() async throws {
        let server = try await ServerHarness.start(extraArguments: ["--prune-interval", "1s"])
        defer { Task { await server.stop() } }
        let soon = ISO8601DateFormatter().string(from: Date().addingTimeInterval(2))
        let later = ISO8601DateFormatter().string(from: Date().addingTimeInterval(3600))
        for (path, expiry) in [("/soon", soon), ("/later", later)] {
            let created = try await server.writ(["entry", "create", "--spiffe-id", "spiffe://example.org\(path)", "--parent-id", EntryCLITests.agent,
                                           "--selector", "unix:uid:1", "--expires-at", expiry])
            #expect(created.status == 0, "\(created.summary)")
        }
        // Poll for at least 3x the expected time (expiry 2 s + one 1 s interval).
        let deadline = ContinuousClock.now + .seconds(30)
        var remaining = ""
        // The test's task can be starved past the deadline by suites running beside it: it
        // always looks once more after the deadline before failing.
        while true {
            let late = ContinuousClock.now >= deadline
            remaining = try await server.writ(["entry", "count"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            if remaining == "1" || late { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(remaining == "1", "the expired entry was not pruned:\n\(server.serverLog)")
        let listed = try await server.writ(["entry", "list", "--output", "json"])
        #expect(listed.stdout.contains("spiffe://example.org/later") && !listed.stdout.contains("spiffe://example.org/soon"))
        #expect(server.serverLog.contains("pruned expired records"))
        // The server recorded the deletion as its own, with the reason.
        func events(_ type: String) async throws -> [[String: Any]] {
            try await server.writ(["audit", "search", "--type", type]).stdout.split(separator: "\n").map { jsonObject(String($0))["event"] as? [String: Any] ?? [:] }
        }
        let soonID = try await events("entry.create").first { ($0["details"] as? [String: Any])?["spiffe_id"] as? String == "spiffe://example.org/soon" }
            .flatMap { ($0["target"] as? [String: Any])?["id"] as? String }
        let deletions = try await events("entry.delete")
        #expect(deletions.count == 1, "\(deletions)")
        #expect(deletions.first?["reason"] as? String == "expired")
        #expect((deletions.first?["actor"] as? [String: Any])?["id"] as? String == "spiffe://example.org/writ/server")
        #expect(soonID != nil && (deletions.first?["target"] as? [String: Any])?["id"] as? String == soonID, "\(deletions)")
        await server.stop()
    }
}

/// `writ datastore backup` and `writ healthcheck` against a real server.
@Suite(.serialized) struct DatastoreBackupTests {
    @Test func aSQLiteBackupIsACompleteDatabaseAndNeverOverwrites() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        for n in 0..<5 {
            _ = try await server.writ(["entry", "create", "--spiffe-id", "spiffe://example.org/b/\(n)", "--parent-id", EntryCLITests.agent, "--selector", "unix:uid:\(n)"])
        }
        let health = try await server.writ(["healthcheck"])
        #expect(health.status == 0 && health.stdout.contains("serving"), "\(health.summary)")
        let target = server.directory.file("backup.sqlite3").path
        let backup = try await server.writ(["datastore", "backup", target])
        #expect(backup.status == 0, "\(backup.summary)")
        var info = stat()
        #expect(stat(target, &info) == 0 && info.st_mode & 0o777 == 0o600)
        // The copy is a datastore of its own: a second server serves the same entries from it.
        let again = try await server.writ(["datastore", "backup", target])
        #expect(again.status == 4 && again.stderr.contains("never overwrites"), "\(again.summary)")
        let relative = try await server.writ(["datastore", "backup", "/nonexistent-dir/x.sqlite3"])
        #expect(relative.status == 1 && relative.stderr.contains("does not exist"), "\(relative.summary)")
        // The backup is in the audit log; the refused ones are not.
        let logged = try await server.writ(["audit", "search", "--type", "datastore.backup"])
        let backups = logged.stdout.split(separator: "\n").map { jsonObject(String($0))["event"] as? [String: Any] ?? [:] }
        #expect(backups.count == 1 && (backups.first?["target"] as? [String: Any])?["id"] as? String == target, "\(logged.summary)")
        await server.stop()

        let copy = try TemporaryDirectory(prefix: "writ-restore")
        try FileManager.default.createDirectory(atPath: copy.file("data").path, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: target, toPath: copy.file("data/datastore.sqlite3").path)
        let restored = try await ServerHarness.start(extraArguments: ["--datastore", "sqlite:" + copy.file("data/datastore.sqlite3").path])
        defer { Task { await restored.stop() } }
        #expect(try await restored.writ(["entry", "count"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "5")
        await restored.stop()
    }

    @Test func aPostgresBackupPointsToPgDump() async throws {
        let server = try await ServerHarness.start(backend: "postgres")
        defer { Task { await server.stop() } }
        let backup = try await server.writ(["datastore", "backup", server.directory.file("x.sqlite3").path])
        #expect(backup.status == 1 && backup.stderr.contains("pg_dump"), "\(backup.summary)")
        await server.stop()
    }
}
