import Policy
import Sealing

/// Builds text that contains a secret inside guarded memory, so a header or
/// a curl config line never exists as a Swift string.
struct SecretBuilder: ~Copyable {
    private var buffer: SecretBytes
    private var length = 0

    enum Escaping {
        /// Bytes as they are.
        case none
        /// Inside a double-quoted curl config value: `\` and `"` escaped.
        case curlQuoted
        /// Inside a JSON string: `"`, `\` and control characters escaped.
        case json
    }

    init(capacity: Int) throws {
        buffer = try SecretBytes(count: capacity)
    }

    mutating func append(_ text: String, escaping: Escaping = .none) {
        for byte in text.utf8 { appendEscaped(byte, escaping) }
    }

    mutating func append(_ secret: borrowing SecretBytes, escaping: Escaping) {
        secret.withUnsafeBytes { bytes in
            var index = 0
            while index < bytes.count {
                // In JSON, C1 controls (UTF-8 C2 80 to C2 9F) are escaped too,
                // like C0 controls and DEL, so no terminal acts on them.
                if escaping == .json, bytes[index] == 0xC2, index + 1 < bytes.count, (0x80...0x9F).contains(bytes[index + 1]) {
                    appendUnicodeEscape(bytes[index + 1])
                    index += 2
                    continue
                }
                appendEscaped(bytes[index], escaping)
                index += 1
            }
        }
    }

    private mutating func appendUnicodeEscape(_ value: UInt8) {
        let digits = Array("0123456789abcdef".utf8)
        for escaped in Array("\\u00".utf8) + [digits[Int(value >> 4)], digits[Int(value & 0x0F)]] { appendByte(escaped) }
    }

    private mutating func appendEscaped(_ byte: UInt8, _ escaping: Escaping) {
        switch escaping {
        case .none:
            appendByte(byte)
        case .curlQuoted:
            if byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\"") { appendByte(UInt8(ascii: "\\")) }
            appendByte(byte)
        case .json:
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                appendByte(UInt8(ascii: "\\"))
                appendByte(byte)
            case 0..<0x20, 0x7F:
                appendUnicodeEscape(byte)
            default:
                appendByte(byte)
            }
        }
    }

    private mutating func appendByte(_ byte: UInt8) {
        // Capacity is computed by the caller for the worst case; running out
        // is a programming error, not an input error.
        precondition(length < buffer.count, "SecretBuilder capacity exceeded")
        let index = length
        buffer.withUnsafeMutableBytes { $0[index] = byte }
        length += 1
    }

    consuming func finish() throws -> SecretBytes {
        try buffer.prefix(length)
    }

    /// Room for `texts` and `secret` with every byte escaped at worst (JSON's
    /// \u00XX is six bytes for one).
    static func capacity(secret: borrowing SecretBytes, texts: [String]) -> Int {
        (secret.count + texts.reduce(0) { $0 + $1.utf8.count }) * 6 + 16
    }
}

/// What `keyseal header --format` prints.
enum HeaderFormat: String, CaseIterable {
    /// `Authorization: Bearer …` and a newline: for `curl -H @-`.
    case line
    /// `header = "…"`: a curl config line, for `curl -K -`.
    case curl
    /// The header as it travels in an HTTP/1.1 request, ending in CR LF.
    case http
    /// `{"name": …, "value": …}`.
    case json
}

enum HeaderRenderer {
    static func render(_ template: HeaderTemplate, secret: borrowing SecretBytes, as format: HeaderFormat) throws -> SecretBytes {
        var builder = try SecretBuilder(capacity: SecretBuilder.capacity(secret: secret, texts: [template.text, "header = \"\"\n"]))
        switch format {
        case .line, .http:
            builder.append(template.prefix)
            builder.append(secret, escaping: .none)
            builder.append(template.suffix)
            builder.append(format == .http ? "\r\n" : "\n")
        case .curl:
            builder.append("header = \"")
            builder.append(template.prefix, escaping: .curlQuoted)
            builder.append(secret, escaping: .curlQuoted)
            builder.append(template.suffix, escaping: .curlQuoted)
            builder.append("\"\n")
        case .json:
            builder.append("{\"name\":\"")
            builder.append(template.fieldName, escaping: .json)
            builder.append("\",\"value\":\"")
            builder.append(template.valuePrefix, escaping: .json)
            builder.append(secret, escaping: .json)
            builder.append(template.suffix, escaping: .json)
            builder.append("\"}\n")
        }
        return try builder.finish()
    }
}

extension SecretBytes {
    /// Whether the bytes are valid UTF-8 (JSON output needs it).
    var isValidUTF8: Bool {
        withUnsafeBytes { bytes in
            var iterator = bytes.makeIterator()
            var decoder = UTF8()
            while true {
                switch decoder.decode(&iterator) {
                case .scalarValue: continue
                case .emptyInput: return true
                case .error: return false
                }
            }
        }
    }
}
