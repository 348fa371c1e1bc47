import Foundation
import SPIFFEIdentity
import Testing
import WritTestSupport
import X509
@testable import SPIFFEX509

/// Third-party software checks Writ's certificates: `openssl verify -x509_strict` walks every
/// chain, and Python `cryptography` reads the SPIFFE ID and the key usages.
@Suite(.serialized) struct X509InteropTests {
    @Test(arguments: TestKeyType.allCases)
    func opensslVerifiesTheChain(_ keyType: TestKeyType) async throws {
        let openssl = try TestEnvironment.tool("openssl")
        let python = try TestEnvironment.interopPython()
        // openssl checks validity against the real clock.
        let t = try await TestChain.make(keyType: keyType, now: Date())
        let dir = try TemporaryDirectory(prefix: "writ-x509-\(keyType.rawValue)")
        try TestChain.pem(t.root).write(to: dir.file("root.pem"), atomically: true, encoding: .utf8)
        try TestChain.pem(t.intermediate).write(to: dir.file("intermediate.pem"), atomically: true, encoding: .utf8)
        try TestChain.pem(t.leaf).write(to: dir.file("leaf.pem"), atomically: true, encoding: .utf8)

        let ok = try await ProcessRunner.run(openssl, ["verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", dir.file("root.pem").path,
                                                 "-untrusted", dir.file("intermediate.pem").path, dir.file("leaf.pem").path])
        #expect(ok.status == 0, "openssl refused Writ's \(keyType.rawValue) chain:\n\(ok.summary)")
        #expect(ok.stdout.contains("OK"))
        let server = try await ProcessRunner.run(openssl, ["verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", dir.file("root.pem").path,
                                                     "-untrusted", dir.file("intermediate.pem").path, dir.file("leaf.pem").path])
        #expect(server.status == 0, "\(server.summary)")

        // Negative control: another trust domain's root does not verify this chain.
        let other = try await TestChain.make(keyType: keyType, now: Date())
        try TestChain.pem(other.root).write(to: dir.file("other-root.pem"), atomically: true, encoding: .utf8)
        let refused = try await ProcessRunner.run(openssl, ["verify", "-x509_strict", "-CAfile", dir.file("other-root.pem").path,
                                                      "-untrusted", dir.file("intermediate.pem").path, dir.file("leaf.pem").path])
        #expect(refused.status != 0, "openssl accepted a chain under the wrong root")

        let check = try await ProcessRunner.run(python, [TestEnvironment.interopScript("check_x509.py"), dir.file("leaf.pem").path,
                                                   "spiffe://example.org/workload", keyType.rawValue.hasPrefix("rsa") ? "rsa" : "ec",
                                                   dir.file("intermediate.pem").path, dir.file("root.pem").path])
        #expect(check.status == 0, "cryptography disagreed:\n\(check.summary)")
    }
}
