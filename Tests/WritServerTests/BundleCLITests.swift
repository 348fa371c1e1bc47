import Crypto
import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import SwiftASN1
import Testing
import WritAgentAPI
import WritTestSupport
import X509

/// `writ bundle list|set|delete` against a real server, with CA certificates made by openssl:
/// validation with messages, the tie to entries' `federates_with` (restrict, dissociate,
/// delete), and delivery to agents over the sync stream.
@Suite(.serialized) struct BundleCLITests {
    static let partner = try! TrustDomain(parsing: "partner.org")

    /// A CA certificate for `spiffe://<td>` made by openssl, as PEM.
    static func opensslCA(_ directory: TemporaryDirectory, name: String, trustDomain: String = "partner.org", key: String = "ec") async throws -> String {
        let keyOptions = key == "ec" ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] : ["-newkey", key]
        let made = try await ProcessRunner.run(try TestEnvironment.tool("openssl"), ["req", "-x509"] + keyOptions + [
            "-nodes", "-keyout", directory.file("\(name).key").path, "-out", directory.file("\(name).pem").path, "-days", "2",
            "-subj", "/O=\(trustDomain)/CN=\(name)", "-addext", "subjectAltName=URI:spiffe://\(trustDomain)",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        guard made.status == 0 else { throw TestFailure("openssl req failed: \(made.summary)") }
        return try String(contentsOf: directory.file("\(name).pem"), encoding: .utf8)
    }

    static func der(_ pem: String) throws -> [UInt8] { try PEMDocument(pemString: pem).derBytes }

    /// A SPIFFE bundle document with the X.509 authority of `pem`, one JWT key and a sequence.
    static func spiffeDocument(_ pem: String, sequence: UInt64) throws -> String {
        var bundle = try TrustBundle.parseX509Authorities(pem: pem, trustDomain: partner)
        bundle.jwtAuthorities = [JWTAuthority(keyID: "partner-jwt-1", publicKey: .p256(P256.Signing.PrivateKey().publicKey))]
        bundle.sequenceNumber = sequence
        return String(decoding: bundle.spiffeJSON(), as: UTF8.self)
    }

    @Test func setListAndDeleteFederatedBundles() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let directory = try TemporaryDirectory(prefix: "writ-bundles")
        let caPEM = try await Self.opensslCA(directory, name: "ca1")

        let empty = try await server.writ(["bundle", "list", "--output", "json"])
        #expect(empty.status == 0 && (try? JSONSerialization.jsonObject(with: Data(empty.stdout.utf8)) as? [Any])?.isEmpty == true, "\(empty.summary)")
        // An entry cannot federate with a trust domain whose bundle is unknown.
        let early = try await server.writ(["entry", "create", "--spiffe-id", "spiffe://example.org/fed", "--parent-id", EntryCLITests.agent,
                                     "--selector", "unix:uid:1", "--federates-with", "partner.org"])
        #expect(early.status == 1 && early.stderr.contains("no bundle is stored") && early.stderr.contains("partner.org"), "\(early.summary)")

        // PEM from openssl, format detected.
        let set = try await server.writ(["bundle", "set", "--id", "spiffe://partner.org", "--path", directory.file("ca1.pem").path, "--output", "json"])
        #expect(set.status == 0, "\(set.summary)")
        let stored = jsonObject(set.stdout)
        #expect(stored["trust_domain"] as? String == "partner.org" && stored["x509_authority_count"] as? Int == 1 && stored["jwt_authority_count"] as? Int == 0)
        // The PEM listing gives back exactly openssl's certificate.
        let listed = try await server.writ(["bundle", "list", "--id", "partner.org", "--format", "pem"])
        #expect(listed.status == 0 && listed.stdout.hasPrefix("# spiffe://partner.org: 1 X.509 authority"), "\(listed.summary)")
        let listedPEM = String(listed.stdout.drop { $0 != "\n" }.dropFirst())
        #expect(try Self.der(listedPEM) == (try Self.der(caPEM)))

        // A SPIFFE document replaces it, from stdin, and keeps its sequence.
        let caPEM2 = try await Self.opensslCA(directory, name: "ca2")
        let document = try Self.spiffeDocument(caPEM2, sequence: 7)
        let replaced = try await server.writ(["bundle", "set", "--id", "spiffe://partner.org", "--path", "-", "--output", "json"], stdin: Data(document.utf8))
        #expect(replaced.status == 0, "\(replaced.summary)")
        let replacedObject = jsonObject(replaced.stdout)
        #expect(replacedObject["spiffe_sequence"] as? Int == 7 && replacedObject["jwt_authority_count"] as? Int == 1)
        #expect((replacedObject["revision"] as? Int ?? 0) > (stored["revision"] as? Int ?? 0))
        let spiffe = try await server.writ(["bundle", "list", "--format", "spiffe"])
        let keys = (jsonObject(String(spiffe.stdout.drop { $0 != "\n" }.dropFirst()))["keys"] as? [[String: Any]]) ?? []
        #expect(Set(keys.compactMap { $0["use"] as? String }) == ["x509-svid", "jwt-svid"], "\(spiffe.summary)")

        // Bad input: a message naming the problem, nothing stored.
        try "not a bundle".write(to: directory.file("junk.txt"), atomically: true, encoding: .utf8)
        try #"{"keys": []}"#.write(to: directory.file("empty.json"), atomically: true, encoding: .utf8)
        try "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".write(to: directory.file("broken.pem"), atomically: true, encoding: .utf8)
        _ = try await Self.opensslCA(directory, name: "ed", key: "ed25519")
        let refusals: [([String], Int32, String)] = [
            (["--id", "spiffe://partner.org", "--path", directory.file("junk.txt").path], 1, "neither a SPIFFE bundle document"),
            (["--id", "spiffe://partner.org", "--path", directory.file("empty.json").path], 1, "no X.509 or JWT authorities"),
            (["--id", "spiffe://partner.org", "--path", directory.file("broken.pem").path], 1, "invalid PEM bundle for `partner.org`"),
            (["--id", "spiffe://partner.org", "--path", directory.file("ca1.pem").path, "--format", "spiffe"], 1, "invalid SPIFFE bundle"),
            (["--id", "spiffe://partner.org", "--path", directory.file("ed.pem").path], 1, "key type"),
            (["--id", "spiffe://example.org", "--path", directory.file("ca1.pem").path], 1, "own trust domain"),
            (["--id", "spiffe://partner.org/workload", "--path", directory.file("ca1.pem").path], 64, "names a workload"),
            (["--id", "Partner.org", "--path", directory.file("ca1.pem").path], 64, "invalid --id"),
        ]
        for (arguments, status, message) in refusals {
            let refused = try await server.writ(["bundle", "set"] + arguments)
            #expect(refused.status == status && refused.stderr.contains(message), "\(arguments): \(refused.summary)")
        }
        let after = try await server.writ(["bundle", "list", "--output", "json"]).stdout
        let afterList = (try? JSONSerialization.jsonObject(with: Data(after.utf8)) as? [[String: Any]]) ?? []
        #expect(afterList.count == 1 && afterList.first?["spiffe_sequence"] as? Int == 7, "the refused sets changed the bundle: \(after)")

        // Entries federate with it now; deleting follows the mode.
        let first = try await AgentAPITests.entry(server, "spiffe://example.org/fed/a", parent: EntryCLITests.agent, selector: "unix:uid:1", ["--federates-with", "partner.org"])
        let second = try await AgentAPITests.entry(server, "spiffe://example.org/fed/b", parent: EntryCLITests.agent, selector: "unix:uid:2", ["--federates-with", "partner.org"])
        let restricted = try await server.writ(["bundle", "delete", "--id", "spiffe://partner.org"])
        #expect(restricted.status == 4 && restricted.stderr.contains("2 entries federate with `partner.org`"), "\(restricted.summary)")
        let dissociated = try await server.writ(["bundle", "delete", "--id", "spiffe://partner.org", "--mode", "dissociate", "--output", "json"])
        #expect(dissociated.status == 0, "\(dissociated.summary)")
        #expect(jsonObject(dissociated.stdout)["affected_entry_ids"] as? [String] == [first, second].sorted())
        let shown = try await server.writ(["entry", "show", "--entry-id", first, "--output", "json"])
        #expect(shown.status == 0 && (jsonObject(shown.stdout)["federates_with"] as? [String] ?? ["?"]).isEmpty, "\(shown.summary)")
        let gone = try await server.writ(["bundle", "list", "--id", "spiffe://partner.org"])
        #expect(gone.status == 3 && gone.stderr.contains("no federated bundle"), "\(gone.summary)")

        #expect(try await server.writ(["bundle", "set", "--id", "partner.org", "--path", directory.file("ca1.pem").path]).status == 0)
        let third = try await AgentAPITests.entry(server, "spiffe://example.org/fed/c", parent: EntryCLITests.agent, selector: "unix:uid:3", ["--federates-with", "partner.org"])
        let deleted = try await server.writ(["bundle", "delete", "--id", "spiffe://partner.org", "--mode", "delete"])
        #expect(deleted.status == 0 && deleted.stdout.contains("1 entries deleted: \(third)"), "\(deleted.summary)")
        #expect(try await server.writ(["entry", "show", "--entry-id", third]).status == 3)
        #expect(try await server.writ(["entry", "show", "--entry-id", first]).status == 0)
        let unknown = try await server.writ(["bundle", "delete", "--id", "spiffe://partner.org"])
        #expect(unknown.status == 3, "\(unknown.summary)")
    }

