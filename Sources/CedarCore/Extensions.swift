/// A Cedar `decimal`: a 64-bit integer scaled by 10^4 (equality and order are numeric).
public struct CedarDecimal: Sendable, Hashable, Comparable {
    public let scaled: Int64
    public static func < (a: CedarDecimal, b: CedarDecimal) -> Bool { a.scaled < b.scaled }

    /// Parses Cedar's decimal syntax: `-?digits.digits` with 1 to 4 fractional digits.
    public static func parse(_ text: String) -> Result<CedarDecimal, EvaluationError> {
        func failure(_ message: String) -> Result<CedarDecimal, EvaluationError> {
            .failure(EvaluationError(.extensionError, "error while evaluating `decimal` extension function: \(message)"))
        }
        // The shape first (Rust's `\d` also admits non-ASCII digits, which then overflow).
        let scalars = Array(text.unicodeScalars)
        guard let dot = scalars.firstIndex(of: ".") else { return failure("`\(text)` is not a well-formed decimal value") }
        let integral = scalars[..<dot], fraction = scalars[(dot + 1)...]
        let digitsStart = integral.first == "-" ? integral.index(after: integral.startIndex) : integral.startIndex
        let isDigit = { (s: Unicode.Scalar) in s.properties.numericType == .decimal }
        guard digitsStart < integral.endIndex, integral[digitsStart...].allSatisfy(isDigit),
              !fraction.isEmpty, fraction.allSatisfy(isDigit) else {
            return failure("`\(text)` is not a well-formed decimal value")
        }
        let integralText = String(String.UnicodeScalarView(integral))
        let fractionText = String(String.UnicodeScalarView(fraction))
        guard let l = Int64(integralText) else { return failure("overflow when converting to decimal") }
        let (lScaled, o1) = l.multipliedReportingOverflow(by: 10_000)
        guard !o1 else { return failure("overflow when converting to decimal") }
        guard fractionText.utf8.count <= 4 else { return failure("too many digits after the decimal in `\(text)`") }
        guard let r = Int64(fractionText) else { return failure("overflow when converting to decimal") }
        var rScaled = r
        for _ in 0..<(4 - fractionText.utf8.count) { rScaled *= 10 }
        let (value, o2) = integralText.hasPrefix("-") ? lScaled.subtractingReportingOverflow(rScaled) : lScaled.addingReportingOverflow(rScaled)
        guard !o2 else { return failure("overflow when converting to decimal") }
        return .success(CedarDecimal(scaled: value))
    }
}

/// A Cedar `ipaddr`: an IPv4 or IPv6 address with a prefix length (host bits kept, so
/// `10.0.0.1/24` and `10.0.0.0/24` differ).
public struct CedarIPAddr: Sendable, Hashable {
    public let isV4: Bool
    /// The address; IPv4 in the low 32 bits.
    public let address: UInt128
    public let prefix: UInt8

    var width: UInt8 { isV4 ? 32 : 128 }
    var maximum: UInt128 { isV4 ? UInt128(UInt32.max) : UInt128.max }

    func netmask(_ prefix: UInt8) -> UInt128 {
        prefix == 0 ? 0 : (maximum << UInt128(width - prefix)) & maximum
    }
    func hostmask(_ prefix: UInt8) -> UInt128 {
        prefix == width ? 0 : maximum >> UInt128(prefix)
    }

    public var isLoopback: Bool {
        isV4 ? (address >> 24 == 127 && prefix >= 8) : (address == 1 && prefix >= 128)
    }
    public var isMulticast: Bool {
        isV4 ? ((224...239).contains(address >> 24) && prefix >= 4) : (address >> 120 == 0xFF && prefix >= 8)
    }
    /// Whether this address range lies within `range` (false across families).
    public func isInRange(_ range: CedarIPAddr) -> Bool {
        guard isV4 == range.isV4 else { return false }
        let selfNet = address & netmask(prefix), otherNet = range.address & range.netmask(range.prefix)
        let selfBroadcast = address | hostmask(prefix), otherBroadcast = range.address | range.hostmask(range.prefix)
        return otherNet <= selfNet && selfBroadcast <= otherBroadcast
    }

