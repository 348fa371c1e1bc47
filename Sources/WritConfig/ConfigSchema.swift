import Foundation

/// One option of a component: its three names (flag `--foo-bar`, TOML key `foo_bar` in its
/// table, environment `WRIT_FOO_BAR`), its type and its default.
public struct ConfigKey: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case string, integer, boolean, stringList = "string list", integerList = "integer list"
    }

    /// The TOML table (`server`, `admin`).
    public let table: String
    /// The key inside the table.
    public let key: String
    public let kind: Kind
    /// The default, written as TOML; nil: required (or computed, see ``help``).
    public let defaultValue: TOMLValue?
    /// Shown redacted by `writ config dump` (passwords in URLs).
    public let secret: Bool
    public let help: String

    public init(table: String, key: String, kind: Kind, defaultValue: TOMLValue?, secret: Bool = false, help: String) {
        self.table = table
        self.key = key
        self.kind = kind
        self.defaultValue = defaultValue
        self.secret = secret
        self.help = help
    }

    /// The long flag: the key with `-` for `_`, prefixed by the table unless the table is the
    /// component's own (`[server] data_dir` → `--data-dir`; `[admin] uids` → `--admin-uids`).
    public func flag(component: String) -> String {
        let base = (table == component ? key : table + "_" + key).replacingOccurrences(of: "_", with: "-")
        return "--" + base
    }

    /// The environment variable: `WRIT_` and the flag's name in capitals.
    public func environment(component: String) -> String {
        "WRIT_" + flag(component: component).dropFirst(2).replacingOccurrences(of: "-", with: "_").uppercased()
    }
}

/// The options of one component (`server`, later `agent`, `gate`) and how their values are
/// resolved: flag > environment > file > default.
public struct ConfigSchema: Sendable {
    public let component: String
    public let keys: [ConfigKey]

    public init(component: String, keys: [ConfigKey]) {
        self.component = component
        self.keys = keys
    }

    /// Where a value came from.
    public enum Source: String, Sendable { case flag, environment, file, `default` }

    /// Resolves every key. `flags` holds the values given on the command line by flag name
    /// (lists as arrays); `environment` is the process environment. Unknown tables and keys in
    /// the file, and values of the wrong type anywhere, are errors naming the key (and line).
    public func resolve(file: TOMLDocument?, environment: [String: String], flags: [String: TOMLValue]) throws(ConfigError) -> ResolvedConfig {
        if let file {
            let tables = Set(keys.map(\.table))
            for (table, entries) in file.tables.sorted(by: { $0.key < $1.key }) {
                guard tables.contains(table) else {
                    let line = entries.values.map(\.line).min()
                    throw ConfigError(line: line, table.isEmpty ? "keys must be inside a table such as `[\(component)]`" : "unknown table `[\(table)]` (known: \(tables.sorted().map { "[\($0)]" }.joined(separator: ", ")))")
                }
                for (key, entry) in entries.sorted(by: { $0.value.line < $1.value.line }) where !keys.contains(where: { $0.table == table && $0.key == key }) {
                    let known = keys.filter { $0.table == table }.map(\.key).sorted().joined(separator: ", ")
                    throw ConfigError(line: entry.line, "unknown key `\(table).\(key)` (known in [\(table)]: \(known))")
                }
            }
        }
        var values: [String: (TOMLValue, Source)] = [:]
        for key in keys {
            let name = "\(key.table).\(key.key)"
            if let given = flags[key.flag(component: component)] {
                values[name] = (try check(given, key, where: "flag \(key.flag(component: component))", line: nil), .flag)
            } else if let text = environment[key.environment(component: component)] {
                values[name] = (try parseEnvironment(text, key), .environment)
            } else if let entry = file?.tables[key.table]?[key.key] {
                values[name] = (try check(entry.value, key, where: "key `\(name)`", line: entry.line), .file)
            } else if let fallback = key.defaultValue {
                values[name] = (fallback, .default)
            }
        }
        return ResolvedConfig(schema: self, values: values)
    }

