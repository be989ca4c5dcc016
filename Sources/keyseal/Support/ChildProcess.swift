import Sealing
#if canImport(Glibc)
import Glibc
#endif

/// Runs a program to completion with its stdin fed from guarded memory and
/// its stdout read into guarded memory: for the bearer exchange, where curl
/// is the transport and both the request body (the API key) and the answer
/// (the token) are secrets. Its stderr is read as text, capped, for error
/// messages. Unlike Launcher, keyseal stays: it has to read the answer.
struct ChildProcess {
    struct Result: ~Copyable {
        /// The exit status, or 128 + the signal that ended it.
        let status: Int32
        let output: SecretBytes
        /// True when the program wrote more than `maxOutput` bytes (the
        /// rest was read and dropped).
        let outputTruncated: Bool
        let errorText: String
    }

    /// `arguments` includes argv[0]. The program gets `input` on stdin, then
    /// end of file; at most `maxOutput` bytes of its stdout are kept.
    static func run(
        _ path: String, arguments: [String], environment: [String],
        input: borrowing SecretBytes, maxOutput: Int
    ) throws -> Result {
        var stdinPipe: [Int32] = [-1, -1], stdoutPipe: [Int32] = [-1, -1], stderrPipe: [Int32] = [-1, -1]
        guard pipe(&stdinPipe) == 0, pipe(&stdoutPipe) == 0, pipe(&stderrPipe) == 0 else {
            for fd in stdinPipe + stdoutPipe + stderrPipe where fd >= 0 { close(fd) }
            throw CLIError(.failure, "cannot make pipes for \(arguments[0]): \(String(cString: strerror(errno)))")
        }
        // Our ends must not leak into the child (one thread: no race).
        for fd in [stdinPipe[1], stdoutPipe[0], stderrPipe[0]] { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)
        for fd in [stdinPipe[0], stdoutPipe[1], stderrPipe[1]] { posix_spawn_file_actions_addclose(&actions, fd) }

        var pid = pid_t()
        let spawned = Spawn.start(&pid, path, arguments, environment, &actions)
        for fd in [stdinPipe[0], stdoutPipe[1], stderrPipe[1]] { close(fd) }
        guard spawned == 0 else {
            for fd in [stdinPipe[1], stdoutPipe[0], stderrPipe[0]] { close(fd) }
            throw CLIError(.failure, "cannot run \(path): \(String(cString: strerror(spawned)))")
        }

        // The body is small (well under a pipe's 64 KiB), so it is written
        // whole before anything is read; SIGPIPE would end keyseal if the
        // child closed stdin early, so a short write is simply given up.
        // An ignored SIGPIPE is inherited through exec, so it is put back at
        // once: curl or run's command, started later, must get the default.
        let previous = signal(SIGPIPE, SIG_IGN)
        input.withUnsafeBytes { bytes in
            var written = 0
            while written < bytes.count {
                let count = write(stdinPipe[1], bytes.baseAddress! + written, bytes.count - written)
                if count > 0 { written += count } else if count < 0 && errno == EINTR { continue } else { break }
            }
        }
        close(stdinPipe[1])
        signal(SIGPIPE, previous)

        var output = try SecretBytes(count: maxOutput)
        var outputLength = 0
        var truncated = false
        var errorBytes: [UInt8] = []
        // Stdout past the cap may still be secret: drained into guarded memory.
        var drain = try SecretBytes(count: 4096)
        var scratch = [UInt8](repeating: 0, count: 4096)
        Spawn.readUntilClosed([stdoutPipe[0], stderrPipe[0]]) { fd in
            let count: Int
            if fd == stdoutPipe[0] {
                let room = maxOutput - outputLength
                if room > 0 {
                    let offset = outputLength
                    count = output.withUnsafeMutableBytes { read(fd, $0.baseAddress! + offset, room) }
                    if count > 0 { outputLength += count }
                } else {
                    count = drain.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
                    if count > 0 { truncated = true }
                }
            } else {
                count = scratch.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
                if count > 0, errorBytes.count < 16_384 { errorBytes += scratch[0..<count] }
            }
            return count == 0 || (count < 0 && errno != EINTR)
        }
        close(stdoutPipe[0])
        close(stderrPipe[0])

        return Result(status: Spawn.wait(pid), output: try output.prefix(outputLength), outputTruncated: truncated,
                      errorText: String(decoding: errorBytes, as: UTF8.self))
    }
}

/// posix_spawn(3) and waitpid(2), as ChildProcess and WatchedCurl use them.
enum Spawn {
    /// Starts `path` with `arguments` (argv[0] included) and exactly
    /// `environment`; returns posix_spawn's result (0 or an errno).
    static func start(
        _ pid: inout pid_t, _ path: String, _ arguments: [String], _ environment: [String],
        _ actions: inout posix_spawn_file_actions_t
    ) -> Int32 {
        var argv = arguments.map { strdup($0) } + [nil]
        var envp = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        return posix_spawn(&pid, path, &actions, nil, &argv, &envp)
    }

    /// Calls `ready` with each descriptor that poll(2) finds readable (or
    /// closed) until every one has reported its end: `ready` returns true
    /// when its read found the end of the stream (or an error).
    static func readUntilClosed(_ descriptors: [Int32], _ ready: (Int32) -> Bool) {
        var open = descriptors
        while !open.isEmpty {
            var polled = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if poll(&polled, nfds_t(polled.count), -1) < 0 {
                if errno == EINTR { continue }
                return
            }
            for entry in polled where entry.revents != 0 && ready(entry.fd) {
                open.removeAll { $0 == entry.fd }
            }
        }
    }

    /// The child's exit status, or 128 + the signal that ended it (as a shell reports it).
    static func wait(_ pid: pid_t) -> Int32 {
        var waitStatus: Int32 = 0
        while waitpid(pid, &waitStatus, 0) < 0 && errno == EINTR {}
        return (waitStatus & 0x7F) == 0 ? (waitStatus >> 8) & 0xFF : 128 + (waitStatus & 0x7F)
    }
}
