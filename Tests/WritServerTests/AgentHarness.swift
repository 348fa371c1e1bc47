import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import SwiftASN1
import WritAgentAPI
import WritTestSupport
import X509

/// A node agent as the acceptance tests drive it, over the real agent API of a server process:
/// its key, and after attestation its SPIFFE ID and SVID chain.
struct TestAgent: Sendable {
    let server: ServerHarness
    let bundlePEM: String
    var key = P256.Signing.PrivateKey()
    var id = ""
    var chainDER: [[UInt8]] = []

    init(server: ServerHarness) throws {
        self.server = server
        let bundle = try server.writ(["bundle", "show", "--format", "pem"])
        guard bundle.status == 0, bundle.stdout.contains("BEGIN CERTIFICATE") else { throw TestFailure("writ bundle show failed: \(bundle.summary)") }
        bundlePEM = bundle.stdout
    }

    var port: Int {
        get throws {
            let listen = server.ready["listen"] as? String ?? ""
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
                throw TestFailure("ready.json has no agent API address: \(server.ready)")
            }
            return port
        }
    }

    /// Calls the API over TLS 1.3; with the agent SVID as client certificate when `mTLS`.
    func withClient<T: Sendable>(mTLS: Bool = true, _ body: (Writ_Agent_V1_AgentAPI.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
        let roots = TLSConfig.TrustRootsSource.certificates([.bytes(Array(bundlePEM.utf8), format: .pem)])
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        if mTLS {
            security = .mTLS(certificateChain: chainDER.map { .bytes($0, format: .der) },
                             privateKey: .bytes(Array(key.pemRepresentation.utf8), format: .pem)) { config in
                config.trustRoots = roots
                config.serverCertificateVerification = .noHostnameVerification
            }
        } else {
            security = .tls { config in
                config.trustRoots = roots
                config.serverCertificateVerification = .noHostnameVerification
            }
        }
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: try port), transportSecurity: security)
        return try await withGRPCClient(transport: transport) { client in
            try await body(Writ_Agent_V1_AgentAPI.Client(wrapping: client))
        }
    }

    /// Attests with a join token; on success the agent holds its SVID.
    mutating func attest(joinToken: String) async throws {
        let result = try await Self.attest(self, joinToken: joinToken, csr: try TestCSR.make(key))
        id = result.agentID
        chainDER = result.svidChain.map { Array($0) }
    }

    static func attest(_ agent: TestAgent, joinToken: String, csr: [UInt8]) async throws -> Writ_Agent_V1_AttestResult {
        try await agent.withClient(mTLS: false) { client in
            try await client.attest(requestProducer: { writer in
                var params = Writ_Agent_V1_AttestParams()
                params.type = "join_token"
                params.payload = Data(joinToken.utf8)
                params.csr = Data(csr)
                var request = Writ_Agent_V1_AttestRequest()
                request.params = params
                try await writer.write(request)
            }, onResponse: { response in
                for try await message in response.messages {
                    if case .result(let result)? = message.step { return result }
                }
                throw TestFailure("Attest ended without a result")
            })
        }
    }

    /// Attests with x509pop: presents `nodeChain` (concatenated DER) and answers the server's
    /// challenge with `respond(nonce)`; on success the agent holds its SVID.
    @discardableResult
    mutating func attest(x509popChain nodeChain: [UInt8], respond: @escaping @Sendable ([UInt8]) throws -> [UInt8]) async throws -> Writ_Agent_V1_AttestResult {
        let csr = try TestCSR.make(key)
        let (nonces, delivered) = AsyncStream.makeStream(of: [UInt8].self)
        let result = try await withClient(mTLS: false) { client in
            try await client.attest(requestProducer: { writer in
                var params = Writ_Agent_V1_AttestParams()
                params.type = "x509pop"
                params.payload = Data(nodeChain)
                params.csr = Data(csr)
                var request = Writ_Agent_V1_AttestRequest()
                request.params = params
                try await writer.write(request)
                // The response side feeds the server's challenge to this side of the stream.
                for await nonce in nonces {
                    var answer = Writ_Agent_V1_AttestRequest()
                    answer.challengeResponse = Data(try respond(nonce))
                    try await writer.write(answer)
                    break
                }
            }, onResponse: { response in
                defer { delivered.finish() }
                for try await message in response.messages {
                    switch message.step {
                    case .challenge(let nonce)?: delivered.yield(Array(nonce))
                    case .result(let result)?: return result
                    case nil: break
                    }
                }
                throw TestFailure("Attest ended without a result")
            })
        }
        id = result.agentID
        chainDER = result.svidChain.map { Array($0) }
        return result
    }

    /// Asks for X.509-SVIDs for these entries; one result per entry.
    func x509SVIDs(_ entryIDs: [String], csr: [UInt8]? = nil) async throws -> [Writ_Agent_V1_X509SVIDResult] {
        let csr = try csr ?? TestCSR.make(P256.Signing.PrivateKey())
        return try await withClient { client in
            var request = Writ_Agent_V1_BatchNewX509SVIDRequest()
            request.params = entryIDs.map { id in
                var params = Writ_Agent_V1_X509SVIDParams()
                params.entryID = id
                params.csr = Data(csr)
                return params
            }
            return try await client.batchNewX509SVID(request).results
        }
    }

    func jwtSVID(_ entryID: String, audience: [String] = ["https://api.example.org"]) async throws -> Writ_Agent_V1_NewJWTSVIDResponse {
        try await withClient { client in
            var request = Writ_Agent_V1_NewJWTSVIDRequest()
            request.entryID = entryID
            request.audience = audience
            return try await client.newJWTSVID(request)
        }
    }

    /// Reads a sync stream until `stop` says so (given every message so far).
    func sync(after revision: Int64 = 0, until stop: @escaping @Sendable ([Writ_Agent_V1_SyncResponse]) -> Bool) async throws -> [Writ_Agent_V1_SyncResponse] {
        try await withClient { client in
            var request = Writ_Agent_V1_SyncRequest()
            request.afterRevision = revision
            return try await client.sync(request) { response in
                var messages: [Writ_Agent_V1_SyncResponse] = []
                for try await message in response.messages {
                    messages.append(message)
                    if stop(messages) { break }
                }
                return messages
            }
        }
    }
}

/// A test precondition that did not hold.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The gRPC status code an async call failed with, or nil if it succeeded.
func rpcCode(_ body: () async throws -> Void) async -> RPCError.Code? {
    do {
        try await body()
        return nil
    } catch let error as RPCError {
        return error.code
    } catch {
        return .unknown
    }
}

/// The SPIFFE URI SANs of a DER certificate.
func uriSANs(_ der: [UInt8]) throws -> [String] {
    let certificate = try Certificate(derEncoded: der)
    guard let sans = try certificate.extensions.subjectAlternativeNames else { return [] }
    return sans.compactMap { if case .uniformResourceIdentifier(let uri) = $0 { return uri } else { return nil } }
}
