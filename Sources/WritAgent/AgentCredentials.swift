import Crypto
import Foundation
import SPIFFEBundle
import SPIFFEIdentity
import SPIFFEX509
import SwiftASN1
import WritCA
import X509
#if canImport(Glibc)
import Glibc
#endif

/// The agent's own identity: its SVID chain and key, kept in the data directory (key and chain
/// 0600, written atomically) so that a restart needs no new join token.
public struct AgentCredentials: Sendable {
    public let id: SPIFFEID
    /// The agent SVID chain, DER, leaf first.
    public let chainDER: [[UInt8]]
    public let key: P256.Signing.PrivateKey
    public let notBefore: Date
    public let notAfter: Date

    /// Checks that `chainDER`'s leaf carries one SPIFFE ID and `key`'s public key.
    public init(chainDER: [[UInt8]], key: P256.Signing.PrivateKey) throws(AgentError) {
        guard let first = chainDER.first, let leaf = try? Certificate(derEncoded: first) else {
            throw AgentError("the agent SVID chain is empty or not DER X.509")
        }
        guard let id = X509SVIDVerifier.claimedID(leaf), !id.isRoot else { throw AgentError("the agent SVID carries no SPIFFE ID") }
        guard leaf.publicKey == Certificate.PublicKey(key.publicKey) else { throw AgentError("the agent SVID does not carry the agent key") }
        self.id = id
        self.chainDER = chainDER
        self.key = key
        self.notBefore = leaf.notValidBefore
        self.notAfter = leaf.notValidAfter
    }

    /// When to renew: half-way through the SVID's life.
    public var renewAt: Date { notBefore.addingTimeInterval(notAfter.timeIntervalSince(notBefore) / 2) }

    static let chainFile = "agent-svid.pem"
    static let keyFile = "agent-key.pem"
    static let bundleFile = "bundle.pem"

    /// The stored credentials, or nil when there are none (a half-written pair is an error).
    public static func load(from directory: String) throws(AgentError) -> AgentCredentials? {
        let chainPath = (directory as NSString).appendingPathComponent(chainFile)
        let keyPath = (directory as NSString).appendingPathComponent(keyFile)
        let (chainText, keyText) = (FileManager.default.contents(atPath: chainPath), FileManager.default.contents(atPath: keyPath))
        if chainText == nil, keyText == nil { return nil }
        guard let chainText, let keyText else {
            throw AgentError("`\(chainPath)` and `\(keyPath)` go together; one is missing: delete the other to attest again")
        }
        let chain: [Certificate]
        do { chain = try TrustBundle.certificates(pem: String(decoding: chainText, as: UTF8.self)) } catch {
            throw AgentError("`\(chainPath)`: \(error.message)")
        }
        let key: P256.Signing.PrivateKey
        do { key = try P256.Signing.PrivateKey(pemRepresentation: String(decoding: keyText, as: UTF8.self)) } catch {
            throw AgentError("`\(keyPath)` is not a P-256 private key in PEM")
        }
        return try AgentCredentials(chainDER: chain.map(TrustBundle.der), key: key)
    }

    /// Stores the credentials (replacing the previous ones atomically, file by file).
    public func save(to directory: String) throws(AgentError) {
        let pem = chainDER.map { PEMDocument(type: "CERTIFICATE", derBytes: $0).pemString + "\n" }.joined()
        try AgentFiles.writeAtomically(Array(key.pemRepresentation.utf8), to: (directory as NSString).appendingPathComponent(Self.keyFile), mode: 0o600)
        try AgentFiles.writeAtomically(Array(pem.utf8), to: (directory as NSString).appendingPathComponent(Self.chainFile), mode: 0o600)
    }

    /// The bundle authorities the agent last trusted, if stored.
    public static func loadBundle(from directory: String) throws(AgentError) -> [Certificate]? {
        let path = (directory as NSString).appendingPathComponent(bundleFile)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do { return try TrustBundle.certificates(pem: String(decoding: data, as: UTF8.self)) } catch {
            throw AgentError("`\(path)`: \(error.message)")
        }
    }

    /// Stores the authorities the agent trusts from now on.
    public static func saveBundle(_ bundle: TrustBundle, to directory: String) throws(AgentError) {
        try AgentFiles.writeAtomically(Array(bundle.x509AuthoritiesPEM().utf8), to: (directory as NSString).appendingPathComponent(bundleFile), mode: 0o644)
    }
}

/// Files the agent writes: whole or not at all, with their mode from creation on
/// (``AtomicFile``, shared with the CA's key files).
enum AgentFiles {
    static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t) throws(AgentError) {
        do { try AtomicFile.write(bytes, to: path, mode: mode) } catch {
            throw AgentError("cannot write `\(path)`: \(error.message)")
        }
    }
}
