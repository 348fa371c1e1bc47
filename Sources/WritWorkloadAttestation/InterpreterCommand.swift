import Foundation

/// Which script an interpreter process runs, decided from its executable and command line
/// alone. A script is named only for `<interpreter> [allow-listed options] <script> [args]`:
/// any option outside the short allow-list (and so every way of running code given on the
/// command line or loading code from elsewhere: `-c`, `-m`, `-e`, `-r`, `--require`,
/// `--import`, `-M`, `-I`, …) means no script.
public enum InterpreterCommand {
    /// The interpreters recognised, by the file name of the executable the process runs.
    public enum Family: String, Sendable, CaseIterable {
        case python, node, ruby, perl, shell

        /// The family of an executable's file name (`python3.11`, `node`, `bash`, …).
        public init?(executableName name: String) {
            func versioned(_ prefix: String) -> Bool {
                name.hasPrefix(prefix) && name.dropFirst(prefix.count).allSatisfy { $0.isNumber || $0 == "." }
            }
            if versioned("python") { self = .python }
            else if name == "node" || name == "nodejs" { self = .node }
            else if versioned("ruby") { self = .ruby }
            else if versioned("perl") { self = .perl }
            else if ["sh", "bash", "dash", "zsh", "ksh", "mksh"].contains(name) { self = .shell }
            else { return nil }
        }

        /// Single-letter flags that change neither what code runs nor where it is loaded from;
        /// they may be combined (`-uB`).
        var allowedShortFlags: Set<Character> {
            switch self {
            case .python: return ["u", "B", "O", "s", "S", "E", "q", "b"]
            case .node: return []
            case .ruby: return ["w"]
            case .perl: return ["w", "T"]
            case .shell: return ["e", "u", "x"]
            }
        }

        /// Long options allowed as they are.
        var allowedLongOptions: Set<String> {
            switch self {
            case .node: return ["--no-warnings", "--enable-source-maps", "--trace-warnings", "--no-deprecation", "--trace-uncaught"]
            default: return []
            }
        }
    }

    /// The outcome: the script argument as written, or why there is none.
    public enum Outcome: Sendable, Hashable {
        case script(String)
        case none(String)
    }

    /// Finds the script in `arguments` (the full command line, `argv[0]` first) of a process
    /// running `family`'s interpreter.
    public static func script(family: Family, arguments: [String]) -> Outcome {
        var index = 1
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" {
                index += 1
                break
            }
            guard argument.hasPrefix("-"), argument != "-" else { break }
            if argument.hasPrefix("--") {
                guard family.allowedLongOptions.contains(argument) else {
                    return .none("option `\(argument.prefix(64))` is not on the \(family.rawValue) allow-list")
                }
            } else {
                let letters = argument.dropFirst()
                guard !letters.isEmpty, letters.allSatisfy({ family.allowedShortFlags.contains($0) }) else {
                    return .none("option `\(argument.prefix(64))` is not on the \(family.rawValue) allow-list")
                }
            }
            index += 1
        }
        guard index < arguments.count else { return .none("no script argument (code from stdin or interactive)") }
        let script = arguments[index]
        guard !script.isEmpty, script != "-" else { return .none("the script argument is `\(script)` (stdin)") }
        return .script(script)
    }
}
