import ArgumentParser
import Foundation
import Logging
import WritAgent
import WritConfig

/// `writ agent run`: the node agent.
struct AgentRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the node agent: attest this node, then serve the SPIFFE Workload API to local processes.",
        discussion: """
            The agent proves its node to the server once (a join token, or an x509pop node \
            certificate), keeps its agent SVID and key in --data-dir (0600) so that a restart needs \
            no new token, and renews it at half-life. Workloads connect to --socket with any SPIFFE \
            client (py-spiffe, go-spiffe, Envoy, the Swift SDK); the agent attests each caller from \
            the kernel's view of the process and serves exactly the identities its entries grant. \
            Workload keys are made on this node and never written to disk.

            The first contact needs trust in the server: --trust-bundle FILE (from \
            `writ bundle show --format pem` on the server side) or --trust-bundle-sha256 HEX (the \
            SHA-256 of the root certificate's DER). --insecure-bootstrap trusts whatever answers \
            and is for development only.

            Every option is also a key of the config file (see conf/agent.toml) and an environment \
            variable: --server is server in [agent] and WRIT_SERVER. Writes <data-dir>/ready.json \
            once its sockets listen and the first sync with the server is complete.

            Examples:
              writ agent run --server writ.internal:8081 --data-dir /var/lib/writ-agent \\
                  --join-token "$(cat token)" --trust-bundle bundle.pem
              writ agent run --config /etc/writ/agent.toml
            """)

    @OptionGroup var settings: AgentSettings

    func run() async throws {
        let options = try settings.options()
        let level = Logger.Level(rawValue: try settings.resolved().string("agent", "log_level") ?? "info") ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "writ.agent")
        if case .insecure = options.bootstrap {
            logger.critical("INSECURE BOOTSTRAP: the agent trusts whichever server answers first at \(options.server). Anyone on the network path can impersonate the server and receive this node's join token. Development only.")
        }
        do {
            try await AgentProcess.run(options, logger: logger)
        } catch {
            var stderr = StandardError()
            print("error: \(error)", to: &stderr)
            throw ExitCode.failure
        }
    }
}

/// Options every command talking to the agent's admin socket shares.
struct AgentAdminOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The agent's admin socket (env WRIT_AGENT_ADMIN_SOCKET).", valueName: "path"))
    var agentAdminSocket: String = ProcessInfo.processInfo.environment["WRIT_AGENT_ADMIN_SOCKET"] ?? AgentOptions.defaultAdminSocket

    @Option(name: .long, help: "text (for people, default) or json.")
    var output: OutputFormat = .text

    var client: AdminClient {
        AdminClient(socket: agentAdminSocket, process: "the writ agent",
                    hint: "is `writ agent run` running? is --agent-admin-socket (or WRIT_AGENT_ADMIN_SOCKET) right?")
    }
}

/// `writ agent healthcheck`.
struct AgentHealthcheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "healthcheck",
        abstract: "Check the local agent (exit 0 healthy, 2 unhealthy, 69 unreachable).",
        discussion: "Healthy: the agent holds an unexpired agent SVID and has synced with its server.")
    @OptionGroup var connection: AgentAdminOptions

    func run() async throws {
        try await runAdmin {
            let data: Data
            do { data = try await connection.client.send(.GET, "/v1/health") } catch let failure as AdminFailure where failure.exitCode == 1 {
                // 503 carries the health body, not an error body: report it as unhealthy.
                throw AdminFailure("the agent is unhealthy", exitCode: 2)
            }
            let health = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
            if connection.output == .json { print(String(decoding: data, as: UTF8.self)) } else { print(health["status"] as? String ?? "unknown") }
        }
    }
}

/// `writ agent debug`.
struct AgentDebug: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "debug",
        abstract: "Show what the local agent holds: its ID, its server, entries, SVIDs, bundles and key pool.")
    @OptionGroup var connection: AgentAdminOptions

    func run() async throws {
        try await runAdmin {
            let data = try await connection.client.send(.GET, "/v1/debug")
            if connection.output == .json {
                print(String(decoding: data, as: UTF8.self))
            } else {
                let info = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
                for key in info.keys.sorted() {
                    var value = "\(info[key]!)"
                    // JSON booleans arrive as numbers: print the report's flags as words.
                    if ["connected", "synced"].contains(key), let flag = info[key] as? Bool { value = flag ? "true" : "false" }
                    if let list = info[key] as? [String] { value = list.isEmpty ? "-" : list.joined(separator: ", ") }
                    print("\(key.padding(toLength: 24, withPad: " ", startingAt: 0)): \(value)")
                }
            }
        }
    }
}

