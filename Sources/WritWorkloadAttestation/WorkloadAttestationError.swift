/// Why a calling process could not be attested at all. Facts that merely cannot be read (a
/// user name without a passwd entry, an unreadable executable) are left out of the selectors
/// instead; these errors mean there is no process to speak of.
public struct WorkloadAttestationError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The process is gone (or its pid now names another process).
        case processGone = "process_gone"
        /// /proc answered with something this code cannot read.
        case unreadable
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
