import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import SPIFFEBundle
import SPIFFEIdentity
import WritConfig
import SwiftASN1
import WritAgentAPI
import WritModel
import WritNodeAttestation
import Synchronization
import X509

/// What the agent knows about itself, for `writ agent healthcheck`, the debug command and
/// `/readyz`.
public actor AgentStatus {
    public private(set) var agentID: SPIFFEID?
    public private(set) var agentSVIDExpiresAt: Date?
    public private(set) var connected = false
    public private(set) var lastSyncAt: Date?
    public private(set) var revision: Int64 = 0
    public private(set) var lastError: String?
    public private(set) var synced = false
    public let startedAt = Date()

    public init() {}

    func attested(_ credentials: AgentCredentials) {
        agentID = credentials.id
        agentSVIDExpiresAt = credentials.notAfter
    }

    func connection(_ open: Bool) { connected = open }

    func synced(revision: Int64) {
        self.revision = revision
        lastSyncAt = Date()
        synced = true
        lastError = nil
    }

    func failed(_ message: String) { lastError = message }

    /// Healthy: the agent holds an unexpired SVID of its own and has synced with its server.
    public func healthy(at now: Date) -> Bool {
        synced && (agentSVIDExpiresAt.map { $0 > now } ?? false)
    }
}

/// The node agent's work with its server: attest (or reuse the stored agent SVID), then in one
/// session at a time — a TLS 1.3 connection on which the server is checked to be
/// `spiffe://<td>/writ/server` — follow the sync stream into the workload cache, mint the
/// workload X.509-SVIDs the cache needs (keys from the pool, only CSRs leave the process),
/// rotate them at half-life with jitter, and renew the agent SVID at half-life. A lost session is
/// retried with jittered exponential backoff while the cache keeps serving what it holds.
public struct NodeAgent: Sendable, JWTSVIDMinting {
    let options: AgentOptions
    let cache: WorkloadIdentityCache
    let keys: KeyPool
    let metrics: AgentMetrics
    public let status: AgentStatus
    let link: ServerLink
    let logger: Logger

    /// Checks the options' files and the stored state; nothing is contacted yet.
    public init(options: AgentOptions, cache: WorkloadIdentityCache, keys: KeyPool, metrics: AgentMetrics, status: AgentStatus, logger: Logger) throws(AgentError) {
        self.options = options
        self.cache = cache
        self.keys = keys
        self.metrics = metrics
        self.status = status
        self.logger = logger
        let bootstrap: ServerTrust
        switch options.bootstrap {
        case .bundleFile(let path): bootstrap = try ServerTrust.bundleFile(path)
        case .rootSHA256(let hex): bootstrap = ServerTrust(anchors: .rootSHA256(hex), trustDomain: nil)
        case .insecure: bootstrap = ServerTrust(anchors: .insecure, trustDomain: nil)
        }
        var trust = bootstrap
        if let stored = try AgentCredentials.loadBundle(from: options.dataDirectory), !stored.isEmpty {
            let domain = (try? AgentCredentials.load(from: options.dataDirectory))??.id.trustDomain ?? bootstrap.trustDomain
            trust = ServerTrust(anchors: .authorities(stored), trustDomain: domain)
        }
        link = ServerLink(trust: trust, bootstrap: bootstrap, server: options.server, logger: logger)
    }

