import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import WritAgentAPI

/// A node agent as acceptance tests and benchmarks drive it over the real agent API of a
/// server process (gRPC over TLS 1.3): its key, and after attestation its SPIFFE ID and SVID
/// chain. It trusts the server's bundle and, like a test client, does not check a host name.
public struct AgentDriver: Sendable {
    public let host: String
    public let port: Int
    /// The server's X.509 authorities (PEM), trusted for the server's certificate.
    public let bundlePEM: String
    public var key: P256.Signing.PrivateKey
    /// The agent's SPIFFE ID once attested.
    public var id: String = ""
    /// The agent SVID chain (leaf first, DER) once attested.
    public var chainDER: [[UInt8]] = []

    public init(host: String = "127.0.0.1", port: Int, bundlePEM: String, key: P256.Signing.PrivateKey = P256.Signing.PrivateKey()) {
        self.host = host
        self.port = port
        self.bundlePEM = bundlePEM
        self.key = key
    }

    /// Why a driven exchange did not give what a test needs.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// Calls the API over TLS 1.3; with the agent SVID as client certificate when `mTLS`.
    public func withClient<T: Sendable>(mTLS: Bool = true, _ body: (Writ_Agent_V1_AgentAPI.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
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
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: host, port: port), transportSecurity: security)
        return try await withGRPCClient(transport: transport) { client in
            try await body(Writ_Agent_V1_AgentAPI.Client(wrapping: client))
        }
    }

    /// Attests with a join token; on success the agent holds its SVID.
    public mutating func attest(joinToken: String) async throws {
        let result = try await Self.attest(self, joinToken: joinToken, csr: try TestCSR.make(key))
        id = result.agentID
        chainDER = result.svidChain.map { Array($0) }
    }

    /// One join-token attestation with `csr`, whatever its key; the server's result.
    public static func attest(_ agent: AgentDriver, joinToken: String, csr: [UInt8]) async throws -> Writ_Agent_V1_AttestResult {
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
                throw Failure("Attest ended without a result")
            })
        }
    }

    /// Attests with x509pop: presents `nodeChain` (concatenated DER) and answers the server's
    /// challenge with `respond(nonce)`; on success the agent holds its SVID.
    @discardableResult
    public mutating func attest(x509popChain nodeChain: [UInt8], respond: @escaping @Sendable ([UInt8]) throws -> [UInt8]) async throws -> Writ_Agent_V1_AttestResult {
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
                throw Failure("Attest ended without a result")
            })
        }
        id = result.agentID
        chainDER = result.svidChain.map { Array($0) }
        return result
    }

    /// Asks for X.509-SVIDs for these entries; one result per entry.
    public func x509SVIDs(_ entryIDs: [String], csr: [UInt8]? = nil) async throws -> [Writ_Agent_V1_X509SVIDResult] {
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

    /// Asks for a JWT-SVID for one entry.
    public func jwtSVID(_ entryID: String, audience: [String] = ["https://api.example.org"]) async throws -> Writ_Agent_V1_NewJWTSVIDResponse {
        try await withClient { client in
            var request = Writ_Agent_V1_NewJWTSVIDRequest()
            request.entryID = entryID
            request.audience = audience
            return try await client.newJWTSVID(request)
        }
    }

    /// Reads a sync stream until `stop` says so (given every message so far).
    public func sync(after revision: Int64 = 0, until stop: @escaping @Sendable ([Writ_Agent_V1_SyncResponse]) -> Bool) async throws -> [Writ_Agent_V1_SyncResponse] {
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

    /// Reads a sync stream, handing each message to `each` (which may keep its own state) until
    /// it returns false; keeps no messages, for syncs too large to hold twice.
    public func sync(after revision: Int64 = 0, each: @escaping @Sendable (Writ_Agent_V1_SyncResponse) async throws -> Bool) async throws {
        try await withClient { client in
            var request = Writ_Agent_V1_SyncRequest()
            request.afterRevision = revision
            try await client.sync(request) { response in
                for try await message in response.messages {
                    guard try await each(message) else { break }
                }
            }
        }
    }
}
