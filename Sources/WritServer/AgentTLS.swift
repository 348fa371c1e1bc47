import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import SPIFFEBundle
import SPIFFEIdentity
import SPIFFEX509
import Synchronization
import X509

/// An agent SVID presented on a connection and verified against the server's bundle.
struct VerifiedPeer: Sendable, Hashable {
    let id: SPIFFEID
    /// Lowercase hex of the leaf's serial number.
    let serialNumber: String
}

/// Which verified agent SVID each open connection presented, keyed the way gRPC names the
/// caller (`ServerContext.remotePeer`, e.g. `ipv4:127.0.0.1:51234`). An entry exists only
/// after a full handshake whose client certificate passed verification and lives as long as
/// its connection; a connection without one (attestation, or a resumed session) is anonymous.
final class PeerRegistry: Sendable {
    private struct Peer: Sendable {
        let connection: ObjectIdentifier
        let identity: VerifiedPeer
    }
    private let peers = Mutex<[String: Peer]>([:])

    func register(_ identity: VerifiedPeer, address: String, connection: ObjectIdentifier) {
        peers.withLock { $0[address] = Peer(connection: connection, identity: identity) }
    }

    func forget(address: String, connection: ObjectIdentifier) {
        peers.withLock { peers in
            if peers[address]?.connection == connection { peers.removeValue(forKey: address) }
        }
    }

    /// The verified identity of the connection gRPC calls `remotePeer`, if any.
    func identity(remotePeer: String) -> VerifiedPeer? {
        peers.withLock { $0[remotePeer]?.identity }
    }

    /// gRPC's name for a connection's remote address (the same text as `ServerContext.remotePeer`).
    static func name(of address: NIOCore.SocketAddress?) -> String? {
        switch address {
        case .v4(let ipv4)?: return "ipv4:\(ipv4.host):\(address!.port!)"
        case .v6(let ipv6)?: return "ipv6:[\(ipv6.host)]:\(address!.port!)"
        default: return nil
        }
    }
}

/// The TLS side of the server's listeners (the agent API and the optional TCP admin API): the
/// server's current certificate chain and key (replaced when the server SVID is renewed) and
/// the trust bundle client certificates are checked against.
final class ServerTLSState: Sendable {
    private struct Current: Sendable {
        var context: NIOSSLContext
        var adminContext: NIOSSLContext
        var bundle: TrustBundle
    }
    private let current: Mutex<Current>

    init(chainDER: [[UInt8]], privateKeyPEM: String, bundle: TrustBundle) throws {
        current = Mutex(Current(context: try Self.makeContext(chainDER: Self.withAnchor(chainDER, bundle: bundle), privateKeyPEM: privateKeyPEM,
                                                              protocols: Self.agentProtocols),
                                adminContext: try Self.makeContext(chainDER: chainDER, privateKeyPEM: privateKeyPEM, protocols: Self.adminProtocols),
                                bundle: bundle))
    }

    /// Serves new connections with a renewed server SVID.
    func update(chainDER: [[UInt8]], privateKeyPEM: String) throws {
        let context = try Self.makeContext(chainDER: Self.withAnchor(chainDER, bundle: bundle), privateKeyPEM: privateKeyPEM, protocols: Self.agentProtocols)
        let adminContext = try Self.makeContext(chainDER: chainDER, privateKeyPEM: privateKeyPEM, protocols: Self.adminProtocols)
        current.withLock {
            $0.context = context
            $0.adminContext = adminContext
        }
    }

    /// Verifies client certificates against `bundle` from now on.
    func update(bundle: TrustBundle) {
        current.withLock { $0.bundle = bundle }
    }

    /// The chain the agent API presents: the SVID chain and the bundle authority it ends at, so
    /// that an agent bootstrapping from the SHA-256 of the root can find and check that root in
    /// the handshake (TLS 1.3 allows the trust anchor in the chain; verifiers ignore it).
    static func withAnchor(_ chainDER: [[UInt8]], bundle: TrustBundle) -> [[UInt8]] {
        guard let lastDER = chainDER.last, let last = try? Certificate(derEncoded: lastDER) else { return chainDER }
        guard let anchor = bundle.x509Authorities.first(where: { authority in
            authority.subject == last.issuer && authority.publicKey.isValidSignature(last.signature, for: last)
        }), anchor != last else { return chainDER }
        return chainDER + [TrustBundle.der(anchor)]
    }

