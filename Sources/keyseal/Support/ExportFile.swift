import Policy
import Sealing
import Storage
#if canImport(Glibc)
import Glibc
#endif

/// The two export files (docs/FORMAT.md, "Exports").
///
/// Sealed: three text lines, then a libsodium secretstream:
///
///     keyseal-export/1
///     sealed argon2id13 ops=<n> mem=<bytes> salt=<32 hex>
///     <empty line>
///     <24-byte stream header> then messages, each <u32 big-endian length><sealed bytes>
///
/// The key is Argon2id over the export passphrase with that salt and cost.
/// The first message is the export's header object (its associated data is
/// the three text lines, so changing them fails), then one message per
/// entry (ExportRecord), then an empty message with the final tag, so a
/// file cut short is refused.
///
/// Plaintext (`--plaintext`): one JSON document, an entry per line:
///
///     {"format":"keyseal-export","version":1,"sealed":false,"exported_at":"…","entry_count":N,"entries":[
///     {…},
///     {…}
///     ]}
enum ExportFile {
    static let magic = "keyseal-export/1"
    static let formatName = "keyseal-export"
    static let version: Int64 = 1
    /// A sealed message longer than this is refused before it is allocated.
    static let maxMessageLength = 32 << 20

    static func headerObject(exportedAt: Int64, sealed: Bool, entries: Int) -> String {
        "{\"format\":\"\(formatName)\",\"version\":\(version),\"sealed\":\(sealed),"
            + "\"exported_at\":\(JSON.quote(Timestamp.iso8601(exportedAt))),\"entry_count\":\(entries)"
    }
}

/// Writes an export to a file descriptor, one entry at a time.
struct ExportWriter: ~Copyable {
    private let fd: Int32
    private var stream: SealedStream?
    private var record: GuardedText
    private var entries = 0
    private var hasPrevious = false
    private var open = false

    /// A sealed export: derives the key and writes the text header, the
    /// stream header and the header message.
    init(sealedTo fd: Int32, passphrase: borrowing SecretBytes, kdf: KDFParameters, exportedAt: Int64, entries: Int) throws {
        // Everything that can fail runs before any stored property is set.
        let buffer = try GuardedText(capacity: 64 * 1024, limit: ExportFile.maxMessageLength - SealedStream.overhead)
        let salt = try Random.bytes(KeyDerivation.saltLength)
        let text = "\(ExportFile.magic)\nsealed argon2id13 ops=\(kdf.opsLimit) mem=\(kdf.memLimit) salt=\(Hex.encode(salt))\n\n"
        let key = try KeyDerivation.deriveKey(passphrase: passphrase, salt: salt, parameters: kdf)
        var sealing = try SealedStream.push(key: key)
        try Self.write(fd, Array(text.utf8) + sealing.header)
        var header = ExportFile.headerObject(exportedAt: exportedAt, sealed: true, entries: entries) + "}"
        let sealed = try header.withUTF8 { try sealing.seal(UnsafeRawBufferPointer($0), associatedData: Array(text.utf8), final: false) }
        try Self.writeMessage(fd, sealed)
        self.fd = fd
        record = buffer
        stream = consume sealing
    }

    /// A plaintext export: the JSON document's opening.
    init(plaintextTo fd: Int32, exportedAt: Int64, entries: Int) throws {
        let buffer = try GuardedText(capacity: 64 * 1024, limit: ExportFile.maxMessageLength)
        try Self.write(fd, Array((ExportFile.headerObject(exportedAt: exportedAt, sealed: false, entries: entries) + ",\"entries\":[\n").utf8))
        self.fd = fd
        record = buffer
        stream = nil
    }

    mutating func entry(_ entry: TransferEntry, secret: borrowing SecretBytes) throws {
        try flush()
        try ExportRecord.begin(entry, secret: secret, into: &record)
        open = true
        hasPrevious = false
    }

    mutating func previous(_ value: TransferPrevious, secret: borrowing SecretBytes) throws {
        try ExportRecord.previous(value, secret: secret, first: !hasPrevious, into: &record)
        hasPrevious = true
    }

