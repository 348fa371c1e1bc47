import CedarCore

/// Parses Cedar policy text: policies and templates, expressions, entity references.
public enum CedarParser {
    /// The deepest nesting of expressions accepted (a positioned error beyond it, never a stack
    /// overflow).
    public static let maximumDepth = 200

    /// Every policy and template in `text`, in order.
    public static func policies(_ text: String) throws(ParseError) -> [Policy] {
        try locatedPolicies(text).map(\.policy)
    }

    /// Every policy and template in `text`, in order, with where each part was written.
    public static func locatedPolicies(_ text: String) throws(ParseError) -> [LocatedPolicy] {
        var parser = try Parser(text)
        var policies: [LocatedPolicy] = []
        while !parser.atEnd { policies.append(try parser.policy()) }
        return policies
    }

    /// One expression (the whole of `text`).
    public static func expression(_ text: String) throws(ParseError) -> Expr {
        var parser = try Parser(text)
        let expr = try parser.expression()
        try parser.expectEnd()
        return expr
    }

    /// An entity reference, `Type::"id"` (the whole of `text`).
    public static func entityUID(_ text: String) throws(ParseError) -> EntityUID {
        var parser = try Parser(text)
        let uid = try parser.entityLiteral()
        try parser.expectEnd()
        return uid
    }

    /// A name, `Namespace::Type` (the whole of `text`).
    public static func name(_ text: String) throws(ParseError) -> Name {
        var parser = try Parser(text)
        let name = try parser.path()
        try parser.expectEnd()
        return name
    }
}

/// Recursive descent over the token stream.
struct Parser {
    let source: String
    let tokens: [Token]
    var index = 0
    var depth = 0
    /// The spans of the expressions parsed and not yet taken by an enclosing node: every
    /// expression rule leaves exactly one, and a node takes those of its children.
    var spans: [ExprSpans] = []

    /// Words that cannot be used as identifiers in names or as variables.
    static let reserved: Set<String> = ["true", "false", "if", "then", "else", "in", "is", "like", "has"]

    /// An identifier usable as an attribute name (after `.`, in `has`, as an unquoted record key).
    mutating func attributeIdentifier() throws(ParseError) -> String {
        let token = current
        let word = try identifier()
        guard !Self.reserved.contains(word) else { throw error("this identifier is reserved and cannot be used: \(word)", at: token) }
        guard word != "__cedar" else { throw error("The name `__cedar` contains `__cedar`, which is reserved", at: token) }
        return word
    }
    static let builtinMethods: [String: Int] = ["contains": 1, "containsAll": 1, "containsAny": 1, "isEmpty": 0, "getTag": 1, "hasTag": 1]

    init(_ text: String) throws(ParseError) {
        source = text
        var lexer = Lexer(text)
        tokens = try lexer.tokens()
    }

    var atEnd: Bool { if case .end = tokens[index].kind { true } else { false } }
    var current: Token { tokens[index] }

    /// Just past the last token consumed.
    var consumedEnd: SourcePosition { tokens[max(0, index - 1)].end }

    /// Records a node written from `start` to the last token consumed, taking the spans of its
    /// `children` (the last ones recorded, in order).
    mutating func node(from start: SourcePosition, children: Int = 0) {
        let taken = Array(spans.suffix(children))
        spans.removeLast(min(children, spans.count))
        spans.append(ExprSpans(span: SourceSpan(start, consumedEnd), children: taken))
    }

    func error(_ message: String, at token: Token? = nil) -> ParseError {
        ParseError.make(message, at: (token ?? current).position, in: source)
    }

    func describe(_ token: Token) -> String {
        switch token.kind {
        case .identifier(let text): "`\(text)`"
        case .rawString(let text): "\"\(text)\""
        case .integer(let value): "`\(value)`"
        case .slot(let text): "`\(text)`"
        case .punct(let text): "`\(text)`"
        case .end: "end of input"
        }
    }

    func isPunct(_ text: String) -> Bool { if case .punct(text) = current.kind { true } else { false } }
    func isWord(_ text: String) -> Bool { if case .identifier(text) = current.kind { true } else { false } }

    mutating func expect(_ text: String) throws(ParseError) {
        guard isPunct(text) else { throw error("expected `\(text)`, found \(describe(current))") }
        index += 1
    }

