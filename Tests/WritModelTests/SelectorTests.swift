import Foundation
import SPIFFEIdentity
import Testing
@testable import WritModel

@Suite struct SelectorTests {
    static let accepted = [
        "unix:uid:0", "unix:uid:4294967295", "unix:gid:1000", "unix:user:svc", "unix:group:wheel", "unix:path:/usr/bin/agent",
        "unix:sha256:" + String(repeating: "ab", count: 32), "unix:supplementary_gid:27", "unix:script:/srv/agent.py",
        "unix:script_sha256:" + String(repeating: "0f", count: 32),
        "x509pop:subject:cn:node-1", "x509pop:ca:fingerprint:" + String(repeating: "0f", count: 32), "x509pop:san:dns:node.example.org",
        "x509pop:serialnumber:0a1b", "join_token:id:abc",
    ]

    @Test(arguments: accepted)
    func accepts(_ text: String) throws {
        let selector = try Selector(parsing: text)
        #expect(selector.description == text)
        #expect(text.hasPrefix(selector.type + ":"))
    }

    static let refused: [(String, String)] = [
        ("no colon", "must be `type:value`"),
        ("k8s:ns:default", "unknown type `k8s`"),
        ("Unix:uid:1", "unknown type `Unix`"),
        ("unix:", "the value is empty"),
        ("unix:uid:", "decimal id"),
        ("unix:uid:-1", "decimal id"),
        ("unix:uid:4294967296", "decimal id"),
        ("unix:uid:12a", "decimal id"),
        ("unix:path:relative/bin", "absolute path"),
        ("unix:script:agent.py", "absolute path"),
        ("unix:script_sha256:xyz", "64 lowercase hex"),
        ("unix:supplementary_gid:wheel", "decimal id"),
        ("unix:sha256:ABCD", "64 lowercase hex"),
        ("unix:pid:12", "unknown unix selector `pid`"),
        ("unix:user:a\u{1}b", "control characters"),
        ("x509pop:subject:o:x", "`cn:NAME`"),
        ("x509pop:ca:fingerprint:xyz", "64 lowercase hex"),
        ("x509pop:serialnumber:0X1", "lowercase hex"),
        ("x509pop:issuer:cn:x", "unknown x509pop selector"),
        ("join_token:abc", "`id:TOKEN-ID`"),
        ("unix:user:" + String(repeating: "a", count: 1100), "longer than 1024 bytes"),
    ]

    @Test(arguments: refused)
    func refuses(_ text: String, _ rule: String) {
        do {
            _ = try Selector(parsing: text)
            Issue.record("accepted `\(text.prefix(40))`")
        } catch {
            #expect(error.code == .invalidSelector)
            #expect(error.message.contains(rule), "\(error.message)")
        }
    }

    @Test func jsonFormIsTypeAndValue() throws {
        let selector = try Selector(parsing: "unix:uid:1000")
        let json = String(decoding: try JSONEncoder().encode(selector), as: UTF8.self)
        #expect(json.contains("\"type\":\"unix\"") && json.contains("\"value\":\"uid:1000\""))
        #expect(try JSONDecoder().decode(Selector.self, from: Data(json.utf8)) == selector)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Selector.self, from: Data(#"{"type":"unix","value":"uid:x"}"#.utf8)) }
    }

    @Test func matchModes() throws {
        let a = try Selector(parsing: "unix:uid:1"), b = try Selector(parsing: "unix:gid:2"), c = try Selector(parsing: "unix:user:x")
        let entry: Set = [a, b]
        #expect(SelectorMatch.exact.matches(entry, query: [a, b]) && !SelectorMatch.exact.matches(entry, query: [a]))
        #expect(SelectorMatch.subset.matches(entry, query: [a, b, c]) && !SelectorMatch.subset.matches(entry, query: [a]))
        #expect(SelectorMatch.superset.matches(entry, query: [a]) && !SelectorMatch.superset.matches(entry, query: [a, c]))
        #expect(SelectorMatch.any.matches(entry, query: [c, b]) && !SelectorMatch.any.matches(entry, query: [c]))
    }
}

@Suite struct EntryRulesTests {
    static let td = try! TrustDomain(parsing: "example.org")
    static let rules = EntryRules(trustDomain: td)
    static func id(_ text: String) -> SPIFFEID { try! SPIFFEID(parsing: text) }
    static let agent = id("spiffe://example.org/writ/agent/join_token/t1")

