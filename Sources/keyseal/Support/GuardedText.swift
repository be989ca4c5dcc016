import Sealing
#if canImport(Glibc)
import Glibc
#endif

/// A growable byte buffer in guarded memory, for text that holds secrets
/// (an export record, a dotenv line): it grows by moving into a larger
/// guarded buffer, and the old one is wiped as it is freed.
struct GuardedText: ~Copyable {
    private var storage: SecretBytes
    private(set) var count = 0
    /// Growth stops here: a record larger than this is refused, not held.
    let limit: Int

    init(capacity: Int = 4096, limit: Int = 16 << 20) throws {
        storage = try SecretBytes(count: capacity)
        self.limit = limit
    }

    mutating func removeAll() {
        storage.withUnsafeMutableBytes { bytes in
            if count > 0 { memset(bytes.baseAddress!, 0, count) }
        }
        count = 0
    }

    /// Drops the last `n` bytes (wiped).
    mutating func removeLast(_ n: Int) {
        precondition(n <= count)
        let newCount = count - n
        storage.withUnsafeMutableBytes { bytes in
            if n > 0 { memset(bytes.baseAddress! + newCount, 0, n) }
        }
        count = newCount
    }

    private mutating func reserve(_ extra: Int) throws {
        let needed = count + extra
        guard needed > storage.count else { return }
        guard needed <= limit else { throw CLIError(.usage, "a record is larger than \(limit >> 20) MiB", hint: "split the input") }
        var larger = try SecretBytes(count: min(limit, max(needed, storage.count * 2)))
        let used = count
        storage.withUnsafeBytes { old in
            larger.withUnsafeMutableBytes { new in
                if used > 0 { new.baseAddress!.copyMemory(from: old.baseAddress!, byteCount: used) }
            }
        }
        storage = larger
    }

    mutating func append(_ byte: UInt8) throws {
        try reserve(1)
        let at = count
        storage.withUnsafeMutableBytes { $0[at] = byte }
        count += 1
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        try reserve(bytes.count)
        let at = count
        storage.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: at).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        count += bytes.count
    }

    /// Plain text (keys, metadata): not secret, but it goes in the same record.
    mutating func append(_ text: String) throws {
        var text = text
        try text.withUTF8 { try append(UnsafeRawBufferPointer($0)) }
    }

    /// A secret as a JSON string member value: `"…"` with JSON escapes, when
    /// it is UTF-8 text; else false, and nothing is appended (the caller
    /// writes it as base64 instead).
    mutating func appendJSONString(_ secret: borrowing SecretBytes) throws -> Bool {
        guard secret.isValidUTF8 else { return false }
        try append(UInt8(ascii: "\""))
        let hex = Array("0123456789abcdef".utf8)
        try secret.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) throws in
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\""): try append(UInt8(ascii: "\\")); try append(byte)
                case UInt8(ascii: "\\"): try append(UInt8(ascii: "\\")); try append(byte)
                case 0x0A: try append(UInt8(ascii: "\\")); try append(UInt8(ascii: "n"))
                case 0x0D: try append(UInt8(ascii: "\\")); try append(UInt8(ascii: "r"))
                case 0x09: try append(UInt8(ascii: "\\")); try append(UInt8(ascii: "t"))
                case 0..<0x20, 0x7F:
                    for unit in [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]] {
                        try append(unit)
                    }
                default: try append(byte)
                }
            }
        }
        try append(UInt8(ascii: "\""))
        return true
    }

    /// A secret as `"<standard base64>"`.
    mutating func appendBase64String(_ secret: borrowing SecretBytes) throws {
        try append(UInt8(ascii: "\""))
        try secret.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) throws in
            try Base64.encode(bytes) { try append($0) }
        }
        try append(UInt8(ascii: "\""))
    }

    func withUnsafeBytes<R: ~Copyable, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let used = count
        return try storage.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) throws(E) -> R in
            try body(UnsafeRawBufferPointer(start: bytes.baseAddress, count: used))
        }
    }

    /// The bytes, in a guarded buffer of exactly their size.
    func secret() throws -> SecretBytes {
        try withUnsafeBytes { (bytes) throws(SealingError) in try SecretBytes(copying: bytes) }
    }
}

