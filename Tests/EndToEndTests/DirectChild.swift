// Children for the crash and concurrency suites, started with posix_spawn
// rather than Foundation's Process: the pid is keyseal's own (no setsid(1)
// wrapper in between, so SIGKILL lands on keyseal itself), a descriptor
// other than 0-2 can be handed down (--passphrase-fd 3, --new-passphrase-fd
// 3), and a run is synchronous, for threads of its own, so that sixteen
// writers and their readers run at once without holding the test runner's
// cooperative threads.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What one direct child did.
struct ChildOutcome: CustomStringConvertible {
    let arguments: [String]
    /// The exit status, or 128 + the signal.
    let status: Int32
    /// True when it was still running when SIGKILL was sent, i.e. the kill
    /// interrupted it (a child that had exited is a zombie: kill does nothing).
    let killed: Bool
    let stdout: Data
    let stderr: Data
    /// From the spawn to the reaping, in microseconds.
    let elapsed: UInt32

    var out: String { String(decoding: stdout, as: UTF8.self) }
    var err: String { String(decoding: stderr, as: UTF8.self) }

    var description: String {
        "keyseal \(arguments.joined(separator: " ")) -> \(killed ? "killed" : "exit \(status)")\n--- stdout\n\(out)\n--- stderr\n\(err)"
    }
}

/// A child that could not be started (thrown, not recorded: the run may be
/// on a thread outside the test).
struct ChildError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum DirectChild {
    /// POSIX_SPAWN_SETSID (glibc, not imported into Swift): the child starts
    /// a new session, so it has no controlling terminal, as in Sandbox.spawn.
    static let setsidFlag: Int32 = 0x80

    /// glibc's posix_spawn_file_actions_addclosefrom_np (2.34), which
    /// Swift's Glibc module does not import.
    static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// Runs `executable` with `arguments`; `stdin` is written to a pipe (it
    /// must fit in one, 64 KiB); `files` maps descriptor numbers of the child
    /// to files it gets open for reading. With `killAfter` (microseconds),
    /// SIGKILL is sent that long after the exec. Blocks until the child has
    /// exited: call it from a thread of its own (`DirectChild.offPool`).
    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String], stdin: Data = Data(),
        files: [Int32: String] = [:], killAfter: UInt32? = nil, scratch: String
    ) throws -> ChildOutcome {
        precondition(stdin.count < 65_536, "stdin must fit in a pipe")
        var input: [Int32] = [-1, -1]
        guard pipe(&input) == 0 else { throw ChildError("pipe: \(String(cString: strerror(errno)))") }
        // Close-on-exec: the child gets the read end as its stdin (dup2
        // clears the flag there) and nothing else of the runner's.
        for fd in input { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        defer { close(input[0]) }
        stdin.withUnsafeBytes { bytes in
            if bytes.count > 0 { _ = Glibc.write(input[1], bytes.baseAddress!, bytes.count) }
        }
        close(input[1])

        let token = UUID().uuidString
        let outPath = "\(scratch)/\(token).out", errPath = "\(scratch)/\(token).err"
        let outFD = open(outPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let errFD = open(errPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        guard outFD >= 0 && errFD >= 0 else { throw ChildError("cannot create \(outPath): \(String(cString: strerror(errno)))") }
        var opened: [Int32] = [outFD, errFD]
        defer { for fd in opened { close(fd) } }
        var extra: [(Int32, Int32)] = []
        for (target, path) in files {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw ChildError("cannot open \(path): \(String(cString: strerror(errno)))") }
            opened.append(fd)
            extra.append((fd, target))
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outFD, 1)
        posix_spawn_file_actions_adddup2(&actions, errFD, 2)
        for (fd, target) in extra { posix_spawn_file_actions_adddup2(&actions, fd, target) }
        // Nothing else of the runner's: a descriptor another test has open
        // without close-on-exec (a script being written, say) would stay
        // open in keyseal for its whole life, and exec of that script in
        // the other test would fail with ETXTBSY.
        if let closeFrom = Self.addCloseFrom {
            _ = closeFrom(&actions, (extra.map(\.1).max() ?? 2) + 1)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // No blocked signal and default dispositions (the runner ignores
        // SIGPIPE), as a shell would start it.
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | setsidFlag))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let started = DispatchTime.now().uptimeNanoseconds
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard spawned == 0 else { throw ChildError("posix_spawn \(executable): \(String(cString: strerror(spawned)))") }

        if let killAfter {
            if killAfter > 0 { usleep(killAfter) }
            // The child is not reaped yet, so the pid is still its own; a
            // child that has exited is a zombie, and the kill does nothing.
            kill(pid, SIGKILL)
        }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        let signalled = raw & 0x7f
        let status = signalled == 0 ? (raw >> 8) & 0xff : 128 + signalled
        // Nothing else sends SIGKILL: died of it = interrupted by the kill.
        let killed = killAfter != nil && signalled == SIGKILL
        let elapsed = UInt32(min((DispatchTime.now().uptimeNanoseconds - started) / 1000, UInt64(UInt32.max)))
        return ChildOutcome(
            arguments: arguments, status: status, killed: killed,
            stdout: FileManager.default.contents(atPath: outPath) ?? Data(),
            stderr: FileManager.default.contents(atPath: errPath) ?? Data(), elapsed: elapsed)
    }

    /// Runs `body` on a new thread and waits for it without blocking a
    /// cooperative thread of the test runner.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }
}

