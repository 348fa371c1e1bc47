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
        ConfigKey(table: "server", key: "listen", kind: .string, defaultValue: .string("0.0.0.0:8081"),
                  help: "The agent API (gRPC over TLS 1.3; port 0 picks one)."),
        ConfigKey(table: "server", key: "agent_svid_ttl", kind: .string, defaultValue: .string("1h"),
                  help: "Lifetime of agent SVIDs; agents renew at half of it."),
        ConfigKey(table: "server", key: "x509_svid_ttl", kind: .string, defaultValue: .string("1h"),
                  help: "Default lifetime of workload X.509-SVIDs (an entry's x509_svid_ttl wins)."),
        ConfigKey(table: "server", key: "jwt_svid_ttl", kind: .string, defaultValue: .string("5m"),
                  help: "Default lifetime of JWT-SVIDs (an entry's jwt_svid_ttl wins)."),
        ConfigKey(table: "server", key: "attest_rate_limit", kind: .integer, defaultValue: .integer(60),
                  help: "Attestations allowed per source address per minute (bursts up to this many)."),
        ConfigKey(table: "server", key: "log_level", kind: .string, defaultValue: .string("info"),
                  help: "trace, debug, info, notice, warning, error or critical."),
        ConfigKey(table: "server", key: "prune_interval", kind: .string, defaultValue: .string("1m"),
                  help: "How often expired entries and join tokens are deleted (a duration such as 30s or 5m)."),
        ConfigKey(table: "x509pop", key: "ca_bundle", kind: .string, defaultValue: nil,
                  help: "PEM file of the CA certificates that vouch for nodes in x509pop attestation (unset: x509pop is refused)."),
        ConfigKey(table: "upstream", key: "ca_cert", kind: .string, defaultValue: nil,
                  help: "PEM file of an upstream CA chain (signing certificate first, trust anchor last): every server's intermediate is signed by it instead of a self-signed root. Needs ca_key."),
        ConfigKey(table: "upstream", key: "ca_key", kind: .string, defaultValue: nil,
                  help: "PEM (PKCS#8) file of the upstream CA's private key; it is copied into <data_dir>/ca/keys (0600)."),
        ConfigKey(table: "admin", key: "uids", kind: .integerList, defaultValue: .array([]),
                  help: "Besides root and the server's own user, uids allowed on the admin socket."),
        ConfigKey(table: "admin", key: "gids", kind: .integerList, defaultValue: .array([]),
                  help: "Gids whose members are allowed on the admin socket."),
        ConfigKey(table: "admin", key: "listen", kind: .string, defaultValue: nil,
                  help: "Also serve the admin API over HTTPS on this address (TLS 1.3; callers present an X.509-SVID of an admin entry or of admin.ids). Unset: socket only."),
        ConfigKey(table: "admin", key: "ids", kind: .stringList, defaultValue: .array([]),
                  help: "SPIFFE IDs allowed on the TCP admin listener besides those of `admin: true` entries."),
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
        func duration(_ key: String, _ fallback: String, minimum: Int64, maximum: Int64) throws(ConfigError) -> Duration {
            let text = config.string("server", key) ?? fallback
            guard let seconds = ConfigDuration.seconds(text), seconds >= minimum, seconds <= maximum else {
                throw ConfigError("`server.\(key)` `\(text)`: a duration between \(minimum)s and \(maximum / 86400)d, e.g. 30m or 1h")
            }
            return .seconds(seconds)
        }
        let agentListen: ListenAddress
        do { agentListen = try ListenAddress(parsing: config.string("server", "listen") ?? "") } catch {
            throw ConfigError("`server.listen`: \(error.message)")
        }
        let rate = config.integer("server", "attest_rate_limit") ?? 60
        guard rate >= 1, rate <= 1_000_000 else { throw ConfigError("`server.attest_rate_limit` \(rate): between 1 and 1000000 per minute") }
        let datastore = config.string("server", "datastore").flatMap { $0.isEmpty ? nil : $0 }
        let upstreamCert = config.string("upstream", "ca_cert").flatMap { $0.isEmpty ? nil : $0 }
        let upstreamKey = config.string("upstream", "ca_key").flatMap { $0.isEmpty ? nil : $0 }
        guard (upstreamCert == nil) == (upstreamKey == nil) else {
            throw ConfigError("`upstream.ca_cert` and `upstream.ca_key` go together: give both (--upstream-ca-cert, --upstream-ca-key) or neither")
        }
        var adminListen: ListenAddress?
        if let text = config.string("admin", "listen"), !text.isEmpty {
            do { adminListen = try ListenAddress(parsing: text) } catch { throw ConfigError("`admin.listen`: \(error.message)") }
        }
        var adminIDs: [SPIFFEID] = []
        for text in config.strings("admin", "ids") {
            let id: SPIFFEID
            do { id = try SPIFFEID(parsing: text) } catch { throw ConfigError("`admin.ids` `\(text)`: \(error.message)") }
            guard id.trustDomain == trustDomain, !id.isRoot else {
                throw ConfigError("`admin.ids` `\(text)`: an admin must be a workload of the trust domain `\(trustDomain)`")
            }
            adminIDs.append(id)
        }
        let directory = URL(fileURLWithPath: dataDir).standardizedFileURL.path
        return ServerOptions(dataDirectory: directory, trustDomain: trustDomain, datastore: datastore,
                             adminSocket: config.string("server", "admin_socket") ?? ServerOptions.defaultAdminSocket,
                             adminUIDs: try ids("uids"), adminGIDs: try ids("gids"), httpListen: listen,
                             pruneInterval: .seconds(pruneSeconds), listen: agentListen,
                             agentSVIDTTL: try duration("agent_svid_ttl", "1h", minimum: 60, maximum: 7 * 86400),
                             x509SVIDTTL: try duration("x509_svid_ttl", "1h", minimum: 10, maximum: 7 * 86400),
                             jwtSVIDTTL: try duration("jwt_svid_ttl", "5m", minimum: 10, maximum: 7 * 86400),
                             attestRatePerMinute: Int(rate),
                             x509popCABundle: config.string("x509pop", "ca_bundle").flatMap { $0.isEmpty ? nil : $0 },
                             adminListen: adminListen, adminIDs: adminIDs,
                             upstreamCACert: upstreamCert, upstreamCAKey: upstreamKey)
    }

    /// Hides a URL's password (`postgres://writ:***@db/writ`).
    public static func redact(_ key: ConfigKey, _ text: String) -> String {
        guard var components = URLComponents(string: text), components.password != nil else { return text }
        components.password = "***"
        return components.string ?? "***"
    }
}
