import ArgumentParser
import Foundation
import MerkleLog
import StrictJSON
import WritAudit
import WritConfig
import WritModel

/// `writ audit …`: read, prove and verify the server's tamper-evident audit log.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Read, prove and verify the tamper-evident audit log (an RFC 6962 Merkle tree with signed checkpoints).",
        discussion: """
            Every attestation, SVID issued, entry, token, agent, bundle and authority
            change is an event in one append-only log per trust domain. Events are
            JSON (docs/audit-event.v1.schema.json); each leaf of the tree is an
            event's RFC 8785 canonical form. The server signs a checkpoint (a C2SP
            signed note: origin, size, root) after changes, at most once a second,
            with its own log key.

              writ audit tail --follow --from 0           ship every event
              writ audit search --type 'svid.*' --since 1h
              writ audit checkpoint > cp-$(date +%F).txt   keep one elsewhere
              writ audit verify --log-key KEY --checkpoint-file cp-2026-12-01.txt
              writ audit export --from 0 --out log.jsonl
              writ audit verify --export log.jsonl --checkpoint cp.txt --log-key KEY

            docs/audit-log.md explains the format, witnessing from cron and
            archiving.
            """,
        subcommands: [Tail.self, Search.self, Checkpoint.self, Proof.self, Export.self, Verify.self, Keys.self])

    // MARK: tail

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print events as JSON Lines ({\"index\": i, \"event\": {…}}), and with --follow keep printing new ones.",
            discussion: """
                Without --from the last 10 events are printed. Every line carries its
                index, so a shipper that stopped after index N resumes with --from N+1,
                without a gap or a repeat:
                  next=$(( $(tail -1 shipped.jsonl | jq .index) + 1 ))
                  writ audit tail --follow --from "$next" >> shipped.jsonl
                """)
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("Start at this index (default: the last 10 events).", valueName: "N")) var from: UInt64?
        @Flag(help: "Keep running and print events as they are appended.") var follow = false
        @Option(help: ArgumentHelp("How often --follow looks for new events (whole seconds: 1s, 5s).", valueName: "duration"))
        var interval: String = "1s"

        func run() async throws {
            try await runAdmin {
                let client = AdminClient(socket: connection.adminSocket)
                let pause = try parseDuration(interval, flag: "--interval")
                var next: UInt64
                if let from { next = from } else {
                    let size = try await AuditReader(client: client).page(from: 0, limit: 1).size
                    next = size > 10 ? size - 10 : 0
                }
                while true {
                    // A page is an index range: advance by the range, not by the events found
                    // in it (a missing index is not a reason to read the next one twice).
                    let page = try await AuditReader(client: client).page(from: next, limit: 1000)
                    for item in page.events { try printEventLine(item) }
                    next = max(next, min(next + 1000, page.size))
                    if next >= page.size {
                        guard follow else { return }
                        try await Task.sleep(for: .seconds(max(1, pause)))
                    }
                }
            }
        }
    }

    // MARK: search

    struct Search: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find events by type, actor, target and time; JSON Lines with their index.",
            discussion: """
                Every filter given must match; results come in index order.
                  writ audit search --type svid.x509.issue \\
                      --actor spiffe://example.org/writ/agent/join_token/1a2b
                  writ audit search --type 'node.*' --since 24h
                  writ audit search --actor unix:uid:1000 \\
                      --since 2026-12-01T00:00:00Z --until 2026-12-02T00:00:00Z
                  writ audit search --target entry:0f5c…
                Actors are spiffe://…, unix:uid:<n> or node:<attestor>:<id>; targets
                are <kind>:<id> (entry, spiffe_id, agent, join_token, trust_domain,
                authority).
                """)
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("An event type, or a prefix ending in * (svid.*).", valueName: "type")) var type: String?
        @Option(help: ArgumentHelp("The actor (spiffe://…, unix:uid:<n>, node:<attestor>:<id>).", valueName: "actor")) var actor: String?
        @Option(help: ArgumentHelp("The target, <kind>:<id>.", valueName: "target")) var target: String?
        @Option(help: ArgumentHelp("From this time on: RFC 3339, or a duration ago (1h, 7d).", valueName: "time")) var since: String?
        @Option(help: ArgumentHelp("Before this time: RFC 3339, or a duration ago.", valueName: "time")) var until: String?
        @Option(help: ArgumentHelp("At most this many events.", valueName: "n")) var limit: Int = 1000

        func run() async throws {
            try await runAdmin {
                guard limit > 0 else { throw AdminFailure("invalid --limit \(limit): at least 1", exitCode: 64) }
                var query: [(String, String)] = []
                if let type { query.append(("type", type)) }
                if let actor { query.append(("actor", actor)) }
                if let target { query.append(("target", target)) }
                if let since { query.append(("since", try auditTime(since, flag: "--since"))) }
                if let until { query.append(("until", try auditTime(until, flag: "--until"))) }
                let client = AdminClient(socket: connection.adminSocket)
                var printed = 0
                var after: UInt64?
                while printed < limit {
                    let pageSize = min(1000, limit - printed)
                    let data = try await client.send(.GET, "/v1/audit/search",
                                                     query: query + [("limit", String(pageSize))] + (after.map { [("after", String($0))] } ?? []))
                    let page = try AdminAPI.decoder().decode(AdminAPI.AuditEventPage.self, from: data)
                    for item in page.events { try printEventLine(item) }
                    printed += page.events.count
                    guard page.events.count == pageSize, let last = page.events.last else { break }
                    after = last.index
                }
            }
        }
    }

    // MARK: checkpoint

    struct Checkpoint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the latest signed checkpoint (C2SP signed note: origin, size, root, signatures).",
            discussion: """
                Save it somewhere the server cannot write; `writ audit verify
                --checkpoint-file` later proves the log still extends it
                (docs/audit-log.md: witnessing from cron).
                """)
        @OptionGroup var connection: AdminOptions

        func run() async throws {
            try await runAdmin {
                let data = try await AdminClient(socket: connection.adminSocket).send(.GET, "/v1/audit/checkpoint")
                let checkpoint = try AdminAPI.decoder().decode(AdminAPI.AuditCheckpoint.self, from: data)
                if connection.output == .json { try printJSON(checkpoint) } else { print(checkpoint.note, terminator: "") }
            }
        }
    }

    // MARK: proof

    struct Proof: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Inclusion and consistency proofs, as C2SP/CCTV JSON (hashes base64).",
            subcommands: [Inclusion.self, Consistency.self])

        struct Inclusion: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Prove that the event at --index is in the tree of --size events (default: the latest checkpoint's size).")
            @OptionGroup var connection: AdminOptions
            @Option(help: ArgumentHelp("The event's index.", valueName: "N")) var index: UInt64
            @Option(help: ArgumentHelp("The tree size (default: the latest checkpoint's).", valueName: "N")) var size: UInt64?

            func run() async throws {
                try await runAdmin {
                    let data = try await AdminClient(socket: connection.adminSocket).send(
                        .GET, "/v1/audit/proof/inclusion", query: [("index", String(index))] + (size.map { [("size", String($0))] } ?? []))
                    try printJSON(try AdminAPI.decoder().decode(AdminAPI.AuditInclusionProof.self, from: data))
                }
            }
        }

        struct Consistency: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Prove that the tree of --from events is a prefix of the tree of --to events (default: the latest checkpoint's size).")
            @OptionGroup var connection: AdminOptions
            @Option(help: ArgumentHelp("The older tree size.", valueName: "N")) var from: UInt64
            @Option(help: ArgumentHelp("The newer tree size (default: the latest checkpoint's).", valueName: "N")) var to: UInt64?

            func run() async throws {
                try await runAdmin {
                    let data = try await AdminClient(socket: connection.adminSocket).send(
                        .GET, "/v1/audit/proof/consistency", query: [("from", String(from))] + (to.map { [("to", String($0))] } ?? []))
                    try printJSON(try AdminAPI.decoder().decode(AdminAPI.AuditConsistencyProof.self, from: data))
                }
            }
        }
    }

    // MARK: export

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write events --from N (inclusive) --to M (exclusive) as JSON Lines {\"index\": i, \"event\": {…}}.",
            discussion: """
                An export from index 0 and a checkpoint verify offline, with no server:
                  writ audit export --from 0 --out log.jsonl
                  writ audit checkpoint > cp.txt
                  writ audit verify --export log.jsonl --checkpoint cp.txt \\
                      --log-key "$(cat log-key.pub)"
                Progress goes to stderr every 100,000 events.
                """)
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("The first index (inclusive).", valueName: "N")) var from: UInt64 = 0
        @Option(help: ArgumentHelp("The end (exclusive; default: the log's size when the export starts).", valueName: "M")) var to: UInt64?
        @Option(help: ArgumentHelp("Write here instead of stdout (a new file).", valueName: "file")) var out: String?

        func run() async throws {
            try await runAdmin {
                let reader = AuditReader(client: AdminClient(socket: connection.adminSocket))
                let size = try await reader.page(from: 0, limit: 1).size
                let end = min(to ?? size, size)
                guard from <= end else { throw AdminFailure("--from \(from) is past the end (\(end))", exitCode: 64) }
                var sink = try LineSink(path: out)
                var next = from
                var reported = from
                while next < end {
                    let want = min(1000, end - next)
                    let page = try await reader.page(from: next, limit: Int(want))
                    for item in page.events { try sink.write(try eventLine(item)) }
                    next += want
                    if next - reported >= 100_000 {
                        reported = next
                        var stderr = StandardError()
                        print("exported \(next - from) of \(end - from) events", to: &stderr)
                    }
                }
                try sink.close()
            }
        }
    }

    // MARK: verify

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the log from its event bodies and hold it to signed checkpoints; names the first bad index.",
            discussion: """
                Against the running server (through the admin socket): every event is
                re-hashed from its body and compared with the leaf hash the datastore
                keeps, and the recomputed tree must reproduce the root of every stored
                checkpoint and of every --checkpoint-file saved earlier elsewhere, which
                catches a rewritten history even when every checkpoint in the database
                was rewritten too:
                  writ audit verify --log-key "example.org/writ/audit+1a2b3c4d+AbC…" \\
                      --checkpoint-file cp-2026-12-01.txt

                Offline, from an export that starts at index 0:
                  writ audit verify --export log.jsonl --checkpoint cp-a.txt \\
                      --checkpoint cp-b.txt --log-key key.pub

                Checkpoint signatures are checked with --log-key (a verifier key
                name+id+base64, or a file of them, one per line; also
                WRIT_AUDIT_LOG_KEY). Without one, online verification uses the keys the
                server lists (writ audit keys) and says so: a key kept elsewhere is what
                makes the check independent of the server. Exit 0 when the log
                verifies, 2 when it does not.
                """)
        @OptionGroup var connection: AdminOptions
        @Option(name: .customLong("log-key"), help: ArgumentHelp("A log verifier key, or a file of them (repeatable; env WRIT_AUDIT_LOG_KEY).", valueName: "key|file"))
        var logKeys: [String] = []
        @Option(name: .customLong("checkpoint-file"), help: ArgumentHelp("A checkpoint saved earlier (repeatable).", valueName: "file"))
        var checkpointFiles: [String] = []
        @Option(name: .customLong("checkpoint"), help: ArgumentHelp("Offline: a checkpoint to hold the export to (repeatable).", valueName: "file"))
        var checkpoints: [String] = []
        @Option(help: ArgumentHelp("Offline: an export (writ audit export --from 0) to verify instead of the live log.", valueName: "file"))
        var export: String?

        func run() async throws {
            try await runAdmin {
                var stderr = StandardError()
                var keys = try logKeys.flatMap { try verifierKeys($0, from: "--log-key") }
                if keys.isEmpty, let env = ProcessInfo.processInfo.environment["WRIT_AUDIT_LOG_KEY"], !env.isEmpty {
                    keys = try verifierKeys(env, from: "WRIT_AUDIT_LOG_KEY")
                }
                let saved = checkpointFiles + checkpoints
                var trustedServerKeys = false
                let outcome: AuditVerifier
                if let export {
                    guard !keys.isEmpty else {
                        throw AdminFailure("offline verification needs the log's verifier key: pass --log-key KEY|FILE (or set WRIT_AUDIT_LOG_KEY); `writ audit keys` lists them", exitCode: 64)
                    }
                    guard !saved.isEmpty else { throw AdminFailure("offline verification needs at least one --checkpoint to hold the export to", exitCode: 64) }
                    outcome = try verifyExport(export, checkpoints: try saved.map { try openCheckpoint(file: $0, keys: keys) })
                } else {
                    let client = AdminClient(socket: connection.adminSocket)
                    if keys.isEmpty {
                        let data = try await client.send(.GET, "/v1/audit/keys")
                        let listed = try AdminAPI.decoder().decode(AdminAPI.AuditLogKeyList.self, from: data).keys
                        keys = try listed.map { try NoteVerifier(encoded: $0.verifierKey) }
                        trustedServerKeys = true
                        print("warning: no --log-key given: trusting the \(keys.count) log key(s) the server itself lists; pass --log-key (or WRIT_AUDIT_LOG_KEY) with a key kept elsewhere for a check that does not rely on the server",
                              to: &stderr)
                    }
                    var held = try saved.map { try openCheckpoint(file: $0, keys: keys) }
                    let stored = try AdminAPI.decoder().decode(AdminAPI.AuditCheckpointList.self,
                                                               from: try await client.send(.GET, "/v1/audit/checkpoints", query: [("limit", "10000")]))
                    for checkpoint in stored.checkpoints {
                        do { held.append(try MerkleLog.Checkpoint.open(checkpoint.note, verifiers: keys).checkpoint) } catch {
                            throw verificationFailed("the stored checkpoint of size \(checkpoint.size) does not verify with \(Self.keySource(trustedServerKeys)): \(error)")
                        }
                    }
                    outcome = try await verifyLive(AuditReader(client: client), checkpoints: held)
                }
                let largest = outcome.verifiedCheckpoints.max { $0.size < $1.size }
                if connection.output == .json {
                    try printJSON(VerifyReport(verified: true, size: outcome.size, root: outcome.root.base64, checkpoints: outcome.verifiedCheckpoints.count,
                                               largestCheckpoint: largest?.size, trustedServerKeys: trustedServerKeys))
                } else {
                    print("audit log verified: \(outcome.size) events recomputed from their bodies; root \(outcome.root.base64)")
                    print("checkpoints held: \(outcome.verifiedCheckpoints.count)" + (largest.map { " (largest: \($0.size) events)" } ?? "")
                          + ", signatures checked with \(Self.keySource(trustedServerKeys))")
                }
            }
        }

        static func keySource(_ trustedServerKeys: Bool) -> String {
            trustedServerKeys ? "the server's own log keys" : "the log key you gave"
        }

        struct VerifyReport: Encodable {
            let verified: Bool
            let size: UInt64
            let root: String
            let checkpoints: Int
            let largestCheckpoint: UInt64?
            let trustedServerKeys: Bool
            enum CodingKeys: String, CodingKey {
                case verified, size, root, checkpoints, largestCheckpoint = "largest_checkpoint", trustedServerKeys = "trusted_server_keys"
            }
        }

        /// The live log, page by page, each body against its stored leaf hash.
        private func verifyLive(_ reader: AuditReader, checkpoints: [MerkleLog.Checkpoint]) async throws -> AuditVerifier {
            var verifier = AuditVerifier(checkpoints: checkpoints)
            let size = try await reader.page(from: 0, limit: 1).size
            var next: UInt64 = 0
            do {
                while next < size {
                    // A page is an index range: a deleted event leaves a hole the verifier names.
                    let want = min(1000, size - next)
                    let page = try await reader.page(from: next, limit: Int(want))
                    for item in page.events {
                        guard let stored = item.leafHash.flatMap(MerkleHash.init(base64:)) else {
                            throw AuditVerificationError(index: item.index, message: "the event's stored leaf hash is missing")
                        }
                        try verifier.add(index: item.index, body: Array(item.body.utf8), storedLeaf: stored)
                    }
                    next += want
                    if verifier.size < next {
                        throw AuditVerificationError(index: verifier.size, message: "missing: no event with this index in a log of \(size)")
                    }
                }
                try verifier.finish()
            } catch let error as AuditVerificationError {
                throw verificationFailed(error.description)
            }
            return verifier
        }

        /// An export file, line by line: each event's leaf is its RFC 8785 canonical form.
        private func verifyExport(_ path: String, checkpoints: [MerkleLog.Checkpoint]) throws -> AuditVerifier {
            guard let handle = FileHandle(forReadingAtPath: path) else { throw AdminFailure("cannot read `\(path)`", exitCode: 1) }
            defer { try? handle.close() }
            var verifier = AuditVerifier(checkpoints: checkpoints)
            var lines = LineReader(handle: handle)
            var number = 0
            do {
                while let line = try lines.next() {
                    number += 1
                    if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) { continue }
                    let value: JSONValue
                    do { value = try JSONParser.parse(line) } catch {
                        throw AdminFailure("\(path):\(number): not a JSON line: \(error)", exitCode: 2)
                    }
                    guard case .integer(let index)? = value["index"], index >= 0, let event = value["event"] else {
                        throw AdminFailure("\(path):\(number): a line is {\"index\": <n>, \"event\": {…}}", exitCode: 2)
                    }
                    let body: [UInt8]
                    do { body = try event.canonicalBytes() } catch {
                        throw AuditVerificationError(index: UInt64(index), message: "the event has no canonical form: \(error)")
                    }
                    if number == 1, index != 0 {
                        throw AdminFailure("\(path) starts at index \(index): verification recomputes the tree from index 0 (writ audit export --from 0)", exitCode: 64)
                    }
                    try verifier.add(index: UInt64(index), body: body)
                }
                try verifier.finish()
            } catch let error as AuditVerificationError {
                throw verificationFailed(error.description)
            }
            return verifier
        }

        private func openCheckpoint(file: String, keys: [NoteVerifier]) throws -> MerkleLog.Checkpoint {
            guard let data = FileManager.default.contents(atPath: file) else { throw AdminFailure("cannot read checkpoint `\(file)`", exitCode: 1) }
            do { return try MerkleLog.Checkpoint.open(String(decoding: data, as: UTF8.self), verifiers: keys).checkpoint } catch {
                throw verificationFailed("the checkpoint in `\(file)` does not verify with the log key(s): \(error)")
            }
        }

        private func verificationFailed(_ message: String) -> AdminFailure {
            AdminFailure("audit log verification failed: \(message)", exitCode: 2)
        }
    }

    // MARK: keys

    struct Keys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every server's log verifier key, retired ones included (old checkpoints keep verifying).")
        @OptionGroup var connection: AdminOptions

        func run() async throws {
            try await runAdmin {
                let data = try await AdminClient(socket: connection.adminSocket).send(.GET, "/v1/audit/keys")
                let list = try AdminAPI.decoder().decode(AdminAPI.AuditLogKeyList.self, from: data)
                if connection.output == .json { return try printJSON(list) }
                for key in list.keys {
                    print("\(key.verifierKey)\tserver \(key.serverID)\t" + (key.retiredAt.map { "retired \(AuditEvent.timestamp($0))" } ?? "current"))
                }
            }
        }
    }
}

