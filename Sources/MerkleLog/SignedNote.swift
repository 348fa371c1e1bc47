import Crypto
import Foundation

/// Why a note, a key or a checkpoint was refused.
public struct NoteError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// An Ed25519 key that signs notes under a name (C2SP signed-note, signature type 0x01).
public struct NoteSigner: Sendable {
    public let name: String
    public let privateKey: Curve25519.Signing.PrivateKey

    public init(name: String, privateKey: Curve25519.Signing.PrivateKey) throws(NoteError) {
        try SignedNote.checkKeyName(name)
        self.name = name
        self.privateKey = privateKey
    }

    /// A signer from its text form, `PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 ‖ seed)>`.
    public init(encoded: String) throws(NoteError) {
        // The key's base64 may hold `+`; the name may not.
        let fields = encoded.split(separator: "+", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 5, fields[0] == "PRIVATE", fields[1] == "KEY" else {
            throw NoteError("a note signer key is PRIVATE+KEY+<name>+<key id>+<key>")
        }
        guard let raw = Data(base64Encoded: fields[4]), raw.count == 33, raw.first == 0x01,
              let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw.dropFirst()) else {
            throw NoteError("the signer key of `\(fields[2])` is not base64 of 0x01 and a 32-byte Ed25519 seed")
        }
        try self.init(name: fields[2], privateKey: key)
        guard fields[3] == String(format: "%08x", keyID) else {
            throw NoteError("the signer key of `\(name)` names key id \(fields[3]), but its key has id \(String(format: "%08x", keyID))")
        }
    }

    /// The text form of the private key (keep it secret).
    public var encoded: String {
        "PRIVATE+KEY+\(name)+\(String(format: "%08x", keyID))+\(Data([0x01] + privateKey.rawRepresentation).base64EncodedString())"
    }

    /// The key that checks this signer's signatures.
    public var verifier: NoteVerifier { NoteVerifier(name: name, publicKey: privateKey.publicKey) }
    public var keyID: UInt32 { verifier.keyID }

    /// `text` (ending in a newline) with this key's signature line added.
    public func sign(_ text: String) throws(NoteError) -> String {
        try SignedNote.checkText(text)
        let signature: Data
        do { signature = try privateKey.signature(for: Data(text.utf8)) } catch { throw NoteError("Ed25519 signing failed: \(error)") }
        var id = keyID.bigEndian
        let blob = withUnsafeBytes(of: &id) { Data($0) } + signature
        return text + "\n— \(name) \(blob.base64EncodedString())\n"
    }
}

/// A public Ed25519 key that checks notes signed under its name.
public struct NoteVerifier: Sendable, Hashable {
    public let name: String
    public let publicKey: Curve25519.Signing.PublicKey

    public init(name: String, publicKey: Curve25519.Signing.PublicKey) {
        self.name = name
        self.publicKey = publicKey
    }

    /// A verifier from its text form, `<name>+<key id hex>+<base64(0x01 ‖ public key)>`.
    public init(encoded: String) throws(NoteError) {
        let fields = encoded.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 3 else { throw NoteError("a note verifier key is <name>+<key id>+<key>, found `\(encoded)`") }
        try SignedNote.checkKeyName(fields[0])
        guard fields[1].utf8.count == 8, let id = UInt32(fields[1], radix: 16) else {
            throw NoteError("the key id of `\(fields[0])` is not 8 hex digits: `\(fields[1])`")
        }
        guard let raw = Data(base64Encoded: fields[2]), let type = raw.first else {
            throw NoteError("the key of `\(fields[0])` is not base64")
        }
        guard type == 0x01 else { throw NoteError("the key of `\(fields[0])` has signature type \(type); only Ed25519 (1) is supported") }
        guard raw.count == 33, let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw.dropFirst()) else {
            throw NoteError("the key of `\(fields[0])` is not a 32-byte Ed25519 public key")
        }
        self.init(name: fields[0], publicKey: key)
        guard keyID == id else {
            throw NoteError("the key of `\(fields[0])` has key id \(String(format: "%08x", keyID)), not \(fields[1])")
        }
    }

    /// The first four bytes, big-endian, of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key).
    public var keyID: UInt32 {
        let digest = Array(SHA256.hash(data: Data(name.utf8) + [0x0A, 0x01] + publicKey.rawRepresentation))
        return UInt32(digest[0]) << 24 | UInt32(digest[1]) << 16 | UInt32(digest[2]) << 8 | UInt32(digest[3])
    }

    /// The text form.
    public var encoded: String {
        "\(name)+\(String(format: "%08x", keyID))+\(Data([0x01] + publicKey.rawRepresentation).base64EncodedString())"
    }

    public static func == (lhs: NoteVerifier, rhs: NoteVerifier) -> Bool {
        lhs.name == rhs.name && lhs.publicKey.rawRepresentation == rhs.publicKey.rawRepresentation
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(publicKey.rawRepresentation)
    }
}

