import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP2
#if canImport(Glibc)
import Glibc
#endif

/// Who is at the other end of an accepted Unix socket, as the kernel says (SO_PEERCRED): the
/// only thing the Workload API trusts about a caller.
public struct PeerCredentials: Sendable, Hashable, CustomStringConvertible {
    public let pid: Int32
    public let uid: UInt32
    public let gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    public var description: String { "pid=\(pid) uid=\(uid) gid=\(gid)" }

    /// The request header that carries them from the connection to the RPC handler. It is set
    /// by the transport on every stream, replacing whatever a caller sent under that name.
    static let header = "x-writ-peer-credentials"

    var headerValue: String { "\(pid) \(uid) \(gid)" }

    init?(headerValue: String) {
        let parts = headerValue.split(separator: " ")
        guard parts.count == 3, let pid = Int32(parts[0]), pid > 0, let uid = UInt32(parts[1]), let gid = UInt32(parts[2]) else { return nil }
        self.init(pid: pid, uid: uid, gid: gid)
    }

    /// Reads SO_PEERCRED from the connection that carries `stream` and installs a handler at the
    /// front of the stream's pipeline that stamps them on the request headers (or stamps
    /// `unknown` when they cannot be read, which the service refuses).
    static func stamp(stream: any Channel) -> EventLoopFuture<Void> {
        guard let provider = stream.parent as? (any SocketOptionProvider) else { return install("unknown", on: stream) }
        let read: EventLoopFuture<KernelPeerCredentials> = provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET),
                                                                                           name: SocketOptionName(SO_PEERCRED))
        return read.map { credentials in
            PeerCredentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid).headerValue
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
