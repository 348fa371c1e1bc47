import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import ServiceLifecycle
import SwiftASN1
import SPIFFEIdentity
import WritAudit
import WritCA
import WritStore
import X509

/// The server's CA and its own X.509-SVID (`spiffe://<td>/writ/server`), which the agent API's
/// TLS presents. Opens the CA from `<data-dir>/ca` (keys 0600 under `keys/`, state in
/// `state.json`), bootstrapping it on first start.
struct ServerIdentity {
    let ca: CertificateAuthority
    let tls: ServerTLSState
    let serverID: SPIFFEID
    /// The bundle every server on the datastore serves (this CA's keys among them).
    let bundle: SharedBundle

    static func open(options: ServerOptions, store: any Datastore, logger: Logger) async throws -> (ServerIdentity, ServerSVID) {
        let directory = (options.dataDirectory as NSString).appendingPathComponent("ca")
        if !FileManager.default.fileExists(atPath: directory) {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let longest = max(options.agentSVIDTTL, options.x509SVIDTTL, options.jwtSVIDTTL)
        let intermediate = max(Duration.seconds(86400), longest * Int(CAConfiguration.rotationRatio))
        let configuration = CAConfiguration(rootLifetime: max(.seconds(365 * 86400), intermediate * Int(CAConfiguration.rotationRatio)),
                                            intermediateLifetime: intermediate, jwtKeyLifetime: intermediate,
                                            agentSVIDLifetime: options.agentSVIDTTL, x509SVIDLifetime: options.x509SVIDTTL,
                                            jwtSVIDLifetime: options.jwtSVIDTTL)
        let ca: CertificateAuthority
        let upstreamFiles = try await UpstreamFiles.load(options)
        let stateStore = FileCAStateStore(path: (directory as NSString).appendingPathComponent("state.json"))
        try await checkMode(of: stateStore, in: directory, against: upstreamFiles)
        do {
            let keys = try DiskKeyManager(directory: (directory as NSString).appendingPathComponent("keys"))
            ca = try await CertificateAuthority(
                trustDomain: options.trustDomain, configuration: configuration, keyManager: keys,
                store: stateStore,
                upstream: try await upstreamFiles?.attach(to: keys), now: { Date() })
            try await ca.verifyIntegrity()
        } catch let error as CAError {
            throw ServerError("cannot open the CA in `\(directory)`: \(error.message)")
        }
        // This CA's keys join the shared bundle before anything signed with them is served.
        let shared = try await SharedBundle.open(ca: ca, store: store, instanceFile: (directory as NSString).appendingPathComponent("server-id"), logger: logger)
        let serverID = try SPIFFEID(trustDomain: options.trustDomain, path: "/writ/server")
        let svid = try await ServerSVID.issue(ca: ca, id: serverID, lifetime: options.agentSVIDTTL)
        let tls = try ServerTLSState(chainDER: svid.chainDER, privateKeyPEM: svid.privateKeyPEM, bundle: shared.bundle)
        logger.info("CA ready", metadata: ["trust_domain": "\(options.trustDomain)", "server_instance": "\(shared.serverInstance)",
                                           "bundle_sequence": "\(shared.bundle.sequenceNumber ?? 0)",
                                           "bundle_roots": "\(shared.bundle.x509Authorities.count)", "server_svid_expires_at": "\(svid.expiresAt)"])
        return (ServerIdentity(ca: ca, tls: tls, serverID: serverID, bundle: shared), svid)
    }
}

/// Refuses to open a CA in the other mode than it was set up in (self-signed roots or an
/// upstream CA, and which upstream): its intermediate would not chain to the new anchor, so the
/// CA could not issue anything. The message says what to do instead.
private func checkMode(of store: FileCAStateStore, in directory: String, against upstream: UpstreamFiles?) async throws {
    guard let saved = try? await store.load(), !saved.authorities.isEmpty else { return }
    let savedSigner = saved.upstreamChainDER?.first
    switch (savedSigner, upstream) {
    case (nil, .some):
        throw ServerError("the CA in `\(directory)` signs under its own self-signed root; it cannot switch to the upstream CA of --upstream-ca-cert. Start on a new data directory, or drop the upstream flags")
    case (.some, nil):
        throw ServerError("the CA in `\(directory)` was set up with an upstream CA: give the same --upstream-ca-cert and --upstream-ca-key again, or start on a new data directory")
    case (.some(let der), .some(let files)):
        var serializer = DER.Serializer()
        try serializer.serialize(files.chain[0])
        guard der == serializer.serializedBytes else {
            throw ServerError("the CA in `\(directory)` was set up with another upstream CA than `\(files.chain[0].subject)`; changing the upstream CA needs a new data directory")
        }
    case (nil, nil):
        return
    }
}

/// One server X.509-SVID and its key.
struct ServerSVID: Sendable {
    let chainDER: [[UInt8]]
    let privateKeyPEM: String
    let issuedAt: Date
    let expiresAt: Date
    /// The intermediate authority that was active when it was issued.
    let intermediateID: String?

