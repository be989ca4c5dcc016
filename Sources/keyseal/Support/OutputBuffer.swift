import Policy
import Sealing
#if canImport(Glibc)
import Glibc
#endif

/// Output built as bytes and written in chunks, so `list` and `check` of a
/// large vault never hold their whole answer as one string. With no file
/// descriptor (tests) it keeps everything. Whatever can fail other than the
/// write itself (reading the vault) is done before the first byte goes out,
/// so a script still never sees half an answer followed by an error of ours.
struct OutputBuffer {
    private(set) var bytes: [UInt8] = []
    private let fd: Int32?
    static let chunk = 1 << 16

    init(fd: Int32? = STDOUT_FILENO) {
        self.fd = fd
        bytes.reserveCapacity(Self.chunk + 4096)
    }

    mutating func reserve(_ count: Int) { bytes.reserveCapacity(count) }

    mutating func append(_ byte: UInt8) { bytes.append(byte) }

    mutating func append(_ text: String) { bytes.append(contentsOf: text.utf8) }

    mutating func append(contentsOf other: some Sequence<UInt8>) { bytes.append(contentsOf: other) }

    /// Decimal digits of `value`, as `String(value)` writes them.
    mutating func append(decimal value: Int64) {
        if value >= 0 && value < 10 {
            bytes.append(0x30 + UInt8(value))
            return
        }
        bytes.append(contentsOf: String(value).utf8)
    }

    /// `Timestamp.iso8601(seconds)`, as JSON has it (no quotes).
    mutating func append(iso8601 seconds: Int64) { Timestamp.appendISO8601(seconds, to: &bytes) }

    /// `Timestamp.localDate(seconds, in: zone)`.
    mutating func append(localDate seconds: Int64, in zone: LocalZone) {
        Timestamp.appendLocalDate(seconds, in: zone, to: &bytes)
    }

    /// Lowercase hex, as `Hex.encode` writes it.
    mutating func append(hex data: some Collection<UInt8>) { Hex.append(data, to: &bytes) }

    var count: Int { bytes.count }

    /// Drops the bytes from `index` on (a row's trailing spaces).
    mutating func truncate(to index: Int) { bytes.removeSubrange(index...) }

    mutating func replaceTail(from index: Int, with text: String) {
        bytes.removeSubrange(index...)
        bytes.append(contentsOf: text.utf8)
    }

    /// Writes what is buffered once a chunk has gathered.
    mutating func flushIfFull() throws {
        if bytes.count >= Self.chunk { try flush() }
    }

    /// Writes everything buffered (nothing without a file descriptor).
    mutating func flush() throws {
        guard let fd, !bytes.isEmpty else { return }
        try bytes.withUnsafeBytes { raw in try Output.writeAll(fd, raw) }
        bytes.removeAll(keepingCapacity: true)
    }
}
