import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import SPIFFEBundle
import SPIFFEIdentity
import SPIFFEWorkloadProto
import SwiftASN1
import X509

/// An X.509-SVID as the Workload API delivers it: the certificate chain (leaf first) and its
/// private key, checked to belong together.
public struct WorkloadX509SVID: Sendable {
    public let id: SPIFFEID
    public let chain: [Certificate]
    /// The chain as received, DER, leaf first.
    public let chainDER: [[UInt8]]
    /// The private key, PKCS#8 DER.
    public let privateKeyPKCS8: [UInt8]
    public let hint: String
}

/// A JWT-SVID as the Workload API delivers it (not validated here: its audience is the
/// receiver's to check).
public struct WorkloadJWTSVID: Sendable, Hashable {
    public let id: SPIFFEID
    /// The compact JWS.
    public let token: String
    public let hint: String
}

/// One FetchX509SVID message: the caller's SVIDs (the first is the default) and the bundles
/// to verify peers with, its own trust domain's and the federated ones, by trust domain.
public struct X509Context: Sendable {
    public let svids: [WorkloadX509SVID]
    public let bundles: [TrustDomain: TrustBundle]

    /// The default SVID (the first).
    public var defaultSVID: WorkloadX509SVID { svids[0] }
}

/// A client of the SPIFFE Workload API (a `writ agent`, SPIRE's agent, any conforming
/// implementation) on its Unix socket. Every call sends the `workload.spiffe.io: true` header
/// the spec requires, and every answer is parsed and checked before it is returned.
public struct WorkloadAPIClient: Sendable {
    /// The socket path.
    public let socketPath: String

    /// A client for `endpoint`: `unix:///abs/path`, `unix:/abs/path` or an absolute path.
    public init(endpoint: String) throws(WorkloadAPIError) {
        var path = endpoint
        if path.hasPrefix("unix://") { path = String(path.dropFirst(7)) } else if path.hasPrefix("unix:") { path = String(path.dropFirst(5)) }
        guard path.hasPrefix("/"), !path.hasPrefix("//") else {
            throw WorkloadAPIError(.invalidEndpoint, "invalid Workload API endpoint `\(endpoint)`: use unix:///absolute/path")
        }
        socketPath = path
    }

