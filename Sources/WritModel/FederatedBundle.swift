import Foundation
import SPIFFEIdentity

/// A foreign trust domain's bundle, set by an operator (`writ bundle set`): workloads whose
/// entries name the trust domain in `federates_with` receive it, and so trust SVIDs from there.
public struct FederatedBundleRecord: Sendable, Hashable {
    /// The foreign trust domain (never the server's own).
    public var trustDomain: TrustDomain
    /// The bundle as a SPIFFE bundle document (JWKS JSON), already validated and normalised.
    public var document: [UInt8]
    /// The store revision of the last change; 0 before it is stored.
    public var revision: Int64
    public var updatedAt: Date?

    public init(trustDomain: TrustDomain, document: [UInt8], revision: Int64 = 0, updatedAt: Date? = nil) {
        self.trustDomain = trustDomain
        self.document = document
        self.revision = revision
        self.updatedAt = updatedAt
    }
}

/// What happens to the entries that federate with a trust domain whose bundle is deleted
/// (SPIRE's modes, same names).
public enum FederatedBundleDeleteMode: String, Sendable, Hashable, CaseIterable {
    /// Refuse while any entry federates with the trust domain (the default).
    case restrict
    /// Remove the trust domain from those entries' `federates_with`.
    case dissociate
    /// Delete those entries.
    case delete
}

/// The result of deleting a federated bundle.
public struct FederatedBundleDeletion: Sendable, Hashable {
    /// The bundle as it was.
    public var bundle: FederatedBundleRecord
    /// Entries that were dissociated from the trust domain or deleted, by id.
    public var affectedEntryIDs: [String]

    public init(bundle: FederatedBundleRecord, affectedEntryIDs: [String]) {
        self.bundle = bundle
        self.affectedEntryIDs = affectedEntryIDs
    }
}