/// A signed note (c2sp.org/signed-note): text ending in a newline, a blank line, then one line
/// per signature, `— <key name> <base64(key id ‖ signature)>`.
public struct SignedNote: Sendable, Hashable {
    public struct Signature: Sendable, Hashable {
        public let name: String
        public let keyID: UInt32
        public let bytes: [UInt8]
    }

    /// The signed text, its final newline included.
    public let text: String
    public let signatures: [Signature]

    /// The most signature lines a note may carry.
    public static let maximumSignatures = 100

    /// Splits a note into its text and signature lines (nothing is verified yet).
    public init(parsing note: String) throws(NoteError) {
        guard let split = note.range(of: "\n\n", options: .backwards) else {
            throw NoteError("a signed note is text, a blank line and signature lines; found no blank line")
        }
        text = String(note[..<split.lowerBound]) + "\n"
        try Self.checkText(text)
        var lines = note[split.upperBound...].split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.last == "" else { throw NoteError("a signed note ends with a newline") }
        lines.removeLast()
        guard !lines.isEmpty else { throw NoteError("a signed note has at least one signature line") }
        guard lines.count <= Self.maximumSignatures else { throw NoteError("a signed note has at most \(Self.maximumSignatures) signatures, found \(lines.count)") }
        var signatures: [Signature] = []
        for line in lines {
            guard line.hasPrefix("— ") else { throw NoteError("a signature line starts with an em dash and a space: `\(line)`") }
            let fields = line.dropFirst(2).split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 2 else { throw NoteError("a signature line is `— <name> <signature>`: `\(line)`") }
            try Self.checkKeyName(String(fields[0]))
            guard let blob = Data(base64Encoded: String(fields[1])), blob.count >= 5 else {
                throw NoteError("the signature of `\(fields[0])` is not base64 of a key id and a signature")
            }
            let id = blob.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            signatures.append(Signature(name: String(fields[0]), keyID: id, bytes: Array(blob.dropFirst(4))))
        }
        self.signatures = signatures
    }

    /// The verifiers among `verifiers` whose valid signature the note carries. A signature by a
    /// known name and key id that does not verify is an error (a forgery, not an unknown key).
    public func verified(by verifiers: [NoteVerifier]) throws(NoteError) -> [NoteVerifier] {
        var out: [NoteVerifier] = []
        for signature in signatures {
            guard let verifier = verifiers.first(where: { $0.name == signature.name && $0.keyID == signature.keyID }) else { continue }
            guard verifier.publicKey.isValidSignature(signature.bytes, for: Data(text.utf8)) else {
                throw NoteError("the signature of `\(signature.name)` (key id \(String(format: "%08x", signature.keyID))) does not verify")
            }
            if !out.contains(verifier) { out.append(verifier) }
        }
        return out
    }

    /// A key name: non-empty, no spaces or `+`.
    static func checkKeyName(_ name: String) throws(NoteError) {
        guard !name.isEmpty, !name.unicodeScalars.contains(where: { $0 == "+" || $0.properties.isWhitespace }) else {
            throw NoteError("a note key name is not empty and has no spaces or `+`: `\(name)`")
        }
    }

    /// Note text: ends in a newline, no control characters besides newlines.
    static func checkText(_ text: String) throws(NoteError) {
        guard text.hasSuffix("\n") else { throw NoteError("note text ends with a newline") }
        if let bad = text.unicodeScalars.first(where: { $0 != "\n" && ($0.value < 0x20 || $0.value == 0x7F) }) {
            throw NoteError("note text holds the control character U+\(String(format: "%04X", bad.value))")
        }
    }
}
