import Foundation

/// The suite's record of the X.509-SVIDs its servers issued, for the check scripts/test runs after
/// every test has finished (Tests/interop/keys_on_disk.py): no file under /tmp or an agent's data
/// dir may hold the private key of a workload SVID.
///
/// scripts/test sets `WRIT_TEST_KEY_LEDGER` to an empty directory. A harness that starts a server
/// registers it (`<name>.server` holds its admin socket and pid) and, before stopping it, copies
/// its `svid.x509.issue` events (`writ audit search`, each naming the certified key by
/// `public_key_sha256`) to `<name>.jsonl`; scripts/test reads the servers still running at the
/// end the same way. Other processes a test starts (agents) are listed in `<name>.pid`, so that
/// scripts/test stops exactly the ones left running. Directories made with `keptForKeyScan` stay
/// on disk for the scan, listed in `<name>.kept` (the path, then its kind: `agent` directories
/// may hold no private key but the agent's own), and scripts/test removes them after a clean
/// scan. Without the variable nothing is recorded and every directory is removed as usual.
/// A ledger file that cannot be written is reported on standard error.
public struct IssuedKeyLedger: Sendable {
    /// The ledger directory.
    public let directory: URL

    /// The ledger scripts/test set up, or nil when the tests run outside it.
    public static var current: IssuedKeyLedger? {
        guard let path = ProcessInfo.processInfo.environment["WRIT_TEST_KEY_LEDGER"], !path.isEmpty else { return nil }
        return IssuedKeyLedger(directory: URL(fileURLWithPath: path))
    }

    /// Records that a server named `name` (unique for the run: its data directory's name) serves
    /// its admin API on `adminSocket`; a restart on the same directory registers the same name.
    /// An earlier copy of its events is dropped: only a read after the latest start holds them all.
    public func register(server name: String, adminSocket: String, pid: Int32) {
        for stale in [name + ".jsonl", name + ".failed"] { try? FileManager.default.removeItem(at: directory.appendingPathComponent(stale)) }
        write(Data("\(adminSocket)\n\(pid)\n".utf8), to: name + ".server")
    }

    /// Records a process a test started (an agent), for scripts/test to stop if the test did not.
    public func register(process name: String, pid: Int32) {
        write(Data("\(pid)\n".utf8), to: name + ".pid")
    }

    /// Copies every `svid.x509.issue` event of the running server to `<name>.jsonl` (replacing
    /// an earlier copy: the log only grows, so the latest read holds every earlier one). A failed
    /// read is written to `<name>.failed` for the scan to report.
    public func collect(server name: String, adminSocket: String) async {
        do {
            let result = try await ProcessRunner.run(try TestEnvironment.executable("writ"),
                                                     ["audit", "search", "--type", "svid.x509.issue", "--limit", "100000000", "--admin-socket", adminSocket])
            guard result.status == 0 else {
                write(Data("writ audit search: \(result.summary)\n".utf8), to: name + ".failed")
                return
            }
            write(Data(result.stdout.utf8), to: name + ".jsonl")
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name + ".failed"))
        } catch {
            write(Data("\(error)\n".utf8), to: name + ".failed")
        }
    }

    /// Lists a directory that is to stay on disk until the scan, with its kind.
    func keep(_ path: URL, kind: TemporaryDirectory.ScanKind) {
        write(Data("\(path.path)\n\(kind.rawValue)\n".utf8), to: path.lastPathComponent + ".kept")
    }

    private func write(_ data: Data, to name: String) {
        do { try data.write(to: directory.appendingPathComponent(name), options: .atomic) } catch {
            FileHandle.standardError.write(Data("IssuedKeyLedger: cannot write \(name): \(error)\n".utf8))
        }
    }
}
