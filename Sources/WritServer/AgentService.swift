import Crypto
import Foundation
import GRPCCore
import Logging
import SPIFFEBundle
import SPIFFEIdentity
import SPIFFEJWT
import SPIFFEX509
import SwiftASN1
import Synchronization
import WritAgentAPI
import WritAudit
import WritCA
import WritModel
import WritNodeAttestation
import WritStore
import X509

/// The agent API (`writ.agent.v1.AgentAPI`): attestation, agent SVID renewal, the registry sync
/// stream and SVID signing for the calling agent's own entries.
///
/// Every call but `Attest` is authenticated by the agent SVID of its connection (see
/// ``PeerRegistry``) and then re-checked against the agent's record in the datastore: an
/// evicted or banned agent, or an SVID that is not the agent's current one, is refused at once.
struct AgentService: Writ_Agent_V1_AgentAPI.SimpleServiceProtocol {
    let store: any Datastore
    let cache: RegistryCache
    let ca: CertificateAuthority
    /// The shared bundle served to agents.
    let bundle: SharedBundle
    let peers: PeerRegistry
    let rateLimiter: AttestationRateLimiter
    let syncMemory: SyncMemory
    /// The CAs that vouch for nodes in x509pop attestation; nil refuses x509pop.
    let x509pop: X509PopTrust?
    let metrics: ServerMetrics
    let options: ServerOptions
    let logger: Logger
    /// The audit log: attestations and agent renewals carry their event into their datastore
    /// write; SVIDs for entries are handed out only once their event is committed.
    let audit: AuditLog

    /// At most this many SVIDs per `BatchNewX509SVID` call.
    static let maximumBatch = 1000
    /// A sync page's entries are cut before their encoded size passes this (gRPC's default
    /// limit is 4 MiB; the API promises under 1 MiB per message).
    static let pageBudget = 768 * 1024

    private var serverID: SPIFFEID { try! SPIFFEID(trustDomain: options.trustDomain, path: "/writ/server") }

    // MARK: Attest

