import CedarCore

/// A position in source text: 1-based line and column (columns count Unicode scalars) and the
/// scalar offset.
public struct SourcePosition: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Unicode scalars before the position.
    public let offset: Int
    /// 1-based line (lines end at U+000A).
    public let line: Int
    /// 1-based column, counted in Unicode scalars.
    public let column: Int
    public var description: String { "\(line):\(column)" }

    package init(offset: Int, line: Int, column: Int) {
        self.offset = offset
        self.line = line
        self.column = column
    }

    public static func < (lhs: SourcePosition, rhs: SourcePosition) -> Bool { lhs.offset < rhs.offset }
}

/// A stretch of source text: from `start` up to, not including, `end`.
public struct SourceSpan: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let start: SourcePosition
    public let end: SourcePosition
    /// `line:column` of the start, as compilers print it.
    public var description: String { start.description }

    public init(_ start: SourcePosition, _ end: SourcePosition) {
        self.start = start
        self.end = max(start, end)
    }

    /// The smallest span covering both.
    public func union(_ other: SourceSpan) -> SourceSpan { SourceSpan(min(start, other.start), max(end, other.end)) }

    public static func < (lhs: SourceSpan, rhs: SourceSpan) -> Bool {
        (lhs.start.offset, lhs.end.offset) < (rhs.start.offset, rhs.end.offset)
    }

    /// The span's first line of `source` with carets under the span (one caret for an empty
    /// span; up to the end of the line when the span runs on), the way compilers show it:
    ///
    ///       | permit(principal, action, resource) when { principal.age > "x" };
    ///       |                                                        ^^^^^^^^^^^
    public func snippet(in source: String) -> String {
        // Lines split on U+000A scalars (a Character-based split would keep "\r\n" whole).
        let lines = source.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
        var text = start.line - 1 < lines.count ? String(String.UnicodeScalarView(lines[start.line - 1])) : ""
        if text.unicodeScalars.last == "\r" { text.unicodeScalars.removeLast() }
        let lineLength = text.unicodeScalars.count
        let first = max(0, start.column - 1)
        let width = end.line == start.line ? end.column - start.column : lineLength - first
        // Tabs in the line stay tabs under it so that the carets line up.
        let indent = String(String.UnicodeScalarView(text.unicodeScalars.prefix(first).map { $0 == "\t" ? "\t" : " " }))
        let carets = String(repeating: "^", count: max(1, width))
        return "  | \(text)\n  | \(indent)\(carets)"
    }
}

/// A parse error with its position and the source line under a caret, as compilers print them.
public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    public let position: SourcePosition
    /// The offending source line followed by a line with a caret under the column.
    public let snippet: String

    public var description: String { "\(position): \(message)\n\(snippet)" }
}

package enum TokenKind: Equatable, Sendable {
    case identifier(String)
    case rawString(String)   // the literal's text between the quotes, escapes kept (for `like`)
    case integer(UInt64)     // magnitude; `-` is a separate token
    case slot(String)        // `?principal`
    case punct(String)       // ( ) [ ] { } , ; . :: @ == != < <= > >= && || ! + - * =
    case end
}

package struct Token: Sendable {
    package let kind: TokenKind
    package let position: SourcePosition
    /// Just past the token's last scalar.
    package let end: SourcePosition
}