    /// Works until cancelled. `onSynced` is called once, after the first complete sync.
    /// Throws only when the node cannot attest for a reason retrying will not fix.
    public func run(onSynced: @escaping @Sendable () -> Void) async throws {
        await keys.fill()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await expireLoop() }
            group.addTask { try await serve(onSynced: onSynced) }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// Drops expired SVIDs every second so that streams see them go, whether or not the server
    /// can be reached.
    func expireLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            await cache.dropExpired(at: Date())
            metrics.cacheSize(entries: await cache.entryCount, svids: await cache.svidCount)
        }
    }

    func serve(onSynced: @escaping @Sendable () -> Void) async throws {
        var credentials = try await establish()
        var backoff = Backoff()
        let announced = OnceFlag()
        while !Task.isCancelled {
            if credentials.notAfter <= Date().addingTimeInterval(5) {
                logger.warning("the agent SVID has expired: attesting again", metadata: ["agent_id": "\(credentials.id)"])
                credentials = try await attestWithRetry()
            }
            let started = ContinuousClock.now
            do {
                credentials = try await session(credentials) {
                    if announced.set() { onSynced() }
                }
                backoff.reset()
                metrics.serverConnection(result: "renewed")
                continue
            } catch is CancellationError {
                return
            } catch let error as RPCError where error.code == .permissionDenied || error.code == .unauthenticated {
                metrics.serverConnection(result: "refused")
                await status.failed("the server refused the agent: \(error.message)")
                logger.error("the server refused the agent SVID", metadata: ["code": "\(error.code)", "reason": "\(error.message)"])
                if case .none = options.attestation {} else {
                    do { credentials = try await attestWithRetry() } catch is CancellationError { return }
                }
            } catch {
                metrics.serverConnection(result: "failed")
                await status.failed("\(error)")
                logger.warning("session with the server ended", metadata: ["server": "\(options.server)", "error": "\(error)"])
            }
            await status.connection(false)
            metrics.connected(false)
            if link.verificationFailures >= 3 { link.rebootstrap() }
            if ContinuousClock.now - started > .seconds(30) { backoff.reset() }
            do { try await backoff.wait() } catch { return }
        }
    }

    // MARK: the agent's own identity

    /// The stored agent SVID if it is still valid; otherwise a fresh attestation.
    func establish() async throws -> AgentCredentials {
        if let stored = try AgentCredentials.load(from: options.dataDirectory) {
            if stored.notAfter > Date().addingTimeInterval(5) {
                logger.info("using the stored agent SVID", metadata: ["agent_id": "\(stored.id)", "expires_at": "\(stored.notAfter)"])
                await status.attested(stored)
                return stored
            }
            logger.notice("the stored agent SVID has expired: attesting again", metadata: ["agent_id": "\(stored.id)"])
        }
        return try await attestWithRetry()
    }

    /// Attests, retrying while the server cannot be reached; a refusal (a used or unknown join
    /// token, an untrusted node certificate) is final and thrown.
    func attestWithRetry() async throws -> AgentCredentials {
        var backoff = Backoff()
        while true {
            do { return try await attest() } catch let error as RPCError where [.unavailable, .deadlineExceeded, .resourceExhausted, .unknown].contains(error.code) {
                logger.warning("attestation failed; retrying", metadata: ["code": "\(error.code)", "reason": "\(error.message)", "cause": "\(error.cause.map { "\($0)" } ?? "-")"])
            } catch let error as RPCError {
                throw AgentError("node attestation refused by the server (\(error.code)): \(error.message)")
            }
            if link.verificationFailures >= 3 { link.rebootstrap() }
            try await backoff.wait()
        }
    }

    func attest() async throws -> AgentCredentials {
        let key = await keys.take()
        let csr = try CSRBuilder.make(key)
        var params = Writ_Agent_V1_AttestParams()
        params.csr = Data(csr)
        var respond: (@Sendable ([UInt8]) throws -> [UInt8])?
        switch options.attestation {
        case .joinToken(let token):
            params.type = "join_token"
            params.payload = Data(token.utf8)
        case .x509pop(let certificatePath, let keyPath):
            let node = try NodeKey.load(certificate: certificatePath, key: keyPath)
            params.type = "x509pop"
            params.payload = Data(node.chainDER.joined())
            respond = { nonce in try node.sign(nonce) }
        case .none:
            throw AgentError("no stored agent SVID and no way to attest: give --join-token or --x509pop-cert/--x509pop-key")
        }
        let request = params
        let answer = respond
        let transport = try link.transport(credentials: nil)
        let result = try await withGRPCClient(transport: transport) { grpc in
            let client = Writ_Agent_V1_AgentAPI.Client(wrapping: grpc)
            let (nonces, delivered) = AsyncStream.makeStream(of: [UInt8].self)
            var options = CallOptions.defaults
            options.timeout = .seconds(30)
            return try await client.attest(options: options, requestProducer: { writer in
                var first = Writ_Agent_V1_AttestRequest()
                first.params = request
                try await writer.write(first)
                guard let answer else { return }
                for await nonce in nonces {
                    var reply = Writ_Agent_V1_AttestRequest()
                    reply.challengeResponse = Data(try answer(nonce))
                    try await writer.write(reply)
                    break
                }
            }, onResponse: { response in
                defer { delivered.finish() }
                for try await message in response.messages {
                    switch message.step {
                    case .challenge(let nonce)?: delivered.yield(Array(nonce))
                    case .result(let result)?: return result
                    case nil: break
                    }
                }
                throw RPCError(code: .unavailable, message: "the server ended attestation without a result")
            })
        }
        let credentials = try AgentCredentials(chainDER: result.svidChain.map { Array($0) }, key: key)
        if let expected = link.trust.trustDomain, credentials.id.trustDomain != expected {
            throw AgentError("the server issued `\(credentials.id)`, outside the trust domain `\(expected)` of the bootstrap bundle")
        }
        if result.hasBundle {
            let bundle = try Self.bundle(from: result.bundle)
            guard bundle.trustDomain == credentials.id.trustDomain else {
                throw AgentError("the server sent the bundle of `\(bundle.trustDomain)` for an agent of `\(credentials.id.trustDomain)`")
            }
            try AgentCredentials.saveBundle(bundle, to: options.dataDirectory)
            link.trust(bundle)
            await cache.setBundle(bundle)
        }
        try credentials.save(to: options.dataDirectory)
        await status.attested(credentials)
        logger.info("node attested", metadata: ["agent_id": "\(credentials.id)", "expires_at": "\(credentials.notAfter)",
                                                "selectors": "\(result.selectors.map { "\($0.type):\($0.value)" })"])
        return credentials
    }

    // MARK: a session

    /// One connection's work; returns the renewed credentials when the agent SVID was renewed
    /// (the caller reconnects with them), throws when the connection is lost.
    func session(_ credentials: AgentCredentials, onSynced: @escaping @Sendable () -> Void) async throws -> AgentCredentials {
        let transport = try link.transport(credentials: credentials)
        return try await withGRPCClient(transport: transport) { grpc in
            let client = Writ_Agent_V1_AgentAPI.Client(wrapping: grpc)
            link.setClient(client)
            defer { link.setClient(nil) }
            let renewing = RenewalInFlight()
            return try await withThrowingTaskGroup(of: AgentCredentials?.self) { group in
                group.addTask { try await follow(client, onSynced: onSynced); return nil }
                group.addTask { try await mint(client); return nil }
                group.addTask { try await renew(client, credentials, inFlight: renewing) }
                defer { group.cancelAll() }
                var superseded: (any Error)? = nil
                while true {
                    do {
                        guard let outcome = try await group.next() else { break }
                        if let renewed = outcome { return renewed }
                    } catch {
                        // Once the server has renewed the agent SVID it ends this connection's
                        // streams ("it was renewed: use the current one"), possibly before the
                        // renewal's answer is through (its files are written with fsync). While a
                        // renewal is in flight, such an error waits for the renewal's outcome.
                        guard renewing.isSet else { throw error }
                        if superseded == nil { superseded = error }
                        logger.debug("a stream ended while the agent SVID is being renewed; waiting for the renewal", metadata: ["error": "\(error)"])
                    }
                }
                if let superseded { throw superseded }
                throw AgentError("the session ended")
            }
        }
    }

    /// Applies the sync stream to the cache until it ends.
    func follow(_ client: ServerLink.Client, onSynced: @escaping @Sendable () -> Void) async throws {
        var request = Writ_Agent_V1_SyncRequest()
        request.afterRevision = await status.revision
        try await client.sync(request) { response in
            var snapshot: [RegistrationEntry] = []
            for try await message in response.messages {
                await status.connection(true)
                metrics.connected(true)
                if message.hasBundle {
                    let bundle = try Self.bundle(from: message.bundle)
                    if bundle.trustDomain == link.trust.trustDomain || link.trust.trustDomain == nil {
                        try AgentCredentials.saveBundle(bundle, to: options.dataDirectory)
                        link.trust(bundle)
                        await cache.setBundle(bundle)
                        logger.info("trust bundle updated", metadata: ["sequence": "\(bundle.sequenceNumber ?? 0)", "roots": "\(bundle.x509Authorities.count)"])
                    } else {
                        logger.error("ignored a bundle for another trust domain", metadata: ["trust_domain": "\(bundle.trustDomain)"])
                    }
                }
                if message.federatedBundlesChanged {
                    var federated: [TrustDomain: TrustBundle] = [:]
                    for wire in message.federatedBundles {
                        do {
                            let bundle = try Self.bundle(from: wire)
                            federated[bundle.trustDomain] = bundle
                        } catch { logger.error("ignored a federated bundle that does not parse", metadata: ["error": "\(error)"]) }
                    }
                    await cache.setFederated(federated)
                }
                var entries: [RegistrationEntry] = []
                for wire in message.entries {
                    do { entries.append(try wire.registrationEntry()) } catch {
                        logger.error("ignored an entry that does not parse", metadata: ["error": "\(error)"])
                    }
                }
                if message.snapshot {
                    snapshot += entries
                    if message.complete {
                        await cache.replaceEntries(snapshot)
                        snapshot = []
                    }
                } else {
                    await cache.applyEntries(changed: entries, removed: message.removedEntryIds)
                }
                if message.complete {
                    await status.synced(revision: message.revision)
                    onSynced()
                }
            }
        }
        throw RPCError(code: .unavailable, message: "the server ended the sync stream")
    }

    /// Mints what the cache needs, batch by batch, until cancelled.
    func mint(_ client: ServerLink.Client) async throws {
        var refusedUntil: [String: Date] = [:]
        while !Task.isCancelled {
            let now = Date()
            refusedUntil = refusedUntil.filter { $0.value > now }
            let work = await cache.mintingWork(at: now, limit: options.svidCacheLimit).filter { refusedUntil[$0.id] == nil }
            if work.isEmpty {
                let next = await cache.nextRotation.map { $0.timeIntervalSince(now) } ?? 1
                await cache.waitForDemand(timeout: .milliseconds(Int64(min(1000, max(20, next * 1000)))))
                continue
            }
            for start in stride(from: 0, to: work.count, by: 500) {
                let batch = Array(work[start..<min(work.count, start + 500)])
                var keys: [P256.Signing.PrivateKey] = []
                var request = Writ_Agent_V1_BatchNewX509SVIDRequest()
                for entry in batch {
                    let key = await self.keys.take()
                    keys.append(key)
                    var params = Writ_Agent_V1_X509SVIDParams()
                    params.entryID = entry.id
                    params.csr = Data(try CSRBuilder.make(key))
                    request.params.append(params)
                }
                let results = try await client.batchNewX509SVID(request).results
                var ok = 0
                for (index, result) in results.enumerated() where index < batch.count {
                    let entry = batch[index]
                    if result.hasError {
                        logger.warning("SVID refused", metadata: ["entry_id": "\(entry.id)", "code": "\(result.error.code)", "reason": "\(result.error.message)"])
                        refusedUntil[entry.id] = Date().addingTimeInterval(5)
                        metrics.minted(1, result: result.error.code)
                        continue
                    }
                    let chain = result.svidChain.map { Array($0) }
                    guard let leafDER = chain.first, let leaf = try? Certificate(derEncoded: leafDER),
                          leaf.publicKey == Certificate.PublicKey(keys[index].publicKey) else {
                        logger.error("the server returned an SVID that does not carry the requested key", metadata: ["entry_id": "\(entry.id)"])
                        refusedUntil[entry.id] = Date().addingTimeInterval(5)
                        metrics.minted(1, result: "bad_svid")
                        continue
                    }
                    // Half the life from now (the CA backdates notBefore for clock skew, so the
                    // certificate's own window would rotate early), brought forward by up to a
                    // tenth so that rotations spread.
                    let now = Date()
                    let life = leaf.notValidAfter.timeIntervalSince(now)
                    let rotateAt = now.addingTimeInterval(life * (0.5 - Double.random(in: 0..<0.1)))
                    await cache.setSVID(WorkloadX509Identity(entry: entry, chainDER: chain, privateKeyPKCS8: Array(keys[index].derRepresentation),
                                                             expiresAt: leaf.notValidAfter, rotateAt: rotateAt))
                    ok += 1
                }
                if ok > 0 { metrics.minted(ok, result: "ok") }
            }
        }
    }

    /// Sleeps until the agent SVID's half-life (minus jitter), then renews it for a new key.
    /// `inFlight` is true from the moment the renewal request is sent (the session then treats
    /// the server ending the old connection's streams as expected).
    func renew(_ client: ServerLink.Client, _ credentials: AgentCredentials, inFlight: RenewalInFlight) async throws -> AgentCredentials {
        let life = credentials.notAfter.timeIntervalSince(credentials.notBefore)
        let at = credentials.renewAt.addingTimeInterval(-Double.random(in: 0..<(life * 0.05)))
        let wait = at.timeIntervalSinceNow
        if wait > 0 { try await Task.sleep(for: .milliseconds(Int64(wait * 1000))) }
        let key = await keys.take()
        var request = Writ_Agent_V1_RenewAgentRequest()
        request.csr = Data(try CSRBuilder.make(key))
        let response: Writ_Agent_V1_RenewAgentResponse
        inFlight.set(true)
        do { response = try await client.renewAgent(request) } catch {
            inFlight.set(false)
            metrics.agentRenewal(result: "failed")
            throw error
        }
        let renewed: AgentCredentials
        do {
            if options.renewalSaveDelay > .zero { try await Task.sleep(for: options.renewalSaveDelay) }
            renewed = try AgentCredentials(chainDER: response.svidChain.map { Array($0) }, key: key)
            guard renewed.id == credentials.id else {
                throw AgentError("the server renewed the agent SVID as `\(renewed.id)`, not `\(credentials.id)`")
            }
            try renewed.save(to: options.dataDirectory)
        } catch {
            // The renewal's own failure is what the session reports, not the streams it ended.
            inFlight.set(false)
            metrics.agentRenewal(result: "failed")
            throw error
        }
        await status.attested(renewed)
        metrics.agentRenewal(result: "ok")
        logger.info("agent SVID renewed", metadata: ["agent_id": "\(renewed.id)", "expires_at": "\(renewed.notAfter)"])
        return renewed
    }

    // MARK: JWT-SVIDs for workloads

    public func mintJWTSVID(entry: RegistrationEntry, audience: [String]) async throws -> (token: String, expiresAt: Date) {
        guard let client = link.client else { throw AgentError("the agent is not connected to its server") }
        var request = Writ_Agent_V1_NewJWTSVIDRequest()
        request.entryID = entry.id
        request.audience = audience
        var options = CallOptions.defaults
        options.timeout = .seconds(5)
        options.waitForReady = false
        let response = try await client.newJWTSVID(request, options: options)
        return (response.token, Date(timeIntervalSince1970: TimeInterval(response.expiresAt)))
    }

    // MARK: helpers

    static func bundle(from wire: Writ_Agent_V1_Bundle) throws -> TrustBundle {
        let domain: TrustDomain
        do { domain = try TrustDomain(parsing: wire.trustDomain) } catch {
            throw AgentError("a bundle names the trust domain `\(wire.trustDomain.prefix(64))`: \(error.message)")
        }
        do { return try TrustBundle.parseSPIFFEJSON(Array(wire.spiffeBundle), trustDomain: domain) } catch {
            throw AgentError("the bundle of `\(domain)` does not parse: \(error.message)")
        }
    }
}

