import SwiftProtobuf

/// Why a set of file descriptors cannot be described by server reflection.
public struct ReflectionCatalogError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The bytes are not a serialized `google.protobuf.FileDescriptorSet`.
        case malformedDescriptorSet = "malformed_descriptor_set"
        /// Two sets carry different files under one name.
        case conflictingFile = "conflicting_file"
        /// A file imports a file that no set carries.
        case missingDependency = "missing_dependency"
        /// Two files declare the same fully-qualified name.
        case duplicateSymbol = "duplicate_symbol"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// The proto files a server can describe, indexed the way the reflection protocol asks for them:
/// by file name, by every fully-qualified name a file declares (packages' messages and their
/// fields, oneofs, nested types; enums and their values, which live in the enum's enclosing
/// scope as protobuf scoping has it; services and their methods; extensions), and by the
/// extensions of each message type.
///
/// A constructed catalog is closed: every file's imports are in it, so a file and its
/// transitive dependencies can always be handed out together.
public struct ReflectionCatalog: Sendable {
    struct File: Sendable {
        let name: String
        /// The serialized `FileDescriptorProto`.
        let bytes: [UInt8]
        let dependencies: [String]
    }

    private var files: [String: File] = [:]
    private var fileOrder: [String] = []
    private var symbols: [String: String] = [:]
    private var messageTypes: Set<String> = []
    /// Extendee's full name → extension field number → the declaring file.
    private var extensions: [String: [Int32: String]] = [:]

    /// The fully-qualified names of every service the files declare, sorted.
    public private(set) var services: [String] = []

    /// Indexes the files of `fileDescriptorSets` (serialized `google.protobuf.FileDescriptorSet`s,
    /// as `protoc --descriptor_set_out --include_imports` writes them). A file carried by several
    /// sets must be the same file each time.
    public init(fileDescriptorSets: [[UInt8]]) throws(ReflectionCatalogError) {
        for (index, bytes) in fileDescriptorSets.enumerated() {
            let set: Google_Protobuf_FileDescriptorSet
            do {
                set = try Google_Protobuf_FileDescriptorSet(serializedBytes: bytes)
            } catch {
                throw ReflectionCatalogError(.malformedDescriptorSet, "descriptor set \(index) is not a serialized google.protobuf.FileDescriptorSet: \(error)")
            }
            for file in set.file { try add(file) }
        }
        for name in fileOrder {
            for dependency in files[name]!.dependencies where files[dependency] == nil {
                throw ReflectionCatalogError(.missingDependency, "`\(name)` imports `\(dependency)`, which no descriptor set carries")
            }
        }
        services.sort()
    }

    /// Every file name in the catalog, in the order first seen.
    public var fileNames: [String] { fileOrder }

    /// The name of the file declaring `symbol` (fully qualified, without a leading dot).
    public func file(declaring symbol: String) -> String? { symbols[symbol] }

    /// Whether `name` (fully qualified, without a leading dot) is a message type of the catalog.
    public func isMessageType(_ name: String) -> Bool { messageTypes.contains(name) }

    /// The name of the file declaring extension `number` of message type `extendee`.
    public func file(extending extendee: String, number: Int32) -> String? { extensions[extendee]?[number] }

    /// The field numbers of every extension of message type `extendee`, ascending.
    public func extensionNumbers(of extendee: String) -> [Int32] { (extensions[extendee] ?? [:]).keys.sorted() }

    /// The serialized `FileDescriptorProto` of `name` followed by those of its transitive imports
    /// that are not in `sent` (breadth first), or nil for an unknown file. Every file returned is
    /// added to `sent`: a reflection stream need not repeat a dependency it already sent, while
    /// the file asked for is always sent.
    public func descriptors(of name: String, notIn sent: inout Set<String>) -> [[UInt8]]? {
        guard let first = files[name] else { return nil }
        var answer = [first.bytes]
        sent.insert(name)
        var queue = first.dependencies[...]
        var seen: Set<String> = [name]
        while let next = queue.popFirst() {
            guard seen.insert(next).inserted, let file = files[next] else { continue }
            if sent.insert(next).inserted { answer.append(file.bytes) }
            queue.append(contentsOf: file.dependencies)
        }
        return answer
    }

    private mutating func add(_ file: Google_Protobuf_FileDescriptorProto) throws(ReflectionCatalogError) {
        let bytes: [UInt8]
        do {
            bytes = try file.serializedBytes()
        } catch {
            throw ReflectionCatalogError(.malformedDescriptorSet, "`\(file.name)` cannot be serialized again: \(error)")
        }
        if let known = files[file.name] {
            guard known.bytes == bytes else {
                throw ReflectionCatalogError(.conflictingFile, "two different files are named `\(file.name)`")
            }
            return
        }
        files[file.name] = File(name: file.name, bytes: bytes, dependencies: file.dependency)
        fileOrder.append(file.name)

        let package = file.package
        for message in file.messageType { try add(message, in: package, file: file.name) }
        for type in file.enumType { try add(type, in: package, file: file.name) }
        for field in file.extension { try addExtension(field, in: package, file: file.name) }
        for service in file.service {
            let serviceName = Self.qualified(service.name, in: package)
            try declare(serviceName, in: file.name)
            services.append(serviceName)
            for method in service.method { try declare(serviceName + "." + method.name, in: file.name) }
        }
    }

    private mutating func add(_ message: Google_Protobuf_DescriptorProto, in scope: String, file: String) throws(ReflectionCatalogError) {
        let name = Self.qualified(message.name, in: scope)
        try declare(name, in: file)
        messageTypes.insert(name)
        for field in message.field { try declare(name + "." + field.name, in: file) }
        for oneof in message.oneofDecl { try declare(name + "." + oneof.name, in: file) }
        for nested in message.nestedType { try add(nested, in: name, file: file) }
        for type in message.enumType { try add(type, in: name, file: file) }
        for field in message.extension { try addExtension(field, in: name, file: file) }
    }

    private mutating func add(_ type: Google_Protobuf_EnumDescriptorProto, in scope: String, file: String) throws(ReflectionCatalogError) {
        try declare(Self.qualified(type.name, in: scope), in: file)
        // Enum values are siblings of their enum (C++ scoping), not its children.
        for value in type.value { try declare(Self.qualified(value.name, in: scope), in: file) }
    }

    private mutating func addExtension(_ field: Google_Protobuf_FieldDescriptorProto, in scope: String, file: String) throws(ReflectionCatalogError) {
        try declare(Self.qualified(field.name, in: scope), in: file)
        let extendee = field.extendee.hasPrefix(".") ? String(field.extendee.dropFirst()) : field.extendee
        extensions[extendee, default: [:]][field.number] = file
    }

    private mutating func declare(_ symbol: String, in file: String) throws(ReflectionCatalogError) {
        if let other = symbols[symbol], other != file {
            throw ReflectionCatalogError(.duplicateSymbol, "`\(symbol)` is declared by both `\(other)` and `\(file)`")
        }
        symbols[symbol] = file
    }

    private static func qualified(_ name: String, in scope: String) -> String {
        scope.isEmpty ? name : scope + "." + name
    }
}