    func attest(request: RPCAsyncSequence<Writ_Agent_V1_AttestRequest, any Error>, response: RPCWriter<Writ_Agent_V1_AttestResponse>,
                context: ServerContext) async throws {
        let source = Self.host(of: context.remotePeer)
        var type = "unknown"
        // What the node claimed, for the audit event: the token's id (or, refused, the SHA-256
        // of what was presented) or the node certificate's agent ID.
        var claimed = source
        var agentIDForAudit: SPIFFEID?
        do {
            var messages = request.makeAsyncIterator()
            guard let first = try await messages.next(), case .params(let params)? = first.step else {
                throw RPCError(code: .invalidArgument, message: "the first Attest message must carry `params`")
            }
            type = ["join_token", "x509pop"].contains(params.type) ? params.type : "unknown"
            guard rateLimiter.allow(source: source) else {
                throw RPCError(code: .resourceExhausted, message: "too many attestations from \(source): at most \(options.attestRatePerMinute) per minute")
            }
            // Check the CSR before using up anything single-use.
            do { _ = try SVIDCertificateRequest(derEncoded: Array(params.csr)) } catch {
                throw RPCError(code: .invalidArgument, message: "invalid `params.csr`: \(error.message)")
            }
            let agentID: SPIFFEID
            let selectors: [Selector]
            let canReattest: Bool
            switch params.type {
            case "join_token":
                guard let secret = String(bytes: params.payload, encoding: .utf8), !secret.isEmpty else {
                    throw RPCError(code: .invalidArgument, message: "a join_token attestation carries the token as UTF-8 `params.payload`")
                }
                let presented = JoinTokenSecret.hash(of: secret)
                claimed = "sha256:" + presented
                let token: JoinTokenRecord
                do { token = try await store.consumeJoinToken(hash: presented, at: Date()) } catch {
                    if error.code == .tokenRejected { throw RPCError(code: .permissionDenied, message: error.message) }
                    throw Self.unavailable(error)
                }
                agentID = try SPIFFEID(trustDomain: options.trustDomain, path: "/writ/agent/join_token/\(token.id)")
                claimed = token.id
                selectors = [try Selector(type: "join_token", value: "id:\(token.id)")]
                canReattest = false
            case "x509pop":
                let node = try await attestX509Pop(chainDER: Array(params.payload), messages: &messages, response: response)
                agentID = node.agentID(in: options.trustDomain)
                claimed = String(agentID.path.split(separator: "/").last ?? "")
                selectors = node.selectors
                canReattest = true
            default:
                throw RPCError(code: .invalidArgument, message: "unknown attestation type `\(params.type.prefix(64))`: use `join_token` or `x509pop`")
            }
            agentIDForAudit = agentID
            let issued = try await issueAgentSVID(csr: Array(params.csr), id: agentID)
            let record = AgentRecord(id: agentID, attestationType: params.type, selectors: selectors,
                                     serialNumber: Self.hex(issued.leaf.serialNumber.bytes), expiresAt: issued.leaf.notValidAfter,
                                     canReattest: canReattest)
            let time = Date()
            let event = try ServerAuditEvents.nodeAttest(at: time, attestor: params.type, claimed: claimed, agentID: agentID, outcome: .allowed,
                                                     serial: record.serialNumber, expiresAt: record.expiresAt, selectors: selectors, source: source).record()
            do { _ = try await store.attestAgent(record, at: time, audit: [event]) } catch {
                if error.code == .permissionDenied { throw RPCError(code: .permissionDenied, message: error.message) }
                throw Self.unavailable(error)
            }
            await audit.committedElsewhere()
            var result = Writ_Agent_V1_AttestResult()
            result.agentID = agentID.uri
            result.svidChain = issued.chainDER.map { Data($0) }
            result.selectors = selectors.map(Writ_Agent_V1_Selector.init)
            result.bundle = await wireBundle()
            var message = Writ_Agent_V1_AttestResponse()
            message.result = result
            try await response.write(message)
            metrics.attestation(type: type, result: "ok")
            metrics.svidSigned(kind: "agent")
            logger.info("agent attested", metadata: ["agent_id": "\(agentID)", "type": "\(type)", "source": "\(source)"])
        } catch let error as RPCError {
            metrics.attestation(type: type, result: "\(error.code)")
            logger.notice("attestation refused", metadata: ["type": "\(type)", "source": "\(source)", "code": "\(error.code)", "reason": "\(error.message)"])
            // A refusal is recorded too (a node hammering the server is rate limited first, and
            // those refusals are counted in metrics only, so the log cannot be flooded).
            if error.code != .resourceExhausted {
                let outcome: AuditOutcome = [.unavailable, .internalError].contains(error.code) ? .error : .denied
                let event = ServerAuditEvents.nodeAttest(at: Date(), attestor: type, claimed: claimed, agentID: agentIDForAudit, outcome: outcome,
                                                         reason: error.message, source: source)
                do { _ = try await audit.record(event) } catch {
                    logger.error("the audit event of a refused attestation could not be stored", metadata: ["error": "\(error)"])
                }
            }
            throw error
        }
    }

    /// Verifies the node chain, sends a challenge and checks the node's signature over it.
    /// The nonce lives only in this call, so a response is bound to this stream and usable once.
    private func attestX509Pop(chainDER: [UInt8], messages: inout RPCAsyncSequence<Writ_Agent_V1_AttestRequest, any Error>.AsyncIterator,
                               response: RPCWriter<Writ_Agent_V1_AttestResponse>) async throws -> X509PopNode {
        guard let x509pop else {
            throw RPCError(code: .failedPrecondition, message: "this server trusts no CA for x509pop attestation (set x509pop.ca_bundle); use a join token")
        }
        let node: X509PopNode
        do { node = try await x509pop.verify(chainDER: chainDER, at: Date()) } catch {
            throw RPCError(code: error.code == .malformedEvidence ? .invalidArgument : .permissionDenied, message: error.message)
        }
        let challenge = X509PopChallenge()
        var message = Writ_Agent_V1_AttestResponse()
        message.challenge = Data(challenge.nonce)
        try await response.write(message)
        guard let answer = try await messages.next() else {
            throw RPCError(code: .invalidArgument, message: "the stream ended before the challenge response")
        }
        guard case .challengeResponse(let signature)? = answer.step else {
            throw RPCError(code: .invalidArgument, message: "after the challenge, the next Attest message must carry `challenge_response`")
        }
        do { try challenge.verify(signature: Array(signature), by: node.certificate) } catch {
            throw RPCError(code: .permissionDenied, message: error.message)
        }
        return node
    }

