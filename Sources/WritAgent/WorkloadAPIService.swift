import Foundation
import GRPCCore
import Logging
import SPIFFEBundle
import SPIFFEIdentity
import SPIFFEJWT
import SPIFFEWorkloadProto
import SwiftProtobuf
import WritModel
import WritWorkloadAttestation

/// The SPIFFE Workload API as the agent serves it on its Unix socket. The caller is who the
/// kernel says it is (SO_PEERCRED, stamped on each stream by ``PeerCredentials``), attested by
/// the `unix` attestor; it receives exactly the identities whose entries' selectors its own
/// selectors satisfy. Status codes follow SPIRE: no `workload.spiffe.io: true` header →
/// InvalidArgument; credentials unreadable → Unavailable; the process gone or changed while it
/// was attested → Unauthenticated; nothing matches → PermissionDenied ("no identity issued").
/// FetchJWTSVID answers Unimplemented until the agent mints JWT-SVIDs through its server.
///
/// Streams send the caller's full current state first and again on every change; a stream whose
/// identities drop to zero ends with PermissionDenied.
public struct WorkloadAPIService: SpiffeWorkloadAPI.ServiceProtocol {
    let cache: WorkloadIdentityCache
    let attestor: UnixWorkloadAttestor
    let logger: Logger
    let now: @Sendable () -> Date

    public init(cache: WorkloadIdentityCache, attestor: UnixWorkloadAttestor, logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.cache = cache
        self.attestor = attestor
        self.logger = logger
        self.now = now
    }

    // MARK: X.509

    public func fetchX509SVID(request: ServerRequest<X509SVIDRequest>, context: ServerContext) async throws -> StreamingServerResponse<X509SVIDResponse> {
        try await streaming(request.metadata, method: "FetchX509SVID", context: context, x509Response)
    }

    public func fetchX509Bundles(request: ServerRequest<X509BundlesRequest>, context: ServerContext) async throws -> StreamingServerResponse<X509BundlesResponse> {
        try await streaming(request.metadata, method: "FetchX509Bundles", context: context, bundlesResponse)
    }

    // MARK: JWT

    public func fetchJWTBundles(request: ServerRequest<JWTBundlesRequest>, context: ServerContext) async throws -> StreamingServerResponse<JWTBundlesResponse> {
        try await streaming(request.metadata, method: "FetchJWTBundles", context: context, jwtBundlesResponse)
    }

    public func fetchJWTSVID(request: ServerRequest<JWTSVIDRequest>, context: ServerContext) async throws -> ServerResponse<JWTSVIDResponse> {
        _ = try await caller(request.metadata, method: "FetchJWTSVID")
        throw RPCError(code: .unimplemented, message: "FetchJWTSVID is not served by this agent yet")
    }

    /// Validates a JWT-SVID against the bundle of its subject's trust domain (this agent's own,
    /// or a federated one the agent holds); any caller that attests may ask. A token that fails
    /// is InvalidArgument with the rule it broke.
    public func validateJWTSVID(request: ServerRequest<ValidateJWTSVIDRequest>, context: ServerContext) async throws -> ServerResponse<ValidateJWTSVIDResponse> {
        _ = try await caller(request.metadata, method: "ValidateJWTSVID")
        let (token, audience) = (request.message.svid, request.message.audience)
        guard !audience.isEmpty else { throw RPCError(code: .invalidArgument, message: "audience must be specified") }
        guard !token.isEmpty else { throw RPCError(code: .invalidArgument, message: "svid must be specified") }
        let payload = Self.unverifiedPayload(token)
        let own = await cache.bundle
        var bundle = own
        if let subject = payload?["sub"] as? String, let domain = try? TrustDomain(parsing: subject), domain != own.trustDomain {
            guard let foreign = await cache.federated[domain] else {
                throw RPCError(code: .invalidArgument, message: "no bundle for trust domain `\(domain)` of the token's subject")
            }
            bundle = foreign
        }
        switch await JWTSVIDValidator(bundle: bundle, leeway: .zero).validate(token, audience: audience, now: now()) {
        case .invalid(let error):
            throw RPCError(code: .invalidArgument, message: "invalid JWT-SVID: \(error.message)")
        case .valid(let svid):
            var response = ValidateJWTSVIDResponse()
            response.spiffeID = svid.claims.subject.uri
            if let json = Self.payloadJSON(token) {
                response.claims = (try? Google_Protobuf_Struct(jsonUTF8Data: json)) ?? Google_Protobuf_Struct()
            }
            return ServerResponse(message: response)
        }
    }