    mutating func expectWord(_ text: String) throws(ParseError) {
        guard isWord(text) else { throw error("expected `\(text)`, found \(describe(current))") }
        index += 1
    }

    func expectEnd() throws(ParseError) {
        guard atEnd else { throw error("unexpected \(describe(current)) after the end") }
    }

    mutating func identifier() throws(ParseError) -> String {
        guard case .identifier(let text) = current.kind else { throw error("expected an identifier, found \(describe(current))") }
        index += 1
        return text
    }

    mutating func stringLiteral() throws(ParseError) -> CedarString {
        let token = current
        guard case .rawString(let raw) = token.kind else { throw error("expected a string literal, found \(describe(token))") }
        guard let text = Unescape.string(raw) else { throw error("invalid escape sequence in string literal", at: token) }
        index += 1
        return CedarString(text)
    }

    // MARK: policies

    mutating func policy() throws(ParseError) -> LocatedPolicy {
        let policyStart = current.position
        var annotations: [Annotation] = []
        while isPunct("@") {
            let at = current
            index += 1
            let key = try identifier()
            var value: CedarString? = nil
            if isPunct("(") {
                index += 1
                value = try stringLiteral()
                try expect(")")
            }
            guard !annotations.contains(where: { $0.key == key }) else { throw error("duplicate annotation `@\(key)`", at: at) }
            annotations.append(Annotation(key: key, value: value))
        }
        let effectToken = current
        let effectWord = try identifier()
        guard let effect = Effect(rawValue: effectWord) else {
            throw error("expected `permit` or `forbid`, found `\(effectWord)`", at: effectToken)
        }
        try expect("(")
        let principalStart = current.position
        try expectWord("principal")
        let principal = try scope(slot: .principal)
        let principalSpan = SourceSpan(principalStart, consumedEnd)
        try expect(",")
        let actionStart = current.position
        try expectWord("action")
        let action = try actionScope()
        let actionSpan = SourceSpan(actionStart, consumedEnd)
        try expect(",")
        let resourceStart = current.position
        try expectWord("resource")
        let resource = try scope(slot: .resource)
        let resourceSpan = SourceSpan(resourceStart, consumedEnd)
        if isPunct(",") { index += 1 }
        try expect(")")
        var conditions: [Condition] = []
        var conditionSpans: [ExprSpans] = []
        while case .identifier(let word) = current.kind, let kind = Condition.Kind(rawValue: word) {
            index += 1
            try expect("{")
            guard !isPunct("}") else { throw error("a `\(word)` clause needs an expression") }
            spans.removeAll(keepingCapacity: true)
            let body = try expression()
            try expect("}")
            conditions.append(Condition(kind, body))
            conditionSpans.append(spans.last ?? ExprSpans(span: SourceSpan(consumedEnd, consumedEnd), children: []))
        }
        try expect(";")
        let policy = Policy(annotations: annotations, effect: effect, principal: principal, action: action, resource: resource, conditions: conditions)
        return LocatedPolicy(policy: policy, spans: PolicySpans(policy: SourceSpan(policyStart, consumedEnd), principal: principalSpan,
                                                                action: actionSpan, resource: resourceSpan, conditions: conditionSpans))
    }

    /// Runs `body` inside any number of parentheses (`principal == (User::"a")` is allowed).
    mutating func parenthesized<T>(_ body: (inout Parser) throws(ParseError) -> T) throws(ParseError) -> T {
        guard isPunct("(") else { return try body(&self) }
        index += 1
        let value = try nested { (p: inout Parser) throws(ParseError) -> T in try p.parenthesized(body) }
        try expect(")")
        return value
    }

    mutating func entityReference(slot: Slot) throws(ParseError) -> EntityReference {
        try parenthesized { (p: inout Parser) throws(ParseError) -> EntityReference in try p.bareEntityReference(slot: slot) }
    }

    mutating func bareEntityReference(slot: Slot) throws(ParseError) -> EntityReference {
        if case .slot(let text) = current.kind {
            guard text == slot.rawValue else { throw error("`\(text)` is not allowed here; only `\(slot.rawValue)`") }
            index += 1
            return .slot(slot)
        }
        return .entity(try entityLiteral())
    }

    mutating func scope(slot: Slot) throws(ParseError) -> ScopeConstraint {
        if isPunct("==") {
            index += 1
            return .equal(try entityReference(slot: slot))
        }
        if isWord("in") {
            index += 1
            return .in(try entityReference(slot: slot))
        }
        if isWord("is") {
            index += 1
            let type = try path()
            if isWord("in") {
                index += 1
                return .isIn(type, try entityReference(slot: slot))
            }
            return .is(type)
        }
        return .any
    }