    // MARK: RenewAgent

    func renewAgent(request: Writ_Agent_V1_RenewAgentRequest, context: ServerContext) async throws -> Writ_Agent_V1_RenewAgentResponse {
        let (agent, peer) = try await authenticate(context, method: "RenewAgent")
        let issued = try await issueAgentSVID(csr: Array(request.csr), id: agent.id)
        let time = Date()
        let event = try ServerAuditEvents.x509Issue(at: time, actor: .spiffe(agent.id), id: agent.id.uri, purpose: "agent_renewal", leaf: issued.leaf).record()
        do {
            _ = try await store.renewAgent(id: agent.id, fromSerial: peer.serialNumber, toSerial: Self.hex(issued.leaf.serialNumber.bytes),
                                           expiresAt: issued.leaf.notValidAfter, at: time, audit: [event])
        } catch {
            switch error.code {
            case .conflict, .permissionDenied, .notFound: throw RPCError(code: .permissionDenied, message: error.message)
            default: throw Self.unavailable(error)
            }
        }
        await audit.committedElsewhere()
        metrics.svidSigned(kind: "agent")
        logger.info("agent SVID renewed", metadata: ["agent_id": "\(agent.id)", "expires_at": "\(issued.leaf.notValidAfter)"])
        var reply = Writ_Agent_V1_RenewAgentResponse()
        reply.svidChain = issued.chainDER.map { Data($0) }
        return reply
    }

    // MARK: Sync

    func sync(request: Writ_Agent_V1_SyncRequest, response: RPCWriter<Writ_Agent_V1_SyncResponse>, context: ServerContext) async throws {
        let (agent, peer) = try await authenticate(context, method: "Sync")
        metrics.syncStreams.increment()
        defer { metrics.syncStreams.decrement() }
        try await cache.catchUp()
        let (revision, entries) = await cache.authorizedEntries(for: agent, at: Date())
        var sent: [String: Int64] = [:]
        let bundle = await wireBundle()
        let federated = await cache.federatedBundles(for: entries)
        let federatedWire = FederatedSet(federated)
        if request.afterRevision > 0, let remembered = await syncMemory.recall(agent: agent.id, revision: request.afterRevision) {
            sent = remembered
            try await sendDelta(entries, previous: &sent, revision: revision, bundle: bundle, federated: federatedWire, to: response, force: true)
        } else {
            try await sendSnapshot(entries, revision: revision, bundle: bundle, federated: federatedWire, to: response)
            sent = Dictionary(uniqueKeysWithValues: entries.map { ($0.id, $0.revision) })
        }
        await syncMemory.remember(agent: agent.id, revision: revision, entries: sent)
        // gRPC reports a cancelled RPC (the agent went away, the server shuts down) through the
        // context, not by cancelling this task: race the stream against it so the loop ends.
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [self, sent] in
                try await followChanges(agent: agent, peer: peer, after: revision, sent: sent, bundle: bundle, federated: federatedWire, to: response)
            }
            group.addTask { try await context.cancellation.cancelled }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// Sends a delta after every registry change that concerns `agent` until the task is
    /// cancelled; `sent` is what the agent holds at `after`, `bundle` the bundle it has and
    /// `federated` the foreign bundles it has.
    private func followChanges(agent: AgentRecord, peer: VerifiedPeer, after: Int64, sent: [String: Int64],
                               bundle: Writ_Agent_V1_Bundle, federated: FederatedSet, to response: RPCWriter<Writ_Agent_V1_SyncResponse>) async throws {
        var revision = after
        var sent = sent
        var bundle = bundle
        var federated = federated
        var entries: [RegistrationEntry]
        var agentRevision = await cache.lastAgentChange(agent.id)
        while !Task.isCancelled {
            await cache.waitForChange(after: revision, timeout: .seconds(5))
            if Task.isCancelled { break }
            // The agent's own record changed (evicted, banned, renewed): re-check it.
            let latest = await cache.lastAgentChange(agent.id)
            if latest != agentRevision {
                agentRevision = latest
                _ = try await recheck(agent.id, peer: peer, method: "Sync")
            }
            (revision, entries) = await cache.authorizedEntries(for: agent, at: Date())
            let freshBundle = await wireBundle()
            let bundleChanged = freshBundle.sequence != bundle.sequence
            bundle = freshBundle
            // Only the revisions are compared on every change; the wire form is built when they moved.
            let records = await cache.federatedBundles(for: entries)
            let federatedChanged = FederatedSet.revisions(records) != federated.revisions
            if federatedChanged { federated = FederatedSet(records) }
            try await sendDelta(entries, previous: &sent, revision: revision, bundle: bundleChanged ? bundle : nil,
                                federated: federatedChanged ? federated : nil, to: response, force: bundleChanged || federatedChanged)
            await syncMemory.remember(agent: agent.id, revision: revision, entries: sent)
        }
    }

