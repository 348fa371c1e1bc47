#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Unbuffered writes to a file descriptor, so messages reach a watching process at once.
enum FileHandleStream {
    case standardError
    /// For line streams a follower reads as they come (`writ audit tail --follow`); not mixed
    /// with `print`, whose buffer would reorder them.
    case standardOutput

    func write(_ string: String) {
        var bytes = Array(string.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { buffer in
                Glibc.write(self == .standardError ? 2 : 1, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written <= 0 { return }
            offset += written
        }
    }
}