    static func issue(ca: CertificateAuthority, id: SPIFFEID, lifetime: Duration) async throws -> ServerSVID {
        let key = P256.Signing.PrivateKey()
        let issued: IssuedX509SVID
        let intermediate = await ca.authorities().first { $0.kind == .intermediate && $0.status == .active }?.id
        do { issued = try await ca.issueX509SVID(publicKey: Certificate.PublicKey(key.publicKey), id: id, ttl: lifetime) } catch {
            throw ServerError("cannot issue the server's SVID: \(error.message)")
        }
        return ServerSVID(chainDER: issued.chainDER, privateKeyPEM: key.pemRepresentation, issuedAt: Date(), expiresAt: issued.leaf.notValidAfter,
                          intermediateID: intermediate)
    }
}

/// Keeps the CA rotating and the server's SVID fresh: checks every `interval`, applies any due
/// authority rotation (publishing the new bundle to the TLS verifier), and renews the server
/// SVID once half its life has passed. Each scheduled rotation step is recorded in the audit
/// log as `authority.prepare|activate|remove` with the server as actor, after the step (a CA
/// change cannot be rolled back); events the log could not take are retried on the next pass.
struct IdentityMaintainer: Service {
    let identity: ServerIdentity
    var svid: ServerSVID
    let lifetime: Duration
    let interval: Duration
    let audit: AuditLog
    let logger: Logger

    func run() async throws {
        var current = svid
        var unrecorded: [AuditEvent] = []
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let interval = self.interval
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) } } catch { return }
            do {
                let actions = try await Self.rotate(identity.ca, server: identity.serverID, audit: audit, unrecorded: &unrecorded, logger: logger)
                // Publish every interval, not only after a rotation: a publish that failed is
                // retried, and an unchanged contribution costs one read.
                if try await identity.bundle.publish(from: identity.ca) {
                    identity.tls.update(bundle: identity.bundle.bundle)
                    logger.info("shared bundle updated", metadata: ["sequence": "\(identity.bundle.bundle.sequenceNumber ?? 0)"])
                }
                let half = current.issuedAt.addingTimeInterval(current.expiresAt.timeIntervalSince(current.issuedAt) / 2)
                // An intermediate that is no longer the active one (rotated, or tainted through
                // `writ authority`) must not keep vouching for the server.
                let active = await identity.ca.authorities().first { $0.kind == .intermediate && $0.status == .active }?.id
                if Date() >= half || !actions.isEmpty || active != current.intermediateID {
                    current = try await ServerSVID.issue(ca: identity.ca, id: identity.serverID, lifetime: lifetime)
                    try identity.tls.update(chainDER: current.chainDER, privateKeyPEM: current.privateKeyPEM)
                    logger.info("server SVID renewed", metadata: ["expires_at": "\(current.expiresAt)"])
                }
            } catch {
                logger.error("CA maintenance failed; will retry", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Applies the CA's due rotation steps and records them, with any events an earlier pass
    /// could not record (`unrecorded`, left holding what the log refused this time).
    static func rotate(_ ca: CertificateAuthority, server: SPIFFEID, audit: AuditLog, unrecorded: inout [AuditEvent],
                       logger: Logger) async throws -> [RotationAction] {
        let actions = try await ca.rotate()
        if !actions.isEmpty { logger.info("CA rotated", metadata: ["actions": "\(actions)"]) }
        let time = Date()
        unrecorded += actions.map { ServerAuditEvents.scheduledRotation($0, server: server, at: time) }
        guard !unrecorded.isEmpty else { return actions }
        do {
            _ = try await audit.record(unrecorded)
            unrecorded = []
        } catch {
            logger.error("the audit log could not record the CA rotation; will retry", metadata: ["events": "\(unrecorded.count)", "error": "\(error)"])
        }
        return actions
    }
}

/// Polls the change feed so the registry cache (and every sync stream) follows writes made
/// through any server on the same datastore.
struct RegistryWatcher: Service {
    let cache: RegistryCache
    let identity: ServerIdentity
    let interval: Duration
    let logger: Logger

    func run() async throws {
        var failing = false
        var bundleChange: Int64 = 0
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                try await cache.catchUp()
                // Another server published keys (or this one did): serve the new bundle and
                // trust it for agent connections.
                let latest = await cache.bundleChange
                if latest != bundleChange {
                    if try await identity.bundle.refresh() {
                        identity.tls.update(bundle: identity.bundle.bundle)
                        logger.info("shared bundle updated", metadata: ["sequence": "\(identity.bundle.bundle.sequenceNumber ?? 0)",
                                                                        "roots": "\(identity.bundle.bundle.x509Authorities.count)"])
                    }
                    bundleChange = latest
                }
                if failing { logger.info("registry catch-up recovered") }
                failing = false
            } catch {
                if !failing { logger.warning("registry catch-up failed; will retry", metadata: ["error": "\(error)"]) }
                failing = true
            }
            let interval = self.interval
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) } } catch { return }
        }
    }
}

/// Runs a gRPC server until graceful shutdown.
struct GRPCService: Service {
    let server: GRPCServer<HTTP2ServerTransport.Custom<AgentListenerFactory>>

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await server.serve()
        } onGracefulShutdown: {
            server.beginGracefulShutdown()
        }
    }
}