    /// Ends the last entry and the file.
    mutating func finish() throws {
        try flush()
        if var stream = stream.take() {
            try Self.writeMessage(fd, try stream.seal(UnsafeRawBufferPointer(start: nil, count: 0), final: true))
        } else {
            try Self.write(fd, Array((entries == 0 ? "]}\n" : "\n]}\n").utf8))
        }
    }

    private mutating func flush() throws {
        guard open else { return }
        try ExportRecord.end(into: &record)
        if var sealing = stream.take() {
            let sealed = try record.withUnsafeBytes { (bytes) throws(SealingError) in try sealing.seal(bytes, final: false) }
            stream = consume sealing
            try Self.writeMessage(fd, sealed)
        } else {
            if entries > 0 { try Self.write(fd, Array(",\n".utf8)) }
            let descriptor = fd
            try record.withUnsafeBytes { (bytes) throws in try Self.write(descriptor, bytes) }
        }
        record.removeAll()
        entries += 1
        open = false
    }

    private static func writeMessage(_ fd: Int32, _ sealed: [UInt8]) throws {
        let length = UInt32(sealed.count)
        try write(fd, [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + sealed)
    }

    private static func write(_ fd: Int32, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write(fd, $0) }
    }

    static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let count = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if count < 0 {
                if errno == EINTR { continue }
                let code = errno
                let full = code == ENOSPC || code == EDQUOT
                throw CLIError(.failure, "cannot write the export: \(full ? "no space left on the device" : String(cString: strerror(code)))",
                               hint: full ? "nothing was published; free some space and try again" : "nothing was published; check the disk (dmesg)")
            }
            offset += count
        }
    }
}

/// Reads an export (sealed or plaintext) and hands each entry to an import
/// session, one at a time.
enum ExportReader {
    /// What a sealed export asks before it can be read.
    struct SealedHeader {
        let text: [UInt8]
        let kdf: KDFParameters
        let salt: [UInt8]
    }

    /// True when the input starts like a sealed export.
    static func isSealed(_ source: inout GuardedByteSource) throws -> Bool {
        try source.peek() == UInt8(ascii: "k")
    }

