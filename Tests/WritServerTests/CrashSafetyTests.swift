#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import WritStore
import WritStoreSQLite
import WritTestSupport

/// An acknowledged write survives `kill -9`: eight clients create entries through the admin API
/// while the server is killed after at least 50 acknowledgements; after a restart on the same
/// datastore every acknowledged entry is there with all its selectors, revisions are unique, and
/// SQLite's `PRAGMA integrity_check` is ok. Five runs per backend.
@Suite(.serialized) struct CrashSafetyTests {
    /// What the clients saw: acknowledged entry ids and how many requests were in flight.
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private var acknowledged: Set<String> = []
        private var inFlight = 0
        private var maxInFlight = 0
        private(set) var stopped = false

        func begin() { lock.withLock { inFlight += 1; maxInFlight = max(maxInFlight, inFlight) } }
        func end(_ id: String?) { lock.withLock { inFlight -= 1; if let id { acknowledged.insert(id) } } }
        func stop() { lock.withLock { stopped = true } }
        var isStopped: Bool { lock.withLock { stopped } }
        var snapshot: (acknowledged: Set<String>, inFlight: Int, maxInFlight: Int) { lock.withLock { (acknowledged, inFlight, maxInFlight) } }
    }

    @Test(arguments: ["sqlite", "postgres"])
    func acknowledgedEntriesSurviveKill9(_ backend: String) async throws {
        for run in 1...5 {
            let server = try await ServerHarness.start(backend: backend)
            let tally = Tally()
            // Eight clients create entries back to back; each creation is acknowledged or not.
            let clients = Task {
                await withTaskGroup(of: Void.self) { group in
                    for client in 0..<8 {
                        group.addTask {
                            var n = 0
                            while !tally.isStopped {
                                let id = "r\(run)-c\(client)-\(n)"
                                n += 1
                                let body = #"{"entries":[{"id":"\#(id)","spiffe_id":"spiffe://example.org/crash/\#(id)","parent_id":"spiffe://example.org/writ/agent/join_token/t1","selectors":[{"type":"unix","value":"uid:\#(n)"},{"type":"unix","value":"gid:\#(client)"},{"type":"unix","value":"user:c\#(client)"}]}]}"#
                                tally.begin()
                                let answer = try? await server.curl("POST", "/v1/entries", body: Data(body.utf8))
                                let stored = answer.map { $0.0 == 200 && $0.1.contains("\"revision\"") } ?? false
                                tally.end(stored ? id : nil)
                                if !stored, !tally.isStopped, !server.process.isRunning { break }
                            }
                        }
                    }
                }
            }
            // Kill once at least 50 creations are acknowledged and all 8 clients are in flight.
            let deadline = ContinuousClock.now + .seconds(120)
            var killedWith = (acknowledged: 0, inFlight: 0)
            while ContinuousClock.now < deadline {
                let now = tally.snapshot
                if now.acknowledged.count >= 50, now.inFlight >= 8 {
                    kill(server.process.processIdentifier, SIGKILL)
                    killedWith = (now.acknowledged.count, now.inFlight)
                    break
                }
                try await Task.sleep(for: .milliseconds(2))
            }
            let acknowledged = tally.snapshot.acknowledged
            tally.stop()
            await clients.value
            #expect(killedWith.acknowledged >= 50 && killedWith.inFlight >= 8, "run \(run): the kill came too early or never: \(killedWith)")
            server.process.waitUntilExit()
            #expect(server.process.terminationReason == .uncaughtSignal)

            if backend == "sqlite" {
                let sqlite = try await SQLiteBackend.open(path: server.dataDir + "/datastore.sqlite3")
                #expect(try await sqlite.integrityCheck() == "ok", "run \(run)")
                await sqlite.close()
            }
            let restarted = try await server.restart()
            var seen: [String: Int] = [:]
            var revisions: [Int] = []
            var token: String?
            repeat {
                let query = "/v1/entries?page_size=1000" + (token.map { "&page_token=\($0)" } ?? "")
                let (status, text) = try await restarted.curl("GET", query)
                #expect(status == 200, "\(text)")
                let page = jsonObject(text)
                for entry in page["entries"] as? [[String: Any]] ?? [] {
                    seen[entry["id"] as? String ?? ""] = (entry["selectors"] as? [Any])?.count ?? 0
                    revisions.append(entry["revision"] as? Int ?? -1)
                }
                token = page["next_page_token"] as? String
            } while token != nil
            let missing = acknowledged.subtracting(seen.keys)
            #expect(missing.isEmpty, "run \(run) (\(backend)): \(missing.count) acknowledged entries lost after kill -9: \(missing.sorted().prefix(5))")
            #expect(seen.values.allSatisfy { $0 == 3 }, "run \(run): an entry lost selectors")
            #expect(Set(revisions).count == revisions.count && !revisions.contains(-1), "run \(run): revisions are not unique")
            print("CrashSafetyTests \(backend) run \(run): killed after \(killedWith.acknowledged) acknowledged with \(killedWith.inFlight) in flight; \(seen.count) entries after restart")
            await restarted.stop()
        }
    }
}
