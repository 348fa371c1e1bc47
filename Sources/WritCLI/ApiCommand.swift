import ArgumentParser
import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import SPIFFEWorkloadAPI
import SwiftASN1
import WritConfig
#if canImport(Glibc)
import Glibc
#endif

/// `writ api …`: what a workload asks its agent, through the SPIFFE Workload API.
struct ApiCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api",
        abstract: "Ask the local agent for this process's identity (the SPIFFE Workload API).",
        discussion: """
            The socket comes from --socket, else SPIFFE_ENDPOINT_SOCKET (unix:///path or \\
            unix:/path). The agent attests the calling process and answers with exactly the \\
            identities its entries grant. Examples:
              writ api fetch x509 --write ./certs      svid.0.pem, svid.0.key (0600), bundle.0.pem
              writ api fetch jwt --audience https://api.example.org
              writ api validate-jwt --audience https://api.example.org "$TOKEN"
              writ api watch                            one JSON line per update
            Exit codes: 0 ok, 2 token invalid, 5 no identity for this process (after --timeout), \\
            69 no agent at the socket, 1 other failures.
            """,
        subcommands: [Fetch.self, ValidateJWT.self, Watch.self])

    struct Fetch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fetch X.509-SVIDs, JWT-SVIDs or bundles.",
            subcommands: [FetchX509.self, FetchJWT.self, FetchBundles.self])
    }
}

/// What every `writ api` command shares.
struct WorkloadOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The Workload API socket (default: SPIFFE_ENDPOINT_SOCKET).", valueName: "path"))
    var socket: String?
    @Option(help: ArgumentHelp("How long to keep asking while the agent answers PermissionDenied or is unreachable (default 5s).", valueName: "duration"))
    var timeout: String = "5s"

    func client() throws -> WorkloadAPIClient {
        do {
            if let socket { return try WorkloadAPIClient(endpoint: socket.hasPrefix("unix:") ? socket : "unix://" + socket) }
            return try WorkloadAPIClient.fromEnvironment()
        } catch {
            throw ValidationError(error.message + " (give --socket or set SPIFFE_ENDPOINT_SOCKET)")
        }
    }

    var deadline: ContinuousClock.Instant {
        get throws {
            guard let seconds = ConfigDuration.seconds(timeout) else { throw ValidationError("--timeout `\(timeout)`: a duration such as 5s or 1m") }
            return .now + .seconds(seconds)
        }
    }

    /// Runs `body`, retrying PermissionDenied and Unavailable every 500 ms until the deadline (the
    /// agent may still be minting the identity); failures become messages and exit codes.
    func retrying<T>(_ body: () async throws(WorkloadAPIError) -> T) async throws -> T {
        let deadline = try self.deadline
        while true {
            do { return try await body() } catch {
                let retryable = error.code == .permissionDenied || error.code == .unavailable
                if retryable, ContinuousClock.now + .milliseconds(500) < deadline {
                    try await Task.sleep(for: .milliseconds(500))
                    continue
                }
                var stderr = StandardError()
                print("error: \(error.message)", to: &stderr)
                switch error.code {
                case .permissionDenied: throw ExitCode(5)
                case .unavailable: throw ExitCode(69)
                case .invalidArgument: throw ExitCode(2)
                default: throw ExitCode.failure
                }
            }
        }
    }
}

