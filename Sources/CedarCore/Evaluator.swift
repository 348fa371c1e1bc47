/// Why an expression could not be evaluated. A policy whose condition fails this way is skipped
/// by the authorizer and reported in the response's errors.
public struct EvaluationError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        case entityDoesNotExist = "entity_does_not_exist"
        case attributeDoesNotExist = "attribute_does_not_exist"
        case tagDoesNotExist = "tag_does_not_exist"
        case typeError = "type_error"
        case integerOverflow = "integer_overflow"
        case extensionError = "extension_error"
        case unlinkedSlot = "unlinked_slot"
    }
    public let kind: Kind
    public let message: String
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { message }

    static func type(expected: String, got value: Value) -> EvaluationError {
        EvaluationError(.typeError, "type error: expected \(expected), got \(value.typeName)")
    }
}

/// Evaluates expressions for one request against one entity store, with Cedar's semantics:
/// `&&`, `||` and `if` short-circuit; operands of the wrong type are errors, never coerced;
/// integer arithmetic that overflows is an error; `in` follows the precomputed ancestor sets.
public struct Evaluator: Sendable {
    public let request: Request
    public let entities: Entities
    /// The principal's and resource's entities, looked up once per request: most attribute
    /// reads and `in` tests of a decision are on them.
    let principalRecord: EntityRecord?
    let resourceRecord: EntityRecord?

    public init(request: Request, entities: Entities) {
        self.request = request
        self.entities = entities
        principalRecord = entities.record(request.principal)
        resourceRecord = entities.record(request.resource)
    }

    /// The entity record of `uid`, from the per-request cache when it is the principal or resource.
    @inline(__always)
    func record(_ uid: EntityUID) -> EntityRecord? {
        if uid == request.principal { return principalRecord }
        if uid == request.resource { return resourceRecord }
        return entities.record(uid)
    }

    /// Whether `descendant` is `ancestor` or below it.
    @inline(__always)
    func isDescendant(_ descendant: EntityUID, of ancestor: EntityUID) -> Bool {
        descendant == ancestor || (record(descendant)?.ancestors.contains(ancestor) ?? false)
    }

    public func evaluate(_ expr: Expr) throws(EvaluationError) -> Value {
        switch expr {
        case .value(let value):
            return value
        case .variable(let variable):
            switch variable {
            case .principal: return .entity(request.principal)
            case .action: return .entity(request.action)
            case .resource: return .entity(request.resource)
            case .context: return .record(request.context)
            }
        case .slot(let slot):
            throw EvaluationError(.unlinkedSlot, "template slot `\(slot.rawValue)` is not linked")
        case .not(let operand):
            return .bool(!(try bool(operand)))
        case .negate(let operand):
            let value = try long(operand)
            let (result, overflow) = Int64(0).subtractingReportingOverflow(value)
            if overflow { throw EvaluationError(.integerOverflow, "integer overflow while attempting to negate the value `\(value)`") }
            return .long(result)
        case .and(let left, let right):
            guard try bool(left) else { return .bool(false) }
            return .bool(try bool(right))
        case .or(let left, let right):
            if try bool(left) { return .bool(true) }
            return .bool(try bool(right))
        case .ifThenElse(let condition, let then, let otherwise):
            return try bool(condition) ? try evaluate(then) : try evaluate(otherwise)
        case .binary(let op, let left, let right):
            return try binary(op, try evaluate(left), try evaluate(right))
        case .getAttribute(let base, let attribute):
            return try attributeValue(of: try evaluate(base), attribute)
        case .hasAttribute(let base, let path):
            var current = try evaluate(base)
            for (index, attribute) in path.enumerated() {
                guard let next = try lookUp(current, attribute) else { return .bool(false) }
                if index < path.count - 1 { current = next }
            }
            return .bool(true)
        case .like(let operand, let pattern):
            let value = try evaluate(operand)
            guard case .string(let text) = value else { throw .type(expected: "string", got: value) }
            return .bool(pattern.matches(text))
        case .isType(let operand, let type, let container):
            let value = try evaluate(operand)
            guard case .entity(let uid) = value else { throw .type(expected: Self.anyEntity, got: value) }
            guard uid.type == type else { return .bool(false) }
            guard let container else { return .bool(true) }
            return try binary(.in, value, try evaluate(container))
        case .set(let elements):
            var set = Set<Value>(minimumCapacity: elements.count)
            for element in elements { set.insert(try evaluate(element)) }
            return .set(set)
        case .record(let fields):
            var record = [CedarString: Value](minimumCapacity: fields.count)
            for field in fields { record[field.key] = try evaluate(field.value) }
            return .record(record)
        case .call(let name, let arguments):
            var values: [Value] = []
            values.reserveCapacity(arguments.count)
            for argument in arguments { values.append(try evaluate(argument)) }
            return try Extensions.call(name, values)
        case .method(let receiver, let name, let arguments):
            let target = try evaluate(receiver)
            switch arguments.count {
            case 0: return try method(name, target, [])
            case 1: return try method(name, target, CollectionOfOne(try evaluate(arguments[0])))
            default:
                var values: [Value] = []
                values.reserveCapacity(arguments.count)
                for argument in arguments { values.append(try evaluate(argument)) }
                return try method(name, target, values)
            }
        }
    }

    /// How Cedar names "any entity" in type errors.
    static let anyEntity = "(entity of type `any_entity_type`)"

    @inline(__always)
    func bool(_ expr: Expr) throws(EvaluationError) -> Bool {
        let value = try evaluate(expr)
        guard case .bool(let flag) = value else { throw .type(expected: "bool", got: value) }
        return flag
    }

