// Drives a disk-backed CA through forced rotations of the root, the intermediate and the JWT
// key, forever, printing one line per completed step. WritCATests' crash test SIGKILLs it at
// random points and checks that every restart loads a complete key set.
//
//   writ-test-keyloop DIR
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SPIFFEIdentity
import WritCA

/// Writes a line straight to fd 1 so the watching test sees it at once.
func say(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}
guard CommandLine.arguments.count == 2 else {
    FileHandle.standardError.write(Data("usage: writ-test-keyloop DIR\n".utf8))
    exit(64)
}
let dir = CommandLine.arguments[1]
let configuration = CAConfiguration(rootLifetime: .seconds(6 * 3600), intermediateLifetime: .seconds(3600), jwtKeyLifetime: .seconds(3600),
                                    agentSVIDLifetime: .seconds(600), x509SVIDLifetime: .seconds(600), jwtSVIDLifetime: .seconds(300))
do {
    let keys = try DiskKeyManager(directory: dir + "/keys")
    let ca = try await CertificateAuthority(trustDomain: try TrustDomain(parsing: "example.org"), configuration: configuration,
                                            keyManager: keys, store: FileCAStateStore(path: dir + "/ca-state.json"), now: { Date() })
    say("ready")
    var step = 0
    while true {
        let kind = AuthorityKind.allCases[step % 3]
        if (await ca.authorities()).contains(where: { $0.kind == kind && $0.status == .prepared }) {
            try await ca.activate(kind)
        } else {
            try await ca.prepare(kind)
        }
        // Old authorities with nothing outstanding leave on the next rotation pass.
        for slot in await ca.authorities() where slot.status == .old {
            try await ca.taint(id: slot.id)
            try await ca.revoke(id: slot.id)
        }
        step += 1
        say("step \(step)")
    }
} catch {
    FileHandle.standardError.write(Data("writ-test-keyloop: \(error)\n".utf8))
    exit(1)
}
