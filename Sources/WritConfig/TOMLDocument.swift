/// A TOML document as Writ's configuration files use it: tables (`[server]`), keys with string,
/// integer, boolean and array values, and comments. Everything else TOML allows (inline tables,
/// dotted keys, dates, floats, multi-line strings) is refused with its line and column, so a
/// config never means something other than what Writ reads.
///
/// (TOMLKit, the usual Swift TOML library, cannot be resolved on Writ's build machines: it
/// depends on a package the mirror does not carry.)
public struct TOMLDocument: Sendable, Hashable {
    /// A value and the line it was set on.
    public struct Entry: Sendable, Hashable {
        public let value: TOMLValue
        public let line: Int
    }

    /// `section → key → entry`; keys before any `[section]` are under "".
    public private(set) var tables: [String: [String: Entry]] = [:]

    /// Parses `text`; the error names the line, the column and what was expected.
    public init(parsing text: String) throws(ConfigError) {
        var section = ""
        var seenSections: Set<String> = [""]
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { Array($0.utf8) }
        var index = 0
        while index < lines.count {
            let lineNumber = index + 1
            var cursor = Cursor(bytes: lines[index], line: lineNumber)
            cursor.skipSpaces()
            if cursor.atEnd || cursor.peek == UInt8(ascii: "#") { index += 1; continue }
            if cursor.peek == UInt8(ascii: "[") {
                cursor.advance()
                cursor.skipSpaces()
                let name = try cursor.bareKey()
                cursor.skipSpaces()
                try cursor.expect(UInt8(ascii: "]"), "`]` closing the table name")
                try cursor.endOfLine()
                guard !seenSections.contains(name) else { throw ConfigError(line: lineNumber, "table `[\(name)]` appears twice") }
                seenSections.insert(name)
                section = name
                index += 1
                continue
            }
            let key = try cursor.bareKey()
            cursor.skipSpaces()
            try cursor.expect(UInt8(ascii: "="), "`=` after the key `\(key)`")
            cursor.skipSpaces()
            // Arrays may span lines: join following lines until the brackets balance.
            let first = index
            while cursor.peek == UInt8(ascii: "["), !Self.balanced(cursor.rest), index + 1 < lines.count {
                index += 1
                lines[first] += [UInt8(ascii: "\n")] + lines[index]
                cursor = Cursor(bytes: lines[first], line: lineNumber, position: cursor.position)
            }
            let value = try cursor.value()
            try cursor.endOfLine()
            if tables[section]?[key] != nil {
                throw ConfigError(line: lineNumber, "key `\(section.isEmpty ? "" : section + ".")\(key)` is set twice")
            }
            tables[section, default: [:]][key] = Entry(value: value, line: lineNumber)
            index += 1
        }
        for name in seenSections where tables[name] == nil && !name.isEmpty { tables[name] = [:] }
    }

    private static func balanced(_ bytes: ArraySlice<UInt8>) -> Bool {
        var depth = 0
        var quote: UInt8?
        var escaped = false
        var inComment = false
        for byte in bytes {
            if inComment {
                if byte == 0x0A { inComment = false }
                continue
            }
            if let q = quote {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") && q == UInt8(ascii: "\"") { escaped = true } else if byte == q { quote = nil }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "'"): quote = byte
            case UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "]"): depth -= 1
            case UInt8(ascii: "#"): inComment = true
            default: break
            }
        }
        return depth == 0
    }
}

/// A configuration value.
public indirect enum TOMLValue: Sendable, Hashable, CustomStringConvertible {
    case string(String)
    case integer(Int64)
    case boolean(Bool)
    case array([TOMLValue])

    /// The value written as TOML.
    public var description: String {
        switch self {
        case .string(let text):
            var out = "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\t": out += "\\t"
                case "\r": out += "\\r"
                default:
                    if scalar.value < 0x20 || scalar.value == 0x7F { out += String(format: "\\u%04X", scalar.value) } else { out.unicodeScalars.append(scalar) }
                }
            }
            return out + "\""
        case .integer(let number): return String(number)
        case .boolean(let flag): return flag ? "true" : "false"
        case .array(let items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        }
    }
}

/// A configuration problem, with the line of the file it is on when there is one.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    public let line: Int?
    public let message: String

    public init(line: Int? = nil, _ message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { line.map { "line \($0): \(message)" } ?? message }
}

import Foundation

/// Reads one line of TOML.
struct Cursor {
    let bytes: [UInt8]
    let line: Int
    var position: Int

    init(bytes: [UInt8], line: Int, position: Int = 0) {
        self.bytes = bytes
        self.line = line
        self.position = position
    }

    var atEnd: Bool { position >= bytes.count }
    var peek: UInt8? { atEnd ? nil : bytes[position] }
    var rest: ArraySlice<UInt8> { bytes[position...] }
    var column: Int { position + 1 }

    mutating func advance() { position += 1 }

    mutating func skipSpaces(newlines: Bool = false) {
        while let byte = peek, byte == 0x20 || byte == 0x09 || (newlines && (byte == 0x0A || byte == 0x0D)) { advance() }
    }

