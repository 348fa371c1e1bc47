/// A SPIFFE ID, `spiffe://<trust-domain><path>`, valid by construction.
///
/// Parsing follows SPIFFE-ID.md §2 to the letter: the scheme is exactly `spiffe` in lowercase;
/// the trust domain is made of `[a-z0-9.-_]` and at most 255 bytes; each path segment is made of
/// `[A-Za-z0-9.-_]`, is not empty and is not `.` or `..`; there is no trailing slash, query,
/// fragment, port, userinfo or percent-encoding; the whole ID is at most 2048 bytes.
///
/// The root ID `spiffe://<td>` (empty path) parses, because it names a trust domain, but
/// ``requireWorkload()`` refuses it: it is never the identity of a workload.
public struct SPIFFEID: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    /// The trust domain the ID belongs to.
    public let trustDomain: TrustDomain
    /// The path: empty for the root ID, otherwise `/segment/segment…`.
    public let path: String

    /// The largest SPIFFE ID the specification allows, in bytes.
    public static let maximumLength = 2048
    /// `spiffe://`, the only accepted prefix.
    public static let schemePrefix = "spiffe://"

    /// Parses a SPIFFE ID, refusing any form the specification forbids.
    public init(parsing text: String) throws(SPIFFEIDError) {
        let bytes = text.utf8
        guard !bytes.isEmpty else { throw SPIFFEIDError(.empty, "spiffe id is empty") }
        guard bytes.count <= Self.maximumLength else {
            throw SPIFFEIDError(.idTooLong, "spiffe id is \(bytes.count) bytes long: at most \(Self.maximumLength) are allowed")
        }
        guard bytes.starts(with: Self.schemePrefix.utf8) else {
            throw SPIFFEIdentityRules.schemeError(text)
        }
        let rest = bytes.dropFirst(Self.schemePrefix.utf8.count)
        let slash = rest.firstIndex(of: UInt8(ascii: "/")) ?? rest.endIndex
        let authority = rest[rest.startIndex..<slash]
        guard !authority.isEmpty else {
            throw SPIFFEIDError(.missingTrustDomain, "invalid spiffe id `\(SPIFFEIdentityRules.quoted(text))`: the trust domain is missing")
        }
        try SPIFFEIdentityRules.checkTrustDomain(authority, in: text)
        let pathBytes = rest[slash...]
        try SPIFFEIdentityRules.checkPath(pathBytes, in: text)
        self.trustDomain = TrustDomain(validatedName: String(decoding: authority, as: UTF8.self))
        self.path = String(decoding: pathBytes, as: UTF8.self)
    }

    /// Creates the ID `spiffe://<trustDomain><path>`; `path` is empty (the root ID) or begins
    /// with `/` and obeys the path rules.
    public init(trustDomain: TrustDomain, path: String) throws(SPIFFEIDError) {
        if !path.isEmpty && !path.utf8.starts(with: "/".utf8) {
            throw SPIFFEIDError(.pathNotAbsolute, "invalid spiffe id path `\(SPIFFEIdentityRules.quoted(path))`: a path must begin with '/'")
        }
        try SPIFFEIdentityRules.checkPath(path.utf8[...], in: path)
        let total = Self.schemePrefix.utf8.count + trustDomain.name.utf8.count + path.utf8.count
        guard total <= Self.maximumLength else {
            throw SPIFFEIDError(.idTooLong, "spiffe id is \(total) bytes long: at most \(Self.maximumLength) are allowed")
        }
        self.trustDomain = trustDomain
        self.path = path
    }

    /// Creates the ID from segments, each checked as a path segment, e.g. `["ns", "prod"]`.
    public init(trustDomain: TrustDomain, segments: [String]) throws(SPIFFEIDError) {
        try self.init(trustDomain: trustDomain, path: segments.map { "/" + $0 }.joined())
    }

    init(validatedTrustDomain: TrustDomain, path: String) {
        self.trustDomain = validatedTrustDomain
        self.path = path
    }

    /// Whether this is the root ID of its trust domain (`spiffe://<td>`, empty path).
    public var isRoot: Bool { path.isEmpty }

    /// The path segments, e.g. `["ns", "prod"]`; empty for the root ID.
    public var segments: [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: true)
    }

    /// The ID as a string, `spiffe://<td><path>`.
    public var uri: String { Self.schemePrefix + trustDomain.name + path }

    public var description: String { uri }

    /// Returns `self` if it can identify a workload; refuses the root ID.
    @discardableResult
    public func requireWorkload() throws(SPIFFEIDError) -> SPIFFEID {
        if isRoot {
            throw SPIFFEIDError(.rootNotAWorkload, "`\(uri)` names the trust domain `\(trustDomain.name)`, not a workload: a workload id needs a path")
        }
        return self
    }

    /// Returns `self` if it belongs to `trustDomain`.
    @discardableResult
    public func require(memberOf trustDomain: TrustDomain) throws(SPIFFEIDError) -> SPIFFEID {
        if self.trustDomain != trustDomain {
            throw SPIFFEIDError(.trustDomainMismatch, "`\(uri)` is not in the trust domain `\(trustDomain.name)`")
        }
        return self
    }

    /// Whether this ID is in `trustDomain`.
    public func isMember(of trustDomain: TrustDomain) -> Bool { self.trustDomain == trustDomain }

    /// Parses a workload identity: a valid SPIFFE ID that is not a root ID.
    public static func workload(parsing text: String) throws(SPIFFEIDError) -> SPIFFEID {
        try SPIFFEID(parsing: text).requireWorkload()
    }

    public static func < (lhs: SPIFFEID, rhs: SPIFFEID) -> Bool { lhs.uri < rhs.uri }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(parsing: text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(uri)
    }
}
