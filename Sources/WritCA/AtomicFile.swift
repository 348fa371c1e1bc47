#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Durable, atomic file replacement: write a temp file in the same directory (mode 0600),
/// fsync it, rename it over the target, fsync the directory. A crash at any point leaves either
/// the old file or the new one, never a mix.
public enum AtomicFile {
    /// Replaces `path` with `bytes` (created with `mode`), durably and atomically.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(CAError) {
        let directory = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let temp = "\(directory)/.\(name).tmp-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw CAError(.io, "cannot create `\(temp)`: \(String(cString: strerror(errno)))") }
        var ok = false
        defer {
            if !ok { unlink(temp) }
        }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                close(fd)
                throw CAError(.io, "writing `\(temp)` failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        guard fchmod(fd, mode) == 0, fsync(fd) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw CAError(.io, "syncing `\(temp)` failed: \(message)")
        }
        close(fd)
        guard rename(temp, path) == 0 else {
            throw CAError(.io, "renaming `\(temp)` to `\(path)` failed: \(String(cString: strerror(errno)))")
        }
        ok = true
        try syncDirectory(directory)
    }

    static func syncDirectory(_ directory: String) throws(CAError) {
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw CAError(.io, "cannot open directory `\(directory)`: \(String(cString: strerror(errno)))") }
        defer { close(dfd) }
        guard fsync(dfd) == 0 else { throw CAError(.io, "syncing directory `\(directory)` failed: \(String(cString: strerror(errno)))") }
    }

    /// Reads a file that must be private to this user: mode without group/other bits and owned
    /// by the effective user, as ssh insists for private keys.
    static func readPrivate(_ path: String) throws(CAError) -> [UInt8] {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            throw CAError(errno == ENOENT ? .keyNotFound : .io, "cannot stat `\(path)`: \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw CAError(.insecureKeyFile, "`\(path)` is not a regular file")
        }
        let permissions = info.st_mode & 0o777
        guard permissions & 0o077 == 0 else {
            throw CAError(.insecureKeyFile, "`\(path)` has mode \(String(permissions, radix: 8)): private files must not be accessible by group or others (chmod 600)")
        }
        guard info.st_uid == geteuid() else {
            throw CAError(.insecureKeyFile, "`\(path)` is owned by uid \(info.st_uid), not by this process's uid \(geteuid())")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CAError(.io, "cannot read `\(path)`")
        }
        return [UInt8](data)
    }
}
