import Testing
import SPIFFEIdentity

/// SPIFFE-ID.md §2: the table of valid and invalid forms, each invalid case with its error code.
@Suite struct SPIFFEIDTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let input: String
        let code: SPIFFEIDError.Code?
        var testDescription: String { name }
    }

    static let valid: [Case] = [
        Case(name: "ok/simple", input: "spiffe://example.org/workload", code: nil),
        Case(name: "ok/root", input: "spiffe://example.org", code: nil),
        Case(name: "ok/nested", input: "spiffe://example.org/ns/prod/sa/api", code: nil),
        Case(name: "ok/all path characters", input: "spiffe://td/AZaz09.-_/x", code: nil),
        Case(name: "ok/all trust domain characters", input: "spiffe://az09.-_/x", code: nil),
        Case(name: "ok/dots inside a segment", input: "spiffe://td/.a/a./...", code: nil),
        Case(name: "ok/single character trust domain", input: "spiffe://a/b", code: nil),
    ]

    static let invalid: [Case] = [
        Case(name: "fail/empty", input: "", code: .empty),
        Case(name: "fail/no scheme", input: "example.org/workload", code: .wrongScheme),
        Case(name: "fail/uppercase scheme", input: "SPIFFE://example.org/workload", code: .wrongScheme),
        Case(name: "fail/mixed case scheme", input: "Spiffe://example.org/workload", code: .wrongScheme),
        Case(name: "fail/other scheme", input: "https://example.org/workload", code: .wrongScheme),
        Case(name: "fail/single slash", input: "spiffe:/example.org/workload", code: .wrongScheme),
        Case(name: "fail/missing slashes", input: "spiffe:example.org", code: .wrongScheme),
        Case(name: "fail/scheme only", input: "spiffe://", code: .missingTrustDomain),
        Case(name: "fail/missing trust domain", input: "spiffe:///workload", code: .missingTrustDomain),
        Case(name: "fail/uppercase trust domain", input: "spiffe://Example.org/workload", code: .invalidTrustDomainCharacter),
        Case(name: "fail/space in trust domain", input: "spiffe://exa mple.org/w", code: .invalidTrustDomainCharacter),
        Case(name: "fail/port", input: "spiffe://example.org:8080/workload", code: .portNotAllowed),
        Case(name: "fail/empty port", input: "spiffe://example.org:/workload", code: .portNotAllowed),
        Case(name: "fail/userinfo", input: "spiffe://user@example.org/workload", code: .userInfoNotAllowed),
        Case(name: "fail/userinfo with password", input: "spiffe://user:pw@example.org/workload", code: .userInfoNotAllowed),
        Case(name: "fail/query", input: "spiffe://example.org/workload?x=1", code: .queryNotAllowed),
        Case(name: "fail/query on root", input: "spiffe://example.org?x=1", code: .queryNotAllowed),
        Case(name: "fail/fragment", input: "spiffe://example.org/workload#frag", code: .fragmentNotAllowed),
        Case(name: "fail/fragment on root", input: "spiffe://example.org#frag", code: .fragmentNotAllowed),
        Case(name: "fail/percent-encoded path", input: "spiffe://example.org/work%20load", code: .percentEncodingNotAllowed),
        Case(name: "fail/percent-encoded trust domain", input: "spiffe://exa%41mple.org/w", code: .percentEncodingNotAllowed),
        Case(name: "fail/trailing slash", input: "spiffe://example.org/workload/", code: .trailingSlash),
        Case(name: "fail/root with trailing slash", input: "spiffe://example.org/", code: .trailingSlash),
        Case(name: "fail/empty segment", input: "spiffe://example.org//workload", code: .emptySegment),
        Case(name: "fail/empty inner segment", input: "spiffe://example.org/a//b", code: .emptySegment),
        Case(name: "fail/dot segment", input: "spiffe://example.org/./workload", code: .dotSegment),
        Case(name: "fail/dot-dot segment", input: "spiffe://example.org/a/../b", code: .dotSegment),
        Case(name: "fail/final dot segment", input: "spiffe://example.org/a/.", code: .dotSegment),
        Case(name: "fail/final dot-dot segment", input: "spiffe://example.org/a/..", code: .dotSegment),
        Case(name: "fail/space in path", input: "spiffe://example.org/work load", code: .invalidPathCharacter),
        Case(name: "fail/unicode in path", input: "spiffe://example.org/wörk", code: .invalidPathCharacter),
        Case(name: "fail/colon in path", input: "spiffe://example.org/a:b", code: .invalidPathCharacter),
        Case(name: "fail/at in path", input: "spiffe://example.org/a@b", code: .invalidPathCharacter),
        Case(name: "fail/backslash in path", input: "spiffe://example.org/a\\b", code: .invalidPathCharacter),
        Case(name: "fail/trust domain 256 bytes", input: "spiffe://" + String(repeating: "a", count: 256) + "/w", code: .trustDomainTooLong),
        Case(name: "fail/id 2049 bytes", input: "spiffe://td/" + String(repeating: "a", count: 2049 - 12), code: .idTooLong),
    ]

    @Test(arguments: valid)
    func parsesValidIDs(_ c: Case) throws {
        let id = try SPIFFEID(parsing: c.input)
        #expect(id.uri == c.input)
        #expect(id.description == c.input)
        #expect(try SPIFFEID(parsing: id.uri) == id)
    }

    @Test(arguments: invalid)
    func refusesInvalidIDs(_ c: Case) {
        let error = #expect(throws: SPIFFEIDError.self) { try SPIFFEID(parsing: c.input) }
        #expect(error?.code == c.code, "\(c.name): got \(String(describing: error))")
        // Messages are lowercase and name the problem.
        if let message = error?.message {
            #expect(!message.isEmpty)
            #expect(message.first?.isLowercase ?? false, "message should start lowercase: \(message)")
            #expect(!message.hasSuffix("."))
        }
    }

    @Test func componentsOfAParsedID() throws {
        let id = try SPIFFEID(parsing: "spiffe://example.org/ns/prod/sa/api")
        #expect(id.trustDomain.name == "example.org")
        #expect(id.path == "/ns/prod/sa/api")
        #expect(id.segments == ["ns", "prod", "sa", "api"])
        #expect(!id.isRoot)
    }

    @Test func rootIDParsesButIsNotAWorkload() throws {
        let root = try SPIFFEID(parsing: "spiffe://example.org")
        #expect(root.isRoot)
        #expect(root == root.trustDomain.id)
        let error = #expect(throws: SPIFFEIDError.self) { try root.requireWorkload() }
        #expect(error?.code == .rootNotAWorkload)
        #expect(throws: SPIFFEIDError.self) { try SPIFFEID.workload(parsing: "spiffe://example.org") }
        #expect(try SPIFFEID.workload(parsing: "spiffe://example.org/w").path == "/w")
    }

    // MARK: every byte, in the trust domain and in a path segment

    static func isTrustDomainByte(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2E || b == 0x2D || b == 0x5F
    }

    static func isPathByte(_ b: UInt8) -> Bool {
        isTrustDomainByte(b) || (b >= 0x41 && b <= 0x5A)
    }

    /// The code a single unexpected byte in the trust domain must produce.
    static func trustDomainCode(for b: UInt8) -> SPIFFEIDError.Code? {
        switch b {
        case _ where isTrustDomainByte(b): return nil
        case UInt8(ascii: "/"): return nil  // ends the trust domain: handled separately
        case UInt8(ascii: "@"): return .userInfoNotAllowed
        case UInt8(ascii: ":"): return .portNotAllowed
        case UInt8(ascii: "?"): return .queryNotAllowed
        case UInt8(ascii: "#"): return .fragmentNotAllowed
        case UInt8(ascii: "%"): return .percentEncodingNotAllowed
        default: return .invalidTrustDomainCharacter
        }
    }

    static func pathCode(for b: UInt8) -> SPIFFEIDError.Code? {
        switch b {
        case _ where isPathByte(b): return nil
        case UInt8(ascii: "?"): return .queryNotAllowed
        case UInt8(ascii: "#"): return .fragmentNotAllowed
        case UInt8(ascii: "%"): return .percentEncodingNotAllowed
        default: return .invalidPathCharacter
        }
    }

    /// Builds a string from raw bytes; bytes ≥ 0x80 are not valid UTF-8 alone, so they arrive as
    /// U+FFFD (3 bytes, all ≥ 0x80) — which the parser must refuse just the same.
    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test(arguments: 0...255)
    func everyByteInTheTrustDomain(_ value: Int) throws {
        let b = UInt8(value)
        let input = Self.text(Array("spiffe://ex".utf8) + [b] + Array("ample/w".utf8))
        if b == UInt8(ascii: "/") {
            // `spiffe://ex/ample/w` is a different, valid ID.
            #expect(try SPIFFEID(parsing: input).trustDomain.name == "ex")
            return
        }
        if let expected = Self.trustDomainCode(for: b) {
            let error = #expect(throws: SPIFFEIDError.self, "byte \(value)") { try SPIFFEID(parsing: input) }
            #expect(error?.code == expected, "byte 0x\(String(value, radix: 16)): \(String(describing: error))")
            // The trust-domain parser on its own agrees.
            #expect(throws: SPIFFEIDError.self) { try TrustDomain(parsing: Self.text(Array("ex".utf8) + [b] + Array("ample".utf8))) }
        } else {
            let id = try SPIFFEID(parsing: input)
            #expect(id.trustDomain.name.utf8.count == 8)
            #expect(try TrustDomain(parsing: id.trustDomain.name) == id.trustDomain)
        }
    }

    @Test(arguments: 0...255)
    func everyByteInAPathSegment(_ value: Int) throws {
        let b = UInt8(value)
        let input = Self.text(Array("spiffe://example.org/a".utf8) + [b] + Array("b/c".utf8))
        if b == UInt8(ascii: "/") {
            #expect(try SPIFFEID(parsing: input).segments == ["a", "b", "c"])
            return
        }
        if let expected = Self.pathCode(for: b) {
            let error = #expect(throws: SPIFFEIDError.self, "byte \(value)") { try SPIFFEID(parsing: input) }
            #expect(error?.code == expected, "byte 0x\(String(value, radix: 16)): \(String(describing: error))")
        } else {
            #expect(try SPIFFEID(parsing: input).segments.count == 2)
        }
    }

    // MARK: length limits on both sides

    @Test func trustDomainLengthLimit() throws {
        let max = String(repeating: "a", count: 255)
        #expect(try SPIFFEID(parsing: "spiffe://\(max)/w").trustDomain.name == max)
        #expect(try TrustDomain(parsing: max).name == max)
        let over = String(repeating: "a", count: 256)
        expectCode(.trustDomainTooLong) { try TrustDomain(parsing: over) }
        let error = #expect(throws: SPIFFEIDError.self) { try SPIFFEID(parsing: "spiffe://\(over)") }
        #expect(error?.code == .trustDomainTooLong)
    }

    @Test func idLengthLimit() throws {
        let prefix = "spiffe://example.org/"
        let exactly = prefix + String(repeating: "a", count: 2048 - prefix.utf8.count)
        #expect(exactly.utf8.count == 2048)
        #expect(try SPIFFEID(parsing: exactly).uri == exactly)
        let over = exactly + "a"
        let error = #expect(throws: SPIFFEIDError.self) { try SPIFFEID(parsing: over) }
        #expect(error?.code == .idTooLong)
        // Built from parts, the same limit holds.
        let td = try TrustDomain(parsing: "example.org")
        #expect(try SPIFFEID(trustDomain: td, path: "/" + String(repeating: "a", count: 2048 - prefix.utf8.count)).uri == exactly)
        let built = #expect(throws: SPIFFEIDError.self) {
            try SPIFFEID(trustDomain: td, path: "/" + String(repeating: "a", count: 2049 - prefix.utf8.count))
        }
        #expect(built?.code == .idTooLong)
    }

    // MARK: building from parts

    @Test func buildingFromParts() throws {
        let td = try TrustDomain(parsing: "example.org")
        #expect(try SPIFFEID(trustDomain: td, path: "/a/b").uri == "spiffe://example.org/a/b")
        #expect(try SPIFFEID(trustDomain: td, path: "").isRoot)
        #expect(try SPIFFEID(trustDomain: td, segments: ["ns", "prod"]).uri == "spiffe://example.org/ns/prod")
        expectCode(.pathNotAbsolute) { try SPIFFEID(trustDomain: td, path: "a/b") }
        expectCode(.trailingSlash) { try SPIFFEID(trustDomain: td, path: "/a/") }
        expectCode(.dotSegment) { try SPIFFEID(trustDomain: td, segments: [".."]) }
        expectCode(.emptySegment) { try SPIFFEID(trustDomain: td, segments: ["a", "", "b"]) }
    }

    @Test func trustDomainParsing() throws {
        #expect(try TrustDomain(parsing: "example.org").name == "example.org")
        #expect(try TrustDomain(parsing: "spiffe://example.org/x").name == "example.org")
        #expect(try TrustDomain(parsing: "spiffe://example.org").id.uri == "spiffe://example.org")
        expectCode(.missingTrustDomain) { try TrustDomain(parsing: "") }
        expectCode(.portNotAllowed) { try TrustDomain(parsing: "example.org:443") }
        expectCode(.invalidTrustDomainCharacter) { try TrustDomain(parsing: "Example.org") }
        expectCode(.invalidTrustDomainCharacter) { try TrustDomain(parsing: "example.org/x") }
    }

    @Test func membership() throws {
        let id = try SPIFFEID(parsing: "spiffe://a.org/w")
        #expect(id.isMember(of: try TrustDomain(parsing: "a.org")))
        expectCode(.trustDomainMismatch) { try id.require(memberOf: TrustDomain(parsing: "b.org")) }
    }

    func expectCode(_ code: SPIFFEIDError.Code, sourceLocation: SourceLocation = #_sourceLocation,
                    _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected error \(code)", sourceLocation: sourceLocation)
        } catch let error as SPIFFEIDError {
            #expect(error.code == code, "\(error.message)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func messagesNameTheProblem() {
        do {
            _ = try TrustDomain(parsing: "Example.org")
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("'E'"))
            #expect(error.message.contains("lowercase"))
        }
    }
}
