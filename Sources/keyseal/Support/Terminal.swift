import Sealing
#if canImport(Glibc)
import Glibc
#endif

/// No-echo prompts on the controlling terminal (/dev/tty), never on stdout,
/// so prompts work while stdin and stdout are pipes.
enum Terminal {
    /// The settings to put back if a signal arrives while echo is off.
    nonisolated(unsafe) private static var savedSettings = termios()
    nonisolated(unsafe) private static var savedFD: Int32 = -1

    static func readHidden(prompt: String, limit: Int) throws -> SecretBytes {
        let fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else {
            throw CLIError(.unlock, "no terminal to ask for the passphrase",
                           hint: "run keyseal unlock first, or give --passphrase-fd N, KEYSEAL_PASSPHRASE_FILE (a file of mode 0600), KEYSEAL_KEYFILE or KEYSEAL_ASKPASS")
        }
        defer { close(fd) }
        return try readHidden(fd: fd, prompt: prompt, limit: limit)
    }

    /// Reads one line with echo off from `fd`, which must be a terminal.
    static func readHidden(fd: Int32, prompt: String, limit: Int) throws -> SecretBytes {
        var original = termios()
        guard tcgetattr(fd, &original) == 0 else {
            throw CLIError(.failure, "cannot read terminal settings: \(String(cString: strerror(errno)))")
        }
        Output.write(fd, prompt)
        var silent = original
        silent.c_lflag &= ~tcflag_t(ECHO | ECHONL)
        savedSettings = original
        savedFD = fd
        let previousInt = signal(SIGINT, restoreAndReraise)
        let previousTerm = signal(SIGTERM, restoreAndReraise)
        let previousHup = signal(SIGHUP, restoreAndReraise)
        guard tcsetattr(fd, TCSAFLUSH, &silent) == 0 else {
            throw CLIError(.failure, "cannot turn off echo: \(String(cString: strerror(errno)))")
        }
        defer {
            tcsetattr(fd, TCSAFLUSH, &original)
            signal(SIGINT, previousInt)
            signal(SIGTERM, previousTerm)
            signal(SIGHUP, previousHup)
            savedFD = -1
            Output.write(fd, "\n")
        }
        return try readLine(fd: fd, limit: limit)
    }

    /// One byte at a time up to the newline, into guarded memory.
    private static func readLine(fd: Int32, limit: Int) throws -> SecretBytes {
        var buffer = try SecretBytes(count: limit + 1)
        var length = 0
        var sawNewline = false
        try buffer.withUnsafeMutableBytes { bytes in
            while length < bytes.count {
                let got = read(fd, bytes.baseAddress! + length, 1)
                if got < 0 {
                    if errno == EINTR { continue }
                    throw CLIError(.failure, "cannot read from the terminal: \(String(cString: strerror(errno)))")
                }
                if got == 0 { break }
                if bytes[length] == UInt8(ascii: "\n") { sawNewline = true; bytes[length] = 0; break }
                length += 1
            }
        }
        if length > limit || (!sawNewline && length == limit + 1) {
            throw CLIError(.usage, "the input is longer than \(limit) bytes")
        }
        // A terminal in canonical mode may hand us "\r\n" when icrnl is off.
        let endsWithCR = buffer.withUnsafeBytes { length > 0 && $0[length - 1] == UInt8(ascii: "\r") }
        return try buffer.prefix(endsWithCR ? length - 1 : length)
    }
}

/// Puts the terminal back, then lets the signal do what it would have done.
private func restoreAndReraise(_ signalNumber: Int32) {
    Terminal.restoreForSignal()
    signal(signalNumber, SIG_DFL)
    raise(signalNumber)
}

extension Terminal {
    fileprivate static func restoreForSignal() {
        if savedFD >= 0 { tcsetattr(savedFD, TCSAFLUSH, &savedSettings) }
    }
}