    /// An entity literal whose type is `Action` (in any namespace).
    mutating func actionLiteral() throws(ParseError) -> EntityUID {
        try parenthesized { (p: inout Parser) throws(ParseError) -> EntityUID in try p.bareActionLiteral() }
    }

    mutating func bareActionLiteral() throws(ParseError) -> EntityUID {
        let token = current
        let uid = try entityLiteral()
        guard uid.type.basename == "Action" else { throw error("expected an entity uid with type `Action` but got `\(uid)`", at: token) }
        return uid
    }

    mutating func actionScope() throws(ParseError) -> ActionConstraint {
        if isPunct("==") {
            index += 1
            return .equal(try actionLiteral())
        }
        if isWord("in") {
            index += 1
            if isPunct("[") {
                index += 1
                var list: [EntityUID] = []
                while !isPunct("]") {
                    list.append(try actionLiteral())
                    guard isPunct(",") else { break }
                    index += 1
                }
                try expect("]")
                return .inSet(list)
            }
            return .in(try actionLiteral())
        }
        if isWord("is") { throw error("`is` cannot appear in the action scope") }
        return .any
    }

    // MARK: names and entities

    /// `Ident ('::' Ident)*` (not followed by a string).
    mutating func path() throws(ParseError) -> Name {
        var parts = [try nameSegment()]
        while isPunct("::"), case .identifier = tokens[index + 1].kind {
            index += 1
            parts.append(try nameSegment())
        }
        return Name(path: parts)
    }

    mutating func nameSegment() throws(ParseError) -> String {
        let token = current
        let word = try identifier()
        guard !Self.reserved.contains(word) else { throw error("this identifier is reserved and cannot be used: \(word)", at: token) }
        guard word != "__cedar" else { throw error("the name `__cedar` is reserved", at: token) }
        return word
    }

    /// `Type::"id"`.
    mutating func entityLiteral() throws(ParseError) -> EntityUID {
        let type = try path()
        try expect("::")
        return EntityUID(type: type, id: try stringLiteral())
    }

    // MARK: expressions

    mutating func nested<T>(_ body: (inout Parser) throws(ParseError) -> T) throws(ParseError) -> T {
        depth += 1
        defer { depth -= 1 }
        guard depth <= CedarParser.maximumDepth else {
            throw error("expression nested more than \(CedarParser.maximumDepth) levels deep")
        }
        return try body(&self)
    }

    mutating func expression() throws(ParseError) -> Expr {
        try nested { (p: inout Parser) throws(ParseError) -> Expr in
            if p.isWord("if") {
                let start = p.current.position
                p.index += 1
                let condition = try p.expression()
                try p.expectWord("then")
                let then = try p.expression()
                try p.expectWord("else")
                let otherwise = try p.expression()
                p.node(from: start, children: 3)
                return .ifThenElse(condition, then, otherwise)
            }
            return try p.or()
        }
    }

    /// A left-folded chain deepens the tree by one level per operator: it counts against the
    /// same depth bound as nesting, so no tree is deeper than ``CedarParser/maximumDepth``.
    func checkChain(_ length: Int) throws(ParseError) {
        guard depth + length <= CedarParser.maximumDepth else {
            throw error("expression nested more than \(CedarParser.maximumDepth) levels deep (a chain of \(length) operators; use a set and `contains`)")
        }
    }

    mutating func or() throws(ParseError) -> Expr {
        let start = current.position
        var left = try and()
        var length = 0
        while isPunct("||") {
            index += 1
            length += 1
            try checkChain(length)
            left = .or(left, try and())
            node(from: start, children: 2)
        }
        return left
    }

    mutating func and() throws(ParseError) -> Expr {
        let start = current.position
        var left = try relation()
        var length = 0
        while isPunct("&&") {
            index += 1
            length += 1
            try checkChain(length)
            left = .and(left, try relation())
            node(from: start, children: 2)
        }
        return left
    }

