import Foundation
import WritConfig

/// What `writ agent run` is told: which server to trust and how, how to prove the node, where to
/// keep its state and where to serve workloads.
public struct AgentOptions: Sendable {
    /// The Workload API socket when none is given.
    public static let defaultSocket = "/tmp/writ-agent/public/api.sock"
    /// The agent's admin socket when none is given.
    public static let defaultAdminSocket = "/tmp/writ-agent/private/admin.sock"

    /// How the agent comes to trust its server the first time.
    public enum Bootstrap: Sendable, Hashable {
        /// A bundle file (PEM or SPIFFE JSON, detected).
        case bundleFile(String)
        /// The SHA-256 (lowercase hex) of the server's root certificate (DER).
        case rootSHA256(String)
        /// Trust whatever answers first (development only).
        case insecure
    }

    /// How the agent proves its node.
    public enum NodeAttestation: Sendable, Hashable {
        case joinToken(String)
        case x509pop(certificate: String, key: String)
        /// Only a stored agent SVID can be used (no method configured).
        case none
    }

    /// The server's agent API (gRPC over TLS 1.3).
    public var server: ListenAddress
    /// Holds the agent SVID, its key (0600), the trusted bundle and `ready.json`.
    public var dataDirectory: String
    /// The Workload API's Unix socket (mode 0777: attestation decides).
    public var socket: String
    /// The agent's admin socket (healthcheck, debug), mode 0600.
    public var adminSocket: String
    /// `/healthz`, `/readyz` and `/metrics`.
    public var httpListen: ListenAddress
    public var bootstrap: Bootstrap
    public var attestation: NodeAttestation
    /// SVIDs held ready for entries (least recently served dropped beyond it).
    public var svidCacheLimit: Int
    /// Workload keys generated ahead.
    public var keyPoolSize: Int
    /// Workload API calls a caller (by uid) may make per second (bursts up to this many).
    public var workloadRateLimit: Int
    /// `unix:script` for relative script paths (resolved against the process's cwd).
    public var scriptAllowRelative: Bool
    /// How long a Workload API call waits for a matching entry's SVID to be minted.
    public var svidWait: Duration
    /// Test only: a pause between reading a caller's credentials and attesting it.
    public var attestationDelay: Duration
    /// Test only: a pause between the server's answer to a renewal and storing the renewed SVID
    /// (what a slow disk does), so the server ends the old connection's streams first.
    public var renewalSaveDelay: Duration = .zero

    public init(server: ListenAddress, dataDirectory: String, socket: String = AgentOptions.defaultSocket,
                adminSocket: String = AgentOptions.defaultAdminSocket, httpListen: ListenAddress = ListenAddress(host: "127.0.0.1", port: 8088),
                bootstrap: Bootstrap, attestation: NodeAttestation, svidCacheLimit: Int = 1000, keyPoolSize: Int = 32,
                workloadRateLimit: Int = 200, scriptAllowRelative: Bool = false, svidWait: Duration = .seconds(10),
                attestationDelay: Duration = .zero) {
        self.server = server
        self.dataDirectory = dataDirectory
        self.socket = socket
        self.adminSocket = adminSocket
        self.httpListen = httpListen
        self.bootstrap = bootstrap
        self.attestation = attestation
        self.svidCacheLimit = svidCacheLimit
        self.keyPoolSize = keyPoolSize
        self.workloadRateLimit = workloadRateLimit
        self.scriptAllowRelative = scriptAllowRelative
        self.svidWait = svidWait
        self.attestationDelay = attestationDelay
    }

    func path(_ name: String) -> String { (dataDirectory as NSString).appendingPathComponent(name) }
}