/// PKCS#10 requests the agent sends: only the public key matters to the server.
enum CSRBuilder {
    static func make(_ key: P256.Signing.PrivateKey) throws -> [UInt8] {
        let request = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName("writ agent") }, privateKey: Certificate.PrivateKey(key),
            attributes: CertificateSigningRequest.Attributes(), signatureAlgorithm: .ecdsaWithSHA256)
        var serializer = DER.Serializer()
        try serializer.serialize(request)
        return serializer.serializedBytes
    }
}

/// The node's x509pop credentials: its certificate chain and the key that answers challenges.
struct NodeKey: Sendable {
    let chainDER: [[UInt8]]
    let sign: @Sendable ([UInt8]) throws -> [UInt8]

    static func load(certificate: String, key: String) throws(AgentError) -> NodeKey {
        guard let chainText = FileManager.default.contents(atPath: certificate) else { throw AgentError("cannot read the x509pop certificate `\(certificate)`") }
        guard let keyData = FileManager.default.contents(atPath: key) else { throw AgentError("cannot read the x509pop key `\(key)`") }
        let chain: [Certificate]
        do { chain = try TrustBundle.certificates(pem: String(decoding: chainText, as: UTF8.self)) } catch {
            throw AgentError("the x509pop certificate `\(certificate)`: \(error.message)")
        }
        let keyText = String(decoding: keyData, as: UTF8.self)
        if let p256 = try? P256.Signing.PrivateKey(pemRepresentation: keyText) {
            return NodeKey(chainDER: chain.map(TrustBundle.der)) { nonce in try X509PopChallenge.sign(nonce: nonce, with: p256) }
        }
        if let p384 = try? P384.Signing.PrivateKey(pemRepresentation: keyText) {
            return NodeKey(chainDER: chain.map(TrustBundle.der)) { nonce in try X509PopChallenge.sign(nonce: nonce, with: p384) }
        }
        throw AgentError("the x509pop key `\(key)` is not a P-256 or P-384 private key in PEM")
    }
}

