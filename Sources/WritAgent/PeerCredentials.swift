import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP2
import WritWorkloadAttestation
#if canImport(Glibc)
import Glibc
#endif

/// Who is at the other end of an accepted Unix socket, as the kernel says (SO_PEERCRED): the
/// only thing the Workload API trusts about a caller.
public struct PeerCredentials: Sendable, Hashable, CustomStringConvertible {
    public let pid: Int32
    public let uid: UInt32
    public let gid: UInt32
    /// The connecting process's start time (clock ticks since boot), read when the stream was
    /// accepted — through SO_PEERPIDFD where the kernel has it (Linux 6.5+), so that it is the
    /// start time of the very process that connected; nil when it could not be read, which
    /// means that process was already gone (the Workload API then refuses the call rather than
    /// attest whatever process holds the pid now). A process attested later with another start
    /// time is not this one: its pid was reused.
    public let startTicks: UInt64?

    public init(pid: Int32, uid: UInt32, gid: UInt32, startTicks: UInt64? = nil) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
        self.startTicks = startTicks
    }

    public var description: String { "pid=\(pid) uid=\(uid) gid=\(gid)" + (startTicks.map { " start=\($0)" } ?? "") }

    /// The request header that carries them from the connection to the RPC handler. It is set
    /// by the transport on every stream, replacing whatever a caller sent under that name.
    static let header = "x-writ-peer-credentials"

    var headerValue: String { "\(pid) \(uid) \(gid) \(startTicks.map(String.init) ?? "-")" }

    init?(headerValue: String) {
        let parts = headerValue.split(separator: " ")
        guard parts.count == 4, let pid = Int32(parts[0]), pid > 0, let uid = UInt32(parts[1]), let gid = UInt32(parts[2]) else { return nil }
        guard parts[3] == "-" || UInt64(parts[3]) != nil else { return nil }
        self.init(pid: pid, uid: uid, gid: gid, startTicks: UInt64(parts[3]))
    }

    /// `SO_PEERPIDFD` of <asm-generic/socket.h> (Linux 6.5+), which Glibc may not export.
    static let soPeerPIDFD: Int32 = 77

    /// The start time of the process that connected, or nil when it is gone. With a pidfd: the
    /// pid the pidfd names (`/proc/self/fdinfo`; -1 once the process exited), its start time,
    /// then the pidfd again — if the process is still alive after the read, the start time read
    /// belongs to it (a pid is reused only after its process exited). Without one: the start
    /// time of whatever `pid` is now, best effort. Closes `pidfd`.
    static func pinnedStart(pid: Int32, pidfd: Int32) -> UInt64? {
        defer { if pidfd >= 0 { close(pidfd) } }
        func pidfdTarget() -> Int32? {
            guard pidfd >= 0, let info = try? String(contentsOfFile: "/proc/self/fdinfo/\(pidfd)", encoding: .utf8) else { return nil }
            for line in info.split(separator: "\n") where line.hasPrefix("Pid:") {
                return Int32(line.dropFirst(4).trimmingCharacters(in: .whitespaces))
            }
            return nil
        }
        if pidfd >= 0 {
            guard pidfdTarget() == pid else { return nil }
            guard let snapshot = try? ProcessSnapshot(pid: pid), pidfdTarget() == pid else { return nil }
            return snapshot.startTicks
        }
        return (try? ProcessSnapshot(pid: pid))?.startTicks
    }

    /// Reads SO_PEERCRED from the connection that carries `stream` and installs a handler at the
    /// front of the stream's pipeline that stamps them on the request headers (or stamps
    /// `unknown` when they cannot be read, which the service refuses).
    static func stamp(stream: any Channel) -> EventLoopFuture<Void> {
        guard let provider = stream.parent as? (any SocketOptionProvider) else { return install("unknown", on: stream) }
        let read: EventLoopFuture<KernelPeerCredentials> = provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET),
                                                                                           name: SocketOptionName(SO_PEERCRED))
        return read.flatMap { credentials in
            let pidfd: EventLoopFuture<Int32> = provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(soPeerPIDFD))
            return pidfd.recover { _ in -1 }.map { fd in
                PeerCredentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid,
                                startTicks: pinnedStart(pid: credentials.pid, pidfd: fd)).headerValue
            }
        }.recover { _ in "unknown" }.flatMap { value in install(value, on: stream) }
    }

    private static func install(_ value: String, on stream: any Channel) -> EventLoopFuture<Void> {
        stream.eventLoop.makeCompletedFuture {
            try stream.pipeline.syncOperations.addHandler(Stamper(value: value), position: .first)
        }
    }

    /// `struct ucred` of <sys/socket.h> (pid_t, uid_t, gid_t), which Swift's Glibc module does
    /// not export: the kernel fills these 12 bytes for SO_PEERCRED.
    struct KernelPeerCredentials: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// Overwrites the credentials header on the stream's request headers.
    final class Stamper: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTP2Frame.FramePayload
        typealias InboundOut = HTTP2Frame.FramePayload
        let value: String

        init(value: String) { self.value = value }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var payload = unwrapInboundIn(data)
            if case .headers(var headers) = payload {
                headers.headers.remove(name: PeerCredentials.header)
                headers.headers.add(name: PeerCredentials.header, value: value)
                payload = .headers(headers)
            }
            context.fireChannelRead(wrapInboundOut(payload))
        }
    }
}
