import Foundation
import SPIFFEIdentity
import StrictJSON
import Testing
import WritAudit
import WritTestSupport

/// Audit events, schema v1: canonical bytes that the JSON Schema (read by Python's jsonschema)
/// accepts and rfc8785 writes identically; malformed and secret-bearing events refused.
@Suite struct AuditEventTests {
    static let agent = try! SPIFFEID(parsing: "spiffe://example.org/writ/agent/join_token/abc")
    static let workload = try! SPIFFEID(parsing: "spiffe://example.org/web")
    static let at = Date(timeIntervalSince1970: 1_800_000_000.123)

    /// One event of each type issue 6 names, as the server will write them.
    static var samples: [AuditEvent] {
        [
            AuditEvent(time: at, type: "node.attest", actor: .node(attestor: "join_token", id: AuditEvent.digest(Data("secret-token".utf8))),
                       target: AuditTarget(kind: "spiffe_id", id: agent.uri), action: "attest", outcome: .allowed,
                       details: [JSONMember("join_token_sha256", .string(AuditEvent.digest(Data("secret-token".utf8)))), JSONMember("selectors", .array([.string("join_token:abc")]))]),
            AuditEvent(time: at, type: "node.attest", actor: .node(attestor: "x509pop", id: "sha256:0f"), action: "attest", outcome: .denied,
                       reason: "the node certificate does not chain to a trusted CA"),
            AuditEvent(time: at, type: "svid.x509.issue", actor: .spiffe(agent), target: AuditTarget(kind: "spiffe_id", id: workload.uri), action: "issue",
                       outcome: .allowed, requestID: "req-1",
                       details: [JSONMember("serial", .string("7f3a0c9e5b1d2e4f8a6c0b9d7e5f3a1c")), JSONMember("entry_id", .string("e-1")),
                                 JSONMember("not_after", .string(AuditEvent.timestamp(at.addingTimeInterval(3600)))), JSONMember("ttl_seconds", .integer(3600))]),
            AuditEvent(time: at, type: "svid.jwt.issue", actor: .spiffe(agent), onBehalfOf: [.spiffe(workload)], target: AuditTarget(kind: "spiffe_id", id: workload.uri),
                       action: "issue", outcome: .allowed, details: [JSONMember("audience", .array([.string("https://api.example.org")])), JSONMember("jti", .string("j-1"))]),
            AuditEvent(time: at, type: "entry.create", actor: .unix(uid: 0, gid: 0, pid: 4242), target: AuditTarget(kind: "entry", id: "e-1"), action: "create",
                       outcome: .allowed, details: [JSONMember("revision", .integer(7))]),
            AuditEvent(time: at, type: "entry.update", actor: .unix(uid: 1000, gid: nil, pid: nil), target: AuditTarget(kind: "entry", id: "e-1"), action: "update", outcome: .error,
                       reason: "conflict: revision 6 is not current"),
            AuditEvent(time: at, type: "bundle.set", actor: .spiffe(try! SPIFFEID(parsing: "spiffe://example.org/admin")), target: AuditTarget(kind: "trust_domain", id: "partner.org"),
                       action: "set", outcome: .allowed, policyIDs: ["policy0"]),
            AuditEvent(time: at, type: "agent.ban", actor: .unix(uid: 0, gid: 0, pid: 1), target: AuditTarget(kind: "agent", id: agent.uri), action: "ban", outcome: .allowed),
            AuditEvent(time: at, type: "token.generate", actor: .unix(uid: 0, gid: 0, pid: 1), action: "generate", outcome: .allowed,
                       details: [JSONMember("token_sha256", .string(AuditEvent.digest(Data("t".utf8)))), JSONMember("expires_at", .string(AuditEvent.timestamp(at)))]),
            AuditEvent(time: at, type: "authority.x509.activate", actor: .unix(uid: 0, gid: 0, pid: 1), target: AuditTarget(kind: "authority", id: "ab12"), action: "activate",
                       outcome: .allowed, details: [JSONMember("nested", .object([JSONMember("é", .integer(-9_007_199_254_740_991)), JSONMember("a", .null)]))]),
        ]
    }

    @Test func eventsAreCanonicalAndMatchTheSchema() async throws {
        let directory = try TemporaryDirectory(prefix: "writ-audit-events")
        let file = directory.file("events.txt")
        try Self.samples.map { Data(try $0.canonicalBody()).base64EncodedString() + "\n" }.joined().write(to: file, atomically: true, encoding: .utf8)
        let run = try await ProcessRunner.run(try TestEnvironment.interopPython(), [TestEnvironment.interopScript("audit_event_check.py"),
                                                                            TestEnvironment.packageRoot.appendingPathComponent("docs/audit-event.v1.schema.json").path, file.path])
        #expect(run.status == 0 && run.stdout.contains("\"problems\": 0"), "\(run.summary)")
        // The fields as documented, keys sorted by JCS.
        let body = String(decoding: try Self.samples[4].canonicalBody(), as: UTF8.self)
        #expect(body == #"{"action":"create","actor":{"gid":0,"kind":"unix","pid":4242,"uid":0},"details":{"revision":7},"on_behalf_of":[],"outcome":"allowed","policy_ids":[],"target":{"id":"e-1","kind":"entry"},"time":"2027-01-15T08:00:00.123Z","type":"entry.create","v":1}"#)
        #expect(try Self.samples[2].record().actor == Self.agent.uri)
        #expect(try Self.samples[4].record().actor == "unix:uid:0")
        #expect(try Self.samples[4].record().target == "entry:e-1")
    }

