import Sealing
import Storage

/// Reads a dotenv file (`NAME=value` lines) into an import session, a line
/// at a time in guarded memory. Understood: blank lines, `#` comments, an
/// optional `export ` prefix, values bare (a ` #` starts a comment), in
/// single quotes (taken as they are) or in double quotes (with \n, \r, \t,
/// \", \\ and \$ escapes). A value cannot span lines. An error names the
/// line, never its value.
struct DotenvReader {
    let file: String
    /// Each entry is made from this (name and secret filled in per line).
    let template: TransferEntry

    /// One `NAME=value` line, its value decoded into guarded memory.
    struct Assignment: ~Copyable {
        let name: String
        let value: SecretBytes
    }

    struct LineError: Error {
        let reason: String
    }

    func read(_ source: inout GuardedByteSource, progress: (Int, Int64) -> Void, into session: CheckedImport) throws {
        var line = try GuardedText(capacity: 1024, limit: 1 << 20)
        var number = 0
        var entries = 0
        while try source.peek() != nil {
            number += 1
            line.removeAll()
            while let byte = try source.next(), byte != 0x0A { try line.append(byte) }
            let lineNumber = number
            var parsed: Assignment?
            do {
                parsed = try line.withUnsafeBytes { (bytes) throws in try Self.parse(bytes) }
            } catch let error as LineError {
                throw CLIError(.usage, "\(file), line \(lineNumber): \(error.reason)",
                               hint: "fix the line (NAME=value, one per line); nothing was imported")
            }
            guard let assignment = parsed.take() else { continue }
            var entry = template
            entry.name = assignment.name
            do {
                try session.add(entry, secret: assignment.value)
            } catch where Failure.status(for: error) == .usage {
                // Only what the line itself gets wrong is the line's fault; a
                // full disk or a failing write is reported as it is.
                throw CLIError(.usage, "\(file), line \(lineNumber): \(Failure.message(for: error))", hint: "fix the line; nothing was imported")
            }
            entries += 1
            progress(entries, source.consumed)
        }
    }

    /// One line: nil when blank or a comment.
    static func parse(_ line: UnsafeRawBufferPointer) throws -> Assignment? {
        var end = line.count
        if end > 0, line[end - 1] == 0x0D { end -= 1 }
        var index = 0
        func skipBlanks() { while index < end, line[index] == 0x20 || line[index] == 0x09 { index += 1 } }
        skipBlanks()
        if index == end || line[index] == UInt8(ascii: "#") { return nil }
        let exportWord = Array("export".utf8)
        if end - index > exportWord.count, line[index..<(index + exportWord.count)].elementsEqual(exportWord),
           line[index + exportWord.count] == 0x20 || line[index + exportWord.count] == 0x09 {
            index += exportWord.count
            skipBlanks()
        }
        let nameStart = index
        func isNameByte(_ byte: UInt8, first: Bool) -> Bool {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "_"): true
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"): !first
            default: false
            }
        }
        while index < end, isNameByte(line[index], first: index == nameStart) { index += 1 }
        guard index > nameStart else { throw LineError(reason: "expected NAME=value (a name is letters, digits and _ . -, not starting with a digit)") }
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: line[nameStart..<index]), as: UTF8.self)
        skipBlanks()
        guard index < end, line[index] == UInt8(ascii: "=") else { throw LineError(reason: "\(name) is not followed by =") }
        index += 1
        skipBlanks()
        var value = try GuardedText(capacity: max(16, end - index), limit: Vault.maxSecretLength * 2)
        if index < end, line[index] == UInt8(ascii: "\"") || line[index] == UInt8(ascii: "'") {
            let quote = line[index]
            index += 1
            var closed = false
            while index < end {
                let byte = line[index]
                index += 1
                if byte == quote { closed = true; break }
                if quote == UInt8(ascii: "\""), byte == UInt8(ascii: "\\"), index < end {
                    let escaped = line[index]
                    index += 1
                    switch escaped {
                    case UInt8(ascii: "n"): try value.append(0x0A)
                    case UInt8(ascii: "r"): try value.append(0x0D)
                    case UInt8(ascii: "t"): try value.append(0x09)
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "$"): try value.append(escaped)
                    default:
                        try value.append(byte)
                        try value.append(escaped)
                    }
                } else {
                    try value.append(byte)
                }
            }
            guard closed else { throw LineError(reason: "the value of \(name) has no closing quote (values cannot span lines)") }
            skipBlanks()
            guard index == end || line[index] == UInt8(ascii: "#") else {
                throw LineError(reason: "text follows the closing quote of \(name)'s value")
            }
        } else {
            var valueEnd = index
            var scan = index
            while scan < end {
                if line[scan] == UInt8(ascii: "#"), scan > index, line[scan - 1] == 0x20 || line[scan - 1] == 0x09 { break }
                scan += 1
                if line[scan - 1] != 0x20 && line[scan - 1] != 0x09 { valueEnd = scan }
            }
            try value.append(UnsafeRawBufferPointer(rebasing: line[index..<valueEnd]))
        }
        guard value.count > 0 else { throw LineError(reason: "\(name) has an empty value; keyseal stores no empty secret") }
        return Assignment(name: name, value: try value.secret())
    }
}
