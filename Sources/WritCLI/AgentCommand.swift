import ArgumentParser
import Foundation
import WritModel

/// `writ agent …`: the attested agents, as the server records them.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the node agent; list, inspect, evict, ban and purge attested agents.",
        discussion: """
            `writ agent run` runs the agent on this node; `writ agent healthcheck` and \
            `writ agent debug` ask the local agent. The other commands administer the agents a \
            server knows, through the server's admin socket.

            An evicted agent must attest again (a join-token agent needs a new token); a banned agent is \
            refused at once and cannot attest again until it is purged. Both take effect on the agent's \
            next call, including an open sync stream.
            """,
        subcommands: [AgentRun.self, AgentHealthcheck.self, AgentDebug.self, List.self, Show.self, Count.self, Evict.self, Ban.self, Purge.self]
    )

    struct Filters: ParsableArguments {
        @Option(name: .customLong("selector"), help: ArgumentHelp("Only agents with this node selector (repeat: all of them).", valueName: "type:value"))
        var selectors: [String] = []
        @Flag(help: "Only banned agents.") var banned = false
        @Option(help: ArgumentHelp("Only agents whose SVID expires before this RFC 3339 time.", valueName: "time")) var expiresBefore: String?
        @Option(help: ArgumentHelp("Only agents attested with join_token or x509pop.", valueName: "type")) var attestationType: String?

        var query: [(String, String)] {
            var query = selectors.map { ("selector", $0) }
            if banned { query.append(("banned", "true")) }
            if let expiresBefore { query.append(("expires_before", expiresBefore)) }
            if let attestationType { query.append(("attestation_type", attestationType)) }
            return query
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List agents, ordered by SPIFFE ID.",
                                                        discussion: "Example:\n  writ agent list --selector join_token:id:3f2a… --output json")
        @OptionGroup var connection: AdminOptions
        @OptionGroup var filters: Filters

        func run() async throws {
            try await runAdmin {
                let data = try await AdminClient(socket: connection.adminSocket).send(.GET, "/v1/agents", query: filters.query)
                let list = try AdminAPI.decoder().decode(AdminAPI.AgentList.self, from: data)
                if connection.output == .json { try printJSON(list.agents) } else {
                    for agent in list.agents { printAgent(agent) ; print("") }
                    FileHandle.standardError.write(Data("\(list.agents.count) agent(s)\n".utf8))
                }
            }
        }
    }

    struct Count: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Count agents matching the filters.")
        @OptionGroup var connection: AdminOptions
        @OptionGroup var filters: Filters

        func run() async throws {
            try await runAdmin {
                let data = try await AdminClient(socket: connection.adminSocket).send(.GET, "/v1/agents-count", query: filters.query)
                let count = try AdminAPI.decoder().decode(AdminAPI.Count.self, from: data)
                if connection.output == .json { try printJSON(count) } else { print(count.count) }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one agent.",
                                                        discussion: "Example:\n  writ agent show --spiffe-id spiffe://example.org/writ/agent/join_token/3f2a…")
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("The agent's SPIFFE ID.", valueName: "id")) var spiffeID: String

        func run() async throws {
            try await runAdmin {
                let data = try await AdminClient(socket: connection.adminSocket).send(.GET, "/v1/agents/show", query: [("id", spiffeID)])
                let agent = try AdminAPI.decoder().decode(AgentRecord.self, from: data)
                if connection.output == .json { try printJSON(agent) } else { printAgent(agent) }
            }
        }
    }

    struct Evict: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Evict an agent: its SVID stops working and it must attest again.")
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("The agent's SPIFFE ID.", valueName: "id")) var spiffeID: String

        func run() async throws { try await action("/v1/agents/evict", verb: "Evicted", connection: connection, id: spiffeID) }
    }

    struct Ban: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ban an agent: refused at once, and it cannot attest again until purged.")
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("The agent's SPIFFE ID.", valueName: "id")) var spiffeID: String

        func run() async throws { try await action("/v1/agents/ban", verb: "Banned", connection: connection, id: spiffeID) }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete the records of agents whose SVID has expired (banned ones included).")
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("Purge agents whose SVID expired before this RFC 3339 time (default: now).", valueName: "time")) var expiredBefore: String?

        func run() async throws {
            try await runAdmin {
                let body = try JSONSerialization.data(withJSONObject: expiredBefore.map { ["expired_before": $0] } ?? [:])
                let data = try await AdminClient(socket: connection.adminSocket).send(.POST, "/v1/agents/purge", body: body)
                let purged = try AdminAPI.decoder().decode(AdminAPI.PurgedAgents.self, from: data)
                if connection.output == .json { try printJSON(purged) } else {
                    for id in purged.purged { print(id) }
                    FileHandle.standardError.write(Data("purged \(purged.purged.count) agent(s)\n".utf8))
                }
            }
        }
    }
}

private func action(_ path: String, verb: String, connection: AdminOptions, id: String) async throws {
    try await runAdmin {
        let body = try JSONSerialization.data(withJSONObject: ["id": id])
        let data = try await AdminClient(socket: connection.adminSocket).send(.POST, path, body: body)
        let agent = try AdminAPI.decoder().decode(AgentRecord.self, from: data)
        if connection.output == .json { try printJSON(agent) } else { print("\(verb) \(agent.id)") }
    }
}

private func printAgent(_ agent: AgentRecord) {
    let time = ISO8601DateFormatter()
    print("SPIFFE ID        : \(agent.id)")
    print("Attestation type : \(agent.attestationType)")
    print("Selectors        : \(agent.selectors.map(\.description).joined(separator: ", "))")
    print("SVID serial      : \(agent.serialNumber.isEmpty ? "-" : agent.serialNumber)")
    print("SVID expires at  : \(time.string(from: agent.expiresAt))")
    print("Banned           : \(agent.banned)")
}