    /// `canonicalBody()` writes the top level straight out; it is byte for byte the general
    /// canonical writer over `json()`, with each optional member present or absent, every
    /// actor kind, and strings that need escaping.
    @Test func theDirectWriterIsTheCanonicalFormOfTheJSON() throws {
        for sample in Self.samples { #expect(try sample.canonicalBody() == sample.json().canonicalBytes()) }
        var rng = SeededRandom(seed: 6)
        let actors: [AuditActor] = [.spiffe(Self.agent), .unix(uid: 0, gid: nil, pid: nil), .unix(uid: 7, gid: 8, pid: 9),
                                    .node(attestor: "join_token", id: "é\"\\\n")]
        for n in 0..<500 {
            let event = AuditEvent(
                time: Date(timeIntervalSince1970: Double.random(in: 0...4_000_000_000, using: &rng)), type: ["a", "svid.x509.issue", "z.y"][n % 3],
                actor: actors.randomElement(using: &rng)!, onBehalfOf: Array(actors.shuffled(using: &rng).prefix(Int.random(in: 0...2, using: &rng))),
                target: Bool.random(using: &rng) ? AuditTarget(kind: "k\u{1}", id: "id \"\u{1F600}") : nil, action: "act\\ion",
                outcome: [AuditOutcome.allowed, .denied, .error].randomElement(using: &rng)!, reason: Bool.random(using: &rng) ? "reason\t\u{7F}" : nil,
                policyIDs: Array(["p1", "p\u{0}", "ü"].prefix(Int.random(in: 0...3, using: &rng))), requestID: Bool.random(using: &rng) ? "r-\(n)" : nil,
                details: Bool.random(using: &rng)
                    ? [JSONMember("zeta", .integer(Int64(n))), JSONMember("alpha", .array([.null, .bool(true), .string("x\u{1F}")])),
                       JSONMember("é", .object([JSONMember("b", .integer(1)), JSONMember("a", .integer(2))]))]
                    : [])
            #expect(try event.canonicalBody() == event.json().canonicalBytes(), "event \(n)")
        }
    }

    @Test func malformedOrSecretBearingEventsAreRefused() {
        func refused(_ change: (inout AuditEvent) -> Void, _ what: String) {
            var event = Self.samples[4]
            change(&event)
            #expect(throws: AuditError.self, "\(what)") { try event.canonicalBody() }
        }
        refused({ $0.type = "Entry.Create" }, "an upper-case type")
        refused({ $0.type = "entry..create" }, "an empty type word")
        refused({ $0.type = "" }, "no type")
        refused({ $0.action = "" }, "no action")
        refused({ $0.details = [JSONMember("join_token", .string("abc"))] }, "a join token")
        refused({ $0.details = [JSONMember("Private_Key", .string("abc"))] }, "a private key")
        refused({ $0.details = [JSONMember("serial", .integer(1 << 60))] }, "a number beyond 2^53")
        refused({ $0.details = [JSONMember("ratio", .otherNumber("0.5"))] }, "a fraction")
        refused({ $0.details = [JSONMember("a", .null), JSONMember("a", .bool(true))] }, "a repeated detail")
        refused({ $0.details = [JSONMember("deep", .array([.object([JSONMember("n", .integer(Int64.min))])]))] }, "a nested number beyond 2^53")
    }

    @Test func timestampsAreRFC3339UTCWithMilliseconds() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        #expect(AuditEvent.timestamp(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(AuditEvent.timestamp(Date(timeIntervalSince1970: -0.001)) == "1969-12-31T23:59:59.999Z")
        #expect(AuditEvent.timestamp(Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00.000Z")
        var rng = SeededRandom(seed: 3)
        for _ in 0..<2000 {
            let ms = Int64.random(in: -2_000_000_000_000...7_000_000_000_000, using: &rng) // 1906 to 2191
            let date = Date(timeIntervalSince1970: Double(ms) / 1000)
            let ours = AuditEvent.timestamp(date)
            #expect(formatter.date(from: ours).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } == ms, "\(ms) → \(ours)")
        }
    }

    /// The event type rule, `[a-z][a-z0-9_]*(\.[a-z0-9_]+)*`, checked by hand on the hot path.
    @Test(arguments: [("svid.x509.issue", true), ("node.attest", true), ("a", true), ("a_b.c9", true), ("authority.x509.activate", true),
                      ("", false), ("9svid", false), ("_a", false), ("svid.", false), (".svid", false), ("svid..x", false), ("Svid.issue", false),
                      ("svid.x509-issue", false), ("svid.é", false), ("svid issue", false)])
    func eventTypesAreDottedLowercaseWords(_ type: String, _ valid: Bool) {
        let event = AuditEvent(time: Date(timeIntervalSince1970: 0), type: type, actor: .unix(uid: 0, gid: nil, pid: nil), action: "x", outcome: .allowed)
        let accepted = (try? event.json()) != nil
        #expect(accepted == valid, "`\(type)`")
    }
}
