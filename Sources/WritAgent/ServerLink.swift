import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import NIOCore
import NIOSSL
import SPIFFEBundle
import SPIFFEIdentity
import WritConfig
import Synchronization
import WritAgentAPI

/// The agent's side of its connection to the server: whom it trusts (replaced whenever the
/// server sends a new bundle), how its TLS checks the server, and the client of the session in
/// progress (for calls made on behalf of workloads, such as minting JWT-SVIDs).
final class ServerLink: Sendable {
    typealias Client = Writ_Agent_V1_AgentAPI.Client<HTTP2ClientTransport.Posix>

    private struct State {
        var trust: ServerTrust
        var client: Client?
        var verificationFailures = 0
        var lastVerificationError: String?
    }
    private let state: Mutex<State>
    /// What trust falls back to when the server can no longer be verified.
    let bootstrap: ServerTrust
    let server: ListenAddress
    let logger: Logger

    init(trust: ServerTrust, bootstrap: ServerTrust, server: ListenAddress, logger: Logger) {
        state = Mutex(State(trust: trust))
        self.bootstrap = bootstrap
        self.server = server
        self.logger = logger
    }

    var trust: ServerTrust { state.withLock { $0.trust } }

    /// Trusts this bundle's authorities from now on (the server sent a new one).
    func trust(_ bundle: TrustBundle) {
        state.withLock { $0.trust = ServerTrust(anchors: .authorities(bundle.x509Authorities), trustDomain: bundle.trustDomain) }
    }

    /// Handshakes that failed verification in a row.
    var verificationFailures: Int { state.withLock { $0.verificationFailures } }
    var lastVerificationError: String? { state.withLock { $0.lastVerificationError } }

    /// Falls back to the bootstrap trust (the server's roots changed while the agent could not
    /// follow, e.g. it was stopped longer than the old root lived).
    func rebootstrap() {
        state.withLock {
            $0.trust = bootstrap
            $0.verificationFailures = 0
        }
        logger.warning("the server no longer verifies against the stored bundle: trusting the bootstrap bundle again")
    }

    var client: Client? { state.withLock { $0.client } }
    func setClient(_ client: Client?) { state.withLock { $0.client = client } }

    /// A gRPC transport to the server: TLS 1.3, the server checked by ``ServerTrust`` (no host
    /// name: the server is known by its SPIFFE ID), with the agent SVID as client certificate
    /// when `credentials` are given.
    func transport(credentials: AgentCredentials?) throws -> HTTP2ClientTransport.Posix {
        let verify: @Sendable ([NIOSSLCertificate], EventLoopPromise<NIOSSLVerificationResultWithMetadata>) -> Void = { [self] certificates, promise in
            let chainDER: [[UInt8]]
            do { chainDER = try certificates.map { try $0.toDERBytes() } } catch {
                promise.succeed(.failed)
                return
            }
            let trust = self.trust
            Task {
                do {
                    _ = try await trust.verify(chainDER: chainDER, at: Date())
                    self.state.withLock { $0.verificationFailures = 0 }
                    promise.succeed(.certificateVerified(VerificationMetadata(ValidatedCertificateChain(certificates))))
                } catch let error as AgentError {
                    self.state.withLock {
                        $0.verificationFailures += 1
                        $0.lastVerificationError = error.message
                    }
                    self.logger.error("refused the server's certificate", metadata: ["server": "\(self.server)", "reason": "\(error.message)"])
                    promise.succeed(.failed)
                } catch {
                    promise.succeed(.failed)
                }
            }
        }
        let configure: (inout HTTP2ClientTransport.Posix.TransportSecurity.TLS) -> Void = { config in
            config.serverCertificateVerification = .noHostnameVerification
            config.customVerificationCallback = verify
        }
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        if let credentials {
            security = .mTLS(certificateChain: credentials.chainDER.map { .bytes($0, format: .der) },
                             privateKey: .bytes(Array(credentials.key.pemRepresentation.utf8), format: .pem), configure: configure)
        } else {
            security = .tls(configure: configure)
        }
        var config = HTTP2ClientTransport.Posix.Config.defaults
        config.connection.keepalive = .init(time: .seconds(15), timeout: .seconds(10), allowWithoutCalls: true)
        config.backoff = .init(initial: .milliseconds(200), max: .seconds(2), multiplier: 1.6, jitter: 0.2)
        return try HTTP2ClientTransport.Posix(target: target, transportSecurity: security, config: config)
    }

    /// An address literal is dialled as such (TLS sends no SNI for it); a name is resolved.
    var target: any ResolvableTarget {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, server.host, &v4) == 1 { return .ipv4(address: server.host, port: server.port) }
        if inet_pton(AF_INET6, server.host, &v6) == 1 { return .ipv6(address: server.host, port: server.port) }
        return .dns(host: server.host, port: server.port)
    }
}
