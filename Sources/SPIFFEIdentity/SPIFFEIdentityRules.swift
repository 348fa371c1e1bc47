/// The byte-level rules of SPIFFE-ID.md, shared by ``SPIFFEID`` and ``TrustDomain``.
enum SPIFFEIdentityRules {
    /// Shows at most 120 bytes of untrusted input, with control bytes escaped, in a message.
    static func quoted(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars.prefix(120) {
            if scalar.value < 0x20 || scalar.value == 0x7F || scalar == "`" {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        if text.unicodeScalars.count > 120 { out += "…" }
        return out
    }

    static func describe(byte: UInt8) -> String {
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
    }

    static func schemeError(_ text: String) -> SPIFFEIDError {
        let lower = text.lowercased()
        if lower.hasPrefix("spiffe://") {
            return SPIFFEIDError(.wrongScheme, "invalid spiffe id `\(quoted(text))`: the scheme must be `spiffe` in lowercase")
        }
        return SPIFFEIDError(.wrongScheme, "invalid spiffe id `\(quoted(text))`: it must begin with `spiffe://`")
    }

    static func portError(_ text: String) -> SPIFFEIDError {
        SPIFFEIDError(.portNotAllowed, "invalid spiffe id `\(quoted(text))`: a port is not allowed in the trust domain")
    }

    /// Checks a trust-domain byte range; `text` is the whole input, for the message.
    static func checkTrustDomain(_ bytes: Substring.UTF8View.SubSequence, in text: String) throws(SPIFFEIDError) {
        // Structural URI parts first, so the message names what the user wrote; `user:pw@host`
        // is userinfo, not a port.
        if bytes.contains(UInt8(ascii: "@")) {
            throw SPIFFEIDError(.userInfoNotAllowed, "invalid spiffe id `\(quoted(text))`: userinfo (`user@`) is not allowed before the trust domain")
        }
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "@"):
                throw SPIFFEIDError(.userInfoNotAllowed, "invalid spiffe id `\(quoted(text))`: userinfo (`user@`) is not allowed before the trust domain")
            case UInt8(ascii: ":"):
                throw portError(text)
            case UInt8(ascii: "?"):
                throw SPIFFEIDError(.queryNotAllowed, "invalid spiffe id `\(quoted(text))`: a query (`?…`) is not allowed")
            case UInt8(ascii: "#"):
                throw SPIFFEIDError(.fragmentNotAllowed, "invalid spiffe id `\(quoted(text))`: a fragment (`#…`) is not allowed")
            case UInt8(ascii: "%"):
                throw SPIFFEIDError(.percentEncodingNotAllowed, "invalid spiffe id `\(quoted(text))`: percent-encoding is not allowed")
            default:
                continue
            }
        }
        for byte in bytes where !TrustDomain.isNameByte(byte) {
            throw SPIFFEIDError(.invalidTrustDomainCharacter, "invalid trust domain in `\(quoted(text))`: \(describe(byte: byte)) is not allowed; only lowercase letters, digits, '.', '-' and '_' are allowed")
        }
        if bytes.count > TrustDomain.maximumLength {
            throw SPIFFEIDError(.trustDomainTooLong, "trust domain is \(bytes.count) bytes long: at most \(TrustDomain.maximumLength) are allowed")
        }
    }

    /// Checks a path byte range (empty, or starting with `/`).
    static func checkPath(_ bytes: Substring.UTF8View.SubSequence, in text: String) throws(SPIFFEIDError) {
        if bytes.isEmpty { return }
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "?"):
                throw SPIFFEIDError(.queryNotAllowed, "invalid spiffe id `\(quoted(text))`: a query (`?…`) is not allowed")
            case UInt8(ascii: "#"):
                throw SPIFFEIDError(.fragmentNotAllowed, "invalid spiffe id `\(quoted(text))`: a fragment (`#…`) is not allowed")
            case UInt8(ascii: "%"):
                throw SPIFFEIDError(.percentEncodingNotAllowed, "invalid spiffe id `\(quoted(text))`: percent-encoding is not allowed")
            default:
                continue
            }
        }
        var segmentStart = bytes.index(after: bytes.startIndex)
        var index = segmentStart
        while true {
            if index == bytes.endIndex || bytes[index] == UInt8(ascii: "/") {
                let segment = bytes[segmentStart..<index]
                if segment.isEmpty {
                    if index == bytes.endIndex {
                        throw SPIFFEIDError(.trailingSlash, "invalid spiffe id `\(quoted(text))`: the path must not end with '/'")
                    }
                    throw SPIFFEIDError(.emptySegment, "invalid spiffe id `\(quoted(text))`: the path has an empty segment ('//')")
                }
                if segment.elementsEqual(".".utf8) || segment.elementsEqual("..".utf8) {
                    throw SPIFFEIDError(.dotSegment, "invalid spiffe id `\(quoted(text))`: the path has a '\(String(decoding: segment, as: UTF8.self))' segment; '.' and '..' are not allowed")
                }
                if index == bytes.endIndex { return }
                segmentStart = bytes.index(after: index)
            } else if !isPathByte(bytes[index]) {
                throw SPIFFEIDError(.invalidPathCharacter, "invalid spiffe id path in `\(quoted(text))`: \(describe(byte: bytes[index])) is not allowed; only letters, digits, '.', '-' and '_' are allowed in a segment")
            }
            index = bytes.index(after: index)
        }
    }

    @inline(__always)
    static func isPathByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
