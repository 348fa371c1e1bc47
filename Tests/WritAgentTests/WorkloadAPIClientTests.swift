import Crypto
import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import SPIFFEJWT
import SPIFFEWorkloadAPI
import Testing
import WritCA
import WritModel
import WritTestSupport
import Synchronization
@testable import WritAgent
#if canImport(Glibc)
import Glibc
#endif

/// The Swift SDK's Workload API client against the agent's endpoint on a real socket (the
/// endpoint itself is proven with py-spiffe in ``WorkloadAPITests``): exact bytes, key and
/// chain belonging together, bundles by trust domain, errors as codes.
@Suite(.serialized) struct WorkloadAPIClientTests {
    typealias Endpoint = WorkloadAPITests.Endpoint

    @Test func endpointsParseAsTheSpecAllows() throws {
        #expect(try WorkloadAPIClient(endpoint: "unix:///run/agent.sock").socketPath == "/run/agent.sock")
        #expect(try WorkloadAPIClient(endpoint: "unix:/run/agent.sock").socketPath == "/run/agent.sock")
        #expect(try WorkloadAPIClient(endpoint: "/run/agent.sock").socketPath == "/run/agent.sock")
        for bad in ["tcp://127.0.0.1:8081", "unix://host/run/agent.sock", "agent.sock", "unix:agent.sock", ""] {
            #expect(throws: WorkloadAPIError.self, "\(bad)") { _ = try WorkloadAPIClient(endpoint: bad) }
        }
        #expect(try WorkloadAPIClient.fromEnvironment(["SPIFFE_ENDPOINT_SOCKET": "unix:///tmp/a.sock"]).socketPath == "/tmp/a.sock")
        do {
            _ = try WorkloadAPIClient.fromEnvironment([:])
            Issue.record("no SPIFFE_ENDPOINT_SOCKET accepted")
        } catch {
            #expect(error.code == .invalidEndpoint && error.message.contains("SPIFFE_ENDPOINT_SOCKET"))
        }
    }

    @Test func fetchesAndValidatesWhatTheAgentHolds() async throws {
        let endpoint = try await Endpoint.start()
        let client = try WorkloadAPIClient(endpoint: "unix://" + endpoint.socket)
        await #expect(throws: WorkloadAPIError.self) { _ = try await client.fetchX509Context() }
        do { _ = try await client.fetchX509Context() } catch {
            #expect(error.code == .permissionDenied && error.message == "no identity issued", "\(error)")
        }

        let partnerDomain = try TrustDomain(parsing: "partner.org")
        let partnerCA = try await CertificateAuthority(trustDomain: partnerDomain, keyManager: MemoryKeyManager(), store: MemoryCAStateStore(), now: { Date() })
        await endpoint.cache.setBundles(await endpoint.ca.bundle(), federated: [partnerDomain: await partnerCA.bundle()])
        var first = try await endpoint.identity("/svc/a", selectors: ["unix:uid:\(geteuid())"], hint: "a", createdAt: Date(timeIntervalSince1970: 1))
        first.entry.federatesWith = [partnerDomain]
        let second = try await endpoint.identity("/svc/b", selectors: ["unix:uid:\(geteuid())"], createdAt: Date(timeIntervalSince1970: 2))
        await endpoint.cache.setIdentities([second, first])

        let context = try await client.fetchX509Context()
        #expect(context.svids.map(\.id.uri) == ["spiffe://example.org/svc/a", "spiffe://example.org/svc/b"])
        #expect(context.defaultSVID.chainDER == first.chainDER && context.defaultSVID.privateKeyPKCS8 == first.privateKeyPKCS8)
        #expect(context.defaultSVID.hint == "a")
        #expect(Set(context.bundles.keys) == [WorkloadAPITests.trustDomain, partnerDomain])
        #expect(context.bundles[partnerDomain]?.x509Authorities == (await partnerCA.bundle()).x509Authorities)

        let x509Bundles = try await client.fetchX509Bundles()
        #expect(x509Bundles[WorkloadAPITests.trustDomain]?.x509Authorities == (await endpoint.ca.bundle()).x509Authorities)
        #expect(x509Bundles[partnerDomain] != nil)
        let jwtBundles = try await client.fetchJWTBundles()
        #expect(jwtBundles[WorkloadAPITests.trustDomain]?.jwtAuthorities.map(\.keyID).sorted() == (await endpoint.ca.bundle()).jwtAuthorities.map(\.keyID).sorted())

        let subject = try SPIFFEID(parsing: "spiffe://partner.org/caller")
        let token = try await partnerCA.mintJWTSVID(id: subject, audience: ["https://api.example.org"]).token
        #expect(try await client.validateJWTSVID(token, audience: "https://api.example.org") == subject)
        do {
            _ = try await client.validateJWTSVID(token, audience: "https://elsewhere")
            Issue.record("a token for another audience validated")
        } catch {
            #expect(error.code == .invalidArgument, "\(error)")
        }

        // Watching: the current context, then the next one after a change.
        let seen = Counter()
        let third = try await endpoint.identity("/svc/c", selectors: ["unix:uid:\(geteuid())"], createdAt: Date(timeIntervalSince1970: 3))
        let cache = endpoint.cache
        let all = [first, second, third]
        try await client.watchX509Contexts { context in
            let count = seen.increment()
            if count == 1 {
                #expect(context.svids.count == 2)
                await cache.setIdentities(all)
                return true
            }
            #expect(context.svids.map(\.id.uri).last == "spiffe://example.org/svc/c")
            return false
        }
        #expect(seen.value == 2)
        await endpoint.stop()
        do { _ = try await client.fetchX509Context() } catch {
            #expect(error.code == .unavailable, "no agent listens: \(error)")
        }
    }