/// Standard base64 (RFC 4648, with padding), byte by byte so a secret is
/// never gathered into a Swift array.
enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: UnsafeRawBufferPointer, _ emit: (UInt8) throws -> Void) rethrows {
        var index = 0
        while index < bytes.count {
            let a = UInt32(bytes[index])
            let b = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
            let c = index + 2 < bytes.count ? UInt32(bytes[index + 2]) : 0
            let triple = a << 16 | b << 8 | c
            try emit(alphabet[Int(triple >> 18 & 63)])
            try emit(alphabet[Int(triple >> 12 & 63)])
            try emit(index + 1 < bytes.count ? alphabet[Int(triple >> 6 & 63)] : UInt8(ascii: "="))
            try emit(index + 2 < bytes.count ? alphabet[Int(triple & 63)] : UInt8(ascii: "="))
            index += 3
        }
    }

    /// Decodes into `out`; false when `bytes` is not padded standard base64.
    static func decode(_ bytes: UnsafeRawBufferPointer, into out: inout GuardedText) throws -> Bool {
        guard bytes.count % 4 == 0 else { return false }
        func value(_ byte: UInt8) -> UInt32? {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): UInt32(byte - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): UInt32(byte - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"): 62
            case UInt8(ascii: "/"): 63
            default: nil
            }
        }
        var index = 0
        while index < bytes.count {
            let last = index + 4 == bytes.count
            let padding = last ? (bytes[index + 3] == UInt8(ascii: "=") ? (bytes[index + 2] == UInt8(ascii: "=") ? 2 : 1) : 0) : 0
            var triple: UInt32 = 0
            for offset in 0..<4 {
                if offset >= 4 - padding {
                    triple <<= 6
                    continue
                }
                guard let digit = value(bytes[index + offset]) else { return false }
                triple = triple << 6 | digit
            }
            try out.append(UInt8(triple >> 16 & 0xFF))
            if padding < 2 { try out.append(UInt8(triple >> 8 & 0xFF)) }
            if padding < 1 { try out.append(UInt8(triple & 0xFF)) }
            index += 4
        }
        return true
    }
}

/// Bytes read from a file descriptor through a guarded window, one at a
/// time, with one byte of look-ahead: the readers of exports and dotenv
/// files take their input this way, so memory stays bounded and the
/// plaintext never sits in ordinary memory.
struct GuardedByteSource: ~Copyable {
    private var window: SecretBytes
    private var start = 0
    private var end = 0
    private let fd: Int32
    private(set) var consumed: Int64 = 0
    private(set) var atEnd = false

    init(fd: Int32, windowSize: Int = 64 * 1024) throws {
        self.fd = fd
        window = try SecretBytes(count: windowSize)
    }

    private mutating func fill() throws {
        guard start == end, !atEnd else { return }
        let descriptor = fd
        var count: Int
        repeat {
            count = window.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress!, $0.count) }
        } while count < 0 && errno == EINTR
        if count < 0 { throw CLIError(.failure, "cannot read the input: \(String(cString: strerror(errno)))") }
        start = 0
        end = count
        if count == 0 { atEnd = true }
    }

    mutating func peek() throws -> UInt8? {
        try fill()
        guard start < end else { return nil }
        let at = start
        return window.withUnsafeBytes { $0[at] }
    }

    mutating func next() throws -> UInt8? {
        guard let byte = try peek() else { return nil }
        start += 1
        consumed += 1
        return byte
    }

    /// Reads exactly `count` bytes (a sealed message), or nil at a clean end
    /// of input before the first byte; a short read is an error.
    mutating func read(exactly count: Int) throws -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        while bytes.count < count {
            guard let byte = try next() else {
                if bytes.isEmpty { return nil }
                throw CLIError(.data, "the input ends in the middle of a record", hint: "the file is truncated; use a complete copy")
            }
            bytes.append(byte)
        }
        return bytes
    }
}
