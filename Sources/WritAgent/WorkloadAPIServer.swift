import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import NIOCore
import WritWorkloadAttestation
#if canImport(Glibc)
import Glibc
#endif

/// Serves the Workload API on a Unix socket: the socket is created (replacing a stale one),
/// made connectable by every local user (attestation, not file permissions, decides who gets
/// what), and each stream is stamped with its caller's kernel credentials.
public struct WorkloadAPIServer: Sendable {
    public let socketPath: String
    let server: GRPCServer<HTTP2ServerTransport.Posix>

    public init(socketPath: String, service: WorkloadAPIService) throws {
        guard socketPath.hasPrefix("/"), socketPath.utf8.count < 100 else {
            throw WorkloadAttestationError(.unreadable, "the Workload API socket path `\(socketPath)` must be absolute and under 100 bytes")
        }
        self.socketPath = socketPath
        var config = HTTP2ServerTransport.Posix.Config.defaults
        config.channelDebuggingCallbacks.onAcceptHTTP2Stream = { stream in PeerCredentials.stamp(stream: stream) }
        server = GRPCServer(transport: HTTP2ServerTransport.Posix(address: .unixDomainSocket(path: socketPath), transportSecurity: .plaintext, config: config),
                            services: [service])
    }

    /// Runs until cancelled or ``shutDown()``; `onListening` is called once the socket accepts.
    public func run(onListening: @escaping @Sendable () -> Void = {}) async throws {
        if let attributes = try? FileManager.default.attributesOfItem(atPath: socketPath), attributes[.type] as? FileAttributeType == .typeSocket {
            try FileManager.default.removeItem(atPath: socketPath)
        }
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            guard try await server.listeningAddress != nil else { return }
            chmod(socketPath, 0o777)
            onListening()
        }
    }

    public func shutDown() { server.beginGracefulShutdown() }
}