struct FetchX509: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "x509",
        abstract: "Fetch this process's X.509-SVIDs; print them, or write them with --write.",
        discussion: """
            With --write DIR: svid.N.pem (leaf first, then intermediates), svid.N.key (PKCS#8 PEM, \\
            mode 0600) and bundle.N.pem for each identity N (0 is the default), e.g. for \\
            `openssl s_server -cert svid.0.pem -key svid.0.key -CAfile bundle.0.pem`.
            """)
    @OptionGroup var workload: WorkloadOptions
    @Option(help: ArgumentHelp("Write the files into this directory.", valueName: "dir")) var write: String?
    @Option(help: "text (default) or json.") var output: OutputFormat = .text

    func run() async throws {
        let client = try workload.client()
        let context = try await workload.retrying { () async throws(WorkloadAPIError) in try await client.fetchX509Context() }
        if let write {
            try await runAdmin {
                for (index, svid) in context.svids.enumerated() {
                    try SVIDCommand.X509.write(directory: write, index: index,
                                               chain: svid.chainDER.map { PEMDocument(type: "CERTIFICATE", derBytes: $0).pemString + "\n" }.joined(),
                                               key: PEMDocument(type: "PRIVATE KEY", derBytes: svid.privateKeyPKCS8).pemString + "\n",
                                               bundle: context.bundles[svid.id.trustDomain]?.x509AuthoritiesPEM() ?? "")
                }
            }
        }
        if output == .json {
            let list: [[String: Any]] = context.svids.map { svid in
                ["spiffe_id": svid.id.uri, "hint": svid.hint, "expires_at": ISO8601DateFormatter().string(from: svid.chain[0].notValidAfter),
                 "serial_number": svid.chain[0].serialNumber.bytes.map { String(format: "%02x", $0) }.joined()]
            }
            print(String(decoding: try JSONSerialization.data(withJSONObject: ["svids": list], options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]), as: UTF8.self))
        } else {
            for (index, svid) in context.svids.enumerated() {
                print("SPIFFE ID        : \(svid.id)\(index == 0 ? " (default)" : "")")
                if !svid.hint.isEmpty { print("Hint             : \(svid.hint)") }
                print("Expires at       : \(ISO8601DateFormatter().string(from: svid.chain[0].notValidAfter))")
                print("Chain            : \(svid.chain.count) certificate(s)")
            }
            if let write { FileHandle.standardError.write(Data("wrote \(context.svids.count) SVID(s) to \(write)\n".utf8)) }
        }
    }
}

struct FetchJWT: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jwt",
        abstract: "Fetch JWT-SVIDs for an audience; one token per line.")
    @OptionGroup var workload: WorkloadOptions
    @Option(help: ArgumentHelp("The audience (repeat for several).", valueName: "aud")) var audience: [String]
    @Option(name: .customLong("spiffe-id"), help: ArgumentHelp("Only this identity of the process.", valueName: "id")) var spiffeID: String?

    func validate() throws {
        guard !audience.isEmpty else { throw ValidationError("--audience is required") }
    }

    func run() async throws {
        let client = try workload.client()
        var id: SPIFFEID?
        if let spiffeID {
            do { id = try SPIFFEID(parsing: spiffeID) } catch { throw ValidationError("--spiffe-id: \(error.message)") }
        }
        let wanted = id
        let svids = try await workload.retrying { () async throws(WorkloadAPIError) in try await client.fetchJWTSVIDs(audience: audience, spiffeID: wanted) }
        for svid in svids { print(svid.token) }
    }
}

struct FetchBundles: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundles",
        abstract: "Fetch the X.509 bundles this process may use (its trust domain's and federated ones), as PEM.")
    @OptionGroup var workload: WorkloadOptions

    func run() async throws {
        let client = try workload.client()
        let bundles = try await workload.retrying { () async throws(WorkloadAPIError) in try await client.fetchX509Bundles() }
        for domain in bundles.keys.sorted() {
            print("# \(domain.id.uri)")
            print(bundles[domain]!.x509AuthoritiesPEM(), terminator: "")
        }
    }
}

struct ValidateJWT: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate-jwt",
        abstract: "Ask the agent to validate a JWT-SVID for an audience (exit 0 valid, 2 invalid).")
    @OptionGroup var workload: WorkloadOptions
    @Option(help: ArgumentHelp("The audience the token must carry.", valueName: "aud")) var audience: String
    @Argument(help: "The token (- reads it from stdin).") var token: String

    func run() async throws {
        let client = try workload.client()
        var text = token
        if text == "-" { text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
        let jwt = text
        // An invalid token is InvalidArgument: exit 2, not retried.
        let id = try await workload.retrying { () async throws(WorkloadAPIError) in try await client.validateJWTSVID(jwt, audience: audience) }
        print(id.uri)
    }
}

struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow this process's X.509-SVIDs: one JSON line per update, until interrupted.")
    @OptionGroup var workload: WorkloadOptions

    func run() async throws {
        let client = try workload.client()
        try await workload.retrying { () async throws(WorkloadAPIError) in
            try await client.watchX509Contexts { context in
                let line: [String: Any] = ["svids": context.svids.map { svid in
                    ["spiffe_id": svid.id.uri, "hint": svid.hint, "expires_at": ISO8601DateFormatter().string(from: svid.chain[0].notValidAfter),
                     "serial_number": svid.chain[0].serialNumber.bytes.map { String(format: "%02x", $0) }.joined()]
                }, "trust_domains": context.bundles.keys.map(\.name).sorted()]
                let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys, .withoutEscapingSlashes])
                FileHandle.standardOutput.write(data + Data("\n".utf8))
                return true
            }
        }
    }
}
