import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import SwiftASN1
import WritAgentAPI
import WritTestSupport
import X509

/// A node agent driven against one ``ServerHarness``: an ``AgentDriver`` pointed at the
/// server's agent API address with the bundle `writ bundle show` prints.
@dynamicMemberLookup
struct TestAgent: Sendable {
    let server: ServerHarness
    var driver: AgentDriver

    init(server: ServerHarness) async throws {
        self.server = server
        let bundle = try await server.writ(["bundle", "show", "--format", "pem"])
        guard bundle.status == 0, bundle.stdout.contains("BEGIN CERTIFICATE") else { throw TestFailure("writ bundle show failed: \(bundle.summary)") }
        let listen = server.ready["listen"] as? String ?? ""
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            throw TestFailure("ready.json has no agent API address: \(server.ready)")
        }
        driver = AgentDriver(port: port, bundlePEM: bundle.stdout)
    }

    subscript<T>(dynamicMember path: WritableKeyPath<AgentDriver, T>) -> T {
        get { driver[keyPath: path] }
        set { driver[keyPath: path] = newValue }
    }

    subscript<T>(dynamicMember path: KeyPath<AgentDriver, T>) -> T { driver[keyPath: path] }

    func withClient<T: Sendable>(mTLS: Bool = true, _ body: (Writ_Agent_V1_AgentAPI.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
        try await driver.withClient(mTLS: mTLS, body)
    }

    mutating func attest(joinToken: String) async throws { try await driver.attest(joinToken: joinToken) }

    static func attest(_ agent: TestAgent, joinToken: String, csr: [UInt8]) async throws -> Writ_Agent_V1_AttestResult {
        try await AgentDriver.attest(agent.driver, joinToken: joinToken, csr: csr)
    }

    @discardableResult
    mutating func attest(x509popChain nodeChain: [UInt8], respond: @escaping @Sendable ([UInt8]) throws -> [UInt8]) async throws -> Writ_Agent_V1_AttestResult {
        try await driver.attest(x509popChain: nodeChain, respond: respond)
    }

    func x509SVIDs(_ entryIDs: [String], csr: [UInt8]? = nil) async throws -> [Writ_Agent_V1_X509SVIDResult] {
        try await driver.x509SVIDs(entryIDs, csr: csr)
    }

    func jwtSVID(_ entryID: String, audience: [String] = ["https://api.example.org"]) async throws -> Writ_Agent_V1_NewJWTSVIDResponse {
        try await driver.jwtSVID(entryID, audience: audience)
    }

    func sync(after revision: Int64 = 0, until stop: @escaping @Sendable ([Writ_Agent_V1_SyncResponse]) -> Bool) async throws -> [Writ_Agent_V1_SyncResponse] {
        try await driver.sync(after: revision, until: stop)
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
