import Crypto
import Foundation
import Logging
import SPIFFEIdentity
import Testing
import WritCA
import WritModel
import WritTestSupport
import WritWorkloadAttestation
import X509
@testable import WritAgent
#if canImport(Glibc)
import Glibc
#endif

/// The Workload API endpoint on a real Unix socket, with third-party clients: py-spiffe fetches
/// the caller's identity (and only it) and `openssl verify -x509_strict` accepts the chain
/// against the bundle it received; grpcio sees SPIRE's status codes; a FetchX509SVID stream
/// follows changes and ends with PermissionDenied when the caller's identities are gone. The
/// identities come from a real CA into the agent's real cache.
@Suite(.serialized) struct WorkloadAPITests {
    static let trustDomain = try! TrustDomain(parsing: "example.org")
    static let agentID = try! SPIFFEID(parsing: "spiffe://example.org/writ/agent/join_token/t1")
    static let executor = DedicatedTaskExecutor(label: "writ.test.workload-api")

    /// A running endpoint on a socket in a fresh directory.
    struct Endpoint {
        let directory: TemporaryDirectory
        let socket: String
        let cache: WorkloadIdentityCache
        let ca: CertificateAuthority
        let server: WorkloadAPIServer
        let task: Task<Void, any Error>

        static func start(ca existing: CertificateAuthority? = nil, jwtMinter: (any JWTSVIDMinting)? = nil,
                          attestor: UnixWorkloadAttestor = UnixWorkloadAttestor(), rateLimit: Int = 1_000_000) async throws -> Endpoint {
            let ca: CertificateAuthority
            if let existing { ca = existing } else {
                ca = try await CertificateAuthority(trustDomain: trustDomain, keyManager: MemoryKeyManager(), store: MemoryCAStateStore(), now: { Date() })
            }
            let cache = WorkloadIdentityCache(bundle: await ca.bundle())
            let directory = try TemporaryDirectory(prefix: "writ-wl")
            let socket = directory.file("agent.sock").path
            let service = WorkloadAPIService(cache: cache, attestor: attestor, logger: Logger(label: "test"), rateLimit: rateLimit, jwtMinter: jwtMinter)
            let server = try WorkloadAPIServer(socketPath: socket, service: service)
            let listening = ManagedSignal()
            // Its own threads: other suites' blocking waits must not starve the server.
            let task = Task(executorPreference: WorkloadAPITests.executor) {
                do { try await server.run { listening.fire() } } catch {
                    listening.fail("the Workload API server failed: \(error)")
                    throw error
                }
            }
            try await listening.wait(timeout: .seconds(60))
            return Endpoint(directory: directory, socket: socket, cache: cache, ca: ca, server: server, task: task)
        }

        func stop() async {
            server.shutDown()
            _ = await task.result
        }

        /// An identity for `path` issued by the CA now, for callers with `selectors`.
        func identity(_ path: String, selectors: [String], hint: String = "", createdAt: Date = Date()) async throws -> WorkloadX509Identity {
            let key = P256.Signing.PrivateKey()
            let id = try SPIFFEID(parsing: "spiffe://example.org\(path)")
            let issued = try await ca.issueX509SVID(publicKey: Certificate.PublicKey(key.publicKey), id: id)
            let entry = RegistrationEntry(spiffeID: id, parentID: WorkloadAPITests.agentID, selectors: try selectors.map { try Selector(parsing: $0) },
                                          hint: hint, createdAt: createdAt)
            return WorkloadX509Identity(entry: entry, chainDER: issued.chainDER, privateKeyPKCS8: Array(key.derRepresentation),
                                        expiresAt: issued.chain[0].notValidAfter)
        }

