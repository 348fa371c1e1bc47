#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRPCCore
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SPIFFEBundle
import SPIFFEIdentity
import WritConfig
import WritWorkloadAttestation

/// `writ agent run`: attests the node, serves the Workload API on its Unix socket, the admin
/// socket (`writ agent healthcheck`, `writ agent debug`) and `/healthz`, `/readyz`, `/metrics`
/// over HTTP; writes `<data-dir>/ready.json` once every listener is up and the first sync with
/// the server is complete; stops cleanly on SIGTERM or SIGINT.
public enum AgentProcess {
    public static func run(_ options: AgentOptions, logger: Logger) async throws {
        try prepareDirectory(options.dataDirectory, mode: 0o700, what: "data directory")
        try prepareSocketDirectory(for: options.socket, mode: 0o755, what: "Workload API socket")
        try prepareSocketDirectory(for: options.adminSocket, mode: 0o700, what: "agent admin socket")
        raiseFileLimit(logger: logger)

        // The bundle is replaced by the server's on the first sync; until then the cache holds
        // the stored (or bootstrap) authorities of an unknown-yet trust domain.
        let metrics = AgentMetrics()
        let status = AgentStatus()
        let placeholder = try! TrustDomain(parsing: "pending.invalid")
        let stored = try AgentCredentials.loadBundle(from: options.dataDirectory)
        let storedDomain = (try? AgentCredentials.load(from: options.dataDirectory))??.id.trustDomain
        let cache = WorkloadIdentityCache(bundle: TrustBundle(trustDomain: storedDomain ?? placeholder, x509Authorities: stored ?? []))
        let keys = KeyPool(capacity: options.keyPoolSize)
        let agent = try NodeAgent(options: options, cache: cache, keys: keys, metrics: metrics, status: status, logger: logger)
        let service = WorkloadAPIService(cache: cache, attestor: UnixWorkloadAttestor(allowRelativeScripts: options.scriptAllowRelative),
                                         logger: logger, metrics: metrics, svidWait: options.svidWait,
                                         attestationDelay: options.attestationDelay, rateLimit: options.workloadRateLimit, jwtMinter: agent)
        let workloadServer = try WorkloadAPIServer(socketPath: options.socket, service: service)

        let readiness = Readiness(expected: ["socket", "agent_admin_socket", "http_listen", "synced"]) { bound in
            try writeReady(options: options, bound: bound)
            logger.info("writ agent ready", metadata: ["socket": "\(options.socket)", "http_listen": "\(bound["http_listen"] ?? "")",
                                                       "server": "\(options.server)"])
        }
        @Sendable func listening(_ name: String, _ address: String) async {
            do { try await readiness.listening(name, at: address) } catch {
                logger.error("cannot write ready.json", metadata: ["error": "\(error)"])
            }
        }

        let adminRouter = Router()
        AgentAdminRoutes(status: status, cache: cache, keys: keys, options: options).register(on: adminRouter)
        let adminSocket = options.adminSocket
        let admin = Application(router: adminRouter, configuration: .init(address: .unixDomainSocket(path: adminSocket), serverName: "writ-agent"),
                                onServerRunning: { _ in
                                    _ = chmod(adminSocket, 0o600)
                                    await listening("agent_admin_socket", adminSocket)
                                }, logger: logger)
        let operations = Router()
        AgentOperationsRoutes(status: status, metrics: metrics).register(on: operations)
        let http = Application(router: operations,
                               configuration: .init(address: .hostname(options.httpListen.host, port: options.httpListen.port), serverName: "writ-agent"),
                               onServerRunning: { channel in
                                   let port = channel.localAddress?.port ?? options.httpListen.port
                                   await listening("http_listen", ListenAddress(host: options.httpListen.host, port: port).description)
                               }, logger: logger)
        let workload = ClosureService(name: "workload-api") {
            try await workloadServer.run { Task { await listening("socket", options.socket) } }
        } stop: { workloadServer.shutDown() }
        let node = ClosureService(name: "node-agent") {
            try await agent.run { Task { await listening("synced", "true") } }
        } stop: {}
        let group = ServiceGroup(configuration: .init(services: [admin, http, workload, node], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        try? FileManager.default.removeItem(atPath: options.path("ready.json"))
    }

    static func writeReady(options: AgentOptions, bound: [String: String]) throws {
        var ready: [String: Any] = ["pid": Int(getpid()), "server": options.server.description, "socket": options.socket,
                                    "agent_admin_socket": options.adminSocket]
        if let http = bound["http_listen"] { ready["http_listen"] = http }
        if let credentials = try? AgentCredentials.load(from: options.dataDirectory) {
            ready["agent_id"] = credentials.id.uri
            ready["trust_domain"] = credentials.id.trustDomain.name
        }
        let data = try JSONSerialization.data(withJSONObject: ready, options: [.sortedKeys])
        try AgentFiles.writeAtomically(Array(data), to: options.path("ready.json"), mode: 0o644)
    }

    static func prepareDirectory(_ path: String, mode: mode_t, what: String) throws {
        var info = stat()
        if stat(path, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else { throw AgentError("the \(what) `\(path)` is not a directory") }
        } else {
            do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: Int(mode)]) } catch {
                throw AgentError("cannot create the \(what) `\(path)`: \(error.localizedDescription)")
            }
        }
    }

    /// Creates the socket's directory when missing and removes a stale socket; refuses a path
    /// that is too long or that is something other than a socket.
    static func prepareSocketDirectory(for socket: String, mode: mode_t, what: String) throws {
        guard socket.hasPrefix("/") else { throw AgentError("the \(what) path `\(socket)` must be absolute") }
        guard socket.utf8.count < 100 else { throw AgentError("the \(what) path `\(socket)` is \(socket.utf8.count) bytes: it must stay under 100") }
        try prepareDirectory((socket as NSString).deletingLastPathComponent, mode: mode, what: "\(what)'s directory")
        var info = stat()
        if lstat(socket, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFSOCK else { throw AgentError("`\(socket)` exists and is not a socket: refusing to replace it") }
            unlink(socket)
        }
    }

    /// Raises the soft RLIMIT_NOFILE to the hard limit: every workload connection is a file.
    static func raiseFileLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        let before = limit.rlim_cur
        limit.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            logger.debug("raised the open file limit", metadata: ["from": "\(before)", "to": "\(limit.rlim_max)"])
        }
    }
}