    /// Parses Cedar's `ip()` syntax: an IPv4 or IPv6 address (Rust's strict grammar: no leading
    /// zeros in IPv4 octets, no zone, no embedded IPv4), optionally `/prefix`.
    public static func parse(_ text: String) -> Result<CedarIPAddr, EvaluationError> {
        func failure(_ message: String) -> Result<CedarIPAddr, EvaluationError> {
            .failure(EvaluationError(.extensionError, "error while evaluating `ipaddr` extension function: \(message)"))
        }
        guard text.utf8.count <= 43 else { return failure("error parsing IP address from string `\(text)`: string length is too large") }
        if text.utf8.filter({ $0 == UInt8(ascii: ":") }).count >= 2 && text.utf8.filter({ $0 == UInt8(ascii: ".") }).count >= 2 {
            return failure("error parsing IP address from string: We do not accept IPv4 embedded in IPv6 (e.g., ::ffff:127.0.0.1). Found: `\(text)`")
        }
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let addressText = String(parts[0])
        let parsed: (Bool, UInt128)? = parseV4(addressText).map { (true, UInt128($0)) } ?? parseV6(addressText).map { (false, $0) }
        guard let (v4, address) = parsed else {
            return parts.count == 2 ? failure("error parsing IP address from the string `\(addressText)`: invalid IP address syntax")
                                    : failure("invalid IP address: \(text)")
        }
        guard parts.count == 2 else { return .success(CedarIPAddr(isV4: v4, address: address, prefix: v4 ? 32 : 128)) }
        let prefixText = String(parts[1])
        let limit: UInt8 = v4 ? 32 : 128
        guard prefixText.utf8.count <= (v4 ? 2 : 3) else { return failure("error parsing prefix: string length \(prefixText.utf8.count) is too large") }
        guard prefixText.utf8.allSatisfy({ (48...57).contains($0) }) else { return failure("error parsing prefix `\(prefixText)`: encountered non-digit") }
        guard !(prefixText.hasPrefix("0") && prefixText != "0") else { return failure("error parsing prefix `\(prefixText)`: leading zero(s)") }
        guard let prefix = UInt8(prefixText) else {
            return failure("error parsing prefix from the string `\(prefixText)`: " + (prefixText.isEmpty ? "cannot parse integer from empty string" : "number too large to fit in target type"))
        }
        guard prefix <= limit else { return failure("error parsing prefix: \(prefix) is larger than the limit \(limit)") }
        return .success(CedarIPAddr(isV4: v4, address: address, prefix: prefix))
    }

    static func parseV4(_ text: String) -> UInt32? {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var value: UInt32 = 0
        for octet in octets {
            guard (1...3).contains(octet.utf8.count), octet.utf8.allSatisfy({ (48...57).contains($0) }),
                  !(octet.utf8.count > 1 && octet.hasPrefix("0")), let n = UInt32(octet), n <= 255 else { return nil }
            value = value << 8 | n
        }
        return value
    }

    static func parseV6(_ text: String) -> UInt128? {
        guard !text.isEmpty else { return nil }
        func groups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(group.utf8.count), group.utf8.allSatisfy({ (48...57).contains($0) || (65...70).contains($0) || (97...102).contains($0) }),
                      let n = UInt16(group, radix: 16) else { return nil }
                out.append(n)
            }
            return out
        }
        var words: [UInt16]
        let utf8 = Array(text.utf8)
        var doubleColon: Int? = nil
        for i in 0..<max(0, utf8.count - 1) where utf8[i] == UInt8(ascii: ":") && utf8[i + 1] == UInt8(ascii: ":") {
            doubleColon = i
            break
        }
        if let at = doubleColon {
            let head = Substring(String(decoding: utf8[..<at], as: UTF8.self)), tail = Substring(String(decoding: utf8[(at + 2)...], as: UTF8.self))
            guard !Array(tail.utf8).windows2HasDoubleColon,
                  let h = groups(head), let t = groups(tail), h.count + t.count <= 7 else { return nil }
            words = h + Array(repeating: 0, count: 8 - h.count - t.count) + t
        } else {
            guard let all = groups(text[...]), all.count == 8 else { return nil }
            words = all
        }
        return words.reduce(UInt128(0)) { $0 << 16 | UInt128($1) }
    }
}