        /// Runs the third-party client; detached, since it talks to this process's server.
        func client(_ arguments: [String]) async throws -> [String: Any] {
            let script = TestEnvironment.packageRoot.appendingPathComponent("Tests/interop/workload_client.py").path
            let result = try await ProcessRunner.run(try TestEnvironment.interopPython(), [script] + arguments)
            guard result.status == 0, let line = result.stdout.split(separator: "\n").last,
                  let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw Failure("workload_client.py \(arguments.joined(separator: " ")) failed: \(result.summary)")
            }
            return object
        }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    @Test func pySpiffeFetchesOnlyItsOwnIdentityAndOpensslVerifiesIt() async throws {
        let endpoint = try await Endpoint.start()
        let mine = try await endpoint.identity("/svc/me", selectors: ["unix:uid:\(geteuid())"], hint: "internal", createdAt: Date(timeIntervalSince1970: 1))
        let second = try await endpoint.identity("/svc/me-too", selectors: ["unix:uid:\(geteuid())", "unix:gid:\(getegid())"], createdAt: Date(timeIntervalSince1970: 2))
        let collision = try await endpoint.identity("/svc/same-hint", selectors: ["unix:uid:\(geteuid())"], hint: "internal", createdAt: Date(timeIntervalSince1970: 3))
        let others = try await endpoint.identity("/svc/nobody", selectors: ["unix:uid:65534"])
        let stricter = try await endpoint.identity("/svc/other-binary", selectors: ["unix:uid:\(geteuid())", "unix:sha256:" + String(repeating: "0", count: 64)])
        await endpoint.cache.setIdentities([mine, second, collision, others, stricter])
        let fetched = try await endpoint.client(["fetch", endpoint.socket, endpoint.directory.url.path])
        await endpoint.stop()
        // Oldest entry first; the younger entry with a taken hint is left out.
        #expect(fetched["spiffe_ids"] as? [String] == ["spiffe://example.org/svc/me", "spiffe://example.org/svc/me-too"], "\(fetched)")
        #expect(fetched["x509_bundles"] as? [String] == ["example.org"])
        let jwtKeys = (fetched["jwt_bundles"] as? [String: [String]])?["example.org"] ?? []
        #expect(jwtKeys == (await endpoint.ca.bundle()).jwtAuthorities.map(\.keyID).sorted(), "\(fetched)")
        let verify = try await ProcessRunner.run(try TestEnvironment.tool("openssl"), [
            "verify", "-x509_strict", "-CAfile", endpoint.directory.file("bundle.pem").path,
            "-untrusted", endpoint.directory.file("svid.pem").path, endpoint.directory.file("svid.pem").path])
        #expect(verify.status == 0, "\(verify.summary)")
        // The key py-spiffe received belongs to the certificate.
        let keyCheck = try await ProcessRunner.run(try TestEnvironment.tool("openssl"), ["x509", "-in", endpoint.directory.file("svid.pem").path, "-noout", "-pubkey"])
        let keyFromKey = try await ProcessRunner.run(try TestEnvironment.tool("openssl"), ["pkey", "-in", endpoint.directory.file("svid.key").path, "-pubout"])
        #expect(keyCheck.status == 0 && keyCheck.stdout == keyFromKey.stdout)
    }

    @Test func statusCodesAreThoseSPIREAnswers() async throws {
        let endpoint = try await Endpoint.start()
        await endpoint.cache.setIdentities([try await endpoint.identity("/svc/nobody", selectors: ["unix:uid:65534"])])
        let noHeader = try await endpoint.client(["raw", endpoint.socket, "FetchX509SVID", "--no-header"])
        #expect(noHeader["code"] as? String == "INVALID_ARGUMENT" && (noHeader["details"] as? String ?? "").contains("security header"), "\(noHeader)")
        for method in ["FetchX509SVID", "FetchX509Bundles", "FetchJWTBundles"] {
            let refused = try await endpoint.client(["raw", endpoint.socket, method])
            #expect(refused["code"] as? String == "PERMISSION_DENIED" && refused["details"] as? String == "no identity issued", "\(method): \(refused)")
        }
        // A caller cannot pass as another process by sending the header the transport sets:
        // naming a live process of uid 65534 would earn that identity if the header were believed.
        guard geteuid() == 0 else { throw TestEnvironment.MissingPrerequisite("running a process as another user needs root (setpriv)") }
        let nobody = Process()
        nobody.executableURL = URL(fileURLWithPath: try TestEnvironment.tool("setpriv"))
        nobody.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", try TestEnvironment.tool("sleep"), "60"]
        try nobody.run()
        defer { kill(nobody.processIdentifier, SIGKILL); nobody.waitUntilExit() }
        let deadline = ContinuousClock.now + .seconds(10)
        while (try? ProcessSnapshot(pid: nobody.processIdentifier))?.uid != 65534, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let forged = try await endpoint.client(["raw", endpoint.socket, "FetchX509SVID", "--forge", "\(nobody.processIdentifier):65534:65534"])
        #expect(forged["code"] as? String == "PERMISSION_DENIED", "\(forged)")
        await endpoint.cache.setIdentities([try await endpoint.identity("/svc/me", selectors: ["unix:uid:\(geteuid())"])])
        for method in ["FetchX509SVID", "FetchX509Bundles", "FetchJWTBundles"] {
            let served = try await endpoint.client(["raw", endpoint.socket, method])
            #expect(served["code"] as? String == "OK", "\(method): \(served)")
        }
        await endpoint.stop()
    }

