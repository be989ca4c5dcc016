// Helpers for the unlock-agent tests: status as data, whether a process is
// gone, clients written in python3 (run as root or as nobody), a reader of
// an agent's memory through /proc/PID/mem, and a /proc sampler for several
// secrets at once.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// No passphrase source at all: the file variable is removed, and the
/// children have no terminal.
let noPassphraseSource: [String: String?] = ["KEYSEAL_PASSPHRASE_FILE": nil]

/// What `keyseal status --json` said.
struct AgentState: CustomStringConvertible {
    let run: RunResult
    let unlocked: Bool
    let secondsLeft: Int?
    let pid: Int32?
    let vault: String?

    var description: String { run.description }
}

extension Sandbox {
    /// Where the agent sockets of this sandbox go.
    var agentDirectory: String { runtime + "/keyseal" }

    /// The socket files in `agentDirectory` (none when it does not exist).
    func agentSockets() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: agentDirectory)) ?? []).filter { $0.hasSuffix(".sock") }
    }

    /// `keyseal status --json` for the default vault; the JSON must parse.
    func status(vault path: String? = nil, env: [String: String?] = noPassphraseSource,
                sourceLocation: SourceLocation = #_sourceLocation) async throws -> AgentState {
        let result = try await run(["status", "--json", "--vault", path ?? vault], env: env)
        let object = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        let json = try #require(object, "status --json printed no object: \(result)", sourceLocation: sourceLocation)
        return AgentState(
            run: result,
            unlocked: json["unlocked"] as? Bool ?? false,
            secondsLeft: (json["seconds_left"] as? NSNumber)?.intValue,
            pid: (json["pid"] as? NSNumber).map { Int32($0.intValue) },
            vault: json["vault"] as? String)
    }

    /// Runs keyseal as a child of python3, for the commands that start an
    /// agent, as a shell would: with no descriptor but stdin, stdout and
    /// stderr, and no blocked signal. Foundation's Process keeps a socket in
    /// each child to learn when it exits, and spawns from threads that block
    /// SIGTERM; an agent that inherited the one would hold Process's wait
    /// until it exits, and one that inherited the other would ignore
    /// SIGTERM (see AgentLifecycleTests).
    func runDetached(_ arguments: [String], stdin: String = "", env: [String: String?] = [:],
                     asNobody: Bool = false) async throws -> RunResult {
        let code = """
            import signal, subprocess, sys
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            sys.exit(subprocess.call(sys.argv[1:]))
            """
        let python = ["/usr/bin/python3", "-c", code, keyseal] + arguments
        if asNobody {
            return try await spawn("/usr/bin/setpriv", Nobody.setpriv + python, stdin: Data(stdin.utf8), env: env,
                                   label: ["setpriv(nobody) keyseal"] + arguments)
        }
        return try await spawn(python[0], Array(python.dropFirst()), stdin: Data(stdin.utf8), env: env,
                               label: ["keyseal"] + arguments)
    }

    /// `keyseal unlock` (passphrase from the sandbox's file unless `env`
    /// says otherwise), which must succeed; returns the agent's pid, as
    /// unlock reported it.
    @discardableResult
    func unlockAgent(_ options: [String] = [], env: [String: String?] = [:],
                     sourceLocation: SourceLocation = #_sourceLocation) async throws -> Int32 {
        let unlocked = try await runDetached(["unlock", "--vault", vault] + options, env: env)
        try #require(unlocked.status == 0, "unlock failed: \(unlocked)", sourceLocation: sourceLocation)
        return try #require(unlocked.reportedAgentPID, "no agent pid in \(unlocked)", sourceLocation: sourceLocation)
    }

    /// `keyseal lock`, which must succeed.
    func lockAgent(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let locked = try await run(["lock", "--vault", vault], env: noPassphraseSource)
        #expect(locked.status == 0, "lock failed: \(locked)", sourceLocation: sourceLocation)
    }

    /// Runs the system python3 with `code` (argv[0] "-c", then `arguments`),
    /// as root, or as nobody through setpriv(1).
    func python3(_ code: String, _ arguments: [String] = [], stdin: Data = Data(), asNobody: Bool = false,
                 env: [String: String?] = [:]) async throws -> RunResult {
        let python = "/usr/bin/python3"
        if asNobody {
            return try await spawn(
                "/usr/bin/setpriv", Nobody.setpriv + [python, "-c", code] + arguments, stdin: stdin, env: env,
                label: ["setpriv(nobody) python3 -c …"] + arguments)
        }
        return try await spawn(python, ["-c", code] + arguments, stdin: stdin, env: env, label: ["python3 -c …"] + arguments)
    }

    /// Runs keyseal as nobody (uid and gid 65534, no groups).
    func runAsNobody(_ arguments: [String], stdin: String = "", env: [String: String?]) async throws -> RunResult {
        try await spawn("/usr/bin/setpriv", Nobody.setpriv + [keyseal] + arguments, stdin: Data(stdin.utf8), env: env,
                        label: ["setpriv(nobody) keyseal"] + arguments)
    }

    /// The python3 reply of a one-line JSON object, parsed.
    static func json(_ result: RunResult, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        return try #require(object, "no JSON object from \(result)", sourceLocation: sourceLocation)
    }
}

