import Foundation

/// `HOST:PORT` for a TCP listener (`[::1]:8080` for IPv6); port 0 picks a free port.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String) throws(ConfigError) {
        let host: Substring, port: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw ConfigError("invalid listen address `\(text)`: expected `[host]:port`") }
            port = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw ConfigError("invalid listen address `\(text)`: expected `host:port`, e.g. 127.0.0.1:8080") }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let number = Int(port), (0...65535).contains(number) else {
            throw ConfigError("invalid listen address `\(text)`: expected `host:port` with a port from 0 to 65535")
        }
        self.host = String(host)
        self.port = number
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Collects the bound addresses of every listener and writes `ready.json` once all are up.
public actor Readiness {
    private let expected: Set<String>
    private var bound: [String: String] = [:]
    private let write: @Sendable ([String: String]) throws -> Void

    public init(expected: Set<String>, write: @escaping @Sendable ([String: String]) throws -> Void) {
        self.expected = expected
        self.write = write
    }

    /// Records that `name` listens at `address`; writes once every expected listener did.
    public func listening(_ name: String, at address: String) throws {
        bound[name] = address
        if Set(bound.keys) == expected { try write(bound) }
    }
}
