/// An entity: its attributes, tags, direct parents and — computed when its store is built —
/// every ancestor, so that `in` is a set lookup.
public struct Entity: Sendable, Hashable {
    public let uid: EntityUID
    public var attributes: [CedarString: Value]
    public var tags: [CedarString: Value]
    public var parents: Set<EntityUID>
    /// Parents, their parents and so on (filled in by ``Entities``).
    public internal(set) var ancestors: Set<EntityUID>

    public init(uid: EntityUID, attributes: [CedarString: Value] = [:], parents: Set<EntityUID> = [], tags: [CedarString: Value] = [:]) {
        self.uid = uid
        self.attributes = attributes
        self.tags = tags
        self.parents = parents
        self.ancestors = parents
    }
}

/// Why a set of entities cannot be built.
public struct EntitiesError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case duplicateEntity = "duplicate_entity"
        case cycle
        case malformed
        case schemaMismatch = "schema_mismatch"
    }
    public let code: Code
    public let message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}

/// What the evaluator reads of one entity, shared by reference so that a lookup on the
/// decision path copies one pointer rather than four collections.
final class EntityRecord: Sendable {
    let attributes: [CedarString: Value]
    let tags: [CedarString: Value]
    let ancestors: Set<EntityUID>
    let entity: Entity

    init(_ entity: Entity) {
        self.entity = entity
        attributes = entity.attributes
        tags = entity.tags
        ancestors = entity.ancestors
    }
}

/// The entity store a request is decided against. Built once: the transitive closure of the
/// parent relation is computed here (a cycle is refused), so evaluation never walks the graph.
/// Parents need not exist as entities themselves.
public struct Entities: Sendable {
    let records: [EntityUID: EntityRecord]

    public init() { records = [:] }

    /// Builds the store from `entities`; refuses two different entities with one uid and parent
    /// cycles.
    public init(_ entities: [Entity]) throws(EntitiesError) {
        var byUID: [EntityUID: Entity] = [:]
        byUID.reserveCapacity(entities.count)
        for entity in entities {
            // The same entity twice is one entity; two different ones under one uid are refused.
            if let previous = byUID.updateValue(entity, forKey: entity.uid), previous != entity {
                throw EntitiesError(.duplicateEntity, "duplicate entity entry `\(entity.uid)`")
            }
        }
        try Self.computeAncestors(&byUID)
        records = byUID.mapValues(EntityRecord.init)
    }

    public subscript(uid: EntityUID) -> Entity? { records[uid]?.entity }

    /// Every entity of the store.
    public var all: some Collection<Entity> { records.values.lazy.map(\.entity) }

    public var count: Int { records.count }

    @inline(__always)
    func record(_ uid: EntityUID) -> EntityRecord? { records[uid] }

    /// Whether `descendant` is `ancestor` or has it among its ancestors.
    public func isDescendant(_ descendant: EntityUID, of ancestor: EntityUID) -> Bool {
        descendant == ancestor || (records[descendant]?.ancestors.contains(ancestor) ?? false)
    }

    /// Depth-first closure with memoisation; a back edge is a cycle.
    private static func computeAncestors(_ byUID: inout [EntityUID: Entity]) throws(EntitiesError) {
        enum Mark { case visiting, done }
        var marks: [EntityUID: Mark] = [:]
        var closed: [EntityUID: Set<EntityUID>] = [:]
        for root in byUID.keys where marks[root] == nil {
            // Iterative DFS: (uid, parents still to visit)
            var stack: [(EntityUID, [EntityUID])] = [(root, Array(byUID[root]!.parents))]
            marks[root] = .visiting
            while !stack.isEmpty {
                let top = stack.count - 1
                if let next = stack[top].1.popLast() {
                    switch marks[next] {
                    case .visiting?:
                        throw EntitiesError(.cycle, "input graph has a cycle containing vertex `\(next)`")
                    case .done?:
                        continue
                    case nil:
                        guard let entity = byUID[next] else { marks[next] = .done; continue }
                        marks[next] = .visiting
                        stack.append((next, Array(entity.parents)))
                    }
                } else {
                    let (uid, _) = stack.removeLast()
                    var ancestors = byUID[uid]!.parents
                    for parent in byUID[uid]!.parents {
                        if let more = closed[parent] { ancestors.formUnion(more) }
                    }
                    closed[uid] = ancestors
                    marks[uid] = .done
                }
            }
        }
        for (uid, ancestors) in closed { byUID[uid]!.ancestors = ancestors }
    }
}

/// A request: who does what to which resource, in what context.
public struct Request: Sendable, Hashable {
    public var principal: EntityUID
    public var action: EntityUID
    public var resource: EntityUID
    public var context: [CedarString: Value]

    public init(principal: EntityUID, action: EntityUID, resource: EntityUID, context: [CedarString: Value] = [:]) {
        self.principal = principal
        self.action = action
        self.resource = resource
        self.context = context
    }
}
