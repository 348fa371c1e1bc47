import CedarCore

/// Cedar policy text in one canonical layout, keeping every comment.
///
/// Each policy is printed by ``CedarText/policy(_:id:)``. Comments between policies stay where
/// they are relative to them: a comment on its own line goes with the policy after it (or the
/// end of the file), a comment after a policy's `;` on the same line stays on the last line of
/// that policy. A policy with a comment inside it is kept exactly as written, since its layout
/// cannot change without moving the comment. Formatting the result again changes nothing.
public enum CedarFormatter {
    /// The formatted text, and the indices of the policies kept as written.
    public static func format(_ text: String) throws(ParseError) -> (text: String, keptAsWritten: [Int]) {
        let policies = try CedarParser.locatedPolicies(text)
        var lexer = Lexer(text)
        _ = try lexer.tokens()
        let scalars = Array(text.unicodeScalars)
        func slice(_ span: SourceSpan) -> String {
            String(String.UnicodeScalarView(scalars[span.start.offset..<span.end.offset]))
        }
        var comments = lexer.comments[...]
        var blocks: [String] = []
        var kept: [Int] = []
        var previousEnd: SourcePosition? = nil
        for (index, policy) in policies.enumerated() {
            var leading: [String] = []
            while let comment = comments.first, comment.start < policy.spans.policy.start {
                comments.removeFirst()
                if let end = previousEnd, comment.start.line == end.line, !blocks.isEmpty {
                    blocks[blocks.count - 1] += " " + slice(comment)
                } else {
                    leading.append(slice(comment))
                }
            }
            var inside = false
            while let comment = comments.first, comment.start < policy.spans.policy.end {
                comments.removeFirst()
                inside = true
            }
            let body: String
            if inside {
                kept.append(index)
                body = slice(policy.spans.policy)
            } else {
                body = CedarText.policy(policy.policy)
            }
            blocks.append((leading + [body]).joined(separator: "\n"))
            previousEnd = policy.spans.policy.end
        }
        var trailer: [String] = []
        for comment in comments {
            if let end = previousEnd, comment.start.line == end.line, !blocks.isEmpty {
                blocks[blocks.count - 1] += " " + slice(comment)
            } else {
                trailer.append(slice(comment))
            }
        }
        if !trailer.isEmpty { blocks.append(trailer.joined(separator: "\n")) }
        return (blocks.isEmpty ? "" : blocks.joined(separator: "\n\n") + "\n", kept)
    }
}