    private func check(_ value: TOMLValue, _ key: ConfigKey, where place: String, line: Int?) throws(ConfigError) -> TOMLValue {
        let ok: Bool
        switch (key.kind, value) {
        case (.string, .string), (.integer, .integer), (.boolean, .boolean): ok = true
        case (.stringList, .array(let items)): ok = items.allSatisfy { if case .string = $0 { return true } else { return false } }
        case (.integerList, .array(let items)): ok = items.allSatisfy { if case .integer = $0 { return true } else { return false } }
        default: ok = false
        }
        guard ok else { throw ConfigError(line: line, "\(place) must be a value of type \(key.kind.rawValue), not `\(value)`") }
        return value
    }

    private func parseEnvironment(_ text: String, _ key: ConfigKey) throws(ConfigError) -> TOMLValue {
        let name = key.environment(component: component)
        switch key.kind {
        case .string: return .string(text)
        case .integer:
            guard let number = Int64(text) else { throw ConfigError("\(name) must be an integer, not `\(text)`") }
            return .integer(number)
        case .boolean:
            guard let flag = ["true": true, "false": false, "1": true, "0": false][text.lowercased()] else { throw ConfigError("\(name) must be true or false, not `\(text)`") }
            return .boolean(flag)
        case .stringList:
            return .array(text.split(separator: ",").map { .string($0.trimmingCharacters(in: .whitespaces)) })
        case .integerList:
            var items: [TOMLValue] = []
            for part in text.split(separator: ",") {
                guard let number = Int64(part.trimmingCharacters(in: .whitespaces)) else { throw ConfigError("\(name) must be comma-separated integers, not `\(text)`") }
                items.append(.integer(number))
            }
            return .array(items)
        }
    }
}

/// Values after resolution, with where each came from.
public struct ResolvedConfig: Sendable {
    public let schema: ConfigSchema
    let values: [String: (TOMLValue, ConfigSchema.Source)]

    public func value(_ table: String, _ key: String) -> TOMLValue? { values["\(table).\(key)"]?.0 }
    public func source(_ table: String, _ key: String) -> ConfigSchema.Source? { values["\(table).\(key)"]?.1 }

    public func string(_ table: String, _ key: String) -> String? {
        if case .string(let text)? = value(table, key) { return text }
        return nil
    }

    public func integer(_ table: String, _ key: String) -> Int64? {
        if case .integer(let number)? = value(table, key) { return number }
        return nil
    }

    public func integers(_ table: String, _ key: String) -> [Int64] {
        if case .array(let items)? = value(table, key) { return items.compactMap { if case .integer(let n) = $0 { return n } else { return nil } } }
        return []
    }

    public func strings(_ table: String, _ key: String) -> [String] {
        if case .array(let items)? = value(table, key) { return items.compactMap { if case .string(let text) = $0 { return text } else { return nil } } }
        return []
    }

    /// The effective configuration as TOML, secrets redacted, each value with its source.
    public func dump(redact: (ConfigKey, String) -> String) -> String {
        var out = ""
        let tables = schema.keys.map(\.table).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        for table in tables {
            out += (out.isEmpty ? "" : "\n") + "[\(table)]\n"
            for key in schema.keys where key.table == table {
                guard let (value, source) = values["\(table).\(key.key)"] else {
                    out += "# \(key.key) is not set\n"
                    continue
                }
                var shown = value.description
                if key.secret, case .string(let text) = value { shown = TOMLValue.string(redact(key, text)).description }
                out += "\(key.key) = \(shown)  # \(source.rawValue)\n"
            }
        }
        return out
    }
}

/// Durations as Writ writes them everywhere: a whole number and one unit, `90s`, `10m`, `1h`,
/// `7d`.
public enum ConfigDuration {
    /// Parses `text` to whole seconds; nil when it is not a duration.
    public static func seconds(_ text: String) -> Int? {
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        guard let unit = text.last, let factor = units[unit], let value = Int(text.dropLast()), value >= 0,
              text.dropLast().allSatisfy(\.isNumber) else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: factor)
        return overflow ? nil : product
    }
}
