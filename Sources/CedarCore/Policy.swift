/// The four request variables.
public enum Variable: String, Sendable, Hashable, CaseIterable {
    case principal, action, resource, context
}

/// A template slot.
public enum Slot: String, Sendable, Hashable {
    case principal = "?principal"
    case resource = "?resource"
}

/// The binary operators, as written in policy text.
public enum BinaryOperator: String, Sendable, Hashable {
    case equal = "==", notEqual = "!="
    case less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    case add = "+", subtract = "-", multiply = "*"
    case `in` = "in"
}

/// One element of a `like` pattern.
public enum PatternElement: Sendable, Hashable {
    /// One literal Unicode scalar.
    case scalar(Unicode.Scalar)
    /// `*`: any sequence of scalars, possibly empty.
    case wildcard
}

/// A `like` pattern: literal scalars and wildcards (an escaped `\*` is a literal star).
///
/// Matching runs over UTF-8 bytes, which is the same as matching scalar by scalar: UTF-8 is
/// self-synchronising, so an encoded scalar of the pattern can only match at a scalar boundary
/// of the text, and a wildcard that ends mid-scalar cannot be followed by a match.
public struct Pattern: Sendable, Hashable {
    public let elements: [PatternElement]
    /// The pattern as bytes; -1 is a wildcard.
    let program: [Int16]

    public init(_ elements: [PatternElement]) {
        self.elements = elements
        var program: [Int16] = []
        for element in elements {
            switch element {
            case .wildcard: program.append(-1)
            case .scalar(let scalar): for byte in String(Character(scalar)).utf8 { program.append(Int16(byte)) }
            }
        }
        self.program = program
    }

    public static func == (lhs: Pattern, rhs: Pattern) -> Bool { lhs.elements == rhs.elements }
    public func hash(into hasher: inout Hasher) { hasher.combine(elements) }

    /// Whether `text` matches, scalar by scalar (Cedar matches code points, not characters).
    public func matches(_ text: CedarString) -> Bool {
        var string = text.text
        return string.withUTF8 { Self.matches(program, $0) }
    }

    static func matches(_ pattern: [Int16], _ text: UnsafeBufferPointer<UInt8>) -> Bool {
        // Wildcard matching with backtracking to the last star: linear in practice.
        var s = 0, p = 0
        var starP = -1, starS = 0
        while s < text.count {
            if p < pattern.count, pattern[p] >= 0, pattern[p] == Int16(text[s]) {
                s += 1; p += 1
            } else if p < pattern.count, pattern[p] < 0 {
                starP = p; starS = s; p += 1
            } else if starP >= 0 {
                p = starP + 1; starS += 1; s = starS
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] < 0 { p += 1 }
        return p == pattern.count
    }
}

/// A field of a record literal (order kept as written).
public struct RecordField: Sendable, Hashable {
    public let key: CedarString
    public let value: Expr
    public init(_ key: CedarString, _ value: Expr) {
        self.key = key
        self.value = value
    }
}

/// A Cedar expression as written (no desugaring, so that it can be printed and translated to
/// the JSON policy format the way Cedar does).
public indirect enum Expr: Sendable, Hashable {
    /// A literal: bool, long, string or entity.
    case value(Value)
    case variable(Variable)
    case slot(Slot)
    case not(Expr)
    case negate(Expr)
    case binary(BinaryOperator, Expr, Expr)
    case and(Expr, Expr)
    case or(Expr, Expr)
    case ifThenElse(Expr, Expr, Expr)
    /// `e.attr` or `e["attr"]`.
    case getAttribute(Expr, CedarString)
    /// `e has attr`, `e has "attr"`, `e has a.b.c` (the path, at least one attribute).
    case hasAttribute(Expr, [CedarString])
    case like(Expr, Pattern)
    /// `e is T` or `e is T in x`.
    case isType(Expr, Name, Expr?)
    case set([Expr])
    case record([RecordField])
    /// A function call, `decimal("1.5")`.
    case call(Name, [Expr])
    /// A method call, `e.contains(x)`, `e.lessThan(y)`.
    case method(Expr, String, [Expr])

    /// The direct subexpressions, in the order they are written (an `if`'s condition, then and
    /// else; a record's values in field order; a method's receiver before its arguments).
    public var children: [Expr] {
        switch self {
        case .value, .variable, .slot: []
        case .not(let e), .negate(let e), .getAttribute(let e, _), .hasAttribute(let e, _), .like(let e, _): [e]
        case .binary(_, let a, let b), .and(let a, let b), .or(let a, let b): [a, b]
        case .ifThenElse(let a, let b, let c): [a, b, c]
        case .isType(let e, _, let container): container.map { [e, $0] } ?? [e]
        case .set(let items), .call(_, let items): items
        case .record(let fields): fields.map(\.value)
        case .method(let receiver, _, let arguments): [receiver] + arguments
        }
    }
}

/// Whether a policy permits or forbids.
public enum Effect: String, Sendable, Hashable {
    case permit, forbid
}

/// An entity in a scope constraint: a literal, or a template slot.
public enum EntityReference: Sendable, Hashable {
    case entity(EntityUID)
    case slot(Slot)
}

/// The principal or resource part of a policy's scope.
public enum ScopeConstraint: Sendable, Hashable {
    case any
    case equal(EntityReference)
    case `in`(EntityReference)
    case `is`(Name)
    case isIn(Name, EntityReference)
}

/// The action part of a policy's scope.
public enum ActionConstraint: Sendable, Hashable {
    case any
    case equal(EntityUID)
    /// `action in A::"x"`.
    case `in`(EntityUID)
    /// `action in [A::"x", …]`.
    case inSet([EntityUID])
}

/// A `when` or `unless` clause.
public struct Condition: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable { case when, unless }
    public let kind: Kind
    public let body: Expr
    public init(_ kind: Kind, _ body: Expr) {
        self.kind = kind
        self.body = body
    }
}

