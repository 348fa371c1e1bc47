import GRPCCore

/// The standard gRPC health service (`grpc.health.v1.Health`) for a server that is serving as
/// long as it runs: SERVING for the whole server (`""`) and for each of `services`; an unknown
/// service is NOT_FOUND on Check and SERVICE_UNKNOWN on Watch.
public struct HealthService: Grpc_Health_V1_Health.SimpleServiceProtocol {
    public let services: Set<String>

    public init(services: Set<String>) {
        self.services = services.union([""])
    }

    public func check(request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard services.contains(request.service) else {
            throw RPCError(code: .notFound, message: "unknown service `\(request.service.prefix(128))`")
        }
        var reply = Grpc_Health_V1_HealthCheckResponse()
        reply.status = .serving
        return reply
    }

    public func watch(request: Grpc_Health_V1_HealthCheckRequest, response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>, context: ServerContext) async throws {
        var reply = Grpc_Health_V1_HealthCheckResponse()
        reply.status = services.contains(request.service) ? .serving : .serviceUnknown
        try await response.write(reply)
        while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) }
    }
}
