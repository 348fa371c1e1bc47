import Crypto
import Foundation
import X509

func makeSelfSigned(_ key: P256.Signing.PrivateKey) throws -> Certificate {
    let subject = try DistinguishedName { OrganizationName("example.org") }
    return try Certificate(
        version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
        notValidBefore: Date(timeIntervalSince1970: 1_800_000_000), notValidAfter: Date(timeIntervalSince1970: 1_990_000_000),
        issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
        extensions: try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
        },
        issuerPrivateKey: .init(key))
}