/// Reads pages of `/v1/audit/events`.
struct AuditReader {
    let client: AdminClient

    func page(from: UInt64, limit: Int) async throws -> AdminAPI.AuditEventPage {
        let data = try await client.send(.GET, "/v1/audit/events", query: [("from", String(from)), ("limit", String(max(1, limit)))])
        return try AdminAPI.decoder().decode(AdminAPI.AuditEventPage.self, from: data)
    }
}

/// `{"event":{…},"index":i}` (RFC 8785 canonical, so the event's bytes are its leaf's); an event
/// whose stored body is not canonical JSON any more is printed as `{"body":"…","index":i}`.
func eventLine(_ item: AdminAPI.AuditEventItem) throws -> String {
    if let event = try? JSONParser.parse(item.body),
       let line = try? JSONValue.object([JSONMember("index", .integer(Int64(item.index))), JSONMember("event", event)]).canonical() {
        return line
    }
    return try JSONValue.object([JSONMember("index", .integer(Int64(item.index))), JSONMember("body", .string(item.body))]).canonical()
}

func printEventLine(_ item: AdminAPI.AuditEventItem) throws {
    FileHandleStream.standardOutput.write(try eventLine(item) + "\n")
}

/// `--since`/`--until`: an RFC 3339 time, or a duration before now; sent as RFC 3339.
func auditTime(_ text: String, flag: String) throws -> String {
    if let date = AdminAPI.parseTime(text) { return AuditEvent.timestamp(date) }
    if let seconds = ConfigDuration.seconds(text) { return AuditEvent.timestamp(Date().addingTimeInterval(-TimeInterval(seconds))) }
    throw AdminFailure("invalid \(flag) `\(text)`: an RFC 3339 time (2026-12-01T00:00:00Z) or a duration ago (90s, 10m, 1h, 7d)", exitCode: 64)
}