    /// A client for `SPIFFE_ENDPOINT_SOCKET`.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws(WorkloadAPIError) -> WorkloadAPIClient {
        guard let value = environment["SPIFFE_ENDPOINT_SOCKET"], !value.isEmpty else {
            throw WorkloadAPIError(.invalidEndpoint, "SPIFFE_ENDPOINT_SOCKET is not set")
        }
        return try WorkloadAPIClient(endpoint: value)
    }

    static let securityHeader: Metadata = ["workload.spiffe.io": "true"]

    // MARK: calls

    /// The caller's current X.509 context (the first message of FetchX509SVID).
    public func fetchX509Context() async throws(WorkloadAPIError) -> X509Context {
        try await call { client in
            try await client.fetchX509SVID(X509SVIDRequest(), metadata: Self.securityHeader) { response in
                for try await message in response.messages { return try Self.context(message) }
                throw WorkloadAPIError(.malformedResponse, "the FetchX509SVID stream ended without a message")
            }
        }
    }

    /// Follows FetchX509SVID: `handle` gets each context (a new one on every rotation or
    /// change) until it returns false; the stream's end with an error is thrown.
    public func watchX509Contexts(_ handle: @escaping @Sendable (X509Context) async throws -> Bool) async throws(WorkloadAPIError) {
        try await call { client in
            try await client.fetchX509SVID(X509SVIDRequest(), metadata: Self.securityHeader) { response in
                for try await message in response.messages {
                    guard try await handle(try Self.context(message)) else { return }
                }
            }
        }
    }

    /// The X.509 bundles by trust domain (the first message of FetchX509Bundles).
    public func fetchX509Bundles() async throws(WorkloadAPIError) -> [TrustDomain: TrustBundle] {
        try await call { client in
            try await client.fetchX509Bundles(X509BundlesRequest(), metadata: Self.securityHeader) { response in
                for try await message in response.messages {
                    return try Self.bundles(message.bundles) { der, domain throws(TrustBundleError) in try TrustBundle.parseX509Authorities(der: der, trustDomain: domain) }
                }
                throw WorkloadAPIError(.malformedResponse, "the FetchX509Bundles stream ended without a message")
            }
        }
    }

    /// The JWT bundles by trust domain (the first message of FetchJWTBundles).
    public func fetchJWTBundles() async throws(WorkloadAPIError) -> [TrustDomain: TrustBundle] {
        try await call { client in
            try await client.fetchJWTBundles(JWTBundlesRequest(), metadata: Self.securityHeader) { response in
                for try await message in response.messages {
                    return try Self.bundles(message.bundles) { json, domain throws(TrustBundleError) in try TrustBundle.parseJWKS(json, trustDomain: domain) }
                }
                throw WorkloadAPIError(.malformedResponse, "the FetchJWTBundles stream ended without a message")
            }
        }
    }

    /// Follows FetchJWTBundles: `handle` gets the JWT bundles by trust domain (again on every
    /// change) until it returns false; the stream's end with an error is thrown.
    public func watchJWTBundles(_ handle: @escaping @Sendable ([TrustDomain: TrustBundle]) async throws -> Bool) async throws(WorkloadAPIError) {
        try await call { client in
            try await client.fetchJWTBundles(JWTBundlesRequest(), metadata: Self.securityHeader) { response in
                for try await message in response.messages {
                    let bundles = try Self.bundles(message.bundles) { json, domain throws(TrustBundleError) in try TrustBundle.parseJWKS(json, trustDomain: domain) }
                    guard try await handle(bundles) else { return }
                }
            }
        }
    }

    /// JWT-SVIDs for `audience`: for the identity `spiffeID` when given (PermissionDenied when
    /// the caller has no such identity), else one for each of the caller's identities, the
    /// default first.
    public func fetchJWTSVIDs(audience: [String], spiffeID: SPIFFEID? = nil) async throws(WorkloadAPIError) -> [WorkloadJWTSVID] {
        try await call { client in
            var request = JWTSVIDRequest()
            request.audience = audience
            request.spiffeID = spiffeID?.uri ?? ""
            let response = try await client.fetchJWTSVID(request, metadata: Self.securityHeader)
            guard !response.svids.isEmpty else { throw WorkloadAPIError(.malformedResponse, "FetchJWTSVID sent no SVIDs") }
            return try response.svids.map { svid throws(WorkloadAPIError) in
                do { return WorkloadJWTSVID(id: try SPIFFEID(parsing: svid.spiffeID), token: svid.svid, hint: svid.hint) } catch {
                    throw WorkloadAPIError(.malformedResponse, "a JWT-SVID names an invalid SPIFFE ID `\(svid.spiffeID.prefix(64))`")
                }
            }
        }
    }

    /// Asks the agent to validate a JWT-SVID for `audience`; its SPIFFE ID when valid.
    public func validateJWTSVID(_ token: String, audience: String) async throws(WorkloadAPIError) -> SPIFFEID {
        try await call { client in
            var request = ValidateJWTSVIDRequest()
            request.svid = token
            request.audience = audience
            let response = try await client.validateJWTSVID(request, metadata: Self.securityHeader)
            do { return try SPIFFEID(parsing: response.spiffeID) } catch {
                throw WorkloadAPIError(.malformedResponse, "the agent validated the token for an invalid SPIFFE ID `\(response.spiffeID.prefix(64))`")
            }
        }
    }

    // MARK: plumbing

    private func call<T: Sendable>(_ body: (SpiffeWorkloadAPI.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws(WorkloadAPIError) -> T {
        do {
            let transport = try HTTP2ClientTransport.Posix(target: .unixDomainSocket(path: socketPath), transportSecurity: .plaintext)
            return try await withGRPCClient(transport: transport) { client in
                try await body(SpiffeWorkloadAPI.Client(wrapping: client))
            }
        } catch let error as WorkloadAPIError {
            throw error
        } catch let error as RPCError {
            throw WorkloadAPIError(Self.code(error.code), error.message)
        } catch {
            throw WorkloadAPIError(.unavailable, "the Workload API at `\(socketPath)` failed: \(error)")
        }
    }

    static func code(_ code: RPCError.Code) -> WorkloadAPIError.Code {
        switch code {
        case .invalidArgument: return .invalidArgument
        case .permissionDenied: return .permissionDenied
        case .unauthenticated: return .unauthenticated
        case .unavailable: return .unavailable
        case .unimplemented: return .unimplemented
        case .deadlineExceeded: return .deadlineExceeded
        default: return .other
        }
    }

    static func context(_ message: X509SVIDResponse) throws(WorkloadAPIError) -> X509Context {
        guard !message.svids.isEmpty else { throw WorkloadAPIError(.malformedResponse, "FetchX509SVID sent no SVIDs") }
        var svids: [WorkloadX509SVID] = []
        var bundles: [TrustDomain: TrustBundle] = [:]
        for (index, svid) in message.svids.enumerated() {
            let id: SPIFFEID
            do { id = try SPIFFEID(parsing: svid.spiffeID) } catch {
                throw WorkloadAPIError(.malformedResponse, "SVID \(index) has an invalid SPIFFE ID: \(error.message)")
            }
            let chain: [Certificate]
            let bundle: TrustBundle
            do {
                chain = try TrustBundle.certificates(concatenatedDER: Array(svid.x509Svid))
                bundle = try TrustBundle.parseX509Authorities(der: Array(svid.bundle), trustDomain: id.trustDomain)
            } catch {
                throw WorkloadAPIError(.malformedResponse, "SVID \(index) (`\(id)`): \(error.message)")
            }
            guard let leaf = chain.first else { throw WorkloadAPIError(.malformedResponse, "SVID \(index) (`\(id)`) has an empty chain") }
            let key: Certificate.PrivateKey
            do { key = try Certificate.PrivateKey(derBytes: Array(svid.x509SvidKey)) } catch {
                throw WorkloadAPIError(.malformedResponse, "SVID \(index) (`\(id)`): the key is not PKCS#8 DER")
            }
            guard key.publicKey == leaf.publicKey else {
                throw WorkloadAPIError(.malformedResponse, "SVID \(index) (`\(id)`): the key does not belong to the leaf certificate")
            }
            let chainDER = chain.map(TrustBundle.der)
            svids.append(WorkloadX509SVID(id: id, chain: chain, chainDER: chainDER, privateKeyPKCS8: Array(svid.x509SvidKey), hint: svid.hint))
            bundles[id.trustDomain] = bundle
        }
        for (name, der) in message.federatedBundles {
            do {
                let domain = try TrustDomain(parsing: name)
                bundles[domain] = try TrustBundle.parseX509Authorities(der: Array(der), trustDomain: domain)
            } catch {
                throw WorkloadAPIError(.malformedResponse, "federated bundle `\(name.prefix(64))`: \(error)")
            }
        }
        return X509Context(svids: svids, bundles: bundles)
    }

    static func bundles(_ map: [String: Data], _ parse: ([UInt8], TrustDomain) throws(TrustBundleError) -> TrustBundle) throws(WorkloadAPIError) -> [TrustDomain: TrustBundle] {
        var result: [TrustDomain: TrustBundle] = [:]
        for (name, bytes) in map {
            do {
                let domain = try TrustDomain(parsing: name)
                guard name == domain.id.uri else { throw WorkloadAPIError(.malformedResponse, "bundle key `\(name.prefix(64))` is not `spiffe://<trust domain>`") }
                result[domain] = try parse(Array(bytes), domain)
            } catch let error as WorkloadAPIError {
                throw error
            } catch {
                throw WorkloadAPIError(.malformedResponse, "bundle `\(name.prefix(64))`: \(error)")
            }
        }
        return result
    }
}
