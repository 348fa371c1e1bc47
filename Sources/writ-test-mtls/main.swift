// writ-test-mtls: two SPIFFE workloads talking mTLS through the Swift SDK (SPIFFETLS), for
// the agent's acceptance tests. Both take their identity from the Workload API at --socket.
//
//   writ-test-mtls serve --socket S (--allow ID | --allow-one-of ID,ID… | --allow-member TD)
//       listens on 127.0.0.1 (a free port, printed as {"port": N}); for each connection whose
//       peer passes the authorizer (exactly ID, one of the IDs, or any workload of trust domain
//       TD), writes {"server_serial": hex, "peer": id} and closes.
//   writ-test-mtls connect --socket S --port N --expect ID
//       connects, requires the server to be ID, prints {"ok": true, "server_serial": …,
//       "client_serial": …} or {"ok": false, "error": …}.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import SPIFFEIdentity
import SPIFFETLS
import SPIFFEWorkloadAPI

func argument(_ name: String) -> String? {
    guard let index = CommandLine.arguments.firstIndex(of: name), index + 1 < CommandLine.arguments.count else { return nil }
    return CommandLine.arguments[index + 1]
}

func emit(_ object: [String: Any]) {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}

func serial(_ svid: WorkloadX509SVID?) -> String {
    svid.map { $0.chain[0].serialNumber.bytes.map { String(format: "%02x", $0) }.joined() } ?? ""
}

/// Writes one line to each accepted connection once the handshake is done, then closes.
final class Greeter: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let source: X509Source
    init(source: X509Source) { self.source = source }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            let channel = context.channel
            let source = self.source
            SPIFFETLSContext.peerID(of: channel).whenSuccess { peer in
                let body: [String: Any] = ["server_serial": serial(source.svid), "peer": peer?.uri ?? ""]
                let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
                channel.writeAndFlush(ByteBuffer(bytes: data + Data("\n".utf8))).whenComplete { _ in channel.close(promise: nil) }
            }
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Collects what the server sends.
final class Reader: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var received = ""
    let done: EventLoopPromise<String>
    init(done: EventLoopPromise<String>) { self.done = done }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        received += buffer.readString(length: buffer.readableBytes) ?? ""
    }
    func channelInactive(context: ChannelHandlerContext) { done.succeed(received) }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(error)
        context.close(promise: nil)
    }
}

struct ToolFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

let mode = CommandLine.arguments.dropFirst().first ?? ""
do {
    guard let socket = argument("--socket") else { throw ToolFailure("--socket is required") }
    let source = try await X509Source.start(client: try WorkloadAPIClient(endpoint: "unix://" + socket))
    let group = MultiThreadedEventLoopGroup.singleton
    switch mode {
    case "serve":
        let authorizer: SPIFFEAuthorizer
        if let allowed = argument("--allow") {
            authorizer = .id(try SPIFFEID(parsing: allowed))
        } else if let list = argument("--allow-one-of") {
            authorizer = .oneOf(Set(try list.split(separator: ",").map { try SPIFFEID(parsing: String($0)) }))
        } else if let domain = argument("--allow-member") {
            authorizer = .memberOf(try TrustDomain(parsing: domain))
        } else {
            throw ToolFailure("one of --allow, --allow-one-of and --allow-member is required")
        }
        let tls = SPIFFETLSContext(source: source, authorizer: authorizer)
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try tls.makeServerHandler())
                    try channel.pipeline.syncOperations.addHandler(Greeter(source: source))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        emit(["port": server.localAddress?.port ?? 0, "serial": serial(source.svid)])
        try await server.closeFuture.get()
    case "connect":
        guard let portText = argument("--port"), let port = Int(portText), let expected = argument("--expect") else {
            throw ToolFailure("--port and --expect are required")
        }
        let tls = SPIFFETLSContext(source: source, authorizer: .id(try SPIFFEID(parsing: expected)))
        let done = group.next().makePromise(of: String.self)
        _ = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try tls.makeClientHandler())
                    try channel.pipeline.syncOperations.addHandler(Reader(done: done))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let line = try await done.futureResult.get()
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw ToolFailure("the server sent nothing (\(line.prefix(100)))")
        }
        emit(["ok": true, "server_serial": object["server_serial"] ?? "", "peer_seen_by_server": object["peer"] ?? "", "client_serial": serial(source.svid)])
    default:
        throw ToolFailure("usage: writ-test-mtls serve|connect …")
    }
} catch {
    emit(["ok": false, "error": "\(error)"])
    exit(1)
}
