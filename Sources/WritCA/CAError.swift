/// Why a CA operation failed. Internal causes stay in ``message`` for logs; callers map the
/// ``code`` to what a client is told.
public struct CAError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Hashable {
        /// A configuration value is out of range or inconsistent.
        case invalidConfiguration = "invalid_configuration"
        /// No key with this id.
        case keyNotFound = "key_not_found"
        /// A key with this id exists already.
        case keyExists = "key_exists"
        /// A key file is readable by others or owned by another user.
        case insecureKeyFile = "insecure_key_file"
        /// A key or state file is truncated or corrupt.
        case corruptFile = "corrupt_file"
        /// Reading or writing a file failed.
        case io
        /// Signing with a key failed.
        case signingFailed = "signing_failed"
        /// The request (CSR, SPIFFE ID, TTL) cannot be served.
        case invalidRequest = "invalid_request"
        /// A credential the CA minted failed its own re-check and was not handed out.
        case recheckFailed = "recheck_failed"
        /// No authority in the state this operation needs (e.g. nothing prepared to activate).
        case noSuchAuthority = "no_such_authority"
        /// The upstream CA certificate or key is unusable.
        case invalidUpstream = "invalid_upstream"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