    /// An agent receives the bundles of the trust domains its entries federate with in its sync
    /// stream — all of them on the first message, then the whole set again whenever it changes —
    /// and an agent whose entries federate with nothing receives none.
    @Test(.timeLimit(.minutes(2))) func agentsReceiveTheBundlesTheirEntriesFederateWith() async throws {
        let server = try await ServerHarness.start()
        defer { Task { await server.stop() } }
        let directory = try TemporaryDirectory(prefix: "writ-bundles-sync")
        let caPEM = try await Self.opensslCA(directory, name: "ca1")
        #expect(try await server.writ(["bundle", "set", "--id", "spiffe://partner.org", "--path", directory.file("ca1.pem").path]).status == 0)
        var agent = try await TestAgent(server: server)
        try await agent.attest(joinToken: try await AgentAPITests.token(server).secret)
        var bystander = try await TestAgent(server: server)
        try await bystander.attest(joinToken: try await AgentAPITests.token(server).secret)
        let federating = try await AgentAPITests.entry(server, "spiffe://example.org/fed", parent: agent.id, selector: "unix:uid:1", ["--federates-with", "partner.org"])
        try await AgentAPITests.entry(server, "spiffe://example.org/plain", parent: bystander.id, selector: "unix:uid:2")

        let bystanderFirst = try #require(try await bystander.sync { _ in true }.first)
        #expect(bystanderFirst.federatedBundlesChanged && bystanderFirst.federatedBundles.isEmpty)

        let document = try Self.spiffeDocument(try await Self.opensslCA(directory, name: "ca2"), sequence: 9)
        try document.write(to: directory.file("ca2.json"), atomically: true, encoding: .utf8)
        let replaced = ManagedFlag(), deleted = ManagedFlag()
        let messages = try await agent.sync { messages in
            let last = messages.last!
            if last.snapshot, last.complete, !replaced.isSet {
                replaced.set()
                Task.detached { _ = try? await server.writ(["bundle", "set", "--id", "spiffe://partner.org", "--path", directory.file("ca2.json").path]) }
            } else if !last.snapshot, last.federatedBundlesChanged, last.federatedBundles.first?.sequence == 9, !deleted.isSet {
                deleted.set()
                Task.detached { _ = try? await server.writ(["bundle", "delete", "--id", "spiffe://partner.org", "--mode", "dissociate"]) }
            }
            return !last.snapshot && last.federatedBundlesChanged && last.federatedBundles.isEmpty
        }
        let first = try #require(messages.first)
        #expect(first.federatedBundlesChanged && first.federatedBundles.map(\.trustDomain) == ["partner.org"])
        #expect(first.federatedBundles.first?.x509Authorities.map { Array($0) } == [try Self.der(caPEM)])
        #expect(first.bundle.trustDomain == "example.org")
        let update = try #require(messages.first { !$0.snapshot && $0.federatedBundlesChanged && !$0.federatedBundles.isEmpty })
        let updated = try #require(update.federatedBundles.first)
        let parsed = try TrustBundle.parseSPIFFEJSON(Array(updated.spiffeBundle), trustDomain: Self.partner)
        #expect(parsed.jwtAuthorities.map(\.keyID) == ["partner-jwt-1"] && parsed.x509Authorities.count == 1 && updated.sequence == 9)
        // The dissociation arrives as the entry's new revision without federates_with, with the empty set.
        let last = try #require(messages.last)
        #expect(last.entries.map(\.id) == [federating] && last.entries.first?.federatesWith == [])
        // Messages that change nothing about federation leave the flag unset.
        #expect(messages.filter(\.federatedBundlesChanged).count == 3, "\(messages.map { ($0.snapshot, $0.federatedBundlesChanged) })")
    }
}
