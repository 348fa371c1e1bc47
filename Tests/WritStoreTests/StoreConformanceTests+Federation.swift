import Foundation
import SPIFFEIdentity
import Testing
import WritModel
@testable import WritStore
import WritTestSupport

/// Federated bundles and their tie to entries' `federates_with`, on every backend (part of the
/// one conformance suite).
extension StoreConformanceTests {
    static let partner = try! TrustDomain(parsing: "partner.org")
    static let other = try! TrustDomain(parsing: "other_td.org")

    @Test(arguments: StoreBackendKind.allCases)
    func federatedBundlesAreSetReplacedListedAndRecorded(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            #expect(try await store.listFederatedBundles().isEmpty)
            #expect(try await store.federatedBundle(Self.partner) == nil)
            let first = try await store.setFederatedBundle(F.federatedBundle("partner.org", "1"), at: F.now)
            #expect(first.revision > 0 && first.updatedAt == F.now)
            let second = try await store.setFederatedBundle(F.federatedBundle("other_td.org"), at: F.now)
            let later = F.now.addingTimeInterval(5)
            let replaced = try await store.setFederatedBundle(F.federatedBundle("partner.org", "2"), at: later)
            #expect(replaced.revision > second.revision && replaced.updatedAt == later)
            #expect(try await store.federatedBundle(Self.partner) == replaced)
            #expect(String(decoding: replaced.document, as: UTF8.self).contains(#""spiffe_sequence":2"#))
            // Ordered by trust domain name.
            #expect(try await store.listFederatedBundles().map(\.trustDomain.name) == ["other_td.org", "partner.org"])
            let changes = try await store.changes(after: 0, limit: 10)
            #expect(changes.map(\.kind) == [.federatedBundleSet, .federatedBundleSet, .federatedBundleSet])
            #expect(changes.map(\.recordID) == ["partner.org", "other_td.org", "partner.org"])
            #expect(changes.last?.revision == replaced.revision)
            await Self.expectError(.invalidArgument, "an empty document") {
                _ = try await store.setFederatedBundle(FederatedBundleRecord(trustDomain: Self.partner, document: []), at: F.now)
            }
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func entriesFederateOnlyWithStoredBundles(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            let revision = try await store.currentRevision()
            await Self.expectError(.invalidArgument, "create federating with an unknown trust domain") {
                _ = try await store.createEntry(F.entry("/a", federatesWith: ["partner.org"]), at: F.now)
            }
            #expect(try await store.currentRevision() == revision)
            #expect(try await store.countEntries(EntryFilter()) == 0)
            _ = try await store.setFederatedBundle(F.federatedBundle("partner.org"), at: F.now)
            let created = try await store.createEntry(F.entry("/a", federatesWith: ["partner.org"]), at: F.now)
            var change = created
            change.federatesWith = [Self.partner, Self.other]
            await Self.expectError(.invalidArgument, "update to federate with an unknown trust domain") {
                _ = try await store.updateEntry(change, at: F.now)
            }
            #expect(try await store.entry(id: created.id) == created)
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func deletingABundleRestrictsDissociatesOrDeletesItsEntries(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            _ = try await store.setFederatedBundle(F.federatedBundle("partner.org"), at: F.now)
            _ = try await store.setFederatedBundle(F.federatedBundle("other_td.org"), at: F.now)
            // `other_td.org`'s `_` is a LIKE wildcard: `otherxtd.org` must not be caught by it.
            _ = try await store.setFederatedBundle(F.federatedBundle("otherxtd.org"), at: F.now)
            let both = try await store.createEntry(F.entry("/both", selectors: ["unix:uid:1"], federatesWith: ["partner.org", "other_td.org"]), at: F.now)
            let lookalike = try await store.createEntry(F.entry("/lookalike", selectors: ["unix:uid:2"], federatesWith: ["otherxtd.org"]), at: F.now)
            let alone = try await store.createEntry(F.entry("/alone", selectors: ["unix:uid:3"], federatesWith: ["other_td.org"]), at: F.now)
            let plain = try await store.createEntry(F.entry("/plain", selectors: ["unix:uid:4"]), at: F.now)

            // restrict (the default mode) refuses and changes nothing.
            var revision = try await store.currentRevision()
            await Self.expectError(.conflict, "restrict while entries federate") {
                _ = try await store.deleteFederatedBundle(Self.other, mode: .restrict, at: F.now)
            }
            #expect(try await store.currentRevision() == revision)
            #expect(try await store.federatedBundle(Self.other) != nil)
            await Self.expectError(.notFound, "delete an unknown bundle") {
                _ = try await store.deleteFederatedBundle(try TrustDomain(parsing: "nobody.org"), mode: .restrict, at: F.now)
            }

            // dissociate drops the trust domain from exactly the entries naming it.
            let later = F.now.addingTimeInterval(1)
            let dissociated = try await store.deleteFederatedBundle(Self.other, mode: .dissociate, at: later)
            #expect(dissociated.affectedEntryIDs == [alone.id, both.id].sorted())
            #expect(dissociated.bundle.trustDomain == Self.other)
            #expect(try await store.federatedBundle(Self.other) == nil)
            let bothNow = try #require(try await store.entry(id: both.id))
            #expect(bothNow.federatesWith == [Self.partner] && bothNow.revision > both.revision && bothNow.updatedAt == later)
            #expect(bothNow.selectors == both.selectors && bothNow.createdAt == both.createdAt)
            #expect(try await store.entry(id: alone.id)?.federatesWith == [])
            #expect(try await store.entry(id: lookalike.id) == lookalike)
            #expect(try await store.entry(id: plain.id) == plain)
            let changes = try await store.changes(after: revision, limit: 10)
            #expect(changes.map(\.kind) == [.entryUpdated, .entryUpdated, .federatedBundleDeleted])
            #expect(changes.last?.recordID == "other_td.org")

            // delete removes the entries with the bundle; restrict now passes for an unused one.
            revision = try await store.currentRevision()
            let deleted = try await store.deleteFederatedBundle(Self.partner, mode: .delete, at: later)
            #expect(deleted.affectedEntryIDs == [both.id])
            #expect(try await store.entry(id: both.id) == nil)
            #expect(try await store.listEntries(EntryQuery(filter: EntryFilter(selectors: [F.selector("unix:uid:1")], match: .any))).entries.isEmpty)
            #expect(try await store.changes(after: revision, limit: 10).map(\.kind) == [.entryDeleted, .federatedBundleDeleted])
            _ = try await store.deleteFederatedBundle(try TrustDomain(parsing: "otherxtd.org"), mode: .dissociate, at: later)
            #expect(try await store.entry(id: lookalike.id)?.federatesWith == [])
            #expect(try await store.listFederatedBundles().isEmpty)
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func aFailedBundleWriteLeavesNothing(_ kind: StoreBackendKind) async throws {
        let armed = FaultSwitch()
        let faults = armed.faults(at: .beforeCommit)
        try await F.withStore(kind, faults: faults) { store in
            let kept = try await store.setFederatedBundle(F.federatedBundle("partner.org", "1"), at: F.now)
            let entry = try await store.createEntry(F.entry("/a", federatesWith: ["partner.org"]), at: F.now)
            let revision = try await store.currentRevision()
            armed.isOn = true
            await Self.expectError(.injectedFault, "set with a fault") { _ = try await store.setFederatedBundle(F.federatedBundle("partner.org", "2"), at: F.now) }
            await Self.expectError(.injectedFault, "set a new one with a fault") { _ = try await store.setFederatedBundle(F.federatedBundle("other_td.org"), at: F.now) }
            for mode in FederatedBundleDeleteMode.allCases where mode != .restrict {
                await Self.expectError(.injectedFault, "delete (\(mode)) with a fault") { _ = try await store.deleteFederatedBundle(Self.partner, mode: mode, at: F.now) }
            }
            armed.isOn = false
            #expect(try await store.currentRevision() == revision)
            #expect(try await store.listFederatedBundles() == [kept])
            #expect(try await store.entry(id: entry.id) == entry)
        }
    }
}
