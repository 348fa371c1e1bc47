#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Hummingbird
import NIOCore
import NIOSSL
import SPIFFEIdentity

/// The caller of an admin request on the Unix socket, read from the socket with `SO_PEERCRED`.
public struct UnixPeer: Sendable, Hashable, CustomStringConvertible {
    public let pid: Int32
    public let uid: UInt32
    public let gid: UInt32

    /// The audit actor, `unix:uid:<n>`.
    public var description: String { "unix:uid:\(uid)" }

    /// Reads the peer credentials of the connection `channel` is.
    static func of(_ channel: any Channel) async throws -> UnixPeer {
        guard let provider = channel as? any SocketOptionProvider else {
            throw ServerError("the connection is not a socket")
        }
        let credentials: LinuxPeerCredentials = try await provider.unsafeGetSocketOption(
            level: NIOBSDSocket.OptionLevel(rawValue: SOL_SOCKET), name: NIOBSDSocket.Option(rawValue: SO_PEERCRED)).get()
        return UnixPeer(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid)
    }
}

/// The layout of Linux's `struct ucred` (`SO_PEERCRED`), which Glibc's Swift module does not
/// export (it needs `_GNU_SOURCE`): pid, uid, gid.
struct LinuxPeerCredentials {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}

/// Who may use the admin socket: root, the server's own user, `admin.uids`, and members of
/// `admin.gids` (by their primary gid).
public struct AdminPolicy: Sendable {
    public let serverUID: UInt32
    public let uids: Set<UInt32>
    public let gids: Set<UInt32>

    public init(serverUID: UInt32 = getuid(), uids: [UInt32], gids: [UInt32]) {
        self.serverUID = serverUID
        self.uids = Set(uids)
        self.gids = Set(gids)
    }

    public func allows(_ peer: UnixPeer) -> Bool {
        peer.uid == 0 || peer.uid == serverUID || uids.contains(peer.uid) || gids.contains(peer.gid)
    }
}

/// Who made an admin request: a local user on the Unix socket or, on the TCP listener, the
/// holder of an X.509-SVID. Its description is the audit actor.
public enum AdminCaller: Sendable, Hashable, CustomStringConvertible {
    case unix(UnixPeer)
    case svid(SPIFFEID)

    /// `unix:uid:<n>` or the caller's SPIFFE ID.
    public var description: String {
        switch self {
        case .unix(let peer): return peer.description
        case .svid(let id): return id.uri
        }
    }
}

/// The admin API's request context: it carries the authenticated caller.
public struct AdminContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel
    /// Set by ``AdminAuthenticationMiddleware`` before any route runs.
    public var caller: AdminCaller?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// Bodies above 1 MiB are refused with 413.
    public var maxUploadSize: Int { AdminRoutes.maximumBodySize }
}

/// Authenticates every request: no route runs for a caller the policy does not allow. On the
/// Unix socket the caller is the peer `SO_PEERCRED` names; on the TCP listener it is the
/// X.509-SVID the TLS handshake verified, checked again by ``AdminSVIDPolicy``.
struct AdminAuthenticationMiddleware: RouterMiddleware {
    typealias Context = AdminContext
    let policy: AdminPolicy
    /// Nil when there is no TCP listener: then a request that did not come over the socket is refused.
    let svidPolicy: AdminSVIDPolicy?

    func handle(_ request: Request, context: AdminContext, next: (Request, AdminContext) async throws -> Response) async throws -> Response {
        let caller: AdminCaller
        if case .unixDomainSocket? = context.channel.localAddress {
            let peer: UnixPeer
            do { peer = try await UnixPeer.of(context.channel) } catch {
                return AdminRoutes.error(.unauthorized, code: "unauthenticated", "the caller's credentials cannot be read from the socket")
            }
            guard policy.allows(peer) else {
                context.logger.warning("admin request refused", metadata: ["actor": "\(peer)", "pid": "\(peer.pid)", "path": "\(request.uri.path)"])
                return AdminRoutes.error(.forbidden, code: "permission_denied",
                                         "uid \(peer.uid) may not use the admin API: allowed are root, the server's user (uid \(policy.serverUID)), admin.uids and admin.gids")
            }
            caller = .unix(peer)
        } else {
            let refused = AdminRoutes.error(.unauthorized, code: "unauthenticated", "the admin API is served only over its Unix socket and over mTLS")
            guard let svidPolicy else { return refused }
            let chain: ValidatedCertificateChain?
            do { chain = try await context.channel.nioSSL_peerValidatedCertificateChain().get() } catch { return refused }
            switch await svidPolicy.authorize(chain, at: Date()) {
            case .success(let id):
                caller = .svid(id)
            case .failure(let refusal):
                let (status, code, message): (HTTPResponse.Status, String, String)
                switch refusal {
                case .unauthenticated(let text): (status, code, message) = (.unauthorized, "unauthenticated", text)
                case .forbidden(let text): (status, code, message) = (.forbidden, "permission_denied", text)
                case .unavailable(let text): (status, code, message) = (.serviceUnavailable, "unavailable", text)
                }
                context.logger.warning("admin request refused", metadata: ["reason": "\(message)", "path": "\(request.uri.path)"])
                return AdminRoutes.error(status, code: code, message)
            }
        }
        var context = context
        context.caller = caller
        return try await next(request, context)
    }
}
