import Foundation
import SPIFFEIdentity
import WritConfig

/// The options of `writ server run`: one table of names, types and defaults that the flags,
/// the environment, `conf/server.toml` and `writ config dump` all follow.
public enum ServerConfig {
    public static let schema = ConfigSchema(component: "server", keys: [
        ConfigKey(table: "server", key: "data_dir", kind: .string, defaultValue: nil,
                  help: "Where the server keeps its data (datastore, keys, ready.json). Required."),
        ConfigKey(table: "server", key: "trust_domain", kind: .string, defaultValue: nil,
                  help: "The trust domain this server is the authority of. Required."),
        ConfigKey(table: "server", key: "datastore", kind: .string, defaultValue: nil, secret: true,
                  help: "sqlite:/path or postgres://user:password@host:port/db?sslmode=… (default: sqlite:<data_dir>/datastore.sqlite3)."),
        ConfigKey(table: "server", key: "admin_socket", kind: .string, defaultValue: .string(ServerOptions.defaultAdminSocket),
                  help: "The admin API's Unix socket; its directory is created 0700."),
        ConfigKey(table: "server", key: "http_listen", kind: .string, defaultValue: .string("127.0.0.1:8080"),
                  help: "Listener for /healthz, /readyz and /metrics (port 0 picks one)."),
        ConfigKey(table: "server", key: "log_level", kind: .string, defaultValue: .string("info"),
                  help: "trace, debug, info, notice, warning, error or critical."),
        ConfigKey(table: "server", key: "prune_interval", kind: .string, defaultValue: .string("1m"),
                  help: "How often expired entries and join tokens are deleted (a duration such as 30s or 5m)."),
        ConfigKey(table: "admin", key: "uids", kind: .integerList, defaultValue: .array([]),
                  help: "Besides root and the server's own user, uids allowed on the admin socket."),
        ConfigKey(table: "admin", key: "gids", kind: .integerList, defaultValue: .array([]),
                  help: "Gids whose members are allowed on the admin socket."),
    ])

    /// Turns resolved values into checked options; each error names the key.
    public static func options(from config: ResolvedConfig) throws(ConfigError) -> ServerOptions {
        guard let dataDir = config.string("server", "data_dir"), !dataDir.isEmpty else {
            throw ConfigError("`server.data_dir` is required (--data-dir, WRIT_DATA_DIR or data_dir in [server])")
        }
        guard let trustDomainText = config.string("server", "trust_domain"), !trustDomainText.isEmpty else {
            throw ConfigError("`server.trust_domain` is required (--trust-domain, WRIT_TRUST_DOMAIN or trust_domain in [server])")
        }
        let trustDomain: TrustDomain
        do { trustDomain = try TrustDomain(parsing: trustDomainText) } catch {
            throw ConfigError("`server.trust_domain`: \(error.message)")
        }
        let listen: ListenAddress
        do { listen = try ListenAddress(parsing: config.string("server", "http_listen") ?? "") } catch {
            throw ConfigError("`server.http_listen`: \(error.message)")
        }
        let level = config.string("server", "log_level") ?? "info"
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) else {
            throw ConfigError("`server.log_level` `\(level)`: one of trace, debug, info, notice, warning, error, critical")
        }
        func ids(_ key: String) throws(ConfigError) -> [UInt32] {
            var out: [UInt32] = []
            for number in config.integers("admin", key) {
                guard let id = UInt32(exactly: number) else { throw ConfigError("`admin.\(key)`: \(number) is not a valid id") }
                out.append(id)
            }
            return out
        }
        let pruneText = config.string("server", "prune_interval") ?? "1m"
        guard let pruneSeconds = ConfigDuration.seconds(pruneText), pruneSeconds >= 1 else {
            throw ConfigError("`server.prune_interval` `\(pruneText)`: a duration of at least 1s, e.g. 30s or 5m")
        }
        let datastore = config.string("server", "datastore").flatMap { $0.isEmpty ? nil : $0 }
        let directory = URL(fileURLWithPath: dataDir).standardizedFileURL.path
        return ServerOptions(dataDirectory: directory, trustDomain: trustDomain, datastore: datastore,
                             adminSocket: config.string("server", "admin_socket") ?? ServerOptions.defaultAdminSocket,
                             adminUIDs: try ids("uids"), adminGIDs: try ids("gids"), httpListen: listen,
                             pruneInterval: .seconds(pruneSeconds))
    }

    /// Hides a URL's password (`postgres://writ:***@db/writ`).
    public static func redact(_ key: ConfigKey, _ text: String) -> String {
        guard var components = URLComponents(string: text), components.password != nil else { return text }
        components.password = "***"
        return components.string ?? "***"
    }
}