/// A service that runs a closure and, on graceful shutdown, calls `stop`.
struct ClosureService: Service {
    let name: String
    let body: @Sendable () async throws -> Void
    let stop: @Sendable () -> Void

    init(name: String, _ body: @escaping @Sendable () async throws -> Void, stop: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
        self.stop = stop
    }

    /// Runs the body until it returns; on graceful shutdown, `stop` is called and a body that
    /// ends by cancellation counts as a clean end.
    func run() async throws {
        do {
            try await withGracefulShutdownHandler {
                try await cancelWhenGracefulShutdown { try await body() }
            } onGracefulShutdown: {
                stop()
            }
        } catch {
            guard Task.isShuttingDownGracefully || Task.isCancelled else { throw error }
        }
    }
}

/// The admin socket's routes: `GET /v1/health` (200 healthy / 503 not, with the reasons) and
/// `GET /v1/debug` (what the agent holds: its ID, the server, the cache, the key pool).
struct AgentAdminRoutes: Sendable {
    let status: AgentStatus
    let cache: WorkloadIdentityCache
    let keys: KeyPool
    let options: AgentOptions

    func register(on router: Router<BasicRequestContext>) {
        router.get("v1/health") { _, _ in
            let now = Date()
            let healthy = await status.healthy(at: now)
            var body: [String: Any] = ["status": healthy ? "healthy" : "unhealthy", "connected": await status.connected,
                                       "synced": await status.synced]
            if let error = await status.lastError { body["last_error"] = error }
            if let expires = await status.agentSVIDExpiresAt { body["agent_svid_expires_at"] = Self.time(expires) }
            return Self.json(healthy ? .ok : .serviceUnavailable, body)
        }
        router.get("v1/debug") { _, _ in
            var body: [String: Any] = [
                "server": options.server.description, "socket": options.socket, "connected": await status.connected,
                "revision": await status.revision, "entries": await cache.entryCount, "svids": await cache.svidCount,
                "key_pool_available": await keys.available, "key_pool_capacity": keys.capacity,
                "trust_domain": await cache.bundle.trustDomain.name, "bundle_authorities": await cache.bundle.x509Authorities.count,
                "federated_trust_domains": await cache.federated.keys.map(\.name).sorted(),
                "uptime_seconds": Int(Date().timeIntervalSince(status.startedAt)),
            ]
            if let id = await status.agentID { body["agent_id"] = id.uri }
            if let expires = await status.agentSVIDExpiresAt { body["agent_svid_expires_at"] = Self.time(expires) }
            if let synced = await status.lastSyncAt { body["last_sync_at"] = Self.time(synced) }
            if let error = await status.lastError { body["last_error"] = error }
            return Self.json(.ok, body)
        }
    }

    static func time(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: date)
    }

    static func json(_ status: HTTPResponse.Status, _ body: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// `/healthz` (alive), `/readyz` (synced with an unexpired agent SVID) and `/metrics`.
struct AgentOperationsRoutes: Sendable {
    let status: AgentStatus
    let metrics: AgentMetrics

    func register(on router: Router<BasicRequestContext>) {
        router.get("healthz") { _, _ in AgentAdminRoutes.json(.ok, ["status": "alive"]) }
        router.get("readyz") { _, _ in
            let ready = await status.healthy(at: Date())
            return AgentAdminRoutes.json(ready ? .ok : .serviceUnavailable, ["status": ready ? "ready" : "not_ready"])
        }
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: metrics.registry.emitToBuffer())))
        }
    }
}
