import CedarCore
import CedarParser
import Testing

/// `writ policy format` keeps every comment, lays out policies canonically, and is idempotent.
@Suite struct FormatterTests {
    /// The text of every `//` comment in `text`, in order.
    static func comments(_ text: String) -> [String] {
        var out: [String] = []
        var inString = false, escaped = false
        var scalars = Array(text.unicodeScalars)[...]
        while let c = scalars.first {
            scalars.removeFirst()
            if inString {
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
            } else if c == "\"" {
                inString = true
            } else if c == "/", scalars.first == "/" {
                var comment = String.UnicodeScalarView([c])
                while let next = scalars.first, next != "\n" { comment.append(next); scalars.removeFirst() }
                out.append(String(comment))
            }
        }
        return out
    }

    @Test func commentsStayWhereTheyBelong() throws {
        let text = """
            // Policies for the docs service.
            // Owned by the platform team.

            @id("owner")   permit(principal, action == Action::"read", resource) when { resource.owner == principal };   // owners read

            // Nobody without MFA.
            forbid(principal, action, resource) unless { context.mfa };
            permit(principal,
                   action, // any action
                   resource in Folder::"public");
            // the end
            """
        let (formatted, kept) = try CedarFormatter.format(text)
        #expect(formatted == """
            // Policies for the docs service.
            // Owned by the platform team.
            @id("owner")
            permit (
              principal,
              action == Action::"read",
              resource
            )
            when { resource.owner == principal }; // owners read

            // Nobody without MFA.
            forbid (
              principal,
              action,
              resource
            )
            unless { context.mfa };

            permit(principal,
                   action, // any action
                   resource in Folder::"public");

            // the end

            """, "\(formatted)")
        #expect(kept == [2])
        #expect(Self.comments(formatted) == Self.comments(text))
        #expect(try CedarParser.policies(formatted) == CedarParser.policies(text))
        #expect(try CedarFormatter.format(formatted).text == formatted, "formatting again changes nothing")
    }

    @Test func emptyAndCommentOnlyFiles() throws {
        #expect(try CedarFormatter.format("").text == "")
        #expect(try CedarFormatter.format("  \n").text == "")
        #expect(try CedarFormatter.format("// just a note\n\n// and another").text == "// just a note\n// and another\n")
        // `//` inside a string is not a comment.
        let (text, kept) = try CedarFormatter.format(#"permit(principal, action, resource) when { context.url like "https://*" };"#)
        #expect(kept.isEmpty && text.contains(#"like "https://*""#) && !text.contains("\n//"), "\(text)")
    }
}

extension FormatterTests {
    /// A pattern scalar printed after `*` or a quote stays itself even when it is a combining
    /// mark (found by the corpus formatting check: `"*\u{5b2}"` lost its U+05B2).
    @Test func combiningMarksInPatternsAndStringsSurvivePrinting() throws {
        for text in [#"permit(principal, action, resource) when { "" like "*-*\n*\u{5b2}" };"#,
                     #"permit(principal, action, resource) when { context.s like "\u{301}*\u{301}" && context.s == "\u{301}" };"#] {
            let policies = try CedarParser.policies(text)
            let printed = policies.map { CedarText.policy($0) }.joined(separator: "\n")
            #expect(try CedarParser.policies(printed) == policies, "\(printed)")
        }
    }
}