/// A Cedar `datetime`: milliseconds since the Unix epoch (no leap seconds).
public struct CedarDatetime: Sendable, Hashable, Comparable {
    public let millis: Int64
    public static func < (a: CedarDatetime, b: CedarDatetime) -> Bool { a.millis < b.millis }

    static let day: Int64 = 86_400_000

    /// Days from 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ y: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y - 1 : y
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func daysInMonth(_ y: Int64, _ m: Int64) -> Int64 {
        switch m {
        case 2: return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Parses `YYYY-MM-DD`, optionally `Thh:mm:ss` then `Z` or `±hhmm`, optionally `.SSS` before it.
    public static func parse(_ text: String) -> Result<CedarDatetime, EvaluationError> {
        func failure(_ message: String) -> Result<CedarDatetime, EvaluationError> {
            .failure(EvaluationError(.extensionError, "error while evaluating `datetime` extension function: \(message)"))
        }
        let b = Array(text.utf8)
        func digits(_ at: Int, _ count: Int) -> Int64? {
            guard at + count <= b.count else { return nil }
            var v: Int64 = 0
            for i in at..<at + count {
                guard (48...57).contains(b[i]) else { return nil }
                v = v * 10 + Int64(b[i] - 48)
            }
            return v
        }
        guard let year = digits(0, 4), b.count >= 10, b[4] == UInt8(ascii: "-"), let month = digits(5, 2), b[7] == UInt8(ascii: "-"), let dayOfMonth = digits(8, 2) else {
            return failure("invalid date pattern")
        }
        let dateText = String(decoding: b[0..<10], as: UTF8.self)
        var h: Int64 = 0, mi: Int64 = 0, s: Int64 = 0, ms: Int64 = 0, offset: Int64 = 0
        var offsetHours: Int64 = 0, offsetMinutes: Int64 = 0
        if b.count > 10 {
            guard b.count >= 19, b[10] == UInt8(ascii: "T"), let hh = digits(11, 2), b[13] == UInt8(ascii: ":"), let mm = digits(14, 2),
                  b[16] == UInt8(ascii: ":"), let ss = digits(17, 2) else {
                return failure("invalid hour/minute/second pattern")
            }
            (h, mi, s) = (hh, mm, ss)
            var i = 19
            if i < b.count, b[i] == UInt8(ascii: ".") {
                guard let milli = digits(i + 1, 3) else { return failure("invalid millisecond and/or offset pattern") }
                ms = milli
                i += 4
            }
            if i < b.count, b[i] == UInt8(ascii: "Z"), i + 1 == b.count {
                offset = 0
            } else if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-"), i + 5 == b.count, let oh = digits(i + 1, 2), let om = digits(i + 3, 2) {
                offsetHours = oh; offsetMinutes = om
                offset = (b[i] == UInt8(ascii: "+") ? 1 : -1) * (oh * 3_600_000 + om * 60_000)
            } else {
                return failure("invalid millisecond and/or offset pattern")
            }
        }
        guard (1...12).contains(month), dayOfMonth >= 1, dayOfMonth <= daysInMonth(year, month) else { return failure("invalid date: \(dateText)") }
        guard h < 24, mi < 60, s < 60 else {
            return failure("invalid hour/minute/second: \(String(decoding: b[11..<19], as: UTF8.self))")
        }
        guard offsetHours < 24, offsetMinutes < 60 else { return failure("invalid offset range: \(offsetHours)\(offsetMinutes)") }
        let days = daysFromCivil(year, month, dayOfMonth)
        return .success(CedarDatetime(millis: days * day + h * 3_600_000 + mi * 60_000 + s * 1000 + ms - offset))
    }
}

/// A Cedar `duration`: milliseconds, possibly negative.
public struct CedarDuration: Sendable, Hashable, Comparable {
    public let millis: Int64
    public static func < (a: CedarDuration, b: CedarDuration) -> Bool { a.millis < b.millis }