/// `writ config dump agent`.
struct DumpAgent: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Print the agent's effective configuration as TOML, secrets redacted, each value with its source.",
        discussion: "Takes the same --config, flags and environment as `writ agent run`.")

    @OptionGroup var settings: AgentSettings

    func run() throws {
        print(try settings.resolved().dump(redact: { key, text in key.secret ? "***" : text }), terminator: "")
    }
}

/// The options of `writ agent run`, all optional so that an absent flag falls through to the
/// environment, the file and the default (``AgentConfig/schema`` decides).
struct AgentSettings: ParsableArguments {
    @Option(help: ArgumentHelp("A TOML config file (see conf/agent.toml).", valueName: "file")) var config: String?
    @Option(help: ArgumentHelp("The server's agent API.", valueName: "host:port")) var server: String?
    @Option(help: ArgumentHelp("Where the agent keeps its SVID, key, bundle and ready.json.", valueName: "dir")) var dataDir: String?
    @Option(help: ArgumentHelp("The Workload API socket (default \(AgentOptions.defaultSocket)).", valueName: "path")) var socket: String?
    @Option(help: ArgumentHelp("The agent's admin socket (default \(AgentOptions.defaultAdminSocket)).", valueName: "path")) var agentAdminSocket: String?
    @Option(help: ArgumentHelp("Listener for /healthz, /readyz and /metrics (default 127.0.0.1:8088; port 0 picks one).", valueName: "host:port")) var httpListen: String?
    @Option(help: ArgumentHelp("A join token from `writ token generate` (needed only until the agent has an SVID).", valueName: "token")) var joinToken: String?
    @Option(help: ArgumentHelp("The server's bundle, PEM or SPIFFE JSON (from `writ bundle show`).", valueName: "file")) var trustBundle: String?
    @Option(help: ArgumentHelp("The SHA-256 (hex) of the server's root certificate, instead of a bundle file.", valueName: "hex")) var trustBundleSha256: String?
    @Flag(help: "Trust whichever server answers first. Development only.") var insecureBootstrap = false
    @Option(help: "trace, debug, info (default), notice, warning, error or critical.") var logLevel: String?
    @Option(help: ArgumentHelp("X.509-SVIDs held ready for entries (default 1000).", valueName: "n")) var svidCacheLimit: Int64?
    @Option(help: ArgumentHelp("Workload keys generated ahead of need (default 32).", valueName: "n")) var keyPoolSize: Int64?
    @Option(help: ArgumentHelp("Workload API calls per second per caller uid (default 200).", valueName: "n")) var workloadRateLimit: Int64?
    @Option(help: ArgumentHelp("How long a call waits for an SVID to be minted (default 10s).", valueName: "duration")) var svidWait: String?
    @Option(help: ArgumentHelp("PEM file of the node certificate chain for x509pop attestation.", valueName: "file")) var x509popCert: String?
    @Option(help: ArgumentHelp("PEM file of the node certificate's key.", valueName: "file")) var x509popKey: String?
    @Flag(help: "Emit unix:script selectors for scripts started by a relative path.") var unixScriptAllowRelative = false

    var flags: [String: TOMLValue] {
        var out: [String: TOMLValue] = [:]
        for (flag, value) in [("--server", server), ("--data-dir", dataDir), ("--socket", socket), ("--agent-admin-socket", agentAdminSocket),
                              ("--http-listen", httpListen), ("--join-token", joinToken), ("--trust-bundle", trustBundle),
                              ("--trust-bundle-sha256", trustBundleSha256), ("--log-level", logLevel), ("--svid-wait", svidWait),
                              ("--x509pop-cert", x509popCert), ("--x509pop-key", x509popKey)] {
            if let value { out[flag] = .string(value) }
        }
        for (flag, value) in [("--svid-cache-limit", svidCacheLimit), ("--key-pool-size", keyPoolSize), ("--workload-rate-limit", workloadRateLimit)] {
            if let value { out[flag] = .integer(value) }
        }
        if insecureBootstrap { out["--insecure-bootstrap"] = .boolean(true) }
        if unixScriptAllowRelative { out["--unix-script-allow-relative"] = .boolean(true) }
        return out
    }

    func resolved() throws -> ResolvedConfig {
        try resolveConfig(AgentConfig.schema, file: config, flags: flags)
    }

    func options() throws -> AgentOptions {
        do { return try AgentConfig.options(from: try resolved()) } catch let error as ConfigError {
            throw ValidationError(error.description)
        }
    }
}