extension Sandbox {
    /// Runs keyseal directly (DirectChild) on a thread of its own, with the
    /// sandbox's environment plus `env`.
    func direct(
        _ arguments: [String], stdin: String = "", env: [String: String?] = [:], files: [Int32: String] = [:],
        killAfter: UInt32? = nil
    ) async throws -> ChildOutcome {
        let (keyseal, environment, scratch, input) = (keyseal, environment(env), root, Data(stdin.utf8))
        return try await DirectChild.offPool {
            try DirectChild.run(keyseal, arguments, environment: environment, stdin: input,
                                files: files, killAfter: killAfter, scratch: scratch)
        }
    }

    /// As `direct`, started now and awaited later.
    func directInBackground(_ arguments: [String], env: [String: String?] = [:]) -> Task<ChildOutcome, any Error> {
        let (keyseal, environment, scratch) = (keyseal, environment(env), root)
        return Task.detached {
            try await DirectChild.offPool {
                try DirectChild.run(keyseal, arguments, environment: environment, scratch: scratch)
            }
        }
    }

    /// Starts keyseal on a thread of its own; `isDone` says, without
    /// waiting, whether it has exited.
    func startDirect(_ arguments: [String], env: [String: String?] = [:], files: [Int32: String] = [:]) -> BackgroundChild {
        BackgroundChild(keyseal, arguments, environment: environment(env), files: files, scratch: root)
    }
}

final class BackgroundChild: @unchecked Sendable {
    // safety: `outcome` is read and written only under `lock`.
    private let lock = NSLock()
    private var outcome: Result<ChildOutcome, any Error>?
    private let done = DispatchSemaphore(value: 0)

    init(_ executable: String, _ arguments: [String], environment: [String: String], files: [Int32: String], scratch: String) {
        let thread = Thread { [self] in
            let result = Result { try DirectChild.run(executable, arguments, environment: environment, files: files, scratch: scratch) }
            lock.lock()
            outcome = result
            lock.unlock()
            done.signal()
        }
        thread.start()
    }

    var isDone: Bool {
        lock.lock()
        defer { lock.unlock() }
        return outcome != nil
    }

    func wait() async throws -> ChildOutcome {
        try await DirectChild.offPool { [self] in
            done.wait()
            done.signal()
            lock.lock()
            defer { lock.unlock() }
            return try outcome!.get()
        }
    }
}

/// A python3 that stays up for a whole suite and checks vault files with
/// SQLite itself (the module python3 links), one JSON request a line:
/// starting python3 for every check would cost 100 ms each time.
final class VaultInspector: @unchecked Sendable {
    // safety: used by one test at a time; every request runs under `lock`.
    private let lock = NSLock()
    private let process = Process()
    private let requests = Pipe()
    private let answers = Pipe()
    private var buffer = Data()

