import ArgumentParser
import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import WritModel

/// `writ bundle …`: the trust domain's own bundle, and the bundles of the trust domains it
/// federates with.
struct BundleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Show this trust domain's bundle; list, set and delete the bundles of federated trust domains.",
        discussion: """
            A workload trusts SVIDs from another trust domain when its entry names that domain in \
            --federates-with and the server holds the domain's bundle:

              writ bundle show --format pem > ours.pem                      give this to the other side
              writ bundle set --id spiffe://partner.org --path theirs.json  store theirs (SPIFFE JSON or PEM, detected)
              writ entry create … --federates-with partner.org               its workloads now receive it
              writ bundle list [--id spiffe://partner.org] [--format pem]
              writ bundle delete --id spiffe://partner.org [--mode restrict|dissociate|delete]
            """,
        subcommands: [Show.self, List.self, SetBundle.self, Delete.self]
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

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the federated bundles (or the one named by --id).",
            discussion: "Exit code 3 when --id names a trust domain without a stored bundle.")
        enum Format: String, ExpressibleByArgument, CaseIterable { case spiffe, pem }
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("Only this trust domain (spiffe://partner.org or partner.org).", valueName: "id")) var id: String?
        @Option(help: "pem (the X.509 authorities, default) or spiffe (the SPIFFE bundle document) for the text output.") var format: Format = .pem

        func run() async throws {
            try await runAdmin {
                let client = AdminClient(socket: connection.adminSocket)
                let bundles: [AdminAPI.FederatedBundle]
                if let id {
                    let data = try await client.send(.GET, "/v1/bundles/\(try federatedTrustDomain(id).name)")
                    bundles = [try AdminAPI.decoder().decode(AdminAPI.FederatedBundle.self, from: data)]
                } else {
                    bundles = try AdminAPI.decoder().decode(AdminAPI.FederatedBundleList.self, from: try await client.send(.GET, "/v1/bundles")).bundles
                }
                if connection.output == .json { return try printJSON(bundles) }
                if bundles.isEmpty {
                    var stderr = StandardError()
                    print("no federated bundles (add one with `writ bundle set --id spiffe://<td> --path FILE`)", to: &stderr)
                }
                for bundle in bundles {
                    let sequence = bundle.spiffeSequence.map { ", sequence \($0)" } ?? ""
                    print("# spiffe://\(bundle.trustDomain): \(bundle.x509AuthorityCount) X.509 authorit\(bundle.x509AuthorityCount == 1 ? "y" : "ies"), "
                          + "\(bundle.jwtAuthorityCount) JWT key\(bundle.jwtAuthorityCount == 1 ? "" : "s")\(sequence); "
                          + "revision \(bundle.revision), updated \(ISO8601DateFormatter().string(from: bundle.updatedAt))")
                    switch format {
                    case .spiffe: print(bundle.spiffeBundle)
                    case .pem:
                        let domain = try TrustDomain(parsing: bundle.trustDomain)
                        print(try TrustBundle.parseSPIFFEJSON(Array(bundle.spiffeBundle.utf8), trustDomain: domain).x509AuthoritiesPEM(), terminator: "")
                    }
                }
            }
        }
    }

    struct SetBundle: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Create or replace the bundle of a federated trust domain.",
            discussion: """
                The file is a SPIFFE bundle document (what `writ bundle show` or a SPIFFE bundle endpoint \
                serves) or PEM certificates; the format is detected unless --format says it. The server \
                checks every authority before it stores the bundle, and agents hand it to the workloads \
                whose entries federate with the trust domain within a second.
                  writ bundle set --id spiffe://partner.org --path partner.json
                  curl -s https://partner.example/bundle | writ bundle set --id spiffe://partner.org --path -
                """)
        enum Format: String, ExpressibleByArgument, CaseIterable { case spiffe, pem }
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("The federated trust domain (spiffe://partner.org or partner.org).", valueName: "id")) var id: String
        @Option(help: ArgumentHelp("The bundle file, or - for stdin.", valueName: "file")) var path: String
        @Option(help: "spiffe or pem; detected when absent.") var format: Format?

        func run() async throws {
            try await runAdmin {
                let domain = try federatedTrustDomain(id)
                let raw = try readInput(path)
                guard let text = String(data: raw, encoding: .utf8) else { throw AdminFailure("`\(path)` is not UTF-8 text", exitCode: 1) }
                let body = try AdminAPI.encoder().encode(AdminAPI.SetFederatedBundleRequest(format: format?.rawValue, data: text))
                let data = try await AdminClient(socket: connection.adminSocket).send(.PUT, "/v1/bundles/\(domain.name)", body: body)
                let stored = try AdminAPI.decoder().decode(AdminAPI.FederatedBundle.self, from: data)
                if connection.output == .json { return try printJSON(stored) }
                print("bundle of spiffe://\(stored.trustDomain) set: \(stored.x509AuthorityCount) X.509 authorities, \(stored.jwtAuthorityCount) JWT keys (revision \(stored.revision))")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete the bundle of a federated trust domain.",
            discussion: """
                --mode says what happens to entries that federate with the trust domain:
                  restrict    refuse while there are any (exit code 4; the default)
                  dissociate  remove the trust domain from their --federates-with
                  delete      delete those entries
                """)
        enum Mode: String, ExpressibleByArgument, CaseIterable { case restrict, dissociate, delete }
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("The federated trust domain (spiffe://partner.org or partner.org).", valueName: "id")) var id: String
        @Option(help: "restrict, dissociate or delete.") var mode: Mode = .restrict

        func run() async throws {
            try await runAdmin {
                let domain = try federatedTrustDomain(id)
                let data = try await AdminClient(socket: connection.adminSocket).send(.DELETE, "/v1/bundles/\(domain.name)", query: [("mode", mode.rawValue)])
                let deleted = try AdminAPI.decoder().decode(AdminAPI.DeletedFederatedBundle.self, from: data)
                if connection.output == .json { return try printJSON(deleted) }
                let what = mode == .delete ? "deleted" : "dissociated"
                print("bundle of spiffe://\(deleted.trustDomain) deleted" + (deleted.affectedEntryIDs.isEmpty ? "" : "; \(deleted.affectedEntryIDs.count) entries \(what): "
                      + deleted.affectedEntryIDs.joined(separator: ", ")))
            }
        }
    }
}

/// The trust domain `--id` names: `spiffe://td` (SPIRE's form) or a bare name; an ID with a path
/// names a workload and is refused.
func federatedTrustDomain(_ text: String) throws -> TrustDomain {
    do {
        if text.hasPrefix("spiffe://") {
            let id = try SPIFFEID(parsing: text)
            guard id.path.isEmpty else {
                throw AdminFailure("invalid --id `\(text)`: it names a workload; give the trust domain's ID, spiffe://\(id.trustDomain.name)", exitCode: 64)
            }
            return id.trustDomain
        }
        return try TrustDomain(parsing: text)
    } catch let error as SPIFFEIDError {
        throw AdminFailure("invalid --id `\(text)`: \(error.message)", exitCode: 64)
    }
}
