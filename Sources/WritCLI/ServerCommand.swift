import ArgumentParser
import Foundation
import Logging
import SPIFFEIdentity
import WritConfig
import WritServer

/// `writ server …`: the authority of one trust domain.
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the Writ server: registry, datastore and the admin API.",
        subcommands: [Run.self, Validate.self]
    )

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the server until SIGTERM or SIGINT.",
            discussion: """
                Every option is also a key of the config file (see conf/server.toml) and an \
                environment variable: --data-dir is data_dir in [server] and WRIT_DATA_DIR; \
                --admin-uids is uids in [admin] and WRIT_ADMIN_UIDS. A flag beats the \
                environment, which beats the file, which beats the default. Writes \
                <data-dir>/ready.json once every listener is up.

                Examples:
                  writ server run --data-dir /var/lib/writ --trust-domain example.org
                  writ server run --config /etc/writ/server.toml
                  writ server run --config /etc/writ/server.toml \\
                      --datastore 'postgres://writ@db.internal:5432/writ?sslmode=require'
                """)

        @OptionGroup var settings: ServerSettings

        func run() async throws {
            let options = try settings.options()
            let level = Logger.Level(rawValue: try settings.resolved().string("server", "log_level") ?? "info") ?? .info
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            let logger = Logger(label: "writ.server")
            do {
                try await WritServerProcess.run(options, logger: logger)
            } catch {
                var stderr = StandardError()
                print("error: \(error)", to: &stderr)
                throw ExitCode.failure
            }
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the configuration (file, environment and flags) without starting.",
            discussion: "Exit 0 and `configuration ok` when it is valid; exit 1 and the problem (with its line) when not.")

        @OptionGroup var settings: ServerSettings

        func run() async throws {
            let options = try settings.options()
            do { _ = try WritServerProcess.loadX509PopTrust(options) } catch {
                throw ValidationError("\(error)")
            }
            do { try await WritServerProcess.checkUpstream(options) } catch {
                throw ValidationError("\(error)")
            }
            print("configuration ok")
        }
    }
}

/// `writ config …`.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show the effective configuration.",
        subcommands: [Dump.self]
    )

    struct Dump: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the effective configuration as TOML, secrets redacted, each value with its source.",
            discussion: """
                `writ config dump [server] …` takes the same --config, flags and environment as \
                `writ server run`; `writ config dump agent …` those of `writ agent run`.
                """,
            subcommands: [DumpServer.self, DumpAgent.self], defaultSubcommand: DumpServer.self)
    }

    struct DumpServer: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "server",
            abstract: "Print the server's effective configuration as TOML, secrets redacted, each value with its source.",
            discussion: "Takes the same --config, flags and environment as `writ server run`.")

        @OptionGroup var settings: ServerSettings

        func run() throws {
            let resolved = try settings.resolved()
            print(resolved.dump(redact: ServerConfig.redact), terminator: "")
        }
    }
}

/// The options of `writ server run`, all optional here so that an absent flag falls through to
/// the environment, the file and the default (``ServerConfig/schema`` decides).
struct ServerSettings: ParsableArguments {
    @Option(help: ArgumentHelp("A TOML config file (see conf/server.toml).", valueName: "file")) var config: String?
    @Option(help: ArgumentHelp("Where the server keeps its data.", valueName: "dir")) var dataDir: String?
    @Option(help: ArgumentHelp("The trust domain this server is the authority of.", valueName: "td")) var trustDomain: String?
    @Option(help: ArgumentHelp("sqlite:/path or postgres://user@host:port/db (default sqlite:<data-dir>/datastore.sqlite3).", valueName: "url")) var datastore: String?
    @Option(help: ArgumentHelp("The admin API's Unix socket (default \(ServerOptions.defaultAdminSocket)).", valueName: "path")) var adminSocket: String?
    @Option(help: ArgumentHelp("Listener for /healthz, /readyz and /metrics (default 127.0.0.1:8080; port 0 picks one).", valueName: "host:port")) var httpListen: String?
    @Option(help: ArgumentHelp("The agent API: gRPC over TLS 1.3 (default 0.0.0.0:8081; port 0 picks one).", valueName: "host:port")) var listen: String?
    @Option(help: ArgumentHelp("Lifetime of agent SVIDs (default 1h).", valueName: "duration")) var agentSvidTtl: String?
    @Option(help: ArgumentHelp("Default lifetime of workload X.509-SVIDs (default 1h).", valueName: "duration")) var x509SvidTtl: String?
    @Option(help: ArgumentHelp("Default lifetime of JWT-SVIDs (default 5m).", valueName: "duration")) var jwtSvidTtl: String?
    @Option(help: ArgumentHelp("Attestations allowed per source address per minute (default 60).", valueName: "n")) var attestRateLimit: Int64?
    @Option(help: ArgumentHelp("PEM file of the CAs that vouch for nodes in x509pop attestation (unset: x509pop is refused).", valueName: "file")) var x509popCaBundle: String?
    @Option(help: "trace, debug, info (default), notice, warning, error or critical.") var logLevel: String?
    @Option(help: ArgumentHelp("How often expired entries and join tokens are deleted (default 1m).", valueName: "duration")) var pruneInterval: String?
    @Option(help: ArgumentHelp("Another uid allowed on the admin socket (repeat).", valueName: "uid")) var adminUids: [Int64] = []
    @Option(help: ArgumentHelp("A gid whose members are allowed on the admin socket (repeat).", valueName: "gid")) var adminGids: [Int64] = []
    @Option(help: ArgumentHelp("Also serve the admin API over HTTPS (TLS 1.3, callers present an X.509-SVID); unset: socket only.", valueName: "host:port")) var adminListen: String?
    @Option(help: ArgumentHelp("A SPIFFE ID allowed on the TCP admin listener besides admin entries (repeat).", valueName: "spiffe-id")) var adminIds: [String] = []
    @Option(help: ArgumentHelp("PEM file of an upstream CA chain (signing certificate first): it signs every intermediate instead of a self-signed root.", valueName: "file")) var upstreamCaCert: String?
    @Option(help: ArgumentHelp("PEM (PKCS#8) file of the upstream CA's private key.", valueName: "file")) var upstreamCaKey: String?

