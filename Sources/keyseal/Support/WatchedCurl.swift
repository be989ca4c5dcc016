#if canImport(Glibc)
import Glibc
#endif

/// One run of curl whose answer keyseal watches, for `keyseal curl` with a
/// kept bearer token: if the server refuses the token (401), the answer is
/// withheld and the request made again with a new token, so the user sees
/// one warning line rather than a failure and then the output.
///
/// curl writes the response headers to a pipe of ours (`-D /dev/fd/N`) and
/// the body to its stdout, another pipe of ours. The body is held until
/// curl ends (curl flushes the -D file only then), and passed to keyseal's
/// stdout unless the final status was 401; an answer larger than
/// `holdLimit` is passed on as it comes, and not retried. stdin and stderr
/// are curl's own (the caller retries only requests that do not read stdin).
enum WatchedCurl {
    enum Outcome: Equatable {
        /// curl ended with this status (128 + the signal if one ended it),
        /// and its output was passed on.
        case finished(Int32)
        /// The final response was 401 and nothing of it was passed on.
        case refused
    }

    static let holdLimit = 1 << 20

    static func run(_ curl: String, arguments: [String], environment: [String]) throws -> Outcome {
        var body: [Int32] = [-1, -1], headers: [Int32] = [-1, -1]
        guard pipe(&body) == 0, pipe(&headers) == 0 else {
            for fd in body + headers where fd >= 0 { close(fd) }
            throw CLIError(.failure, "cannot make pipes for curl: \(String(cString: strerror(errno)))")
        }
        for fd in [body[0], headers[0]] { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(headers[0], F_SETFL, fcntl(headers[0], F_GETFL) | O_NONBLOCK)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, body[1], 1)
        posix_spawn_file_actions_addclose(&actions, body[1])
        // The URL stays last; -D before it names our pipe, inherited as it is.
        var full = arguments
        full.insert(contentsOf: ["-D", "/dev/fd/\(headers[1])"], at: full.count - 1)
        var pid = pid_t()
        let spawned = Spawn.start(&pid, curl, full, environment, &actions)
        close(body[1])
        close(headers[1])
        guard spawned == 0 else {
            close(body[0])
            close(headers[0])
            throw CLIError(.cannotExecute, "cannot run \(curl): \(String(cString: strerror(spawned)))")
        }

        var headerText: [UInt8] = []
        var held: [UInt8] = []
        var passing = false
        var buffer = [UInt8](repeating: 0, count: 65_536)
        /// Reads what the headers pipe holds; true at its end.
        func readHeaders() -> Bool {
            while true {
                let count = buffer.withUnsafeMutableBytes { read(headers[0], $0.baseAddress!, $0.count) }
                if count > 0 {
                    if headerText.count < 262_144 { headerText += buffer[0..<count] }
                    continue
                }
                if count == 0 { return true }
                if errno == EINTR { continue }
                return false
            }
        }
        func pass(_ bytes: ArraySlice<UInt8>) {
            bytes.withUnsafeBytes { raw in
                var written = 0
                while written < raw.count {
                    let count = write(1, raw.baseAddress! + written, raw.count - written)
                    if count > 0 { written += count } else if count < 0 && errno == EINTR { continue } else { return }
                }
            }
        }
        Spawn.readUntilClosed([body[0], headers[0]]) { fd in
            if fd == headers[0] { return readHeaders() }
            let count = buffer.withUnsafeMutableBytes { read(body[0], $0.baseAddress!, $0.count) }
            if count <= 0 { return !(count < 0 && errno == EINTR) }
            // curl writes the -D file through stdio, flushed only when it
            // ends, so the status is known at the end: the answer is held
            // until then, unless it outgrows the limit.
            if !passing, held.count + count > holdLimit {
                passing = true
                pass(held[...])
                held = []
            }
            if passing { pass(buffer[0..<count]) } else { held += buffer[0..<count] }
            return false
        }
        close(body[0])
        close(headers[0])
        let status = Spawn.wait(pid)
        if !passing && status == 0 && finalStatus(headerText) == 401 { return .refused }
        pass(held[...])
        return .finished(status)
    }

    /// The status of the last complete response header block ("HTTP/1.1 401
    /// Unauthorized", "HTTP/2 401"), skipping 1xx interim responses; nil when
    /// there is none.
    static func finalStatus(_ text: [UInt8]) -> Int? {
        var status: Int?
        var blockStatus: Int?
        // Split as bytes: as Swift text, "\r\n" is one Character, not a "\n".
        // The piece after the last "\n" is not a whole line yet.
        for rawLine in text.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast() {
            let line = rawLine.last == 0x0D ? rawLine.dropLast() : rawLine
            if line.starts(with: Array("HTTP/".utf8)) {
                let parts = line.split(separator: 0x20)
                blockStatus = parts.count >= 2 ? Int(String(decoding: parts[1], as: UTF8.self)) : nil
            } else if line.isEmpty, let code = blockStatus {
                if !(100..<200).contains(code) { status = code }
                blockStatus = nil
            }
        }
        return status
    }
}