/// Why the agent could not start or keep serving; the message says what to fix.
public struct AgentError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The options of `writ agent run`: one table of names, types and defaults that the flags, the
/// environment, `conf/agent.toml` and `writ config dump --component agent` all follow.
public enum AgentConfig {
    public static let schema = ConfigSchema(component: "agent", keys: [
        ConfigKey(table: "agent", key: "server", kind: .string, defaultValue: nil,
                  help: "The server's agent API, host:port. Required."),
        ConfigKey(table: "agent", key: "data_dir", kind: .string, defaultValue: nil,
                  help: "Where the agent keeps its SVID, its key (0600), the trusted bundle and ready.json. Required."),
        ConfigKey(table: "agent", key: "socket", kind: .string, defaultValue: .string(AgentOptions.defaultSocket),
                  help: "The Workload API's Unix socket (mode 0777: attestation, not permissions, decides who gets what)."),
        ConfigKey(table: "agent", key: "agent_admin_socket", kind: .string, defaultValue: .string(AgentOptions.defaultAdminSocket),
                  help: "The agent's admin socket for `writ agent healthcheck` and `writ agent debug` (mode 0600)."),
        ConfigKey(table: "agent", key: "http_listen", kind: .string, defaultValue: .string("127.0.0.1:8088"),
                  help: "Listener for /healthz, /readyz and /metrics (port 0 picks one)."),
        ConfigKey(table: "agent", key: "join_token", kind: .string, defaultValue: nil, secret: true,
                  help: "A join token from `writ token generate` (first start only: the agent SVID is kept in data_dir)."),
        ConfigKey(table: "agent", key: "trust_bundle", kind: .string, defaultValue: nil,
                  help: "The server's bundle (PEM or SPIFFE JSON, from `writ bundle show`), trusted on first contact."),
        ConfigKey(table: "agent", key: "trust_bundle_sha256", kind: .string, defaultValue: nil,
                  help: "Instead of a bundle file: the SHA-256 (hex) of the server's root certificate, checked before anything is trusted."),
        ConfigKey(table: "agent", key: "insecure_bootstrap", kind: .boolean, defaultValue: .boolean(false),
                  help: "Trust the first server that answers. Development only: anyone on the path can impersonate the server."),
        ConfigKey(table: "agent", key: "log_level", kind: .string, defaultValue: .string("info"),
                  help: "trace, debug, info, notice, warning, error or critical."),
        ConfigKey(table: "agent", key: "svid_cache_limit", kind: .integer, defaultValue: .integer(1000),
                  help: "X.509-SVIDs held ready for entries; beyond it the least recently served are dropped and minted again on demand."),
        ConfigKey(table: "agent", key: "key_pool_size", kind: .integer, defaultValue: .integer(32),
                  help: "Workload keys generated ahead of need (key generation is the slow part of minting)."),
        ConfigKey(table: "agent", key: "workload_rate_limit", kind: .integer, defaultValue: .integer(200),
                  help: "Workload API calls per second allowed for one caller uid (bursts up to this many)."),
        ConfigKey(table: "agent", key: "svid_wait", kind: .string, defaultValue: .string("10s"),
                  help: "How long a Workload API call waits for a matching entry's SVID before answering Unavailable."),
        ConfigKey(table: "x509pop", key: "cert", kind: .string, defaultValue: nil,
                  help: "PEM file of the node certificate chain for x509pop attestation (leaf first)."),
        ConfigKey(table: "x509pop", key: "key", kind: .string, defaultValue: nil,
                  help: "PEM (PKCS#8 or SEC1) file of the node certificate's P-256 or P-384 key."),
        ConfigKey(table: "unix", key: "script_allow_relative", kind: .boolean, defaultValue: .boolean(false),
                  help: "Emit unix:script selectors for scripts started by a relative path (resolved against the process's cwd)."),
    ])