    var flags: [String: TOMLValue] {
        var out: [String: TOMLValue] = [:]
        if let dataDir { out["--data-dir"] = .string(dataDir) }
        if let trustDomain { out["--trust-domain"] = .string(trustDomain) }
        if let datastore { out["--datastore"] = .string(datastore) }
        if let adminSocket { out["--admin-socket"] = .string(adminSocket) }
        if let httpListen { out["--http-listen"] = .string(httpListen) }
        if let logLevel { out["--log-level"] = .string(logLevel) }
        if let listen { out["--listen"] = .string(listen) }
        if let agentSvidTtl { out["--agent-svid-ttl"] = .string(agentSvidTtl) }
        if let x509SvidTtl { out["--x509-svid-ttl"] = .string(x509SvidTtl) }
        if let jwtSvidTtl { out["--jwt-svid-ttl"] = .string(jwtSvidTtl) }
        if let attestRateLimit { out["--attest-rate-limit"] = .integer(attestRateLimit) }
        if let x509popCaBundle { out["--x509pop-ca-bundle"] = .string(x509popCaBundle) }
        if let pruneInterval { out["--prune-interval"] = .string(pruneInterval) }
        if !adminUids.isEmpty { out["--admin-uids"] = .array(adminUids.map { .integer($0) }) }
        if !adminGids.isEmpty { out["--admin-gids"] = .array(adminGids.map { .integer($0) }) }
        if let adminListen { out["--admin-listen"] = .string(adminListen) }
        if !adminIds.isEmpty { out["--admin-ids"] = .array(adminIds.map { .string($0) }) }
        if let upstreamCaCert { out["--upstream-ca-cert"] = .string(upstreamCaCert) }
        if let upstreamCaKey { out["--upstream-ca-key"] = .string(upstreamCaKey) }
        return out
    }

    /// Flag > environment > file > default, with problems reported as usage errors naming the
    /// file and line.
    func resolved() throws -> ResolvedConfig {
        try resolveConfig(ServerConfig.schema, file: config, flags: flags)
    }

    func options() throws -> ServerOptions {
        do { return try ServerConfig.options(from: try resolved()) } catch let error as ConfigError {
            throw ValidationError(error.description)
        }
    }
}

/// Resolves `schema` from `flags`, the environment and the TOML file at `file` (or
/// `WRIT_CONFIG`): flag > environment > file > default, problems as usage errors naming the file
/// and line.
func resolveConfig(_ schema: ConfigSchema, file: String?, flags: [String: TOMLValue]) throws -> ResolvedConfig {
    var document: TOMLDocument?
    let path = file ?? ProcessInfo.processInfo.environment["WRIT_CONFIG"]
    if let path {
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read the config file `\(path)`") }
        do { document = try TOMLDocument(parsing: String(decoding: data, as: UTF8.self)) } catch {
            throw ValidationError("\(path): \(error)")
        }
    }
    do {
        return try schema.resolve(file: document, environment: ProcessInfo.processInfo.environment, flags: flags)
    } catch {
        throw ValidationError(path.map { "\($0): \(error)" } ?? "\(error)")
    }
}
