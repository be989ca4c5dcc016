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
    case terminal

    static let maxLength = 4096

    static func resolve(fd: Int32?) -> PassphraseSource {
        if let fd { return .fileDescriptor(fd) }
        if let file = Environment.value("KEYSEAL_PASSPHRASE_FILE"), !file.isEmpty { return .file(file) }
        return .terminal
    }

    var isTerminal: Bool {
        if case .terminal = self { return true }
        return false
    }

    /// The passphrase, with exactly one trailing newline removed.
    func read(prompt: String) throws -> SecretBytes {
        let passphrase: SecretBytes
        switch self {
        case let .fileDescriptor(fd):
            guard fcntl(fd, F_GETFD) >= 0 else {
                throw CLIError(.usage, "--passphrase-fd \(fd) is not an open file descriptor",
                               hint: "open it in the shell, for example: keyseal ... --passphrase-fd 3 3<passphrase-file")
            }
            passphrase = try SecretReader.readAll(fd: fd, limit: Self.maxLength, what: "passphrase").droppingOneNewline()
        case let .file(path):
            passphrase = try Self.readFile(path)
        case .terminal:
            passphrase = try Terminal.readHidden(prompt: prompt, limit: Self.maxLength)
        }
        if passphrase.count == 0 {
            throw CLIError(.unlock, "the passphrase is empty", hint: "a vault passphrase cannot be empty")
        }
        return passphrase
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
            throw CLIError(.unlock, "KEYSEAL_PASSPHRASE_FILE \(path) can be read by other users",
                           hint: "run: chmod 600 \(path)")
        }
        return try SecretReader.readAll(fd: fd, limit: maxLength, what: "passphrase").droppingOneNewline()
    }
}

/// Reads secrets from descriptors straight into guarded memory.
enum SecretReader {
    /// Everything up to end of file; more than `limit` bytes is refused rather
    /// than cut.
    static func readAll(fd: Int32, limit: Int, what: String) throws -> SecretBytes {
        var buffer = try SecretBytes(count: limit + 1)
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
        if length > limit {
            throw CLIError(.usage, "the \(what) is longer than \(limit) bytes")
        }
        return try buffer.prefix(length)
    }
}

extension SecretBytes {
    /// Drops exactly one trailing "\n", the one `echo` and most editors add.
    /// Any other trailing byte, including a second newline, is kept.
    consuming func droppingOneNewline() throws -> SecretBytes {
        let endsWithNewline = withUnsafeBytes { $0.last == UInt8(ascii: "\n") }
        guard endsWithNewline else { return self }
        return try prefix(count - 1)
    }
}
