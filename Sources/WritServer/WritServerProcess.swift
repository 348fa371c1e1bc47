#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SPIFFEIdentity
import WritAgentAPI
import WritConfig
import WritModel
import WritNodeAttestation
import WritStore
import WritStorePostgres
import WritStoreSQLite

/// `writ server run`: opens the datastore, serves the admin API on its Unix socket, writes
/// `<data-dir>/ready.json` once listening, and stops cleanly on SIGTERM or SIGINT.
public enum WritServerProcess {
    /// Runs until a shutdown signal.
    public static func run(_ options: ServerOptions, logger: Logger) async throws {
        try prepareDataDirectory(options.dataDirectory)
        try prepareSocketDirectory(for: options.adminSocket)
        let x509pop = try loadX509PopTrust(options)
        let url = options.datastoreURL
        try await withDatastore(url, logger: logger, faults: auditFaultHook(ProcessInfo.processInfo.environment)) { rawStore, description in
            let metrics = ServerMetrics()
            let store = MeasuredDatastore(inner: rawStore, metrics: metrics)
            let (identity, serverSVID) = try await ServerIdentity.open(options: options, store: store, logger: logger)
            let cache = RegistryCache(store: store, serverID: identity.serverID, logger: logger)
            try await cache.load()
            let audit = try await ServerAudit.open(options: options, store: store, serverInstance: identity.bundle.serverInstance, logger: logger)
            let routes = AdminRoutes(store: store, rules: EntryRules(trustDomain: options.trustDomain),
                                     datastoreDescription: description, metrics: metrics, now: { Date() },
                                     bundle: { identity.bundle.bundle }, authorities: AuthorityControl(identity: identity, serverSVIDLifetime: options.agentSVIDTTL),
                                     minter: SVIDMinter(ca: identity.ca, rules: EntryRules(trustDomain: options.trustDomain),
                                                        x509TTL: options.x509SVIDTTL, jwtTTL: options.jwtSVIDTTL),
                                     audit: audit)
            let router = Router(context: AdminContext.self)
            router.add(middleware: AdminMetricsMiddleware(metrics: metrics))
            let svidPolicy = options.adminListen.map { _ in
                AdminSVIDPolicy(tls: identity.tls, store: store, trustDomain: options.trustDomain, adminIDs: Set(options.adminIDs))
            }
            router.add(middleware: AdminAuthenticationMiddleware(policy: AdminPolicy(uids: options.adminUIDs, gids: options.adminGIDs),
                                                                 svidPolicy: svidPolicy))
            router.add(middleware: AdminUnmatchedMiddleware())
            routes.register(on: router)
            let socket = options.adminSocket
            let readiness = Readiness(expected: options.adminListen == nil ? ["admin_socket", "http_listen", "listen"]
                                                                           : ["admin_socket", "admin_listen", "http_listen", "listen"]) { bound in
                try writeReady(options: options, datastore: description, bound: bound)
                logger.info("writ server ready", metadata: ["trust_domain": "\(options.trustDomain)", "admin_socket": "\(socket)",
                                                            "http_listen": "\(bound["http_listen"] ?? "")",
                                                            "listen": "\(bound["listen"] ?? "")", "datastore": "\(description)"])
            }
            let admin = Application(
                router: router,
                configuration: .init(address: .unixDomainSocket(path: socket), serverName: "writ"),
                onServerRunning: { _ in
                    // Anyone may connect; SO_PEERCRED decides who is served.
                    _ = chmod(socket, 0o666)
                    do { try await readiness.listening("admin_socket", at: socket) } catch {
                        logger.error("cannot write ready.json", metadata: ["error": "\(error)"])
                    }
                },
                logger: logger)
            var services: [any Service] = [admin]
            if let adminListen = options.adminListen {
                let tls = identity.tls
                let server = HTTPServerBuilder { responder in
                    AdminTLSChannel(base: HTTP1Channel(responder: responder), tls: tls, trustDomain: options.trustDomain, logger: logger)
                }
                services.append(Application(
                    router: router, server: server,
                    configuration: .init(address: .hostname(adminListen.host, port: adminListen.port), serverName: "writ"),
                    onServerRunning: { channel in
                        let port = channel.localAddress?.port ?? adminListen.port
                        do { try await readiness.listening("admin_listen", at: ListenAddress(host: adminListen.host, port: port).description) } catch {
                            logger.error("cannot write ready.json", metadata: ["error": "\(error)"])
                        }
                    },
                    logger: logger))
            }
            let operations = Router()
            OperationsRoutes(store: store, metrics: metrics, ca: identity.ca, cache: cache, audit: audit).register(on: operations)
            let http = Application(
                router: operations,
                configuration: .init(address: .hostname(options.httpListen.host, port: options.httpListen.port), serverName: "writ"),
                onServerRunning: { channel in
                    let port = channel.localAddress?.port ?? options.httpListen.port
                    let address = ListenAddress(host: options.httpListen.host, port: port).description
                    do { try await readiness.listening("http_listen", at: address) } catch {
                        logger.error("cannot write ready.json", metadata: ["error": "\(error)"])
                    }
                },
                logger: logger)
            let pruner = Pruner(store: store, serverID: identity.serverID, audit: audit, interval: options.pruneInterval, logger: logger)
            let agentService = AgentService(store: store, cache: cache, ca: identity.ca, bundle: identity.bundle, peers: PeerRegistry(),
                                            rateLimiter: AttestationRateLimiter(perMinute: options.attestRatePerMinute),
                                            syncMemory: SyncMemory(), x509pop: x509pop, metrics: metrics, options: options, logger: logger,
                                            audit: audit)
            let listener = AgentListenerFactory(
                host: options.listen.host, port: options.listen.port, tls: identity.tls, peers: agentService.peers,
                trustDomain: options.trustDomain, logger: logger, eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
                onBound: { address in
                    let port = address?.port ?? options.listen.port
                    let text = ListenAddress(host: options.listen.host, port: port).description
                    Task {
                        do { try await readiness.listening("listen", at: text) } catch {
                            logger.error("cannot write ready.json", metadata: ["error": "\(error)"])
                        }
                    }
                })
            let grpc = GRPCService(server: GRPCServer(transport: HTTP2ServerTransport.Custom(listenerFactory: listener),
                                                      services: [agentService, HealthService(services: ["writ.agent.v1.AgentAPI"])]))
            let maintainer = IdentityMaintainer(identity: identity, svid: serverSVID, lifetime: options.agentSVIDTTL, interval: .seconds(10), audit: audit, logger: logger)
            let watcher = RegistryWatcher(cache: cache, identity: identity, interval: .milliseconds(200), logger: logger)
            let group = ServiceGroup(configuration: .init(services: services + [http, pruner, grpc, maintainer, watcher],
                                                          gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
            // Everything recorded is committed, and the last checkpoint covers it.
            await audit.flush()
            do { try await audit.checkpointNow() } catch {
                logger.error("the final audit checkpoint could not be signed", metadata: ["error": "\(error)"])
            }
            try? FileManager.default.removeItem(atPath: (options.dataDirectory as NSString).appendingPathComponent("ready.json"))
        }
    }

    /// The x509pop CA bundle of `options`, read and checked; nil when none is configured.
    public static func loadX509PopTrust(_ options: ServerOptions) throws -> X509PopTrust? {
        guard let path = options.x509popCABundle else { return nil }
        do { return try X509PopTrust(pemFile: path) } catch {
            throw ServerError("`x509pop.ca_bundle`: \(error.message)")
        }
    }

    /// Reads and checks the upstream CA files of `options`, if any (for `writ server validate`).
    public static func checkUpstream(_ options: ServerOptions) async throws {
        _ = try await UpstreamFiles.load(options)
    }

    /// Opens the datastore named by `url` (`sqlite:<path>` or `postgres://…`) for `body`.
    public static func withDatastore(_ url: String, logger: Logger, faults: StoreFaults? = nil,
                                     _ body: (any Datastore, String) async throws -> Void) async throws {
        if url.hasPrefix("sqlite:") {
            let path = String(url.dropFirst("sqlite:".count))
            guard path.hasPrefix("/") else { throw ServerError("invalid datastore `\(url)`: a SQLite datastore is `sqlite:/absolute/path`") }
            let backend = try await SQLiteBackend.open(path: path, logger: logger)
            let store: SQLDatastore
            do { store = try await SQLDatastore(backend: backend, faults: faults) } catch {
                await backend.close()
                throw error
            }
            do { try await body(store, url) } catch {
                await store.close()
                throw error
            }
            await store.close()
        } else if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            let parsed = try PostgresURL(parsing: url)
            try await PostgresBackend.withBackend(url: parsed, logger: logger) { backend in
                let store = try await SQLDatastore(backend: backend, faults: faults)
                try await body(store, parsed.description)
            }
        } else {
            throw ServerError("invalid datastore `\(url.prefix(40))`: use `sqlite:/path/datastore.sqlite3` or `postgres://user@host:port/database`")
        }
    }

    /// A test hook, like the agent's `WRIT_TEST_*` delays and not an option:
    /// `WRIT_TEST_AUDIT_FAULT_FILE=<path>` makes every audit insert fail while that file exists,
    /// so a test can prove that an operation whose event cannot be stored leaves nothing behind.
    static func auditFaultHook(_ environment: [String: String]) -> StoreFaults? {
        guard let path = environment["WRIT_TEST_AUDIT_FAULT_FILE"], !path.isEmpty else { return nil }
        return StoreFaults { (point: StoreFaultPoint) throws(StoreError) in
            if point == .auditInsert, FileManager.default.fileExists(atPath: path) {
                throw StoreError(.injectedFault, "injected fault on the audit insert (\(path) exists)")
            }
        }
    }

    static func prepareDataDirectory(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ServerError("the data directory `\(path)` is a file") }
        } else {
            do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) } catch {
                throw ServerError("cannot create the data directory `\(path)`: \(error.localizedDescription)")
            }
        }
    }

    /// The socket's directory is created 0700; an existing one must belong to this user.
    static func prepareSocketDirectory(for socket: String) throws {
        guard socket.utf8.count < 100 else { throw ServerError("the admin socket path `\(socket)` is \(socket.utf8.count) bytes: it must stay under 100") }
        guard socket.hasPrefix("/") else { throw ServerError("the admin socket path `\(socket)` must be absolute") }
        let directory = (socket as NSString).deletingLastPathComponent
        var info = stat()
        if stat(directory, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else { throw ServerError("the admin socket's directory `\(directory)` is not a directory") }
            guard info.st_uid == getuid() else {
                throw ServerError("the admin socket's directory `\(directory)` belongs to uid \(info.st_uid), not to this server's uid \(getuid()): refusing to serve from it")
            }
            guard info.st_mode & 0o022 == 0 else {
                throw ServerError("the admin socket's directory `\(directory)` is writable by others (mode \(String(info.st_mode & 0o777, radix: 8))): make it 0700 or 0711")
            }
        } else {
            guard mkdir(directory, 0o700) == 0 || errno == EEXIST else {
                throw ServerError("cannot create the admin socket's directory `\(directory)`: \(String(cString: strerror(errno)))")
            }
        }
        if lstat(socket, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFSOCK else { throw ServerError("`\(socket)` exists and is not a socket: refusing to replace it") }
            unlink(socket)
        }
    }

    static func writeReady(options: ServerOptions, datastore: String, bound: [String: String]) throws {
        var ready: [String: Any] = ["pid": Int(getpid()), "trust_domain": options.trustDomain.name, "datastore": datastore]
        for (name, address) in bound { ready[name] = address }
        let data = try JSONSerialization.data(withJSONObject: ready, options: [.sortedKeys])
        let path = (options.dataDirectory as NSString).appendingPathComponent("ready.json")
        let temporary = path + ".tmp"
        try data.write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else { throw ServerError("cannot write `\(path)`: \(String(cString: strerror(errno)))") }
    }
}
