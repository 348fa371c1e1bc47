/// RFC 8785, the JSON Canonicalization Scheme (JCS): one byte sequence per JSON value, so that a
/// hash or a signature over it does not depend on who wrote the JSON.
///
/// Members sorted by the UTF-16 code units of their names; no whitespace; strings with only the
/// escapes JSON requires (`\"`, `\\`, `\b \f \n \r \t`, `\u00xx` for other control characters);
/// numbers as ECMAScript writes a double. Integers must lie within ±(2^53 − 1) (I-JSON's exact
/// range) and other numbers must be finite, or the value has no canonical form.
extension JSONValue {
    /// The canonical form as text.
    public func canonical() throws(JSONError) -> String {
        var out = ""
        try writeCanonical(into: &out)
        return out
    }

    /// The canonical form as UTF-8 bytes (what is hashed or signed).
    public func canonicalBytes() throws(JSONError) -> [UInt8] {
        var text = try canonical()
        return text.withUTF8 { Array($0) }
    }

    /// The largest integer a JSON number carries exactly through a double.
    public static let maximumSafeInteger: Int64 = (1 << 53) - 1

    func writeCanonical(into out: inout String) throws(JSONError) {
        switch self {
        case .null, .bool, .string: write(into: &out)
        case .integer(let value):
            guard value.magnitude <= UInt64(Self.maximumSafeInteger) else {
                throw JSONError(message: "the integer \(value) is outside ±(2^53 − 1) and has no exact canonical form", offset: 0)
            }
            out += String(value)
        case .otherNumber(let text):
            guard let value = Double(text) else { throw JSONError(message: "`\(text)` is not a number", offset: 0) }
            out += try Self.canonicalNumber(value)
        case .array(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                try item.writeCanonical(into: &out)
            }
            out += "]"
        case .object(let members):
            // UTF-16 code unit order; for ASCII names (the common case) that is their byte order.
            let sorted: [(key: [UInt16], member: JSONMember)]
            if members.allSatisfy({ $0.key.utf8.allSatisfy { $0 < 0x80 } }) {
                sorted = members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }.map { (key: Array($0.key.utf16), member: $0) }
            } else {
                sorted = members.map { (key: Array($0.key.utf16), member: $0) }.sorted { $0.key.lexicographicallyPrecedes($1.key) }
            }
            out += "{"
            for (index, entry) in sorted.enumerated() {
                if index > 0 {
                    guard sorted[index - 1].key != entry.key else {
                        throw JSONError(message: "duplicate member `\(entry.member.key)` has no canonical form", offset: 0)
                    }
                    out += ","
                }
                Self.writeString(entry.member.key, into: &out)
                out += ":"
                try entry.member.value.writeCanonical(into: &out)
            }
            out += "}"
        }
    }

    /// A double as ECMAScript's `Number.prototype.toString` writes it (ES2015 §7.1.12.1, with
    /// the shortest digits that read back to the same double, the closest of them on a tie):
    /// plain digits from 1e-6 up to 1e21, exponent form (`1e+21`, `1e-7`) outside; `-0` is `0`.
    public static func canonicalNumber(_ value: Double) throws(JSONError) -> String {
        guard value.isFinite else { throw JSONError(message: "\(value) is not a finite number", offset: 0) }
        if value == 0 { return "0" }
        // Swift prints the shortest round-trip digits; only the layout differs from ECMAScript.
        var text = value.magnitude.description
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let integral = String(parts[0]), fraction = parts.count > 1 ? String(parts[1]) : ""
        var digits = Array(integral + fraction)
        // value = 0.d1d2…dk × 10^n
        var n = integral.count + exponent
        while digits.first == "0" { digits.removeFirst(); n -= 1 }
        while digits.last == "0" { digits.removeLast() }
        let k = digits.count
        let s = String(digits)
        let body: String
        if k <= n && n <= 21 {
            body = s + String(repeating: "0", count: n - k)
        } else if 0 < n && n <= 21 {
            body = String(s.prefix(n)) + "." + String(s.dropFirst(n))
        } else if -6 < n && n <= 0 {
            body = "0." + String(repeating: "0", count: -n) + s
        } else {
            let e = n - 1
            let mantissa = k == 1 ? s : String(s.prefix(1)) + "." + String(s.dropFirst())
            body = mantissa + "e" + (e < 0 ? "-" : "+") + String(e.magnitude)
        }
        return (value < 0 ? "-" : "") + body
    }
}
