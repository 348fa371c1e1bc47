import Foundation
import WritCA
import WritModel

/// What the admin API may do to this server's CA: list its authorities and force the rotation
/// steps (`prepare`, `activate`, `taint`, `revoke`). Every change is published to the shared
/// bundle, and the TLS verifier follows, before the call returns; when the active intermediate
/// changed, the server's own SVID is re-issued under the new one at once (``IdentityMaintainer``
/// would otherwise do it on its next pass).
struct AuthorityControl: Sendable {
    let identity: ServerIdentity
    /// The lifetime of the server's own SVID.
    let serverSVIDLifetime: Duration

    /// The authorities, ordered by kind (root, intermediate, jwt) and then by start.
    func list() async -> AdminAPI.AuthorityList {
        let order = Dictionary(uniqueKeysWithValues: AuthorityKind.allCases.enumerated().map { ($1, $0) })
        let slots = await identity.ca.authorities().sorted {
            (order[$0.kind] ?? 0, $0.notBefore, $0.id) < (order[$1.kind] ?? 0, $1.notBefore, $1.id)
        }
        return AdminAPI.AuthorityList(authorities: slots.map {
            AdminAPI.Authority(id: $0.id, kind: $0.kind.rawValue, status: $0.status.rawValue, notBefore: $0.notBefore,
                               notAfter: $0.notAfter, latestIssuedExpiry: $0.latestIssuedExpiry)
        })
    }

    /// Applies the admin API's step (`prepare` or `activate` a kind, `taint` or `revoke` an id).
    func apply(_ step: String, to value: String) async throws -> AdminAPI.AuthorityList {
        switch step {
        case "prepare":
            let kind = try Self.kind(value)
            return try await change { ca throws(CAError) in try await ca.prepare(kind) }
        case "activate":
            let kind = try Self.kind(value)
            return try await change { ca throws(CAError) in try await ca.activate(kind) }
        case "taint": return try await change { ca throws(CAError) in try await ca.taint(id: value) }
        case "revoke": return try await change { ca throws(CAError) in try await ca.revoke(id: value) }
        default: throw AdminAPI.ErrorBody(code: "not_found", message: "no authority step `\(step)`")
        }
    }

    /// Applies one change to the CA, publishes the result and returns the authorities after it.
    func change(_ body: (CertificateAuthority) async throws(CAError) -> Void) async throws -> AdminAPI.AuthorityList {
        let intermediateBefore = await activeIntermediate()
        do { try await body(identity.ca) } catch {
            switch error.code {
            case .noSuchAuthority: throw AdminAPI.ErrorBody(code: "not_found", message: error.message)
            case .invalidRequest: throw AdminAPI.ErrorBody(code: "conflict", message: error.message)
            default: throw AdminAPI.ErrorBody(code: "unavailable", message: "the CA failed: \(error.message)")
            }
        }
        if try await identity.bundle.publish(from: identity.ca) {
            identity.tls.update(bundle: identity.bundle.bundle)
        }
        if await activeIntermediate() != intermediateBefore {
            let svid = try await ServerSVID.issue(ca: identity.ca, id: identity.serverID, lifetime: serverSVIDLifetime)
            try identity.tls.update(chainDER: svid.chainDER, privateKeyPEM: svid.privateKeyPEM)
        }
        return await list()
    }

    private func activeIntermediate() async -> String? {
        await identity.ca.authorities().first { $0.kind == .intermediate && $0.status == .active }?.id
    }

    /// The kind named in a request body.
    static func kind(_ text: String) throws -> AuthorityKind {
        guard let kind = AuthorityKind(rawValue: text) else {
            throw AdminAPI.ErrorBody(code: "invalid_argument", message: "invalid kind `\(text.prefix(32))`: root, intermediate or jwt", field: "kind")
        }
        return kind
    }
}
