#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import SPIFFEIdentity
import SPIFFEJWT
import SPIFFEX509
import Testing
import WritTestSupport
@testable import WritCA

/// A disk-backed CA SIGKILLed mid-rotation 50 times: every restart loads a complete key set.
@Suite(.serialized) struct CrashTests {
    @Test func sigkillMidRotationLeavesACompleteKeySet() async throws {
        let tool = try TestEnvironment.executable("writ-test-keyloop")
        let dir = try TemporaryDirectory(prefix: "writ-crash")
        let seed = TestEnvironment.seeds().last!
        print("CrashTests seed \(seed)")
        var rng = SeededRandom(seed: seed)
        var stepsSeen = 0
        for round in 1...50 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = [dir.path]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Wait for a random number of completed steps (1–40), then kill without warning:
            // the kill lands somewhere inside the next rotation step.
            let target = Int.random(in: 1...40, using: &rng)
            var seen = 0
            var buffer = Data()
            let reader = out.fileHandleForReading
            let deadline = Date().addingTimeInterval(30)
            while seen < target && Date() < deadline {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                seen = String(decoding: buffer, as: UTF8.self).components(separatedBy: "step ").count - 1
            }
            usleep(UInt32.random(in: 0...3000, using: &rng))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal, "round \(round): the key loop exited on its own (status \(process.terminationStatus)) after \(seen) steps")
            stepsSeen += seen

            // Restart: the state and every key it names must load, match and sign.
            let keys = try DiskKeyManager(directory: dir.path + "/keys")
            let ca = try await CertificateAuthority(trustDomain: try TrustDomain(parsing: "example.org"), configuration: fastConfiguration,
                                                    keyManager: keys, store: FileCAStateStore(path: dir.path + "/ca-state.json"), now: { Date() })
            try await ca.verifyIntegrity()
            let id = try SPIFFEID(parsing: "spiffe://example.org/after-crash-\(round)")
            let svid = try await ca.issueX509SVID(publicKey: .init(P256.Signing.PrivateKey().publicKey), id: id)
            #expect(await X509SVIDVerifier(bundle: ca.bundle()).verify(chainDER: svid.chainDER, at: Date()) == .valid(id))
            _ = try await ca.mintJWTSVID(id: id, audience: ["after-crash"])
            // Leftover temp files from an interrupted write never count as keys, and orphan
            // authority keys (written before a state that never landed) are gone.
            let slots = await ca.authorities()
            #expect(try await keys.keyIDs() == slots.map(\.id).sorted(), "round \(round): key files and authorities differ")
            for key in try await keys.keys() { #expect(!key.id.hasPrefix(".")) }
            let names = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/keys")
            #expect(names.allSatisfy { !$0.hasPrefix(".") }, "round \(round): temp files left: \(names)")
            // The bundle publishes exactly the roots and JWT keys of the state.
            let bundle = await ca.bundle()
            #expect(bundle.x509Authorities.count == slots.filter { $0.kind == .root }.count)
            #expect(bundle.jwtAuthorities.count == slots.filter { $0.kind == .jwt }.count)
            #expect(Set(bundle.jwtAuthorities.map(\.keyID)).count == bundle.jwtAuthorities.count)
            #expect(bundle.sequenceNumber != nil)
            let jwt = try await ca.mintJWTSVID(id: id, audience: ["check"])
            #expect(await JWTSVIDValidator(bundle: bundle).validate(jwt.token, audience: "check", now: Date()).svid != nil)
        }
        print("CrashTests: 50 kills after \(stepsSeen) completed rotation steps in all")
        #expect(stepsSeen >= 50)
    }
}
