// Samples every process's /proc/PID/cmdline and /proc/PID/environ on a
// thread of its own while a command runs, as `ps e` (or any local user,
// for cmdline) would see them.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One process as a sample saw it.
struct ProcessView: Hashable, CustomStringConvertible {
    let pid: Int32
    /// argv, NUL-separated as the kernel keeps it.
    let cmdline: Data
    /// nil when environ could not be read.
    let environ: Data?

    var arguments: [String] {
        cmdline.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
    }

    var description: String { "pid \(pid): \(arguments.joined(separator: " "))" }
}

final class ProcSampler: @unchecked Sendable {
    // safety: every stored property but `needle` and `done` (a semaphore) is
    // read and written only under `lock`.
    private let lock = NSLock()
    private let needle: Data
    private let watched: @Sendable (ProcessView) -> Bool
    private var running = true
    private var samples = 0
    private var cmdlineLeaks: [ProcessView] = []
    private var environLeaks: [ProcessView] = []
    private var seen: [ProcessView] = []
    private var environsRead = 0
    private let done = DispatchSemaphore(value: 0)

    /// Looks for `secret` everywhere; keeps each view `watched` accepts (the
    /// processes the test is about), so a test can show it saw them.
    init(secret: String, watched: @escaping @Sendable (ProcessView) -> Bool) {
        needle = Data(secret.utf8)
        self.watched = watched
        let thread = Thread { [self] in
            while isRunning { sampleOnce() }
            done.signal()
        }
        thread.start()
    }

    private var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return running
    }

    struct Report {
        let samples: Int
        /// Processes whose argv held the secret.
        let cmdlineLeaks: [ProcessView]
        /// Processes whose environment held the secret.
        let environLeaks: [ProcessView]
        /// Every view of a watched process.
        let seen: [ProcessView]
        /// How many environ files could be read, over all samples.
        let environsRead: Int
    }

    /// Stops sampling (after the sample under way) and says what was found.
    func stop() -> Report {
        lock.lock()
        running = false
        lock.unlock()
        done.wait()
        lock.lock()
        defer { lock.unlock() }
        return Report(samples: samples, cmdlineLeaks: cmdlineLeaks, environLeaks: environLeaks, seen: seen,
                      environsRead: environsRead)
    }

    private func sampleOnce() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return }
        var views: [ProcessView] = []
        for name in names {
            guard let pid = Int32(name) else { continue }
            // A process gone since the listing, or a kernel thread, has no cmdline.
            guard let cmdline = Self.read("/proc/\(pid)/cmdline"), !cmdline.isEmpty else { continue }
            views.append(ProcessView(pid: pid, cmdline: cmdline, environ: Self.read("/proc/\(pid)/environ")))
        }
        lock.lock()
        defer { lock.unlock() }
        samples += 1
        for view in views {
            if view.environ != nil { environsRead += 1 }
            if view.cmdline.range(of: needle) != nil && !cmdlineLeaks.contains(view) { cmdlineLeaks.append(view) }
            if let environ = view.environ, environ.range(of: needle) != nil, !environLeaks.contains(view) {
                environLeaks.append(view)
            }
            if watched(view) && !seen.contains(view) { seen.append(view) }
        }
    }

    /// The whole file, or nil if it cannot be opened (the process is gone,
    /// or its environ is not ours to read).
    static func read(_ path: String) -> Data? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let got = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if got < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if got == 0 { return data }
            data.append(contentsOf: buffer[0..<got])
        }
    }
}