    private func sendSnapshot(_ entries: [RegistrationEntry], revision: Int64, bundle: Writ_Agent_V1_Bundle, federated: FederatedSet,
                              to response: RPCWriter<Writ_Agent_V1_SyncResponse>) async throws {
        let pages = Self.pages(entries)
        for (index, page) in pages.enumerated() {
            var message = Writ_Agent_V1_SyncResponse()
            message.entries = page
            message.revision = revision
            message.snapshot = true
            message.complete = index == pages.count - 1
            if index == 0 {
                message.bundle = bundle
                message.federatedBundlesChanged = true
                message.federatedBundles = federated.wire
            }
            try await response.write(message)
        }
    }

    /// Sends what changed against `previous` (and updates it); nothing when nothing changed
    /// unless `force`.
    private func sendDelta(_ entries: [RegistrationEntry], previous: inout [String: Int64], revision: Int64, bundle: Writ_Agent_V1_Bundle?,
                           federated: FederatedSet?, to response: RPCWriter<Writ_Agent_V1_SyncResponse>, force: Bool) async throws {
        let changed = entries.filter { previous[$0.id] != $0.revision }
        let current = Set(entries.map(\.id))
        let removed = previous.keys.filter { !current.contains($0) }.sorted()
        guard force || !changed.isEmpty || !removed.isEmpty else { return }
        let pages = Self.pages(changed)
        for (index, page) in pages.enumerated() {
            var message = Writ_Agent_V1_SyncResponse()
            message.entries = page
            message.revision = revision
            message.complete = index == pages.count - 1
            if index == pages.count - 1 { message.removedEntryIds = removed }
            if index == 0, let bundle { message.bundle = bundle }
            if index == 0, let federated {
                message.federatedBundlesChanged = true
                message.federatedBundles = federated.wire
            }
            try await response.write(message)
        }
        previous = Dictionary(uniqueKeysWithValues: entries.map { ($0.id, $0.revision) })
    }

    /// Splits entries into pages whose encoded size stays under ``pageBudget``; always at least
    /// one (possibly empty) page.
    static func pages(_ entries: [RegistrationEntry]) -> [[Writ_Agent_V1_Entry]] {
        var pages: [[Writ_Agent_V1_Entry]] = []
        var page: [Writ_Agent_V1_Entry] = []
        var size = 0
        for entry in entries {
            let wire = Writ_Agent_V1_Entry(entry)
            let entrySize = Self.estimatedSize(wire)
            if !page.isEmpty, size + entrySize > pageBudget {
                pages.append(page)
                page = []
                size = 0
            }
            page.append(wire)
            size += entrySize
        }
        pages.append(page)
        return pages
    }

    /// An upper bound of the entry's protobuf encoding inside a SyncResponse: every string and
    /// nested message costs its bytes plus at most 1 tag byte and 3 length bytes (< 2 MiB), and
    /// each integer or flag at most 11 bytes.
    static func estimatedSize(_ entry: Writ_Agent_V1_Entry) -> Int {
        func string(_ text: String) -> Int { text.utf8.count + 4 }
        var size = 4 + string(entry.id) + string(entry.spiffeID) + string(entry.parentID) + string(entry.hint) + 6 * 11
        for selector in entry.selectors { size += 4 + string(selector.type) + string(selector.value) }
        for name in entry.dnsNames { size += string(name) }
        for domain in entry.federatesWith { size += string(domain) }
        return size
    }

    // MARK: SVIDs