    /// The token's payload bytes (base64url-decoded), before any check: only to pick the bundle
    /// and, once validated, to return the claims.
    static func payloadJSON(_ token: String) -> Data? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        var text = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        return Data(base64Encoded: text)
    }

    static func unverifiedPayload(_ token: String) -> [String: Any]? {
        payloadJSON(token).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
    }

    // MARK: WIT (answered once delegation exists)

    public func fetchWITSVID(request: ServerRequest<WITSVIDRequest>, context: ServerContext) async throws -> StreamingServerResponse<WITSVIDResponse> {
        throw RPCError(code: .unimplemented, message: "WIT-SVIDs are not issued by this agent")
    }

    public func fetchWITBundles(request: ServerRequest<WITBundlesRequest>, context: ServerContext) async throws -> StreamingServerResponse<WITBundlesResponse> {
        throw RPCError(code: .unimplemented, message: "WIT-SVIDs are not issued by this agent")
    }

    // MARK: the caller

    /// Checks the security header and attests the caller; returns its selectors.
    func caller(_ metadata: Metadata, method: String) async throws -> Set<Selector> {
        guard metadata["workload.spiffe.io"].contains(where: { value in if case .string("true") = value { return true }; return false }) else {
            throw RPCError(code: .invalidArgument, message: "security header missing from request: send `workload.spiffe.io: true`")
        }
        let stamped = metadata[PeerCredentials.header].compactMap { value -> String? in if case .string(let text) = value { return text }; return nil }
        guard stamped.count == 1, let credentials = PeerCredentials(headerValue: stamped[0]) else {
            logger.warning("workload caller credentials unreadable", metadata: ["method": "\(method)"])
            throw RPCError(code: .unavailable, message: "the caller's credentials cannot be read from the socket")
        }
        let attestation: UnixWorkloadAttestor.Attestation
        do { attestation = try await attestor.attest(pid: credentials.pid) } catch {
            logger.info("workload attestation failed", metadata: ["method": "\(method)", "caller": "\(credentials)", "error": "\(error)"])
            throw RPCError(code: .unauthenticated, message: "the calling process is gone or changed while it was attested")
        }
        // The socket's credentials were fixed at connect; the process must still be that one.
        guard attestation.process.uid == credentials.uid, attestation.process.gid == credentials.gid else {
            throw RPCError(code: .unauthenticated, message: "the calling process changed its credentials since it connected")
        }
        return Set(attestation.selectors)
    }

    // MARK: responses

    static let noIdentity = RPCError(code: .permissionDenied, message: "no identity issued")

    @Sendable func x509Response(for selectors: Set<Selector>) async throws -> X509SVIDResponse {
        let identities = await cache.identities(for: selectors, at: now())
        guard !identities.isEmpty else { throw Self.noIdentity }
        let bundle = await cache.bundle
        let federated = await cache.federated
        let bundleDER = Data(bundle.x509AuthoritiesDER())
        var response = X509SVIDResponse()
        response.svids = identities.map { identity in
            var svid = X509SVID()
            svid.spiffeID = identity.entry.spiffeID.uri
            svid.x509Svid = Data(identity.chainDER.joined())
            svid.x509SvidKey = Data(identity.privateKeyPKCS8)
            svid.bundle = bundleDER
            svid.hint = identity.entry.hint
            return svid
        }
        for domain in Set(identities.flatMap(\.entry.federatesWith)) {
            if let foreign = federated[domain] { response.federatedBundles[domain.id.uri] = Data(foreign.x509AuthoritiesDER()) }
        }
        return response
    }

    /// The caller's trust domain bundle and the federated bundles its entries name.
    private func bundleSet(for selectors: Set<Selector>) async throws -> [TrustBundle] {
        let identities = await cache.identities(for: selectors, at: now())
        guard !identities.isEmpty else { throw Self.noIdentity }
        var bundles = [await cache.bundle]
        let federated = await cache.federated
        for domain in Set(identities.flatMap(\.entry.federatesWith)).sorted() {
            if let foreign = federated[domain] { bundles.append(foreign) }
        }
        return bundles
    }

    @Sendable func bundlesResponse(for selectors: Set<Selector>) async throws -> X509BundlesResponse {
        var response = X509BundlesResponse()
        for bundle in try await bundleSet(for: selectors) { response.bundles[bundle.trustDomain.id.uri] = Data(bundle.x509AuthoritiesDER()) }
        return response
    }

    @Sendable func jwtBundlesResponse(for selectors: Set<Selector>) async throws -> JWTBundlesResponse {
        var response = JWTBundlesResponse()
        for bundle in try await bundleSet(for: selectors) { response.bundles[bundle.trustDomain.id.uri] = Data(bundle.jwtJWKS()) }
        return response
    }

    /// Attests the caller, builds its state (PermissionDenied when it has no identity) and
    /// streams it: the first message now, then on every change.
    func streaming<Message: SwiftProtobuf.Message & Equatable>(_ metadata: Metadata, method: String, context: ServerContext,
                                                                _ build: @escaping @Sendable (Set<Selector>) async throws -> Message) async throws -> StreamingServerResponse<Message> {
        let selectors = try await caller(metadata, method: method)
        let first = try await build(selectors)
        return StreamingServerResponse { writer in
            try await follow(first: first, context: context, writer: writer) { try await build(selectors) }
            return [:]
        }
    }

    /// Writes `first`, then the fresh state after every cache change that alters it, until the
    /// RPC is cancelled; a state that throws (no identity left) ends the stream with that error.
    func follow<Message: SwiftProtobuf.Message & Equatable>(first: Message, context: ServerContext, writer: RPCWriter<Message>,
                                                             _ current: @escaping @Sendable () async throws -> Message) async throws {
        try await writer.write(first)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var sent = first
                // From 0: the first pass re-reads at once, so a change made while `first` was
                // being built is not missed (an unchanged state is not sent twice).
                var generation: UInt64 = 0
                while !Task.isCancelled {
                    await cache.waitForChange(after: generation)
                    if Task.isCancelled { return }
                    generation = await cache.generation
                    let fresh = try await current()
                    if fresh != sent {
                        try await writer.write(fresh)
                        sent = fresh
                    }
                }
            }
            // grpc-swift reports a cancelled RPC through the context, not by cancelling this task.
            group.addTask { try await context.cancellation.cancelled }
            defer { group.cancelAll() }
            try await group.next()
        }
    }
}
