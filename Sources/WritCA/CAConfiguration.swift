/// The CA's lifetimes and key types, validated so that rotation always works: each authority
/// lives at least six times as long as anything it signs, because a successor is prepared at
/// 1/2 and activated at 5/6 of its life and the last credential it signed must expire before
/// it does.
public struct CAConfiguration: Sendable, Hashable, Codable {
    /// Root CA lifetime (default 1 year).
    public var rootLifetime: Duration
    /// Intermediate CA lifetime (default 24 h).
    public var intermediateLifetime: Duration
    /// JWT signing key lifetime (default 24 h).
    public var jwtKeyLifetime: Duration
    /// Agent X.509-SVID lifetime (default 1 h).
    public var agentSVIDLifetime: Duration
    /// Workload X.509-SVID lifetime (default 10 min).
    public var x509SVIDLifetime: Duration
    /// JWT-SVID lifetime (default 5 min).
    public var jwtSVIDLifetime: Duration
    /// Key type of the CAs (default ec-p256).
    public var caKeyType: KeyType
    /// Key type of JWT signing keys (default ec-p256).
    public var jwtKeyType: KeyType
    /// How far leaf notBefore is backdated for clock skew (default 10 s).
    public var backdate: Duration

    /// The ratio every authority lifetime must keep over what it signs.
    public static let rotationRatio: Int64 = 6

    public init(rootLifetime: Duration = .seconds(365 * 86400), intermediateLifetime: Duration = .seconds(86400),
                jwtKeyLifetime: Duration = .seconds(86400), agentSVIDLifetime: Duration = .seconds(3600),
                x509SVIDLifetime: Duration = .seconds(600), jwtSVIDLifetime: Duration = .seconds(300),
                caKeyType: KeyType = .ecP256, jwtKeyType: KeyType = .ecP256, backdate: Duration = .seconds(10)) {
        self.rootLifetime = rootLifetime
        self.intermediateLifetime = intermediateLifetime
        self.jwtKeyLifetime = jwtKeyLifetime
        self.agentSVIDLifetime = agentSVIDLifetime
        self.x509SVIDLifetime = x509SVIDLifetime
        self.jwtSVIDLifetime = jwtSVIDLifetime
        self.caKeyType = caKeyType
        self.jwtKeyType = jwtKeyType
        self.backdate = backdate
    }

    /// The longest SVID lifetime (agent, X.509 or JWT).
    public var longestSVIDLifetime: Duration { max(agentSVIDLifetime, x509SVIDLifetime, jwtSVIDLifetime) }

    /// Refuses lifetimes that would let a credential outlive the authority that signed it.
    public func validate() throws(CAError) {
        for (name, value) in [("root_lifetime", rootLifetime), ("intermediate_lifetime", intermediateLifetime),
                              ("jwt_key_lifetime", jwtKeyLifetime), ("agent_svid_lifetime", agentSVIDLifetime),
                              ("x509_svid_lifetime", x509SVIDLifetime), ("jwt_svid_lifetime", jwtSVIDLifetime)] where value <= .zero {
            throw CAError(.invalidConfiguration, "`\(name)` must be positive, got \(Self.text(value))")
        }
        let floor = longestSVIDLifetime * Int(Self.rotationRatio)
        if intermediateLifetime < floor {
            throw CAError(.invalidConfiguration, "`intermediate_lifetime` \(Self.text(intermediateLifetime)) is shorter than 6× the longest SVID lifetime (\(Self.text(longestSVIDLifetime))): it must be at least \(Self.text(floor))")
        }
        if jwtKeyLifetime < jwtSVIDLifetime * Int(Self.rotationRatio) || jwtKeyLifetime < floor {
            throw CAError(.invalidConfiguration, "`jwt_key_lifetime` \(Self.text(jwtKeyLifetime)) is shorter than 6× the longest SVID lifetime (\(Self.text(longestSVIDLifetime))): it must be at least \(Self.text(floor))")
        }
        if rootLifetime < intermediateLifetime * Int(Self.rotationRatio) {
            throw CAError(.invalidConfiguration, "`root_lifetime` \(Self.text(rootLifetime)) is shorter than 6× `intermediate_lifetime` (\(Self.text(intermediateLifetime)))")
        }
        if backdate < .zero || backdate > .seconds(300) {
            throw CAError(.invalidConfiguration, "`backdate` must be between 0s and 5m")
        }
    }

    static func text(_ d: Duration) -> String {
        let s = d.components.seconds
        if s % 86400 == 0 { return "\(s / 86400)d" }
        if s % 3600 == 0 { return "\(s / 3600)h" }
        if s % 60 == 0 { return "\(s / 60)m" }
        return "\(s)s"
    }
}

extension Duration {
    /// Whole and fractional seconds as a `TimeInterval`.
    var timeInterval: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
