import Foundation
import WritModel
#if canImport(Glibc)
import Glibc
#endif

/// The `unix` workload attestor: turns a calling process into selectors from what the kernel
/// reports about it, never from anything the process says.
///
/// - `unix:uid`, `unix:gid`, `unix:supplementary_gid`: effective ids from `/proc/<pid>/status`;
///   `unix:user`, `unix:group`: their names, left out when the lookup fails.
/// - `unix:path`, `unix:sha256`: the executable (`/proc/<pid>/exe`) and its digest.
/// - `unix:script`, `unix:script_sha256`: for an interpreter (python, node, ruby, perl, a
///   shell), the script it was started with — only when the command line has the plain form
///   ``InterpreterCommand`` accepts, the environment holds none of ``dangerousEnvironment``,
///   the script path is absolute (or relative paths are allowed), and the script's ctime is
///   older than the process's start, so an edit after the start is never vouched for.
///
/// Facts that cannot be read are left out; only a vanished process is an error.
public struct UnixWorkloadAttestor: Sendable {
    /// Environment variables that make an interpreter load code from outside the script.
    public static let dangerousEnvironment: Set<String> = [
        "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PYTHONINSPECT", "PYTHONSAFEPATH", "PYTHONUSERBASE",
        "NODE_OPTIONS", "NODE_PATH", "PERL5OPT", "PERL5LIB", "PERLLIB", "RUBYOPT", "RUBYLIB",
        "BASH_ENV", "ENV", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT",
    ]

    /// What one attestation found.
    public struct Attestation: Sendable, Hashable {
        public let process: ProcessSnapshot
        /// Sorted selectors of type `unix`.
        public let selectors: [Selector]
        /// Why there are no script selectors, when the executable is an interpreter but no
        /// script was vouched for (for debug logs).
        public let scriptRefusal: String?
    }

    public let digests: FileDigests
    /// Resolve a relative script path against the process's working directory
    /// (`unix.script_allow_relative`); off by default, since the directory is the caller's to
    /// choose.
    public let allowRelativeScripts: Bool
    let procRoot: String

    public init(digests: FileDigests = FileDigests(), allowRelativeScripts: Bool = false, procRoot: String = "/proc") {
        self.digests = digests
        self.allowRelativeScripts = allowRelativeScripts
        self.procRoot = procRoot
    }

    /// Attests the process `pid`; `process_gone` when it does not exist (or vanished, or its pid
    /// was reused, while it was read).
    public func attest(pid: Int32) async throws(WorkloadAttestationError) -> Attestation {
        let process = try ProcessSnapshot(pid: pid, procRoot: procRoot)
        let base = "\(procRoot)/\(pid)"
        var values: [(String, String)] = [("uid", String(process.uid)), ("gid", String(process.gid))]
        if let user = Self.userName(process.uid) { values.append(("user", user)) }
        if let group = Self.groupName(process.gid) { values.append(("group", group)) }
        values += process.supplementaryGIDs.map { ("supplementary_gid", String($0)) }

        var refusal: String?
        if let executable = ProcFiles.link(base + "/exe") {
            values.append(("path", executable))
            if let digest = await digests.digest(path: base + "/exe") { values.append(("sha256", digest.sha256)) }
            let name = String(executable.split(separator: "/").last ?? "")
            if let family = InterpreterCommand.Family(executableName: name) {
                switch await script(family: family, process: process, base: base) {
                case .success(let (path, digest)):
                    values += [("script", path), ("script_sha256", digest)]
                case .failure(let reason):
                    refusal = reason.message
                }
            }
        }
        // Everything above must describe one process: the pid may have been reused meanwhile.
        guard process.isStillCurrent(procRoot: procRoot) else {
            throw WorkloadAttestationError(.processGone, "process \(pid) exited or changed while it was attested")
        }
        let selectors = values.compactMap { try? Selector(type: "unix", value: "\($0.0):\($0.1)") }.sorted()
        return Attestation(process: process, selectors: selectors, scriptRefusal: refusal)
    }

    struct Refusal: Error { let message: String }

    private func script(family: InterpreterCommand.Family, process: ProcessSnapshot, base: String) async -> Result<(String, String), Refusal> {
        guard let arguments = ProcFiles.strings(base + "/cmdline") else { return .failure(Refusal(message: "the command line cannot be read")) }
        guard let environment = ProcFiles.strings(base + "/environ") else { return .failure(Refusal(message: "the environment cannot be read")) }
        for entry in environment {
            let name = String(entry.prefix { $0 != "=" })
            if Self.dangerousEnvironment.contains(name) { return .failure(Refusal(message: "the environment sets \(name)")) }
        }
        let written: String
        switch InterpreterCommand.script(family: family, arguments: arguments) {
        case .script(let path): written = path
        case .none(let reason): return .failure(Refusal(message: reason))
        }
        var path = written
        if !written.hasPrefix("/") {
            guard allowRelativeScripts else { return .failure(Refusal(message: "the script path `\(written.prefix(128))` is relative (unix.script_allow_relative is off)")) }
            guard let directory = ProcFiles.link(base + "/cwd") else { return .failure(Refusal(message: "the working directory cannot be read")) }
            path = directory + "/" + written
        }
        path = URL(fileURLWithPath: path).standardizedFileURL.path
        guard let digest = await digests.digest(path: path) else { return .failure(Refusal(message: "the script `\(path.prefix(128))` cannot be read or hashed")) }
        guard let started = process.startDate(), digest.changedAt < started else {
            return .failure(Refusal(message: "the script `\(path.prefix(128))` changed after the process started"))
        }
        return .success((path, digest.sha256))
    }

    static func userName(_ uid: UInt32) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name else { return nil }
        return String(cString: name)
    }

    static func groupName(_ gid: UInt32) -> String? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrgid_r(gid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.gr_name else { return nil }
        return String(cString: name)
    }
}