    /// Parses `-?(Nd)?(Nh)?(Nm)?(Ns)?(Nms)?` with at least one unit.
    public static func parse(_ text: String) -> Result<CedarDuration, EvaluationError> {
        func failure(_ message: String) -> Result<CedarDuration, EvaluationError> {
            .failure(EvaluationError(.extensionError, "error while evaluating `duration` extension function: \(message)"))
        }
        var b = Array(text.utf8)[...]
        let negative = b.first == UInt8(ascii: "-")
        if negative { b = b.dropFirst() }
        guard !b.isEmpty else { return failure("invalid duration pattern") }
        // Units in order; each at most once.
        let units: [(String, Int64)] = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)]
        var amounts: [Int: UInt64] = [:]
        var nextUnit = 0
        var anyOverflow = false
        while !b.isEmpty {
            var n: UInt64 = 0
            var count = 0
            var overflow = false
            while let c = b.first, (48...57).contains(c) {
                let (m, o1) = n.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(UInt64(c - 48))
                overflow = overflow || o1 || o2
                n = a
                count += 1
                b = b.dropFirst()
            }
            guard count > 0 else { return failure("invalid duration pattern") }
            var unit = ""
            while let c = b.first, (97...122).contains(c) { unit.unicodeScalars.append(Unicode.Scalar(c)); b = b.dropFirst() }
            guard let index = units.firstIndex(where: { $0.0 == unit }), index >= nextUnit else { return failure("invalid duration pattern") }
            anyOverflow = anyOverflow || overflow
            amounts[index] = n
            nextUnit = index + 1
        }
        // Numbers too large for 64 bits are reported only once the whole pattern is known good.
        if anyOverflow { return failure("Duration overflows internal representation") }
        // ms first, then s, m, h, d, each checked (as Cedar does).
        var total: Int64 = 0
        for index in stride(from: 4, through: 0, by: -1) {
            guard let n = amounts[index] else { continue }
            guard let signed = Int64(exactly: n) else { return failure("Duration overflows internal representation") }
            let (scaled, o1) = signed.multipliedReportingOverflow(by: units[index].1)
            guard !o1 else { return failure("Duration overflows internal representation") }
            let (sum, o2) = negative ? total.subtractingReportingOverflow(scaled) : total.addingReportingOverflow(scaled)
            guard !o2 else { return failure("Duration overflows internal representation") }
            total = sum
        }
        return .success(CedarDuration(millis: total))
    }
}

/// Cedar's extension functions and methods (the defaults: decimal, ipaddr, datetime).
public enum Extensions {
    /// Function-style extension functions (constructors) and their argument counts.
    public static let functions: [String: Int] = ["decimal": 1, "ip": 1, "datetime": 1, "duration": 1]
    /// Method-style extension functions and their argument counts including the receiver.
    public static let methods: [String: Int] = [
        "lessThan": 2, "lessThanOrEqual": 2, "greaterThan": 2, "greaterThanOrEqual": 2,
        "isIpv4": 1, "isIpv6": 1, "isLoopback": 1, "isMulticast": 1, "isInRange": 2,
        "offset": 2, "durationSince": 2, "toDate": 1, "toTime": 1,
        "toMilliseconds": 1, "toSeconds": 1, "toMinutes": 1, "toHours": 1, "toDays": 1,
    ]

    static func arity(_ name: String, _ expected: Int, _ got: Int) throws(EvaluationError) {
        guard expected == got else {
            throw EvaluationError(.extensionError, "wrong number of arguments provided to extension function `\(name)`: expected \(expected), got \(got)")
        }
    }

    static func string(_ value: Value) throws(EvaluationError) -> String {
        guard case .string(let text) = value else { throw .type(expected: "string", got: value) }
        return text.text
    }

    /// Calls function `name` (a constructor) on already evaluated arguments.
    public static func call(_ name: Name, _ arguments: [Value]) throws(EvaluationError) -> Value {
        guard let expected = functions[name.qualified] else {
            throw EvaluationError(.extensionError, "extension function `\(name)` does not exist")
        }
        try arity(name.qualified, expected, arguments.count)
        let text = try string(arguments[0])
        switch name.qualified {
        case "decimal": return .decimal(try CedarDecimal.parse(text).get())
        case "ip": return .ipaddr(try CedarIPAddr.parse(text).get())
        case "datetime": return .datetime(try CedarDatetime.parse(text).get())
        default: return .duration(try CedarDuration.parse(text).get())
        }
    }

