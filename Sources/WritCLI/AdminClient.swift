import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import WritModel
import WritServer

/// Options every admin command shares: where the server's admin socket is and how to print.
struct AdminOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The server's admin socket (env WRIT_ADMIN_SOCKET).", valueName: "path"))
    var adminSocket: String = ProcessInfo.processInfo.environment["WRIT_ADMIN_SOCKET"] ?? ServerOptions.defaultAdminSocket

    @Option(name: .long, help: "text (for people, default) or json (the API's body on stdout).")
    var output: OutputFormat = .text
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// Why an admin command failed, with the exit code CONVENTIONS.md assigns.
struct AdminFailure: Error {
    let message: String
    let exitCode: Int32

    /// Maps an API error code to an exit code: 3 not found, 4 conflict, 5 not authorized, 1 else.
    init(_ body: AdminAPI.ErrorBody) {
        message = body.message + (body.field.map { " (field `\($0)`)" } ?? "")
        switch body.code {
        case "not_found": exitCode = 3
        case "already_exists", "conflict": exitCode = 4
        case "unauthenticated", "permission_denied": exitCode = 5
        default: exitCode = 1
        }
    }

    init(_ message: String, exitCode: Int32) {
        self.message = message
        self.exitCode = exitCode
    }
}

/// Talks to the admin API over the Unix socket.
struct AdminClient {
    let socket: String
    /// Names the process behind the socket and the flag that names the socket, for messages.
    var process = "the writ server"
    var hint = "is `writ server run` running? is --admin-socket (or WRIT_ADMIN_SOCKET) right?"

    /// Sends one request; a non-2xx answer becomes an ``AdminFailure`` with the server's message.
    func send(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: Data? = nil) async throws -> Data {
        var components = URLComponents()
        components.path = path
        if !query.isEmpty { components.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) } }
        // `+` is a space in query strings: encode it.
        let pathAndQuery = (components.percentEncodedPath) + (components.percentEncodedQuery.map { "?" + $0.replacingOccurrences(of: "+", with: "%2B") } ?? "")
        guard let encodedSocket = socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics) else {
            throw AdminFailure("invalid admin socket path `\(socket)`", exitCode: 64)
        }
        var request = HTTPClientRequest(url: "http+unix://\(encodedSocket)\(pathAndQuery)")
        request.method = method
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let unreachable = "cannot reach \(process) at `\(socket)`"
        guard FileManager.default.fileExists(atPath: socket) else {
            throw AdminFailure("\(unreachable): no such socket (\(hint))", exitCode: 69)
        }
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(60))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let outcome: Result<(HTTPResponseStatus, Data), any Error>
        do {
            let response = try await client.execute(request, timeout: .seconds(60))
            outcome = .success((response.status, Data(buffer: try await response.body.collect(upTo: 64 << 20))))
        } catch {
            outcome = .failure(error)
        }
        try? await client.shutdown()
        let (status, data): (HTTPResponseStatus, Data)
        switch outcome {
        case .success(let answer): (status, data) = answer
        case .failure(let error): throw AdminFailure("\(unreachable): \(error) (\(hint))", exitCode: 69)
        }
        guard (200..<300).contains(status.code) else {
            if let error = try? AdminAPI.decoder().decode(AdminAPI.ErrorBody.self, from: data) { throw AdminFailure(error) }
            throw AdminFailure("the server answered \(status.code) without an error body", exitCode: 1)
        }
        return data
    }
}

/// Runs an admin command body and turns failures into the message on stderr and the exit code.
func runAdmin(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let failure as AdminFailure {
        var stderr = StandardError()
        print("error: \(failure.message)", to: &stderr)
        throw ExitCode(failure.exitCode)
    }
}

/// Prints JSON to stdout as the API sent it (pretty, sorted keys).
func printJSON(_ value: some Encodable) throws {
    let encoder = AdminAPI.encoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
