import Foundation

/// Facts about the test run: where the package is, where the interop Python lives, where built
/// binaries are. Every lookup fails loudly (never skips) when a prerequisite is missing.
public enum TestEnvironment {
    /// A prerequisite of a test is missing; the message names it and how to get it.
    public struct MissingPrerequisite: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// The package root (the directory holding Package.swift), found from this source file.
    public static var packageRoot: URL {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url
            }
        }
        fatalError("Package.swift not found above \(#filePath)")
    }

    /// The interop venv's Python (`WRIT_TEST_PYTHON`, else `<root>/.build-venv/bin/python`).
    public static func interopPython() throws -> String {
        let path = ProcessInfo.processInfo.environment["WRIT_TEST_PYTHON"]
            ?? packageRoot.appendingPathComponent(".build-venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw MissingPrerequisite("interop python `\(path)` is missing: run scripts/test, which creates .build-venv from Tests/interop/requirements.txt")
        }
        return path
    }

    /// A script in `Tests/interop/`.
    public static func interopScript(_ name: String) -> String {
        packageRoot.appendingPathComponent("Tests/interop").appendingPathComponent(name).path
    }

    /// The directory holding the built executables (`WRIT_TEST_BIN_DIR`, else the directory of
    /// the running test bundle).
    public static func binDirectory() -> URL {
        if let dir = ProcessInfo.processInfo.environment["WRIT_TEST_BIN_DIR"] {
            return URL(fileURLWithPath: dir)
        }
        // The test bundle runs from .build/<triple>/debug/<name>.xctest; executables sit beside it.
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("writ").path) { return url }
        }
        return packageRoot.appendingPathComponent(".build/debug")
    }

    /// A built executable of this package, e.g. `writ` or `writ-test-keyloop`.
    public static func executable(_ name: String) throws -> String {
        let path = binDirectory().appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw MissingPrerequisite("executable `\(path)` is missing: build with `swift build --build-tests` (scripts/test does)")
        }
        return path
    }

    /// A tool on PATH (e.g. `openssl`), or a loud failure naming it.
    public static func tool(_ name: String) throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw MissingPrerequisite("`\(name)` is not on PATH: scripts/test installs it (apt-get install \(name))")
    }

    /// The seeds a randomised test runs: fixed ones plus one derived from the commit
    /// (`WRIT_TEST_COMMIT_SEED` or `git rev-parse HEAD`), so a rerun of one commit repeats.
    public static func seeds(fixed: [UInt64] = [1, 2, 3]) -> [UInt64] {
        var seeds = fixed
        if let text = ProcessInfo.processInfo.environment["WRIT_TEST_COMMIT_SEED"], let seed = UInt64(text) {
            seeds.append(seed)
        } else if let head = try? ProcessRunner.runBlocking("/usr/bin/git", ["-C", packageRoot.path, "rev-parse", "HEAD"]),
                  head.status == 0 {
            var hash: UInt64 = 0xcbf29ce484222325
            for byte in head.stdout.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100000001b3 }
            seeds.append(hash)
        }
        return seeds
    }
}

/// A scratch directory removed when the value is released (unless kept for the suite's key scan).
public final class TemporaryDirectory: @unchecked Sendable {
    /// The directory.
    public let url: URL
    /// The directory path.
    public var path: String { url.path }
    private let kept: Bool

    /// What the suite's key scan expects of a kept directory.
    public enum ScanKind: String, Sendable {
        /// An agent's: no private key but its own (`data/agent-key.pem`).
        case agent
        /// A whole `writ dev` home: its server's CA keys are there by design; no workload key.
        case dev
    }

    /// Creates an empty directory under the system temp dir (mode 0700). With `keptForKeyScan`
    /// and scripts/test's ``IssuedKeyLedger``, the directory outlives the value: the scan after
    /// the suite searches it (an agent's data dir), and scripts/test removes it afterwards.
    public init(prefix: String = "writ-test", keptForKeyScan: ScanKind? = nil) throws {
        let base = URL(fileURLWithPath: NSTemporaryDirectory())
        url = base.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let ledger = keptForKeyScan == nil ? nil : IssuedKeyLedger.current
        if let ledger, let keptForKeyScan { ledger.keep(url, kind: keptForKeyScan) }
        kept = ledger != nil
    }

    /// A path inside the directory.
    public func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    deinit { if !kept { try? FileManager.default.removeItem(at: url) } }
}
