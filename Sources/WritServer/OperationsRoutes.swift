import Foundation
import Hummingbird
import NIOCore
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
            let text = metrics.registry.emitToBuffer()
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
    }
}

/// `HOST:PORT` for a TCP listener (`[::1]:8080` for IPv6); port 0 picks a free port.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String) throws(ServerError) {
        let host: Substring, port: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw ServerError("invalid listen address `\(text)`: expected `[host]:port`") }
            port = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw ServerError("invalid listen address `\(text)`: expected `host:port`, e.g. 127.0.0.1:8080") }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let number = Int(port), (0...65535).contains(number) else {
            throw ServerError("invalid listen address `\(text)`: expected `host:port` with a port from 0 to 65535")
        }
        self.host = String(host)
        self.port = number
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Collects the bound addresses of every listener and writes `ready.json` once all are up.
actor Readiness {
    private let expected: Set<String>
    private var bound: [String: String] = [:]
    private let write: @Sendable ([String: String]) throws -> Void

    init(expected: Set<String>, write: @escaping @Sendable ([String: String]) throws -> Void) {
        self.expected = expected
        self.write = write
    }

    func listening(_ name: String, at address: String) throws {
        bound[name] = address
        if Set(bound.keys) == expected { try write(bound) }
    }
}
