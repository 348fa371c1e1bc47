import SPIFFEIdentity
import SPIFFETLS
import Testing

/// Each authorizer accepts exactly the peers it names and says so in its description (which
/// ends up in logs and refusals). The handshake side is in `AgentTLSTests` (writ-test-mtls).
@Suite struct SPIFFEAuthorizerTests {
    static func id(_ text: String) -> SPIFFEID { try! SPIFFEID(parsing: text) }

    static let peers = [
        "spiffe://example.org/svc/api", "spiffe://example.org/svc/api/v2", "spiffe://example.org/svc/other",
        "spiffe://example.org", "spiffe://partner.org/svc/api", "spiffe://example.org.evil/svc/api",
    ].map(id)

    static func accepted(by authorizer: SPIFFEAuthorizer) -> [String] {
        peers.filter(authorizer.authorizes).map(\.uri)
    }

    @Test func exactIDAcceptsThatIDOnly() {
        let authorizer = SPIFFEAuthorizer.id(Self.id("spiffe://example.org/svc/api"))
        #expect(Self.accepted(by: authorizer) == ["spiffe://example.org/svc/api"])
        #expect(authorizer.description.contains("spiffe://example.org/svc/api"))
    }

    @Test func oneOfAcceptsEachMemberOfTheSetAndNoOther() {
        let authorizer = SPIFFEAuthorizer.oneOf([Self.id("spiffe://example.org/svc/other"), Self.id("spiffe://partner.org/svc/api")])
        #expect(Self.accepted(by: authorizer) == ["spiffe://example.org/svc/other", "spiffe://partner.org/svc/api"])
        #expect(authorizer.description == "one of spiffe://example.org/svc/other, spiffe://partner.org/svc/api")
        #expect(Self.accepted(by: .oneOf([])).isEmpty, "an empty set accepts no one")
    }

    /// Membership is by trust domain name, compared whole: `example.org.evil` is not a member
    /// of `example.org`, and the trust domain's own ID names no workload.
    @Test func memberOfAcceptsTheTrustDomainsWorkloadsOnly() throws {
        let authorizer = SPIFFEAuthorizer.memberOf(try TrustDomain(parsing: "example.org"))
        #expect(Self.accepted(by: authorizer) == ["spiffe://example.org/svc/api", "spiffe://example.org/svc/api/v2", "spiffe://example.org/svc/other"])
        #expect(authorizer.description.contains("example.org"))
    }

    @Test func aPredicateDecidesAndItsDescriptionIsKept() {
        let authorizer = SPIFFEAuthorizer("a workload under /svc/api") { $0.path == "/svc/api" || $0.path.hasPrefix("/svc/api/") }
        #expect(Self.accepted(by: authorizer) == ["spiffe://example.org/svc/api", "spiffe://example.org/svc/api/v2", "spiffe://partner.org/svc/api",
                                                 "spiffe://example.org.evil/svc/api"])
        #expect(authorizer.description == "a workload under /svc/api")
        #expect(Self.accepted(by: .any) == Self.peers.map(\.uri))
    }
}
