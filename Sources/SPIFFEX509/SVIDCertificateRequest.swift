import Crypto
import _CryptoExtras
import SwiftASN1
import X509

/// A PKCS#10 certificate signing request accepted for an X.509-SVID: its signature verified
/// with its own key, and its key of an accepted type. Only the public key is ever used: the
/// subject, requested SANs, basic constraints and any other requested extension are ignored,
/// so a CSR cannot ask for another identity or for CA powers.
public struct SVIDCertificateRequest: Sendable {
    /// The key the SVID will certify.
    public let publicKey: Certificate.PublicKey

    /// Parses a DER CSR, verifies its signature and checks its key.
    public init(derEncoded bytes: [UInt8]) throws(X509SVIDError) {
        let request: CertificateSigningRequest
        do {
            request = try CertificateSigningRequest(derEncoded: bytes)
        } catch {
            // swift-certificates refuses small RSA keys while parsing: name that reason.
            if let bits = Self.rsaModulusBits(inRequest: bytes), bits < SVIDKeyPolicy.minimumRSABits {
                throw X509SVIDError(.unsupportedKey, "RSA key of \(bits) bits is too small: at least \(SVIDKeyPolicy.minimumRSABits) bits are required")
            }
            throw X509SVIDError(.malformedRequest, "certificate request is not a DER PKCS#10 request")
        }
        try self.init(request)
    }

    /// Parses a PEM `CERTIFICATE REQUEST`.
    public init(pemEncoded text: String) throws(X509SVIDError) {
        let document: PEMDocument
        do {
            document = try PEMDocument(pemString: text)
        } catch {
            throw X509SVIDError(.malformedRequest, "certificate request is not PEM")
        }
        guard document.discriminator == "CERTIFICATE REQUEST" || document.discriminator == "NEW CERTIFICATE REQUEST" else {
            throw X509SVIDError(.malformedRequest, "PEM block is `\(document.discriminator)`, expected `CERTIFICATE REQUEST`")
        }
        try self.init(derEncoded: document.derBytes)
    }

    /// The modulus size of an RSA key in a request that swift-certificates would not parse.
    static func rsaModulusBits(inRequest bytes: [UInt8]) -> Int? {
        let rsaEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 1]
        guard let root = try? DER.parse(bytes), case .constructed(let top) = root.content,
              let info = top.first(where: { _ in true }), case .constructed(let infoNodes) = info.content else { return nil }
        let fields = Array(infoNodes)
        guard fields.count >= 3, case .constructed(let spkiNodes) = fields[2].content else { return nil }
        let spki = Array(spkiNodes)
        guard spki.count == 2, case .constructed(let algNodes) = spki[0].content,
              let oidNode = algNodes.first(where: { _ in true }),
              let oid = try? ASN1ObjectIdentifier(derEncoded: oidNode), oid == rsaEncryption,
              let bits = try? ASN1BitString(derEncoded: spki[1]),
              let key = try? DER.parse(bits.bytes), case .constructed(let keyNodes) = key.content,
              let modulusNode = keyNodes.first(where: { _ in true }),
              let modulus = try? ArraySlice<UInt8>(derEncoded: modulusNode) else { return nil }
        let significant = modulus.drop(while: { $0 == 0 })
        guard let first = significant.first else { return 0 }
        return (significant.count - 1) * 8 + (8 - first.leadingZeroBitCount)
    }

    /// Checks a parsed request.
    public init(_ request: CertificateSigningRequest) throws(X509SVIDError) {
        try SVIDKeyPolicy.check(request.publicKey)
        guard request.publicKey.isValidSignature(request.signature, for: request) else {
            throw X509SVIDError(.badRequestSignature, "certificate request signature does not verify with the request's own public key")
        }
        publicKey = request.publicKey
    }
}

/// The keys Writ certifies in SVIDs: EC P-256, EC P-384 and RSA of 2048 bits or more.
public enum SVIDKeyPolicy {
    /// The smallest RSA modulus accepted, in bits.
    public static let minimumRSABits = 2048

    /// Refuses any other key with the reason.
    public static func check(_ key: Certificate.PublicKey) throws(X509SVIDError) {
        if P256.Signing.PublicKey(key) != nil || P384.Signing.PublicKey(key) != nil { return }
        if let rsa = _RSA.Signing.PublicKey(key) {
            guard rsa.keySizeInBits >= minimumRSABits else {
                throw X509SVIDError(.unsupportedKey, "RSA key of \(rsa.keySizeInBits) bits is too small: at least \(minimumRSABits) bits are required")
            }
            return
        }
        if P521.Signing.PublicKey(key) != nil {
            throw X509SVIDError(.unsupportedKey, "EC P-521 keys are not accepted for SVIDs: use P-256, P-384 or RSA ≥ 2048")
        }
        throw X509SVIDError(.unsupportedKey, "key type `\(key)` is not accepted for SVIDs: use P-256, P-384 or RSA ≥ 2048")
    }

    /// Whether the key is RSA (leaves then also get keyEncipherment).
    public static func isRSA(_ key: Certificate.PublicKey) -> Bool {
        _RSA.Signing.PublicKey(key) != nil
    }
}
