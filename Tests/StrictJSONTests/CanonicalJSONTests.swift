import Foundation
import StrictJSON
import Testing
import WritTestSupport

/// RFC 8785 (JCS): the RFC's own examples and number table, and the `rfc8785` Python package
/// (pinned) agreeing byte for byte on random documents.
@Suite struct CanonicalJSONTests {
    /// RFC 8785 Appendix B: IEEE-754 bit patterns and how ECMAScript writes them.
    static let numberTable: [(UInt64, String)] = [
        (0x0000000000000000, "0"), (0x8000000000000000, "0"), (0x0000000000000001, "5e-324"), (0x8000000000000001, "-5e-324"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"), (0xffefffffffffffff, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"), (0xc340000000000000, "-9007199254740992"), (0x4430000000000000, "295147905179352830000"),
        (0x44b52d02c7e14af5, "9.999999999999997e+22"), (0x44b52d02c7e14af6, "1e+23"), (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
        (0x444b1ae4d6e2ef4e, "999999999999999700000"), (0x444b1ae4d6e2ef4f, "999999999999999900000"), (0x444b1ae4d6e2ef50, "1e+21"),
        (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"), (0x3eb0c6f7a0b5ed8d, "0.000001"),
        (0x41b3de4355555553, "333333333.3333332"), (0x41b3de4355555554, "333333333.33333325"), (0x41b3de4355555555, "333333333.3333333"),
        (0x41b3de4355555556, "333333333.3333334"), (0x41b3de4355555557, "333333333.33333343"),
        (0xbecbf647612f3696, "-0.0000033333333333333333"), (0x43143ff3c1cb0959, "1424953923781206.2"),
    ]

    @Test func numbersAreWrittenAsECMAScriptDoes() async throws {
        for (bits, expected) in Self.numberTable {
            #expect(try JSONValue.canonicalNumber(Double(bitPattern: bits)) == expected, "\(String(bits, radix: 16))")
        }
        #expect(throws: JSONError.self) { try JSONValue.canonicalNumber(Double(bitPattern: 0x7fffffffffffffff)) }
        #expect(throws: JSONError.self) { try JSONValue.canonicalNumber(Double(bitPattern: 0x7ff0000000000000)) }
        #expect(throws: JSONError.self) { try JSONValue.integer(1 << 53).canonical() }
        #expect(try JSONValue.integer(-((1 << 53) - 1)).canonical() == "-9007199254740991")
        #expect(throws: JSONError.self) { try JSONParser.parse("1e400").canonical() }
    }

    /// The example of RFC 8785 §3.2.2 and the sorting example of §3.2.3.
    @Test func theRFCExamples() async throws {
        let input = #"""
            {
              "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
              "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
              "literals": [null, true, false]
            }
            """#
        #expect(try JSONParser.parse(input).canonical()
                == #"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#)
        let sorting = #"{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}"#
        let keys = try JSONParser.parse(try JSONParser.parse(sorting).canonical())
        guard case .object(let members) = keys else { Issue.record("not an object"); return }
        #expect(members.map(\.value) == ["Carriage Return", "One", "Control", "Latin Small Letter O With Diaeresis", "Euro Sign", "Emoji: Grinning Face", "Hebrew Letter Dalet With Dagesh"].map { .string($0) })
        #expect(throws: JSONError.self) { try JSONValue.object([JSONMember("a", .null), JSONMember("a", .bool(true))]).canonical() }
    }

    /// Random documents — astral and combining characters, every control character, numbers of
    /// every magnitude, nesting, members in random order — canonicalised by Writ and by the
    /// `rfc8785` package: the same bytes, or both refusing.
    @Test func thePythonPackageAgrees() async throws {
        for seed in TestEnvironment.seeds(fixed: [8]) {
            var rng = SeededRandom(seed: seed)
            let alphabet: [Unicode.Scalar] = ["a", "z", "A", "0", " ", "\"", "\\", "/", "\u{7F}", "\u{80}", "é", "e", "\u{301}", "€", "\u{FB33}", "\u{FFFF}", "😀", "\u{10FFFF}"]
                + (0..<0x20).map { Unicode.Scalar(UInt8($0)) }
            func string() -> String {
                String(String.UnicodeScalarView((0..<Int.random(in: 0...6, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }))
            }
            func number() -> JSONValue {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: return .integer(Int64.random(in: -JSONValue.maximumSafeInteger...JSONValue.maximumSafeInteger, using: &rng))
                case 1: return .integer(Int64.random(in: -1000...1000, using: &rng))
                case 2:
                    let magnitude = pow(10, Double.random(in: -30...30, using: &rng)) * Double.random(in: 0...10, using: &rng)
                    return .otherNumber((Bool.random(using: &rng) ? -magnitude : magnitude).description)
                default: return .otherNumber(Double(bitPattern: UInt64.random(in: 0...0x7fefffffffffffff, using: &rng)).description)
                }
            }
            func value(_ depth: Int) -> JSONValue {
                switch Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &rng) {
                case 0: return .null
                case 1: return .bool(Bool.random(using: &rng))
                case 2, 3: return number()
                case 4: return .string(string())
                case 5: return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in value(depth + 1) })
                default:
                    var members: [JSONMember] = []
                    for _ in 0..<Int.random(in: 0...5, using: &rng) {
                        let key = string()
                        if !members.contains(where: { $0.key.utf8.elementsEqual(key.utf8) }) { members.append(JSONMember(key, value(depth + 1))) }
                    }
                    return .object(members)
                }
            }
            let documents = (0..<2_000).map { _ in value(0) } + [.integer(1 << 53), .otherNumber("1e400")]
            let directory = try TemporaryDirectory(prefix: "writ-jcs")
            let input = directory.file("docs.jsonl")
            try documents.map { $0.text + "\n" }.joined().write(to: input, atomically: true, encoding: .utf8)
            let run = try await ProcessRunner.run(try TestEnvironment.interopPython(), [TestEnvironment.interopScript("jcs_check.py"), input.path])
            try #require(run.status == 0, "\(run.summary)")
            let answers = run.stdout.split(separator: "\n").map(String.init)
            try #require(answers.count == documents.count)
            var agreed = 0, refused = 0
            for (document, answer) in zip(documents, answers) {
                let ours = try? document.canonicalBytes()
                if answer.hasPrefix("error") {
                    #expect(ours == nil, "rfc8785 refuses \(document.text) (\(answer)); Writ wrote \(ours.map { String(decoding: $0, as: UTF8.self) } ?? "")")
                    refused += 1
                } else {
                    let theirs = Data(base64Encoded: answer).map { Array($0) }
                    #expect(ours == theirs, "\(document.text):\n Writ   \(ours.map { String(decoding: $0, as: UTF8.self) } ?? "refused")\n rfc8785 \(theirs.map { String(decoding: $0, as: UTF8.self) } ?? "?")")
                    agreed += 1
                }
            }
            print("CanonicalJSONTests seed \(seed): rfc8785 and Writ wrote the same bytes for \(agreed) documents and both refused \(refused)")
            #expect(refused == 2)
        }
    }
}
