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
        String(decoding: try canonicalBytes(), as: UTF8.self)
    }

    /// The canonical form as UTF-8 bytes (what is hashed or signed).
    public func canonicalBytes() throws(JSONError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        try writeCanonical(into: &out)
        return out
    }

    /// Appends the canonical form's UTF-8 bytes to `out` (for writers that build a larger
    /// canonical document around known members); on a throw `out` may hold a partial value.
    public func appendCanonical(to out: inout [UInt8]) throws(JSONError) {
        try writeCanonical(into: &out)
    }

    /// Appends `string` as a JSON string, escaped as the canonical form escapes it.
    public static func appendString(_ string: String, to out: inout [UInt8]) {
        writeString(string, into: &out)
    }

    /// The largest integer a JSON number carries exactly through a double.
    public static let maximumSafeInteger: Int64 = (1 << 53) - 1

    func writeCanonical(into out: inout [UInt8]) throws(JSONError) {
        switch self {
        case .null, .bool, .string: write(into: &out)
        case .integer(let value):
            guard value.magnitude <= UInt64(Self.maximumSafeInteger) else {
                throw JSONError(message: "the integer \(value) is outside ±(2^53 − 1) and has no exact canonical form", offset: 0)
            }
            out.append(contentsOf: String(value).utf8)
        case .otherNumber(let text):
            guard let value = Double(text) else { throw JSONError(message: "`\(text)` is not a number", offset: 0) }
            out.append(contentsOf: try Self.canonicalNumber(value).utf8)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                try item.writeCanonical(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            // UTF-16 code unit order; for ASCII names (the common case) that is their byte order,
            // and equal names are equal bytes.
            if members.allSatisfy({ $0.key.utf8.allSatisfy { $0 < 0x80 } }) {
                let sorted = members.count < 2 ? members : members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                try Self.writeMembers(sorted, into: &out) { $0.key.utf8.elementsEqual($1.key.utf8) }
            } else {
                let sorted = members.map { (key: Array($0.key.utf16), member: $0) }.sorted { $0.key.lexicographicallyPrecedes($1.key) }
                try Self.writeMembers(sorted.map(\.member), into: &out) { $0.key.utf16.elementsEqual($1.key.utf16) }
            }
        }
    }

    /// `{"name":value,…}` for members already in canonical order; `same` tells two neighbours'
    /// names apart (a repeated name has no canonical form).
    private static func writeMembers(_ sorted: [JSONMember], into out: inout [UInt8],
                                     same: (JSONMember, JSONMember) -> Bool) throws(JSONError) {
        out.append(UInt8(ascii: "{"))
        for index in sorted.indices {
            let member = sorted[index]
            if index > 0 {
                guard !same(sorted[index - 1], member) else {
                    throw JSONError(message: "duplicate member `\(member.key)` has no canonical form", offset: 0)
                }
                out.append(UInt8(ascii: ","))
            }
            writeString(member.key, into: &out)
            out.append(UInt8(ascii: ":"))
            try member.value.writeCanonical(into: &out)
        }
        out.append(UInt8(ascii: "}"))
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
