import ArgumentParser
import Foundation
import Logging
import SPIFFEIdentity
import WritServer

/// `writ server …`: the authority of one trust domain.
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the Writ server: registry, datastore and the admin API.",
        subcommands: [Run.self]
    )

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the server until SIGTERM or SIGINT.",
            discussion: """
                Writes <data-dir>/ready.json once the admin socket listens.

                Examples:
                  writ server run --data-dir /var/lib/writ --trust-domain example.org
                  writ server run --data-dir /var/lib/writ --trust-domain example.org \\
                      --datastore postgres://writ@db.internal:5432/writ?sslmode=require
                """)

        @Option(help: ArgumentHelp("Where the server keeps its data (env WRIT_DATA_DIR).", valueName: "dir"))
        var dataDir: String = ProcessInfo.processInfo.environment["WRIT_DATA_DIR"] ?? ""
        @Option(help: ArgumentHelp("The trust domain this server is the authority of (env WRIT_TRUST_DOMAIN).", valueName: "td"))
        var trustDomain: String = ProcessInfo.processInfo.environment["WRIT_TRUST_DOMAIN"] ?? ""
        @Option(help: ArgumentHelp("sqlite:/path or postgres://user@host:port/db (env WRIT_DATASTORE; default sqlite:<data-dir>/datastore.sqlite3).", valueName: "url"))
        var datastore: String? = ProcessInfo.processInfo.environment["WRIT_DATASTORE"]
        @Option(help: ArgumentHelp("The admin API's Unix socket (env WRIT_ADMIN_SOCKET).", valueName: "path"))
        var adminSocket: String = ProcessInfo.processInfo.environment["WRIT_ADMIN_SOCKET"] ?? ServerOptions.defaultAdminSocket
        @Option(name: .customLong("admin-uid"), help: ArgumentHelp("Another uid allowed on the admin socket (repeat).", valueName: "uid"))
        var adminUIDs: [UInt32] = []
        @Option(name: .customLong("admin-gid"), help: ArgumentHelp("A gid whose members are allowed on the admin socket (repeat).", valueName: "gid"))
        var adminGIDs: [UInt32] = []
        @Option(help: ArgumentHelp("Listener for /healthz, /readyz and /metrics; port 0 picks one (env WRIT_HTTP_LISTEN).", valueName: "host:port"))
        var httpListen: String = ProcessInfo.processInfo.environment["WRIT_HTTP_LISTEN"] ?? "127.0.0.1:8080"
        @Option(help: "trace, debug, info (default), notice, warning, error or critical.")
        var logLevel: String = ProcessInfo.processInfo.environment["WRIT_LOG_LEVEL"] ?? "info"

        func validate() throws {
            guard !dataDir.isEmpty else { throw ValidationError("--data-dir is required") }
            guard !trustDomain.isEmpty else { throw ValidationError("--trust-domain is required") }
            do { _ = try TrustDomain(parsing: trustDomain) } catch { throw ValidationError(error.message) }
            guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("invalid --log-level `\(logLevel)`") }
            do { _ = try ListenAddress(parsing: httpListen) } catch { throw ValidationError(error.message) }
        }

        func run() async throws {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = Logger.Level(rawValue: logLevel) ?? .info
                return handler
            }
            let logger = Logger(label: "writ.server")
            let options = ServerOptions(dataDirectory: URL(fileURLWithPath: dataDir).standardizedFileURL.path, trustDomain: try TrustDomain(parsing: trustDomain),
                                        datastore: datastore, adminSocket: adminSocket, adminUIDs: adminUIDs, adminGIDs: adminGIDs,
                                        httpListen: try ListenAddress(parsing: httpListen))
            do {
                try await WritServerProcess.run(options, logger: logger)
            } catch {
                var stderr = StandardError()
                print("error: \(error)", to: &stderr)
                throw ExitCode.failure
            }
        }
    }
}
