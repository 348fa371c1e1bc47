import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// SHA-256 digests of files (executables, scripts), cached by device, inode, size, mtime and
/// ctime so an unchanged binary is hashed once however often it calls; any write to the file
/// changes its ctime and so misses the cache.
public actor FileDigests {
    /// What identifies one version of a file's content.
    struct Version: Hashable {
        let device: UInt64, inode: UInt64, size: Int64
        let mtimeSeconds: Int, mtimeNanoseconds: Int, ctimeSeconds: Int, ctimeNanoseconds: Int
    }

    /// A digest and the change time of the content it covers.
    public struct Digest: Sendable, Hashable {
        /// Lowercase hex SHA-256.
        public let sha256: String
        public let changedAt: Date
    }

    public let maximumSize: Int
    private let capacity: Int
    private var cache: [Version: String] = [:]
    /// How many digests came from the cache (for tests and metrics).
    public private(set) var hits = 0

    /// `maximumSize`: larger files are not hashed (nil); `capacity`: cached versions kept.
    public init(maximumSize: Int = 256 << 20, capacity: Int = 4096) {
        self.maximumSize = maximumSize
        self.capacity = capacity
    }

    /// The digest of the file at `path` (following symlinks, so `/proc/<pid>/exe` works for a
    /// deleted or replaced binary); nil when it cannot be opened, is not a regular file, is
    /// larger than ``maximumSize`` or changed while it was read.
    public func digest(path: String) -> Digest? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard let before = Self.version(fd), before.size <= maximumSize else { return nil }
        let changedAt = Date(timeIntervalSince1970: Double(before.ctimeSeconds) + Double(before.ctimeNanoseconds) / 1e9)
        if let known = cache[before] {
            hits += 1
            return Digest(sha256: known, changedAt: changedAt)
        }
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var total = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            total += n
            guard total <= maximumSize else { return nil }
            hasher.update(data: buffer[0..<n])
        }
        guard let after = Self.version(fd), after == before, Int64(total) == before.size else { return nil }
        let hex = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        if cache.count >= capacity { cache.removeAll(keepingCapacity: true) }
        cache[before] = hex
        return Digest(sha256: hex, changedAt: changedAt)
    }

    static func version(_ fd: Int32) -> Version? {
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Version(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                       mtimeSeconds: Int(info.st_mtim.tv_sec), mtimeNanoseconds: Int(info.st_mtim.tv_nsec),
                       ctimeSeconds: Int(info.st_ctim.tv_sec), ctimeNanoseconds: Int(info.st_ctim.tv_nsec))
    }
}
