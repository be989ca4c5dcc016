import Sealing
#if canImport(Glibc)
import Glibc
#endif

/// stdout carries data only; everything a person reads goes to stderr with a
/// `keyseal:` prefix.
enum Output {
    static func data(_ text: String) { write(STDOUT_FILENO, text) }

    static func info(_ text: String) { write(STDERR_FILENO, "keyseal: \(text)\n") }

    static func warning(_ text: String) { write(STDERR_FILENO, "keyseal: warning: \(text)\n") }

    static func error(_ text: String, hint: String? = nil) {
        var message = "keyseal: error: \(text)\n"
        if let hint { message += "keyseal: hint: \(hint)\n" }
        write(STDERR_FILENO, message)
    }

    /// Writes a secret straight from guarded memory, so it never becomes a
    /// Swift string.
    static func secret(_ secret: borrowing SecretBytes, to fd: Int32 = STDOUT_FILENO) throws(CLIError) {
        try secret.withUnsafeBytes { (bytes) throws(CLIError) in try writeAll(fd, bytes) }
    }

    static func write(_ fd: Int32, _ text: String) {
        var text = text
        text.withUTF8 { try? writeAll(fd, UnsafeRawBufferPointer($0)) }
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(CLIError) {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw CLIError(.failure, "cannot write output: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }
}
