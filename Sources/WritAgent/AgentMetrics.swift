import Foundation
import Prometheus

/// The agent's Prometheus metrics, served on `GET /metrics` of its HTTP listener.
public final class AgentMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()

    public init() {}

    /// Counts a Workload API call by method and outcome (`ok` or the gRPC status name in lower
    /// snake case, such as `permission_denied`).
    public func workloadCall(method: String, outcome: String) {
        registry.makeCounter(descriptor: .init(namespace: "writ_agent", metricName: "workload_api_calls", unitName: "total",
                                               helpText: "Workload API calls by method and outcome."),
                             labels: [("method", method), ("outcome", outcome)]).increment()
    }

    /// Counts X.509-SVIDs handed to workloads (one per SVID in each message sent).
    public func svidsDelivered(_ count: Int) {
        registry.makeCounter(descriptor: .init(namespace: "writ_agent", metricName: "svids_delivered", unitName: "total",
                                               helpText: "X.509-SVIDs handed to workloads (each SVID of each message)."))
            .increment(by: Int64(count))
    }

    /// Counts a caller refused because its process died or changed while it was attested.
    public func attestationRaced() {
        registry.makeCounter(descriptor: .init(namespace: "writ_agent", metricName: "workload_attestation_races", unitName: "total",
                                               helpText: "Callers refused as Unauthenticated: the process exited or was replaced while it was attested."))
            .increment()
    }

    /// Counts X.509-SVIDs minted for entries, by result.
    public func minted(_ count: Int, result: String) {
        registry.makeCounter(descriptor: .init(namespace: "writ_agent", metricName: "svids_minted", unitName: "total",
                                               helpText: "Workload X.509-SVIDs requested from the server, by result."),
                             labels: [("result", result)]).increment(by: Int64(count))
    }

    /// Counts renewals of the agent's own SVID, by result.
    public func agentRenewal(result: String) {
        registry.makeCounter(descriptor: .init(namespace: "writ_agent", metricName: "agent_svid_renewals", unitName: "total",
                                               helpText: "Renewals of the agent's own SVID, by result."),
                             labels: [("result", result)]).increment()
    }

    /// Counts connections to the server, by result.
    public func serverConnection(result: String) {
        registry.makeCounter(descriptor: .init(namespace: "writ_agent", metricName: "server_connections", unitName: "total",
                                               helpText: "Sessions with the server (sync streams), by how they ended."),
                             labels: [("result", result)]).increment()
    }

    /// Entries the agent may serve, and SVIDs it holds.
    public func cacheSize(entries: Int, svids: Int) {
        registry.makeGauge(descriptor: .init(namespace: "writ_agent", metricName: "entries", unitName: "", helpText: "Entries the agent may serve."))
            .set(to: Double(entries))
        registry.makeGauge(descriptor: .init(namespace: "writ_agent", metricName: "svids", unitName: "", helpText: "X.509-SVIDs held for entries."))
            .set(to: Double(svids))
    }

    /// Whether the agent is connected to its server (1) or not (0).
    public func connected(_ connected: Bool) {
        registry.makeGauge(descriptor: .init(namespace: "writ_agent", metricName: "server_connected", unitName: "",
                                             helpText: "1 while the agent's sync stream with its server is open."))
            .set(to: connected ? 1 : 0)
    }
}
