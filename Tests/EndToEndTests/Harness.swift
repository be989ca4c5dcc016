// Runs the built `keyseal` binary end to end, as age's testscripts do: a fresh
// temporary HOME per test, every inherited KEYSEAL_* (and XDG_*) variable
// cleared, XDG_RUNTIME_DIR a private directory of the sandbox (for the unlock
// agent's socket), the weak test KDF allowed, the passphrase in a 0600 file,
// stdin a pipe, and no controlling terminal (each child starts in a new
// session). Any agent left running is stopped when its sandbox goes.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

// MARK: Finding the binary

enum KeysealBinary {
    /// The `keyseal` that `swift test` built: next to the test executable
    /// (`.build/<triple>/debug/keysealPackageTests.xctest` on Linux), else
    /// `.build/debug/keyseal` under the package root found from this file.
    static let path: String? = candidates().first { FileManager.default.isExecutableFile(atPath: $0) }

    static func candidates() -> [String] {
        var directories: [URL] = []
        if let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            directories.append(URL(fileURLWithPath: executable).deletingLastPathComponent())
        }
        if let first = CommandLine.arguments.first {
            directories.append(URL(fileURLWithPath: first).standardizedFileURL.deletingLastPathComponent())
        }
        var candidates = directories.map { $0.appendingPathComponent("keyseal").path }
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
                candidates.append(directory.appendingPathComponent(".build/debug/keyseal").path)
                break
            }
            directory = directory.deletingLastPathComponent()
        }
        return candidates
    }

    static func require() throws -> String {
        try #require(path, """
            the keyseal binary was not found; looked at \(candidates().joined(separator: ", ")). \
            Build it first: swift build --build-tests
            """)
    }
}

// MARK: Results

/// What one run left behind. `status` is the exit status, or 128 + the signal.
struct RunResult: CustomStringConvertible {
    let arguments: [String]
    let status: Int32
    let stdout: Data
    let stderr: Data

    var out: String { String(decoding: stdout, as: UTF8.self) }
    var err: String { String(decoding: stderr, as: UTF8.self) }

    var description: String {
        "\(arguments.joined(separator: " ")) -> exit \(status)\n--- stdout\n\(out)\n--- stderr\n\(err)"
    }
}

// MARK: The sandbox

/// One test's world: `root/home` is HOME, `root/work` the working directory
/// (vaults go there), `root/io` keeps the captured output out of both.
/// Removed when the test ends.
final class Sandbox {
    let root: String
    let home: String
    let work: String
    private let io: String
    let passphrase = "correct horse battery staple"
    /// Holds `passphrase` plus the newline an editor adds; mode 0600.
    let passphraseFile: String
    let keyseal: String
    /// XDG_RUNTIME_DIR of every child, mode 0700: the unlock agents of one
    /// test (their sockets go in `runtime/keyseal`) never meet another's.
    let runtime: String
    private var runs = 0

    /// The vault most tests use.
    var vault: String { work + "/vault.db" }

    init() throws {
        keyseal = try KeysealBinary.require()
        var template = Array((NSTemporaryDirectory() + "/keyseal-e2e.XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        let created = try #require(made.map { String(cString: $0) }, "mkdtemp failed: \(String(cString: strerror(errno)))")
        root = URL(fileURLWithPath: created).resolvingSymlinksInPath().path
        home = root + "/home"
        work = root + "/work"
        io = root + "/io"
        passphraseFile = root + "/passphrase"
        runtime = root + "/run"
        for directory in [home, work, io, runtime] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        }
        try #require(chmod(runtime, 0o700) == 0, "chmod \(runtime): \(String(cString: strerror(errno)))")
        try write(passphrase + "\n", to: passphraseFile, mode: 0o600)
    }

    deinit {
        stopAgents()
        try? FileManager.default.removeItem(atPath: root)
    }

    // MARK: Agents

    /// The pids of the running `keyseal agent` processes whose socket lies in
    /// this sandbox (found by their command line; zombies have none).
    func agentPIDs() -> [Int32] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { name -> Int32? in
            guard let pid = Int32(name), let cmdline = ProcSampler.read("/proc/\(pid)/cmdline") else { return nil }
            let arguments = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard arguments.count > 3, arguments[1] == "agent", let flag = arguments.firstIndex(of: "--socket"),
                  flag + 1 < arguments.count, arguments[flag + 1].hasPrefix(root + "/")
            else { return nil }
            return pid
        }
    }

    /// Ends every agent this sandbox's tests started: SIGTERM (the agent
    /// wipes its key and exits), then SIGKILL to any left after 3 s. Runs
    /// when the sandbox goes, so no agent outlives its test, whatever the
    /// test did; tests still `keyseal lock` what they unlock.
    func stopAgents() {
        var pids = agentPIDs()
        guard !pids.isEmpty else { return }
        for pid in pids { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(3)
        while !pids.isEmpty, Date() < deadline {
            usleep(20_000)
            pids = agentPIDs()
        }
        for pid in pids { kill(pid, SIGKILL) }
    }

    // MARK: Running

    /// The environment of every child: the test runner's own, minus every
    /// KEYSEAL_* and XDG_* variable, plus HOME, XDG_RUNTIME_DIR, the weak-KDF
    /// switch and the passphrase file. An override of nil removes a variable.
    func environment(_ overrides: [String: String?]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { name, _ in
            !name.hasPrefix("KEYSEAL_") && !name.hasPrefix("XDG_")
        }
        environment["HOME"] = home
        environment["XDG_RUNTIME_DIR"] = runtime
        environment["KEYSEAL_TEST_ALLOW_WEAK_KDF"] = "1"
        environment["KEYSEAL_PASSPHRASE_FILE"] = passphraseFile
        for (name, value) in overrides { environment[name] = value }
        return environment
    }

    /// Runs keyseal with `arguments`, `stdin` written to a pipe.
    func run(_ arguments: [String], stdin: String = "", env: [String: String?] = [:]) async throws -> RunResult {
        try await run(arguments, stdin: Data(stdin.utf8), env: env)
    }

    func run(_ arguments: [String], stdin: Data, env: [String: String?] = [:]) async throws -> RunResult {
        try await spawn(keyseal, arguments, stdin: stdin, env: env, label: ["keyseal"] + arguments)
    }

    /// Runs `/bin/sh -c script` with the keyseal binary as `$0` and
    /// `arguments` as `"$@"`, e.g. `exec "$0" "$@" --passphrase-fd 3 3<file`.
    func shell(_ script: String, _ arguments: [String], stdin: String = "", env: [String: String?] = [:]) async throws -> RunResult {
        try await spawn("/bin/sh", ["-c", script, keyseal] + arguments, stdin: Data(stdin.utf8), env: env,
                        label: ["sh -c '\(script)' keyseal"] + arguments)
    }

    /// Starts `executable` in a new session (setsid(1), so that it has no
    /// controlling terminal even when the tests run from one), waits for it
    /// and collects its output from files, which cannot fill up and block.
    /// `timeout`: seconds before the watchdog ends the child (a hang, not a
    /// slow machine, should be what trips it).
    func spawn(
        _ executable: String, _ arguments: [String], stdin: Data, env: [String: String?], label: [String], timeout: Int = 30
    ) async throws -> RunResult {
        _ = Self.ignoreSIGPIPE
        runs += 1
        let stdoutPath = "\(io)/\(runs).stdout"
        let stderrPath = "\(io)/\(runs).stderr"
        FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        let stdoutHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        let stderrHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        defer {
            try? stdoutHandle.close()
            try? stderrHandle.close()
        }
        let input = Pipe()

        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.setsid)
        process.arguments = ["--wait", executable] + arguments
        process.environment = environment(env)
        process.currentDirectoryURL = URL(fileURLWithPath: work)
        process.standardInput = input
        process.standardOutput = stdoutHandle
        process.standardError = stderrHandle

        let watchdog = Watchdog()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            process.terminationHandler = { _ in
                watchdog.finish()
                continuation.resume()
            }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                try? input.fileHandleForWriting.close()
                continuation.resume(throwing: error)
                return
            }
            watchdog.arm(pid: process.processIdentifier, seconds: timeout)
            // Feed stdin from another thread: a child that stops reading
            // early must not block the test (EPIPE is ignored).
            let writer = input.fileHandleForWriting
            DispatchQueue.global().async {
                stdin.withUnsafeBytes { bytes in
                    var offset = 0
                    while offset < bytes.count {
                        let written = Glibc.write(writer.fileDescriptor, bytes.baseAddress! + offset, bytes.count - offset)
                        if written < 0 {
                            if errno == EINTR { continue }
                            break
                        }
                        offset += written
                    }
                }
                try? writer.close()
            }
        }

        let status = process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
        return RunResult(
            arguments: label, status: status,
            stdout: try Data(contentsOf: URL(fileURLWithPath: stdoutPath)),
            stderr: try Data(contentsOf: URL(fileURLWithPath: stderrPath)))
    }

    static let setsid: String = {
        let path = ["/usr/bin/setsid", "/bin/setsid"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else { fatalError("setsid(1) (util-linux) is needed to run keyseal without a terminal") }
        return path
    }()

    /// A write to the pipe of a child that exited must fail, not kill the runner.
    static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    // MARK: Common steps

    /// `keyseal init --kdf insecure-testing`, which must succeed.
    @discardableResult
    func initVault(_ path: String? = nil, env: [String: String?] = [:]) async throws -> RunResult {
        let result = try await run(["init", "--kdf", "insecure-testing", "--vault", path ?? vault], env: env)
        try #require(result.status == 0, "init failed: \(result)")
        return result
    }

    /// `keyseal add NAME` with `secret` plus a newline on stdin, which must succeed.
    @discardableResult
    func add(_ name: String, secret: String, options: [String] = [], vault path: String? = nil) async throws -> RunResult {
        let result = try await run(["add", name, "--vault", path ?? vault] + options, stdin: secret + "\n")
        try #require(result.status == 0, "add failed: \(result)")
        return result
    }

    // MARK: Files

    func write(_ text: String, to path: String, mode: mode_t = 0o600) throws {
        try write(Data(text.utf8), to: path, mode: mode)
    }

    func write(_ data: Data, to path: String, mode: mode_t = 0o600) throws {
        try data.write(to: URL(fileURLWithPath: path))
        try #require(chmod(path, mode) == 0, "chmod \(path): \(String(cString: strerror(errno)))")
    }

    func bytes(_ path: String) -> Data? {
        FileManager.default.contents(atPath: path)
    }

    /// Every regular file of `directory` (not recursive), by name, with its bytes.
    func snapshot(_ directory: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            files[name] = bytes(directory + "/" + name)
        }
        return files
    }

    /// The file's permission bits, or nil if it does not exist.
    func mode(_ path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o7777
    }

    /// Runs python3 (for its sqlite3 module) in the work directory, with the
    /// runner's own environment; it must succeed.
    func python(_ code: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", code]
        process.currentDirectoryURL = URL(fileURLWithPath: work)
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "python3 failed: \(String(decoding: message, as: UTF8.self))")
    }
}

/// Kills a child that hangs (say, on a prompt) so the suite fails instead of
/// waiting forever; disarmed once the child has exited, so a reused pid is
/// never signalled.
final class Watchdog: @unchecked Sendable {
    // safety: `done` is only read and written under `lock`.
    private let lock = NSLock()
    private var done = false

    func arm(pid: pid_t, seconds: Int) {
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(seconds)) { [self] in
            lock.lock()
            defer { lock.unlock() }
            if !done { kill(pid, SIGKILL) }
        }
    }

    func finish() {
        lock.lock()
        done = true
        lock.unlock()
    }
}

extension Data {
    func contains(_ text: String) -> Bool {
        range(of: Data(text.utf8)) != nil
    }
}

/// The keys `list --json` documents for each entry, in order.
let documentedEntryKeys = [
    "name", "kind", "header_template", "url", "description",
    "created", "updated", "expires", "last_used", "fingerprint",
    "state", "days_left", "warn_within",
]
