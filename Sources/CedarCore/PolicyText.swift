/// Policies, expressions and values back in Cedar syntax. The output parses to the same
/// policies (parentheses only where precedence needs them), so formatting is idempotent.
extension CedarText {
    static let reserved: Set<String> = ["true", "false", "if", "then", "else", "in", "is", "like", "has", "__cedar"]

    /// Whether `text` can be written as a bare identifier (after `.`, in `has`, as a record key).
    static func isIdentifier(_ text: String) -> Bool {
        guard let first = text.utf8.first, first == UInt8(ascii: "_") || (first | 0x20 >= 0x61 && first | 0x20 <= 0x7A) else { return false }
        guard text.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) }) else { return false }
        return !reserved.contains(text)
    }

    /// Every policy of a set, static ones and templates, each preceded by a comment with its id.
    public static func policySet(_ set: PolicySet) -> String {
        var out = ""
        var written = Set<String>()
        for (id, policy) in set.policies where set.links[id] == nil {
            out += "// \(id)\n" + self.policy(policy) + "\n\n"
            written.insert(id)
        }
        for (id, template) in set.templates.sorted(by: { $0.key < $1.key }) where !written.contains(id) {
            out += "// \(id)\n" + self.policy(template) + "\n\n"
        }
        return out
    }

    /// One policy in the layout Cedar's formatter uses; with `id`, a comment naming it first.
    public static func policy(_ policy: Policy, id: String? = nil) -> String {
        var out = id.map { "// \($0)\n" } ?? ""
        for annotation in policy.annotations {
            out += "@\(annotation.key)" + (annotation.value.map { "(\(quoted($0.text)))" } ?? "") + "\n"
        }
        func reference(_ r: EntityReference) -> String {
            switch r {
            case .entity(let e): e.description
            case .slot(let s): s.rawValue
            }
        }
        func scope(_ variable: String, _ c: ScopeConstraint) -> String {
            switch c {
            case .any: variable
            case .equal(let r): "\(variable) == \(reference(r))"
            case .in(let r): "\(variable) in \(reference(r))"
            case .is(let t): "\(variable) is \(t.qualified)"
            case .isIn(let t, let r): "\(variable) is \(t.qualified) in \(reference(r))"
            }
        }
        let action: String = switch policy.action {
        case .any: "action"
        case .equal(let e): "action == \(e)"
        case .in(let e): "action in \(e)"
        case .inSet(let es): "action in [" + es.map(\.description).joined(separator: ", ") + "]"
        }
        out += "\(policy.effect.rawValue) (\n  \(scope("principal", policy.principal)),\n  \(action),\n  \(scope("resource", policy.resource))\n)"
        for condition in policy.conditions {
            out += "\n\(condition.kind.rawValue) { \(expr(condition.body)) }"
        }
        return out + ";"
    }

    /// The precedence level of an expression's top operator (higher binds tighter).
    static func level(_ e: Expr) -> Int {
        switch e {
        case .ifThenElse: 0
        case .or: 1
        case .and: 2
        case .binary(let op, _, _):
            switch op {
            case .add, .subtract: 4
            case .multiply: 5
            default: 3
            }
        case .hasAttribute, .like, .isType: 3
        case .not, .negate: 6
        case .value(.long(let n)) where n < 0: 6
        default: 7
        }
    }

    /// An expression in Cedar syntax.
    public static func expr(_ e: Expr) -> String {
        write(e, atLeast: 0)
    }

    static func write(_ e: Expr, atLeast minimum: Int) -> String {
        let text = write(e)
        return level(e) < minimum ? "(\(text))" : text
    }

    static func write(_ e: Expr) -> String {
        switch e {
        case .value(let v): return literal(v)
        case .variable(let v): return v.rawValue
        case .slot(let s): return s.rawValue
        case .not(let x): return "!" + write(x, atLeast: 7)
        case .negate(let x):
            // `-5` would parse back as the literal -5, not a negation of 5.
            if case .value(.long(let n)) = x, n >= 0 { return "-(\(n))" }
            return "-" + write(x, atLeast: 7)
        case .or(let l, let r): return write(l, atLeast: 1) + " || " + write(r, atLeast: 2)
        case .and(let l, let r): return write(l, atLeast: 2) + " && " + write(r, atLeast: 3)
        case .binary(let op, let l, let r):
            switch op {
            case .add, .subtract: return write(l, atLeast: 4) + " \(op.rawValue) " + write(r, atLeast: 5)
            case .multiply: return write(l, atLeast: 5) + " * " + write(r, atLeast: 6)
            default: return write(l, atLeast: 4) + " \(op.rawValue) " + write(r, atLeast: 4)
            }
        case .ifThenElse(let c, let t, let f): return "if \(write(c, atLeast: 0)) then \(write(t, atLeast: 0)) else \(write(f, atLeast: 0))"
        case .getAttribute(let x, let a):
            return write(x, atLeast: 7) + (isIdentifier(a.text) ? ".\(a.text)" : "[\(quoted(a.text))]")
        case .hasAttribute(let x, let path):
            if path.count == 1, !isIdentifier(path[0].text) { return write(x, atLeast: 4) + " has \(quoted(path[0].text))" }
            if path.allSatisfy({ isIdentifier($0.text) }) { return write(x, atLeast: 4) + " has " + path.map(\.text).joined(separator: ".") }
            // A path with a name that is not an identifier cannot be written with `has a.b`.
            var result = write(x, atLeast: 4) + " has \(quoted(path[0].text))"
            var target = write(x, atLeast: 7)
            for index in 1..<path.count {
                target += isIdentifier(path[index - 1].text) ? ".\(path[index - 1].text)" : "[\(quoted(path[index - 1].text))]"
                result = "(\(result)) && (\(target) has \(quoted(path[index].text)))"
            }
            return result
        case .like(let x, let p):
            var pattern = "\""
            for element in p.elements {
                switch element {
                case .wildcard: pattern += "*"
                case .scalar("*"): pattern += "\\*"
                case .scalar(let s): escape(s, into: &pattern)
                }
            }
            return write(x, atLeast: 4) + " like " + pattern + "\""
        case .isType(let x, let t, let container):
            return write(x, atLeast: 4) + " is \(t.qualified)" + (container.map { " in " + write($0, atLeast: 4) } ?? "")
        case .set(let items): return "[" + items.map { write($0, atLeast: 0) }.joined(separator: ", ") + "]"
        case .record(let fields): return "{" + fields.map { "\(quoted($0.key.text)): \(write($0.value, atLeast: 0))" }.joined(separator: ", ") + "}"
        case .call(let name, let args): return "\(name.qualified)(" + args.map { write($0, atLeast: 0) }.joined(separator: ", ") + ")"
        case .method(let x, let name, let args): return write(x, atLeast: 7) + ".\(name)(" + args.map { write($0, atLeast: 0) }.joined(separator: ", ") + ")"
        }
    }

    static func literal(_ v: Value) -> String {
        switch v {
        case .bool(let b): b ? "true" : "false"
        case .long(let n): String(n)
        case .string(let s): quoted(s.text)
        case .entity(let e): e.description
        default: value(v)
        }
    }

    /// A value in Cedar syntax (sets and records sorted; extension values by their constructor).
    public static func value(_ v: Value) -> String {
        switch v {
        case .bool, .long, .string, .entity: return literal(v)
        case .set(let items): return "[" + items.map(value).sorted().joined(separator: ", ") + "]"
        case .record(let fields): return "{" + fields.sorted { $0.key < $1.key }.map { "\(quoted($0.key.text)): \(value($0.value))" }.joined(separator: ", ") + "}"
        case .decimal(let d):
            let magnitude = d.scaled.magnitude
            let fraction = String(magnitude % 10_000)
            return "decimal(\"\(d.scaled < 0 ? "-" : "")\(magnitude / 10_000).\(String(repeating: "0", count: 4 - fraction.count) + fraction)\")"
        case .ipaddr(let ip): return "ip(\"\(ip.text)/\(ip.prefix)\")"
        case .datetime(let dt): return "datetime(\"1970-01-01\").offset(duration(\"\(dt.millis)ms\"))"
        case .duration(let d): return "duration(\"\(d.millis)ms\")"
        }
    }
}

extension CedarIPAddr {
    /// The address without its prefix: dotted for IPv4, RFC 5952 for IPv6.
    var text: String {
        if isV4 { return (0..<4).map { String((address >> UInt128(24 - 8 * $0)) & 0xFF) }.joined(separator: ".") }
        let groups = (0..<8).map { UInt16(truncatingIfNeeded: address >> UInt128(112 - 16 * $0)) }
        var bestStart = -1, bestLength = 0, start = -1
        for (i, g) in groups.enumerated() {
            if g == 0 {
                if start < 0 { start = i }
                if i - start + 1 > bestLength { bestStart = start; bestLength = i - start + 1 }
            } else {
                start = -1
            }
        }
        let hex = groups.map { String($0, radix: 16) }
        guard bestLength >= 2 else { return hex.joined(separator: ":") }
        return hex[..<bestStart].joined(separator: ":") + "::" + hex[(bestStart + bestLength)...].joined(separator: ":")
    }
}