    @Test func jwtSVIDsAreValidatedAgainstTheBundle() async throws {
        let endpoint = try await Endpoint.start()
        let subject = try SPIFFEID(parsing: "spiffe://example.org/svc/caller")
        let token = try await endpoint.ca.mintJWTSVID(id: subject, audience: ["https://api.example.org", "other"]).token
        let valid = try await endpoint.client(["validate", endpoint.socket, "https://api.example.org", token])
        #expect(valid["code"] as? String == "OK" && valid["spiffe_id"] as? String == subject.uri, "\(valid)")
        #expect(valid["audience"] as? [String] == ["https://api.example.org", "other"], "\(valid)")
        let wrongAudience = try await endpoint.client(["validate", endpoint.socket, "https://elsewhere", token])
        #expect(wrongAudience["code"] as? String == "INVALID_ARGUMENT" && (wrongAudience["details"] as? String ?? "").contains("aud"), "\(wrongAudience)")
        // A flipped signature byte, and a token of another CA with the same trust domain name.
        var tampered = Array(token.utf8)
        tampered[tampered.count - 3] = tampered[tampered.count - 3] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        let bad = try await endpoint.client(["validate", endpoint.socket, "https://api.example.org", String(decoding: tampered, as: UTF8.self)])
        #expect(bad["code"] as? String == "INVALID_ARGUMENT", "\(bad)")
        let stranger = try await CertificateAuthority(trustDomain: Self.trustDomain, keyManager: MemoryKeyManager(), store: MemoryCAStateStore(), now: { Date() })
        let foreign = try await stranger.mintJWTSVID(id: subject, audience: ["https://api.example.org"]).token
        let refused = try await endpoint.client(["validate", endpoint.socket, "https://api.example.org", foreign])
        #expect(refused["code"] as? String == "INVALID_ARGUMENT", "\(refused)")
        // A token of a federated trust domain validates once the agent holds that domain's bundle.
        let partnerDomain = try TrustDomain(parsing: "partner.org")
        let partnerCA = try await CertificateAuthority(trustDomain: partnerDomain, keyManager: MemoryKeyManager(), store: MemoryCAStateStore(), now: { Date() })
        let partnerToken = try await partnerCA.mintJWTSVID(id: try SPIFFEID(parsing: "spiffe://partner.org/svc"), audience: ["https://api.example.org"]).token
        let unknown = try await endpoint.client(["validate", endpoint.socket, "https://api.example.org", partnerToken])
        #expect(unknown["code"] as? String == "INVALID_ARGUMENT" && (unknown["details"] as? String ?? "").contains("partner.org"), "\(unknown)")
        await endpoint.cache.setBundles(await endpoint.ca.bundle(), federated: [partnerDomain: await partnerCA.bundle()])
        let federated = try await endpoint.client(["validate", endpoint.socket, "https://api.example.org", partnerToken])
        #expect(federated["code"] as? String == "OK" && federated["spiffe_id"] as? String == "spiffe://partner.org/svc", "\(federated)")
        await endpoint.stop()
    }

