import Crypto
import SwiftASN1
import X509

/// PKCS#10 requests for tests: signed by `key`, optionally asking for `extensions` (which a
/// correct CA must ignore).
public enum TestCSR {
    public static func make(_ key: Certificate.PrivateKey, algorithm: Certificate.SignatureAlgorithm = .ecdsaWithSHA256,
                            asking extensions: Certificate.Extensions? = nil) throws -> [UInt8] {
        var attributes = CertificateSigningRequest.Attributes()
        if let extensions { attributes.insert(try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: extensions))) }
        let request = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName("request") }, privateKey: key,
            attributes: attributes, signatureAlgorithm: algorithm)
        var serializer = DER.Serializer()
        try serializer.serialize(request)
        return serializer.serializedBytes
    }

    public static func make(_ key: P256.Signing.PrivateKey, asking extensions: Certificate.Extensions? = nil) throws -> [UInt8] {
        try make(Certificate.PrivateKey(key), asking: extensions)
    }
}
