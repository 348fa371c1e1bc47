#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import WritTestSupport
import X509

/// `writ svid mint x509|jwt` against a real server: the X.509-SVID (its key made by the CLI)
/// verifies with openssl against the bundle written beside it and carries exactly the asked ID,
/// DNS names and lifetime; the JWT-SVID verifies with PyJWT against the SPIFFE bundle; reserved,
/// foreign and malformed IDs and out-of-range lifetimes are refused; every mint is logged.
@Suite(.serialized) struct SVIDMintCLITests {
    @Test func mintedSVIDsVerifyWithThirdPartyTools() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let directory = try TemporaryDirectory(prefix: "writ-svid-mint")
        let out = directory.file("deploy").path

        let minted = try await server.writ(["svid", "mint", "x509", "--spiffe-id", "spiffe://example.org/ci/deploy", "--ttl", "15m",
                                      "--dns", "deploy.example.org", "--write", out])
        #expect(minted.status == 0, "\(minted.summary)")
        let verified = try await ProcessRunner.run(try TestEnvironment.tool("openssl"), [
            "verify", "-x509_strict", "-CAfile", out + "/bundle.0.pem", "-untrusted", out + "/svid.0.pem", out + "/svid.0.pem"])
        #expect(verified.status == 0, "\(verified.summary)")
        var info = stat()
        #expect(stat(out + "/svid.0.key", &info) == 0 && info.st_mode & 0o777 == 0o600, "the key file is 0600")
        // The key in svid.0.key is the one the certificate certifies.
        let certKey = try await ProcessRunner.run(try TestEnvironment.tool("openssl"), ["x509", "-in", out + "/svid.0.pem", "-noout", "-pubkey"])
        let fileKey = try await ProcessRunner.run(try TestEnvironment.tool("openssl"), ["pkey", "-in", out + "/svid.0.key", "-pubout"])
        #expect(certKey.status == 0 && certKey.stdout == fileKey.stdout, "\(certKey.summary)\n\(fileKey.summary)")
        let pem = try String(contentsOfFile: out + "/svid.0.pem", encoding: .utf8)
        let leaf = try Certificate(pemEncoded: String(pem[..<(pem.range(of: "-----END CERTIFICATE-----")!.upperBound)]))
        let names = try leaf.extensions.subjectAlternativeNames.map { Array($0) } ?? []
        #expect(names == [.uniformResourceIdentifier("spiffe://example.org/ci/deploy"), .dnsName("deploy.example.org")], "\(names)")
        let lifetime = leaf.notValidAfter.timeIntervalSince(leaf.notValidBefore)
        #expect(lifetime > 895 && lifetime < 925, "15m plus the 10 s backdate, got \(lifetime)")

        // Without --write: the chain and the key on stdout.
        let printed = try await server.writ(["svid", "mint", "x509", "--spiffe-id", "spiffe://example.org/ci/print"])
        #expect(printed.status == 0 && printed.stdout.contains("BEGIN CERTIFICATE") && printed.stdout.contains("PRIVATE KEY"), "\(printed.summary)")

        // A JWT-SVID that PyJWT verifies against the SPIFFE bundle.
        let jwt = try await server.writ(["svid", "mint", "jwt", "--spiffe-id", "spiffe://example.org/ci/deploy", "--audience", "https://api.example.org"])
        #expect(jwt.status == 0, "\(jwt.summary)")
        let bundle = try await server.writ(["bundle", "show", "--format", "spiffe"])
        try bundle.stdout.write(to: directory.file("bundle.json"), atomically: true, encoding: .utf8)
        let checked = try await ProcessRunner.run(try TestEnvironment.interopPython(), [
            TestEnvironment.interopScript("check_jwt.py"), "verify", jwt.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
            directory.file("bundle.json").path, "https://api.example.org", "spiffe://example.org/ci/deploy"])
        #expect(checked.status == 0, "PyJWT refused the minted token: \(checked.summary)")

        // Refusals: exit 1 with the rule, or 64 for a malformed flag.
        for (arguments, status, fragment) in [
            (["x509", "--spiffe-id", "spiffe://example.org/writ/server"], Int32(1), "reserved"),
            (["x509", "--spiffe-id", "spiffe://other.org/x"], 1, "outside the trust domain"),
            (["x509", "--spiffe-id", "spiffe://example.org"], 1, "root ID"),
            (["x509", "--spiffe-id", "not-an-id"], 1, "spiffe_id"),
            (["x509", "--spiffe-id", "spiffe://example.org/x", "--ttl", "8d"], 1, "between 10s and 7d"),
            (["x509", "--spiffe-id", "spiffe://example.org/x", "--ttl", "soon"], 64, "--ttl"),
            (["x509", "--spiffe-id", "spiffe://example.org/x", "--dns", "bad name"], 1, "dns"),
            (["jwt", "--spiffe-id", "spiffe://example.org/x"], 64, "--audience"),
            (["jwt", "--spiffe-id", "spiffe://example.org/writ/agent/x", "--audience", "a"], 1, "reserved"),
        ] as [([String], Int32, String)] {
            let refused = try await server.writ(["svid", "mint"] + arguments)
            #expect(refused.status == status && (refused.stderr + refused.stdout).lowercased().contains(fragment.lowercased()), "\(arguments): \(refused.summary)")
        }
        let log = server.serverLog
        #expect(log.contains("X.509-SVID minted") && log.contains("JWT-SVID minted") && log.contains("actor=unix:uid:"), "mints are logged with the actor")
    }
}