    static func decimal(_ value: Value) throws(EvaluationError) -> CedarDecimal {
        guard case .decimal(let d) = value else { throw .type(expected: "decimal", got: value) }
        return d
    }
    static func ipaddr(_ value: Value) throws(EvaluationError) -> CedarIPAddr {
        guard case .ipaddr(let ip) = value else { throw .type(expected: "ipaddr", got: value) }
        return ip
    }
    static func datetime(_ value: Value) throws(EvaluationError) -> CedarDatetime {
        guard case .datetime(let dt) = value else { throw .type(expected: "datetime", got: value) }
        return dt
    }
    static func duration(_ value: Value) throws(EvaluationError) -> CedarDuration {
        guard case .duration(let d) = value else { throw .type(expected: "duration", got: value) }
        return d
    }

    /// Calls method `name` on `receiver` with already evaluated arguments.
    public static func method(_ name: String, _ receiver: Value, _ arguments: [Value]) throws(EvaluationError) -> Value {
        guard let expected = methods[name] else {
            throw EvaluationError(.extensionError, "extension function `\(name)` does not exist")
        }
        try arity(name, expected, arguments.count + 1)
        switch name {
        case "lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual":
            let a = try decimal(receiver), b = try decimal(arguments[0])
            switch name {
            case "lessThan": return .bool(a < b)
            case "lessThanOrEqual": return .bool(a <= b)
            case "greaterThan": return .bool(a > b)
            default: return .bool(a >= b)
            }
        case "isIpv4": return .bool(try ipaddr(receiver).isV4)
        case "isIpv6": return .bool(!(try ipaddr(receiver).isV4))
        case "isLoopback": return .bool(try ipaddr(receiver).isLoopback)
        case "isMulticast": return .bool(try ipaddr(receiver).isMulticast)
        case "isInRange":
            let child = try ipaddr(receiver), range = try ipaddr(arguments[0])
            return .bool(child.isInRange(range))
        case "offset":
            let dt = try datetime(receiver), d = try duration(arguments[0])
            let (sum, overflow) = dt.millis.addingReportingOverflow(d.millis)
            guard !overflow else { throw EvaluationError(.extensionError, "error while evaluating `offset` extension function: overflows when adding an offset") }
            return .datetime(CedarDatetime(millis: sum))
        case "durationSince":
            let a = try datetime(receiver), b = try datetime(arguments[0])
            let (difference, overflow) = a.millis.subtractingReportingOverflow(b.millis)
            guard !overflow else { throw EvaluationError(.extensionError, "error while evaluating `durationSince` extension function: overflows when computing the duration") }
            return .duration(CedarDuration(millis: difference))
        case "toDate":
            let dt = try datetime(receiver)
            let remainder = euclideanRemainder(dt.millis, CedarDatetime.day)
            let (date, overflow) = dt.millis.subtractingReportingOverflow(remainder)
            guard !overflow else { throw EvaluationError(.extensionError, "error while evaluating `toDate` extension function: overflows when computing the date") }
            return .datetime(CedarDatetime(millis: date))
        case "toTime":
            return .duration(CedarDuration(millis: euclideanRemainder(try datetime(receiver).millis, CedarDatetime.day)))
        case "toMilliseconds": return .long(try duration(receiver).millis)
        case "toSeconds": return .long(try duration(receiver).millis / 1000)
        case "toMinutes": return .long(try duration(receiver).millis / 1000 / 60)
        case "toHours": return .long(try duration(receiver).millis / 1000 / 60 / 60)
        default: return .long(try duration(receiver).millis / 1000 / 60 / 60 / 24)
        }
    }

    static func euclideanRemainder(_ a: Int64, _ b: Int64) -> Int64 {
        let r = a % b
        return r < 0 ? r + b : r
    }
}

extension Array where Element == UInt8 {
    /// Whether two consecutive bytes are both `:`.
    var windows2HasDoubleColon: Bool {
        guard count >= 2 else { return false }
        for i in 0..<(count - 1) where self[i] == UInt8(ascii: ":") && self[i + 1] == UInt8(ascii: ":") { return true }
        return false
    }
}