    @inline(__always)
    func long(_ expr: Expr) throws(EvaluationError) -> Int64 {
        let value = try evaluate(expr)
        guard case .long(let number) = value else { throw .type(expected: "long", got: value) }
        return number
    }

    func binary(_ op: BinaryOperator, _ left: Value, _ right: Value) throws(EvaluationError) -> Value {
        switch op {
        case .equal: return .bool(left == right)
        case .notEqual: return .bool(left != right)
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            let order: Int
            switch (left, right) {
            case (.long(let a), .long(let b)): order = a < b ? -1 : (a == b ? 0 : 1)
            case (.datetime(let a), .datetime(let b)): order = a.millis < b.millis ? -1 : (a.millis == b.millis ? 0 : 1)
            case (.duration(let a), .duration(let b)): order = a.millis < b.millis ? -1 : (a.millis == b.millis ? 0 : 1)
            // Cedar's error rules, in its order: a long, then an overloadable type, on either side
            // names what the other side should have been.
            case (.long, _): throw .type(expected: "long", got: right)
            case (_, .long): throw .type(expected: "long", got: left)
            case (.datetime, _), (.duration, _): throw .type(expected: left.typeName, got: right)
            case (_, .datetime), (_, .duration): throw .type(expected: right.typeName, got: left)
            default: throw .type(expected: "one of [long, datetime, duration]", got: left)
            }
            switch op {
            case .less: return .bool(order < 0)
            case .lessOrEqual: return .bool(order <= 0)
            case .greater: return .bool(order > 0)
            default: return .bool(order >= 0)
            }
        case .add, .subtract, .multiply:
            guard case .long(let a) = left else { throw .type(expected: "long", got: left) }
            guard case .long(let b) = right else { throw .type(expected: "long", got: right) }
            let (result, overflow): (Int64, Bool)
            switch op {
            case .add: (result, overflow) = a.addingReportingOverflow(b)
            case .subtract: (result, overflow) = a.subtractingReportingOverflow(b)
            default: (result, overflow) = a.multipliedReportingOverflow(by: b)
            }
            if overflow {
                let verb = op == .add ? "add" : (op == .subtract ? "subtract" : "multiply")
                throw EvaluationError(.integerOverflow, "integer overflow while attempting to \(verb) the values `\(a)` and `\(b)`")
            }
            return .long(result)
        case .in:
            guard case .entity(let child) = left else { throw .type(expected: Self.anyEntity, got: left) }
            switch right {
            case .entity(let ancestor):
                return .bool(isDescendant(child, of: ancestor))
            case .set(let members):
                var found = false
                for member in members {
                    guard case .entity(let ancestor) = member else { throw .type(expected: Self.anyEntity, got: member) }
                    if !found && isDescendant(child, of: ancestor) { found = true }
                }
                return .bool(found)
            default:
                throw .type(expected: "one of [set, \(Self.anyEntity)]", got: right)
            }
        }
    }

    /// `value.attribute`: records and entities; a missing attribute or entity is an error.
    func attributeValue(of value: Value, _ attribute: CedarString) throws(EvaluationError) -> Value {
        switch value {
        case .record(let record):
            guard let found = record[attribute] else {
                throw EvaluationError(.attributeDoesNotExist, "record does not have the attribute `\(attribute)`")
            }
            return found
        case .entity(let uid):
            guard let record = record(uid) else {
                throw EvaluationError(.entityDoesNotExist, "entity `\(uid)` does not exist")
            }
            guard let found = record.attributes[attribute] else {
                throw EvaluationError(.attributeDoesNotExist, "`\(uid)` does not have the attribute `\(attribute)`")
            }
            return found
        default:
            throw .type(expected: "one of [record, \(Self.anyEntity)]", got: value)
        }
    }

    /// `value has attribute`, returning the attribute's value when present (a missing entity
    /// has no attributes).
    func lookUp(_ value: Value, _ attribute: CedarString) throws(EvaluationError) -> Value? {
        switch value {
        case .record(let record): return record[attribute]
        case .entity(let uid): return record(uid)?.attributes[attribute]
        default: throw .type(expected: "one of [record, \(Self.anyEntity)]", got: value)
        }
    }

    func method<Arguments: RandomAccessCollection<Value>>(_ name: String, _ receiver: Value, _ arguments: Arguments) throws(EvaluationError) -> Value
        where Arguments.Index == Int {
        switch name {
        case "contains":
            guard case .set(let set) = receiver else { throw .type(expected: "set", got: receiver) }
            return .bool(set.contains(arguments[arguments.startIndex]))
        case "containsAll", "containsAny":
            guard case .set(let set) = receiver else { throw .type(expected: "set", got: receiver) }
            let argument = arguments[arguments.startIndex]
            guard case .set(let other) = argument else { throw .type(expected: "set", got: argument) }
            return .bool(name == "containsAll" ? other.isSubset(of: set) : !set.isDisjoint(with: other))
        case "isEmpty":
            guard case .set(let set) = receiver else { throw .type(expected: "set", got: receiver) }
            return .bool(set.isEmpty)
        case "getTag", "hasTag":
            guard case .entity(let uid) = receiver else { throw .type(expected: Self.anyEntity, got: receiver) }
            let argument = arguments[arguments.startIndex]
            guard case .string(let tag) = argument else { throw .type(expected: "string", got: argument) }
            let record = record(uid)
            if name == "hasTag" { return .bool(record?.tags[tag] != nil) }
            guard let record else { throw EvaluationError(.entityDoesNotExist, "entity `\(uid)` does not exist") }
            guard let value = record.tags[tag] else {
                throw EvaluationError(.tagDoesNotExist, "`\(uid)` does not have the tag `\(tag)`")
            }
            return value
        default:
            return try Extensions.method(name, receiver, Array(arguments))
        }
    }
}
