import ArgumentParser
import Foundation
import WritModel

/// `writ datastore …`.
struct DatastoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datastore",
        abstract: "Back up the server's datastore.",
        subcommands: [Backup.self]
    )

    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a consistent copy of a SQLite datastore to a new file, online.",
            discussion: """
                The server writes the file (mode 0600), so FILE is a path on the server's machine. \
                A PostgreSQL datastore is backed up with pg_dump (see docs/datastore.md).

                Example:
                  writ datastore backup /var/backups/writ-$(date +%F).sqlite3
                """)
        @OptionGroup var connection: AdminOptions
        @Argument(help: ArgumentHelp("The new file (an absolute path; relative paths are taken from the current directory).", valueName: "file"))
        var file: String

        func run() async throws {
            try await runAdmin {
                let path = URL(fileURLWithPath: file).standardizedFileURL.path
                let body = try JSONSerialization.data(withJSONObject: ["path": path])
                _ = try await AdminClient(socket: connection.adminSocket).send(.POST, "/v1/datastore/backup", body: body)
                if connection.output == .json { try printJSON(["path": path]) } else { print("backed up to \(path)") }
            }
        }
    }
}

/// `writ healthcheck`: is the server up and serving its admin API?
struct HealthcheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "healthcheck",
        abstract: "Check that the server answers on its admin socket (exit 0 healthy, 2 not serving, 69 unreachable).")
    @OptionGroup var connection: AdminOptions

    func run() async throws {
        try await runAdmin {
            let health = try AdminAPI.decoder().decode(AdminAPI.Health.self, from: try await AdminClient(socket: connection.adminSocket).send(.GET, "/v1/health"))
            if connection.output == .json { try printJSON(health) } else { print("\(health.status) (trust domain \(health.trustDomain), datastore \(health.datastore))") }
            guard health.status == "serving" else { throw AdminFailure("the server is \(health.status)", exitCode: 2) }
        }
    }
}