    mutating func relation() throws(ParseError) -> Expr {
        let start = current.position
        let left = try add()
        if case .punct(let op) = current.kind, let binary = BinaryOperator(rawValue: op),
           [.equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual].contains(binary) {
            index += 1
            let result = Expr.binary(binary, left, try add())
            node(from: start, children: 2)
            try refuseChainedRelation()
            return result
        }
        if isPunct("=") { throw error("`=` is not an operator; use `==`") }
        if isWord("in") {
            index += 1
            let result = Expr.binary(.in, left, try add())
            node(from: start, children: 2)
            try refuseChainedRelation()
            return result
        }
        if isWord("has") {
            index += 1
            var path: [CedarString]
            if case .rawString = current.kind {
                path = [try stringLiteral()]
            } else {
                path = [CedarString(try attributeIdentifier())]
                while isPunct("."), case .identifier = tokens[index + 1].kind {
                    index += 1
                    path.append(CedarString(try attributeIdentifier()))
                }
            }
            node(from: start, children: 1)
            try refuseChainedRelation()
            return .hasAttribute(left, path)
        }
        if isWord("like") {
            index += 1
            let token = current
            guard case .rawString(let raw) = token.kind else { throw error("`like` needs a string literal pattern, found \(describe(token))") }
            guard let elements = Unescape.pattern(raw) else { throw error("invalid escape sequence in pattern", at: token) }
            index += 1
            node(from: start, children: 1)
            try refuseChainedRelation()
            return .like(left, Pattern(elements))
        }
        if isWord("is") {
            index += 1
            let type = try path()
            var container: Expr? = nil
            if isWord("in") {
                index += 1
                container = try add()
            }
            node(from: start, children: container == nil ? 1 : 2)
            try refuseChainedRelation()
            return .isType(left, type, container)
        }
        return left
    }

    func refuseChainedRelation() throws(ParseError) {
        if case .punct(let op) = current.kind, ["==", "!=", "<", "<=", ">", ">="].contains(op) {
            throw error("comparison operators cannot be chained; add parentheses")
        }
        if isWord("in") || isWord("has") || isWord("like") || isWord("is") {
            throw error("relational operators cannot be chained; add parentheses")
        }
    }

    mutating func add() throws(ParseError) -> Expr {
        let start = current.position
        var left = try multiply()
        var length = 0
        while case .punct(let op) = current.kind, op == "+" || op == "-" {
            index += 1
            length += 1
            try checkChain(length)
            left = .binary(op == "+" ? .add : .subtract, left, try multiply())
            node(from: start, children: 2)
        }
        return left
    }

    mutating func multiply() throws(ParseError) -> Expr {
        let start = current.position
        var left = try unary()
        var length = 0
        while isPunct("*") {
            index += 1
            length += 1
            try checkChain(length)
            left = .binary(.multiply, left, try unary())
            node(from: start, children: 2)
        }
        return left
    }

