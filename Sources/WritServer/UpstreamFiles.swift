import Crypto
import Foundation
import SwiftASN1
import WritCA
import X509

/// The upstream CA of `--upstream-ca-cert/--upstream-ca-key`, read and checked: a PEM chain
/// whose certificates are all CAs (the one whose key signs first, the trust anchor last) and
/// the PKCS#8 key of the first one. Every server of a trust domain given the same files signs
/// its own intermediate with that key, so the shared bundle holds the one anchor.
struct UpstreamFiles: Sendable {
    let chain: [Certificate]
    let keyBytes: [UInt8]

    /// The id the key is imported under in the server's key manager: stable for one upstream
    /// certificate, so a restart finds the key it imported before.
    var keyID: String {
        var serializer = DER.Serializer()
        try? serializer.serialize(chain[0])
        return "upstream-" + AgentListenerFactory.hex(SHA256.hash(data: serializer.serializedBytes).prefix(8))
    }

    /// Nil when no upstream is configured; a ``ServerError`` naming the file and the problem
    /// when one is configured wrongly.
    static func load(_ options: ServerOptions) async throws -> UpstreamFiles? {
        guard let certPath = options.upstreamCACert, let keyPath = options.upstreamCAKey else { return nil }
        guard let certData = FileManager.default.contents(atPath: certPath) else {
            throw ServerError("`upstream.ca_cert`: cannot read `\(certPath)`")
        }
        let chain: [Certificate]
        do {
            chain = try PEMDocument.parseMultiple(pemString: String(decoding: certData, as: UTF8.self))
                .filter { $0.discriminator == "CERTIFICATE" }
                .map { try Certificate(derEncoded: $0.derBytes) }
        } catch {
            throw ServerError("`upstream.ca_cert`: `\(certPath)` is not a PEM certificate chain: \(error)")
        }
        guard !chain.isEmpty else { throw ServerError("`upstream.ca_cert`: `\(certPath)` holds no CERTIFICATE") }
        for certificate in chain {
            guard case .isCertificateAuthority? = try? certificate.extensions.basicConstraints else {
                throw ServerError("`upstream.ca_cert`: `\(certificate.subject)` in `\(certPath)` is not a CA certificate (basicConstraints CA=true)")
            }
        }
        guard let keyData = FileManager.default.contents(atPath: keyPath) else {
            throw ServerError("`upstream.ca_key`: cannot read `\(keyPath)`")
        }
        let files = UpstreamFiles(chain: chain, keyBytes: Array(keyData))
        // The key must be the first certificate's: import it into a throwaway key manager to see.
        let probe = MemoryKeyManager()
        let key: ManagedKey
        do { key = try await probe.importKey(id: "probe", pkcs8DER: files.keyBytes) } catch {
            throw ServerError("`upstream.ca_key`: `\(keyPath)`: \(error.message)")
        }
        guard key.publicKey == chain[0].publicKey else {
            throw ServerError("`upstream.ca_key`: the key in `\(keyPath)` is not the key of `\(chain[0].subject)`, the first certificate of `\(certPath)`")
        }
        return files
    }

    /// Imports the key into `keys` (once) and returns the CA's view of the upstream.
    func attach(to keys: any KeyManager) async throws -> UpstreamCA {
        if (try? await keys.key(id: keyID)) == nil {
            do { _ = try await keys.importKey(id: keyID, pkcs8DER: keyBytes) } catch {
                throw ServerError("cannot store the upstream CA key: \(error.message)")
            }
        }
        return UpstreamCA(chain: chain, keyID: keyID)
    }
}
