import Foundation
import SwiftASN1
import Testing
import WritTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `writ api` against a real agent, for what the other agent tests do not run: `fetch bundles`,
/// `fetch jwt` with and without `--spiffe-id`, `validate-jwt` (argument and stdin, valid and
/// not), and `--socket` winning over `SPIFFE_ENDPOINT_SOCKET`.
@Suite(.serialized) struct WorkloadCLITests {
    /// The claims of a compact JWS, unverified.
    static func claims(_ token: String) -> [String: Any] {
        let parts = token.split(separator: ".")
        guard parts.count == 3 else { return [:] }
        var text = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        text += String(repeating: "=", count: (4 - text.count % 4) % 4)
        return Data(base64Encoded: text).map { jsonObject(String(decoding: $0, as: UTF8.self)) } ?? [:]
    }

    /// The DER of each certificate in a PEM text (text between the blocks is skipped).
    static func certificates(_ pem: String) -> Set<[UInt8]> {
        Set(((try? PEMDocument.parseMultiple(pemString: pem)) ?? []).filter { $0.discriminator == "CERTIFICATE" }.map(\.derBytes))
    }

    @Test func bundlesJWTsValidationAndTheSocketOption() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let agent = try await AgentProcessHarness.start(server: server)
        defer { Task { await agent.stop() } }
        let first = "spiffe://example.org/svc/cli-first", second = "spiffe://example.org/svc/cli-second"
        try await AgentAPITests.entry(server, first, parent: agent.agentID, selector: "unix:uid:\(getuid())")
        try await AgentAPITests.entry(server, second, parent: agent.agentID, selector: "unix:uid:\(getuid())")
        let writ = try TestEnvironment.executable("writ")
        func api(_ arguments: [String], stdin: Data? = nil, environment: [String: String]? = nil) async throws -> ProcessRunner.Result {
            try await ProcessRunner.run(writ, ["api"] + arguments, stdin: stdin, environment: environment)
        }
        let socket = ["--socket", agent.socket, "--timeout", "30s"]

        // The bundle the agent serves is the server's.
        let bundles = try await api(["fetch", "bundles"] + socket)
        #expect(bundles.status == 0 && bundles.stdout.hasPrefix("# spiffe://example.org\n"), "\(bundles.summary)")
        let published = try await server.writ(["bundle", "show", "--format", "pem"])
        #expect(!Self.certificates(bundles.stdout).isEmpty && Self.certificates(bundles.stdout) == Self.certificates(published.stdout), "\(bundles.stdout)")

        // One token per identity; --spiffe-id picks one; both identities are the caller's.
        #expect(try await AgentProcessHarness.eventually(.seconds(30)) {
            (try await api(["fetch", "jwt", "--audience", "https://api.example.org"] + socket)).stdout.split(separator: "\n").count == 2
        }, "both identities must be served")
        let all = try await api(["fetch", "jwt", "--audience", "https://api.example.org"] + socket)
        let subjects = all.stdout.split(separator: "\n").map { Self.claims(String($0))["sub"] as? String ?? "" }
        #expect(all.status == 0 && subjects == [first, second], "\(all.summary)")
        let only = try await api(["fetch", "jwt", "--audience", "https://api.example.org", "--audience", "https://other.example.org", "--spiffe-id", second] + socket)
        let tokens = only.stdout.split(separator: "\n").map(String.init)
        #expect(only.status == 0 && tokens.count == 1, "\(only.summary)")
        let token = try #require(tokens.first)
        #expect(Self.claims(token)["sub"] as? String == second)
        #expect(Self.claims(token)["aud"] as? [String] == ["https://api.example.org", "https://other.example.org"], "\(Self.claims(token))")
        let notMine = try await api(["fetch", "jwt", "--audience", "https://api.example.org", "--spiffe-id", "spiffe://example.org/svc/someone-else",
                                     "--socket", agent.socket, "--timeout", "1s"])
        #expect(notMine.status == 5 && notMine.stderr.contains("someone-else"), "\(notMine.summary)")

        // validate-jwt: the agent checks signature and audience; from an argument or stdin.
        let valid = try await api(["validate-jwt", "--audience", "https://other.example.org", token] + socket)
        #expect(valid.status == 0 && valid.stdout == second + "\n", "\(valid.summary)")
        let piped = try await api(["validate-jwt", "--audience", "https://api.example.org", "-"] + socket, stdin: Data((token + "\n").utf8))
        #expect(piped.status == 0 && piped.stdout == second + "\n", "\(piped.summary)")
        let wrongAudience = try await api(["validate-jwt", "--audience", "https://elsewhere.example.org", token] + socket)
        #expect(wrongAudience.status == 2 && wrongAudience.stderr.contains("aud"), "\(wrongAudience.summary)")
        let garbage = try await api(["validate-jwt", "--audience", "https://api.example.org", "not.a.jwt"] + socket)
        #expect(garbage.status == 2, "\(garbage.summary)")

        // SPIFFE_ENDPOINT_SOCKET is used without --socket; --socket wins over it.
        let fromEnvironment = try await api(["fetch", "x509", "--output", "json"], environment: ["SPIFFE_ENDPOINT_SOCKET": "unix://" + agent.socket])
        #expect(fromEnvironment.status == 0 && fromEnvironment.stdout.contains(first), "\(fromEnvironment.summary)")
        let overridden = try await api(["fetch", "x509", "--output", "json", "--socket", agent.socket], environment: ["SPIFFE_ENDPOINT_SOCKET": "unix:///nonexistent/api.sock"])
        #expect(overridden.status == 0 && overridden.stdout.contains(first), "\(overridden.summary)")
        let nowhere = try await api(["fetch", "x509", "--timeout", "1s"], environment: ["SPIFFE_ENDPOINT_SOCKET": "unix:///nonexistent/api.sock"])
        #expect(nowhere.status == 69, "\(nowhere.summary)")
        try await agent.stopAndCheckKeysOnDisk()
    }
}
