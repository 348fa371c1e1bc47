/// Why a datastore operation failed. ``message`` is safe to show a client; ``cause`` keeps the
/// driver's own error for logs.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Hashable {
        /// No such record.
        case notFound = "not_found"
        /// A record with the same identity exists (same entry id, or same SPIFFE ID, parent and
        /// selectors).
        case alreadyExists = "already_exists"
        /// The record changed since the caller read it (a stale revision).
        case conflict
        /// The input is malformed (a page token, a page size).
        case invalidArgument = "invalid_argument"
        /// A join token was already used or has expired.
        case tokenRejected = "token_rejected"
        /// The record refuses the operation (a banned agent).
        case permissionDenied = "permission_denied"
        /// The database's schema is newer than this binary knows.
        case schemaTooNew = "schema_too_new"
        /// The database cannot be reached or answered with an error.
        case unavailable
        /// Stored data does not decode: the database was edited by hand or is corrupt.
        case corrupt
        /// A fault was injected (tests only).
        case injectedFault = "injected_fault"
    }

    public let code: Code
    public let message: String
    /// The underlying error, for logs.
    public let cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(message) (\(String(reflecting: cause)))" }
        return message
    }
}
