import ArgumentParser

/// The `writ` command: one binary for the server, the node agent, the gate, the one-machine
/// development setup and the admin commands.
public struct WritCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "writ",
        abstract: "Workload identity for AI agents and services (SPIFFE).",
        discussion: """
            Every agent, service and job gets its own short-lived SPIFFE identity after its node \
            and process are attested.

            Start here:
              writ dev          run the whole system on this machine (embedded SQLite)
              writ server run   run the server of one trust domain
              writ agent run    run the node agent (the SPIFFE Workload API for this machine)
              writ entry …      manage registration entries (talks to the server's admin socket)
              writ api …        fetch this process's identity from the local agent
              writ policy …     decide requests against Cedar policies
              writ version      print the version and the standards Writ implements

            Exit codes: 0 ok, 1 failure, 2 negative answer, 3 not found, 4 conflict,
            5 not authorized, 64 usage error, 69 server unreachable.
            """,
        version: WritVersion.string,
        subcommands: [ServerCommand.self, EntryCommand.self, AgentCommand.self, TokenCommand.self, BundleCommand.self, AuthorityCommand.self, AuditCommand.self, SVIDCommand.self, ApiCommand.self, PolicyCommand.self, DatastoreCommand.self, HealthcheckCommand.self, ConfigCommand.self, DevCommand.self, VersionCommand.self]
    )

    public init() {}
}

/// The version of this build.
public enum WritVersion {
    /// The semantic version of the `writ` binary.
    public static let string = "0.1.0-dev"
}

/// `writ version`.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print the version and the standards this build implements."
    )

    func run() {
        print("writ \(WritVersion.string)")
        print("standards: SPIFFE ID, X.509-SVID, JWT-SVID, SPIFFE trust bundle")
    }
}

/// Writes human messages to standard error (JSON and data go to standard output).
struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandleStream.standardError.write(string)
    }
}
