import Foundation
import Hummingbird
import NIOCore
import WritAudit
import WritCA
import WritModel
import WritStore

/// The HTTP listener's routes for operators: `/healthz` (the process is alive), `/readyz` (it can
/// serve: the datastore answers, the CA has an active intermediate and JWT key, and the
/// registry cache caught up with the change feed within the last ``RegistryCache/staleAfter``)
/// and Prometheus `/metrics`.
struct OperationsRoutes: Sendable {
    let store: any Datastore
    let metrics: ServerMetrics
    let ca: CertificateAuthority
    let cache: RegistryCache
    let audit: AuditLog

    func register(on router: Router<BasicRequestContext>) {
        router.get("healthz") { _, _ in
            AdminRoutes.json(.ok, ["status": "alive"])
        }
        router.get("readyz") { _, _ in
            var report: [String: String] = [:]
            var ready = true
            do {
                let revision = try await store.currentRevision()
                report["datastore"] = "ok"
                report["revision"] = String(revision)
            } catch {
                ready = false
                report["datastore"] = (error as? StoreError)?.message ?? "\(error)"
            }
            let active = Set(await ca.authorities().filter { $0.status == .active }.map(\.kind))
            let missing = [AuthorityKind.intermediate, .jwt].filter { !active.contains($0) }
            if missing.isEmpty {
                report["ca"] = "ok"
            } else {
                ready = false
                report["ca"] = "no active " + missing.map(\.rawValue).joined(separator: " or ") + " authority"
            }
            let (caughtUp, cacheRevision) = await cache.catchUpStatus()
            report["registry_revision"] = String(cacheRevision)
            if let caughtUp, ContinuousClock.now - caughtUp <= RegistryCache.staleAfter {
                report["change_feed"] = "ok"
            } else {
                ready = false
                report["change_feed"] = caughtUp.map { "last caught up \(ContinuousClock.now - $0) ago" } ?? "never caught up"
            }
            report["status"] = ready ? "ready" : "not_ready"
            return AdminRoutes.json(ready ? .ok : .serviceUnavailable, report)
        }
        router.get("metrics") { _, _ in
            if let count = try? await store.countEntries(EntryFilter()) { metrics.entries.set(to: Double(count)) }
            metrics.audit(await audit.statistics, size: try? await store.auditSize())
            let text = metrics.registry.emitToBuffer()
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
    }
}