    /// Reads the three text lines of a sealed export.
    static func readSealedHeader(_ source: inout GuardedByteSource, file: String) throws -> SealedHeader {
        var text: [UInt8] = []
        var lines: [String] = []
        while lines.count < 3 {
            var line: [UInt8] = []
            while let byte = try source.next(), byte != 0x0A {
                line.append(byte)
                guard line.count <= 256 else { throw malformed(file, "its header line is too long") }
            }
            text += line + [0x0A]
            lines.append(String(decoding: line, as: UTF8.self))
        }
        guard lines[0] == ExportFile.magic else {
            if lines[0].hasPrefix("keyseal-export/") {
                throw CLIError(.data, "\(file) is a newer export (\(lines[0])) than this keyseal reads", hint: "upgrade keyseal to import it")
            }
            throw malformed(file, "it does not start with \(ExportFile.magic)")
        }
        guard lines[2].isEmpty else { throw malformed(file, "its header does not end with an empty line") }
        var fields: [String: String] = [:]
        let words = lines[1].split(separator: " ")
        guard words.count == 5, words[0] == "sealed", words[1] == "argon2id13" else {
            throw malformed(file, "its key line is not \"sealed argon2id13 ops=… mem=… salt=…\"")
        }
        for word in words[2...] {
            let parts = word.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw malformed(file, "its key line is malformed") }
            fields[String(parts[0])] = String(parts[1])
        }
        guard let ops = fields["ops"].flatMap(UInt64.init), let mem = fields["mem"].flatMap(UInt64.init),
              let salt = fields["salt"].flatMap(Hex.decode), salt.count == KeyDerivation.saltLength else {
            throw malformed(file, "its key line is malformed")
        }
        let kdf = KDFParameters(opsLimit: ops, memLimit: mem)
        do { try kdf.validate() } catch {
            throw malformed(file, "its key derivation cost is out of range (ops=\(ops), mem=\(mem))")
        }
        return SealedHeader(text: text, kdf: kdf, salt: salt)
    }

    /// Opens the stream and reads every entry into `session`. A wrong
    /// passphrase fails at the first message, before anything is read.
    static func readSealed(
        _ source: inout GuardedByteSource, header: SealedHeader, passphrase: borrowing SecretBytes, file: String,
        progress: (Int, Int64) -> Void, into session: CheckedImport
    ) throws {
        let key = try KeyDerivation.deriveKey(passphrase: passphrase, salt: header.salt, parameters: header.kdf)
        guard let streamHeader = try source.read(exactly: SealedStream.headerLength) else { throw malformed(file, "it is cut short") }
        var stream = try SealedStream.pull(key: key, header: streamHeader)
        var isFinal = false
        var index = 0
        while true {
            guard let prefix = try source.read(exactly: 4) else {
                throw CLIError(.data, "\(file) is cut short: its last record is missing", hint: "nothing was imported; use a complete copy")
            }
            let length = Int(prefix[0]) << 24 | Int(prefix[1]) << 16 | Int(prefix[2]) << 8 | Int(prefix[3])
            guard length >= SealedStream.overhead, length <= ExportFile.maxMessageLength,
                  let sealed = try source.read(exactly: length) else {
                throw CLIError(.data, "\(file) is damaged: record \(index) has an impossible length", hint: "nothing was imported")
            }
            let message: SecretBytes
            do {
                message = try stream.open(sealed, associatedData: index == 0 ? header.text : [], isFinal: &isFinal)
            } catch {
                if index == 0 {
                    throw CLIError(.unlock, "the passphrase does not open \(file), or its header was altered",
                                   hint: "nothing was imported; give the passphrase the export was made with")
                }
                throw CLIError(.data, "\(file) was altered: record \(index) fails authentication", hint: "nothing was imported; use an intact copy")
            }
            if isFinal {
                guard message.count == 0, index > 0 else { throw malformed(file, "its last record is not the end mark") }
                break
            }
            if index == 0 {
                try checkHeaderObject(message, file: file)
            } else {
                try message.withUnsafeBytes { (bytes) throws in
                    do {
                        try ExportRecord.read(bytes, into: session)
                    } catch let error as ExportRecord.Malformed {
                        throw malformed(file, "record \(index): \(error.reason)")
                    }
                }
                progress(index, source.consumed)
            }
            index += 1
        }
        guard try source.peek() == nil else { throw malformed(file, "bytes follow its end mark") }
    }

    private static func checkHeaderObject(_ message: borrowing SecretBytes, file: String) throws {
        try message.withUnsafeBytes { (bytes) throws in
            var reader = JSONReader(bytes: bytes)
            var format: String?
            var version: Int64?
            guard reader.consume(UInt8(ascii: "{")) else { throw malformed(file, "its header is not a JSON object") }
            repeat {
                guard let key = reader.readText(limit: 64), reader.consume(UInt8(ascii: ":")) else { throw malformed(file, "its header is malformed") }
                switch key {
                case "format": format = reader.readText(limit: 64)
                case "version": version = reader.readInteger()
                default: guard reader.skipValue(depth: 0) else { throw malformed(file, "its header is malformed") }
                }
            } while reader.consume(UInt8(ascii: ","))
            guard format == ExportFile.formatName, version == ExportFile.version else {
                throw malformed(file, "its header is not a keyseal export version 1")
            }
        }
    }

    /// Reads a plaintext export: the document is scanned as it streams in,
    /// and each entry object is gathered in guarded memory and read alone.
    /// A file without "format": "keyseal-export" and "version": 1 fails
    /// (at the end when they follow "entries": the import is one transaction).
    static func readPlaintext(_ source: inout GuardedByteSource, file: String, progress: (Int, Int64) -> Void, into session: CheckedImport) throws {
        let scanner = JSONStreamScanner(file: file)
        try scanner.expect(UInt8(ascii: "{"), &source)
        var format: String?
        var version: Int64?
        var index = 0
        repeat {
            let key = try scanner.smallString(&source)
            try scanner.expect(UInt8(ascii: ":"), &source)
            switch key {
            case "format": format = try scanner.smallString(&source)
            case "version": version = Int64(try scanner.smallScalar(&source))
            case "sealed":
                guard try scanner.smallScalar(&source) == "false" else { throw malformed(file, "it says it is sealed, but is JSON") }
            case "entries":
                // keyseal writes "format" first, but a file reformatted by
                // another tool may not: then it is checked at the end, and
                // the import (one transaction) fails whole if it is wrong.
                if let format, format != ExportFile.formatName { throw malformed(file, "it is JSON but not a keyseal export") }
                try scanner.expect(UInt8(ascii: "["), &source)
                var entry = try GuardedText(capacity: 4096, limit: ExportFile.maxMessageLength)
                if try !scanner.consume(UInt8(ascii: "]"), &source) {
                    repeat {
                        entry.removeAll()
                        try scanner.capture(&source, into: &entry)
                        index += 1
                        try entry.withUnsafeBytes { (bytes) throws in
                            do {
                                try ExportRecord.read(bytes, into: session)
                            } catch let error as ExportRecord.Malformed {
                                throw malformed(file, "entry \(index): \(error.reason)")
                            }
                        }
                        progress(index, source.consumed)
                    } while try scanner.consume(UInt8(ascii: ","), &source)
                    try scanner.expect(UInt8(ascii: "]"), &source)
                }
            default:
                var skipped = try GuardedText(capacity: 256, limit: ExportFile.maxMessageLength)
                try scanner.capture(&source, into: &skipped)
            }
        } while try scanner.consume(UInt8(ascii: ","), &source)
        try scanner.expect(UInt8(ascii: "}"), &source)
        guard format == ExportFile.formatName else { throw malformed(file, "it is JSON but not a keyseal export (no \"format\": \"keyseal-export\")") }
        guard version == ExportFile.version else { throw malformed(file, "it is not version 1 of the export format") }
        scanner.skipSpace(&source)
        guard try source.peek() == nil else { throw malformed(file, "text follows the JSON document") }
    }

    static func malformed(_ file: String, _ reason: String) -> CLIError {
        CLIError(.data, "\(file) is not a valid keyseal export: \(reason)", hint: "nothing was imported")
    }
}

