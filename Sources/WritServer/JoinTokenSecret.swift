import Crypto
import Foundation

/// A new join token: a 256-bit random secret (shown once, to the operator), a separate random
/// public id that names the agent, and the SHA-256 of the secret — all the server keeps.
struct JoinTokenSecret {
    let secret: String
    let id: String
    let hash: String

    static func generate() -> JoinTokenSecret {
        var generator = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let id = (0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let secretText = hex(secret)
        return JoinTokenSecret(secret: secretText, id: hex(id), hash: Self.hash(of: secretText))
    }

    /// The stored form of a secret: lowercase hex SHA-256 of its text.
    static func hash(of secret: String) -> String {
        hex(Array(SHA256.hash(data: Data(secret.utf8))))
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}
