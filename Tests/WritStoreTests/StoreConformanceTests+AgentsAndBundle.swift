import Foundation
import SPIFFEIdentity
import Testing
import WritModel
@testable import WritStore
import WritTestSupport

/// The agent records and the shared trust bundle, on every backend (part of the one
/// conformance suite).
extension StoreConformanceTests {
    static func agentRecord(_ path: String, serial: String = "01", selectors: [String] = ["join_token:id:t1"], type: String = "join_token",
                            expiresIn: TimeInterval = 3600, canReattest: Bool = false) -> AgentRecord {
        AgentRecord(id: F.id(path), attestationType: type, selectors: selectors.map(F.selector), serialNumber: serial,
                    expiresAt: F.now.addingTimeInterval(expiresIn), canReattest: canReattest)
    }

    // MARK: agents

    @Test(arguments: StoreBackendKind.allCases)
    func agentsAttestRenewEvictBanAndPurge(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            let start = try await store.currentRevision()
            let a = try await store.attestAgent(Self.agentRecord("/writ/agent/join_token/t1"), at: F.now)
            #expect(a.id == F.id("/writ/agent/join_token/t1") && a.serialNumber == "01" && !a.banned && a.createdAt == F.now)
            #expect(try await store.agent(id: a.id) == a)
            let b = try await store.attestAgent(Self.agentRecord("/writ/agent/x509pop/ab", serial: "0b", selectors: ["x509pop:subject:cn:n1"],
                                                                 type: "x509pop", expiresIn: 60, canReattest: true), at: F.now)
            #expect(try await store.listAgents(AgentFilter()).map(\.id) == [a.id, b.id])
            #expect(try await store.listAgents(AgentFilter(attestationType: "x509pop")).map(\.id) == [b.id])
            #expect(try await store.listAgents(AgentFilter(selectors: [F.selector("x509pop:subject:cn:n1")])).map(\.id) == [b.id])
            #expect(try await store.listAgents(AgentFilter(expiresBefore: F.now.addingTimeInterval(120))).map(\.id) == [b.id])

            // Renewal moves from the current serial only; a stale serial is a conflict.
            let renewed = try await store.renewAgent(id: a.id, fromSerial: "01", toSerial: "02", expiresAt: F.now.addingTimeInterval(7200), at: F.now)
            #expect(renewed.serialNumber == "02")
            await Self.expectError(.conflict, "renew from a stale serial") {
                _ = try await store.renewAgent(id: a.id, fromSerial: "01", toSerial: "03", expiresAt: F.now, at: F.now)
            }
            #expect(try await store.agent(id: a.id)?.serialNumber == "02")

            // Re-attesting an existing (x509pop) agent replaces its SVID; evicting removes it.
            let again = try await store.attestAgent(Self.agentRecord("/writ/agent/x509pop/ab", serial: "0c", selectors: ["x509pop:subject:cn:n1"],
                                                                     type: "x509pop", canReattest: true), at: F.now)
            #expect(again.serialNumber == "0c")
            _ = try await store.evictAgent(id: b.id, at: F.now)
            #expect(try await store.agent(id: b.id) == nil)
            await Self.expectError(.notFound, "evict an unknown agent") { _ = try await store.evictAgent(id: b.id, at: F.now) }

            // A banned agent keeps its record without a serial and cannot attest again until purged.
            let banned = try await store.banAgent(id: a.id, at: F.now)
            #expect(banned.banned && banned.serialNumber.isEmpty)
            await Self.expectError(.permissionDenied, "attest a banned agent") {
                _ = try await store.attestAgent(Self.agentRecord("/writ/agent/join_token/t1", serial: "09"), at: F.now)
            }
            await Self.expectError(.permissionDenied, "renew a banned agent") {
                _ = try await store.renewAgent(id: a.id, fromSerial: "", toSerial: "0a", expiresAt: F.now, at: F.now)
            }
            #expect(try await store.listAgents(AgentFilter(banned: true)).map(\.id) == [a.id])
            #expect(try await store.purgeAgents(expiredBefore: F.now.addingTimeInterval(1), at: F.now).isEmpty)
            #expect(try await store.purgeAgents(expiredBefore: F.now.addingTimeInterval(86400), at: F.now) == [a.id])
            _ = try await store.attestAgent(Self.agentRecord("/writ/agent/join_token/t1", serial: "0d"), at: F.now)

            // Each of those writes is one change, in order.
            let kinds = try await store.changes(after: start, limit: 100).map(\.kind)
            #expect(kinds == [.agentAttested, .agentAttested, .agentRenewed, .agentAttested, .agentEvicted, .agentBanned, .agentPurged, .agentAttested])
        }
    }

    // MARK: the shared bundle

    static func authority(_ server: String, _ kind: BundleAuthority.Kind, _ id: String, bytes: [UInt8] = [1, 2, 3], expiresIn: TimeInterval = 86400) -> BundleAuthority {
        BundleAuthority(serverID: server, kind: kind, id: id, data: bytes, expiresAt: F.now.addingTimeInterval(expiresIn))
    }

    @Test(arguments: StoreBackendKind.allCases)
    func theSharedBundleIsTheUnionOfEachServersKeysAndItsSequenceMovesWithThem(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            #expect(try await store.sharedBundle() == SharedBundleRecord(sequence: 0, authorities: []))
            let a1 = Self.authority("a", .x509, "root-a1", bytes: [0xA1])
            let aj = Self.authority("a", .jwt, "kid-a", bytes: [0xAA])
            var bundle = try await store.publishBundleAuthorities(serverID: "a", [a1, aj], at: F.now)
            #expect(bundle.sequence == 1 && bundle.authorities == [aj, a1], "ordered by kind then id")
            // The same keys again change nothing, not even the sequence.
            let before = try await store.currentRevision()
            #expect(try await store.publishBundleAuthorities(serverID: "a", [aj, a1], at: F.now).sequence == 1)
            #expect(try await store.currentRevision() == before)

            // Another server's keys join; the same upstream anchor from both is kept once per server.
            let b1 = Self.authority("b", .x509, "root-b1", bytes: [0xB1])
            let shared = Self.authority("b", .x509, "anchor", bytes: [0xCC])
            bundle = try await store.publishBundleAuthorities(serverID: "b", [b1, shared], at: F.now)
            #expect(bundle.sequence == 2 && Set(bundle.authorities.map(\.id)) == ["root-a1", "kid-a", "root-b1", "anchor"])
            #expect(try await store.changes(after: before, limit: 10).map(\.kind) == [.bundleUpdated])

            // A rotation: a's next root joins, later its old one leaves; each is one step.
            let a2 = Self.authority("a", .x509, "root-a2", bytes: [0xA2])
            #expect(try await store.publishBundleAuthorities(serverID: "a", [a1, a2, aj], at: F.now).sequence == 3)
            bundle = try await store.publishBundleAuthorities(serverID: "a", [a2, aj], at: F.now)
            #expect(bundle.sequence == 4 && !bundle.authorities.contains { $0.id == "root-a1" } && bundle.authorities.contains { $0.id == "root-b1" })

            // Expired contributions (of a server that is gone) are dropped by the next publish.
            let short = Self.authority("c", .x509, "root-c", expiresIn: 60)
            _ = try await store.publishBundleAuthorities(serverID: "c", [short], at: F.now)
            bundle = try await store.publishBundleAuthorities(serverID: "a", [a2, aj], at: F.now.addingTimeInterval(120))
            #expect(bundle.sequence == 6 && !bundle.authorities.contains { $0.id == "root-c" })
            #expect(try await store.sharedBundle() == bundle)

            await Self.expectError(.invalidArgument, "another server's authority") {
                _ = try await store.publishBundleAuthorities(serverID: "a", [b1], at: F.now)
            }
            #expect(try await store.sharedBundle() == bundle, "a refused publish changes nothing")
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func concurrentPublishesFromSeveralServersEachMoveTheSequenceOnce(_ kind: StoreBackendKind) async throws {
        try await F.withStore(kind) { store in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for server in 0..<8 {
                    group.addTask {
                        _ = try await store.publishBundleAuthorities(serverID: "s\(server)", [Self.authority("s\(server)", .x509, "root-\(server)")], at: F.now)
                    }
                }
                try await group.waitForAll()
            }
            let bundle = try await store.sharedBundle()
            #expect(bundle.sequence == 8 && bundle.authorities.count == 8, "\(bundle)")
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func aFailedPublishLeavesTheBundleAsItWas(_ kind: StoreBackendKind) async throws {
        let armed = FaultSwitch()
        let faults = armed.faults(at: .beforeCommit)
        try await F.withStore(kind, faults: faults) { store in
            let first = try await store.publishBundleAuthorities(serverID: "a", [Self.authority("a", .x509, "root-1")], at: F.now)
            armed.isOn = true
            await Self.expectError(.injectedFault, "publish with a fault") {
                _ = try await store.publishBundleAuthorities(serverID: "a", [Self.authority("a", .x509, "root-2")], at: F.now)
            }
            armed.isOn = false
            #expect(try await store.sharedBundle() == first)
        }
    }
}
