import Foundation
import GRPCCore
import Logging
import SPIFFEBundle
import SPIFFEIdentity
import SPIFFEJWT
import SPIFFEWorkloadProto
import SwiftProtobuf
import Synchronization
import WritModel
import WritWorkloadAttestation

/// The SPIFFE Workload API as the agent serves it on its Unix socket. The caller is who the
/// kernel says it is (SO_PEERCRED, stamped on each stream by ``PeerCredentials``), attested by
/// the `unix` attestor; it receives exactly the identities whose entries' selectors its own
/// selectors satisfy. Status codes follow SPIRE: no `workload.spiffe.io: true` header →
/// InvalidArgument; credentials unreadable → Unavailable; the process gone or changed while it
/// was attested → Unauthenticated; nothing matches → PermissionDenied ("no identity issued").
/// FetchJWTSVID mints through the agent's server (``JWTSVIDMinting``) and caches each token per
/// identity and audience set until half its life has passed.
///
/// Streams send the caller's full current state first and again on every change; a stream whose
/// identities drop to zero ends with PermissionDenied.
public struct WorkloadAPIService: SpiffeWorkloadAPI.ServiceProtocol {
    let cache: WorkloadIdentityCache
    let attestor: UnixWorkloadAttestor
    let logger: Logger
    let now: @Sendable () -> Date
    let metrics: AgentMetrics
    /// How long a call waits for a matching entry's SVID to be minted.
    let svidWait: Duration
    /// Test only: a pause between reading a caller's credentials and attesting it.
    let attestationDelay: Duration
    let rateLimiter: CallerRateLimiter
    /// Mints JWT-SVIDs through the server; nil: FetchJWTSVID answers Unavailable.
    let jwtMinter: (any JWTSVIDMinting)?
    let jwtSVIDs = JWTSVIDCache()

    public init(cache: WorkloadIdentityCache, attestor: UnixWorkloadAttestor, logger: Logger, now: @escaping @Sendable () -> Date = { Date() },
                metrics: AgentMetrics = AgentMetrics(), svidWait: Duration = .seconds(10), attestationDelay: Duration = .zero,
                rateLimit: Int = 1_000_000, jwtMinter: (any JWTSVIDMinting)? = nil) {
        self.cache = cache
        self.attestor = attestor
        self.logger = logger
        self.now = now
        self.metrics = metrics
        self.svidWait = svidWait
        self.attestationDelay = attestationDelay
        self.rateLimiter = CallerRateLimiter(perSecond: rateLimit)
        self.jwtMinter = jwtMinter
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
        let method = "FetchJWTSVID"
        let selectors = try await caller(request.metadata, method: method)
        let audience = request.message.audience
        guard !audience.isEmpty, audience.allSatisfy({ !$0.isEmpty }) else {
            throw refused(.invalidArgument, "audience must be specified", method: method)
        }
        let entries = await cache.lookupEntries(selectors, at: now())
        guard !entries.isEmpty else {
            throw refused(.permissionDenied, Self.noIdentity.message, method: method)
        }
        var chosen = entries
        if !request.message.spiffeID.isEmpty {
            chosen = entries.filter { $0.spiffeID.uri == request.message.spiffeID }
            guard !chosen.isEmpty else {
                throw refused(.permissionDenied, "no identity issued for `\(request.message.spiffeID.prefix(2048))` to this caller", method: method)
            }
            chosen = [chosen[0]]
        }
        guard let jwtMinter else {
            throw RPCError(code: .unavailable, message: "this agent has no server to mint JWT-SVIDs")
        }
        var response = JWTSVIDResponse()
        do {
            for entry in chosen {
                let token = try await jwtSVIDs.token(for: entry, audience: audience, now: now()) {
                    try await jwtMinter.mintJWTSVID(entry: entry, audience: audience)
                }
                var svid = JWTSVID()
                svid.spiffeID = entry.spiffeID.uri
                svid.svid = token
                svid.hint = entry.hint
                response.svids.append(svid)
            }
        } catch {
            logger.warning("JWT-SVID not minted", metadata: ["error": "\(error)"])
            throw refused(.unavailable, "the agent could not get a JWT-SVID from its server: \(error)", method: method)
        }
        metrics.workloadCall(method: method, outcome: "ok")
        return ServerResponse(message: response)
    }