    /// For each request {"path": P}: the file opened read-only (so the
    /// check never rolls a journal back itself), PRAGMA integrity_check,
    /// foreign_key_check, rows of dependent tables whose entry is gone, the
    /// entries with their fields, fingerprint, revision and previous values,
    /// and the key slots.
    static let script = #"""
import json, sqlite3, sys
for line in sys.stdin:
    path = json.loads(line)["path"]
    out = {}
    try:
        c = sqlite3.connect("file:" + path + "?mode=ro", uri=True)
        out["integrity"] = [r[0] for r in c.execute("PRAGMA integrity_check")]
        out["foreign_keys"] = [[str(x) for x in r] for r in c.execute("PRAGMA foreign_key_check")]
        out["orphans"] = sum(c.execute(
            "SELECT count(*) FROM %s WHERE entry_id NOT IN (SELECT entry_id FROM entries)" % t).fetchone()[0]
            for t in ("previous_values", "bearer_tokens", "token_lifetimes"))
        entries = {}
        for r in c.execute("""SELECT name, lower(hex(entry_id)), lower(hex(fingerprint)), revision, kind, description,
                url, header_template, warn_within, max_age,
                (SELECT count(*) FROM previous_values p WHERE p.entry_id = e.entry_id),
                (SELECT max(version) FROM previous_values p WHERE p.entry_id = e.entry_id)
                FROM entries e"""):
            entries[r[0]] = {"id": r[1], "fingerprint": r[2], "revision": r[3], "kind": r[4], "description": r[5],
                             "url": r[6], "header": r[7], "warn_within": r[8], "max_age": r[9],
                             "previous": r[10], "newest_previous": r[11]}
        out["entries"] = entries
        out["previous_ids"] = [r[0] for r in c.execute("SELECT DISTINCT lower(hex(entry_id)) FROM previous_values")]
        out["slots"] = [r[0] for r in c.execute("SELECT method FROM key_slots ORDER BY slot_id")]
        c.close()
    except Exception as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(out), flush=True)
"""#

    struct Report {
        let integrity: [String]
        let foreignKeys: [[String]]
        let orphans: Int
        let entries: [String: [String: Any]]
        let previousIDs: Set<String>
        let slots: [String]

        var isSound: Bool { integrity == ["ok"] && foreignKeys.isEmpty && orphans == 0 }

        func fingerprint(_ name: String) -> String? { entries[name]?["fingerprint"] as? String }
        func string(_ name: String, _ field: String) -> String? { entries[name]?[field] as? String }
        func int(_ name: String, _ field: String) -> Int? { (entries[name]?[field] as? NSNumber)?.intValue }
    }

    init() throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", Self.script]
        process.standardInput = requests
        process.standardOutput = answers
        try process.run()
    }

    deinit {
        try? requests.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    func inspect(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Report {
        lock.lock()
        defer { lock.unlock() }
        let request = try JSONSerialization.data(withJSONObject: ["path": path]) + Data("\n".utf8)
        try requests.fileHandleForWriting.write(contentsOf: request)
        while !buffer.contains(UInt8(ascii: "\n")) {
            let chunk = answers.fileHandleForReading.availableData
            try #require(!chunk.isEmpty, "the python3 inspector exited", sourceLocation: sourceLocation)
            buffer.append(chunk)
        }
        let end = buffer.firstIndex(of: UInt8(ascii: "\n"))!
        let line = buffer[buffer.startIndex..<end]
        buffer = Data(buffer[buffer.index(after: end)...])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any], sourceLocation: sourceLocation)
        if let error = json["error"] as? String {
            Issue.record("SQLite could not read \(path): \(error)", sourceLocation: sourceLocation)
        }
        return Report(
            integrity: json["integrity"] as? [String] ?? [],
            foreignKeys: json["foreign_keys"] as? [[String]] ?? [],
            orphans: (json["orphans"] as? NSNumber)?.intValue ?? -1,
            entries: json["entries"] as? [String: [String: Any]] ?? [:],
            previousIDs: Set(json["previous_ids"] as? [String] ?? []),
            slots: json["slots"] as? [String] ?? [])
    }
}

@Suite struct DirectChildTests {
    @Test("a direct child gets stdin, stdout, stderr and the descriptors named, nothing else of the runner's")
    func onlyTheNamedDescriptors() throws {
        let directory = NSTemporaryDirectory()
        // A descriptor of the runner without close-on-exec, as another test may hold.
        let marker = directory + "/leaky-\(UUID().uuidString)"
        let leaky = open(marker, O_WRONLY | O_CREAT, 0o600)
        defer {
            close(leaky)
            unlink(marker)
        }
        try #require(leaky >= 0)
        let listed = try DirectChild.run("/bin/sh", ["-c", "for f in /proc/$$/fd/*; do echo \"${f##*/} $(readlink $f)\"; done"],
                                         environment: [:], files: [3: "/dev/null"], scratch: directory)
        #expect(listed.status == 0, "\(listed)")
        #expect(!listed.out.contains("leaky-"), "\(listed)")
        #expect(listed.out.contains("\n3 /dev/null\n"), "\(listed)")
    }
}
