import Foundation

/// Parses untrusted JSON into Foundation objects after a nesting-depth pre-scan, so hostile
/// nesting is an error rather than a stack overflow.
enum JSONDocument {
    /// The deepest nesting of arrays and objects accepted.
    static let maximumDepth = 64

    static func parse(_ bytes: [UInt8], what: String) throws(TrustBundleError) -> Any {
        var depth = 0, inString = false, escaped = false
        for byte in bytes {
            if inString {
                if escaped { escaped = false }
                else if byte == UInt8(ascii: "\\") { escaped = true }
                else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > maximumDepth {
                    throw TrustBundleError(.malformedJSON, "\(what) nests deeper than \(maximumDepth) levels")
                }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        do {
            return try JSONSerialization.jsonObject(with: Data(bytes), options: [])
        } catch {
            throw TrustBundleError(.malformedJSON, "\(what) is not valid JSON")
        }
    }

    /// Whether a parsed JSON number was `true`/`false` rather than a number.
    static func isBoolean(_ number: NSNumber) -> Bool {
        String(cString: number.objCType) == "c" || number === (true as NSNumber) || number === (false as NSNumber)
    }

    static func serialize(_ object: Any) -> [UInt8] {
        // Only dictionaries/arrays/strings/numbers built by this module reach here.
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return [UInt8](data)
    }
}