    func batchNewX509SVID(request: Writ_Agent_V1_BatchNewX509SVIDRequest, context: ServerContext) async throws -> Writ_Agent_V1_BatchNewX509SVIDResponse {
        let (agent, _) = try await authenticate(context, method: "BatchNewX509SVID")
        guard request.params.count <= Self.maximumBatch else {
            throw RPCError(code: .invalidArgument, message: "\(request.params.count) SVIDs requested: at most \(Self.maximumBatch) per call")
        }
        try await cache.catchUp()
        var reply = Writ_Agent_V1_BatchNewX509SVIDResponse()
        var events: [AuditEvent] = []
        for params in request.params {
            var result = Writ_Agent_V1_X509SVIDResult()
            result.entryID = params.entryID
            do {
                let entry = try await authorizedEntry(params.entryID, for: agent)
                let ttl = entry.x509SVIDTTL.map { Duration.seconds($0) } ?? options.x509SVIDTTL
                let issued: IssuedX509SVID
                do { issued = try await ca.issueX509SVID(csrDER: Array(params.csr), id: entry.spiffeID, ttl: ttl, dnsNames: entry.dnsNames) } catch {
                    if error.code == .invalidRequest { throw Self.failure("invalid_argument", "invalid CSR for entry `\(entry.id)`: \(error.message)") }
                    throw RPCError(code: .internalError, message: "signing failed: \(error.message)")
                }
                result.svidChain = issued.chainDER.map { Data($0) }
                result.expiresAt = Int64(issued.leaf.notValidAfter.timeIntervalSince1970)
                events.append(ServerAuditEvents.x509Issue(at: Date(), actor: .spiffe(agent.id), id: entry.spiffeID.uri, entryID: entry.id,
                                                          purpose: "entry", leaf: issued.leaf))
            } catch let failure as Writ_Agent_V1_Error {
                result.error = failure
                if failure.code == "permission_denied" {
                    events.append(ServerAuditEvents.x509Issue(at: Date(), actor: .spiffe(agent.id), id: nil, entryID: String(params.entryID.prefix(128)),
                                                              purpose: "entry", outcome: .denied, reason: failure.message))
                }
                logger.notice("X.509-SVID refused", metadata: ["agent_id": "\(agent.id)", "entry_id": "\(params.entryID.prefix(128))", "code": "\(failure.code)"])
            }
            reply.results.append(result)
        }
        // Nothing is handed out before its event is committed.
        try await recordOrRefuse(events, what: "the X.509-SVIDs")
        metrics.svidSigned(kind: "x509", count: reply.results.count(where: { !$0.svidChain.isEmpty }))
        return reply
    }

    /// Records `events` in the audit log, or fails the call (unavailable) when they cannot be
    /// stored: what they describe must not be handed out unrecorded.
    private func recordOrRefuse(_ events: [AuditEvent], what: String) async throws {
        do { _ = try await audit.record(events) } catch {
            logger.error("audit events could not be stored; \(what) are withheld", metadata: ["error": "\(error)"])
            throw RPCError(code: .unavailable, message: "the audit log could not record the issuance, so \(what) are withheld; retry")
        }
    }

