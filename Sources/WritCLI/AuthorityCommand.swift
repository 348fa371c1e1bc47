import ArgumentParser
import Foundation
import WritModel

/// `writ authority x509|jwt …`: the server's CA authorities and forced rotation steps.
struct AuthorityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authority",
        abstract: "Show and rotate the server's X.509 CAs and JWT signing keys.",
        discussion: """
            The server rotates its authorities by itself: a successor is prepared (published in the \
            bundle, not yet signing) half-way through an authority's life and activated at five sixths. \
            These commands force those steps, and handle a compromise:

              writ authority x509 show                      root and intermediate CAs of the server asked
              writ authority x509 prepare                   a new intermediate (--kind root for a new root)
              writ authority x509 activate                  the prepared one signs from now on
              writ authority x509 taint --id ID             stop signing with ID at once (a successor takes over)
              writ authority x509 revoke --id ID            remove the tainted ID from the bundle: what it signed stops validating
              writ authority jwt show|prepare|activate|taint|revoke   the same for JWT signing keys

            Each server on a shared datastore has its own authorities: these commands act on the server \
            whose admin socket they use, and the bundle every server serves follows within a second.
            """,
        subcommands: [X509.self, JWT.self]
    )

    /// The authorities a family covers: X.509 (root, intermediate) or JWT keys.
    enum Family: String {
        case x509, jwt

        var kinds: Set<String> { self == .x509 ? ["root", "intermediate"] : ["jwt"] }
    }

    struct X509: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "x509", abstract: "The root and intermediate X.509 CAs.",
                                                        subcommands: [Show<X509Family>.self, Prepare<X509Family>.self, Activate<X509Family>.self,
                                                                      Taint<X509Family>.self, Revoke<X509Family>.self])
    }

    struct JWT: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "jwt", abstract: "The JWT-SVID signing keys.",
                                                        subcommands: [Show<JWTFamily>.self, Prepare<JWTFamily>.self, Activate<JWTFamily>.self,
                                                                      Taint<JWTFamily>.self, Revoke<JWTFamily>.self])
    }

    struct Show<F: FamilyMarker>: AsyncParsableCommand {
        static var configuration: CommandConfiguration {
            CommandConfiguration(commandName: "show", abstract: "List the \(F.family.rawValue) authorities and their state.")
        }
        @OptionGroup var connection: AdminOptions

        func run() async throws {
            try await runAdmin {
                let data = try await AdminClient(socket: connection.adminSocket).send(.GET, "/v1/authorities")
                show(try AdminAPI.decoder().decode(AdminAPI.AuthorityList.self, from: data), family: F.family, connection: connection)
            }
        }
    }

    struct Prepare<F: FamilyMarker>: AsyncParsableCommand {
        static var configuration: CommandConfiguration {
            CommandConfiguration(commandName: "prepare", abstract: "Create and publish a successor now; it signs only once activated.")
        }
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("intermediate (default) or root; jwt for JWT keys.", valueName: "kind")) var kind: String?

        func run() async throws { try await step("/v1/authorities/prepare", ["kind": try F.kind(kind)], connection: connection, done: "prepared") }
    }

    struct Activate<F: FamilyMarker>: AsyncParsableCommand {
        static var configuration: CommandConfiguration {
            CommandConfiguration(commandName: "activate", abstract: "Make the prepared authority the one that signs.")
        }
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("intermediate (default) or root; jwt for JWT keys.", valueName: "kind")) var kind: String?

        func run() async throws { try await step("/v1/authorities/activate", ["kind": try F.kind(kind)], connection: connection, done: "activated") }
    }

    struct Taint<F: FamilyMarker>: AsyncParsableCommand {
        static var configuration: CommandConfiguration {
            CommandConfiguration(commandName: "taint", abstract: "Stop signing with an authority at once; it stays in the bundle until revoked.")
        }
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("The authority's id (from show).", valueName: "id")) var id: String

        func run() async throws {
            try await requireFamily(id, F.family, connection: connection)
            try await step("/v1/authorities/taint", ["id": id], connection: connection, done: "tainted \(id)")
        }
    }

    struct Revoke<F: FamilyMarker>: AsyncParsableCommand {
        static var configuration: CommandConfiguration {
            CommandConfiguration(commandName: "revoke", abstract: "Remove a tainted authority from the bundle: what it signed stops validating.")
        }
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("The tainted authority's id (from show).", valueName: "id")) var id: String

        func run() async throws {
            try await requireFamily(id, F.family, connection: connection)
            try await step("/v1/authorities/revoke", ["id": id], connection: connection, done: "revoked \(id)")
        }
    }
}

/// Which family a generic authority subcommand serves.
protocol FamilyMarker {
    static var family: AuthorityCommand.Family { get }
}

extension FamilyMarker {
    /// The kind to send for prepare/activate: checked against the family.
    static func kind(_ given: String?) throws -> String {
        let kind = given ?? (family == .x509 ? "intermediate" : "jwt")
        guard family.kinds.contains(kind) else {
            throw ValidationError("--kind `\(kind)` is not a \(family.rawValue) authority: use \(family.kinds.sorted().joined(separator: " or "))")
        }
        return kind
    }
}

enum X509Family: FamilyMarker { static let family = AuthorityCommand.Family.x509 }
enum JWTFamily: FamilyMarker { static let family = AuthorityCommand.Family.jwt }

/// Refuses an id that is not an authority of `family` on this server (exit 3), so that
/// `writ authority jwt revoke` cannot remove an X.509 CA by mistake.
private func requireFamily(_ id: String, _ family: AuthorityCommand.Family, connection: AdminOptions) async throws {
    try await runAdmin {
        let data = try await AdminClient(socket: connection.adminSocket).send(.GET, "/v1/authorities")
        let list = try AdminAPI.decoder().decode(AdminAPI.AuthorityList.self, from: data)
        guard let authority = list.authorities.first(where: { $0.id == id }) else {
            throw AdminFailure("no authority `\(id)` on this server (see `writ authority \(family.rawValue) show`)", exitCode: 3)
        }
        guard family.kinds.contains(authority.kind) else {
            throw AdminFailure("`\(id)` is a \(authority.kind) authority: use `writ authority \(authority.kind == "jwt" ? "jwt" : "x509") …`", exitCode: 3)
        }
    }
}

private func step(_ path: String, _ body: [String: String], connection: AdminOptions, done: String) async throws {
    try await runAdmin {
        let data = try await AdminClient(socket: connection.adminSocket).send(.POST, path, body: try JSONSerialization.data(withJSONObject: body))
        let list = try AdminAPI.decoder().decode(AdminAPI.AuthorityList.self, from: data)
        if connection.output == .json { try printJSON(list) } else {
            FileHandle.standardError.write(Data("\(done)\n".utf8))
            show(list, family: nil, connection: connection)
        }
    }
}

private func show(_ list: AdminAPI.AuthorityList, family: AuthorityCommand.Family?, connection: AdminOptions) {
    let shown = list.authorities.filter { family?.kinds.contains($0.kind) ?? true }
    if connection.output == .json {
        try? printJSON(AdminAPI.AuthorityList(authorities: shown))
        return
    }
    let time = ISO8601DateFormatter()
    for authority in shown {
        let issued = authority.latestIssuedExpiry.map { "  signed until \(time.string(from: $0))" } ?? ""
        print("\(authority.kind.padding(toLength: 12, withPad: " ", startingAt: 0)) \(authority.status.padding(toLength: 8, withPad: " ", startingAt: 0)) \(authority.id)  \(time.string(from: authority.notBefore)) → \(time.string(from: authority.notAfter))\(issued)")
    }
}
