// keyseal agent protocol, version 2
// =================================
//
// The CLI talks to the unlock agent over a Unix stream socket bound to a path
// (never the abstract namespace) in a private directory. Each message is one
// frame:
//
//     frame = length:u32be body          1 <= length <= AgentProtocol.maxFrame
//     body  = version:u8 code:u8 field*  code: the opcode of a request,
//                                        the status of a response
//     field = length:u32be bytes         fields are positional, none optional
//
// Requests                     fields
//     1 hello (and status)     none
//     2 seal                   plaintext, associated data
//     3 open                   nonce, ciphertext, associated data
//     4 fingerprint            plaintext
//     5 lock                   none
//     6 open verified          nonce, ciphertext, associated data, fingerprint
//
// Responses                    fields
//     0 ok                     hello: vault id, seconds left (8 bytes, signed
//                                     big-endian), agent pid (4 bytes, signed
//                                     big-endian)
//                              seal: nonce, ciphertext
//                              open, open verified: plaintext
//                              fingerprint: digest
//                              lock: none (then the agent wipes its key and exits)
//     1 authentication failed  none (open: the box did not authenticate;
//                              open verified: that, or the value's
//                              fingerprint is not the one sent)
//     2 malformed              none; the agent then closes the connection
//     3 unsupported version    none; byte 0 carries the agent's own version,
//                              and the agent then closes the connection
//     4 internal error         none
//
// Rules
// - A request carries exactly its fields and nothing after them; a length of
//   0 or over maxFrame, a short or overlong field list or an unknown opcode
//   is malformed.
// - One request at a time: the agent reads a connection's next frame only
//   after it has written the answer to the previous one.
// - The version byte leads every frame, so an agent of any version can answer
//   a client of any other with status 3 and its own version, and the client
//   can replace it (by the pid SO_PEERCRED reports) instead of guessing.
//   Any change of layout or meaning takes a new version number.
// - hello does not count as a use of the key; seal, open, open verified and
//   fingerprint restart the agent's idle timer.
// - Version 2 added open verified, so `keyseal header` costs one round trip
//   after hello instead of two (open, then fingerprint).
// - The agent accepts only connections from its own uid (SO_PEERCRED, checked
//   before a byte is read), serves at most 32 at once, and drops a client that
//   takes over 2 s to finish a frame or sits idle for 10 s.
// - Plaintexts cross the socket in both directions (seal and fingerprint
//   requests, open answers), so both ends keep every frame in guarded memory.

import Sealing

public enum AgentProtocol {
    public static let version: UInt8 = 2
    /// The largest frame body, in bytes, either side accepts.
    public static let maxFrame = 262_144
}

enum Opcode: UInt8 {
    case hello = 1
    case seal = 2
    case open = 3
    case fingerprint = 4
    case lock = 5
    case openVerified = 6
}

enum ResponseStatus: UInt8 {
    case ok = 0
    case authenticationFailed = 1
    case malformed = 2
    case unsupportedVersion = 3
    case internalError = 4
}

/// Encoding and decoding of frames; every frame lives in guarded memory.
enum Wire {
    static let prefixLength = 4
    static let fieldPrefixLength = 4
    /// Version and code.
    static let headerLength = 2

    /// The body length of a frame with fields of these lengths.
    static func bodyLength(fieldLengths: [Int]) -> Int {
        fieldLengths.reduce(headerLength) { $0 + fieldPrefixLength + $1 }
    }

    /// A whole frame, length prefix included, in a guarded buffer; `write`
    /// appends the fields, whose lengths must be `fieldLengths`.
    static func frame(
        version: UInt8 = AgentProtocol.version,
        code: UInt8,
        fieldLengths: [Int],
        write: (inout FrameWriter) -> Void
    ) throws(SealingError) -> GuardedBuffer {
        let body = bodyLength(fieldLengths: fieldLengths)
        precondition(body <= AgentProtocol.maxFrame, "frame over the protocol limit")
        let buffer = GuardedBuffer(try SecretBytes(count: prefixLength + body))
        buffer.bytes.withUnsafeMutableBytes { out in
            var writer = FrameWriter(out: out)
            writer.u32(UInt32(body))
            writer.u8(version)
            writer.u8(code)
            write(&writer)
            precondition(writer.offset == out.count, "frame fields do not match their declared lengths")
        }
        return buffer
    }

    /// A frame with no fields: every status but ok, and hello and lock requests.
    static func bare(version: UInt8 = AgentProtocol.version, code: UInt8) throws(SealingError) -> GuardedBuffer {
        try frame(version: version, code: code, fieldLengths: []) { _ in }
    }

    static func u32(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
        (UInt32(bytes[offset]) << 24) | (UInt32(bytes[offset + 1]) << 16)
            | (UInt32(bytes[offset + 2]) << 8) | UInt32(bytes[offset + 3])
    }

    static func u32(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { u32($0, at: 0) }
    }

    static func bigEndian(_ value: Int64) -> [UInt8] {
        let bits = UInt64(bitPattern: value)
        return (0..<8).map { UInt8(truncatingIfNeeded: bits >> (56 - 8 * $0)) }
    }

    static func bigEndian(_ value: Int32) -> [UInt8] {
        let bits = UInt32(bitPattern: value)
        return (0..<4).map { UInt8(truncatingIfNeeded: bits >> (24 - 8 * $0)) }
    }

    static func int64(_ bytes: UnsafeRawBufferPointer) -> Int64 {
        Int64(bitPattern: bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }

    static func int32(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        Int32(bitPattern: bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
    }
}

/// Appends to a frame being built; used only inside `Wire.frame`.
struct FrameWriter {
    let out: UnsafeMutableRawBufferPointer
    private(set) var offset = 0

    init(out: UnsafeMutableRawBufferPointer) {
        self.out = out
    }

    mutating func u8(_ value: UInt8) {
        out[offset] = value
        offset += 1
    }

    mutating func u32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) {
            u8(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
        }
    }

    /// A length-prefixed field.
    mutating func field(_ bytes: UnsafeRawBufferPointer) {
        u32(UInt32(bytes.count))
        if let source = bytes.baseAddress, bytes.count > 0 {
            (out.baseAddress! + offset).copyMemory(from: source, byteCount: bytes.count)
            offset += bytes.count
        }
    }

    mutating func field(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { field($0) }
    }

    mutating func field(_ secret: borrowing SecretBytes) {
        secret.withUnsafeBytes { field($0) }
    }
}

/// Reads the fields of a frame body in order. The slices it returns point
/// into the body and must not outlive the `withUnsafeBytes` that lent it.
struct FieldReader {
    private let body: UnsafeRawBufferPointer
    private var offset = Wire.headerLength

    init(body: UnsafeRawBufferPointer) {
        self.body = body
    }

    /// The next field, or nil when its length runs past the end of the body.
    mutating func next() -> UnsafeRawBufferPointer? {
        guard body.count - offset >= Wire.fieldPrefixLength else { return nil }
        let length = Int(Wire.u32(body, at: offset))
        let start = offset + Wire.fieldPrefixLength
        guard length <= body.count - start else { return nil }
        offset = start + length
        return UnsafeRawBufferPointer(rebasing: body[start..<offset])
    }

    var isAtEnd: Bool { offset == body.count }
}

/// A guarded buffer with reference semantics, so a connection can hold one,
/// or none, and release it (zeroing it) by dropping the reference.
final class GuardedBuffer {
    var bytes: SecretBytes

    init(_ bytes: consuming SecretBytes) {
        self.bytes = bytes
    }

    var count: Int { bytes.count }
}