    func newJWTSVID(request: Writ_Agent_V1_NewJWTSVIDRequest, context: ServerContext) async throws -> Writ_Agent_V1_NewJWTSVIDResponse {
        let (agent, _) = try await authenticate(context, method: "NewJWTSVID")
        guard !request.audience.isEmpty, request.audience.allSatisfy({ !$0.isEmpty }) else {
            throw RPCError(code: .invalidArgument, message: "`audience` must list at least one non-empty audience")
        }
        try await cache.catchUp()
        let entry: RegistrationEntry
        do { entry = try await authorizedEntry(request.entryID, for: agent) } catch let failure as Writ_Agent_V1_Error {
            logger.notice("JWT-SVID refused", metadata: ["agent_id": "\(agent.id)", "entry_id": "\(request.entryID.prefix(128))", "code": "\(failure.code)"])
            if failure.code == "permission_denied" {
                try await recordOrRefuse([ServerAuditEvents.jwtIssue(at: Date(), actor: .spiffe(agent.id), id: nil, entryID: String(request.entryID.prefix(128)),
                                                                     purpose: "entry", audience: request.audience, outcome: .denied, reason: failure.message)],
                                         what: "the answer")
            }
            throw RPCError(code: failure.code == "not_found" ? .notFound : .permissionDenied, message: failure.message)
        }
        let ttl = entry.jwtSVIDTTL.map { Duration.seconds($0) } ?? options.jwtSVIDTTL
        let svid: JWTSVIDToken
        let claims: JWTSVIDClaims
        do {
            let minted = try await ca.mintJWTSVID(id: entry.spiffeID, audience: request.audience, ttl: ttl)
            svid = JWTSVIDToken(token: minted.token, expiresAt: minted.claims.expiresAt)
            claims = minted.claims
        } catch {
            if error.code == .invalidRequest { throw RPCError(code: .invalidArgument, message: error.message) }
            throw RPCError(code: .internalError, message: "minting failed: \(error.message)")
        }
        try await recordOrRefuse([ServerAuditEvents.jwtIssue(at: Date(), actor: .spiffe(agent.id), id: entry.spiffeID.uri, entryID: entry.id,
                                                             purpose: "entry", audience: request.audience, claims: claims)],
                                 what: "the JWT-SVID")
        metrics.svidSigned(kind: "jwt")
        var reply = Writ_Agent_V1_NewJWTSVIDResponse()
        reply.token = svid.token
        reply.expiresAt = svid.expiresAt
        return reply
    }

    private struct JWTSVIDToken {
        let token: String
        let expiresAt: Int64
    }

    /// The entry, if `agent` may obtain SVIDs for it; otherwise a per-item failure.
    private func authorizedEntry(_ id: String, for agent: AgentRecord) async throws -> RegistrationEntry {
        guard let entry = await cache.entry(id: id) else {
            throw Self.failure("not_found", "no entry `\(id.prefix(128))`")
        }
        guard await cache.isAuthorized(entryID: id, for: agent, at: Date()) else {
            throw Self.failure("permission_denied", "entry `\(id)` is not parented to agent `\(agent.id)` or to a node alias it matches")
        }
        return entry
    }

    // MARK: helpers

    private func issueAgentSVID(csr: [UInt8], id: SPIFFEID) async throws -> IssuedX509SVID {
        do { return try await ca.issueX509SVID(csrDER: csr, id: id, ttl: options.agentSVIDTTL) } catch {
            if error.code == .invalidRequest { throw RPCError(code: .invalidArgument, message: "invalid CSR: \(error.message)") }
            throw RPCError(code: .internalError, message: "signing the agent SVID failed: \(error.message)")
        }
    }

    /// The calling agent's record, if its connection presented its current agent SVID and it is
    /// neither evicted nor banned.
    private func authenticate(_ context: ServerContext, method: String) async throws -> (AgentRecord, VerifiedPeer) {
        guard let peer = peers.identity(remotePeer: context.remotePeer) else {
            metrics.agentCall(method: method, code: "unauthenticated")
            throw RPCError(code: .unauthenticated, message: "\(method) needs mTLS with an agent SVID issued by this server; attest first")
        }
        return (try await recheck(peer.id, peer: peer, method: method), peer)
    }

    private func recheck(_ id: SPIFFEID, peer: VerifiedPeer, method: String) async throws -> AgentRecord {
        let agent: AgentRecord?
        do { agent = try await store.agent(id: id) } catch { throw Self.unavailable(error) }
        func refuse(_ message: String) -> RPCError {
            metrics.agentCall(method: method, code: "permission_denied")
            logger.notice("agent refused", metadata: ["agent_id": "\(id)", "method": "\(method)", "reason": "\(message)"])
            return RPCError(code: .permissionDenied, message: message)
        }
        guard let agent else { throw refuse("agent `\(id)` is not attested (it was evicted or purged): attest again") }
        guard !agent.banned else { throw refuse("agent `\(id)` is banned") }
        guard agent.serialNumber == peer.serialNumber else {
            throw refuse("the SVID with serial \(peer.serialNumber) is not agent `\(id)`'s current SVID (it was renewed): use the current one")
        }
        metrics.agentCall(method: method, code: "ok")
        return agent
    }