/// Walks a JSON document as it streams in: small members (keys, "format")
/// are read as text; whole values are gathered into guarded memory.
struct JSONStreamScanner {
    let file: String

    func skipSpace(_ source: inout GuardedByteSource) {
        while let byte = try? source.peek(), [0x20, 0x09, 0x0A, 0x0D].contains(byte) { _ = try? source.next() }
    }

    func consume(_ byte: UInt8, _ source: inout GuardedByteSource) throws -> Bool {
        skipSpace(&source)
        guard try source.peek() == byte else { return false }
        _ = try source.next()
        return true
    }

    func expect(_ byte: UInt8, _ source: inout GuardedByteSource) throws {
        guard try consume(byte, &source) else {
            throw ExportReader.malformed(file, "expected \"\(Character(Unicode.Scalar(byte)))\" at byte \(source.consumed)")
        }
    }

    /// A short string without escapes beyond \" and \\ (keys, the format name).
    func smallString(_ source: inout GuardedByteSource) throws -> String {
        try expect(UInt8(ascii: "\""), &source)
        var bytes: [UInt8] = []
        while let byte = try source.next() {
            if byte == UInt8(ascii: "\"") { return String(decoding: bytes, as: UTF8.self) }
            if byte == UInt8(ascii: "\\"), let escaped = try source.next() { bytes.append(escaped) } else { bytes.append(byte) }
            guard bytes.count <= 256 else { break }
        }
        throw ExportReader.malformed(file, "a member name is malformed at byte \(source.consumed)")
    }

    /// A number, true, false or null, as its text.
    func smallScalar(_ source: inout GuardedByteSource) throws -> String {
        skipSpace(&source)
        var bytes: [UInt8] = []
        while let byte = try source.peek(), "+-.0123456789eEtrufalsn".utf8.contains(byte), bytes.count < 32 {
            bytes.append(byte)
            _ = try source.next()
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// One whole value (an entry object), string-aware, into `out`.
    func capture(_ source: inout GuardedByteSource, into out: inout GuardedText) throws {
        skipSpace(&source)
        var depth = 0
        var inString = false
        var escaped = false
        while let byte = try source.next() {
            try out.append(byte)
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                if !inString && depth == 0 { return }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth == 0 { return }
                if depth < 0 { throw ExportReader.malformed(file, "unbalanced brackets at byte \(source.consumed)") }
            default:
                if depth == 0, let next = try source.peek(), [UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x0A, 0x0D, 0x09].contains(next) {
                    return
                }
            }
        }
        throw ExportReader.malformed(file, "it ends in the middle of a value")
    }
}
