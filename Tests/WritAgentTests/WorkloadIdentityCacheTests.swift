import Crypto
import Foundation
import SPIFFEIdentity
import Testing
import WritCA
import WritModel
import X509
@testable import WritAgent

/// The agent's SVID cache under its limit (`svid_cache_limit`): SVIDs are pre-minted for the
/// oldest entries up to the limit; an entry a caller asks for beyond it is minted first; then
/// the SVIDs served least recently are dropped until the limit holds again. SVIDs due for
/// rotation are handed to the minter; expired ones are not served.
@Suite struct WorkloadIdentityCacheTests {
    static let agentID = try! SPIFFEID(parsing: "spiffe://example.org/writ/agent/join_token/t1")

    static func selectors(_ uid: Int) -> Set<Selector> { [try! Selector(parsing: "unix:uid:\(uid)")] }

    @Test func svidsArePreMintedUpToTheLimitAndTheLeastRecentlyServedAreDropped() async throws {
        let ca = try await CertificateAuthority(trustDomain: try TrustDomain(parsing: "example.org"), keyManager: MemoryKeyManager(),
                                                store: MemoryCAStateStore(), now: { Date() })
        let cache = WorkloadIdentityCache(bundle: await ca.bundle())
        let now = Date()
        let entries = try (0..<5).map { n in
            RegistrationEntry(spiffeID: try SPIFFEID(parsing: "spiffe://example.org/w\(n)"), parentID: Self.agentID,
                              selectors: [try Selector(parsing: "unix:uid:\(100 + n)")], createdAt: Date(timeIntervalSince1970: Double(1 + n)))
        }
        await cache.replaceEntries(entries)
        func mint(_ entry: RegistrationEntry, rotateAt: Date? = nil) async throws {
            let key = P256.Signing.PrivateKey()
            let issued = try await ca.issueX509SVID(publicKey: Certificate.PublicKey(key.publicKey), id: entry.spiffeID)
            await cache.setSVID(WorkloadX509Identity(entry: entry, chainDER: issued.chainDER, privateKeyPKCS8: Array(key.derRepresentation),
                                                     expiresAt: issued.chain[0].notValidAfter, rotateAt: rotateAt))
        }
        /// Which entries hold an SVID, read without counting as serving them.
        func held() async -> [Int] {
            let ids = await cache.svidIDs
            return entries.indices.filter { ids.contains(entries[$0].id) }
        }

        // Pre-minting: the three oldest entries, nothing more once they hold SVIDs.
        let first = await cache.mintingWork(at: now, limit: 3)
        #expect(first.map(\.id) == entries.prefix(3).map(\.id))
        for entry in first { try await mint(entry) }
        #expect(await cache.mintingWork(at: now, limit: 3).isEmpty)
        #expect(await held() == [0, 1, 2])

        // Workloads fetch w0 and w2; w1 is now the least recently served.
        #expect(await cache.lookup(Self.selectors(100), at: now).identities.count == 1)
        #expect(await cache.lookup(Self.selectors(102), at: now).identities.count == 1)

        // A caller of w4 (no SVID, beyond the limit) demands it: it is minted first ...
        let demand = await cache.lookup(Self.selectors(104), at: now)
        #expect(demand.pending == 1 && demand.identities.isEmpty)
        #expect(await cache.mintingWork(at: now, limit: 3).map(\.id) == [entries[4].id])
        try await mint(entries[4])
        #expect(await cache.lookup(Self.selectors(104), at: now).identities.count == 1)
        // ... and the next pass drops the least recently served SVID to get back to the limit.
        #expect(await cache.mintingWork(at: now, limit: 3).isEmpty)
        #expect(await held() == [0, 2, 4])

        // An SVID due for rotation goes back to the minter; an expired one is not served.
        try await mint(entries[0], rotateAt: now.addingTimeInterval(-1))
        #expect(await cache.mintingWork(at: now, limit: 3).map(\.id) == [entries[0].id])
        let later = now.addingTimeInterval(3600)
        let expired = await cache.lookup(Self.selectors(102), at: later)
        #expect(expired.identities.isEmpty && expired.pending == 1, "an SVID past its notAfter is never served")
    }
}