    /// The foreign bundles an agent holds: what was sent and at which store revisions.
    struct FederatedSet: Sendable {
        /// Store revision by trust domain name: equal maps mean nothing to send.
        let revisions: [String: Int64]
        let wire: [Writ_Agent_V1_Bundle]

        static func revisions(_ records: [FederatedBundleRecord]) -> [String: Int64] {
            Dictionary(uniqueKeysWithValues: records.map { ($0.trustDomain.name, $0.revision) })
        }

        init(_ records: [FederatedBundleRecord]) {
            revisions = Self.revisions(records)
            wire = records.map { record in
                var wire = Writ_Agent_V1_Bundle()
                wire.trustDomain = record.trustDomain.name
                wire.spiffeBundle = Data(record.document)
                // The document was validated when it was set; it parses.
                if let parsed = try? TrustBundle.parseSPIFFEJSON(record.document, trustDomain: record.trustDomain) {
                    wire.x509Authorities = AgentService.derCertificates(parsed)
                    wire.sequence = Int64(parsed.sequenceNumber ?? 0)
                }
                return wire
            }
        }
    }

    private func wireBundle() async -> Writ_Agent_V1_Bundle {
        let bundle = self.bundle.bundle
        var wire = Writ_Agent_V1_Bundle()
        wire.trustDomain = bundle.trustDomain.name
        wire.spiffeBundle = Data(bundle.spiffeJSON())
        wire.x509Authorities = Self.derCertificates(bundle)
        wire.sequence = Int64(bundle.sequenceNumber ?? 0)
        return wire
    }

    /// Each X.509 authority of `bundle` as DER.
    static func derCertificates(_ bundle: TrustBundle) -> [Data] {
        bundle.x509Authorities.compactMap { certificate in
            var serializer = DER.Serializer()
            guard (try? serializer.serialize(certificate)) != nil else { return nil }
            return Data(serializer.serializedBytes)
        }
    }

    static func failure(_ code: String, _ message: String) -> Writ_Agent_V1_Error {
        var error = Writ_Agent_V1_Error()
        error.code = code
        error.message = message
        return error
    }

    static func unavailable(_ error: StoreError) -> RPCError {
        RPCError(code: .unavailable, message: "datastore: \(error.message)")
    }

    /// The host part of gRPC's peer text (`ipv4:10.0.0.1:5555` → `10.0.0.1`).
    static func host(of peer: String) -> String {
        guard let colon = peer.lastIndex(of: ":") else { return peer }
        var host = String(peer[..<colon])
        for prefix in ["ipv4:", "ipv6:"] where host.hasPrefix(prefix) { host.removeFirst(prefix.count) }
        return host
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String { AgentListenerFactory.hex(bytes) }
}

extension Writ_Agent_V1_Error: Error {}

/// Per-source token buckets: `perMinute` attestations per minute, in bursts of up to that many.
final class AttestationRateLimiter: Sendable {
    private struct Bucket { var tokens: Double; var updated: ContinuousClock.Instant }
    private let perMinute: Int
    private let buckets = Mutex<[String: Bucket]>([:])

    init(perMinute: Int) { self.perMinute = perMinute }

    /// Takes one token for `source`; false when its bucket is empty.
    func allow(source: String) -> Bool {
        let now = ContinuousClock.now
        let capacity = Double(perMinute)
        return buckets.withLock { buckets in
            if buckets.count > 10_000 {
                buckets = buckets.filter { now - $0.value.updated < .seconds(60) }
            }
            var bucket = buckets[source] ?? Bucket(tokens: capacity, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(capacity, bucket.tokens + seconds * capacity / 60)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                buckets[source] = bucket
                return false
            }
            bucket.tokens -= 1
            buckets[source] = bucket
            return true
        }
    }
}

/// What each agent's last sync stream sent (entry id → revision, at a registry revision), so a
/// reconnecting agent that names that revision gets only the difference.
actor SyncMemory {
    private var remembered: [String: (revision: Int64, entries: [String: Int64])] = [:]

    func remember(agent: SPIFFEID, revision: Int64, entries: [String: Int64]) {
        remembered[agent.uri] = (revision, entries)
    }

    func recall(agent: SPIFFEID, revision: Int64) -> [String: Int64]? {
        guard let saved = remembered[agent.uri], saved.revision == revision else { return nil }
        return saved.entries
    }
}
