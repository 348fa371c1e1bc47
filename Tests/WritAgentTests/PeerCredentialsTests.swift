#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRPCCore
import Logging
import SPIFFEIdentity
import Testing
import WritCA
import WritModel
import WritTestSupport
import WritWorkloadAttestation
@testable import WritAgent

/// Pid-reuse protection: the Workload API pins the connecting process with SO_PEERPIDFD (this
/// kernel has it: the test fails, not skips, where it does not) and refuses a caller it could
/// not pin, instead of attesting whatever process holds the pid by then.
@Suite(.serialized) struct PeerCredentialsTests {
    /// A Unix socket this process listens on.
    struct Listener {
        let fd: Int32
        let path: String

        init(in directory: TemporaryDirectory) throws {
            path = directory.file("pin.sock").path
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { buffer in
                for (index, byte) in path.utf8.enumerated() where index < buffer.count - 1 { buffer[index] = byte }
            }
            let bound = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard fd >= 0, bound == 0, listen(fd, 4) == 0 else { throw WorkloadAPITests.Failure("cannot listen on \(path): \(String(cString: strerror(errno)))") }
        }

        /// Accepts one connection and returns its peer's pidfd (SO_PEERPIDFD).
        func acceptPeerPIDFD() throws -> (connection: Int32, pidfd: Int32) {
            let connection = accept(fd, nil, nil)
            guard connection >= 0 else { throw WorkloadAPITests.Failure("accept: \(String(cString: strerror(errno)))") }
            var pidfd: Int32 = -1
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(connection, SOL_SOCKET, PeerCredentials.soPeerPIDFD, &pidfd, &length) == 0, pidfd >= 0 else {
                throw WorkloadAPITests.Failure("SO_PEERPIDFD is not available (Linux 6.5+ needed): \(String(cString: strerror(errno)))")
            }
            return (connection, pidfd)
        }
    }

    @Test func theConnectingProcessIsPinnedAndAGoneOneIsNot() async throws {
        let directory = try TemporaryDirectory(prefix: "writ-pidfd")
        let listener = try Listener(in: directory)
        defer { close(listener.fd) }
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        client.arguments = ["-c", "import socket, time; s = socket.socket(socket.AF_UNIX); s.connect('\(listener.path)'); time.sleep(30)"]
        try client.run()
        defer { if client.isRunning { kill(client.processIdentifier, SIGKILL) } }
        let (connection, pidfd) = try listener.acceptPeerPIDFD()
        defer { close(connection) }
        let pid = client.processIdentifier
        let expected = try ProcessSnapshot(pid: pid).startTicks

        // Alive: the pidfd names it and its start time is pinned.
        #expect(PeerCredentials.pinnedStart(pid: pid, pidfd: dup(pidfd)) == expected)
        // A pidfd naming another process than the pid claimed pins nothing.
        #expect(PeerCredentials.pinnedStart(pid: getpid(), pidfd: dup(pidfd)) == nil)
        // Gone (and reaped, so its pid may be reused): nothing is pinned, whatever holds the pid.
        kill(pid, SIGKILL)
        client.waitUntilExit()
        #expect(PeerCredentials.pinnedStart(pid: pid, pidfd: pidfd) == nil)
    }

    /// A caller whose credentials carry no start time (it was gone when its stream was
    /// accepted) is Unauthenticated before anything is attested, and counted as a race.
    @Test func aCallerThatCouldNotBePinnedIsRefused() async throws {
        let ca = try await CertificateAuthority(trustDomain: try TrustDomain(parsing: "example.org"), keyManager: MemoryKeyManager(),
                                                store: MemoryCAStateStore(), now: { Date() })
        let metrics = AgentMetrics()
        let service = WorkloadAPIService(cache: WorkloadIdentityCache(bundle: await ca.bundle()), attestor: UnixWorkloadAttestor(),
                                         logger: Logger(label: "test"), metrics: metrics)
        var metadata = Metadata()
        metadata.addString("true", forKey: "workload.spiffe.io")
        metadata.addString(PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid(), startTicks: nil).headerValue, forKey: PeerCredentials.header)
        do {
            _ = try await service.caller(metadata, method: "FetchX509SVID")
            Issue.record("a caller without a pinned start time was attested")
        } catch let error as RPCError {
            #expect(error.code == .unauthenticated && error.message.contains("gone"), "\(error)")
        }
        // The same caller, pinned, is attested (this very process).
        var pinned = Metadata()
        pinned.addString("true", forKey: "workload.spiffe.io")
        pinned.addString(PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid(), startTicks: try ProcessSnapshot(pid: getpid()).startTicks).headerValue,
                         forKey: PeerCredentials.header)
        let selectors = try await service.caller(pinned, method: "FetchX509SVID")
        #expect(selectors.contains(try Selector(parsing: "unix:uid:\(getuid())")))
    }
}
