import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import SPIFFEJWT
import Synchronization

/// JWT-SVIDs and JWT bundles for this workload, kept current: the bundles follow the Workload
/// API's FetchJWTBundles stream (reconnecting with backoff), so a key rotation reaches
/// ``validate(_:audience:)`` without a restart; JWT-SVIDs are fetched on demand and reused per
/// (identity, audience set) until half their life has passed.
public final class JWTSource: Sendable {
    private struct State {
        var bundles: [TrustDomain: TrustBundle]?
        var generation: UInt64 = 0
        var lastError: WorkloadAPIError?
        var tokens: [TokenKey: (svid: WorkloadJWTSVID, refreshAt: Date)] = [:]
    }
    private struct TokenKey: Hashable { let audience: [String]; let spiffeID: String }
    private let state = Mutex(State())
    private let task = Mutex<Task<Void, Never>?>(nil)
    public let client: WorkloadAPIClient

    private init(client: WorkloadAPIClient) {
        self.client = client
    }

    /// Starts following the JWT bundles and waits for the first set (up to `timeout`).
    public static func start(client: WorkloadAPIClient, timeout: Duration = .seconds(30)) async throws(WorkloadAPIError) -> JWTSource {
        let source = JWTSource(client: client)
        source.task.withLock { $0 = Task { await source.follow() } }
        if await waitUntil(timeout: timeout, { source.bundles != nil }) { return source }
        source.close()
        throw source.state.withLock { $0.lastError } ?? WorkloadAPIError(.deadlineExceeded, "no JWT bundles from `\(client.socketPath)` within \(timeout)")
    }

    /// The latest JWT bundles by trust domain (nil only before the first).
    public var bundles: [TrustDomain: TrustBundle]? { state.withLock { $0.bundles } }

    /// Bumped by every new set of bundles.
    public var generation: UInt64 { state.withLock { $0.generation } }

    /// A JWT-SVID for `audience` (the default identity, or `spiffeID`), from the cache while
    /// less than half its life has passed.
    public func jwtSVID(audience: [String], spiffeID: SPIFFEID? = nil, now: Date = Date()) async throws(WorkloadAPIError) -> WorkloadJWTSVID {
        let key = TokenKey(audience: Array(Set(audience)).sorted(), spiffeID: spiffeID?.uri ?? "")
        if let cached = state.withLock({ $0.tokens[key] }), cached.refreshAt > now { return cached.svid }
        let fetched = try await client.fetchJWTSVIDs(audience: audience, spiffeID: spiffeID)
        let svid = fetched[0]
        let refreshAt = Self.halfLife(svid.token) ?? now
        state.withLock { $0.tokens[key] = (svid, refreshAt) }
        return svid
    }

    /// Validates a JWT-SVID locally against the bundle of its subject's trust domain; the
    /// failed rule when it is not valid for `audience`.
    public func validate(_ token: String, audience: String, now: Date = Date()) async -> JWTSVIDValidation {
        guard let payload = UnverifiedJWT.claims(token), let subject = payload["sub"] as? String, let id = try? SPIFFEID(parsing: subject) else {
            return .invalid(JWTSVIDError(.malformed, "the token's payload has no SPIFFE ID subject"))
        }
        guard let bundle = bundles?[id.trustDomain] else {
            return .invalid(JWTSVIDError(.subjectOutsideTrustDomain, "no JWT bundle for the trust domain `\(id.trustDomain)`"))
        }
        return await JWTSVIDValidator(bundle: bundle, leeway: .zero).validate(token, audience: audience, now: now)
    }

    /// Stops following.
    public func close() {
        task.withLock { $0?.cancel() }
    }

    private func follow() async {
        await followStream({ [self] () async throws(WorkloadAPIError) in
            try await client.watchJWTBundles { [self] bundles in
                state.withLock {
                    $0.bundles = bundles
                    $0.generation &+= 1
                }
                return !Task.isCancelled
            }
        }, failed: { [self] error in state.withLock { $0.lastError = error } })
    }

    /// Half-way between `iat` and `exp` of an (unverified) token: when to fetch a new one.
    static func halfLife(_ token: String) -> Date? {
        guard let payload = UnverifiedJWT.claims(token), let exp = (payload["exp"] as? NSNumber)?.doubleValue else { return nil }
        let iat = (payload["iat"] as? NSNumber)?.doubleValue ?? Date().timeIntervalSince1970
        return Date(timeIntervalSince1970: iat + (exp - iat) / 2)
    }
}
