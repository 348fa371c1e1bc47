import Foundation
import GRPCServerReflection
import SPIFFEWorkloadProto
import SwiftProtobuf
import Testing

/// The reflection catalog and the answers built from it, over the descriptors protoc generated
/// for the Workload API (and struct.proto), reflection itself, and hand-built files.
@Suite struct ServerReflectionTests {
    typealias Request = Grpc_Reflection_V1_ServerReflectionRequest

    let service: ServerReflectionService

    init() throws {
        service = try ServerReflectionService(describing: [SPIFFEWorkloadFileDescriptors.fileDescriptorSet, try Self.extensionFixture()])
    }

    /// proto2 `t/base.proto` (message `t.Base`, extensions 100 to 199) and `t/ext.proto`
    /// (importing it, extension `t.note` = 100 and, nested in `t.Holder`, `t.Holder.tag` = 150).
    static func extensionFixture() throws -> [UInt8] {
        var base = Google_Protobuf_FileDescriptorProto()
        base.name = "t/base.proto"
        base.package = "t"
        var message = Google_Protobuf_DescriptorProto()
        message.name = "Base"
        var range = Google_Protobuf_DescriptorProto.ExtensionRange()
        range.start = 100
        range.end = 200
        message.extensionRange = [range]
        base.messageType = [message]

        var ext = Google_Protobuf_FileDescriptorProto()
        ext.name = "t/ext.proto"
        ext.package = "t"
        ext.dependency = ["t/base.proto"]
        func field(_ name: String, _ number: Int32) -> Google_Protobuf_FieldDescriptorProto {
            var field = Google_Protobuf_FieldDescriptorProto()
            field.name = name
            field.number = number
            field.label = .optional
            field.type = .string
            field.extendee = ".t.Base"
            return field
        }
        ext.extension = [field("note", 100)]
        var holder = Google_Protobuf_DescriptorProto()
        holder.name = "Holder"
        holder.extension = [field("tag", 150)]
        ext.messageType = [holder]

        var set = Google_Protobuf_FileDescriptorSet()
        set.file = [base, ext]
        return try set.serializedBytes()
    }

    func ask(_ build: (inout Request) -> Void, sent: inout Set<String>) -> Grpc_Reflection_V1_ServerReflectionResponse {
        var request = Request()
        build(&request)
        return service.answer(request, sent: &sent)
    }

    func fileNames(_ response: Grpc_Reflection_V1_ServerReflectionResponse) throws -> [String] {
        guard case .fileDescriptorResponse(let files)? = response.messageResponse else {
            Issue.record("expected files, got \(response.messageResponse.map { "\($0)" } ?? "nothing")")
            return []
        }
        return try files.fileDescriptorProto.map { try Google_Protobuf_FileDescriptorProto(serializedBytes: $0).name }
    }

    @Test func listsEveryDeclaredServiceSortedAndEchoesTheRequest() {
        var sent = Set<String>()
        let response = ask({ $0.host = "example"; $0.listServices = "*" }, sent: &sent)
        #expect(response.listServicesResponse.service.map(\.name) == ["SpiffeWorkloadAPI", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"])
        #expect(response.validHost == "example")
        #expect(response.originalRequest.listServices == "*")
    }

    @Test func aFileComesWithTheImportsThisStreamHasNotSeen() throws {
        var sent = Set<String>()
        let first = ask({ $0.fileByFilename = "spiffe/workload/workload.proto" }, sent: &sent)
        #expect(try fileNames(first) == ["spiffe/workload/workload.proto", "google/protobuf/struct.proto"])
        let again = ask({ $0.fileByFilename = "spiffe/workload/workload.proto" }, sent: &sent)
        #expect(try fileNames(again) == ["spiffe/workload/workload.proto"], "the file asked for is always sent, its imports once")
        let dependency = ask({ $0.fileByFilename = "google/protobuf/struct.proto" }, sent: &sent)
        #expect(try fileNames(dependency) == ["google/protobuf/struct.proto"])
        var fresh = Set<String>()
        #expect(try fileNames(ask({ $0.fileByFilename = "t/ext.proto" }, sent: &fresh)) == ["t/ext.proto", "t/base.proto"])
    }

