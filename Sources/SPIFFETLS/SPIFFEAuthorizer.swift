import SPIFFEIdentity

/// Decides whether a peer, whose X.509-SVID has already been verified against its trust
/// domain's bundle, is one this side wants to talk to.
public struct SPIFFEAuthorizer: Sendable, CustomStringConvertible {
    private let check: @Sendable (SPIFFEID) -> Bool
    /// What is accepted, for error messages and logs.
    public let description: String

    /// Accepts peers for which `predicate` holds; `description` says what it accepts.
    public init(_ description: String, _ predicate: @escaping @Sendable (SPIFFEID) -> Bool) {
        self.description = description
        check = predicate
    }

    /// True when `id` is authorized.
    public func authorizes(_ id: SPIFFEID) -> Bool { check(id) }

    /// Exactly this SPIFFE ID.
    public static func id(_ id: SPIFFEID) -> SPIFFEAuthorizer {
        SPIFFEAuthorizer("`\(id)`") { $0 == id }
    }

    /// Any of these SPIFFE IDs.
    public static func oneOf(_ ids: Set<SPIFFEID>) -> SPIFFEAuthorizer {
        SPIFFEAuthorizer("one of \(ids.map(\.uri).sorted().joined(separator: ", "))") { ids.contains($0) }
    }

    /// Any workload of this trust domain.
    public static func memberOf(_ trustDomain: TrustDomain) -> SPIFFEAuthorizer {
        SPIFFEAuthorizer("a member of `\(trustDomain)`") { $0.trustDomain == trustDomain && !$0.isRoot }
    }

    /// Any peer with a valid X.509-SVID from a trust domain the source holds a bundle for.
    public static let any = SPIFFEAuthorizer("any SPIFFE ID") { _ in true }
}