    mutating func unary() throws(ParseError) -> Expr {
        var ops: [String] = []
        let start = current
        let first = index
        while case .punct(let op) = current.kind, op == "!" || op == "-" {
            ops.append(op)
            index += 1
        }
        guard Set(ops).count <= 1 else { throw error("`!` and `-` cannot be mixed without parentheses", at: start) }
        guard ops.count <= 4 else { throw error("too many occurrences of `\(ops[0])`: cannot chain more than 4 applications of a unary operator", at: start) }
        var operand: Expr
        // `-` directly before an integer literal is part of the literal (so the minimum long parses).
        if ops.last == "-", case .integer(let magnitude) = current.kind, !isAccessAfter(index + 1) {
            guard magnitude <= UInt64(Int64.max) + 1 else { throw error("integer literal is too large") }
            index += 1
            operand = .value(.long(magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)))
            ops.removeLast()
            node(from: tokens[first + ops.count].position)
        } else {
            operand = try member()
        }
        for (offset, op) in ops.enumerated().reversed() {
            operand = op == "!" ? .not(operand) : .negate(operand)
            node(from: tokens[first + offset].position, children: 1)
        }
        return operand
    }

    func isAccessAfter(_ position: Int) -> Bool {
        if case .punct(let op) = tokens[position].kind { return op == "." || op == "[" }
        return false
    }

    mutating func member() throws(ParseError) -> Expr {
        let start = current.position
        var base = try primary()
        var length = 0
        while true {
            if isPunct(".") || isPunct("[") {
                length += 1
                try checkChain(length)
            }
            if isPunct(".") {
                index += 1
                let token = current
                let name = try attributeIdentifier()
                if isPunct("(") {
                    let arguments = try argumentList()
                    if let arity = Self.builtinMethods[name] {
                        guard arguments.count == arity else {
                            throw error("call to `\(name)` requires exactly \(arity) argument\(arity == 1 ? "" : "s"), but got \(arguments.count) argument\(arguments.count == 1 ? "" : "s")", at: token)
                        }
                    } else if Extensions.methods[name] == nil {
                        if Extensions.functions[name] != nil { throw error("`\(name)` is a function, not a method", at: token) }
                        throw error("`\(name)` is not a valid method", at: token)
                    }
                    base = .method(base, name, arguments)
                    node(from: start, children: 1 + arguments.count)
                } else {
                    base = .getAttribute(base, CedarString(name))
                    node(from: start, children: 1)
                }
            } else if isPunct("[") {
                index += 1
                base = .getAttribute(base, try stringLiteral())
                try expect("]")
                node(from: start, children: 1)
            } else {
                return base
            }
        }
    }

    mutating func argumentList() throws(ParseError) -> [Expr] {
        try expect("(")
        var arguments: [Expr] = []
        while !isPunct(")") {
            arguments.append(try expression())
            guard isPunct(",") else { break }
            index += 1
        }
        try expect(")")
        return arguments
    }

    mutating func primary() throws(ParseError) -> Expr {
        let token = current
        switch token.kind {
        case .integer(let magnitude):
            guard magnitude <= UInt64(Int64.max) else { throw error("integer literal `\(magnitude)` is too large") }
            index += 1
            node(from: token.position)
            return .value(.long(Int64(magnitude)))
        case .rawString:
            let string = try stringLiteral()
            node(from: token.position)
            return .value(.string(string))
        case .slot(let text):
            guard Slot(rawValue: text) != nil else { throw error("`\(text)` is not a valid template slot", at: token) }
            throw error("found template slot \(text) in a condition; slots may appear only in the policy scope", at: token)
        case .punct("("):
            index += 1
            let inner = try expression()
            try expect(")")
            return inner
        case .punct("["):
            index += 1
            var elements: [Expr] = []
            try nested { (p: inout Parser) throws(ParseError) -> Void in
                while !p.isPunct("]") {
                    elements.append(try p.expression())
                    guard p.isPunct(",") else { break }
                    p.index += 1
                }
            }
            try expect("]")
            node(from: token.position, children: elements.count)
            return .set(elements)
        case .punct("{"):
            index += 1
            var fields: [RecordField] = []
            var keys = Set<CedarString>()
            try nested { (p: inout Parser) throws(ParseError) -> Void in
                while !p.isPunct("}") {
                    let keyToken = p.current
                    let key: CedarString
                    if case .rawString = keyToken.kind { key = try p.stringLiteral() } else { key = CedarString(try p.attributeIdentifier()) }
                    try p.expect(":")
                    guard keys.insert(key).inserted else { throw p.error("duplicate key `\(key)` in record literal", at: keyToken) }
                    fields.append(RecordField(key, try p.expression()))
                    guard p.isPunct(",") else { break }
                    p.index += 1
                }
            }
            try expect("}")
            node(from: token.position, children: fields.count)
            return .record(fields)
        case .identifier(let word):
            switch word {
            case "true": index += 1; node(from: token.position); return .value(.bool(true))
            case "false": index += 1; node(from: token.position); return .value(.bool(false))
            case "principal", "action", "resource", "context":
                if case .punct("::") = tokens[index + 1].kind { break }
                index += 1
                node(from: token.position)
                return .variable(Variable(rawValue: word)!)
            default: break
            }
            let name = try path()
            if isPunct("::") {
                index += 1
                let uid = EntityUID(type: name, id: try stringLiteral())
                node(from: token.position)
                return .value(.entity(uid))
            }
            if isPunct("(") {
                guard Extensions.functions[name.qualified] != nil else {
                    if Extensions.methods[name.qualified] != nil || Self.builtinMethods[name.qualified] != nil {
                        throw error("`\(name)` is a method, not a function", at: token)
                    }
                    throw error("`\(name)` is not a valid function", at: token)
                }
                let arguments = try argumentList()
                node(from: token.position, children: arguments.count)
                return .call(name, arguments)
            }
            throw error("unexpected name `\(name)`: expected a variable, a literal or an entity", at: token)
        default:
            break
        }
        throw error("unexpected \(describe(token))")
    }
}
