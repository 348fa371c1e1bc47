import ArgumentParser
import Foundation

/// `writ bundle …`: the trust domain's bundle.
struct BundleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Show the trust bundle this server publishes.",
        subcommands: [Show.self]
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the bundle: the SPIFFE bundle document (JWKS) or the X.509 authorities as PEM.",
            discussion: """
                An agent's first connection needs the bundle to trust the server. Examples:
                  writ bundle show --format pem > bundle.pem
                  writ bundle show | jq '.spiffe_sequence'
                """)
        enum Format: String, ExpressibleByArgument, CaseIterable { case spiffe, pem }
        @OptionGroup var connection: AdminOptions
        @Option(help: "spiffe (the SPIFFE bundle JSON, default) or pem (X.509 authorities).") var format: Format = .spiffe

        func run() async throws {
            try await runAdmin {
                let data = try await AdminClient(socket: connection.adminSocket).send(.GET, "/v1/bundle", query: [("format", format.rawValue)])
                FileHandle.standardOutput.write(data)
                if format == .spiffe { print("") }
            }
        }
    }
}
