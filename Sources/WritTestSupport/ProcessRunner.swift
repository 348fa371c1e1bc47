import Foundation

/// Runs a child process to completion and captures its output.
public enum ProcessRunner {
    /// What a finished process left behind.
    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
        public init(status: Int32, stdout: String, stderr: String) {
            self.status = status
            self.stdout = stdout
            self.stderr = stderr
        }

        /// Exit status and both streams, for test failure messages.
        public var summary: String { "exit \(status)\n--- stdout\n\(stdout)\n--- stderr\n\(stderr)" }
    }

    /// Runs `executable` with `arguments`, feeding `stdin`, and returns once it has exited.
    ///
    /// The waiting happens on a thread of its own, never on one of the few threads Swift
    /// concurrency runs every test on: a child that talks to a server in this test process
    /// needs those threads free for the server to answer, and a test waiting for a child must
    /// not hold up the tests running beside it.
    public static func run(_ executable: String, _ arguments: [String], stdin: Data? = nil,
                           environment: [String: String]? = nil) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Swift.Result<ProcessRunner.Result, any Error> {
                    try runBlocking(executable, arguments, stdin: stdin, environment: environment)
                })
            }
            thread.start()
        }
    }

    /// Runs `executable` with `arguments`, feeding `stdin`, and waits for it on the calling
    /// thread: only for code that cannot await (a static initialiser); tests use ``run(_:_:stdin:environment:)``.
    public static func runBlocking(_ executable: String, _ arguments: [String], stdin: Data? = nil,
                           environment: [String: String]? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let outPipe = Pipe(), errPipe = Pipe(), inPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = inPipe
        try process.run()
        if let stdin { inPipe.fileHandleForWriting.write(stdin) }
        try? inPipe.fileHandleForWriting.close()
        // Drain both pipes concurrently so a chatty child never blocks on a full pipe.
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = errPipe.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = outPipe.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }
}