    /// FetchJWTSVID answers as SPIRE does: no identity, or a `spiffe_id` the caller does not
    /// hold, is PermissionDenied; a missing or empty audience is InvalidArgument. Tokens are
    /// reused per identity and audience set by the agent itself (each call here is a new
    /// process, so no client cache is involved). The WIT-SVID methods answer Unimplemented.
    @Test func fetchJWTSVIDRefusesWhatSPIRERefusesAndReusesTokens() async throws {
        let ca = try await CertificateAuthority(trustDomain: Self.trustDomain, keyManager: MemoryKeyManager(), store: MemoryCAStateStore(), now: { Date() })
        let minter = CountingJWTMinter(ca: ca)
        let endpoint = try await Endpoint.start(ca: ca, jwtMinter: minter)
        func call(_ arguments: [String]) async throws -> (code: String, details: String) {
            let answer = try await endpoint.client(["raw", endpoint.socket] + arguments)
            return (answer["code"] as? String ?? "", answer["details"] as? String ?? "")
        }
        let none = try await call(["FetchJWTSVID", "--audience", "https://api.example.org"])
        #expect(none.code == "PERMISSION_DENIED" && none.details == "no identity issued", "\(none)")
        await endpoint.cache.setIdentities([try await endpoint.identity("/svc/me", selectors: ["unix:uid:\(geteuid())"]),
                                            try await endpoint.identity("/svc/nobody", selectors: ["unix:uid:65534"])])
        let noAudience = try await call(["FetchJWTSVID"])
        #expect(noAudience.code == "INVALID_ARGUMENT" && noAudience.details.contains("audience"), "\(noAudience)")
        let emptyAudience = try await call(["FetchJWTSVID", "--audience", ""])
        #expect(emptyAudience.code == "INVALID_ARGUMENT" && emptyAudience.details.contains("audience"), "\(emptyAudience)")
        let notMine = try await call(["FetchJWTSVID", "--audience", "https://api.example.org", "--spiffe-id", "spiffe://example.org/svc/nobody"])
        #expect(notMine.code == "PERMISSION_DENIED" && notMine.details.contains("svc/nobody"), "\(notMine)")
        #expect(minter.calls == 0, "nothing was minted for refused requests")

        let named = try await call(["FetchJWTSVID", "--audience", "https://api.example.org", "--spiffe-id", "spiffe://example.org/svc/me"])
        let unnamed = try await call(["FetchJWTSVID", "--audience", "https://api.example.org"])
        #expect(named.code == "OK" && unnamed.code == "OK", "\(named) \(unnamed)")
        #expect(minter.calls == 1, "one token for one identity and audience set")
        let otherAudience = try await call(["FetchJWTSVID", "--audience", "https://other.example.org"])
        #expect(otherAudience.code == "OK" && minter.calls == 2, "\(otherAudience)")

        for method in ["FetchWITSVID", "FetchWITBundles"] {
            let wit = try await call([method])
            #expect(wit.code == "UNIMPLEMENTED", "\(method): \(wit)")
        }
        await endpoint.stop()
    }

