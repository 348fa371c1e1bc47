import Foundation
import SPIFFEIdentity
import WritConfig

/// What `writ server run` is told: where its data lives, which trust domain it is the authority
/// of, which datastore to use and who may administer it.
public struct ServerOptions: Sendable {
    /// The admin socket when none is given (also the CLI's default).
    public static let defaultAdminSocket = "/tmp/writ-server/admin.sock"

    /// Holds the SQLite datastore (by default), keys and `ready.json`.
    public var dataDirectory: String
    public var trustDomain: TrustDomain
    /// `sqlite:<path>` or `postgres://…`; nil: `sqlite:<data-dir>/datastore.sqlite3`.
    public var datastore: String?
    /// The admin API's Unix socket.
    public var adminSocket: String
    /// Besides root and the server's own user, the uids allowed on the admin socket.
    public var adminUIDs: [UInt32]
    /// Gids whose members are allowed on the admin socket.
    public var adminGIDs: [UInt32]
    /// The admin API's optional TCP listener (HTTPS, TLS 1.3, the caller presents an X.509-SVID);
    /// nil: the admin API is on the Unix socket only.
    public var adminListen: ListenAddress?
    /// SPIFFE IDs allowed on the TCP admin listener besides those of `admin: true` entries.
    public var adminIDs: [SPIFFEID]
    /// PEM file of the upstream CA chain (the certificate whose key signs first, the trust
    /// anchor last); with ``upstreamCAKey`` every intermediate is signed by that key and the
    /// anchor replaces the self-signed root. Nil: self-signed roots.
    public var upstreamCACert: String?
    /// PEM (PKCS#8) file of the upstream CA's private key.
    public var upstreamCAKey: String?
    /// The HTTP listener for `/healthz`, `/readyz` and `/metrics`.
    public var httpListen: ListenAddress
    /// How often expired entries and join tokens are deleted.
    public var pruneInterval: Duration
    /// The agent API's listener (gRPC over TLS 1.3).
    public var listen: ListenAddress
    /// Lifetime of agent SVIDs.
    public var agentSVIDTTL: Duration
    /// Default lifetime of workload X.509-SVIDs.
    public var x509SVIDTTL: Duration
    /// Default lifetime of JWT-SVIDs.
    public var jwtSVIDTTL: Duration
    /// Attestations allowed per source address per minute.
    public var attestRatePerMinute: Int
    /// PEM file of the CAs trusted to vouch for nodes in x509pop attestation; nil refuses x509pop.
    public var x509popCABundle: String?

    public init(dataDirectory: String, trustDomain: TrustDomain, datastore: String? = nil, adminSocket: String = ServerOptions.defaultAdminSocket,
                adminUIDs: [UInt32] = [], adminGIDs: [UInt32] = [], httpListen: ListenAddress = try! ListenAddress(parsing: "127.0.0.1:8080"),
                pruneInterval: Duration = .seconds(60), listen: ListenAddress = try! ListenAddress(parsing: "0.0.0.0:8081"),
                agentSVIDTTL: Duration = .seconds(3600), x509SVIDTTL: Duration = .seconds(3600), jwtSVIDTTL: Duration = .seconds(300),
                attestRatePerMinute: Int = 60, x509popCABundle: String? = nil, adminListen: ListenAddress? = nil, adminIDs: [SPIFFEID] = [],
                upstreamCACert: String? = nil, upstreamCAKey: String? = nil) {
        self.dataDirectory = dataDirectory
        self.trustDomain = trustDomain
        self.datastore = datastore
        self.adminSocket = adminSocket
        self.adminUIDs = adminUIDs
        self.adminGIDs = adminGIDs
        self.httpListen = httpListen
        self.pruneInterval = pruneInterval
        self.listen = listen
        self.agentSVIDTTL = agentSVIDTTL
        self.x509SVIDTTL = x509SVIDTTL
        self.jwtSVIDTTL = jwtSVIDTTL
        self.attestRatePerMinute = attestRatePerMinute
        self.x509popCABundle = x509popCABundle
        self.adminListen = adminListen
        self.adminIDs = adminIDs
        self.upstreamCACert = upstreamCACert
        self.upstreamCAKey = upstreamCAKey
    }

    /// The datastore URL in effect.
    public var datastoreURL: String {
        datastore ?? "sqlite:" + (dataDirectory as NSString).appendingPathComponent("datastore.sqlite3")
    }
}

/// Why the server could not start or serve; the message says what to fix.
public struct ServerError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