/// Exponential backoff with jitter: the n-th wait is drawn uniformly from the upper half of
/// a ceiling that starts at 0.5 s and doubles up to 30 s, so agents that lost their server
/// together do not come back together.
struct Backoff {
    private var attempt = 0

    mutating func reset() { attempt = 0 }

    /// The ceiling of the next wait, in seconds.
    var ceiling: Double { min(30.0, 0.5 * pow(2.0, Double(attempt))) }

    /// The next wait, advancing the attempt count.
    mutating func nextDelay<Generator: RandomNumberGenerator>(using generator: inout Generator) -> Duration {
        let top = ceiling
        attempt = min(attempt + 1, 10)
        return .milliseconds(Int64(Double.random(in: (top / 2)...top, using: &generator) * 1000))
    }

    mutating func wait() async throws {
        var generator = SystemRandomNumberGenerator()
        try await Task.sleep(for: nextDelay(using: &generator))
    }
}

/// True the first time ``set()`` is called.
final class OnceFlag: Sendable {
    private let flag = Mutex(false)
    func set() -> Bool { flag.withLock { done in defer { done = true }; return !done } }
}

/// Whether a session's agent-SVID renewal has been sent to the server (shared by its tasks).
final class RenewalInFlight: Sendable {
    private let flag = Mutex(false)
    var isSet: Bool { flag.withLock { $0 } }
    func set(_ value: Bool) { flag.withLock { $0 = value } }
}
