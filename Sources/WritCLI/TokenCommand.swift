import ArgumentParser
import Foundation
import WritModel

/// `writ token …`: join tokens for node attestation.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Generate single-use join tokens for agents.",
        subcommands: [Generate.self]
    )

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate a join token (shown once; the server keeps only its hash).",
            discussion: """
                The agent started with the token gets the ID spiffe://<td>/writ/agent/join_token/<token id>. \
                With --spiffe-id it also gets that node alias.

                Examples:
                  writ token generate
                  writ token generate --ttl 1h --spiffe-id spiffe://example.org/nodes/web
                """)
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("How long the token can be used (10s to 7d).", valueName: "duration")) var ttl: String = "10m"
        @Option(help: ArgumentHelp("A node alias the agent also gets.", valueName: "id")) var spiffeID: String?

        func run() async throws {
            try await runAdmin {
                let request = AdminAPI.CreateJoinTokenRequest(ttl: try parseDuration(ttl, flag: "--ttl"), spiffeID: spiffeID)
                let body = try AdminAPI.encoder().encode(request)
                let token = try AdminAPI.decoder().decode(AdminAPI.JoinToken.self,
                                                          from: try await AdminClient(socket: connection.adminSocket).send(.POST, "/v1/join-tokens", body: body))
                if connection.output == .json {
                    try printJSON(token)
                } else {
                    print("Token      : \(token.token)")
                    print("Agent ID   : \(token.agentID)")
                    print("Expires at : \(ISO8601DateFormatter().string(from: token.expiresAt))")
                    if let alias = token.nodeAliasEntryID { print("Node alias : \(spiffeID ?? "") (entry \(alias))") }
                }
            }
        }
    }
}