/// Verifier keys from a `--log-key` value: a key, or a file of keys (one per line).
func verifierKeys(_ text: String, from source: String) throws -> [NoteVerifier] {
    var candidates = [text.trimmingCharacters(in: .whitespacesAndNewlines)]
    if FileManager.default.fileExists(atPath: text), let data = FileManager.default.contents(atPath: text) {
        candidates = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    } else if text.contains("\n") || text.contains(",") {
        candidates = text.split(whereSeparator: { $0.isNewline || $0 == "," }).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
    guard !candidates.isEmpty else { throw AdminFailure("\(source): no key in `\(text.prefix(64))`", exitCode: 64) }
    return try candidates.map { candidate in
        do { return try NoteVerifier(encoded: candidate) } catch {
            throw AdminFailure("\(source): `\(candidate.prefix(80))` is not a log verifier key (`<name>+<hex id>+<base64 key>`, as `writ audit keys` prints): \(error)", exitCode: 64)
        }
    }
}

/// Lines written to stdout or to a new file.
struct LineSink {
    private let handle: FileHandle?
    private var buffer: [UInt8] = []

    init(path: String?) throws {
        if let path {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
                  let handle = FileHandle(forWritingAtPath: path) else {
                throw AdminFailure("cannot create `\(path)`", exitCode: 1)
            }
            self.handle = handle
        } else {
            handle = nil
        }
    }

    mutating func write(_ line: String) throws {
        buffer.append(contentsOf: line.utf8)
        buffer.append(0x0A)
        if buffer.count > 1 << 20 { try flush() }
    }

    mutating func flush() throws {
        guard !buffer.isEmpty else { return }
        if let handle { try handle.write(contentsOf: buffer) } else { FileHandle.standardOutput.write(Data(buffer)) }
        buffer.removeAll(keepingCapacity: true)
    }

    mutating func close() throws {
        try flush()
        try handle?.close()
    }
}

/// Reads a file line by line (without the newline), in bounded memory.
struct LineReader {
    let handle: FileHandle
    private var buffer: [UInt8] = []
    private var start = 0
    private var atEnd = false

    init(handle: FileHandle) { self.handle = handle }

    mutating func next() throws -> [UInt8]? {
        while true {
            if let newline = buffer[start...].firstIndex(of: 0x0A) {
                let line = Array(buffer[start..<newline])
                start = newline + 1
                return line
            }
            if atEnd {
                guard start < buffer.count else { return nil }
                defer { buffer.removeAll(); start = 0 }
                return Array(buffer[start...])
            }
            buffer.removeSubrange(..<start)
            start = 0
            let chunk = try handle.read(upToCount: 1 << 20) ?? Data()
            if chunk.isEmpty { atEnd = true } else { buffer.append(contentsOf: chunk) }
        }
    }
}