    /// Turns resolved values into checked options; each error names the key.
    public static func options(from config: ResolvedConfig, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> AgentOptions {
        func required(_ key: String) throws(ConfigError) -> String {
            guard let value = config.string("agent", key), !value.isEmpty else {
                let flag = "--" + key.replacingOccurrences(of: "_", with: "-")
                throw ConfigError("`agent.\(key)` is required (\(flag), WRIT_\(key.uppercased()) or \(key) in [agent])")
            }
            return value
        }
        func address(_ key: String, _ text: String) throws(ConfigError) -> ListenAddress {
            do { return try ListenAddress(parsing: text) } catch { throw ConfigError("`agent.\(key)`: \(error.message)") }
        }
        func positive(_ table: String, _ key: String, _ fallback: Int64, maximum: Int64) throws(ConfigError) -> Int {
            let value = config.integer(table, key) ?? fallback
            guard value >= 1, value <= maximum else { throw ConfigError("`\(table).\(key)` \(value): between 1 and \(maximum)") }
            return Int(value)
        }
        let server = try address("server", try required("server"))
        let dataDir = URL(fileURLWithPath: try required("data_dir")).standardizedFileURL.path
        let level = config.string("agent", "log_level") ?? "info"
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) else {
            throw ConfigError("`agent.log_level` `\(level)`: one of trace, debug, info, notice, warning, error, critical")
        }
        let nonEmpty = { (table: String, key: String) -> String? in config.string(table, key).flatMap { $0.isEmpty ? nil : $0 } }
        let bundleFile = nonEmpty("agent", "trust_bundle")
        let pin = nonEmpty("agent", "trust_bundle_sha256")
        let insecure = config.value("agent", "insecure_bootstrap") == .boolean(true)
        let bootstrap: AgentOptions.Bootstrap
        switch (bundleFile, pin, insecure) {
        case (let file?, nil, false): bootstrap = .bundleFile(file)
        case (nil, let hex?, false):
            let normalized = hex.lowercased().replacingOccurrences(of: ":", with: "")
            guard normalized.count == 64, normalized.allSatisfy(\.isHexDigit) else {
                throw ConfigError("`agent.trust_bundle_sha256` `\(hex.prefix(80))`: 64 hex digits, the SHA-256 of the server's root certificate (DER)")
            }
            bootstrap = .rootSHA256(normalized)
        case (nil, nil, true): bootstrap = .insecure
        case (nil, nil, false):
            throw ConfigError("the agent must know how to trust its server: give --trust-bundle FILE (from `writ bundle show`) or --trust-bundle-sha256 HEX")
        default:
            throw ConfigError("`agent.trust_bundle`, `agent.trust_bundle_sha256` and `agent.insecure_bootstrap` exclude each other: give exactly one")
        }
        let token = nonEmpty("agent", "join_token")
        let (popCert, popKey) = (nonEmpty("x509pop", "cert"), nonEmpty("x509pop", "key"))
        guard (popCert == nil) == (popKey == nil) else {
            throw ConfigError("`x509pop.cert` and `x509pop.key` go together: give both (--x509pop-cert, --x509pop-key) or neither")
        }
        let attestation: AgentOptions.NodeAttestation
        switch (token, popCert, popKey) {
        case (let token?, nil, nil): attestation = .joinToken(token)
        case (nil, let cert?, let key?): attestation = .x509pop(certificate: cert, key: key)
        case (nil, nil, nil): attestation = .none
        default: throw ConfigError("`agent.join_token` and x509pop exclude each other: give one way to attest the node")
        }
        let waitText = config.string("agent", "svid_wait") ?? "10s"
        guard let wait = ConfigDuration.seconds(waitText), wait >= 1, wait <= 300 else {
            throw ConfigError("`agent.svid_wait` `\(waitText)`: a duration between 1s and 5m")
        }
        // A test hook, deliberately not an option: it only slows attestation down.
        var delay = Duration.zero
        if let text = environment["WRIT_TEST_ATTESTATION_DELAY_MS"], let milliseconds = Int(text), milliseconds > 0 {
            delay = .milliseconds(milliseconds)
        }
        var renewalDelay = Duration.zero
        if let text = environment["WRIT_TEST_RENEWAL_SAVE_DELAY_MS"], let milliseconds = Int(text), milliseconds > 0 {
            renewalDelay = .milliseconds(milliseconds)
        }
        var options = AgentOptions(server: server, dataDirectory: dataDir,
                            socket: config.string("agent", "socket") ?? AgentOptions.defaultSocket,
                            adminSocket: config.string("agent", "agent_admin_socket") ?? AgentOptions.defaultAdminSocket,
                            httpListen: try address("http_listen", config.string("agent", "http_listen") ?? "127.0.0.1:8088"),
                            bootstrap: bootstrap, attestation: attestation,
                            svidCacheLimit: try positive("agent", "svid_cache_limit", 1000, maximum: 1_000_000),
                            keyPoolSize: try positive("agent", "key_pool_size", 32, maximum: 10_000),
                            workloadRateLimit: try positive("agent", "workload_rate_limit", 200, maximum: 1_000_000),
                            scriptAllowRelative: config.value("unix", "script_allow_relative") == .boolean(true),
                            svidWait: .seconds(wait), attestationDelay: delay)
        options.renewalSaveDelay = renewalDelay
        return options
    }
}
