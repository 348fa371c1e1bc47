import Foundation
import GRPCCore
import GRPCProtobuf

/// gRPC server reflection (`grpc.reflection.v1.ServerReflection` and its deprecated twin
/// `grpc.reflection.v1alpha.ServerReflection`, which older clients such as grpcio-reflection
/// still call; the two are wire-identical and answered alike), so that grpcurl and other
/// generic clients can list a server's services and fetch the descriptors of their messages.
///
/// Each request on the stream is answered in order, echoing `host` and the request:
/// `list_services` with every service the catalog declares; `file_by_filename` and
/// `file_containing_symbol` with the file followed by its transitive imports that this stream
/// has not been sent yet; `file_containing_extension` and `all_extension_numbers_of_type` from
/// the catalog's extensions. An unknown name is an `error_response` with NOT_FOUND and the
/// stream stays open; a request setting none of the fields is INVALID_ARGUMENT.
public struct ServerReflectionService: RegistrableRPCService {
    public typealias Request = Grpc_Reflection_V1_ServerReflectionRequest
    public typealias Response = Grpc_Reflection_V1_ServerReflectionResponse

    /// The files this service describes: those given at construction plus reflection's own.
    public let catalog: ReflectionCatalog

    /// The paths the service answers on.
    public static let methods: [MethodDescriptor] = [
        Grpc_Reflection_V1_ServerReflection.Method.ServerReflectionInfo.descriptor,
        MethodDescriptor(fullyQualifiedService: "grpc.reflection.v1alpha.ServerReflection", method: "ServerReflectionInfo"),
    ]

    /// Describes the files of `fileDescriptorSets` (see ``ReflectionCatalog/init(fileDescriptorSets:)``)
    /// and the reflection protos; `list_services` names every service they declare, so pass the
    /// descriptors of exactly the services the server registers.
    public init(describing fileDescriptorSets: [[UInt8]]) throws(ReflectionCatalogError) {
        catalog = try ReflectionCatalog(fileDescriptorSets: fileDescriptorSets + [ServerReflectionFileDescriptors.fileDescriptorSet])
    }

    public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        for method in Self.methods {
            router.registerHandler(
                forMethod: method,
                deserializer: ProtobufDeserializer<Request>(),
                serializer: ProtobufSerializer<Response>()
            ) { request, _ in
                StreamingServerResponse { writer in
                    var sent = Set<String>()
                    for try await message in request.messages {
                        try await writer.write(answer(message, sent: &sent))
                    }
                    return [:]
                }
            }
        }
    }

    /// The answer to one request of a stream that has already been sent the files in `sent`.
    public func answer(_ request: Request, sent: inout Set<String>) -> Response {
        var response = Response()
        response.validHost = request.host
        response.originalRequest = request
        switch request.messageRequest {
        case .listServices:
            var list = Grpc_Reflection_V1_ListServiceResponse()
            list.service = catalog.services.map { name in
                var service = Grpc_Reflection_V1_ServiceResponse()
                service.name = name
                return service
            }
            response.listServicesResponse = list
        case .fileByFilename(let name):
            if let files = catalog.descriptors(of: name, notIn: &sent) {
                response.fileDescriptorResponse = Self.files(files)
            } else {
                response.errorResponse = Self.error(.notFound, "no file named `\(Self.quoted(name))`")
            }
        case .fileContainingSymbol(let symbol):
            if let name = catalog.file(declaring: symbol), let files = catalog.descriptors(of: name, notIn: &sent) {
                response.fileDescriptorResponse = Self.files(files)
            } else {
                response.errorResponse = Self.error(.notFound, "no file declares the symbol `\(Self.quoted(symbol))`")
            }
        case .fileContainingExtension(let ext):
            if let name = catalog.file(extending: ext.containingType, number: ext.extensionNumber),
               let files = catalog.descriptors(of: name, notIn: &sent) {
                response.fileDescriptorResponse = Self.files(files)
            } else if catalog.isMessageType(ext.containingType) {
                response.errorResponse = Self.error(.notFound, "`\(Self.quoted(ext.containingType))` has no extension numbered \(ext.extensionNumber)")
            } else {
                response.errorResponse = Self.error(.notFound, "no message type named `\(Self.quoted(ext.containingType))`")
            }
        case .allExtensionNumbersOfType(let type):
            if catalog.isMessageType(type) {
                var numbers = Grpc_Reflection_V1_ExtensionNumberResponse()
                numbers.baseTypeName = type
                numbers.extensionNumber = catalog.extensionNumbers(of: type)
                response.allExtensionNumbersResponse = numbers
            } else {
                response.errorResponse = Self.error(.notFound, "no message type named `\(Self.quoted(type))`")
            }
        case nil:
            response.errorResponse = Self.error(.invalidArgument, "the request sets none of file_by_filename, file_containing_symbol, file_containing_extension, all_extension_numbers_of_type, list_services")
        }
        return response
    }

    private static func files(_ files: [[UInt8]]) -> Grpc_Reflection_V1_FileDescriptorResponse {
        var response = Grpc_Reflection_V1_FileDescriptorResponse()
        response.fileDescriptorProto = files.map { Data($0) }
        return response
    }

    private static func error(_ code: RPCError.Code, _ message: String) -> Grpc_Reflection_V1_ErrorResponse {
        var error = Grpc_Reflection_V1_ErrorResponse()
        error.errorCode = Int32(code.rawValue)
        error.errorMessage = message
        return error
    }

    /// A client-supplied name, cut to a length that keeps the message readable.
    private static func quoted(_ name: String) -> String {
        name.count > 256 ? name.prefix(256) + "…" : name
    }
}