/// An annotation, `@key("value")` or `@key`.
public struct Annotation: Sendable, Hashable {
    public let key: String
    public let value: CedarString?
    public init(key: String, value: CedarString?) {
        self.key = key
        self.value = value
    }
}

/// A policy or template as written: a template has slots in its principal or resource scope.
public struct Policy: Sendable, Hashable {
    public var annotations: [Annotation]
    public var effect: Effect
    public var principal: ScopeConstraint
    public var action: ActionConstraint
    public var resource: ScopeConstraint
    public var conditions: [Condition]

    public init(annotations: [Annotation] = [], effect: Effect, principal: ScopeConstraint, action: ActionConstraint, resource: ScopeConstraint, conditions: [Condition]) {
        self.annotations = annotations
        self.effect = effect
        self.principal = principal
        self.action = action
        self.resource = resource
        self.conditions = conditions
    }

    /// The slots the scope uses.
    public var slots: Set<Slot> {
        var slots = Set<Slot>()
        for constraint in [principal, resource] {
            switch constraint {
            case .equal(.slot(let slot)), .in(.slot(let slot)), .isIn(_, .slot(let slot)): slots.insert(slot)
            default: break
            }
        }
        return slots
    }

    /// Whether this is a template (has slots).
    public var isTemplate: Bool { !slots.isEmpty }

    /// The policy with its slots filled from `values`; nil if a slot has no value or a value
    /// is given for a slot the template lacks.
    public func linked(_ values: [Slot: EntityUID]) -> Policy? {
        guard Set(values.keys) == slots else { return nil }
        func fill(_ reference: EntityReference) -> EntityReference {
            if case .slot(let slot) = reference { return .entity(values[slot]!) }
            return reference
        }
        func fill(_ constraint: ScopeConstraint) -> ScopeConstraint {
            switch constraint {
            case .any, .is: constraint
            case .equal(let reference): .equal(fill(reference))
            case .in(let reference): .in(fill(reference))
            case .isIn(let type, let reference): .isIn(type, fill(reference))
            }
        }
        var copy = self
        copy.principal = fill(principal)
        copy.resource = fill(resource)
        return copy
    }
}
