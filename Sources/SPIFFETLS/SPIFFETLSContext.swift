import Foundation
import NIOCore
import NIOSSL
import SPIFFEBundle
import SPIFFEIdentity
import SPIFFEWorkloadAPI
import SPIFFEX509
import SwiftASN1
import Synchronization
import X509

/// TLS for a SPIFFE workload with NIOSSL: each new connection presents the source's current
/// X.509-SVID (a rotation is picked up on the next handshake, without a restart) and accepts
/// the peer only if its certificate chain is a valid X.509-SVID for a trust domain the source
/// holds a bundle for **and** the authorizer accepts its SPIFFE ID. Peers are required to
/// present a certificate on both sides (mTLS). TLS 1.3 only.
///
/// Use one per listener or client: `makeServerHandler()` / `makeClientHandler()` in each
/// channel's initializer.
public final class SPIFFETLSContext: Sendable {
    public let source: X509Source
    public let authorizer: SPIFFEAuthorizer
    private struct Built { let generation: UInt64; let server: NIOSSLContext; let client: NIOSSLContext }
    private let built = Mutex<Built?>(nil)

    public init(source: X509Source, authorizer: SPIFFEAuthorizer) {
        self.source = source
        self.authorizer = authorizer
    }

    /// Why a handler could not be made.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// A server-side handler for a new connection.
    public func makeServerHandler() throws -> NIOSSLServerHandler {
        NIOSSLServerHandler(context: try contexts().server, customVerificationCallbackWithMetadata: verify)
    }

    /// A client-side handler for a new connection (no SNI: the peer is known by its SPIFFE ID).
    public func makeClientHandler() throws -> NIOSSLClientHandler {
        try NIOSSLClientHandler(context: try contexts().client, serverHostname: nil, customVerificationCallbackWithMetadata: verify)
    }

    /// The SPIFFE ID a connection's peer presented (after the handshake).
    public static func peerID(of channel: any Channel) -> EventLoopFuture<SPIFFEID?> {
        channel.pipeline.handler(type: NIOSSLHandler.self).map { handler -> SPIFFEID? in
            guard let der = try? handler.peerCertificate?.toDERBytes(), let parsed = try? Certificate(derEncoded: der) else { return nil }
            return X509SVIDVerifier.claimedID(parsed)
        }
    }

    // MARK: internals

    private func contexts() throws -> Built {
        guard let context = source.current else { throw Failure(description: "the X.509 source has no SVID yet") }
        let generation = source.generation
        if let cached = built.withLock({ $0 }), cached.generation == generation { return cached }
        let svid = context.defaultSVID
        let chain = try svid.chainDER.map { NIOSSLCertificateSource.certificate(try NIOSSLCertificate(bytes: $0, format: .der)) }
        let key = NIOSSLPrivateKeySource.privateKey(try NIOSSLPrivateKey(bytes: svid.privateKeyPKCS8, format: .der))
        var server = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
        server.minimumTLSVersion = .tlsv13
        server.certificateVerification = .noHostnameVerification
        var client = TLSConfiguration.makeClientConfiguration()
        client.minimumTLSVersion = .tlsv13
        client.certificateChain = chain
        client.privateKey = key
        client.certificateVerification = .noHostnameVerification
        let fresh = Built(generation: generation, server: try NIOSSLContext(configuration: server), client: try NIOSSLContext(configuration: client))
        built.withLock { $0 = fresh }
        return fresh
    }

    private var verify: NIOSSLCustomVerificationCallbackWithMetadata {
        { [source, authorizer] certificates, promise in
            var chainDER: [[UInt8]] = []
            do {
                // A peer may repeat a certificate (e.g. its leaf again in the chain file); keep
                // the first of each, leaf first.
                for der in try certificates.map({ try $0.toDERBytes() }) where !chainDER.contains(der) { chainDER.append(der) }
            } catch {
                promise.succeed(.failed)
                return
            }
            Task {
                guard let leaf = chainDER.first.flatMap({ try? Certificate(derEncoded: $0) }), let claimed = X509SVIDVerifier.claimedID(leaf),
                      let bundle = source.bundle(for: claimed.trustDomain) else {
                    promise.succeed(.failed)
                    return
                }
                switch await X509SVIDVerifier(bundle: bundle).verify(chainDER: chainDER, at: Date()) {
                case .valid(let id) where authorizer.authorizes(id):
                    promise.succeed(.certificateVerified(VerificationMetadata(ValidatedCertificateChain(certificates))))
                default:
                    promise.succeed(.failed)
                }
            }
        }
    }
}
