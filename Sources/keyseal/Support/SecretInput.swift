import Sealing
import Storage
#if canImport(Glibc)
import Glibc
#endif

/// Where a passphrase comes from. Never argv, never a plain environment
/// variable: a variable only names a file.
enum PassphraseSource {
    case fileDescriptor(Int32)
    case file(String)
    case askpass(String)
    case terminal

    static let maxLength = 4096

    static func resolve(fd: Int32?) -> PassphraseSource {
        if let fd { return .fileDescriptor(fd) }
        if let file = Environment.value("KEYSEAL_PASSPHRASE_FILE"), !file.isEmpty { return .file(file) }
        if let program = Environment.value("KEYSEAL_ASKPASS"), !program.isEmpty { return .askpass(program) }
        return .terminal
    }

    /// Done with a passphrase descriptor: closed, so no program keyseal runs
    /// (curl, run's command) inherits it. Standard input is replaced by
    /// /dev/null instead, since a file there could be read again.
    static func release(_ fd: Int32) {
        if fd > 2 {
            close(fd)
        } else if fd == 0 {
            let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
            if null >= 0 { dup2(null, 0); close(null) }
        }
    }

    /// A descriptor or a file named by the user comes before a key file.
    var isExplicit: Bool {
        switch self {
        case .fileDescriptor, .file: true
        case .askpass, .terminal: false
        }
    }

    var isTerminal: Bool {
        if case .terminal = self { return true }
        return false
    }

    /// A passphrase being chosen (init, passwd, export): never empty; on a
    /// terminal asked twice, the two compared in constant time.
    func readNew(prompt: String, repeatPrompt: String, command: String) throws -> SecretBytes {
        let first = try read(prompt: prompt)
        if first.count == 0 {
            throw CLIError(.usage, "the passphrase is empty", hint: "choose a passphrase of several words")
        }
        guard isTerminal else { return first }
        let second = try read(prompt: repeatPrompt)
        guard first.constantTimeEquals(second) else {
            throw CLIError(.usage, "the passphrases do not match", hint: "run keyseal \(command) again")
        }
        return first
    }

    /// The passphrase, with exactly one trailing newline removed. May be
    /// empty: whether that is an error depends on what it is for.
    func read(prompt: String) throws -> SecretBytes {
        let passphrase: SecretBytes
        switch self {
        case let .fileDescriptor(fd):
            guard fcntl(fd, F_GETFD) >= 0 else {
                throw CLIError(.usage, "--passphrase-fd \(fd) is not an open file descriptor",
                               hint: "open it in the shell, for example: keyseal ... --passphrase-fd 3 3<passphrase-file")
            }
            passphrase = try SecretReader.readToEnd(fd: fd, limit: Self.maxLength, what: "passphrase")
            Self.release(fd)
        case let .file(path):
            passphrase = try Self.readFile(path)
        case let .askpass(program):
            passphrase = try Askpass.run(program, prompt: prompt)
        case .terminal:
            passphrase = try Terminal.readHidden(prompt: prompt, limit: Self.maxLength)
        }
        return passphrase
    }

    /// 0644, 0007: a mode as chmod takes it.
    static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    private static func readFile(_ path: String) throws -> SecretBytes {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw CLIError(.unlock, "cannot read KEYSEAL_PASSPHRASE_FILE \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw CLIError(.unlock, "cannot read KEYSEAL_PASSPHRASE_FILE \(path): \(String(cString: strerror(errno)))")
        }
        if info.st_mode & 0o077 != 0 {
            throw CLIError(.unlock, "KEYSEAL_PASSPHRASE_FILE \(path) is open to other users (mode \(Self.octal(info.st_mode & 0o777)))",
                           hint: "run: chmod 600 \(path)")
        }
        return try SecretReader.readToEnd(fd: fd, limit: maxLength, what: "passphrase")
    }
}

/// Reads secrets from descriptors straight into guarded memory.
enum SecretReader {
    /// Everything up to end of file, less exactly one trailing newline (the
    /// one `echo` and most editors add; a second one is kept). More than
    /// `limit` bytes after that is refused rather than cut.
    static func readToEnd(fd: Int32, limit: Int, what: String) throws -> SecretBytes {
        // Room for the limit, one newline, and one byte that shows overflow.
        var buffer = try SecretBytes(count: limit + 2)
        var length = 0
        try buffer.withUnsafeMutableBytes { bytes in
            while length < bytes.count {
                let got = read(fd, bytes.baseAddress! + length, bytes.count - length)
                if got < 0 {
                    if errno == EINTR { continue }
                    throw CLIError(.failure, "cannot read the \(what): \(String(cString: strerror(errno)))")
                }
                if got == 0 { break }
                length += got
            }
        }
        let endsWithNewline = buffer.withUnsafeBytes { length > 0 && $0[length - 1] == UInt8(ascii: "\n") }
        if endsWithNewline { length -= 1 }
        if length > limit {
            throw CLIError(.usage, "the \(what) is longer than \(limit) bytes")
        }
        return try buffer.prefix(length)
    }
}
