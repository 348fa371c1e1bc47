/// Why a Workload API call failed: the agent's gRPC status (`permission_denied` when the
/// caller has no identity, `unavailable` when no agent listens, …) or an answer that breaks the
/// SPIFFE specs.
public struct WorkloadAPIError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case invalidEndpoint = "invalid_endpoint"
        case invalidArgument = "invalid_argument"
        case permissionDenied = "permission_denied"
        case unauthenticated
        case unavailable
        case unimplemented
        case deadlineExceeded = "deadline_exceeded"
        /// The agent answered something that is not a valid SPIFFE credential or bundle.
        case malformedResponse = "malformed_response"
        case other
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