/// Splits policy text into tokens. String escapes are Rust's (`\n \r \t \\ \0 \' \" \u{…}`);
/// comments run from `//` to the end of the line.
package struct Lexer {
    let scalars: [Unicode.Scalar]
    let source: String
    var index = 0
    var line = 1
    var column = 1
    /// The `//` comments skipped so far, each up to its end of line.
    package var comments: [SourceSpan] = []

    package init(_ source: String) {
        self.source = source
        scalars = Array(source.unicodeScalars)
    }

    var position: SourcePosition { SourcePosition(offset: index, line: line, column: column) }

    func error(_ message: String, at position: SourcePosition) -> ParseError {
        ParseError.make(message, at: position, in: source)
    }

    mutating func advance() {
        if scalars[index] == "\n" { line += 1; column = 1 } else { column += 1 }
        index += 1
    }

    package mutating func tokens() throws(ParseError) -> [Token] {
        var out: [Token] = []
        while true {
            skipTrivia()
            let start = position
            guard index < scalars.count else {
                out.append(Token(kind: .end, position: start, end: position))
                return out
            }
            let c = scalars[index]
            if Self.isIdentifierStart(c) {
                var text = String.UnicodeScalarView()
                while index < scalars.count, Self.isIdentifierContinue(scalars[index]) { text.append(scalars[index]); advance() }
                out.append(Token(kind: .identifier(String(text)), position: start, end: position))
            } else if ("0"..."9").contains(c) {
                var value: UInt64 = 0
                var overflow = false
                while index < scalars.count, ("0"..."9").contains(scalars[index]) {
                    let digit = UInt64(scalars[index].value - 48)
                    let (m, o1) = value.multipliedReportingOverflow(by: 10)
                    let (s, o2) = m.addingReportingOverflow(digit)
                    overflow = overflow || o1 || o2
                    value = s
                    advance()
                }
                if overflow { throw error("integer literal is too large", at: start) }
                out.append(Token(kind: .integer(value), position: start, end: position))
            } else if c == "\"" {
                advance()
                var raw = String.UnicodeScalarView()
                var closed = false
                while index < scalars.count {
                    let s = scalars[index]
                    if s == "\"" { advance(); closed = true; break }
                    if s == "\r" { throw error("a bare carriage return is not allowed in a string literal", at: position) }
                    if s == "\\" {
                        raw.append(s); advance()
                        guard index < scalars.count else { break }
                    }
                    raw.append(scalars[index]); advance()
                }
                guard closed else { throw error("unterminated string literal", at: start) }
                out.append(Token(kind: .rawString(String(raw)), position: start, end: position))
            } else if c == "?" {
                advance()
                var text = String.UnicodeScalarView()
                while index < scalars.count, Self.isIdentifierContinue(scalars[index]) { text.append(scalars[index]); advance() }
                out.append(Token(kind: .slot("?" + String(text)), position: start, end: position))
            } else {
                let two = index + 1 < scalars.count ? String(String.UnicodeScalarView([c, scalars[index + 1]])) : ""
                if ["==", "!=", "<=", ">=", "&&", "||", "::"].contains(two) {
                    advance(); advance()
                    out.append(Token(kind: .punct(two), position: start, end: position))
                } else if "()[]{},;.@<>!+-*=:".unicodeScalars.contains(c) {
                    advance()
                    out.append(Token(kind: .punct(String(c)), position: start, end: position))
                } else {
                    throw error("unexpected character `\(Character(c))`", at: start)
                }
            }
        }
    }

    mutating func skipTrivia() {
        while index < scalars.count {
            let c = scalars[index]
            if c.properties.isWhitespace {
                advance()
            } else if c == "/", index + 1 < scalars.count, scalars[index + 1] == "/" {
                let start = position
                while index < scalars.count, scalars[index] != "\n" { advance() }
                comments.append(SourceSpan(start, position))
            } else {
                return
            }
        }
    }

    static func isIdentifierStart(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || c == "_"
    }

    static func isIdentifierContinue(_ c: Unicode.Scalar) -> Bool {
        isIdentifierStart(c) || ("0"..."9").contains(c)
    }
}

extension ParseError {
    package static func make(_ message: String, at position: SourcePosition, in source: String) -> ParseError {
        ParseError(message: message, position: position, snippet: SourceSpan(position, position).snippet(in: source))
    }
}

/// Cedar string escapes.
package enum Unescape {
    /// Resolves the escapes of a string literal; `keepStarEscape` keeps `\*` as a marked literal
    /// star for `like` patterns (returned as elements).
    package static func string(_ raw: String) -> String? {
        guard let elements = elements(raw, pattern: false) else { return nil }
        var out = String.UnicodeScalarView()
        for element in elements {
            guard case .scalar(let s) = element else { return nil }
            out.append(s)
        }
        return String(out)
    }

    /// A `like` pattern: unescaped `*` is a wildcard, `\*` a literal star.
    static func pattern(_ raw: String) -> [PatternElement]? { elements(raw, pattern: true) }

    private static func elements(_ raw: String, pattern: Bool) -> [PatternElement]? {
        let s = Array(raw.unicodeScalars)
        var out: [PatternElement] = []
        var i = 0
        while i < s.count {
            let c = s[i]
            if c == "*" && pattern { out.append(.wildcard); i += 1; continue }
            guard c == "\\" else { out.append(.scalar(c)); i += 1; continue }
            guard i + 1 < s.count else { return nil }
            let e = s[i + 1]
            i += 2
            switch e {
            case "n": out.append(.scalar("\n"))
            case "r": out.append(.scalar("\r"))
            case "t": out.append(.scalar("\t"))
            case "\\": out.append(.scalar("\\"))
            case "0": out.append(.scalar("\0"))
            case "'": out.append(.scalar("'"))
            case "\"": out.append(.scalar("\""))
            case "*" where pattern: out.append(.scalar("*"))
            case "x":
                // \xHH with HH at most 0x7F (Rust's rule)
                guard i + 1 < s.count, let v = UInt32(String(String.UnicodeScalarView([s[i], s[i + 1]])), radix: 16), v <= 0x7F,
                      let scalar = Unicode.Scalar(v) else { return nil }
                out.append(pattern && scalar == "*" ? .wildcard : .scalar(scalar)); i += 2
            case "u":
                guard i < s.count, s[i] == "{" else { return nil }
                var j = i + 1
                var hex = ""
                while j < s.count, s[j] != "}" { hex.unicodeScalars.append(s[j]); j += 1 }
                // `_` separators are allowed, but not first.
                guard !hex.hasPrefix("_") else { return nil }
                hex.removeAll { $0 == "_" }
                guard j < s.count, (1...6).contains(hex.count), let v = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(v) else { return nil }
                out.append(pattern && scalar == "*" ? .wildcard : .scalar(scalar)); i = j + 1
            default:
                return nil
            }
        }
        return out
    }
}
