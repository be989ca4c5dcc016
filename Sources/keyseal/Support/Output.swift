import Sealing
#if canImport(Glibc)
import Glibc
#endif

/// stdout carries data only; everything a person reads goes to stderr with a
/// `keyseal:` prefix.
enum Output {
    /// Data for stdout; a failed write (a full disk) is an error, so a script
    /// never takes half an answer for a whole one. (A closed pipe ends
    /// keyseal with SIGPIPE first, as it ends cat.)
    static func data(_ text: String) throws {
        var text = text
        try text.withUTF8 { bytes in try writeAll(STDOUT_FILENO, UnsafeRawBufferPointer(bytes)) }
    }

    static func info(_ text: String) { write(STDERR_FILENO, "keyseal: \(text)\n") }

    static func warning(_ text: String) { write(STDERR_FILENO, "keyseal: warning: \(text)\n") }

    static func hint(_ text: String) { write(STDERR_FILENO, "keyseal: hint: \(text)\n") }

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

/// Quotes a word for a POSIX shell when it needs it, for hints that show a
/// command to type.
enum ShellQuote {
    static func quote(_ word: String) -> String {
        let plain = word.unicodeScalars.allSatisfy { scalar in
            scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "-_./:@%+=,".unicodeScalars.contains(scalar)
        }
        if plain && !word.isEmpty { return word }
        return "'" + word.replacingSingleQuotes() + "'"
    }
}

extension String {
    fileprivate func replacingSingleQuotes() -> String {
        var out = ""
        for character in self { out += character == "'" ? "'\\''" : String(character) }
        return out
    }
}