    @Test(arguments: [
        ("SpiffeWorkloadAPI", "spiffe/workload/workload.proto"),
        ("SpiffeWorkloadAPI.FetchX509SVID", "spiffe/workload/workload.proto"),
        ("X509SVIDResponse", "spiffe/workload/workload.proto"),
        ("X509SVID.spiffe_id", "spiffe/workload/workload.proto"),
        ("JWTSVIDRequest.audience", "spiffe/workload/workload.proto"),
        ("google.protobuf.Struct", "google/protobuf/struct.proto"),
        ("google.protobuf.Struct.FieldsEntry", "google/protobuf/struct.proto"),
        ("google.protobuf.Value.kind", "google/protobuf/struct.proto"),
        ("google.protobuf.NullValue", "google/protobuf/struct.proto"),
        ("google.protobuf.NULL_VALUE", "google/protobuf/struct.proto"),
        ("grpc.reflection.v1.ServerReflection.ServerReflectionInfo", "grpc/reflection/v1/reflection.proto"),
        ("grpc.reflection.v1alpha.ErrorResponse", "grpc/reflection/v1alpha/reflection.proto"),
        ("t.note", "t/ext.proto"),
        ("t.Holder.tag", "t/ext.proto"),
    ])
    func symbolsResolveToTheirFile(symbol: String, file: String) throws {
        var sent = Set<String>()
        let names = try fileNames(ask({ $0.fileContainingSymbol = symbol }, sent: &sent))
        #expect(names.first == file)
    }

    @Test(arguments: ["google.protobuf.NullValue.NULL_VALUE", ".X509SVID", "x509svid", "SpiffeWorkloadAPI.NoSuchMethod", "", String(repeating: "a", count: 5000)])
    func unknownSymbolsAreNotFoundAndTheStreamGoesOn(symbol: String) {
        var sent = Set<String>()
        let response = ask({ $0.fileContainingSymbol = symbol }, sent: &sent)
        #expect(response.errorResponse.errorCode == 5)
        #expect(response.errorResponse.errorMessage.hasPrefix("no file declares the symbol `"))
        #expect(response.errorResponse.errorMessage.utf8.count < 400, "a long name is cut in the message")
        #expect(sent.isEmpty)
    }

    @Test func extensionsAreFoundByExtendeeAndNumber() throws {
        var sent = Set<String>()
        let found = ask({ var ext = Grpc_Reflection_V1_ExtensionRequest(); ext.containingType = "t.Base"; ext.extensionNumber = 150; $0.fileContainingExtension = ext }, sent: &sent)
        #expect(try fileNames(found) == ["t/ext.proto", "t/base.proto"])
        let numbers = ask({ $0.allExtensionNumbersOfType = "t.Base" }, sent: &sent)
        #expect(numbers.allExtensionNumbersResponse.baseTypeName == "t.Base")
        #expect(numbers.allExtensionNumbersResponse.extensionNumber == [100, 150])
        let none = ask({ $0.allExtensionNumbersOfType = "X509SVID" }, sent: &sent)
        #expect(none.allExtensionNumbersResponse.baseTypeName == "X509SVID")
        #expect(none.allExtensionNumbersResponse.extensionNumber.isEmpty)

        let missing = ask({ var ext = Grpc_Reflection_V1_ExtensionRequest(); ext.containingType = "t.Base"; ext.extensionNumber = 101; $0.fileContainingExtension = ext }, sent: &sent)
        #expect(missing.errorResponse.errorCode == 5)
        #expect(missing.errorResponse.errorMessage == "`t.Base` has no extension numbered 101")
        let unknownType = ask({ $0.allExtensionNumbersOfType = "t.Nothing" }, sent: &sent)
        #expect(unknownType.errorResponse.errorCode == 5)
        #expect(unknownType.errorResponse.errorMessage == "no message type named `t.Nothing`")
    }

