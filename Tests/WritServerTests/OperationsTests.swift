import Foundation
import Testing
import WritTestSupport

/// The HTTP listener: `/healthz`, `/readyz`, Prometheus `/metrics`, and `ready.json` naming the
/// bound addresses (port 0 picks a free port).
@Suite(.serialized) struct OperationsTests {
    @Test(arguments: ["sqlite", "postgres"])
    func healthReadinessAndMetrics(_ backend: String) async throws {
        let server = try await ServerHarness.start(backend: backend)
        defer { Task { await server.stop() } }
        let ready = server.ready
        #expect(ready["admin_socket"] as? String == server.socket)
        let address = try #require(ready["http_listen"] as? String)
        #expect(address.hasPrefix("127.0.0.1:") && !address.hasSuffix(":0"), "\(ready)")
        #expect((ready["pid"] as? Int) == Int(server.process.processIdentifier))

        let (alive, aliveBody) = try await server.httpGet("/healthz")
        #expect(alive == 200 && aliveBody.contains("alive"))
        let (readyStatus, readyBody) = try await server.httpGet("/readyz")
        #expect(readyStatus == 200 && readyBody.contains("\"datastore\":\"ok\"") && readyBody.contains("\"ca\":\"ok\"")
                && readyBody.contains("\"change_feed\":\"ok\""), "\(readyBody)")

        _ = try await server.writ(["entry", "create", "--spiffe-id", "spiffe://example.org/m", "--parent-id", EntryCLITests.agent, "--selector", "unix:uid:1"])
        _ = try await server.writ(["entry", "show", "--entry-id", "absent"])
        let (status, metrics) = try await server.httpGet("/metrics")
        #expect(status == 200)
        #expect(metrics.contains("writ_entries 1"), "\(metrics.prefix(2000))")
        #expect(metrics.contains(#"writ_admin_requests_total{method="POST",route="/v1/entries",status="200"} 1"#), "\(metrics.prefix(3000))")
        #expect(metrics.contains(#"writ_admin_requests_total{method="GET",route="/v1/entries/{id}",status="404"} 1"#), "\(metrics.prefix(3000))")
        #expect(metrics.contains(#"writ_datastore_operation_seconds_count{operation="create_entry"} 1"#), "\(metrics.prefix(3000))")
        await server.stop()
    }
}