    /// The SDK's JWT source: bundles followed (a JWT key prepared at the CA reaches it), tokens
    /// fetched once per audience set while less than half their life has passed, and local
    /// validation against the followed bundles.
    @Test func theJWTSourceFollowsBundlesAndReusesTokens() async throws {
        let ca = try await CertificateAuthority(trustDomain: WorkloadAPITests.trustDomain, keyManager: MemoryKeyManager(), store: MemoryCAStateStore(), now: { Date() })
        let minter = CountingJWTMinter(ca: ca)
        let endpoint = try await Endpoint.start(ca: ca, jwtMinter: minter)
        await endpoint.cache.setIdentities([try await endpoint.identity("/svc/jwt", selectors: ["unix:uid:\(geteuid())"])])
        let source = try await JWTSource.start(client: try WorkloadAPIClient(endpoint: "unix://" + endpoint.socket))
        defer { source.close() }
        #expect(source.bundles?[WorkloadAPITests.trustDomain] != nil)

        let first = try await source.jwtSVID(audience: ["https://api.example.org"])
        let again = try await source.jwtSVID(audience: ["https://api.example.org"])
        #expect(first.id.uri == "spiffe://example.org/svc/jwt" && first.token == again.token)
        #expect(minter.calls == 1, "a token less than half-way through its life is reused")
        _ = try await source.jwtSVID(audience: ["https://other.example.org"])
        #expect(minter.calls == 2, "another audience set is another token")

        switch await source.validate(first.token, audience: "https://api.example.org") {
        case .valid(let svid): #expect(svid.claims.subject.uri == "spiffe://example.org/svc/jwt")
        case .invalid(let error): Issue.record("a fresh token must validate: \(error)")
        }
        if case .valid = await source.validate(first.token, audience: "https://nobody.example.org") { Issue.record("a wrong audience must not validate") }

        // A prepared JWT key is published in the bundle; the source follows.
        let before = source.generation
        let keys = source.bundles?[WorkloadAPITests.trustDomain]?.jwtAuthorities.count ?? 0
        try await ca.prepare(.jwt)
        await endpoint.cache.setBundles(await ca.bundle(), federated: [:])
        var followed = false
        for _ in 0..<300 where !followed {
            followed = source.generation > before && (source.bundles?[WorkloadAPITests.trustDomain]?.jwtAuthorities.count ?? 0) > keys
            if !followed { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(followed, "the JWT source did not follow the new key")
        await endpoint.stop()
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() -> Int { lock.withLock { count += 1; return count } }
    var value: Int { lock.withLock { count } }
}

/// Mints JWT-SVIDs with a real CA and counts the calls (the agent's server does this in a
/// deployment; here the thing under test is the SDK's caching).
final class CountingJWTMinter: JWTSVIDMinting, Sendable {
    let ca: CertificateAuthority
    private let count = Mutex(0)
    init(ca: CertificateAuthority) { self.ca = ca }
    var calls: Int { count.withLock { $0 } }

    func mintJWTSVID(entry: RegistrationEntry, audience: [String]) async throws -> (token: String, expiresAt: Date) {
        count.withLock { $0 += 1 }
        let svid = try await ca.mintJWTSVID(id: entry.spiffeID, audience: audience, ttl: .seconds(300))
        return (svid.token, Date(timeIntervalSince1970: TimeInterval(svid.claims.expiresAt)))
    }
}
