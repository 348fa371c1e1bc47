import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the kernel says about one process at one moment, read from `/proc/<pid>`. The start
/// time pins the process: a pid reused by a later process has another start time.
public struct ProcessSnapshot: Sendable, Hashable {
    public let pid: Int32
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    public let startTicks: UInt64
    /// Effective uid and gid (`/proc/<pid>/status`, the second value of `Uid:` and `Gid:`).
    public let uid: UInt32
    public let gid: UInt32
    /// Supplementary group ids (`Groups:`).
    public let supplementaryGIDs: [UInt32]

    /// Reads the process's status and start time; `process_gone` when it no longer exists.
    public init(pid: Int32, procRoot: String = "/proc") throws(WorkloadAttestationError) {
        guard pid > 0 else { throw WorkloadAttestationError(.processGone, "pid \(pid) is not a process") }
        let base = "\(procRoot)/\(pid)"
        guard let status = ProcFiles.text(base + "/status"), let stat = ProcFiles.text(base + "/stat") else {
            throw WorkloadAttestationError(.processGone, "process \(pid) is gone")
        }
        self.pid = pid
        self.startTicks = try Self.startTicks(stat: stat, pid: pid)
        var uid: UInt32?, gid: UInt32?, groups: [UInt32] = []
        for line in status.split(separator: "\n") {
            if line.hasPrefix("Uid:") { uid = Self.effective(line) }
            else if line.hasPrefix("Gid:") { gid = Self.effective(line) }
            else if line.hasPrefix("Groups:") { groups = line.dropFirst(7).split(whereSeparator: \.isWhitespace).compactMap { UInt32($0) } }
        }
        guard let uid, let gid else { throw WorkloadAttestationError(.unreadable, "`\(base)/status` has no Uid/Gid lines") }
        self.uid = uid
        self.gid = gid
        self.supplementaryGIDs = groups
    }

    /// Whether `pid` still names this very process with the same ids: false once it exited, its
    /// pid was reused, or it changed its uid or gid.
    public func isStillCurrent(procRoot: String = "/proc") -> Bool {
        guard let now = try? ProcessSnapshot(pid: pid, procRoot: procRoot) else { return false }
        return now.startTicks == startTicks && now.uid == uid && now.gid == gid
    }

    /// The start as wall-clock time: now, less the time since the start on the boot-time clock
    /// the kernel counts start ticks on (`btime` of /proc/stat has only whole seconds). Tick
    /// resolution (usually 10 ms), rounded down.
    public func startDate() -> Date? {
        var boot = timespec()
        let wall = Date()
        guard clock_gettime(CLOCK_BOOTTIME, &boot) == 0 else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        guard ticks > 0 else { return nil }
        let sinceBoot = Double(boot.tv_sec) + Double(boot.tv_nsec) / 1e9
        return wall.addingTimeInterval(Double(startTicks) / ticks - sinceBoot)
    }

    private static func effective(_ line: Substring) -> UInt32? {
        let fields = line.split(whereSeparator: \.isWhitespace)
        return fields.count >= 3 ? UInt32(fields[2]) : nil
    }

    /// Field 22 of `stat`, counted after the command name, which is in parentheses and may hold
    /// spaces and parentheses itself.
    private static func startTicks(stat: String, pid: Int32) throws(WorkloadAttestationError) -> UInt64 {
        guard let close = stat.lastIndex(of: ")") else { throw WorkloadAttestationError(.unreadable, "`/proc/\(pid)/stat` has no command name") }
        let rest = stat[stat.index(after: close)...].split(whereSeparator: \.isWhitespace)
        // rest[0] is field 3 (state); field 22 is rest[19].
        guard rest.count > 19, let ticks = UInt64(rest[19]) else { throw WorkloadAttestationError(.unreadable, "`/proc/\(pid)/stat` has no start time") }
        return ticks
    }
}

/// Small readers for /proc files, which report size 0 and must be read to the end.
enum ProcFiles {
    /// The whole file, or nil when it cannot be opened (gone, or not permitted).
    static func bytes(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while result.count < limit {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            result.append(contentsOf: buffer[0..<n])
        }
        return result
    }

    static func text(_ path: String) -> String? {
        bytes(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// NUL-separated strings (`cmdline`, `environ`).
    static func strings(_ path: String) -> [String]? {
        bytes(path).map { data in data.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }.dropLastEmpty() }
    }

    static func link(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Array where Element == String {
    /// Drops the empty string a trailing NUL leaves.
    fileprivate func dropLastEmpty() -> [String] { last == "" ? Array(dropLast()) : self }
}