extension RunResult {
    /// The pid in unlock's "... (agent pid N); keyseal lock to end it".
    var reportedAgentPID: Int32? {
        guard let range = err.range(of: "(agent pid ") else { return nil }
        return Int32(err[range.upperBound...].prefix { $0.isNumber })
    }
}

extension Sandbox {
    /// When the agent's socket was bound: its file's modification time, set
    /// by the kernel. nil once the socket is gone.
    func socketBirth() -> Date? {
        guard let name = agentSockets().first else { return nil }
        return Self.modified(agentDirectory + "/" + name)
    }

    /// When an entry of the agent directory was last added or removed (the
    /// directory's modification time): once the agent has removed its
    /// socket, the moment it did, as the kernel recorded it. Timings taken
    /// this way do not suffer from the test runner's own scheduling, which a
    /// loaded parallel run can delay by seconds.
    func agentDirectoryChanged() -> Date? {
        Self.modified(agentDirectory)
    }

    static func modified(_ path: String) -> Date? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
    }
}

enum Nobody {
    static let uid: UInt32 = 65534
    static let setpriv = ["--reuid=65534", "--regid=65534", "--clear-groups"]
}

// MARK: Processes

enum ProcessState {
    /// The process has exited: no /proc/PID, or a zombie waiting to be
    /// reaped (it holds no memory any more).
    static func isGone(_ pid: Int32) -> Bool {
        guard let stat = ProcSampler.read("/proc/\(pid)/stat") else { return true }
        // "pid (comm) S ...": the state follows the last ')'.
        let text = String(decoding: stat, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return true }
        let state = text[text.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state == "Z" || state == "X"
    }

    /// Polls every 20 ms until `pid` is gone; false if it still runs after `seconds`.
    static func waitGone(_ pid: Int32, within seconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if isGone(pid) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return isGone(pid)
    }

    /// The command line of `pid`, split at NULs.
    static func arguments(_ pid: Int32) -> [String] {
        (ProcSampler.read("/proc/\(pid)/cmdline") ?? Data()).split(separator: 0, omittingEmptySubsequences: false)
            .dropLast().map { String(decoding: $0, as: UTF8.self) }
    }
}

// MARK: Python clients

enum AgentScripts {
    /// argv: socket path, request hex. Connects (3 s timeout), sends the
    /// request, reads one whole frame or up to the end of the stream, then
    /// checks whether the agent closes the connection (within 1 s). Prints
    /// {"connect": "ok" | errno name, "received": hex, "end": "frame" | "eof" |
    /// "timeout" | errno name, "closed": bool}.
    static let client = #"""
import errno, json, socket, sys
path, request = sys.argv[1], bytes.fromhex(sys.argv[2])
def name(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(3)
try:
    s.connect(path)
except OSError as e:
    print(json.dumps({"connect": name(e), "received": "", "end": "none", "closed": True}))
    sys.exit(0)
try:
    s.sendall(request)
except OSError:
    pass
data, end = b"", "eof"
try:
    while True:
        if len(data) >= 4 and len(data) >= 4 + int.from_bytes(data[:4], "big"):
            end = "frame"
            break
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    end = "timeout"
except OSError as e:
    end = name(e)
closed = end != "frame" and end != "timeout"
if end == "frame":
    s.settimeout(1)
    try:
        more = s.recv(1)
        closed = more == b""
        data += more
    except socket.timeout:
        closed = False
    except OSError:
        closed = True
print(json.dumps({"connect": "ok", "received": data.hex(), "end": end, "closed": closed}))
"""#

    /// argv: pid. stdin: needles, one hex string a line. Reads every
    /// readable mapping of the process through /proc/PID/mem and counts each
    /// needle. Prints {"bytes": bytes read, "mappings": n, "counts": [...]}.
    static let memoryScan = #"""
import json, sys
pid = int(sys.argv[1])
needles = [bytes.fromhex(line) for line in sys.stdin.read().split()]
counts, total, mappings, skipped = [0] * len(needles), 0, 0, 0
# Read in chunks, overlapping by the longest needle less one byte, so a
# large heap needs no large buffer and a needle across a chunk edge counts.
chunk, overlap = 64 << 20, max([len(n) for n in needles] + [1]) - 1
with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
    for line in maps:
        fields = line.split()
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if fields[1][0] != "r" or (len(fields) > 5 and fields[5] in ("[vvar]", "[vvar_vclock]", "[vsyscall]")):
            continue
        # A sanitizer's shadow (terabytes reserved, never a secret's home)
        # is counted as skipped; a normal build has no mapping this large.
        if end - start > (4 << 30) and len(fields) <= 5:
            skipped += 1
            continue
        read_any, at, tail = False, start, b""
        while at < end:
            try:
                mem.seek(at)
                data = mem.read(min(chunk, end - at))
            except (OSError, ValueError, OverflowError):
                break
            if not data:
                break
            read_any = True
            total += len(data)
            window = tail + data
            for i, needle in enumerate(needles):
                counts[i] += window.count(needle) - tail.count(needle)
            tail = window[-overlap:] if overlap else b""
            at += len(data)
        if read_any:
            mappings += 1
print(json.dumps({"bytes": total, "mappings": mappings, "counts": counts, "skipped": skipped}))
"""#

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    static func hex(_ text: String) -> String { hex(Array(text.utf8)) }

    /// A frame: big-endian u32 length, then the body.
    static func frame(_ body: [UInt8]) -> [UInt8] {
        let length = UInt32(body.count)
        return [UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)] + body
    }

    /// The agent protocol's version (AgentProtocol.version in
    /// Sources/Agent/Protocol.swift), written out: a change must show here.
    static let version: UInt8 = 2

    /// hello: the version, opcode 1, no fields.
    static let hello = frame([version, 1])
}

extension Sandbox {
    /// Counts each needle in the memory of `pid`, read through /proc/PID/mem as root.
    func scanMemory(of pid: Int32, for needles: [[UInt8]], sourceLocation: SourceLocation = #_sourceLocation)
        async throws -> (bytes: Int, counts: [Int])
    {
        let input = needles.map(AgentScripts.hex).joined(separator: "\n") + "\n"
        let scan = try await python3(AgentScripts.memoryScan, [String(pid)], stdin: Data(input.utf8))
        try #require(scan.status == 0, "the memory scan failed: \(scan)", sourceLocation: sourceLocation)
        let json = try Sandbox.json(scan, sourceLocation: sourceLocation)
        let counts = (json["counts"] as? [NSNumber] ?? []).map(\.intValue)
        try #require(counts.count == needles.count, "\(scan)", sourceLocation: sourceLocation)
        return ((json["bytes"] as? NSNumber)?.intValue ?? 0, counts)
    }
}

// MARK: Sampling /proc for several secrets

/// As ProcSampler, for several secrets at once: every /proc/PID/cmdline and
/// environ, sampled on a thread of its own until `stop()`.
final class SecretsSampler: @unchecked Sendable {
    // safety: every stored property but the constants and `done` (a
    // semaphore) is read and written only under `lock`.
    private let lock = NSLock()
    private let needles: [(label: String, bytes: Data)]
    private let watched: @Sendable (ProcessView) -> Bool
    private var running = true
    private var samples = 0
    private var leaks: [String] = []
    private var seen: [ProcessView] = []
    private let done = DispatchSemaphore(value: 0)

    init(needles: [(label: String, bytes: Data)], watched: @escaping @Sendable (ProcessView) -> Bool) {
        self.needles = needles
        self.watched = watched
        let thread = Thread { [self] in
            while isRunning { sampleOnce() }
            done.signal()
        }
        thread.start()
    }

    struct Report {
        let samples: Int
        /// "<label> in the cmdline|environ of pid N: argv".
        let leaks: [String]
        let seen: [ProcessView]
    }

    func stop() -> Report {
        lock.lock()
        running = false
        lock.unlock()
        done.wait()
        lock.lock()
        defer { lock.unlock() }
        return Report(samples: samples, leaks: leaks, seen: seen)
    }

    private var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return running
    }

    private func sampleOnce() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return }
        var views: [ProcessView] = []
        for name in names {
            guard let pid = Int32(name) else { continue }
            guard let cmdline = ProcSampler.read("/proc/\(pid)/cmdline"), !cmdline.isEmpty else { continue }
            views.append(ProcessView(pid: pid, cmdline: cmdline, environ: ProcSampler.read("/proc/\(pid)/environ")))
        }
        lock.lock()
        defer { lock.unlock() }
        samples += 1
        for view in views {
            for (label, bytes) in needles {
                if view.cmdline.range(of: bytes) != nil {
                    let leak = "\(label) in the cmdline of \(view)"
                    if !leaks.contains(leak) { leaks.append(leak) }
                }
                if let environ = view.environ, environ.range(of: bytes) != nil {
                    let leak = "\(label) in the environ of \(view)"
                    if !leaks.contains(leak) { leaks.append(leak) }
                }
            }
            if watched(view) && !seen.contains(view) { seen.append(view) }
        }
    }
}
