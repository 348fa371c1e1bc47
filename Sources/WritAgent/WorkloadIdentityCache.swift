import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import WritModel

/// One identity the agent holds for workloads: an entry and its current X.509-SVID, whose key
/// never leaves this process.
public struct WorkloadX509Identity: Sendable, Hashable {
    public var entry: RegistrationEntry
    /// The SVID chain, DER, leaf first.
    public var chainDER: [[UInt8]]
    /// The private key, PKCS#8 DER.
    public var privateKeyPKCS8: [UInt8]
    public var expiresAt: Date

    public init(entry: RegistrationEntry, chainDER: [[UInt8]], privateKeyPKCS8: [UInt8], expiresAt: Date) {
        self.entry = entry
        self.chainDER = chainDER
        self.privateKeyPKCS8 = privateKeyPKCS8
        self.expiresAt = expiresAt
    }
}

/// What the agent serves to workloads, in memory: the X.509 identities of its entries, its
/// trust domain's bundle and the federated bundles. Every change bumps ``generation`` and wakes
/// the Workload API streams, which then send the caller's full current state.
public actor WorkloadIdentityCache {
    private var identities: [String: WorkloadX509Identity] = [:]
    public private(set) var bundle: TrustBundle
    public private(set) var federated: [TrustDomain: TrustBundle] = [:]
    /// Bumped by every change.
    public private(set) var generation: UInt64 = 0
    private var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]

    public init(bundle: TrustBundle) {
        self.bundle = bundle
    }

    /// Replaces the identities (by entry id).
    public func setIdentities(_ list: [WorkloadX509Identity]) {
        identities = Dictionary(list.map { ($0.entry.id, $0) }, uniquingKeysWith: { $1 })
        changed()
    }

    /// Replaces the trust domain's bundle and the federated bundles.
    public func setBundles(_ bundle: TrustBundle, federated: [TrustDomain: TrustBundle]) {
        self.bundle = bundle
        self.federated = federated
        changed()
    }

    /// The identities whose entries' selectors are all among `selectors`, unexpired at `now`,
    /// ordered by entry creation time then id (the first is the default); of several with the
    /// same non-empty hint only the oldest is kept.
    public func identities(for selectors: Set<Selector>, at now: Date) -> [WorkloadX509Identity] {
        let matching = identities.values.filter { identity in
            identity.expiresAt > now && !identity.entry.selectors.isEmpty && Set(identity.entry.selectors).isSubset(of: selectors)
        }.sorted { a, b in
            let (ca, cb) = (a.entry.createdAt ?? .distantPast, b.entry.createdAt ?? .distantPast)
            return ca != cb ? ca < cb : a.entry.id < b.entry.id
        }
        var hints: Set<String> = []
        return matching.filter { identity in identity.entry.hint.isEmpty || hints.insert(identity.entry.hint).inserted }
    }

    /// Waits until ``generation`` passes `after` (returns at once if it has), or the task is
    /// cancelled.
    public func waitForChange(after: UInt64) async {
        guard generation <= after else { return }
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if Task.isCancelled || generation > after { continuation.resume() } else { waiters[id] = continuation }
            }
        } onCancel: {
            Task { await self.resume(id) }
        }
    }

    private func resume(_ id: UUID) {
        waiters.removeValue(forKey: id)?.resume()
    }

    private func changed() {
        generation &+= 1
        for waiter in waiters.values { waiter.resume() }
        waiters = [:]
    }
}
