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
    /// When the agent replaces it (half-life with jitter); nil: half of the time to `expiresAt`
    /// from when it was stored.
    public var rotateAt: Date?

    public init(entry: RegistrationEntry, chainDER: [[UInt8]], privateKeyPKCS8: [UInt8], expiresAt: Date, rotateAt: Date? = nil) {
        self.entry = entry
        self.chainDER = chainDER
        self.privateKeyPKCS8 = privateKeyPKCS8
        self.expiresAt = expiresAt
        self.rotateAt = rotateAt
    }
}

/// What the agent serves to workloads, in memory: the entries it may serve, the X.509-SVIDs it
/// minted for them, its trust domain's bundle and the federated bundles. Every change bumps
/// ``generation`` and wakes the Workload API streams, which then send the caller's full
/// current state; a lookup that finds a matching entry without an SVID asks the minter for it.
public actor WorkloadIdentityCache {
    private var entries: [String: RegistrationEntry] = [:]
    private var svids: [String: WorkloadX509Identity] = [:]
    /// When each entry's SVID was last handed to a workload (least recently served go first).
    private var lastServed: [String: UInt64] = [:]
    private var serveClock: UInt64 = 0
    /// Entries a caller is waiting for; the minter takes them first.
    private var demanded: Set<String> = []
    public private(set) var bundle: TrustBundle
    public private(set) var federated: [TrustDomain: TrustBundle] = [:]
    /// Bumped by every change.
    public private(set) var generation: UInt64 = 0
    private var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]
    private var demandWaiter: CheckedContinuation<Void, Never>?

    public init(bundle: TrustBundle) {
        self.bundle = bundle
    }

    // MARK: entries and SVIDs

    /// Replaces the entries and SVIDs at once (an agent restoring state; tests).
    public func setIdentities(_ list: [WorkloadX509Identity]) {
        entries = Dictionary(list.map { ($0.entry.id, $0.entry) }, uniquingKeysWith: { $1 })
        svids = Dictionary(list.map { ($0.entry.id, $0) }, uniquingKeysWith: { $1 })
        lastServed = lastServed.filter { entries[$0.key] != nil }
        changed()
    }

    /// Replaces the entries (a sync snapshot). SVIDs of entries that are gone, or whose
    /// certificate content changed (SPIFFE ID, DNS names, TTL), are dropped.
    public func replaceEntries(_ list: [RegistrationEntry]) {
        let fresh = Dictionary(list.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
        for id in entries.keys where fresh[id] == nil { forget(id) }
        entries = [:]
        for entry in fresh.values { store(entry) }
        changed()
    }

    /// Applies a sync delta.
    public func applyEntries(changed list: [RegistrationEntry], removed: [String]) {
        guard !list.isEmpty || !removed.isEmpty else { return }
        for id in removed {
            entries.removeValue(forKey: id)
            forget(id)
        }
        for entry in list { store(entry) }
        changed()
    }

    private func store(_ entry: RegistrationEntry) {
        if let held = svids[entry.id]?.entry,
           held.spiffeID != entry.spiffeID || held.dnsNames != entry.dnsNames || held.x509SVIDTTL != entry.x509SVIDTTL {
            svids.removeValue(forKey: entry.id)
        } else {
            svids[entry.id]?.entry = entry
        }
        entries[entry.id] = entry
    }

    private func forget(_ id: String) {
        svids.removeValue(forKey: id)
        lastServed.removeValue(forKey: id)
        demanded.remove(id)
    }

    /// Stores a minted SVID for its entry (ignored when the entry is gone or changed since).
    public func setSVID(_ identity: WorkloadX509Identity) {
        guard let entry = entries[identity.entry.id], entry.spiffeID == identity.entry.spiffeID, entry.dnsNames == identity.entry.dnsNames else { return }
        var stored = identity
        stored.entry = entry
        svids[entry.id] = stored
        demanded.remove(entry.id)
        changed()
    }

    /// Every entry the agent may serve.
    public var allEntries: [RegistrationEntry] { Array(entries.values) }

    /// How many entries the agent may serve.
    public var entryCount: Int { entries.count }

    /// How many entries hold an SVID.
    public var svidCount: Int { svids.count }

    /// The ids of the entries that hold an SVID (without counting as serving them).
    var svidIDs: Set<String> { Set(svids.keys) }

    /// Replaces the trust domain's bundle and the federated bundles.
    public func setBundles(_ bundle: TrustBundle, federated: [TrustDomain: TrustBundle]) {
        self.bundle = bundle
        self.federated = federated
        changed()
    }

    /// Replaces the trust domain's bundle.
    public func setBundle(_ bundle: TrustBundle) {
        self.bundle = bundle
        changed()
    }

    /// Replaces the federated bundles.
    public func setFederated(_ federated: [TrustDomain: TrustBundle]) {
        self.federated = federated
        changed()
    }

    // MARK: lookups

    /// What a caller with `selectors` may receive now.
    public struct Lookup: Sendable {
        /// Identities with a current SVID, in serving order.
        public var identities: [WorkloadX509Identity]
        /// Matching entries (after the hint rule) without a current SVID.
        public var pending: Int
        /// Matching entries, whatever their SVID.
        public var matching: Int
        /// The cache's ``generation``, bundle and federated bundles at the same moment.
        public var generation: UInt64
        public var bundle: TrustBundle
        public var federated: [TrustDomain: TrustBundle]
    }

    /// The entries whose selectors are all among `selectors`, ordered by creation time then id
    /// (the first is the default); of several with the same non-empty hint only the oldest is
    /// kept. Those without an unexpired SVID at `now` are counted as pending and demanded from
    /// the minter.
    public func lookup(_ selectors: Set<Selector>, at now: Date) -> Lookup {
        let served = lookupEntries(selectors, at: now)
        var lookup = Lookup(identities: [], pending: 0, matching: served.count, generation: generation, bundle: bundle, federated: federated)
        var newDemand = false
        serveClock &+= 1
        for entry in served {
            if let svid = svids[entry.id], svid.expiresAt > now {
                lookup.identities.append(svid)
                lastServed[entry.id] = serveClock
            } else {
                lookup.pending += 1
                newDemand = demanded.insert(entry.id).inserted || newDemand
            }
        }
        if newDemand { demandWaiter?.resume(); demandWaiter = nil }
        return lookup
    }

    /// The entries a caller with `selectors` is served, whether or not they hold an SVID.
    public func matchingEntries(_ selectors: Set<Selector>, at now: Date) -> [RegistrationEntry] {
        entries.values.filter { entry in
            !entry.selectors.isEmpty && Set(entry.selectors).isSubset(of: selectors) && (entry.expiresAt.map { $0 > now } ?? true)
        }
    }

    /// The entries a caller with `selectors` is served, in serving order (creation time, then
    /// id; the hint rule applied), whether or not they hold an X.509-SVID.
    public func lookupEntries(_ selectors: Set<Selector>, at now: Date) -> [RegistrationEntry] {
        let matching = matchingEntries(selectors, at: now).sorted { a, b in
            let (ca, cb) = (a.createdAt ?? .distantPast, b.createdAt ?? .distantPast)
            return ca != cb ? ca < cb : a.id < b.id
        }
        var hints: Set<String> = []
        return matching.filter { entry in entry.hint.isEmpty || hints.insert(entry.hint).inserted }
    }

    /// The identities with a current SVID for `selectors` (see ``lookup(_:at:)``).
    public func identities(for selectors: Set<Selector>, at now: Date) -> [WorkloadX509Identity] {
        lookup(selectors, at: now).identities
    }

    // MARK: the minter's side

    /// Entries that need an SVID minted at `now`: demanded ones first, then (up to `limit`
    /// SVIDs held) entries without one, then held SVIDs due for rotation. Held SVIDs beyond
    /// `limit` are dropped, least recently served first.
    public func mintingWork(at now: Date, limit: Int) -> [RegistrationEntry] {
        if svids.count > limit {
            let order = svids.keys.sorted { (lastServed[$0] ?? 0, $0) < (lastServed[$1] ?? 0, $1) }
            for id in order.prefix(svids.count - limit) where !demanded.contains(id) { svids.removeValue(forKey: id) }
        }
        var work: [RegistrationEntry] = []
        var chosen: Set<String> = []
        for id in demanded.sorted() {
            if let entry = entries[id], svids[id].map({ $0.expiresAt <= now }) ?? true, chosen.insert(id).inserted { work.append(entry) }
        }
        let unminted = entries.values.filter { svids[$0.id] == nil && !chosen.contains($0.id) }.sorted {
            ($0.createdAt ?? .distantPast, $0.id) < ($1.createdAt ?? .distantPast, $1.id)
        }
        for entry in unminted.prefix(max(0, limit - svids.count)) where chosen.insert(entry.id).inserted { work.append(entry) }
        for (id, svid) in svids where (svid.rotateAt ?? svid.expiresAt) <= now {
            if let entry = entries[id], chosen.insert(id).inserted { work.append(entry) }
        }
        return work
    }

    /// Drops SVIDs that expired by `now` (streams then re-evaluate their callers).
    public func dropExpired(at now: Date) {
        let expired = svids.filter { $0.value.expiresAt <= now }.map(\.key)
        guard !expired.isEmpty else { return }
        for id in expired { svids.removeValue(forKey: id) }
        changed()
    }

    /// The earliest time a held SVID is due for rotation.
    public var nextRotation: Date? { svids.values.map { $0.rotateAt ?? $0.expiresAt }.min() }

    /// Waits until a caller demands an entry without an SVID, or `timeout` passes.
    public func waitForDemand(timeout: Duration) async {
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            await self?.wakeMinter()
        }
        defer { timer.cancel() }
        await withCheckedContinuation { continuation in
            demandWaiter?.resume()
            demandWaiter = continuation
        }
    }

    /// Wakes a minter waiting in ``waitForDemand(timeout:)``.
    public func wakeMinter() {
        demandWaiter?.resume()
        demandWaiter = nil
    }

    // MARK: change notification

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

    /// Signals a change that is not a write here (an SVID expiring), so streams re-evaluate.
    public func touch() { changed() }

    private func resume(_ id: UUID) {
        waiters.removeValue(forKey: id)?.resume()
    }

    private func changed() {
        generation &+= 1
        for waiter in waiters.values { waiter.resume() }
        waiters = [:]
    }
}