    /// A caller whose process cannot be read gets Unavailable (attestation failed; it may retry),
    /// not Unauthenticated, which is kept for a process that died or was replaced. The agent
    /// reads `/proc` from a root prepared for this one client: its status has no Uid/Gid lines.
    @Test func aCallerThatCannotBeAttestedGetsUnavailable() async throws {
        let proc = try TemporaryDirectory(prefix: "writ-fake-proc")
        let endpoint = try await Endpoint.start(attestor: UnixWorkloadAttestor(procRoot: proc.path))
        await endpoint.cache.setIdentities([try await endpoint.identity("/svc/me", selectors: ["unix:uid:\(geteuid())"])])
        let handshake = try TemporaryDirectory(prefix: "writ-handshake")
        async let answer = endpoint.client(["raw", endpoint.socket, "FetchX509SVID", "--handshake", handshake.path])
        let deadline = ContinuousClock.now + .seconds(30)
        var pid: Int32?
        while pid == nil, ContinuousClock.now < deadline {
            pid = (try? String(contentsOf: handshake.file("pid"), encoding: .utf8)).flatMap { Int32($0) }
            if pid == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        let client = try #require(pid, "the client did not start")
        let fake = proc.file("\(client)")
        try FileManager.default.createDirectory(at: fake, withIntermediateDirectories: true)
        try "Name:\tpython3\nState:\tS (sleeping)\n".write(to: fake.appendingPathComponent("status"), atomically: true, encoding: .utf8)
        try String(contentsOfFile: "/proc/\(client)/stat", encoding: .utf8).write(to: fake.appendingPathComponent("stat"), atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: handshake.file("go").path, contents: nil)
        let refused = try await answer
        #expect(refused["code"] as? String == "UNAVAILABLE" && (refused["details"] as? String ?? "").contains("attestation failed"), "\(refused)")
        await endpoint.stop()
    }

    /// Each caller uid has a token bucket: a burst beyond the limit is ResourceExhausted, and
    /// calls go through again once the bucket has refilled.
    @Test func aCallerOverItsRateLimitIsRefusedAndRecovers() async throws {
        let endpoint = try await Endpoint.start(rateLimit: 2)
        await endpoint.cache.setIdentities([try await endpoint.identity("/svc/me", selectors: ["unix:uid:\(geteuid())"])])
        let burst = try await endpoint.client(["raw", endpoint.socket, "FetchX509Bundles", "--repeat", "20"])
        let codes = burst["codes"] as? [String] ?? []
        #expect(codes.count == 20 && codes.prefix(2).allSatisfy { $0 == "OK" }, "\(burst)")
        #expect(codes.contains("RESOURCE_EXHAUSTED"), "20 calls in a row with 2 allowed per second: \(burst)")
        #expect(Set(codes).isSubset(of: ["OK", "RESOURCE_EXHAUSTED"]), "\(burst)")
        try await Task.sleep(for: .seconds(1.5))
        let later = try await endpoint.client(["raw", endpoint.socket, "FetchX509Bundles"])
        #expect(later["code"] as? String == "OK", "\(later)")
        await endpoint.stop()
    }

    @Test(.timeLimit(.minutes(2))) func aStreamFollowsChangesAndEndsWhenNothingIsLeft() async throws {
        let endpoint = try await Endpoint.start()
        let first = try await endpoint.identity("/svc/first", selectors: ["unix:uid:\(geteuid())"], createdAt: Date(timeIntervalSince1970: 1))
        await endpoint.cache.setIdentities([first])
        let output = endpoint.directory.file("watch.jsonl")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let watcher = Process()
        watcher.executableURL = URL(fileURLWithPath: try TestEnvironment.interopPython())
        watcher.arguments = [TestEnvironment.packageRoot.appendingPathComponent("Tests/interop/workload_client.py").path, "watch", endpoint.socket]
        watcher.standardOutput = try FileHandle(forWritingTo: output)
        try watcher.run()
        func lines(atLeast count: Int) async throws -> [[String: Any]] {
            let deadline = ContinuousClock.now + .seconds(30)
            while true {
                let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
                let parsed = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                if parsed.count >= count || ContinuousClock.now > deadline { return parsed }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let start = try await lines(atLeast: 1)
        #expect(start.first?["ids"] as? [String] == ["spiffe://example.org/svc/first"], "\(start)")
        // An unrelated change (another uid's identity) sends nothing; a second identity of the
        // caller sends the full state.
        await endpoint.cache.setIdentities([first, try await endpoint.identity("/svc/nobody", selectors: ["unix:uid:65534"])])
        await endpoint.cache.setIdentities([first, try await endpoint.identity("/svc/second", selectors: ["unix:uid:\(geteuid())"], createdAt: Date(timeIntervalSince1970: 2))])
        let grown = try await lines(atLeast: 2)
        #expect(grown.count == 2 && grown.last?["ids"] as? [String] == ["spiffe://example.org/svc/first", "spiffe://example.org/svc/second"], "\(grown)")
        // A bundle change (a new root prepared) sends the same SVIDs with the new bundle.
        try await endpoint.ca.prepare(.root)
        await endpoint.cache.setBundle(await endpoint.ca.bundle())
        let rebundled = try await lines(atLeast: 3)
        #expect(rebundled.count == 3 && rebundled.last?["serials"] as? [String] == grown.last?["serials"] as? [String], "\(rebundled)")
        let bundleDigests = rebundled.compactMap { ($0["bundles"] as? [String])?.first }
        #expect(bundleDigests.count == 3 && bundleDigests[1] != bundleDigests[2], "\(rebundled)")
        await endpoint.cache.setIdentities([])
        let ended = try await lines(atLeast: 4)
        #expect(ended.last?["code"] as? String == "PERMISSION_DENIED", "\(ended)")
        while watcher.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        await endpoint.stop()
    }
}

/// A one-shot signal a test can wait on; a failure ends the wait with its reason.
final class ManagedSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var fired = false
    private var failure: String?

    func fire() { lock.withLock { fired = true } }
    func fail(_ reason: String) { lock.withLock { failure = reason } }

    func wait(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (done, failed) = lock.withLock { (fired, failure) }
            if done { return }
            if let failed { throw WorkloadAPITests.Failure(failed) }
            guard ContinuousClock.now < deadline else { throw WorkloadAPITests.Failure("the Workload API socket did not start listening within \(timeout)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
