import Foundation
import Testing
import WritTestSupport

/// The config contract: every flag of `writ server run` has a key in `conf/server.toml` and an
/// environment name that the binary really reads, and the reverse; a flag beats the
/// environment, which beats the file; an unknown key is reported with its line.
@Suite struct ConfigContractTests {
    static func writ(_ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessRunner.Result {
        // Start from an environment without WRIT_* so that the machine's settings do not leak in.
        var clean = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("WRIT_") }
        clean.merge(environment) { $1 }
        return try await ProcessRunner.run("/usr/bin/env", ["-i"] + clean.map { "\($0.key)=\($0.value)" } + [try TestEnvironment.executable("writ")] + arguments)
    }

    /// `(table, key)` of every key the template lists (commented `# key = default` lines).
    static func templateKeys(_ file: String = "conf/server.toml") throws -> [(String, String)] {
        let text = try String(contentsOf: TestEnvironment.packageRoot.appendingPathComponent(file), encoding: .utf8)
        var table = ""
        var keys: [(String, String)] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("["), line.hasSuffix("]") { table = String(line.dropFirst().dropLast()) }
            if line.hasPrefix("# "), let eq = line.range(of: " = "), !table.isEmpty {
                let key = line[line.index(line.startIndex, offsetBy: 2)..<eq.lowerBound]
                if key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) { keys.append((table, String(key))) }
            }
        }
        return keys
    }

    static func flag(_ table: String, _ key: String, component: String = "server") -> String {
        "--" + (table == component ? key : table + "_" + key).replacingOccurrences(of: "_", with: "-")
    }

    /// The long flags of a subcommand, from ArgumentParser's help dump.
    static func flags(of command: [String]) async throws -> Set<String> {
        let help = try await Self.writ(command + ["--experimental-dump-help"])
        guard help.status == 0, let tool = try JSONSerialization.jsonObject(with: Data(help.stdout.utf8)) as? [String: Any],
              let described = tool["command"] as? [String: Any] else { throw TestFailure("no help dump: \(help.summary)") }
        var flags: Set<String> = []
        for argument in described["arguments"] as? [[String: Any]] ?? [] {
            for name in argument["names"] as? [[String: Any]] ?? [] where name["kind"] as? String == "long" {
                flags.insert("--" + (name["name"] as? String ?? ""))
            }
        }
        return flags.subtracting(["--help", "--version", "--config"])
    }

    /// The same contract for `writ agent run`, `conf/agent.toml` and `writ config dump agent`.
    @Test func theAgentsFlagsKeysAndEnvironmentNamesMatch() async throws {
        let flags = try await Self.flags(of: ["agent", "run"])
        let keys = try Self.templateKeys("conf/agent.toml")
        let fromKeys = Set(keys.map { Self.flag($0.0, $0.1, component: "agent") })
        #expect(flags == fromKeys, "flags without a key: \(flags.subtracting(fromKeys)); keys without a flag: \(fromKeys.subtracting(flags))")
        let samples: [String: (String, String)] = [
            "server": ("writ.example:8081", "\"writ.example:8081\""), "data_dir": ("/srv/agent", "\"/srv/agent\""),
            "socket": ("/tmp/env/api.sock", "\"/tmp/env/api.sock\""), "agent_admin_socket": ("/tmp/env/admin.sock", "\"/tmp/env/admin.sock\""),
            "http_listen": ("127.0.0.1:9997", "\"127.0.0.1:9997\""), "join_token": ("s3cret-token", "\"***\""),
            "trust_bundle": ("/srv/bundle.pem", "\"/srv/bundle.pem\""), "trust_bundle_sha256": ("ab" + String(repeating: "0", count: 62), "\"ab" + String(repeating: "0", count: 62) + "\""),
            "insecure_bootstrap": ("true", "true"), "log_level": ("debug", "\"debug\""), "svid_cache_limit": ("50", "50"),
            "key_pool_size": ("4", "4"), "workload_rate_limit": ("7", "7"), "svid_wait": ("3s", "\"3s\""),
            "cert": ("/srv/node.pem", "\"/srv/node.pem\""), "key": ("/srv/node-key.pem", "\"/srv/node-key.pem\""), "script_allow_relative": ("true", "true"),
        ]
        for (table, key) in keys {
            let (value, shown) = try #require(samples[key], "no sample for \(table).\(key): add one")
            let flag = Self.flag(table, key, component: "agent")
            let environment = "WRIT_" + flag.dropFirst(2).replacingOccurrences(of: "-", with: "_").uppercased()
            let dump = try await Self.writ(["config", "dump", "agent"], environment: [environment: value])
            #expect(dump.status == 0, "\(dump.summary)")
            #expect(dump.stdout.contains("\(key) = \(shown)  # environment"), "\(environment) is not read:\n\(dump.stdout)")
            #expect(!dump.stdout.contains("s3cret-token"), "the join token must be redacted")
            let flagArguments = ["insecure_bootstrap", "script_allow_relative"].contains(key) ? [flag] : [flag, value]
            let both = try await Self.writ(["config", "dump", "agent"] + flagArguments, environment: [environment: value])
            #expect(both.stdout.split(separator: "\n").contains { $0.hasPrefix("\(key) = ") && $0.hasSuffix("# flag") },
                    "\(flag) does not beat \(environment):\n\(both.summary)")
        }
        // The options are checked: exactly one way to trust the server, a join token or x509pop.
        let none = try await Self.writ(["agent", "run", "--server", "127.0.0.1:1", "--data-dir", "/tmp/writ-never"])
        #expect(none.status == 64 && none.stderr.contains("--trust-bundle"), "\(none.summary)")
        let both = try await Self.writ(["agent", "run", "--server", "127.0.0.1:1", "--data-dir", "/tmp/writ-never", "--trust-bundle", "/x", "--insecure-bootstrap"])
        #expect(both.status == 64 && both.stderr.contains("exclude each other"), "\(both.summary)")
        let pin = try await Self.writ(["agent", "run", "--server", "127.0.0.1:1", "--data-dir", "/tmp/writ-never", "--trust-bundle-sha256", "abc"])
        #expect(pin.status == 64 && pin.stderr.contains("64 hex digits"), "\(pin.summary)")
        let popHalf = try await Self.writ(["agent", "run", "--server", "127.0.0.1:1", "--data-dir", "/tmp/writ-never", "--trust-bundle", "/x", "--x509pop-cert", "/c"])
        #expect(popHalf.status == 64 && popHalf.stderr.contains("go together"), "\(popHalf.summary)")
    }

    @Test func everyFlagHasAKeyAndAnEnvironmentNameAndTheReverse() async throws {
        let help = try await Self.writ(["server", "run", "--experimental-dump-help"])
        #expect(help.status == 0, "\(help.summary)")
        let tool = try #require(try JSONSerialization.jsonObject(with: Data(help.stdout.utf8)) as? [String: Any])
        let command = try #require(tool["command"] as? [String: Any])
        var flags: Set<String> = []
        for argument in command["arguments"] as? [[String: Any]] ?? [] {
            for name in argument["names"] as? [[String: Any]] ?? [] where name["kind"] as? String == "long" {
                flags.insert("--" + (name["name"] as? String ?? ""))
            }
        }
        flags.subtract(["--help", "--version", "--config"])
        let keys = try Self.templateKeys()
        let fromKeys = Set(keys.map { Self.flag($0.0, $0.1) })
        #expect(flags == fromKeys, "flags without a key: \(flags.subtracting(fromKeys)); keys without a flag: \(fromKeys.subtracting(flags))")

        // Each key, set only through its environment variable, is in effect (and says so).
        let samples: [String: (String, String)] = [
            "data_dir": ("/srv/env-data", "\"/srv/env-data\""), "trust_domain": ("env.example", "\"env.example\""),
            "datastore": ("sqlite:/srv/env.sqlite3", "\"sqlite:/srv/env.sqlite3\""), "admin_socket": ("/tmp/env/admin.sock", "\"/tmp/env/admin.sock\""),
            "http_listen": ("127.0.0.1:9999", "\"127.0.0.1:9999\""), "log_level": ("debug", "\"debug\""), "prune_interval": ("45s", "\"45s\""),
            "uids": ("11,12", "[11, 12]"), "gids": ("21", "[21]"),
            "listen": ("127.0.0.1:9998", "\"127.0.0.1:9998\""), "agent_svid_ttl": ("2h", "\"2h\""),
            "x509_svid_ttl": ("30m", "\"30m\""), "jwt_svid_ttl": ("10m", "\"10m\""), "attest_rate_limit": ("30", "30"),
            "ca_bundle": ("/srv/env-node-ca.pem", "\"/srv/env-node-ca.pem\""),
            "ids": ("spiffe://env.example/ops/ci", "[\"spiffe://env.example/ops/ci\"]"),
            "ca_cert": ("/srv/env-upstream.pem", "\"/srv/env-upstream.pem\""), "ca_key": ("/srv/env-upstream-key.pem", "\"/srv/env-upstream-key.pem\""),
        ]
        for (table, key) in keys {
            let (value, shown) = try #require(samples[key], "no sample for \(table).\(key): add one")
            let environment = "WRIT_" + Self.flag(table, key).dropFirst(2).replacingOccurrences(of: "-", with: "_").uppercased()
            let dump = try await Self.writ(["config", "dump"], environment: [environment: value])
            #expect(dump.status == 0, "\(dump.summary)")
            #expect(dump.stdout.contains("\(key) = \(shown)  # environment"), "\(environment) is not read:\n\(dump.stdout)")
            // The flag beats the environment.
            let flagValue: [String]
            switch key {
            case "uids", "gids", "attest_rate_limit": flagValue = ["99"]
            case "http_listen", "listen": flagValue = ["127.0.0.1:1"]
            default: flagValue = [value + "x"]
            }
            let both = try await Self.writ(["config", "dump", Self.flag(table, key)] + flagValue, environment: [environment: value])
            #expect(both.stdout.contains("\(key) = ") && both.stdout.split(separator: "\n").contains { $0.hasPrefix("\(key) = ") && $0.hasSuffix("# flag") },
                    "\(Self.flag(table, key)) does not beat \(environment):\n\(both.summary)")
        }
    }

    @Test func theFileIsReadAndUnknownKeysNameTheirLine() async throws {
        let directory = try TemporaryDirectory(prefix: "writ-config")
        let good = directory.file("server.toml")
        try "[server]\ndata_dir = \"/srv/file\"\ntrust_domain = \"file.example\"\ndatastore = \"postgres://writ:s3cret@db:5432/writ\"\n[admin]\nuids = [5]\n"
            .write(to: good, atomically: true, encoding: .utf8)
        let dump = try await Self.writ(["config", "dump", "--config", good.path], environment: ["WRIT_TRUST_DOMAIN": "env.example"])
        #expect(dump.status == 0, "\(dump.summary)")
        #expect(dump.stdout.contains("data_dir = \"/srv/file\"  # file"))
        #expect(dump.stdout.contains("trust_domain = \"env.example\"  # environment"), "the environment beats the file")
        #expect(dump.stdout.contains("uids = [5]  # file") && dump.stdout.contains("log_level = \"info\"  # default"))
        #expect(dump.stdout.contains("***") && !dump.stdout.contains("s3cret"), "the datastore password is redacted:\n\(dump.stdout)")
        #expect(try await Self.writ(["server", "validate", "--config", good.path]).stdout.contains("configuration ok"))

        let bad = directory.file("bad.toml")
        try "[server]\ndata_dir = \"/srv\"\ncolour = \"red\"\n".write(to: bad, atomically: true, encoding: .utf8)
        let refused = try await Self.writ(["server", "validate", "--config", bad.path])
        #expect(refused.status == 64 && refused.stderr.contains("line 3") && refused.stderr.contains("unknown key `server.colour`"), "\(refused.summary)")
        let missing = try await Self.writ(["server", "validate"])
        #expect(missing.status == 64 && missing.stderr.contains("data_dir"), "\(missing.summary)")
        let wrong = try await Self.writ(["server", "validate", "--data-dir", "/srv", "--trust-domain", "Bad_Domain"])
        #expect(wrong.status == 64 && wrong.stderr.contains("trust_domain"), "\(wrong.summary)")
    }
}
