#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Crypto
import Foundation
import SwiftASN1
import WritModel
import X509

/// `writ svid mint x509|jwt`: SVIDs for operators, signed by the server for any workload ID.
struct SVIDCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "svid",
        abstract: "Mint X.509-SVIDs and JWT-SVIDs by hand (for tests, break-glass access and bootstrapping).",
        subcommands: [Mint.self]
    )

    struct Mint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mint an SVID for any workload ID of the trust domain, without a registration entry.",
            discussion: """
                The key of an X.509-SVID is made here and never leaves this machine: the server signs a \
                certificate request. Every mint is logged by the server with who asked.
                """,
            subcommands: [X509.self, JWT.self])
    }

    struct X509: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "x509",
            abstract: "Mint an X.509-SVID (a new P-256 key, the chain, and the bundle).",
            discussion: """
                Without --write the chain and the key are printed as PEM (chain first). With --write DIR \
                the files are DIR/svid.0.pem (chain, leaf first), DIR/svid.0.key (PKCS#8, mode 0600) and \
                DIR/bundle.0.pem (the trust domain's X.509 authorities), as `writ api fetch x509 --write` \
                writes them.

                Example:
                  writ svid mint x509 --spiffe-id spiffe://example.org/ci/deploy --ttl 15m --write /tmp/deploy
                  openssl verify -CAfile /tmp/deploy/bundle.0.pem -untrusted /tmp/deploy/svid.0.pem /tmp/deploy/svid.0.pem
                """)
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("The SPIFFE ID to certify.", valueName: "id")) var spiffeID: String
        @Option(help: ArgumentHelp("Lifetime, 10s to 7d (default: the server's x509_svid_ttl).", valueName: "duration")) var ttl: String?
        @Option(name: .customLong("dns"), help: ArgumentHelp("A DNS name for the certificate (repeat).", valueName: "name")) var dnsNames: [String] = []
        @Option(help: ArgumentHelp("Write svid.0.pem, svid.0.key and bundle.0.pem into this directory.", valueName: "dir")) var write: String?

        func run() async throws {
            try await runAdmin {
                let seconds = try ttl.map { try parseDuration($0, flag: "--ttl") }
                let key = P256.Signing.PrivateKey()
                let csr = try Self.request(for: key)
                let body = AdminAPI.MintX509SVIDRequest(spiffeID: spiffeID, csr: Data(csr).base64EncodedString(), ttl: seconds,
                                                        dnsNames: dnsNames.isEmpty ? nil : dnsNames)
                let client = AdminClient(socket: connection.adminSocket)
                let data = try await client.send(.POST, "/v1/svids/x509", body: try AdminAPI.encoder().encode(body))
                let minted = try AdminAPI.decoder().decode(AdminAPI.MintedX509SVID.self, from: data)
                let chain = try minted.chain.map { text -> String in
                    guard let der = Data(base64Encoded: text) else { throw AdminFailure("the server sent a chain that is not base64", exitCode: 1) }
                    return PEMDocument(type: "CERTIFICATE", derBytes: Array(der)).pemString + "\n"
                }.joined()
                let keyPEM = key.pemRepresentation + "\n"
                if let write {
                    let bundle = String(decoding: try await client.send(.GET, "/v1/bundle", query: [("format", "pem")]), as: UTF8.self)
                    try Self.write(directory: write, chain: chain, key: keyPEM, bundle: bundle)
                    FileHandle.standardError.write(Data("wrote \(write)/svid.0.pem, svid.0.key, bundle.0.pem (expires \(ISO8601DateFormatter().string(from: minted.expiresAt)))\n".utf8))
                } else if connection.output == .json {
                    try printJSON(minted)
                } else {
                    print(chain + keyPEM, terminator: "")
                }
            }
        }

        /// A PKCS#10 request for `key` (the server takes only its public key).
        static func request(for key: P256.Signing.PrivateKey) throws -> [UInt8] {
            let request = try CertificateSigningRequest(version: .v1, subject: DistinguishedName(), privateKey: Certificate.PrivateKey(key),
                                                        attributes: CertificateSigningRequest.Attributes(), signatureAlgorithm: .ecdsaWithSHA256)
            var serializer = DER.Serializer()
            try serializer.serialize(request)
            return serializer.serializedBytes
        }

        /// Writes `svid.N.pem` (chain), `svid.N.key` (created 0600) and `bundle.N.pem` into
        /// `directory` (created 0700 when missing) — the layout `writ api fetch x509 --write` uses too.
        static func write(directory: String, index: Int = 0, chain: String, key: String, bundle: String) throws {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                try Data(chain.utf8).write(to: URL(fileURLWithPath: directory + "/svid.\(index).pem"), options: .atomic)
                let keyPath = directory + "/svid.\(index).key"
                try? FileManager.default.removeItem(atPath: keyPath)
                guard FileManager.default.createFile(atPath: keyPath, contents: Data(key.utf8), attributes: [.posixPermissions: 0o600]) else {
                    throw AdminFailure("cannot write `\(keyPath)`", exitCode: 1)
                }
                try Data(bundle.utf8).write(to: URL(fileURLWithPath: directory + "/bundle.\(index).pem"), options: .atomic)
            } catch let failure as AdminFailure {
                throw failure
            } catch {
                throw AdminFailure("cannot write into `\(directory)`: \(error.localizedDescription)", exitCode: 1)
            }
        }
    }

    struct JWT: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "jwt",
            abstract: "Mint a JWT-SVID and print it.",
            discussion: "Example:\n  writ svid mint jwt --spiffe-id spiffe://example.org/ci/deploy --audience https://api.example.org --ttl 5m")
        @OptionGroup var connection: AdminOptions
        @Option(help: ArgumentHelp("The SPIFFE ID (the token's sub).", valueName: "id")) var spiffeID: String
        @Option(help: ArgumentHelp("An audience (repeat; at least one).", valueName: "aud")) var audience: [String] = []
        @Option(help: ArgumentHelp("Lifetime, 10s to 7d (default: the server's jwt_svid_ttl).", valueName: "duration")) var ttl: String?

        func validate() throws {
            guard !audience.isEmpty else { throw ValidationError("--audience is required (repeat it for several)") }
        }

        func run() async throws {
            try await runAdmin {
                let seconds = try ttl.map { try parseDuration($0, flag: "--ttl") }
                let body = AdminAPI.MintJWTSVIDRequest(spiffeID: spiffeID, audience: audience, ttl: seconds)
                let data = try await AdminClient(socket: connection.adminSocket).send(.POST, "/v1/svids/jwt", body: try AdminAPI.encoder().encode(body))
                let minted = try AdminAPI.decoder().decode(AdminAPI.MintedJWTSVID.self, from: data)
                if connection.output == .json { try printJSON(minted) } else { print(minted.token) }
            }
        }
    }
}
