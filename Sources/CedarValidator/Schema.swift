import CedarCore
import CedarParser

/// A type in a Cedar schema, with names already resolved.
public indirect enum SchemaType: Sendable, Hashable {
    case bool
    case long
    case string
    case set(SchemaType)
    case record(RecordType)
    case entity(Name)
    /// An extension type by its base name: `ipaddr`, `decimal`, `datetime`, `duration`.
    case `extension`(String)
}

/// A record type: attributes with their types and whether each is required. Open records
/// (`additionalAttributes`) accept attributes beyond those listed.
public struct RecordType: Sendable, Hashable {
    public var attributes: [CedarString: Attribute]
    public var additionalAttributes: Bool

    public struct Attribute: Sendable, Hashable {
        public var type: SchemaType
        public var required: Bool
        public init(type: SchemaType, required: Bool) {
            self.type = type
            self.required = required
        }
    }

    public init(attributes: [CedarString: Attribute] = [:], additionalAttributes: Bool = false) {
        self.attributes = attributes
        self.additionalAttributes = additionalAttributes
    }
}

/// An entity type declaration.
public struct EntityTypeDeclaration: Sendable, Hashable {
    public var name: Name
    /// Types an entity of this type may have as parents.
    public var memberOf: Set<Name>
    public var shape: RecordType
    public var tags: SchemaType?
    /// For enumerated entity types: the only ids that exist.
    public var enumeration: [CedarString]?
}

/// An action declaration.
public struct ActionDeclaration: Sendable, Hashable {
    public var uid: EntityUID
    public var memberOf: [EntityUID]
    /// Nil when the action applies to nothing (no `appliesTo`).
    public var appliesTo: AppliesTo?

    public struct AppliesTo: Sendable, Hashable {
        public var principals: [Name]
        public var resources: [Name]
        public var context: RecordType
    }
}

/// A resolved Cedar schema: entity types, actions and the action hierarchy.
public struct Schema: Sendable {
    public var entityTypes: [Name: EntityTypeDeclaration] = [:]
    public var actions: [EntityUID: ActionDeclaration] = [:]
    /// Declaration order of actions (for stable output).
    public var actionOrder: [EntityUID] = []

    public init() {}

    /// The action entities the schema declares, with their parents: what `Entities` needs so
    /// that `action in …` follows the declared hierarchy.
    public var actionEntities: [Entity] {
        actionOrder.map { uid in Entity(uid: uid, parents: Set(actions[uid]!.memberOf)) }
    }
}

/// Why a schema was refused.
public struct SchemaError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    public let position: SourcePosition?
    public let snippet: String?

    public init(_ message: String, position: SourcePosition? = nil, snippet: String? = nil) {
        self.message = message
        self.position = position
        self.snippet = snippet
    }

    public var description: String {
        guard let position else { return message }
        return "\(position): \(message)" + (snippet.map { "\n" + $0 } ?? "")
    }
}
