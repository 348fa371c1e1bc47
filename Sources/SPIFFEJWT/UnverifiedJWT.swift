import Foundation
import SPIFFEBundle

/// A compact JWS read before any check: only to decide which bundle to check it with (its
/// subject's trust domain) or when to replace a token of one's own. Nothing here is trusted.
public enum UnverifiedJWT {
    /// The payload bytes (base64url-decoded), or nil when the token is not three parts.
    public static func payload(_ token: String) -> Data? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let bytes = Base64URL.decode(parts[1]) else { return nil }
        return Data(bytes)
    }

    /// The payload as a JSON object.
    public static func claims(_ token: String) -> [String: Any]? {
        payload(token).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
    }
}