    static func entry(_ change: (inout RegistrationEntry) -> Void = { _ in }) -> RegistrationEntry {
        var entry = RegistrationEntry(spiffeID: id("spiffe://example.org/svc"), parentID: agent, selectors: [try! Selector(parsing: "unix:uid:1")])
        change(&entry)
        return entry
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let entry: RegistrationEntry
        let field: String?
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "ok/plain", entry: entry(), field: nil),
        Case(name: "ok/node alias under the server", entry: entry { $0.parentID = rules.serverID; $0.selectors = [try! Selector(parsing: "x509pop:subject:cn:n1")] }, field: nil),
        Case(name: "ok/parent is a node alias", entry: entry { $0.parentID = id("spiffe://example.org/nodes/web") }, field: nil),
        Case(name: "ok/ttl bounds", entry: entry { $0.x509SVIDTTL = 10; $0.jwtSVIDTTL = 7 * 86400 }, field: nil),
        Case(name: "ok/wildcard dns", entry: entry { $0.dnsNames = ["*.svc.example.org", "api"] }, field: nil),
        Case(name: "ok/labels", entry: entry { $0.labels = ["kind": "agent", "example.org/model": "m-1"]; $0.owner = "team a" }, field: nil),
        Case(name: "fail/foreign trust domain", entry: entry { $0.spiffeID = id("spiffe://other.org/svc") }, field: "spiffe_id"),
        Case(name: "fail/root id", entry: entry { $0.spiffeID = td.id }, field: "spiffe_id"),
        Case(name: "fail/reserved path", entry: entry { $0.spiffeID = id("spiffe://example.org/writ/server") }, field: "spiffe_id"),
        Case(name: "fail/foreign parent", entry: entry { $0.parentID = id("spiffe://other.org/writ/agent/x/y") }, field: "parent_id"),
        Case(name: "fail/reserved parent", entry: entry { $0.parentID = id("spiffe://example.org/writ/other") }, field: "parent_id"),
        Case(name: "fail/own parent", entry: entry { $0.parentID = id("spiffe://example.org/svc") }, field: "parent_id"),
        Case(name: "fail/no selectors", entry: entry { $0.selectors = [] }, field: "selectors"),
        Case(name: "fail/ttl 9s", entry: entry { $0.x509SVIDTTL = 9 }, field: "x509_svid_ttl"),
        Case(name: "fail/ttl over 7d", entry: entry { $0.jwtSVIDTTL = 7 * 86400 + 1 }, field: "jwt_svid_ttl"),
        Case(name: "fail/dns underscore", entry: entry { $0.dnsNames = ["bad_name.example.org"] }, field: "dns_names"),
        Case(name: "fail/dns empty label", entry: entry { $0.dnsNames = ["a..b"] }, field: "dns_names"),
        Case(name: "fail/dns inner wildcard", entry: entry { $0.dnsNames = ["a.*.b"] }, field: "dns_names"),
        Case(name: "fail/federates with itself", entry: entry { $0.federatesWith = [td] }, field: "federates_with"),
        Case(name: "fail/label key uppercase", entry: entry { $0.labels = ["Kind": "x"] }, field: "labels"),
        Case(name: "fail/label value control", entry: entry { $0.labels = ["kind": "a\nb"] }, field: "labels"),
        Case(name: "fail/entry id", entry: entry { $0.id = "has space" }, field: "id"),
        Case(name: "fail/owner control", entry: entry { $0.owner = "a\u{0}" }, field: "owner"),
    ]

    @Test(arguments: cases)
    func rules(_ c: Case) {
        do {
            try Self.rules.check(c.entry)
            #expect(c.field == nil, "\(c.name): accepted")
        } catch {
            #expect(c.field != nil, "\(c.name): refused: \(error.message)")
            #expect(error.field == c.field, "\(c.name): \(error.message)")
        }
    }

    @Test func selectorsAreSortedAndUnique() throws {
        let a = try Selector(parsing: "unix:uid:1"), b = try Selector(parsing: "unix:gid:1")
        let entry = RegistrationEntry(spiffeID: Self.id("spiffe://example.org/a"), parentID: Self.agent, selectors: [a, b, a])
        #expect(entry.selectors == [b, a])
    }
}