    @Test func unknownFilesAndEmptyRequestsAreErrors() {
        var sent = Set<String>()
        let file = ask({ $0.fileByFilename = "workload.proto" }, sent: &sent)
        #expect(file.errorResponse.errorCode == 5)
        #expect(file.errorResponse.errorMessage == "no file named `workload.proto`")
        let empty = ask({ $0.host = "h" }, sent: &sent)
        #expect(empty.errorResponse.errorCode == 3)
        #expect(empty.errorResponse.errorMessage.contains("sets none of"))
        #expect(empty.validHost == "h")
    }

    @Test func theGeneratedDescriptorsMatchTheGeneratedCode() throws {
        // The descriptor set and the Swift types come from the same protoc run: every message the
        // Swift code knows is declared in the catalog under the same name.
        let names = [X509SVIDRequest.protoMessageName, X509SVIDResponse.protoMessageName, X509SVID.protoMessageName,
                     X509BundlesRequest.protoMessageName, JWTSVIDRequest.protoMessageName, JWTBundlesResponse.protoMessageName,
                     ValidateJWTSVIDRequest.protoMessageName, ValidateJWTSVIDResponse.protoMessageName]
        for name in names {
            #expect(service.catalog.file(declaring: name) == "spiffe/workload/workload.proto", "\(name)")
        }
        #expect(service.catalog.fileNames.contains("grpc/reflection/v1alpha/reflection.proto"))
    }

    @Test func catalogsRefuseBrokenSets() throws {
        #expect(throws: ReflectionCatalogError.self) { try ReflectionCatalog(fileDescriptorSets: [[0x0a, 0x05, 0x01]]) }
        do {
            _ = try ReflectionCatalog(fileDescriptorSets: [[0x0a, 0x05, 0x01]])
        } catch {
            #expect(error.code == .malformedDescriptorSet)
        }

        let full = try Google_Protobuf_FileDescriptorSet(serializedBytes: SPIFFEWorkloadFileDescriptors.fileDescriptorSet)
        var onlyWorkload = full
        onlyWorkload.file.removeAll { $0.name == "google/protobuf/struct.proto" }
        let onlyWorkloadBytes: [UInt8] = try onlyWorkload.serializedBytes()
        do {
            _ = try ReflectionCatalog(fileDescriptorSets: [onlyWorkloadBytes])
            Issue.record("a missing import was accepted")
        } catch {
            #expect(error.code == .missingDependency)
            #expect(error.message == "`spiffe/workload/workload.proto` imports `google/protobuf/struct.proto`, which no descriptor set carries")
        }

        var altered = full
        altered.file[altered.file.count - 1].messageType.removeLast()
        let alteredBytes: [UInt8] = try altered.serializedBytes()
        do {
            _ = try ReflectionCatalog(fileDescriptorSets: [SPIFFEWorkloadFileDescriptors.fileDescriptorSet, alteredBytes])
            Issue.record("two different files under one name were accepted")
        } catch {
            #expect(error.code == .conflictingFile)
        }

        var twin = Google_Protobuf_FileDescriptorProto()
        twin.name = "twin.proto"
        var message = Google_Protobuf_DescriptorProto()
        message.name = "X509SVID"
        twin.messageType = [message]
        var twinSet = Google_Protobuf_FileDescriptorSet()
        twinSet.file = [twin]
        let twinBytes: [UInt8] = try twinSet.serializedBytes()
        do {
            _ = try ReflectionCatalog(fileDescriptorSets: [SPIFFEWorkloadFileDescriptors.fileDescriptorSet, twinBytes])
            Issue.record("a symbol declared twice was accepted")
        } catch {
            #expect(error.code == .duplicateSymbol)
            #expect(error.message == "`X509SVID` is declared by both `spiffe/workload/workload.proto` and `twin.proto`")
        }

        // The same set twice is one catalog.
        let twice = try ReflectionCatalog(fileDescriptorSets: [SPIFFEWorkloadFileDescriptors.fileDescriptorSet, SPIFFEWorkloadFileDescriptors.fileDescriptorSet])
        #expect(twice.fileNames == ["google/protobuf/struct.proto", "spiffe/workload/workload.proto"])
    }
}
