import Foundation
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import SPIFFEBundle
import SPIFFEIdentity
import SPIFFEX509
import WritStore

/// One connection of the TCP admin listener: TLS 1.3 with the server's current SVID (taken from
/// ``ServerTLSState`` per connection, so a renewed SVID serves new connections at once), then
/// HTTP/1.1. A client certificate chain, when presented, must verify as an X.509-SVID of the
/// trust domain against the current bundle or the handshake fails; whether its SPIFFE ID may
/// administer is decided per request by ``AdminAuthenticationMiddleware``.
struct AdminTLSChannel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = HTTP1Channel.Value
    let base: HTTP1Channel
    let tls: ServerTLSState
    let trustDomain: TrustDomain
    let logger: Logger

    var responder: HTTPChannelHandler.Responder { base.responder }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let tls = self.tls
        let trustDomain = self.trustDomain
        let log = self.logger
        return channel.eventLoop.makeCompletedFuture {
            let handler = NIOSSLServerHandler(context: tls.adminContext) { certificates, promise in
                let chainDER: [[UInt8]]
                do { chainDER = try certificates.map { try $0.toDERBytes() } } catch {
                    promise.succeed(.failed)
                    return
                }
                let bundle = tls.bundle
                promise.completeWithTask {
                    switch await X509SVIDVerifier(bundle: bundle).verify(chainDER: chainDER, at: Date()) {
                    case .valid(let id) where id.trustDomain == trustDomain:
                        return .certificateVerified(VerificationMetadata(ValidatedCertificateChain(certificates)))
                    case .valid(let id):
                        log.notice("admin API: refused a client certificate of another trust domain", metadata: ["spiffe_id": "\(id)"])
                        return .failed
                    case .invalid(let failure):
                        log.notice("admin API: refused a client certificate", metadata: ["rule": "\(failure.rule.rawValue)", "reason": "\(failure.message)"])
                        return .failed
                    }
                }
            }
            try channel.pipeline.syncOperations.addHandler(handler)
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Decides whether the X.509-SVID a TCP admin caller presented may administer: the chain is
/// verified again against the current bundle at the time of each request (so an SVID that
/// expired on an open connection stops working), and its SPIFFE ID must be listed in
/// `admin.ids` or have a registration entry with `admin: true` that has not expired.
struct AdminSVIDPolicy: Sendable {
    let tls: ServerTLSState
    let store: any Datastore
    let trustDomain: TrustDomain
    let adminIDs: Set<SPIFFEID>

    /// Why a caller is refused: the HTTP status and error code with a message that says what to fix.
    enum Refusal: Error {
        case unauthenticated(String)
        case forbidden(String)
        case unavailable(String)
    }

    /// The SPIFFE ID of a caller allowed to administer, or the refusal.
    func authorize(_ chain: ValidatedCertificateChain?, at now: Date) async -> Result<SPIFFEID, Refusal> {
        guard let chain, !chain.isEmpty else {
            return .failure(.unauthenticated("no client certificate: the TCP admin API requires an X.509-SVID of `\(trustDomain)` (mTLS)"))
        }
        let chainDER: [[UInt8]]
        do { chainDER = try chain.map { try $0.toDERBytes() } } catch {
            return .failure(.unauthenticated("the client certificate chain cannot be encoded"))
        }
        let id: SPIFFEID
        switch await X509SVIDVerifier(bundle: tls.bundle).verify(chainDER: chainDER, at: now) {
        case .valid(let verified): id = verified
        case .invalid(let failure): return .failure(.unauthenticated("the client X.509-SVID is not valid now: \(failure.message)"))
        }
        guard id.trustDomain == trustDomain else {
            return .failure(.unauthenticated("`\(id)` is not of the trust domain `\(trustDomain)`"))
        }
        if adminIDs.contains(id) { return .success(id) }
        do {
            let page = try await store.listEntries(EntryQuery(filter: EntryFilter(spiffeID: id), pageSize: EntryQuery.maximumPageSize))
            if page.entries.contains(where: { $0.admin && ($0.expiresAt.map { $0 > now } ?? true) }) { return .success(id) }
        } catch {
            return .failure(.unavailable("cannot check the caller's entries: \(error.message)"))
        }
        return .failure(.forbidden("`\(id)` may not use the admin API: it needs an entry with admin: true (writ entry create --admin) or a place in admin.ids"))
    }
}
