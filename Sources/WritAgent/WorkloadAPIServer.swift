import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import GRPCServerReflection
import Logging
import NIOCore
import NIOPosix
import SPIFFEWorkloadProto
import WritAgentAPI
import Synchronization
import WritWorkloadAttestation
#if canImport(Glibc)
import Glibc
#endif

/// Serves the Workload API on a Unix socket: the socket is created (replacing a stale one),
/// made connectable by every local user (attestation, not file permissions, decides who gets
/// what), and each stream is stamped with its caller's kernel credentials. `grpc.health.v1`
/// and gRPC server reflection (v1 and v1alpha, describing the Workload API, health and
/// reflection itself) answer beside the Workload API without attestation: they reveal only
/// what the published protos already say. The listen backlog
/// is deep (4,096) so that a burst of clients that connect and vanish cannot crowd out a
/// well-behaved one.
public struct WorkloadAPIServer: Sendable {
    public let socketPath: String
    let server: GRPCServer<HTTP2ServerTransport.Custom<UnixListenerFactory>>
    let listening: ListeningSignal

    /// Connections the kernel queues for accept.
    static let backlog: Int32 = 4096

    public init(socketPath: String, service: WorkloadAPIService) throws {
        guard socketPath.hasPrefix("/"), socketPath.utf8.count < 100 else {
            throw WorkloadAttestationError(.unreadable, "the Workload API socket path `\(socketPath)` must be absolute and under 100 bytes")
        }
        self.socketPath = socketPath
        var config = HTTP2ServerTransport.Custom<UnixListenerFactory>.Config.defaults
        config.channelDebuggingCallbacks.onAcceptHTTP2Stream = { stream in PeerCredentials.stamp(stream: stream) }
        let listening = ListeningSignal()
        self.listening = listening
        let factory = UnixListenerFactory(path: socketPath, backlog: Self.backlog, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, onBound: listening.fire)
        let reflection = try ServerReflectionService(describing: [SPIFFEWorkloadFileDescriptors.fileDescriptorSet, HealthFileDescriptors.fileDescriptorSet])
        server = GRPCServer(transport: HTTP2ServerTransport.Custom(listenerFactory: factory, config: config),
                            services: [service, HealthService(services: ["SpiffeWorkloadAPI"]), reflection])
    }

    /// Runs until cancelled or ``shutDown()``; `onListening` is called once the socket accepts.
    public func run(onListening: @escaping @Sendable () -> Void = {}) async throws {
        if let attributes = try? FileManager.default.attributesOfItem(atPath: socketPath), attributes[.type] as? FileAttributeType == .typeSocket {
            try FileManager.default.removeItem(atPath: socketPath)
        }
        let path = socketPath
        listening.set { chmod(path, 0o777); onListening() }
        try await server.serve()
    }

    public func shutDown() { server.beginGracefulShutdown() }
}

/// Calls its action once, when the listener is bound.
final class ListeningSignal: Sendable {
    private let action = Mutex<(@Sendable () -> Void)?>(nil)
    func set(_ body: @escaping @Sendable () -> Void) { action.withLock { $0 = body } }
    var fire: @Sendable () -> Void { { [self] in action.withLock { $0 }?() } }
}

/// Binds the Unix socket with an explicit backlog and hands accepted connections to gRPC.
struct UnixListenerFactory: HTTP2ServerTransport.ListenerFactory {
    let path: String
    let backlog: Int32
    let eventLoopGroup: any EventLoopGroup
    let onBound: @Sendable () -> Void

    func makeListeningChannel(
        listenerConfigurator: HTTP2ServerTransport.ListenerConfigurator,
        connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
    ) async throws -> NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never> {
        let channel = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: backlog)
            .serverChannelInitializer { channel in listenerConfigurator.configure(channel: channel) }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) { channel in
                connectionConfigurator.configure(channel: channel, tls: .none)
            }
        onBound()
        return channel
    }
}
