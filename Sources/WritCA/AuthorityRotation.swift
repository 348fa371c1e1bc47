import Foundation

/// The three kinds of rotating authority.
public enum AuthorityKind: String, Sendable, Hashable, Codable, CaseIterable {
    case root, intermediate, jwt
}

/// Where an authority is in its life.
public enum AuthorityStatus: String, Sendable, Hashable, Codable {
    /// Created and published (roots and JWT keys are in the bundle), not yet signing.
    case prepared
    /// Signing new credentials.
    case active
    /// Replaced; published until the last credential it signed has expired.
    case old
    /// Declared compromised: replaced at once, published until its credentials expire or it is revoked.
    case tainted
}

/// One authority as the rotation state machine sees it.
public struct AuthoritySlot: Sendable, Hashable, Codable {
    public var id: String
    public var kind: AuthorityKind
    public var status: AuthorityStatus
    public var notBefore: Date
    public var notAfter: Date
    /// The latest expiry of anything it signed (nil: nothing signed yet).
    public var latestIssuedExpiry: Date?

    public init(id: String, kind: AuthorityKind, status: AuthorityStatus, notBefore: Date, notAfter: Date, latestIssuedExpiry: Date? = nil) {
        self.id = id
        self.kind = kind
        self.status = status
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.latestIssuedExpiry = latestIssuedExpiry
    }

    var lifetime: TimeInterval { notAfter.timeIntervalSince(notBefore) }
    /// When a successor should be prepared: half-way through its life.
    public var prepareAt: Date { notBefore.addingTimeInterval(lifetime / 2) }
    /// When the successor should take over: at five sixths of its life.
    public var activateAt: Date { notBefore.addingTimeInterval(lifetime * 5 / 6) }
    /// After this instant it may leave the bundle: everything it signed has expired (a
    /// credential is still valid at its expiry instant, so removal waits until strictly after).
    public var removableAt: Date { latestIssuedExpiry ?? .distantPast }
}

/// What the CA must do to follow the rotation schedule.
public enum RotationAction: Sendable, Hashable {
    /// Create and publish a successor of this kind.
    case prepare(AuthorityKind)
    /// Make the prepared authority active; the active one becomes old.
    case activate(id: String)
    /// Drop an old or tainted authority (everything it signed has expired).
    case remove(id: String)
}

/// The rotation schedule as a pure state machine: given the authorities and the time, it says
/// what to do. No I/O, no clock of its own — tested with a manual clock.
public struct AuthorityRotation: Sendable {
    public init() {}

    /// The actions due at `now`, in the order they must be applied.
    public func actions(for slots: [AuthoritySlot], now: Date) -> [RotationAction] {
        var actions: [RotationAction] = []
        for kind in AuthorityKind.allCases {
            let mine = slots.filter { $0.kind == kind }
            let active = mine.first { $0.status == .active }
            let prepared = mine.first { $0.status == .prepared }
            switch (active, prepared) {
            case (nil, nil):
                actions.append(.prepare(kind))
            case (nil, let p?):
                actions.append(.activate(id: p.id))
            case (let a?, nil):
                if now >= a.prepareAt { actions.append(.prepare(kind)) }
            case (let a?, let p?):
                if now >= a.activateAt { actions.append(.activate(id: p.id)) }
            }
            for slot in mine where (slot.status == .old || slot.status == .tainted) && now > slot.removableAt {
                actions.append(.remove(id: slot.id))
            }
        }
        return actions
    }
}