    /// Skips spaces, newlines and comments (inside arrays).
    mutating func skipTrivia() {
        while true {
            skipSpaces(newlines: true)
            if peek == UInt8(ascii: "#") {
                while let byte = peek, byte != 0x0A { _ = byte; advance() }
            } else {
                return
            }
        }
    }

    func error(_ message: String) -> ConfigError {
        ConfigError(line: line, "column \(column): \(message)")
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(ConfigError) {
        guard peek == byte else { throw error("expected \(what)") }
        advance()
    }

    mutating func endOfLine() throws(ConfigError) {
        skipSpaces()
        if atEnd || peek == UInt8(ascii: "#") || peek == 0x0D { return }
        throw error("unexpected text after the value; one key per line")
    }

    mutating func bareKey() throws(ConfigError) -> String {
        let start = position
        while let byte = peek, (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x5F || byte == 0x2D {
            advance()
        }
        guard position > start else {
            if peek == UInt8(ascii: "\"") || peek == UInt8(ascii: "'") { throw error("quoted keys are not used in Writ's configuration") }
            throw error("expected a key (letters, digits, '_' or '-')")
        }
        if peek == UInt8(ascii: ".") { throw error("dotted keys are not used in Writ's configuration: write a `[table]`") }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    mutating func value() throws(ConfigError) -> TOMLValue {
        guard let byte = peek else { throw error("expected a value") }
        switch byte {
        case UInt8(ascii: "\""): return .string(try basicString())
        case UInt8(ascii: "'"): return .string(try literalString())
        case UInt8(ascii: "["):
            advance()
            var items: [TOMLValue] = []
            skipTrivia()
            while peek != UInt8(ascii: "]") {
                guard !atEnd else { throw error("expected `]` closing the array") }
                items.append(try value())
                skipTrivia()
                if peek == UInt8(ascii: ",") { advance(); skipTrivia() } else if peek != UInt8(ascii: "]") { throw error("expected `,` or `]` in the array") }
            }
            advance()
            return .array(items)
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            if rest.starts(with: Array("true".utf8)) { position += 4; return .boolean(true) }
            if rest.starts(with: Array("false".utf8)) { position += 5; return .boolean(false) }
            throw error("expected `true` or `false`")
        case UInt8(ascii: "{"):
            throw error("inline tables are not used in Writ's configuration")
        default:
            let start = position
            while let next = peek, (next >= 0x30 && next <= 0x39) || next == UInt8(ascii: "-") || next == UInt8(ascii: "+") || next == UInt8(ascii: "_") { advance() }
            let text = String(decoding: bytes[start..<position], as: UTF8.self)
            let looksLikeDate = text.dropFirst().contains("-")
            if looksLikeDate, Int64(text.replacingOccurrences(of: "_", with: "")) == nil {
                throw error("floats and dates are not used in Writ's configuration; times are strings in RFC 3339")
            }
            if let next = peek, next == UInt8(ascii: ".") || next == UInt8(ascii: ":") || next == UInt8(ascii: "e") || next == UInt8(ascii: "T") {
                throw error("floats and dates are not used in Writ's configuration; durations are strings like \"10m\"")
            }
            guard !text.isEmpty, !text.hasSuffix("_"), !text.contains("__"), let number = Int64(text.replacingOccurrences(of: "_", with: "")) else {
                position = start
                throw error("expected a value: a \"string\", an integer, true/false or an [array]")
            }
            return .integer(number)
        }
    }

    mutating func basicString() throws(ConfigError) -> String {
        advance()
        if rest.starts(with: Array("\"\"".utf8)) { throw error("multi-line strings are not used in Writ's configuration") }
        var scalars = String.UnicodeScalarView()
        var buffer: [UInt8] = []
        func flush() { scalars.append(contentsOf: String(decoding: buffer, as: UTF8.self).unicodeScalars); buffer = [] }
        while true {
            guard let byte = peek else { throw error("unterminated string") }
            advance()
            switch byte {
            case UInt8(ascii: "\""):
                flush()
                return String(scalars)
            case UInt8(ascii: "\\"):
                flush()
                guard let escape = peek else { throw error("unterminated escape") }
                advance()
                switch escape {
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "u"), UInt8(ascii: "U"):
                    let count = escape == UInt8(ascii: "u") ? 4 : 8
                    guard position + count <= bytes.count, let code = UInt32(String(decoding: bytes[position..<position + count], as: UTF8.self), radix: 16),
                          let scalar = Unicode.Scalar(code) else { throw error("invalid unicode escape") }
                    position += count
                    scalars.append(scalar)
                default: throw error("invalid escape `\\\(Character(Unicode.Scalar(escape)))`")
                }
            case 0x0A: throw error("unterminated string")
            default:
                if byte < 0x20 && byte != 0x09 { throw error("control characters must be escaped in strings") }
                buffer.append(byte)
            }
        }
    }

    mutating func literalString() throws(ConfigError) -> String {
        advance()
        let start = position
        while let byte = peek, byte != UInt8(ascii: "'") {
            if byte == 0x0A { throw error("unterminated string") }
            advance()
        }
        guard !atEnd else { throw error("unterminated string") }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        advance()
        return text
    }
}