    /// The agent API's context (ALPN `grpc-exp`, `h2`).
    var context: NIOSSLContext { current.withLock { $0.context } }
    /// The TCP admin API's context (ALPN `http/1.1`).
    var adminContext: NIOSSLContext { current.withLock { $0.adminContext } }
    var bundle: TrustBundle { current.withLock { $0.bundle } }

    static let agentProtocols = ["grpc-exp", "h2"]
    static let adminProtocols = ["http/1.1"]

    /// TLS 1.3 only; a client certificate is optional at the TLS layer (attestation has none;
    /// the admin API answers a caller without one with 401) but, when presented, must pass the
    /// SPIFFE verification of the listener.
    static func makeContext(chainDER: [[UInt8]], privateKeyPEM: String, protocols: [String]) throws -> NIOSSLContext {
        let chain = try chainDER.map { NIOSSLCertificateSource.certificate(try NIOSSLCertificate(bytes: $0, format: .der)) }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain,
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)))
        configuration.minimumTLSVersion = .tlsv13
        configuration.maximumTLSVersion = .tlsv13
        configuration.certificateVerification = .optionalVerification
        configuration.applicationProtocols = protocols
        return try NIOSSLContext(configuration: configuration)
    }
}

/// Binds the agent API's TCP listener and puts TLS 1.3 in front of gRPC on every connection.
/// A client certificate chain is verified as an X.509-SVID against the server's current bundle
/// and must name an agent (`/writ/agent/…`); its identity is then recorded in ``PeerRegistry``.
struct AgentListenerFactory: HTTP2ServerTransport.ListenerFactory {
    let host: String
    let port: Int
    let tls: ServerTLSState
    let peers: PeerRegistry
    let trustDomain: TrustDomain
    let logger: Logger
    let eventLoopGroup: any EventLoopGroup
    /// Called with the bound address once listening.
    let onBound: @Sendable (NIOCore.SocketAddress?) -> Void

    func makeListeningChannel(
        listenerConfigurator: HTTP2ServerTransport.ListenerConfigurator,
        connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
    ) async throws -> NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never> {
        let tls = self.tls
        let peers = self.peers
        let trustDomain = self.trustDomain
        let logger = self.logger
        let channel = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in listenerConfigurator.configure(channel: channel) }
            .bind(host: host, port: port) { channel in
                let address = PeerRegistry.name(of: channel.remoteAddress)
                let connection = ObjectIdentifier(channel)
                return channel.eventLoop.makeCompletedFuture {
                    let handler = NIOSSLServerHandler(context: tls.context) { certificates, promise in
                        Self.verify(certificates, bundle: tls.bundle, trustDomain: trustDomain, logger: logger) { identity in
                            if let identity, let address {
                                peers.register(identity, address: address, connection: connection)
                                promise.succeed(.certificateVerified(VerificationMetadata(ValidatedCertificateChain(certificates))))
                            } else {
                                promise.succeed(.failed)
                            }
                        }
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                    if let address {
                        channel.closeFuture.whenComplete { _ in peers.forget(address: address, connection: connection) }
                    }
                }.flatMap {
                    connectionConfigurator.configure(channel: channel, tls: .configured(requireALPN: false))
                }
            }
        onBound(channel.channel.localAddress)
        return channel
    }

    private static func verify(_ certificates: [NIOSSLCertificate], bundle: TrustBundle, trustDomain: TrustDomain, logger: Logger,
                               completion: @escaping @Sendable (VerifiedPeer?) -> Void) {
        let chainDER: [[UInt8]]
        do { chainDER = try certificates.map { try $0.toDERBytes() } } catch {
            logger.notice("agent API: client certificate does not encode", metadata: ["error": "\(error)"])
            completion(nil)
            return
        }
        Task {
            let verifier = X509SVIDVerifier(bundle: bundle)
            switch await verifier.verify(chainDER: chainDER, at: Date()) {
            case .valid(let id):
                guard id.trustDomain == trustDomain, id.path.hasPrefix("/writ/agent/") else {
                    logger.notice("agent API: refused a client certificate that is not an agent SVID", metadata: ["spiffe_id": "\(id)"])
                    completion(nil)
                    return
                }
                guard let leaf = try? Certificate(derEncoded: chainDER[0]) else {
                    completion(nil)
                    return
                }
                completion(VerifiedPeer(id: id, serialNumber: Self.hex(leaf.serialNumber.bytes)))
            case .invalid(let failure):
                logger.notice("agent API: refused a client certificate", metadata: ["rule": "\(failure.rule.rawValue)", "reason": "\(failure.message)"])
                completion(nil)
            }
        }
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}
