import Crypto
import Foundation
import MerkleLog
import Testing

/// C2SP signed notes and checkpoints, held to the published examples: Go's `sumdb/note`
/// documentation and tests (the PeterNeumann and EnochRoot keys) and the signed-note spec.
@Suite struct SignedNoteTests {
    static let peterSigner = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    static let peterVerifier = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    static let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    static let peterLine = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    static let enochLine = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"

    @Test func thePublishedExampleSignsAndOpens() throws {
        let signer = try NoteSigner(encoded: Self.peterSigner)
        #expect(signer.keyID == 0xc74f20a3)
        #expect(signer.encoded == Self.peterSigner)
        #expect(signer.verifier.encoded == Self.peterVerifier)
        #expect(try NoteVerifier(encoded: Self.peterVerifier) == signer.verifier)
        // Ed25519 is deterministic: the same bytes as Go's note.Sign.
        #expect(try signer.sign(Self.text) == Self.text + "\n" + Self.peterLine)

        // Two signatures, only one key known: the unknown one is ignored, the known one verified.
        let note = try SignedNote(parsing: Self.text + "\n" + Self.peterLine + Self.enochLine)
        #expect(note.text == Self.text && note.signatures.map(\.name) == ["PeterNeumann", "EnochRoot"])
        #expect(try note.verified(by: [signer.verifier]) == [signer.verifier])
        let enoch = try NoteVerifier(encoded: "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop")
        #expect(try note.verified(by: [enoch, signer.verifier]).count == 2)

        // The spec's own example.
        let spec = try NoteVerifier(encoded: "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
        let example = try SignedNote(parsing: "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n")
        #expect(try example.verified(by: [spec]) == [spec])
    }

    @Test func forgeriesAndMalformedNotesAreRefused() throws {
        let signer = try NoteSigner(encoded: Self.peterSigner)
        // Text changed after signing: the known key's signature fails, which is an error.
        let tampered = try SignedNote(parsing: Self.text.replacingOccurrences(of: "answer", with: "question") + "\n" + Self.peterLine)
        #expect(throws: NoteError.self) { try tampered.verified(by: [signer.verifier]) }
        // A key with the same name but another id is a different key: ignored, so nothing verifies.
        let other = try NoteSigner(name: "PeterNeumann", privateKey: Curve25519.Signing.PrivateKey())
        #expect(try SignedNote(parsing: Self.text + "\n" + Self.peterLine).verified(by: [other.verifier]).isEmpty)
        for bad in [
            Self.text + Self.peterLine,                                  // no blank line
            Self.text + "\n" + Self.peterLine.dropLast(),                // no final newline
            Self.text + "\n",                                            // no signature
            Self.text + "\n" + "- PeterNeumann abc=\n",                  // hyphen, not an em dash
            Self.text + "\n" + "— Peter Neumann x08go/ZJ\n",            // a space in the name
            Self.text + "\n" + "— PeterNeumann AAAA\n",                  // shorter than a key id and one byte
            "tab\there\n\n" + Self.peterLine,                            // a control character in the text
            Self.text + "\n" + String(repeating: Self.peterLine, count: 101),
        ] {
            #expect(throws: NoteError.self, "\(bad)") { try SignedNote(parsing: bad) }
        }
        for bad in ["PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",   // wrong id
                    "PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",   // type 2
                    "PeterNeumann+c74f20a3", "Peter+Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"] {
            #expect(throws: NoteError.self, "\(bad)") { try NoteVerifier(encoded: bad) }
        }
        #expect(throws: NoteError.self) { try NoteSigner(encoded: "PRIVATE+KEY+PeterNeumann+00000000+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz") }
        #expect(throws: NoteError.self) { try signer.sign("no final newline") }
    }

    @Test func checkpointsAreSignedNotes() throws {
        // Computed with Python's cryptography from the PeterNeumann seed under the name
        // example.com/log, for the CCTV tree of 16 leaves (not a published vector).
        let signer = try NoteSigner(encoded: "PRIVATE+KEY+example.com/log+baa06b0f+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
        #expect(signer.verifier.encoded == "example.com/log+baa06b0f+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
        let root = try #require(MerkleHash(base64: "CXGcbYyZRw8qK9HP+Uz71/U/8TjowWFmnIX5psYUAxM="))
        let checkpoint = try Checkpoint(origin: "example.com/log", size: 16, root: root)
        let note = try signer.sign(checkpoint.text)
        #expect(note == "example.com/log\n16\nCXGcbYyZRw8qK9HP+Uz71/U/8TjowWFmnIX5psYUAxM=\n\n— example.com/log uqBrD2UOS/TxoYGS1vB02Xd5u+L0plBnk5A/7NqOpKmZMTfdFSyGJtbBTF9NuOA5tikEGwhNHgW93zzdr5p0AA10hgM=\n")
        let opened = try Checkpoint.open(note, verifiers: [signer.verifier], origin: "example.com/log")
        #expect(opened.checkpoint == checkpoint && opened.signedBy == [signer.verifier])
        #expect(throws: NoteError.self) { try Checkpoint.open(note, verifiers: [signer.verifier], origin: "example.com/other") }
        #expect(throws: NoteError.self) { try Checkpoint.open(note, verifiers: [try NoteSigner(name: "example.com/log", privateKey: .init()).verifier]) }
        // Extension lines round-trip; malformed bodies are refused with the reason.
        let extended = try Checkpoint(origin: "example.com/log", size: 0, root: .empty, extensions: ["writ-key-rotation 2"])
        #expect(try Checkpoint(text: extended.text) == extended)
        #expect(extended.text == "example.com/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nwrit-key-rotation 2\n")
        for bad in ["example.com/log\n016\nCXGcbYyZRw8qK9HP+Uz71/U/8TjowWFmnIX5psYUAxM=\n", "example.com/log\n16\nCXGc\n",
                    "example.com/log\n16\n", "example.com/log\n16\nCXGcbYyZRw8qK9HP+Uz71/U/8TjowWFmnIX5psYUAxM=", "\n16\nCXGcbYyZRw8qK9HP+Uz71/U/8TjowWFmnIX5psYUAxM=\n",
                    "example.com/log\n-1\nCXGcbYyZRw8qK9HP+Uz71/U/8TjowWFmnIX5psYUAxM=\n", "example.com/log\n16\nCXGcbYyZRw8qK9HP+Uz71/U/8TjowWFmnIX5psYUAxM=\n\n"] {
            #expect(throws: NoteError.self, "\(bad)") { try Checkpoint(text: bad) }
        }
    }
}