    /// Validates a JWT-SVID against the bundle of its subject's trust domain (this agent's own,
    /// or a federated one the agent holds); any caller that attests may ask. A token that fails
    /// is InvalidArgument with the rule it broke.
    public func validateJWTSVID(request: ServerRequest<ValidateJWTSVIDRequest>, context: ServerContext) async throws -> ServerResponse<ValidateJWTSVIDResponse> {
        _ = try await caller(request.metadata, method: "ValidateJWTSVID")
        let (token, audience) = (request.message.svid, request.message.audience)
        guard !audience.isEmpty else { throw RPCError(code: .invalidArgument, message: "audience must be specified") }
        guard !token.isEmpty else { throw RPCError(code: .invalidArgument, message: "svid must be specified") }
        let payload = UnverifiedJWT.claims(token)
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
            if let json = UnverifiedJWT.payload(token) {
                response.claims = (try? Google_Protobuf_Struct(jsonUTF8Data: json)) ?? Google_Protobuf_Struct()
            }
            return ServerResponse(message: response)
        }
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
            throw refused(.unavailable, "the caller's credentials cannot be read from the socket", method: method)
        }
        guard rateLimiter.allow(uid: credentials.uid) else {
            throw refused(.resourceExhausted, "too many Workload API calls from uid \(credentials.uid): at most \(rateLimiter.perSecond) per second", method: method)
        }
        // No start time: the process that connected was gone when the stream was accepted, and
        // its pid may already name another process.
        guard let pinned = credentials.startTicks else {
            logger.info("workload caller gone before it was pinned", metadata: ["method": "\(method)", "caller": "\(credentials)"])
            throw raced("the process that connected is gone", method: method)
        }
        if attestationDelay > .zero { try await Task.sleep(for: attestationDelay) }
        let attestation: UnixWorkloadAttestor.Attestation
        do { attestation = try await attestor.attest(pid: credentials.pid) } catch {
            switch error.code {
            case .processGone:
                logger.info("workload caller gone during attestation", metadata: ["method": "\(method)", "caller": "\(credentials)", "error": "\(error)"])
                throw raced("the calling process is gone or changed while it was attested", method: method)
            case .unreadable:
                // Not the caller's doing: it may retry (SPIRE answers Unavailable here too).
                logger.warning("workload attestation failed", metadata: ["method": "\(method)", "caller": "\(credentials)", "error": "\(error)"])
                throw refused(.unavailable, "workload attestation failed: \(error.message)", method: method)
            }
        }
        // The socket's credentials were fixed at connect; the process must still be that one.
        if pinned != attestation.process.startTicks {
            logger.notice("workload pid reused since it connected", metadata: ["method": "\(method)", "caller": "\(credentials)"])
            throw raced("the process that connected is gone: its pid now names another process", method: method)
        }
        guard attestation.process.uid == credentials.uid, attestation.process.gid == credentials.gid else {
            throw raced("the calling process changed its credentials since it connected", method: method)
        }
        return Set(attestation.selectors)
    }

    /// Counts a call refused with `code` and returns the error to throw.
    func refused(_ code: RPCError.Code, _ message: String, method: String) -> RPCError {
        metrics.workloadCall(method: method, outcome: Self.outcome(code))
        return RPCError(code: code, message: message)
    }

    /// A caller refused because its process exited or changed around its attestation:
    /// Unauthenticated, counted also as an attestation race.
    func raced(_ message: String, method: String) -> RPCError {
        metrics.attestationRaced()
        return refused(.unauthenticated, message, method: method)
    }

    /// A call's outcome as the metrics label it: the gRPC status name in lower snake case
    /// (`permission_denied`), as `ok` is.
    static func outcome(_ code: RPCError.Code) -> String {
        var label = ""
        for character in "\(code)" {
            if character.isUppercase { label += "_" + character.lowercased() } else { label.append(character) }
        }
        return label
    }

    // MARK: responses

    static let noIdentity = RPCError(code: .permissionDenied, message: "no identity issued")

    /// The caller's lookup (identities and bundles) once every matching entry has a current SVID, waiting up to
    /// ``svidWait`` for the minter; after that, those that have one. No matching entry:
    /// PermissionDenied; matching entries but no current SVID at all (the server unreachable
    /// and the SVIDs expired): Unavailable.
    func currentIdentities(for selectors: Set<Selector>) async throws -> WorkloadIdentityCache.Lookup {
        let deadline = ContinuousClock.now + svidWait
        while true {
            // A caller that went away (or a server shutting down) stops the wait: without this
            // the cancelled waits below return at once and the loop would spin to the deadline.
            try Task.checkCancellation()
            // One actor call: the identities, the bundles and the generation to wait past agree.
            let lookup = await cache.lookup(selectors, at: now())
            let generation = lookup.generation
            guard lookup.matching > 0 else { throw Self.noIdentity }
            if lookup.pending == 0 { return lookup }
            if ContinuousClock.now >= deadline {
                guard !lookup.identities.isEmpty else {
                    throw RPCError(code: .unavailable, message: "no current X.509-SVID for the caller's \(lookup.matching) identit\(lookup.matching == 1 ? "y" : "ies"): the agent could not get one from its server")
                }
                return lookup
            }
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await cache.waitForChange(after: generation) }
                group.addTask { try? await Task.sleep(until: deadline) }
                await group.next()
                group.cancelAll()
            }
        }
    }

    @Sendable func x509Response(for selectors: Set<Selector>) async throws -> X509SVIDResponse {
        let lookup = try await currentIdentities(for: selectors)
        let (identities, federated) = (lookup.identities, lookup.federated)
        let bundleDER = Data(lookup.bundle.x509AuthoritiesDER())
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
        let entries = await cache.matchingEntries(selectors, at: now())
        guard !entries.isEmpty else { throw Self.noIdentity }
        var bundles = [await cache.bundle]
        let federated = await cache.federated
        for domain in Set(entries.flatMap(\.federatesWith)).sorted() {
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
        let first: Message
        do { first = try await build(selectors) } catch let error as RPCError {
            metrics.workloadCall(method: method, outcome: Self.outcome(error.code))
            throw error
        }
        metrics.workloadCall(method: method, outcome: "ok")
        return StreamingServerResponse { writer in
            try await follow(first: first, context: context, writer: writer) { try await build(selectors) }
            return [:]
        }
    }

    private func delivered(_ message: some SwiftProtobuf.Message) {
        if let response = message as? X509SVIDResponse { metrics.svidsDelivered(response.svids.count) }
    }

    /// Writes `first`, then the fresh state after every cache change that alters it, until the
    /// RPC is cancelled; a state that throws (no identity left) ends the stream with that error.
    func follow<Message: SwiftProtobuf.Message & Equatable>(first: Message, context: ServerContext, writer: RPCWriter<Message>,
                                                             _ current: @escaping @Sendable () async throws -> Message) async throws {
        try await writer.write(first)
        delivered(first)
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
                        delivered(fresh)
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

/// A token bucket per caller uid: `perSecond` calls a second, bursts up to that many.
final class CallerRateLimiter: Sendable {
    let perSecond: Int
    private struct Bucket { var tokens: Double; var at: ContinuousClock.Instant }
    private let buckets = Mutex<[UInt32: Bucket]>([:])

    init(perSecond: Int) { self.perSecond = max(1, perSecond) }

    func allow(uid: UInt32) -> Bool {
        let now = ContinuousClock.now
        let rate = Double(perSecond)
        return buckets.withLock { buckets in
            var bucket = buckets[uid] ?? Bucket(tokens: rate, at: now)
            let elapsed = now - bucket.at
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(rate, bucket.tokens + seconds * rate)
            bucket.at = now
            guard bucket.tokens >= 1 else { buckets[uid] = bucket; return false }
            bucket.tokens -= 1
            buckets[uid] = bucket
            if buckets.count > 10_000 { buckets = buckets.filter { now - $0.value.at < .seconds(10) } }
            return true
        }
    }
}

/// Mints a JWT-SVID for one of the agent's entries (the agent's server does it).
public protocol JWTSVIDMinting: Sendable {
    func mintJWTSVID(entry: RegistrationEntry, audience: [String]) async throws -> (token: String, expiresAt: Date)
}

/// JWT-SVIDs per (entry, audience set), reused until half their life has passed.
actor JWTSVIDCache {
    private struct Key: Hashable { let entryID: String; let spiffeID: String; let audience: [String] }
    private struct Held { let token: String; let refreshAt: Date; let expiresAt: Date }
    private var held: [Key: Held] = [:]

    func token(for entry: RegistrationEntry, audience: [String], now: Date,
               mint: () async throws -> (token: String, expiresAt: Date)) async throws -> String {
        let key = Key(entryID: entry.id, spiffeID: entry.spiffeID.uri, audience: Array(Set(audience)).sorted())
        if let cached = held[key], cached.refreshAt > now { return cached.token }
        let (token, expiresAt) = try await mint()
        held[key] = Held(token: token, refreshAt: now.addingTimeInterval(expiresAt.timeIntervalSince(now) / 2), expiresAt: expiresAt)
        if held.count > 10_000 { held = held.filter { $0.value.expiresAt > now } }
        return token
    }
}
